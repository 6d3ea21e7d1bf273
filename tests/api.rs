//! The HTTP API driven over real HTTP against the in-memory store: binding
//! lifecycle, masking, idempotency, national-format input, imports, and the error
//! contract (status, code and field for every client mistake).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;

use api_support::*;
use hyper::Method;
use serde_json::json;

#[tokio::test]
async fn binding_lifecycle_masks_parties_and_is_idempotent() {
    let srv = start(memory()).await;
    let c = &srv.client;
    pool_with_numbers(c, "life", &[X1, X2]).await;

    let r = c
        .post("/v1/bindings", Some(APP), &binding_req("life", "SF1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json();
    assert_no_party_in_clear(&r.text());
    assert_eq!(b["party_a"], "+86 139****1111");
    assert_eq!(b["party_b"], "+86 137****3333");
    assert_eq!(b["pool"], "life");
    assert_eq!(b["shipment_id"], "SF1");
    assert_eq!(b["state"], "active");
    let x = b["number"].as_str().unwrap().to_owned();
    assert!(x == X1 || x == X2, "virtual number in clear: {x}");
    assert!(b["expires_at"].as_str().unwrap().ends_with('Z'));
    let id = b["id"].as_str().unwrap().to_owned();

    // Same request again: 200 with the same body.
    let again = c
        .post("/v1/bindings", Some(APP), &binding_req("life", "SF1"))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), b);

    let got = c.get(&format!("/v1/bindings/{id}"), Some(OPS)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), b);
    assert_no_party_in_clear(&got.text());

    let list = c.get("/v1/bindings?shipment_id=SF1", Some(APP)).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["bindings"], json!([b]));
    let none = c.get("/v1/bindings?shipment_id=NOPE", Some(APP)).await;
    assert_eq!(none.json()["bindings"], json!([]));

    // Route view: courier calling X reaches the customer (masked).
    let route = c
        .get(
            &format!(
                "/v1/pools/life/numbers/{}/route?caller={}",
                enc(&x),
                enc(COURIER)
            ),
            Some(OPS),
        )
        .await;
    assert_eq!(route.status, 200, "{}", route.text());
    assert_eq!(route.json()["callee"], "+86 137****3333");
    assert_eq!(route.json()["binding_id"], id.as_str());
    assert_no_party_in_clear(&route.text());

    // Courier handover: the new courier reaches the customer, the old one nobody.
    let r = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &json!({"party_a": COURIER2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["party_a"], "+86 139****2222");
    assert_eq!(r.json()["number"], x.as_str());
    let old = c
        .get(
            &format!(
                "/v1/pools/life/numbers/{}/route?caller={}",
                enc(&x),
                enc(COURIER)
            ),
            Some(OPS),
        )
        .await;
    assert_eq!((old.status, old.code().as_str()), (404, "no_route"));

    // Extend.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let later_s = later
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &json!({"expires_at": later_s}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["expires_at"], later_s.as_str());

    // Delivered.
    let r = c
        .send(
            Method::POST,
            &format!("/v1/bindings/{id}/delivered"),
            Some(APP),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "delivered");

    // Pool stats: X in clear, parties opaque.
    let s = c.get("/v1/pools/life", Some(OPS)).await;
    assert_eq!(s.status, 200, "{}", s.text());
    let sj = s.json();
    assert_eq!(sj["numbers"], 2);
    assert_eq!(sj["active"], 2);
    assert_eq!(sj["live_bindings"], 1);
    assert_eq!(sj["pool"]["name"], "life");
    assert!(s.text().contains(X1) && s.text().contains(X2));
    assert_no_party_in_clear(&s.text());

    // Delete: 204, then gone.
    let r = c.delete(&format!("/v1/bindings/{id}"), Some(APP)).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let r = c.get(&format!("/v1/bindings/{id}"), Some(APP)).await;
    assert_eq!((r.status, r.code().as_str()), (404, "binding_not_found"));
    let r = c.delete(&format!("/v1/bindings/{id}"), Some(APP)).await;
    assert_eq!((r.status, r.code().as_str()), (404, "binding_not_found"));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn national_numbers_are_read_with_the_pool_country() {
    let srv = start(memory()).await;
    let c = &srv.client;
    pool_with_numbers(c, "natl", &["17000000003"]).await;
    let r = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "natl", "shipment_id": "N1", "party_a": "139 0000 1111",
                    "party_b": "+86 137-0000-3333", "ttl_s": 60}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["number"], "+8617000000003");
    assert_eq!(r.json()["party_a"], "+86 139****1111");
    // Retire by national format.
    let r = c
        .delete("/v1/pools/natl/numbers/17000000003", Some(ADMIN))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let s = c.get("/v1/pools/natl", Some(ADMIN)).await.json();
    assert_eq!(
        (s["active"].as_u64(), s["retired"].as_u64()),
        (Some(0), Some(1))
    );
    // Retired: no new bindings.
    let r = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "natl", "shipment_id": "N2", "party_a": "+8613900005555",
                    "party_b": "+8613700006666", "ttl_s": 60}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "pool_exhausted"));
    srv.stop().await.unwrap();
}

/// (status, code, field) of an error response.
#[tokio::test]
async fn client_errors_have_one_shape_and_exact_codes() {
    let srv = start(memory()).await;
    let c = &srv.client;
    pool_with_numbers(c, "errs", &[X1]).await;
    let post = |body: &'static str| c.post_raw("/v1/bindings", Some(APP), "application/json", body);

    assert_eq!(
        err_of(&post("{\"pool\":").await),
        e(400, "invalid_json", None)
    );
    assert_eq!(err_of(&post("").await), e(400, "invalid_json", None));
    assert_eq!(
        err_of(
            &post(r#"{"pool":"errs","shipment_id":"S","party_a":"+8613900001111","ttl_s":5}"#)
                .await
        ),
        e(400, "missing_field", Some("party_b"))
    );
    assert_eq!(
        err_of(&post(r#"{"pool":"errs","shipment_id":"S","party_a":"+8613900001111","party_b":"+8613700003333","ttl_s":5,"colour":1}"#).await),
        e(400, "unknown_field", Some("colour"))
    );
    let wrong_type = post(r#"{"pool":"errs","shipment_id":"S","party_a":"+8613900001111","party_b":"+8613700003333","ttl_s":"+8613700003333"}"#).await;
    assert_eq!(err_of(&wrong_type), e(400, "invalid_field", Some("ttl_s")));
    assert_no_party_in_clear(&wrong_type.text());
    let bad_number = post(r#"{"pool":"errs","shipment_id":"S","party_a":"+86139abc","party_b":"+8613700003333","ttl_s":5}"#).await;
    assert_eq!(
        err_of(&bad_number),
        e(400, "invalid_field", Some("party_a"))
    );
    assert_eq!(
        err_of(&post(r#"{"pool":"errs","shipment_id":"S","party_a":"+8613900001111","party_b":"+8613700003333"}"#).await),
        e(400, "invalid_field", Some("expires_at"))
    );
    assert_eq!(
        err_of(&post(r#"{"pool":"errs","shipment_id":"S","party_a":"+8613900001111","party_b":"+8613700003333","ttl_s":5,"expires_at":"2030-01-01T00:00:00Z"}"#).await),
        e(400, "invalid_field", Some("expires_at"))
    );
    assert_eq!(
        err_of(&post(r#"{"pool":"errs","shipment_id":"S","party_a":"+8613900001111","party_b":"+8613700003333","expires_at":"tomorrow"}"#).await),
        e(400, "invalid_field", Some("expires_at"))
    );
    assert_eq!(
        err_of(&post(r#"{"pool":"errs","shipment_id":"S","party_a":"+8613900001111","party_b":"+8613700003333","expires_at":"2001-01-01T00:00:00Z"}"#).await),
        e(400, "invalid_field", Some("expires_at"))
    );
    assert_eq!(
        err_of(&post(r#"{"pool":"errs","shipment_id":"S","party_a":"+8613900001111","party_b":"+8613900001111","ttl_s":5}"#).await),
        e(400, "invalid_field", Some("party_b"))
    );
    assert_eq!(
        err_of(&post(r#"{"pool":"errs","shipment_id":"has space","party_a":"+8613900001111","party_b":"+8613700003333","ttl_s":5}"#).await),
        e(400, "invalid_field", Some("shipment_id"))
    );
    assert_eq!(
        err_of(&post(r#"{"pool":"nope","shipment_id":"S","party_a":"+8613900001111","party_b":"+8613700003333","ttl_s":5}"#).await),
        e(404, "pool_not_found", None)
    );
    assert_eq!(
        err_of(
            &c.post_raw("/v1/bindings", Some(APP), "text/plain", "hi")
                .await
        ),
        e(415, "unsupported_media_type", None)
    );

    // Oversize body (limit 64 KiB in tests): 413, with or without Content-Length.
    let big = format!("{{\"pool\":\"{}\"}}", "a".repeat(70 * 1024));
    assert_eq!(
        err_of(
            &c.post_raw("/v1/bindings", Some(APP), "application/json", &big)
                .await
        ),
        e(413, "body_too_large", None)
    );

    // Chunked (no Content-Length): the limit is enforced while reading.
    let raw = chunked_post(c.addr, "/v1/bindings", APP, 70 * 1024).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("\"body_too_large\""), "{raw}");

    // Unknown route, wrong method, bad id.
    assert_eq!(
        err_of(&c.get("/v1/nothing", Some(APP)).await),
        e(404, "not_found", None)
    );
    assert_eq!(err_of(&c.get("/", None).await), e(404, "not_found", None));
    let r = c
        .send(Method::PUT, "/v1/bindings", Some(APP), None, vec![])
        .await;
    assert_eq!(err_of(&r), e(405, "method_not_allowed", None));
    let allow = r.header("allow").unwrap_or_default();
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow}"
    );
    assert_eq!(
        err_of(&c.get("/v1/bindings/not-a-uuid", Some(APP)).await),
        e(400, "invalid_field", Some("id"))
    );
    assert_eq!(
        err_of(
            &c.get(
                "/v1/bindings/0190b6a0-0000-7000-8000-000000000000",
                Some(APP)
            )
            .await
        ),
        e(404, "binding_not_found", None)
    );
    assert_eq!(
        err_of(&c.get("/v1/bindings", Some(APP)).await),
        e(400, "missing_field", Some("shipment_id"))
    );
    assert_eq!(
        err_of(&c.get("/v1/bindings?shipment_id=A&x=1", Some(APP)).await),
        e(400, "unknown_field", Some("x"))
    );

    // Conflicts.
    let ok = c
        .post("/v1/bindings", Some(APP), &binding_req("errs", "C1"))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text());
    let id = ok.json()["id"].as_str().unwrap().to_owned();
    let mut other = binding_req("errs", "C1");
    other["party_b"] = json!("+8613700009999");
    assert_eq!(
        err_of(&c.post("/v1/bindings", Some(APP), &other).await),
        e(409, "shipment_conflict", Some("shipment_id"))
    );
    // One number, both parties already hold it: exhausted for them.
    let exhausted = c
        .post("/v1/bindings", Some(APP), &binding_req("errs", "C2"))
        .await;
    assert_eq!(err_of(&exhausted), e(409, "pool_exhausted", None));
    assert_no_party_in_clear(&exhausted.text());
    // Handover to a party that already holds X (via another binding) → reassign_conflict.
    let mut b2 = binding_req("errs", "C3");
    b2["party_a"] = json!("+8613900004444");
    b2["party_b"] = json!("+8613700005555");
    assert_eq!(c.post("/v1/bindings", Some(APP), &b2).await.status, 201);
    let r = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &json!({"party_a": "+8613900004444"}),
        )
        .await;
    assert_eq!(err_of(&r), e(409, "reassign_conflict", Some("party_a")));
    let r = c
        .patch(&format!("/v1/bindings/{id}"), Some(APP), &json!({}))
        .await;
    assert_eq!(err_of(&r).0, 400);
    let r = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &json!({"party_c": "x"}),
        )
        .await;
    assert_eq!(err_of(&r), e(400, "unknown_field", Some("party_c")));

    // Pools.
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "errs", "country": 86}),
        )
        .await;
    assert_eq!(err_of(&r), e(409, "pool_exists", Some("name")));
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "a b", "country": 86}),
        )
        .await;
    assert_eq!(err_of(&r), e(400, "invalid_field", Some("name")));
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "p", "country": "86"}),
        )
        .await;
    assert_eq!(err_of(&r), e(400, "invalid_field", Some("country")));
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "p", "country": 0}),
        )
        .await;
    assert_eq!(err_of(&r), e(400, "invalid_field", Some("country")));
    let r = c.get("/v1/pools/none", Some(ADMIN)).await;
    assert_eq!(err_of(&r), e(404, "pool_not_found", None));
    let r = c
        .delete(&format!("/v1/pools/errs/numbers/{}", enc(X2)), Some(ADMIN))
        .await;
    assert_eq!(err_of(&r), e(404, "number_not_found", None));
    let r = c.delete("/v1/pools/errs/numbers/12ab", Some(ADMIN)).await;
    assert_eq!(err_of(&r), e(400, "invalid_field", Some("number")));
    let r = c
        .get(
            &format!("/v1/pools/errs/numbers/{}/route", enc(X1)),
            Some(OPS),
        )
        .await;
    assert_eq!(err_of(&r), e(400, "missing_field", Some("caller")));
    let r = c.get("/v1/audit?limit=0", Some(ADMIN)).await;
    assert_eq!(err_of(&r), e(400, "invalid_field", Some("limit")));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn imports_report_bad_entries_by_line_or_index() {
    let srv = start(memory()).await;
    let c = &srv.client;
    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "imp", "country": 86}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["grace_s"], 72 * 3600);
    assert_eq!(r.json()["cooling_s"], 24 * 3600);
    assert_eq!(r.json()["max_bindings_per_number"], 200);

    let csv = "number,area,voice,sms\n+8617000000011,sh,true,true\n+86170abc,sh,,\n170 0000 0012,bj,1,0\n+8617000000011,sh,,\n";
    let r = c
        .post_raw("/v1/pools/imp/numbers", Some(ADMIN), "text/csv", csv)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["added"], 2, "{j}");
    assert_eq!(j["skipped"], 1, "{j}");
    let errors = j["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{j}");
    assert_eq!(errors[0]["line"], 3);
    assert!(errors[0].get("index").is_none());

    let r = c
        .post(
            "/v1/pools/imp/numbers",
            Some(ADMIN),
            &json!({"numbers": [{"number": "+8617000000013", "area": "gz", "sms": false},
                                 {"number": 17000000014u64},
                                 {"number": "+8617000000015", "area": "bad area"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["added"], 1);
    let idx: Vec<u64> = j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![1, 2]);

    let s = c.get("/v1/pools/imp", Some(OPS)).await.json();
    assert_eq!(s["numbers"], 3);
    let r = c
        .post_raw(
            "/v1/pools/imp/numbers",
            Some(ADMIN),
            "text/csv",
            "colour\nred\n",
        )
        .await;
    assert_eq!(err_of(&r), e(400, "invalid_csv", None));
    let r = c
        .post_raw(
            "/v1/pools/imp/numbers",
            Some(ADMIN),
            "application/xml",
            "<a/>",
        )
        .await;
    assert_eq!(err_of(&r), e(415, "unsupported_media_type", None));
    let r = c
        .post(
            "/v1/pools/nope/numbers",
            Some(ADMIN),
            &json!({"numbers": []}),
        )
        .await;
    assert_eq!(err_of(&r), e(404, "pool_not_found", None));
    let pools = c.get("/v1/pools", Some(OPS)).await.json();
    assert_eq!(pools["pools"][0]["name"], "imp");
    srv.stop().await.unwrap();
}

/// Sends a JSON body of about `size` bytes with chunked transfer encoding over a raw
/// socket and returns the whole raw response.
async fn chunked_post(addr: std::net::SocketAddr, path: &str, key: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 8192];
    let mut sent = 0;
    while sent < size {
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if s.write_all(&frame).await.is_err() {
            break; // the server may answer and close before we finish
        }
        sent += chunk.len();
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Issue 6.7: a pool's country is enforced: its virtual numbers must be of it, and
/// so must the parties unless the pool allows foreign parties.
#[tokio::test]
async fn pool_country_is_enforced_for_numbers_and_parties() {
    let srv = start(memory()).await;
    let c = &srv.client;
    pool_with_numbers(c, "cn", &[X1]).await;
    let r = c
        .post(
            "/v1/pools/cn/numbers",
            Some(ADMIN),
            &json!({"numbers": [{"number": "+12025550123"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["added"], 0, "{}", r.text());
    assert_eq!(r.json()["errors"].as_array().unwrap().len(), 1);
    assert!(r.text().contains("country"), "{}", r.text());

    let foreign = "+12025550199";
    let r = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "cn", "shipment_id": "F1", "party_a": foreign,
                    "party_b": CUSTOMER, "ttl_s": 600}),
        )
        .await;
    assert_eq!(err_of(&r), e(400, "invalid_field", Some("party_a")));
    assert!(!r.text().contains("2025550199"), "{}", r.text());
    let r = c
        .post("/v1/bindings", Some(APP), &binding_req("cn", "F2"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &json!({"party_b": foreign}),
        )
        .await;
    assert_eq!(err_of(&r), e(400, "invalid_field", Some("party_b")));

    let r = c
        .post(
            "/v1/pools",
            Some(ADMIN),
            &json!({"name": "world", "country": 86, "allow_foreign_parties": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["allow_foreign_parties"], true);
    let r = c
        .post(
            "/v1/pools/world/numbers",
            Some(ADMIN),
            &json!({"numbers": [{"number": "+8617000000777"}]}),
        )
        .await;
    assert_eq!(r.json()["added"], 1, "{}", r.text());
    let r = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "world", "shipment_id": "F3", "party_a": foreign,
                    "party_b": CUSTOMER, "ttl_s": 600}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    srv.stop().await.unwrap();
}
