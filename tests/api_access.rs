//! Who may do what: API keys (401), roles (403), audited reveals, and per-key rate
//! limits (429 with Retry-After), over real HTTP against the in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use api_support::*;
use hyper::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn keys_and_roles_are_enforced() {
    let srv = start(memory()).await;
    let c = &srv.client;
    pool_with_numbers(c, "roles", &[X1, X2]).await;
    let b = c
        .post("/v1/bindings", Some(APP), &binding_req("roles", "R1"))
        .await
        .json();
    let id = b["id"].as_str().unwrap().to_owned();
    let x = b["number"].as_str().unwrap().to_owned();

    // 401: missing, wrong scheme, unknown key — JSON error with WWW-Authenticate.
    for auth in [
        None,
        Some("Basic YWRtaW4="),
        Some("Bearer wrong-key"),
        Some("Bearer"),
    ] {
        let resp = c
            .send_auth(Method::GET, "/v1/pools", auth, None, vec![])
            .await;
        assert_eq!(err_of(&resp), e(401, "unauthorized", None), "{auth:?}");
        assert_eq!(resp.header("www-authenticate").as_deref(), Some("Bearer"));
    }

    let route_path = format!(
        "/v1/pools/roles/numbers/{}/route?caller={}",
        enc(&x),
        enc(COURIER)
    );
    // (method, path, body, roles that may)
    let cases: Vec<(Method, String, Option<Value>, &[&str])> = vec![
        (
            Method::GET,
            "/v1/pools".into(),
            None,
            &["ops", "admin", "auditor"],
        ),
        (
            Method::GET,
            "/v1/pools/roles".into(),
            None,
            &["ops", "admin", "auditor"],
        ),
        (
            Method::POST,
            "/v1/pools".into(),
            Some(json!({"name": "roles", "country": 86})),
            &["admin"],
        ),
        (
            Method::POST,
            "/v1/pools/roles/numbers".into(),
            Some(json!({"numbers": []})),
            &["admin"],
        ),
        (
            Method::DELETE,
            format!("/v1/pools/roles/numbers/{}", enc("+8617099999999")),
            None,
            &["admin"],
        ),
        (
            Method::GET,
            route_path.clone(),
            None,
            &["ops", "admin", "auditor"],
        ),
        (
            Method::GET,
            format!("/v1/bindings/{id}"),
            None,
            &["app", "ops", "admin", "auditor"],
        ),
        (
            Method::GET,
            "/v1/bindings?shipment_id=R1".into(),
            None,
            &["app", "ops", "admin", "auditor"],
        ),
        (
            Method::POST,
            "/v1/bindings".into(),
            Some(binding_req("roles", "R1")),
            &["app", "admin"],
        ),
        (
            Method::PATCH,
            format!("/v1/bindings/{id}"),
            Some(json!({"party_b": CUSTOMER})),
            &["app", "admin"],
        ),
        (
            Method::POST,
            format!("/v1/bindings/{id}/delivered"),
            None,
            &["app", "admin"],
        ),
        (
            Method::GET,
            format!("/v1/bindings/{id}?reveal=true"),
            None,
            &["auditor"],
        ),
        (Method::GET, "/v1/audit".into(), None, &["admin", "auditor"]),
        (
            Method::DELETE,
            "/v1/bindings/0190b6a0-0000-7000-8000-000000000000".into(),
            None,
            &["app", "admin"],
        ),
    ];
    for (method, path, body, allowed) in cases {
        for (role, key) in [
            ("app", APP),
            ("ops", OPS),
            ("admin", ADMIN),
            ("auditor", AUDITOR),
        ] {
            let (ct, bytes) = match &body {
                Some(v) => (Some("application/json"), serde_json::to_vec(v).unwrap()),
                None => (None, vec![]),
            };
            let r = c.send(method.clone(), &path, Some(key), ct, bytes).await;
            if allowed.contains(&role) {
                assert_ne!(r.status, 403, "{role} {method} {path}: {}", r.text());
                assert_ne!(r.status, 401, "{role} {method} {path}");
            } else {
                assert_eq!(
                    err_of(&r),
                    e(403, "forbidden", None),
                    "{role} {method} {path}"
                );
            }
        }
        // No key at all: 401 on every /v1 route but the OpenAPI document.
        let r = c.send(method.clone(), &path, None, None, vec![]).await;
        assert_eq!(r.status, 401, "{method} {path}");
    }
    // Open endpoints.
    assert_eq!(c.get("/healthz", None).await.status, 200);
    assert_eq!(c.get("/readyz", None).await.status, 200);
    assert_eq!(c.get("/metrics", None).await.status, 200);
    assert_eq!(c.get("/v1/openapi.json", None).await.status, 200);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn reveal_is_audited_before_it_is_answered() {
    let flaky = FlakyStore::new(memory());
    let srv = start(flaky.clone()).await;
    let c = &srv.client;
    pool_with_numbers(c, "rev", &[X1]).await;
    let id = c
        .post("/v1/bindings", Some(APP), &binding_req("rev", "V1"))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/bindings/{id}?reveal=true");

    // Not an auditor: refused, nothing audited.
    for key in [APP, OPS, ADMIN] {
        let r = c.get(&path, Some(key)).await;
        assert_eq!(err_of(&r), e(403, "forbidden", None));
        assert_no_party_in_clear(&r.text());
    }
    let audit = c.get("/v1/audit", Some(AUDITOR)).await.json();
    assert_eq!(audit["entries"], json!([]));

    // Auditor: clear parties, and the read is in the audit log.
    let r = c.get(&path, Some(AUDITOR)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["party_a"], COURIER);
    assert_eq!(r.json()["party_b"], CUSTOMER);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let audit = c.get("/v1/audit?limit=10", Some(ADMIN)).await;
    assert_eq!(audit.status, 200);
    let entries = audit.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], "audit-team");
    assert_eq!(entries[0]["role"], "auditor");
    assert_eq!(entries[0]["action"], "binding.read_unmasked");
    assert_eq!(entries[0]["target"], id.as_str());
    assert_no_party_in_clear(&audit.text());

    // reveal=false is an ordinary masked read and not audited.
    let r = c
        .get(&format!("/v1/bindings/{id}?reveal=false"), Some(AUDITOR))
        .await;
    assert_no_party_in_clear(&r.text());

    // Audit write fails: the reveal fails too, no number leaks.
    flaky.fail_audit.store(true, Ordering::SeqCst);
    let r = c.get(&path, Some(AUDITOR)).await;
    assert_eq!(err_of(&r), e(503, "store_unavailable", None));
    assert_no_party_in_clear(&r.text());
    flaky.fail_audit.store(false, Ordering::SeqCst);
    let n = c.get("/v1/audit", Some(AUDITOR)).await.json()["entries"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 1);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn rate_limit_per_key_answers_429_with_retry_after() {
    let mut cfg = config();
    cfg.rate_per_key_per_s = 1;
    cfg.rate_burst = 3;
    let srv = start_with(cfg, memory(), None).await;
    let c = &srv.client;
    for _ in 0..3 {
        assert_eq!(c.get("/v1/pools", Some(OPS)).await.status, 200);
    }
    let r = c.get("/v1/pools", Some(OPS)).await;
    assert_eq!(err_of(&r), e(429, "rate_limited", None));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Another key has its own allowance.
    assert_eq!(c.get("/v1/pools", Some(ADMIN)).await.status, 200);
    // After waiting, the key works again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(c.get("/v1/pools", Some(OPS)).await.status, 200);
    srv.stop().await.unwrap();
}
