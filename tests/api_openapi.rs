//! Keeps `/v1/openapi.json` true: it lists exactly the routes and methods the router
//! serves, every documented operation answers something other than "no such route"
//! or "method not allowed", and every undocumented method on a documented path is 405.
//! Every operation is driven through its error paths (no key, each role, bad path
//! and query values, unknown pool or binding, bad JSON, wrong media type, oversized
//! body, store down) and each answer must be a status the document lists for that
//! operation, with the JSON error shape. The bounds, patterns and nullability the
//! document declares are checked against the server at their edges, and the
//! document's request examples must succeed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use api_support::*;
use hyper::Method;
use maskline::store::memory::MemoryStore;
use serde_json::{json, Value};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            out.insert((path.clone(), method.to_ascii_uppercase()));
        }
    }
    out
}

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let srv = start(Arc::new(MemoryStore::new())).await;
    let c = &srv.client;
    let r = c.get("/v1/openapi.json", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    // Same (path, method) set as the router's own table.
    let served: BTreeSet<(String, String)> = srv
        .routes
        .iter()
        .flat_map(|(p, ms)| ms.iter().map(move |m| (p.to_string(), m.to_string())))
        .collect();
    assert_eq!(documented(&doc), served);

    // Every $ref resolves.
    let text = r.text();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {name}"
        );
    }
    // Every operation documents its path parameters.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let wanted: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let got: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(got, wanted, "{method} {path}");
        }
    }

    // Real resources to fill path parameters with.
    pool_with_numbers(c, "oa", &["+8617000000101", "+8617000000102"]).await;
    let b = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "oa", "shipment_id": "OA1", "party_a": "+8613900007777",
                    "party_b": "+8613700008888", "ttl_s": 600}),
        )
        .await
        .json();
    let id = b["id"].as_str().unwrap();
    let fill = |p: &str| {
        p.replace("{pool}", "oa")
            .replace("{number}", &enc(b["number"].as_str().unwrap()))
            .replace("{id}", id)
    };

    // Deletions last, so the other operations find their resources.
    let mut ops: Vec<(String, String)> = documented(&doc).into_iter().collect();
    ops.sort_by_key(|(p, m)| (m == "DELETE", p.clone(), m.clone()));
    for (path, method) in ops {
        let key = if method == "GET" { AUDITOR } else { ADMIN };
        let mut url = fill(&path);
        if path.ends_with("/route") {
            url.push_str(&format!("?caller={}", enc("+8613900007777")));
        }
        if path == "/v1/bindings" && method == "GET" {
            url.push_str("?shipment_id=OA1");
        }
        let m: Method = method.parse().unwrap();
        let (ct, body) = if m == Method::POST || m == Method::PATCH {
            (Some("application/json"), b"{}".to_vec())
        } else {
            (None, vec![])
        };
        let r = c.send(m, &url, Some(key), ct, body).await;
        assert_ne!(r.status, 405, "{method} {path}: {}", r.text());
        if r.status == 404 {
            assert_ne!(r.code(), "not_found", "{method} {path} is not routed");
        }
        // Whatever the answer, the documented status codes cover it.
        let responses = &doc["paths"][&path][method.to_ascii_lowercase()]["responses"];
        assert!(
            responses.get(r.status.to_string()).is_some(),
            "{method} {path} answered {} which is not documented",
            r.status
        );
        // Undocumented methods on this path: 405.
        for other in METHODS {
            if doc["paths"][&path]
                .get(other.to_ascii_lowercase())
                .is_none()
            {
                let r = c
                    .send(
                        other.parse().unwrap(),
                        &fill(&path),
                        Some(ADMIN),
                        None,
                        vec![],
                    )
                    .await;
                assert_eq!(r.status, 405, "{other} {path}");
                assert_eq!(r.code(), "method_not_allowed");
            }
        }
    }
    srv.stop().await.unwrap();
}

/// One request of the conformance table.
struct Probe {
    /// The documented operation: path template and method.
    path: &'static str,
    method: &'static str,
    /// What is sent.
    url: String,
    key: Option<&'static str>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn in_an_hour() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A request that can succeed for each operation, with `{pool}`, `{number}` and
/// `{id}` to fill in.
fn good_request(path: &str, method: &str) -> (String, Option<Value>) {
    let body = |v: Value| Some(v);
    match (path, method) {
        ("/v1/audit", _) => ("/v1/audit?limit=10".into(), None),
        ("/v1/calls", _) => ("/v1/calls?binding_id={id}&limit=5".into(), None),
        ("/v1/messages", _) => ("/v1/messages?binding_id={id}&limit=5".into(), None),
        ("/v1/sms/inbound", _) => (
            path.into(),
            body(json!({"from": "+8613900007777", "to": "+8617000000101", "text": "hi"})),
        ),
        ("/v1/sms/receipts", _) => (
            path.into(),
            body(json!({"id": "m1", "status": "delivered"})),
        ),
        ("/v1/pools", "POST") => (path.into(), body(json!({"name": "fresh", "country": 86}))),
        ("/v1/pools/{pool}/numbers", "GET") => (format!("{path}?limit=1"), None),
        ("/v1/pools/{pool}/numbers", _) => (
            path.into(),
            body(json!({"numbers": [{"number": "+8617000000109"}, {"number": 5}]})),
        ),
        ("/v1/pools/{pool}/numbers/{number}/route", _) => {
            (format!("{path}?caller={}", enc("+8613900007777")), None)
        }
        ("/v1/bindings", "GET") => ("/v1/bindings?shipment_id=OA1&pool={pool}".into(), None),
        ("/v1/bindings", "POST") => (
            path.into(),
            body(
                json!({"pool": "{pool}", "shipment_id": "OA1", "party_a": "+8613900007777",
                        "party_b": "+8613700008888", "ttl_s": 600}),
            ),
        ),
        ("/v1/bindings/{id}", "PATCH") => (path.into(), body(json!({"expires_at": in_an_hour()}))),
        (p, "POST") if p.starts_with("/v1/pools/{pool}/numbers/{number}/") => (
            path.into(),
            body(json!({"reason": "spam reports from handset apps"})),
        ),
        ("/v1/shipments/{id}", _) => (
            "/v1/shipments/OA1?reveal=true&reason=customer%20complaint".into(),
            None,
        ),
        _ => (path.into(), None),
    }
}

fn fill(s: &str, pool: &str, number: &str, id: &str) -> String {
    s.replace("{pool}", pool)
        .replace("{number}", number)
        .replace("{id}", id)
}

#[tokio::test]
async fn every_answer_of_every_operation_is_documented() {
    let flaky = FlakyStore::new(Arc::new(MemoryStore::new()));
    let srv = start(flaky.clone()).await;
    let c = &srv.client;
    let doc = c.get("/v1/openapi.json", None).await.json();
    pool_with_numbers(c, "oa", &["+8617000000101", "+8617000000102"]).await;
    let b = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "oa", "shipment_id": "OA1", "party_a": "+8613900007777",
                    "party_b": "+8613700008888", "ttl_s": 600}),
        )
        .await
        .json();
    let id = b["id"].as_str().unwrap().to_owned();
    let x = enc(b["number"].as_str().unwrap());
    let other_id = uuid::Uuid::new_v4().to_string();

    let mut probes = Vec::new();
    let mut ops: Vec<(String, String)> = documented(&doc).into_iter().collect();
    // Deletions last, so the other operations find their resources.
    ops.sort_by_key(|(p, m)| (m == "DELETE", p.clone(), m.clone()));
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    for (path, method) in &ops {
        let (path, method) = (leak(path.clone()), leak(method.clone()));
        let (url, body) = good_request(path, method);
        let body = body.map(|v| fill(&v.to_string(), "oa", "+8617000000101", &id).into_bytes());
        let mut add = |url: String, key, ct, body: Option<Vec<u8>>| {
            probes.push(Probe {
                path,
                method,
                url,
                key,
                content_type: ct,
                body: body.unwrap_or_default(),
            })
        };
        let json_ct = body.as_ref().map(|_| "application/json");
        let good = fill(&url, "oa", &x, &id);
        // No key, then every role.
        add(good.clone(), None, json_ct, body.clone());
        for key in [APP, OPS, ADMIN, AUDITOR] {
            add(good.clone(), Some(key), json_ct, body.clone());
        }
        // Bad and unknown path values, an unknown query parameter.
        for (pool, number, bid) in [
            ("bad%20pool", x.as_str(), id.as_str()),
            ("nopool", x.as_str(), other_id.as_str()),
            ("oa", "abc", "not-a-uuid"),
            (
                "oa",
                "%2B8617000000999",
                "{5e0c1f0e-4cf3-4a9f-9f8e-3c1d2b4a5f60}",
            ),
        ] {
            add(
                fill(&url, pool, number, bid),
                Some(ADMIN),
                json_ct,
                body.clone(),
            );
        }
        let sep = if good.contains('?') { '&' } else { '?' };
        add(
            format!("{good}{sep}bogus=1"),
            Some(ADMIN),
            json_ct,
            body.clone(),
        );
        if path == "/v1/shipments/{id}" {
            for q in ["reveal=true", "reveal=maybe", "reason=x"] {
                add(format!("/v1/shipments/OA1?{q}"), Some(AUDITOR), None, None);
                add(format!("/v1/shipments/OA1?{q}"), Some(OPS), None, None);
            }
        }
        if path == "/v1/bindings/{id}" && method == "GET" {
            for q in ["reveal=true", "reveal=1", "reveal=maybe"] {
                add(format!("{good}?{q}"), Some(AUDITOR), None, None);
                add(format!("{good}?{q}"), Some(APP), None, None);
            }
        }
        if body.is_some() {
            for (ct, bytes) in [
                ("application/json", b"{".to_vec()),
                ("application/json", b"[]".to_vec()),
                ("application/json", br#"{"bogus":null}"#.to_vec()),
                ("text/plain", b"hello".to_vec()),
                ("application/json", vec![b' '; 70 * 1024]),
            ] {
                add(good.clone(), Some(ADMIN), Some(ct), Some(bytes));
            }
        }
    }

    let mut seen: BTreeSet<(String, String, u16)> = BTreeSet::new();
    let run = |probes: &[Probe]| {
        let probes: Vec<_> = probes
            .iter()
            .map(|p| {
                (
                    p.path,
                    p.method,
                    p.url.clone(),
                    p.key,
                    p.content_type,
                    p.body.clone(),
                )
            })
            .collect();
        async move {
            let mut out = Vec::new();
            for (path, method, url, key, ct, body) in probes {
                let r = c.send(method.parse().unwrap(), &url, key, ct, body).await;
                out.push((path, method, url, r));
            }
            out
        }
    };
    let mut check = |answers: Vec<(&str, &str, String, Resp)>| {
        for (path, method, url, r) in answers {
            let responses = &doc["paths"][path][method.to_ascii_lowercase()]["responses"];
            assert!(
                responses.get(r.status.to_string()).is_some(),
                "{method} {path}: {url} answered {}, which the document does not list: {}",
                r.status,
                r.text()
            );
            if r.status >= 400 {
                let e = r.json();
                assert!(
                    e["error"]["code"].is_string() && e["error"]["message"].is_string(),
                    "{method} {url}: {}",
                    r.text()
                );
            }
            seen.insert((path.to_owned(), method.to_owned(), r.status));
        }
    };
    check(run(&probes).await);
    // The same requests with the store down.
    flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
    check(run(&probes).await);
    flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);

    // The probes reached what they aim at: every protected operation answered 401
    // and 503, every operation with input answered 400.
    for (path, method) in &ops {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        let has = |s: u16| seen.contains(&(path.clone(), method.clone(), s));
        let protected = op.get("security").is_none();
        // (The SMS webhooks answer 404 here: this relay runs without SMS. Their
        // signed paths are driven in tests/sms_http.rs.)
        if protected {
            assert!(has(401), "{method} {path}: no 401");
            let takes_input = op.get("parameters").is_some() || op.get("requestBody").is_some();
            assert!(!takes_input || has(400), "{method} {path}: no 400");
        }
        // Call and message records live in their own store, not the flaky one.
        if protected && !["/v1/calls", "/v1/messages"].contains(&path.as_str()) {
            assert!(has(503), "{method} {path}: no 503");
        }
    }
    for (path, method, status) in [
        ("/v1/bindings", "GET", 404),
        ("/v1/pools/{pool}", "GET", 400),
        ("/v1/pools", "POST", 403),
        ("/v1/pools", "POST", 413),
        ("/v1/pools", "POST", 415),
        ("/v1/bindings/{id}", "GET", 403),
        ("/v1/bindings/{id}", "PATCH", 404),
    ] {
        assert!(
            seen.contains(&(path.into(), method.into(), status)),
            "{method} {path} never answered {status}"
        );
    }
    srv.stop().await.unwrap();
}

/// The schema of a request body in the document, `$ref`s followed.
fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

#[tokio::test]
async fn declared_bounds_patterns_and_nullability_are_the_servers() {
    let srv = start(Arc::new(MemoryStore::new())).await;
    let c = &srv.client;
    let doc = c.get("/v1/openapi.json", None).await.json();
    pool_with_numbers(c, "bd", &["+8617000000201", "+8617000000202"]).await;

    // Pool maxima: the declared maximum is taken, one more is refused naming the field.
    let cp = &schema(&doc, "CreatePool")["properties"];
    for (i, field) in ["grace_s", "cooling_s", "max_bindings_per_number"]
        .into_iter()
        .enumerate()
    {
        let max = cp[field]["maximum"].as_u64().unwrap();
        let name = format!("max{i}");
        let r = c
            .post(
                "/v1/pools",
                Some(ADMIN),
                &json!({"name": name, "country": 86, field: max}),
            )
            .await;
        assert_eq!(r.status, 201, "{field}={max}: {}", r.text());
        let r = c
            .post(
                "/v1/pools",
                Some(ADMIN),
                &json!({"name": format!("{name}x"), "country": 86, field: max + 1}),
            )
            .await;
        assert_eq!(
            (r.status, r.field()),
            (400, Some(field.to_owned())),
            "{field}"
        );
        // Absent is fine, `null` is refused (the schema is not nullable).
        assert!(cp[field].get("nullable").is_none());
        let r = c
            .post(
                "/v1/pools",
                Some(ADMIN),
                &json!({"name": format!("{name}n"), "country": 86, field: null}),
            )
            .await;
        assert_eq!(
            (r.status, r.field()),
            (400, Some(field.to_owned())),
            "{field}"
        );
    }
    let pool_pattern = cp["name"]["pattern"].as_str().unwrap();
    assert_eq!(pool_pattern, "^[A-Za-z0-9_-]+$");
    assert_eq!(cp["name"]["maxLength"], 64);
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "a".repeat(65), "country": 86}),
        )
        .await;
    assert_eq!((r.status, r.field()), (400, Some("name".to_owned())));

    // Binding creation: the same pool-name rule, shipment id length, party length,
    // ttl_s maximum, and null refused for each optional field.
    let cb = schema(&doc, "CreateBinding");
    let p = &cb["properties"];
    assert_eq!(p["pool"]["pattern"], cp["name"]["pattern"]);
    let base = json!({"pool": "bd", "shipment_id": "B1", "party_a": "+8613900001111",
                      "party_b": "+8613700002222", "ttl_s": 60});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    // Each creation with its own customer, so the two numbers never run out.
    let serial = std::sync::atomic::AtomicU32::new(10);
    let create = |mut b: Value| {
        let n = serial.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        b["party_b"] = json!(format!("+86137000022{n:02}"));
        if b["party_a"] == "+8613900001111" {
            b["party_a"] = json!(format!("+86139000011{n:02}"));
        }
        async move { c.post("/v1/bindings", Some(APP), &b).await }
    };
    let max_ship = p["shipment_id"]["maxLength"].as_u64().unwrap() as usize;
    let r = create(with("shipment_id", json!("S".repeat(max_ship)))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = create(with("shipment_id", json!("S".repeat(max_ship + 1)))).await;
    assert_eq!((r.status, r.field()), (400, Some("shipment_id".to_owned())));
    let r = create(with("shipment_id", json!("has space"))).await;
    assert_eq!((r.status, r.field()), (400, Some("shipment_id".to_owned())));
    let max_party = p["party_a"]["maxLength"].as_u64().unwrap() as usize;
    let long = format!("+86 139 0000 3333{}", " ".repeat(max_party - 17));
    assert_eq!(long.len(), max_party);
    let r = create(with("shipment_id", json!("B2"))).await.status;
    assert_eq!(r, 201);
    let r = create(json!({"pool": "bd", "shipment_id": "B3", "party_a": long,
                          "party_b": "+8613700002222", "ttl_s": 60}))
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = create(
        json!({"pool": "bd", "shipment_id": "B4", "party_a": format!("{long} "),
                          "party_b": "+8613700002222", "ttl_s": 60}),
    )
    .await;
    assert_eq!((r.status, r.field()), (400, Some("party_a".to_owned())));
    let max_ttl = p["ttl_s"]["maximum"].as_u64().unwrap();
    let r = create(with("shipment_id", json!("B5"))).await.status;
    assert_eq!(r, 201);
    let r = create(
        json!({"pool": "bd", "shipment_id": "B6", "party_a": "+8613900001111",
                          "party_b": "+8613700002222", "ttl_s": max_ttl}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = create(
        json!({"pool": "bd", "shipment_id": "B7", "party_a": "+8613900001111",
                          "party_b": "+8613700002222", "ttl_s": max_ttl + 1}),
    )
    .await;
    assert_eq!((r.status, r.field()), (400, Some("ttl_s".to_owned())));
    // Exactly one of expires_at and ttl_s, as the schema's description says.
    assert!(cb["description"]
        .as_str()
        .unwrap()
        .starts_with("Exactly one of `expires_at` and `ttl_s`"));
    let mut both = base.clone();
    both["expires_at"] = json!(in_an_hour());
    assert_eq!(create(both).await.status, 400);
    let mut neither = base.clone();
    neither.as_object_mut().unwrap().remove("ttl_s");
    assert_eq!(create(neither).await.status, 400);
    for field in ["expires_at", "ttl_s", "area"] {
        let r = create(with(field, Value::Null)).await;
        assert_eq!(r.status, 400, "{field}: null: {}", r.text());
    }

    // PATCH: null refused, at least one field, past expiry refused.
    let id = create(base.clone()).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("/v1/bindings/{id}");
    for field in ["party_a", "party_b", "expires_at"] {
        let r = c.patch(&url, Some(APP), &json!({ field: null })).await;
        assert_eq!(
            (r.status, r.field()),
            (400, Some(field.to_owned())),
            "{field}"
        );
    }
    assert_eq!(c.patch(&url, Some(APP), &json!({})).await.status, 400);
    let r = c
        .patch(
            &url,
            Some(APP),
            &json!({"expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!((r.status, r.field()), (400, Some("expires_at".to_owned())));
    let desc = schema(&doc, "PatchBinding")["description"]
        .as_str()
        .unwrap();
    assert!(desc.contains("in the future"), "{desc}");

    // Path and query forms the document declares: hyphenated UUIDs only, reveal
    // true/false only, the shipment id rule on every list.
    let simple = id.replace('-', "");
    assert_eq!(
        c.get(&format!("/v1/bindings/{simple}"), Some(APP))
            .await
            .status,
        400
    );
    assert_eq!(
        c.get(&format!("{url}?reveal=1"), Some(AUDITOR))
            .await
            .status,
        400
    );
    for list in ["/v1/calls", "/v1/messages", "/v1/bindings"] {
        let r = c.get(&format!("{list}?shipment_id=a%20b"), Some(APP)).await;
        assert_eq!(
            (r.status, r.field()),
            (400, Some("shipment_id".to_owned())),
            "{list}"
        );
        let r = c
            .get(
                &format!("{list}?binding_id={simple}&shipment_id=x"),
                Some(APP),
            )
            .await;
        assert_eq!(r.status, 400, "{list}");
    }
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn request_examples_in_the_document_succeed() {
    let srv = start(Arc::new(MemoryStore::new())).await;
    let c = &srv.client;
    let doc = c.get("/v1/openapi.json", None).await.json();
    let example = |name: &str| schema(&doc, name)["example"].clone();
    // The examples name the demo pool `maskline serve` creates with the memory store.
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "demo", "country": 86}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = c
        .post("/v1/pools", Some(ADMIN), &example("CreatePool"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = c
        .post(
            "/v1/pools/demo/numbers",
            Some(ADMIN),
            &example("ImportNumbers"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["errors"], json!([]), "{}", r.text());
    let csv = doc["paths"]["/v1/pools/{pool}/numbers"]["post"]["requestBody"]["content"]
        ["text/csv"]["example"]
        .as_str()
        .unwrap();
    let r = c
        .post_raw("/v1/pools/demo/numbers", Some(ADMIN), "text/csv", csv)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["added"], 2, "{}", r.text());
    let r = c
        .post("/v1/bindings", Some(APP), &example("CreateBinding"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &example("PatchBinding"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The links from a created binding name real operations and its `id`.
    let links = &doc["paths"]["/v1/bindings"]["post"]["responses"]["201"]["links"];
    let ids: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|i| i.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for (name, l) in links.as_object().unwrap() {
        assert!(ids.contains(l["operationId"].as_str().unwrap()), "{name}");
    }
    for op in [
        "getBinding",
        "updateBinding",
        "markDelivered",
        "deleteBinding",
    ] {
        assert!(
            links
                .as_object()
                .unwrap()
                .values()
                .any(|l| l["operationId"] == op && l["parameters"]["id"] == "$response.body#/id"),
            "{op}"
        );
    }
    srv.stop().await.unwrap();
}
