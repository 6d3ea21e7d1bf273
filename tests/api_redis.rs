//! The HTTP API over the real Redis store: the core path (create, idempotent
//! retry, route view, delete, readiness), and what a client sees when Redis goes
//! away and comes back while the API keeps running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_support::*;
use common::OwnRedis;
use maskline::numbers::{NumberHasher, Sealer};
use maskline::store::redis::RedisStore;
use maskline::store::BindingStore;
use serde_json::json;

async fn redis_store(url: &str) -> Arc<dyn BindingStore> {
    let hasher = NumberHasher::new(&[7u8; 32]).unwrap();
    Arc::new(
        RedisStore::connect(url, hasher, Sealer::random())
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn create_route_delete_and_readyz_over_redis() {
    let store = redis_store(&common::redis_url()).await;
    let srv = start(store).await;
    let c = &srv.client;
    let pool = common::unique("api");
    let x = common::random_e164("+86170");
    let courier = common::random_e164("+86139");
    let customer = common::random_e164("+86137");
    pool_with_numbers(c, &pool, &[&x]).await;
    assert_eq!(c.get("/readyz", None).await.status, 200);

    let req = json!({"pool": pool, "shipment_id": "RS1", "party_a": courier,
                     "party_b": customer, "ttl_s": 600});
    let r = c.post("/v1/bindings", Some(APP), &req).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json();
    assert_eq!(b["number"], x.as_str());
    for party in [&courier, &customer] {
        assert!(!r.text().contains(party.trim_start_matches('+')));
    }
    let again = c.post("/v1/bindings", Some(APP), &req).await;
    assert_eq!((again.status, again.json()), (200, b.clone()));

    let route = format!(
        "/v1/pools/{pool}/numbers/{}/route?caller={}",
        enc(&x),
        enc(&customer)
    );
    let r = c.get(&route, Some(OPS)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["binding_id"], b["id"]);
    assert!(!r.text().contains(courier.trim_start_matches('+')));

    let r = c
        .delete(
            &format!("/v1/bindings/{}", b["id"].as_str().unwrap()),
            Some(APP),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = c.get(&route, Some(OPS)).await;
    assert_eq!((r.status, r.code().as_str()), (404, "no_route"));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn redis_down_is_503_and_the_api_recovers_without_restart() {
    let mut redis = OwnRedis::start();
    let store = redis_store(&redis.url()).await;
    let srv = start(store).await;
    let c = &srv.client;
    pool_with_numbers(c, "outage", &["+8617000000201", "+8617000000202"]).await;
    let req = |s: &str| {
        json!({"pool": "outage", "shipment_id": s, "party_a": "+8613900000201",
               "party_b": "+8613700000201", "ttl_s": 600})
    };
    assert_eq!(
        c.post("/v1/bindings", Some(APP), &req("O1")).await.status,
        201
    );

    redis.stop();
    let r = c.get("/readyz", None).await;
    assert_eq!((r.status, r.code().as_str()), (503, "store_unavailable"));
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    let started = Instant::now();
    let r = c.post("/v1/bindings", Some(APP), &req("O2")).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "store_unavailable"),
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a down store must fail fast"
    );
    let r = c.get("/v1/bindings?shipment_id=O1", Some(APP)).await;
    assert_eq!(r.status, 503);
    assert_eq!(c.get("/healthz", None).await.status, 200);

    redis.spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c.get("/readyz", None).await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "API did not recover: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = c.post("/v1/bindings", Some(APP), &req("O2")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Data written before the outage is still there.
    let r = c.get("/v1/bindings?shipment_id=O1", Some(APP)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["bindings"].as_array().unwrap().len(), 1);
    srv.stop().await.unwrap();
}

/// Issue 6.1: Redis loses its data while the relay runs (restart without
/// persistence, FLUSHALL, stale replica). New pools get the old pool ids again;
/// deliver/patch/delete must act on the live binding (not answer 404 while it still
/// routes), and `/readyz` must say the store lost its data while no pool exists.
#[tokio::test]
async fn after_redis_loses_its_data_bindings_can_still_be_ended_and_readyz_says_so() {
    let redis = OwnRedis::start();
    let store = redis_store(&redis.url()).await;
    let srv = start(store).await;
    let c = &srv.client;
    let req = |pool: &str, s: &str| {
        json!({"pool": pool, "shipment_id": s, "party_a": "+8613900000301",
               "party_b": "+8613700000301", "ttl_s": 600})
    };
    pool_with_numbers(c, "before", &["+8617000000301"]).await;
    let r = c
        .post("/v1/bindings", Some(APP), &req("before", "L1"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // The relay learns pool id -> name for this binding's pool.
    let r = c
        .post(
            &format!("/v1/bindings/{id}/delivered"),
            Some(APP),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.get("/readyz", None).await.status, 200);

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();

    // Every pool is gone: not ready, and it says why.
    let r = c.get("/readyz", None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("lost"));

    pool_with_numbers(c, "after", &["+8617000000302"]).await;
    let r = c.post("/v1/bindings", Some(APP), &req("after", "L2")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let route = format!(
        "/v1/pools/after/numbers/{}/route?caller={}",
        enc("+8617000000302"),
        enc("+8613700000301")
    );
    assert_eq!(c.get(&route, Some(OPS)).await.status, 200);
    let r = c
        .post(
            &format!("/v1/bindings/{id}/delivered"),
            Some(APP),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "deliver: {}", r.text());
    let r = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &json!({"party_a": "+8613900000399"}),
        )
        .await;
    assert_eq!(r.status, 200, "patch: {}", r.text());
    let r = c.delete(&format!("/v1/bindings/{id}"), Some(APP)).await;
    assert_eq!(r.status, 204, "delete: {}", r.text());
    let r = c.get(&route, Some(OPS)).await;
    assert_eq!((r.status, r.code().as_str()), (404, "no_route"));
    // Pools exist again: ready.
    assert_eq!(c.get("/readyz", None).await.status, 200);
    srv.stop().await.unwrap();
}

/// Issue 6.4: a create that times out (Redis stalled past the call timeout) may
/// still commit once Redis resumes, so a `503` does not mean "not created". The
/// documented remedy is the idempotent retry: the same request answers `200` with
/// the binding that was committed, never a second one.
#[tokio::test]
async fn a_retry_after_a_timed_out_create_returns_the_committed_binding() {
    let redis = OwnRedis::start();
    let hasher = NumberHasher::new(&[7u8; 32]).unwrap();
    let store = RedisStore::connect_with(
        &redis.url(),
        hasher,
        Sealer::random(),
        maskline::store::redis::RedisOptions {
            timeout: Duration::from_millis(300),
            connections: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let srv = start(Arc::new(store)).await;
    let c = &srv.client;
    pool_with_numbers(c, "stall", &["+8617000000401", "+8617000000402"]).await;
    let req = |s: &str, a: &str| {
        json!({"pool": "stall", "shipment_id": s, "party_a": a,
               "party_b": "+8613700000401", "ttl_s": 600})
    };
    // Warm up: the pool id and the script are known to the relay and Redis.
    let r = c
        .post("/v1/bindings", Some(APP), &req("S0", "+8613900000400"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let client = redis::Client::open(redis.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        // Reads go on (the relay reads the pool's settings first); the script that
        // creates the binding is a write and waits.
        .arg("WRITE")
        .query_async(&mut admin)
        .await
        .unwrap();
    let paused = Instant::now();
    let r = c
        .post("/v1/bindings", Some(APP), &req("S1", "+8613900000401"))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "store_unavailable"),
        "{}",
        r.text()
    );
    // Redis resumes and runs the script the relay gave up on.
    tokio::time::sleep(Duration::from_millis(1700).saturating_sub(paused.elapsed())).await;
    let r = c
        .get("/v1/bindings?shipment_id=S1&pool=stall", Some(APP))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let committed = r.json()["bindings"][0].clone();
    assert!(
        committed["id"].is_string(),
        "the create committed: {committed}"
    );

    let r = c
        .post("/v1/bindings", Some(APP), &req("S1", "+8613900000401"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), committed);
    srv.stop().await.unwrap();
}

/// Found by the API fuzzer: a `since` before 1970 made Redis refuse the stream
/// range (503); it reads from the start instead.
#[tokio::test]
async fn call_and_message_records_since_before_1970_over_redis() {
    let store = redis_store(&common::redis_url()).await;
    let client = redis::Client::open(common::redis_url()).unwrap();
    let records = Arc::new(maskline::events::RedisRecords::new(
        client,
        Duration::from_secs(3600),
        Duration::from_secs(2),
    ));
    let api = maskline::api::Api::with_records(&config(), store, records, Some(metrics())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(api.serve(listener, async {
        let _ = rx.await;
    }));
    let c = Client {
        addr,
        tls: None,
        h2: false,
    };
    for list in ["/v1/calls", "/v1/messages"] {
        for since in [
            "1145-08-02T02:00:28Z",
            "1970-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
        ] {
            let r = c.get(&format!("{list}?since={since}"), Some(APP)).await;
            assert_eq!(r.status, 200, "{list} since {since}: {}", r.text());
        }
    }
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
