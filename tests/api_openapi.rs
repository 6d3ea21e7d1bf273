//! Keeps `/v1/openapi.json` true: it lists exactly the routes and methods the router
//! serves, every documented operation answers something other than "no such route"
//! or "method not allowed", and every undocumented method on a documented path is 405.
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
