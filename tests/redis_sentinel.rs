//! maskline on a Sentinel-monitored Redis (`redis+sentinel://`; master, replica
//! and sentinel on loopback, see `tests/sentinel_support`): the store finds the
//! master through the sentinel, and after the master dies it answers
//! `Unavailable` (the API's 503) without hanging until the sentinel promotes the
//! replica, then works again, binding data included, without a restart. The
//! store contract itself runs through Sentinel in `store_contract.rs`
//! (`redis_sentinel::*`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sentinel_support;

use std::time::{Duration, Instant};

use maskline::bindings::{now_ms, Created, NewBinding, NumberSpec};
use maskline::numbers::{NumberHasher, Sealer, E164};
use maskline::store::redis::{RedisOptions, RedisStore};
use maskline::store::{BindingStore, StoreError};

fn e164(s: &str) -> E164 {
    E164::parse(s).unwrap()
}

/// A store on `set` (through its sentinel) with `options`.
async fn store_on(set: &sentinel_support::Sentinel, options: RedisOptions) -> RedisStore {
    RedisStore::connect_with(
        &set.url(),
        NumberHasher::new(&[3u8; 32]).unwrap(),
        Sealer::random(),
        options,
    )
    .await
    .unwrap()
}

/// A new pool (name starting `tag`) holding one virtual number; its name and X.
async fn pool_with_one_number(store: &RedisStore, tag: &str) -> (String, String) {
    let pool = common::unique(tag);
    store
        .create_pool(common::pool_spec(&pool, 200))
        .await
        .unwrap();
    let x = common::random_e164("+86171");
    let out = store
        .import_numbers(
            &pool,
            vec![NumberSpec {
                number: e164(&x),
                area: None,
                capabilities: Default::default(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(out.added, 1);
    (pool, x)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_followed_without_a_restart_and_keeps_replicated_bindings() {
    if !sentinel_support::available() {
        return;
    }
    let set = sentinel_support::Sentinel::start();
    let store = store_on(
        &set,
        RedisOptions {
            timeout: Duration::from_millis(1500),
            ..RedisOptions::default()
        },
    )
    .await;
    let (pool, x) = pool_with_one_number(&store, "sent").await;
    let (a, b) = (
        e164(&common::random_e164("+86138")),
        e164(&common::random_e164("+86139")),
    );
    let req = |shipment: &str| NewBinding {
        pool: pool.clone(),
        shipment_id: shipment.into(),
        party_a: a.clone(),
        party_b: b.clone(),
        expires_at: now_ms() + 3_600_000,
        area: None,
        extension: None,
    };
    let Created::New(first) = store.create_binding(req("S1"), now_ms()).await.unwrap() else {
        panic!("not new");
    };
    let vx = e164(&x);
    let routed = store
        .route(&pool, &vx, &a, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(routed.callee, b);

    // The binding reaches the replica before the master dies.
    let master = set.master().unwrap();
    assert_eq!(master, set.ports[0]);
    sentinel_support::cli(master, &["wait", "1", "2000"]);
    set.kill(master);

    // Every call answers within its timeout; the relay follows the promotion.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut unavailable = 0;
    let route = loop {
        let t = Instant::now();
        let r = store.route(&pool, &vx, &a, now_ms()).await;
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "a call hung for {:?}",
            t.elapsed()
        );
        match r {
            Ok(Some(route)) => break route,
            Ok(None) => panic!("the binding was lost in the failover"),
            Err(StoreError::Unavailable(_)) => unavailable += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
        assert!(Instant::now() < deadline, "no promotion within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(unavailable > 0, "the dead master was never noticed");
    assert_eq!(route.callee, b);
    assert_eq!(route.binding_id, first.id);
    assert_eq!(set.master(), Some(set.ports[1]));

    // Writes go to the promoted replica.
    let (c, d) = (
        e164(&common::random_e164("+86137")),
        e164(&common::random_e164("+86136")),
    );
    let again = store
        .create_binding(
            NewBinding {
                party_a: d.clone(),
                party_b: c.clone(),
                ..req("S2")
            },
            now_ms(),
        )
        .await
        .unwrap();
    assert!(matches!(again, Created::New(_)), "{again:?}");
    assert_eq!(
        store
            .route(&pool, &vx, &c, now_ms())
            .await
            .unwrap()
            .unwrap()
            .callee,
        d
    );
    store.delete_binding(first.id, now_ms()).await.unwrap();
    assert!(store
        .route(&pool, &vx, &a, now_ms())
        .await
        .unwrap()
        .is_none());
}

/// With `replica_ack = 1` through Sentinel (a master with one replica), a new
/// binding and its idempotent retry are answered once the replica holds the
/// binding: the replica has the record the moment the store answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_ack_answers_once_the_replica_holds_the_binding() {
    let Some(set) = sentinel_support::shared() else {
        return;
    };
    let store = store_on(
        set,
        RedisOptions {
            replica_ack: 1,
            ..RedisOptions::default()
        },
    )
    .await;
    let (pool, _) = pool_with_one_number(&store, "ack").await;
    let req = NewBinding {
        pool: pool.clone(),
        shipment_id: "A1".into(),
        party_a: e164(&common::random_e164("+86138")),
        party_b: e164(&common::random_e164("+86139")),
        expires_at: now_ms() + 3_600_000,
        area: None,
        extension: None,
    };
    let Created::New(b) = store.create_binding(req.clone(), now_ms()).await.unwrap() else {
        panic!("not new");
    };
    // The record's hash (`{pool}s` + 2 bytes of the shipment hash) on the replica.
    let replica = set.ports[1];
    let keys = sentinel_support::cli(replica, &["keys", &format!("{{{pool}}}s*")]);
    assert_eq!(
        keys.lines().count(),
        1,
        "the replica holds the record: {keys}"
    );
    let Created::Existing(again) = store.create_binding(req, now_ms()).await.unwrap() else {
        panic!("a retry of the same shipment is not a new binding");
    };
    assert_eq!(again.id, b.id);
}

/// With `replica_ack = 1` a new pool is answered only once a replica holds it
/// (its settings, the registry): through Sentinel the replica has the pool the
/// moment the store answers; on a Redis without a replica the answer is
/// `Unavailable` (HTTP 503), never a pool only one node holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_ack_applies_to_a_new_pool() {
    let Some(set) = sentinel_support::shared() else {
        return;
    };
    let options = RedisOptions {
        replica_ack: 1,
        ..RedisOptions::default()
    };
    let store = store_on(set, options.clone()).await;
    let pool = common::unique("ackpool");
    store
        .create_pool(common::pool_spec(&pool, 10))
        .await
        .unwrap();
    let replica = set.ports[1];
    assert_eq!(
        sentinel_support::cli(replica, &["exists", &format!("{{{pool}}}m")]).trim(),
        "1",
        "the replica holds the pool's settings"
    );
    assert_eq!(
        sentinel_support::cli(replica, &["hexists", "ml:pools", &pool]).trim(),
        "1",
        "the replica holds the pool's registry entry"
    );

    let lone = RedisStore::connect_with(
        &common::redis_url(),
        NumberHasher::new(&[3u8; 32]).unwrap(),
        Sealer::random(),
        RedisOptions {
            timeout: Duration::from_millis(400),
            ..options
        },
    )
    .await
    .unwrap();
    let e = lone
        .create_pool(common::pool_spec(&common::unique("ackpool"), 10))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Unavailable(m) if m.contains("0 of 1 replicas")),
        "{e:?}"
    );
}
