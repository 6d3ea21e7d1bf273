//! The Redis store through failures: Redis down (fast `Unavailable`, recovery without
//! a new store), an unreachable Redis at start-up, and a backlog of expired bindings
//! with no reaper running. Each test that needs it runs its own `redis-server`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod redis_support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use maskline::bindings::{now_ms, Created};
use maskline::numbers::Sealer;
use maskline::store::redis::{RedisOptions, RedisStore};
use maskline::store::{BindingStore, StoreError};
use redis_support::{e164, hasher, new_binding, pool, req, store_at, OwnRedis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_unavailable_and_recovers_without_a_new_store() {
    let mut server = OwnRedis::start();
    let s = RedisStore::connect_with(
        &server.url(),
        hasher(),
        Sealer::random(),
        RedisOptions {
            timeout: Duration::from_millis(500),
            connections: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (p, _) = pool(&s, 2, 10).await;
    let (a, b) = (
        e164(common::random_e164("+86138")),
        e164(common::random_e164("+86139")),
    );
    let bd = new_binding(&s, req(&p, &a, &b, 3_600_000)).await;

    server.stop();
    for _ in 0..3 {
        let t = Instant::now();
        let e = s.route(&p, &bd.number, &a, now_ms()).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(e.is_retryable());
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
        let e = s
            .create_binding(
                req(&p, &a, &e164(common::random_e164("+86139")), 60_000),
                now_ms(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(matches!(s.ping().await, Err(StoreError::Unavailable(_))));
    }

    server.spawn();
    // The same store reconnects by itself (maybe after one failed call).
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.ping().await.is_err() {
        assert!(Instant::now() < deadline, "store did not reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = s
        .route(&p, &bd.number, &a, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.callee, b);
    // Scripts are reloaded into the restarted server on first use.
    let next = new_binding(
        &s,
        req(&p, &a, &e164(common::random_e164("+86139")), 60_000),
    )
    .await;
    assert_ne!(next.number, bd.number, "a holds the first number");
    assert_eq!(s.get_binding(bd.id, now_ms()).await.unwrap(), bd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_dead_redis_is_unavailable_quickly() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let e = RedisStore::connect_with(
        &format!("redis://127.0.0.1:{port}/"),
        hasher(),
        Sealer::random(),
        RedisOptions {
            timeout: Duration::from_millis(500),
            connections: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    let e = RedisStore::connect("not a url", hasher(), Sealer::random())
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref i) if i.field == "redis_url"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_expired_numbers_are_recounted_before_a_pool_is_called_exhausted() {
    // 80 numbers at cap 1, all taken by bindings that then expire: the load index
    // says "full" for every number until each is recounted, more than one
    // allocation's bounded batch (64). Allocation must still find a number.
    // A private Redis: other tests' reaping must not do the recount for us.
    let server = OwnRedis::start();
    let url = server.url();
    let s = Arc::new(store_at(&url).await);
    let (p, xs) = pool(s.as_ref(), 80, 1).await;
    let mut tasks = Vec::new();
    for _ in 0..80 {
        let s = s.clone();
        let r = req(
            &p,
            &e164(common::random_e164("+86138")),
            &e164(common::random_e164("+86139")),
            1_500,
        );
        tasks.push(tokio::spawn(
            async move { s.create_binding(r, now_ms()).await },
        ));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Ok(Created::New(_))));
    }
    let full = req(
        &p,
        &e164(common::random_e164("+86138")),
        &e164(common::random_e164("+86139")),
        60_000,
    );
    assert!(matches!(
        s.create_binding(full, now_ms()).await,
        Err(StoreError::PoolExhausted { .. })
    ));
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    // No reaper ran: the first allocations recount and find free numbers.
    for _ in 0..3 {
        let b = new_binding(
            s.as_ref(),
            req(
                &p,
                &e164(common::random_e164("+86138")),
                &e164(common::random_e164("+86139")),
                60_000,
            ),
        )
        .await;
        assert!(xs.contains(&b.number));
    }
    let st = s.pool_stats(&p, now_ms()).await.unwrap();
    assert_eq!(st.live_bindings, 3);
    assert_eq!(st.cooling, 160);
}
