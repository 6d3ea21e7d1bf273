//! maskline on a real Redis Cluster (3 masters, 3 replicas on loopback; see
//! `tests/cluster_support`): several relays on one cluster, and what clients see
//! when a master dies mid-load. The store contract itself runs on the cluster in
//! `store_contract.rs` (`redis_cluster::*`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod cluster_support;
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_support::*;
use cluster_support::Cluster;
use maskline::bindings::{now_ms, Created, NewBinding, NumberSpec};
use maskline::numbers::{NumberHasher, Sealer, E164};
use maskline::store::redis::{RedisOptions, RedisStore};
use maskline::store::{BindingStore, StoreError};
use serde_json::json;

fn hasher() -> NumberHasher {
    NumberHasher::new(&[9u8; 32]).unwrap()
}

async fn relay(c: &Cluster, sealer: &Sealer, options: RedisOptions) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::connect_cluster(&c.seeds(), hasher(), sealer.clone(), options)
            .await
            .unwrap(),
    )
}

fn e164(s: &str) -> E164 {
    E164::parse(s).unwrap()
}

fn numbers(n: usize, prefix: &str) -> Vec<String> {
    let mut set = HashSet::new();
    while set.len() < n {
        set.insert(common::random_e164(prefix));
    }
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort();
    v
}

/// Two relays (two store instances, each its own connections) allocate from one
/// pool at once, while both run the reaper: the AXB invariant holds (no party gets
/// the same X twice), no number goes over its cap, and the pool fills exactly,
/// checked afterwards from the store's own data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_allocate_concurrently_and_keep_the_invariant() {
    let Some(cluster) = cluster_support::shared() else {
        return;
    };
    let sealer = Sealer::random();
    let relays = [
        relay(cluster, &sealer, RedisOptions::default()).await,
        relay(cluster, &sealer, RedisOptions::default()).await,
    ];
    let pool = common::unique("two");
    let cap = 3u32;
    relays[0]
        .create_pool(common::pool_spec(&pool, cap))
        .await
        .unwrap();
    let xs = numbers(8, "+86170");
    let out = relays[1]
        .import_numbers(
            &pool,
            xs.iter()
                .map(|x| NumberSpec {
                    number: e164(x),
                    area: None,
                    capabilities: Default::default(),
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(out.added, 8);
    let couriers: Vec<String> = numbers(5, "+86139");
    let stop = Arc::new(AtomicBool::new(false));
    let reapers: Vec<_> = relays
        .iter()
        .map(|r| {
            let (r, stop) = (r.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    r.reap(now_ms()).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    // 5 couriers × 12 attempts, alternating relays, all at once: more than the
    // 8 numbers × cap 3 = 24 bindings the pool holds.
    let mut tasks = Vec::new();
    for (i, courier) in couriers.iter().enumerate() {
        for k in 0..12 {
            let r = relays[(i + k) % 2].clone();
            let req = NewBinding {
                pool: pool.clone(),
                shipment_id: common::unique("S"),
                party_a: e164(courier),
                party_b: e164(&common::random_e164("+86137")),
                expires_at: now_ms() + 600_000,
                area: None,
                extension: None,
            };
            tasks.push(tokio::spawn(async move {
                r.create_binding(req, now_ms()).await
            }));
        }
    }
    let mut made = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(Created::New(b)) => made.push(b),
            Ok(Created::Existing(b)) => panic!("unique shipments, got existing {}", b.id),
            Err(StoreError::PoolExhausted { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in reapers {
        r.await.unwrap();
    }
    assert_eq!(made.len(), 24, "the pool fills exactly: 8 numbers × cap 3");
    // From the store's own data: every binding read back (through either relay),
    // no (courier, X) twice, no number over its cap.
    let mut pairs = HashSet::new();
    let mut per_x: HashMap<String, u32> = HashMap::new();
    for b in &made {
        let read = relays[1].get_binding(b.id, now_ms()).await.unwrap();
        assert_eq!(read.number, b.number);
        assert!(
            pairs.insert((read.party_a.clone(), read.number.clone())),
            "a courier got the same number twice"
        );
        *per_x.entry(read.number.to_string()).or_default() += 1;
    }
    assert!(per_x.values().all(|n| *n <= cap));
    let stats = relays[0].pool_stats(&pool, now_ms()).await.unwrap();
    assert_eq!(stats.live_bindings, 24);
    assert!(stats
        .per_number
        .iter()
        .all(|n| n.live_bindings <= cap as u64));
}

/// What one relay's clients saw during the failover.
#[derive(Default)]
struct Seen {
    /// 201s: (number, courier).
    created: Vec<(String, String)>,
    /// 503s (each with `Retry-After`).
    unavailable: usize,
    /// When the first 503 after the crash was seen.
    first_unavailable: Option<Instant>,
    /// 201s of requests sent after that (a request sent before it may have been
    /// acknowledged by the old master and its replica before the crash).
    created_after: usize,
    /// Slowest answer.
    slowest: Duration,
    /// Answers other than 201/503: status, body, and when (relative to the crash).
    unexpected: Vec<String>,
}

/// A master dies (SIGKILL) under allocation load from two relays. Its replica is
/// promoted; meanwhile the API answers `503` with `Retry-After` and never hangs;
/// afterwards both relays allocate and route again without a restart. The relay
/// with `replica_ack = 1` answered `201` only for bindings a replica held, so every
/// one of them still routes after the failover; for the relay without it the test
/// prints how many were lost. With `replica_ack = 1` the promoted master has no
/// replica left, so that relay keeps answering `503` for the pool until the dead
/// node is back (it rejoins as the new master's replica): it never answers `201`
/// for a binding only one node holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_dies_mid_load_503_then_recovery_and_acked_bindings_survive() {
    if !cluster_support::available() {
        return;
    }
    // The relay's error log is captured with the test's output: a failure shows
    // what the store saw (an `internal` reply hides it from the client).
    let _ = tracing_subscriber::fmt()
        .with_env_filter("maskline=warn")
        .with_test_writer()
        .try_init();
    let cluster = Cluster::start();
    let sealer = Sealer::random();
    let options = |ack| RedisOptions {
        timeout: Duration::from_millis(500),
        connections: 1,
        replica_ack: ack,
        ..RedisOptions::default()
    };
    let stores = [
        relay(&cluster, &sealer, options(0)).await,
        relay(&cluster, &sealer, options(1)).await,
    ];
    let mut srvs = Vec::new();
    for s in &stores {
        srvs.push(start(s.clone() as Arc<dyn BindingStore>).await);
    }
    // Two pools whose slots the same master serves: the one we kill.
    let masters_before = cluster.masters();
    let victim = masters_before[0];
    let mut pools = Vec::new();
    for i in 0.. {
        let name = format!("fo{i}");
        if cluster.master_of(&format!("{{{name}}}m")) == victim {
            pools.push(name);
            if pools.len() == 2 {
                break;
            }
        }
    }
    for (srv, pool) in srvs.iter().zip(&pools) {
        // With replica_ack = 1 a new pool is answered once a replica holds it:
        // on this busy box that can take longer than the 500 ms call timeout
        // (503). The pool then exists, and the retry says so (409).
        let mut unconfirmed = 0;
        loop {
            let r = srv
                .client
                .post(
                    "/v1/pools",
                    Some(ADMIN),
                    &json!({"name": pool, "country": 86, "cooling_s": 3600,
                            "max_bindings_per_number": 100_000}),
                )
                .await;
            match r.status {
                201 => break,
                409 if unconfirmed > 0 => break,
                503 if unconfirmed < 20 => {
                    unconfirmed += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => panic!("creating pool {pool}: {} {}", r.status, r.text()),
            }
        }
        let entries: Vec<_> = numbers(40, "+86170")
            .into_iter()
            .map(|n| json!({ "number": n }))
            .collect();
        let r = srv
            .client
            .post(
                &format!("/v1/pools/{pool}/numbers"),
                Some(ADMIN),
                &json!({ "numbers": entries }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The pools are set up (admin calls, not under test here) on both nodes of
    // the victim's slots before the crash: replication is asynchronous, and on a
    // busy box a pool written just now could still be only on the master.
    let replica = cluster
        .replica_of(victim)
        .expect("the victim master has a replica");
    for pool in &pools {
        assert!(
            cluster.replica_holds(replica, &format!("{{{pool}}}m"), Duration::from_secs(10)),
            "the victim's replica never got pool {pool}"
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let seen: Vec<Arc<Mutex<Seen>>> = (0..2).map(|_| Arc::default()).collect();
    let mut load = Vec::new();
    for (i, srv) in srvs.iter().enumerate() {
        for _ in 0..4 {
            let c = srv.client.clone();
            let (pool, stop, seen) = (pools[i].clone(), stop.clone(), seen[i].clone());
            let killed_at = killed_at.clone();
            load.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let courier = common::random_e164("+86139");
                    let req = json!({"pool": pool, "shipment_id": common::unique("F"),
                        "party_a": courier, "party_b": common::random_e164("+86137"),
                        "ttl_s": 600});
                    let t = Instant::now();
                    let r = tokio::time::timeout(
                        Duration::from_secs(5),
                        c.post("/v1/bindings", Some(APP), &req),
                    )
                    .await
                    .expect("the API never hangs while a master fails over");
                    let backoff = {
                        let mut s = seen.lock().unwrap();
                        s.slowest = s.slowest.max(t.elapsed());
                        match r.status {
                            201 => {
                                let number = r.json()["number"].as_str().unwrap().to_owned();
                                s.created.push((number, courier));
                                if s.first_unavailable.is_some_and(|f| t > f) {
                                    s.created_after += 1;
                                }
                                false
                            }
                            503 => {
                                assert!(
                                    r.header("retry-after").is_some(),
                                    "503 without Retry-After"
                                );
                                s.unavailable += 1;
                                if s.first_unavailable.is_none() && killed_at.get().is_some() {
                                    s.first_unavailable = Some(Instant::now());
                                }
                                true
                            }
                            other => {
                                let when = match killed_at.get() {
                                    Some(k) => format!("{:?} after the crash", k.elapsed()),
                                    None => "before the crash".into(),
                                };
                                s.unexpected.push(format!("{other} {when}: {}", r.text()));
                                true
                            }
                        }
                    };
                    if backoff {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
    }
    // Load first, then the crash.
    tokio::time::sleep(Duration::from_millis(800)).await;
    cluster.kill(victim);
    let t0 = Instant::now();
    killed_at.set(t0).unwrap();
    let mut restarted = false;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let recovered = seen.iter().all(|s| {
            let s = s.lock().unwrap();
            s.first_unavailable.is_some() && s.created_after >= 20
        });
        // The acknowledging relay needs a replica again: give the promoted master
        // a fresh one once the other relay recovered (the failover is over). (Not
        // the dead node restarted: it would come back claiming its old slots until
        // gossip corrects it, and a client refreshing its slot map from it in that
        // window reads its stale data.)
        if !restarted && seen[0].lock().unwrap().created_after >= 20 {
            assert_eq!(
                seen[1].lock().unwrap().created_after,
                0,
                "replica_ack = 1 answered 201 while the slot's master had no replica"
            );
            let promoted = cluster
                .masters()
                .into_iter()
                .find(|m| !masters_before.contains(m))
                .expect("a promoted replica");
            cluster.add_replica(promoted);
            restarted = true;
        }
        let strange = seen
            .iter()
            .any(|s| !s.lock().unwrap().unexpected.is_empty());
        if recovered || strange {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "no recovery within 40 s of the crash"
        );
    }
    let window = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    for (i, s) in seen.iter().enumerate() {
        let s = s.lock().unwrap();
        assert!(
            s.unexpected.is_empty(),
            "replica_ack={i}: answers other than 201/503 ({} of them; first ones: {:?}); \
             the cluster now:\n{}",
            s.unexpected.len(),
            &s.unexpected[..s.unexpected.len().min(5)],
            cluster.cli(cluster.masters()[0], &["cluster", "nodes"])
        );
    }
    cluster.wait_healthy(Duration::from_secs(20));

    // Every 201 of the relay with replica_ack = 1 still routes; count the others'.
    let mut lost = [0usize; 2];
    for (i, srv) in srvs.iter().enumerate() {
        let created = seen[i].lock().unwrap().created.clone();
        for (x, courier) in &created {
            let r = srv
                .client
                .get(
                    &format!(
                        "/v1/pools/{}/numbers/{}/route?caller={}",
                        pools[i],
                        enc(x),
                        enc(courier)
                    ),
                    Some(OPS),
                )
                .await;
            match r.status {
                200 => {}
                404 => lost[i] += 1,
                other => panic!("route: unexpected {other}: {}", r.text()),
            }
        }
        let s = seen[i].lock().unwrap();
        eprintln!(
            "replica_ack={i}: {} bindings answered 201, {} lost after the failover; {} \
             answers 503; slowest answer {:?}; recovered {:?} after the crash",
            s.created.len(),
            lost[i],
            s.unavailable,
            s.slowest,
            window
        );
    }
    assert_eq!(
        lost[1], 0,
        "with replica_ack = 1 no acknowledged binding is lost"
    );
    // Both relays work without a restart: a new binding, and it routes.
    for (srv, pool) in srvs.iter().zip(&pools) {
        let courier = common::random_e164("+86139");
        let r = srv
            .client
            .post(
                "/v1/bindings",
                Some(APP),
                &json!({"pool": pool, "shipment_id": "after", "party_a": courier,
                        "party_b": common::random_e164("+86137"), "ttl_s": 600}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(srv.client.get("/readyz", None).await.status, 200);
    }
    for srv in srvs {
        srv.stop().await.unwrap();
    }
}

/// FNV-1a of a number's digits mod n: the sub-pool the store puts it in
/// (`src/store/redis/subpools.rs`).
fn subpool_of_number(digits: &str, n: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in digits.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % n
}

/// A shipment's home sub-pool: its shipment hash (SHA-256 of pool, 0, id) mod n.
fn home_of_shipment(pool: &str, shipment: &str, n: u32) -> u32 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(pool.as_bytes());
    h.update([0u8]);
    h.update(shipment.as_bytes());
    let full = h.finalize();
    let mut sh = [0u8; 8];
    sh.copy_from_slice(&full[..8]);
    (u64::from_be_bytes(sh) % u64::from(n)) as u32
}

/// A pool of 3 sub-pools whose only number lives outside a shipment's home
/// sub-pool: the shipment falls back (claim recorded at home), and 16 identical
/// creates racing from two relays still make exactly one binding, which reads,
/// routes, conflicts and ends like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_falls_back_to_another_sub_pool_once_under_racing_retries() {
    let Some(cluster) = cluster_support::shared() else {
        return;
    };
    let sealer = Sealer::random();
    let options = RedisOptions {
        subpools: 3,
        ..RedisOptions::default()
    };
    let relays = [
        relay(cluster, &sealer, options.clone()).await,
        relay(cluster, &sealer, options).await,
    ];
    let pool = common::unique("sub");
    relays[0]
        .create_pool(common::pool_spec(&pool, 100))
        .await
        .unwrap();
    let x = numbers(1, "+86170").remove(0);
    let s = subpool_of_number(&x[1..], 3);
    relays[1]
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
    let shipment = (0..)
        .map(|i| format!("FB{i}"))
        .find(|id| home_of_shipment(&pool, id, 3) != s)
        .unwrap();
    let req = NewBinding {
        pool: pool.clone(),
        shipment_id: shipment.clone(),
        party_a: e164(&common::random_e164("+86139")),
        party_b: e164(&common::random_e164("+86137")),
        expires_at: now_ms() + 600_000,
        area: None,
        extension: None,
    };
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (r, req) = (relays[i % 2].clone(), req.clone());
            tokio::spawn(async move { r.create_binding(req, now_ms()).await.unwrap() })
        })
        .collect();
    let (mut new, mut ids) = (0, HashSet::new());
    for t in tasks {
        match t.await.unwrap() {
            Created::New(b) => {
                new += 1;
                ids.insert(b.id);
                assert_eq!(b.number.to_string(), e164(&x).to_string());
            }
            Created::Existing(b) => {
                ids.insert(b.id);
            }
        }
    }
    assert_eq!((new, ids.len()), (1, 1), "one binding for the shipment");
    let id = *ids.iter().next().unwrap();
    for r in &relays {
        let b = r.get_binding(id, now_ms()).await.unwrap();
        assert_eq!(b.shipment_id, shipment);
        let found = r
            .find_by_shipment(Some(&pool), &shipment, now_ms())
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        let route = r
            .route(&pool, &e164(&x), &req.party_a, now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(route.callee, req.party_b);
    }
    let mut other = req.clone();
    other.party_b = e164(&common::random_e164("+86137"));
    assert!(matches!(
        relays[1].create_binding(other, now_ms()).await,
        Err(StoreError::ShipmentConflict { existing }) if existing == id
    ));
    assert_eq!(
        relays[0]
            .pool_stats(&pool, now_ms())
            .await
            .unwrap()
            .live_bindings,
        1
    );
    relays[1].delete_binding(id, now_ms()).await.unwrap();
    assert!(relays[0]
        .route(&pool, &e164(&x), &req.party_a, now_ms())
        .await
        .unwrap()
        .is_none());
}

/// A shipment whose home sub-pool has no number falls back to a sub-pool that
/// has one *for its parties*: of two sub-pools tied on load, the first in order
/// holds only a number the courier already has, the second a free one. The
/// courier's shipment gets the free number, not "exhausted".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_sub_pool_has_a_number_for_the_parties() {
    let Some(cluster) = cluster_support::shared() else {
        return;
    };
    let sealer = Sealer::random();
    let options = RedisOptions {
        subpools: 3,
        ..RedisOptions::default()
    };
    let store = relay(cluster, &sealer, options).await;
    let pool = common::unique("fbp");
    store
        .create_pool(common::pool_spec(&pool, 100))
        .await
        .unwrap();
    // Home of the courier's second shipment: sub-pool `home`, with no number. One
    // number in each of the two others, `first` (tried first on a tie: the next
    // after `home`) and `second`.
    let shipment = |home: u32, tag: &str| {
        (0..)
            .map(|i| format!("{tag}{i}"))
            .find(|id| home_of_shipment(&pool, id, 3) == home)
            .unwrap()
    };
    let home = 0;
    let (first, second) = (1, 2);
    let number_in = |k: u32| {
        (0..)
            .map(|i| format!("+861700{:07}", 1000 + i))
            .find(|x| subpool_of_number(&x[1..], 3) == k)
            .unwrap()
    };
    let (x1, x2) = (number_in(first), number_in(second));
    let spec = |x: &str| NumberSpec {
        number: e164(x),
        area: None,
        capabilities: Default::default(),
    };
    store
        .import_numbers(&pool, vec![spec(&x1), spec(&x2)])
        .await
        .unwrap();
    // Creates a new binding for `ship`, or says why not.
    let bind = |ship: String, a: String| {
        let store = store.clone();
        let req = NewBinding {
            pool: pool.clone(),
            shipment_id: ship,
            party_a: e164(&a),
            party_b: e164(&common::random_e164("+86137")),
            expires_at: now_ms() + 600_000,
            area: None,
            extension: None,
        };
        async move {
            match store.create_binding(req, now_ms()).await? {
                Created::New(b) => Ok(b),
                other => panic!("expected a new binding: {other:?}"),
            }
        }
    };
    let courier = common::random_e164("+86139");
    // The courier holds x1 (a shipment at home in `first`); someone else holds x2:
    // both numbers carry one binding.
    let b1 = bind(shipment(first, "A"), courier.clone()).await.unwrap();
    assert_eq!(b1.number.to_string(), e164(&x1).to_string());
    let b2 = bind(shipment(second, "B"), common::random_e164("+86139"))
        .await
        .unwrap();
    assert_eq!(b2.number.to_string(), e164(&x2).to_string());
    // The courier's next shipment, at home in the empty sub-pool.
    let b3: Result<_, StoreError> = bind(shipment(home, "C"), courier).await;
    let b3 = b3.expect("a number is free for the courier in a third sub-pool");
    assert_eq!(b3.number.to_string(), e164(&x2).to_string());
}
