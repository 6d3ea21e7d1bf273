//! Redis-specific behaviour of `RedisStore`, beyond the shared store contract:
//! nothing personal at rest, the AXB invariant under concurrent relays, and what the
//! keys of a binding hold and how long.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod redis_support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use maskline::bindings::{now_ms, BindingPatch, Created};
use maskline::numbers::{Sealer, E164};
use maskline::store::redis::RedisStore;
use maskline::store::{AuditEntry, BindingStore, StoreError};
use redis::AsyncCommands;
use redis_support::{e164, hasher, new_binding, pool, raw, req, store_at};

/// Every key (and its value, read by type and as a DUMP) in the Redis at `url`.
async fn dump_everything(url: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = raw(url).await;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .unwrap();
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut out = Vec::new();
    for k in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        let mut value: Vec<u8> = Vec::new();
        let parts: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![c.get(&k).await.unwrap_or_default()],
            "hash" => {
                let m: Vec<Vec<u8>> = redis::cmd("HGETALL")
                    .arg(&k)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                m
            }
            "zset" => {
                let m: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                m
            }
            "set" => c.smembers(&k).await.unwrap_or_default(),
            "list" => c.lrange(&k, 0, -1).await.unwrap_or_default(),
            "stream" => {
                let v: redis::Value = redis::cmd("XRANGE")
                    .arg(&k)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                vec![format!("{v:?}").into_bytes()]
            }
            "none" => continue, // expired meanwhile
            other => panic!("unexpected key type {other}"),
        };
        for p in parts {
            value.extend_from_slice(&p);
            value.push(b'|');
        }
        let dump: Option<Vec<u8>> = redis::cmd("DUMP")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        value.extend(dump.unwrap_or_default());
        out.push((k, value));
    }
    out
}

/// Every form a number could leak in: E.164, digits, national part, BCD.
fn leak_forms(n: &E164) -> Vec<Vec<u8>> {
    let e = n.expose().to_owned();
    let digits = e[1..].to_owned();
    let national = digits[2..].to_owned();
    let bcd: Vec<u8> = digits
        .as_bytes()
        .chunks(2)
        .map(|c| ((c[0] - b'0') << 4) | c.get(1).map(|x| x - b'0').unwrap_or(0x0F))
        .collect();
    vec![
        e.into_bytes(),
        digits.into_bytes(),
        national.into_bytes(),
        bcd,
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_party_number_is_stored_in_any_form() {
    let url = common::redis_url();
    let s = store_at(&url).await;
    let (p, _) = pool(&s, 3, 10).await;
    let people: Vec<E164> = (0..8)
        .map(|_| e164(common::random_e164("+86139")))
        .collect();
    let b1 = new_binding(&s, req(&p, &people[0], &people[1], 3_600_000)).await;
    let b2 = new_binding(&s, req(&p, &people[0], &people[2], 3_600_000)).await;
    let b3 = new_binding(&s, req(&p, &people[3], &people[4], 3_600_000)).await;
    // Courier handover, customer change, extension, delivery, deletion, expiry.
    s.update_binding(
        b1.id,
        BindingPatch {
            party_a: Some(people[5].clone()),
            ..Default::default()
        },
        now_ms(),
    )
    .await
    .unwrap();
    s.update_binding(
        b2.id,
        BindingPatch {
            party_b: Some(people[6].clone()),
            expires_at: Some(now_ms() + 7_200_000),
            ..Default::default()
        },
        now_ms(),
    )
    .await
    .unwrap();
    s.mark_delivered(b2.id, now_ms()).await.unwrap();
    s.delete_binding(b3.id, now_ms()).await.unwrap();
    new_binding(&s, req(&p, &people[7], &people[3], 200)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.reap(now_ms()).await.unwrap();
    s.pool_stats(&p, now_ms()).await.unwrap();
    s.append_audit(AuditEntry {
        at: now_ms(),
        actor: "auditor".into(),
        role: "auditor".into(),
        action: "binding.read_unmasked".into(),
        target: b1.id.to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    // The store still answers with the real numbers...
    let r = s
        .route(&p, &b1.number, &people[5], now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.callee, people[1]);
    // ...but none of them is anywhere in Redis.
    let all = dump_everything(&url).await;
    assert!(
        all.iter().any(|(k, _)| contains(k, p.as_bytes())),
        "scan saw our pool"
    );
    for n in &people {
        for form in leak_forms(n) {
            for (k, v) in &all {
                assert!(
                    !contains(k, &form) && !contains(v, &form),
                    "a party number ({n}) appears in key {:?}",
                    String::from_utf8_lossy(k)
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_allocating_concurrently_keep_the_invariant() {
    const CAP: u32 = 8;
    const NUMBERS: usize = 6;
    let url = common::redis_url();
    let sealer = Sealer::random();
    let relays: Vec<Arc<dyn BindingStore>> = vec![
        Arc::new(
            RedisStore::connect(&url, hasher(), sealer.clone())
                .await
                .unwrap(),
        ),
        Arc::new(
            RedisStore::connect(&url, hasher(), sealer.clone())
                .await
                .unwrap(),
        ),
    ];
    let (p, xs) = pool(relays[0].as_ref(), NUMBERS, CAP).await;
    let couriers: Vec<E164> = (0..8)
        .map(|_| e164(common::random_e164("+86138")))
        .collect();
    let customers: Vec<E164> = (0..25)
        .map(|_| e164(common::random_e164("+86139")))
        .collect();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = relays[i % 2].clone();
        let r = req(
            &p,
            &couriers[i % couriers.len()],
            &customers[i % customers.len()],
            3_600_000,
        );
        tasks.push(tokio::spawn(
            async move { s.create_binding(r, now_ms()).await },
        ));
    }
    let mut made = Vec::new();
    let mut exhausted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Created::New(b)) => made.push(b),
            Err(StoreError::PoolExhausted { pool }) => {
                assert_eq!(pool, p);
                exhausted += 1;
            }
            other => panic!("unexpected result {other:?}"),
        }
    }
    assert_eq!(made.len() + exhausted, 200);
    assert!(
        made.len() <= NUMBERS * CAP as usize,
        "more than the pool holds"
    );
    // Each courier can hold each number once: at most 6 bindings per courier.
    let mut held = HashSet::new();
    let mut per_number: HashMap<E164, u32> = HashMap::new();
    for b in &made {
        *per_number.entry(b.number.clone()).or_default() += 1;
        for party in [&b.party_a, &b.party_b] {
            assert!(
                held.insert((party.clone(), b.number.clone())),
                "a party holds the same number twice"
            );
        }
        // Both relays route it, both ways.
        for s in &relays {
            let r = s
                .route(&p, &b.number, &b.party_a, now_ms())
                .await
                .unwrap()
                .unwrap();
            assert_eq!((r.binding_id, &r.callee), (b.id, &b.party_b));
        }
    }
    assert!(per_number.values().all(|n| *n <= CAP), "{per_number:?}");
    let st = relays[1].pool_stats(&p, now_ms()).await.unwrap();
    assert_eq!(st.live_bindings, made.len() as u64);
    for n in &st.per_number {
        assert!(xs.contains(&n.number));
        assert_eq!(
            n.live_bindings,
            u64::from(*per_number.get(&n.number).unwrap_or(&0))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_keys_expire_with_the_binding_and_its_cooling() {
    let url = common::redis_url();
    let s = store_at(&url).await;
    let (p, _) = pool(&s, 2, 10).await;
    let (a, b) = (
        e164(common::random_e164("+86138")),
        e164(common::random_e164("+86139")),
    );
    let ttl = 600_000;
    let bd = new_binding(&s, req(&p, &a, &b, ttl)).await;
    let mut c = raw(&url).await;
    let keys: Vec<Vec<u8>> = c.keys(format!("{{{p}}}*")).await.unwrap();
    let cooling = 3_600_000;
    let mut routes = 0;
    for k in &keys {
        let pttl: i64 = c.pttl(k).await.unwrap();
        let name = String::from_utf8_lossy(k).into_owned();
        let suffix = &k[p.len() + 2..];
        // The binding's own keys are its two route/hold keys: routing ends at expiry
        // (the value says so), the hold at expiry + cooling (the key's TTL).
        // Everything else is pool-level (settings, numbers, load indexes, small
        // record and binding-list shards whose entries are checked against expiry).
        if suffix.first() == Some(&b'r') {
            routes += 1;
            assert!(
                (ttl + cooling - 5_000..=ttl + cooling).contains(&pttl),
                "{name}: {pttl}"
            );
        }
    }
    assert_eq!(routes, 2, "{keys:?}");
    let r = s
        .route(&p, &bd.number, &a, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.expires_at, bd.expires_at);
    // Deleting ends routing now; the parties' holds expire after the cooling period.
    s.delete_binding(bd.id, now_ms()).await.unwrap();
    let keys: Vec<Vec<u8>> = c.keys(format!("{{{p}}}r*")).await.unwrap();
    assert_eq!(keys.len(), 2);
    for k in &keys {
        let pttl: i64 = c.pttl(k).await.unwrap();
        assert!((cooling - 5_000..=cooling).contains(&pttl), "{pttl}");
    }
    assert_eq!(s.route(&p, &bd.number, &a, now_ms()).await.unwrap(), None);
    assert!(s
        .find_by_shipment(Some(&p), &bd.shipment_id, now_ms())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_strips_sealed_numbers_from_expired_bindings() {
    let url = common::redis_url();
    let s = store_at(&url).await;
    let (p, _) = pool(&s, 1, 10).await;
    let (a, b) = (
        e164(common::random_e164("+86138")),
        e164(common::random_e164("+86139")),
    );
    let bd = new_binding(&s, req(&p, &a, &b, 300)).await;
    let mut c = raw(&url).await;
    let keys: Vec<Vec<u8>> = c.keys(format!("{{{p}}}r*")).await.unwrap();
    assert_eq!(keys.len(), 2);
    let sizes = |c: &mut redis::aio::MultiplexedConnection| {
        let (c, keys) = (c.clone(), keys.clone());
        async move {
            let mut c = c;
            let mut out = Vec::new();
            for k in &keys {
                let v: Vec<u8> = c.get(k).await.unwrap();
                out.push(v.len());
            }
            out
        }
    };
    // id (16) + until (6) + sealed callee (1 + 12 + 7 + 16).
    assert!(sizes(&mut c).await.iter().all(|n| *n > 22));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.route(&p, &bd.number, &a, now_ms()).await.unwrap(), None);
    // (Other tests reap concurrently, so the count may be theirs.)
    s.reap(now_ms()).await.unwrap();
    // The holds stay (the parties cool on X) but carry no number any more.
    assert_eq!(sizes(&mut c).await, vec![22, 22]);
    let st = s.pool_stats(&p, now_ms()).await.unwrap();
    assert_eq!((st.live_bindings, st.cooling), (0, 2));
}
