//! Unit tests of the memory store's internals, with a synthetic clock: index
//! bookkeeping (nothing leaks after reaping and cooling), batched reaping, the
//! audit ring and opaque party ids. `model` checks a long random run against a
//! brute-force reference model; `throughput` prints figures (run by hand).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;
mod throughput;

use super::state::{State, AUDIT_CAPACITY};
use super::MemoryStore;
use crate::bindings::{
    BindingId, BindingPatch, Capabilities, Created, NewBinding, NumberSpec, PoolSpec,
};
use crate::numbers::{NumberHasher, E164};
use crate::store::{AuditEntry, BindingStore, StoreError};

const T0: i64 = 1_800_000_000_000;

fn n(i: u64) -> E164 {
    E164::parse(&format!("+861700000{i:04}")).unwrap()
}

fn p(i: u64) -> E164 {
    E164::parse(&format!("+861390000{i:04}")).unwrap()
}

fn spec(name: &str, cooling_s: u64, grace_s: u64, cap: u32) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        country: 86,
        grace_s,
        cooling_s,
        max_bindings_per_number: cap,
        allow_foreign_parties: false,
        extensions: false,
        extension_len: crate::bindings::DEFAULT_EXTENSION_LEN,
    }
}

fn numbers(range: std::ops::Range<u64>, area: Option<&str>) -> Vec<NumberSpec> {
    range
        .map(|i| NumberSpec {
            number: n(i),
            area: area.map(str::to_owned),
            capabilities: Capabilities::default(),
        })
        .collect()
}

fn new(pool: &str, ship: &str, a: &E164, b: &E164, exp: i64) -> NewBinding {
    NewBinding {
        pool: pool.into(),
        shipment_id: ship.into(),
        party_a: a.clone(),
        party_b: b.clone(),
        expires_at: exp,
        area: None,
        extension: None,
    }
}

fn check(st: &State, now: i64, purged: bool) {
    for pool in st.pools.values() {
        pool.check(&st.bindings, now, purged);
    }
}

#[test]
fn reaping_and_cooling_leave_no_bookkeeping_behind() {
    let mut st = State::default();
    st.create_pool(spec("p", 60, 10, 5)).unwrap();
    st.import_numbers("p", numbers(0..2, None)).unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let c = st
            .create_binding(
                new("p", &format!("s{i}"), &p(2 * i), &p(2 * i + 1), T0 + 1000),
                T0,
            )
            .unwrap();
        ids.push(c.binding().id);
    }
    // Hand one over and delete another before expiry.
    st.update_binding(
        ids[0],
        BindingPatch {
            party_a: Some(p(100)),
            ..Default::default()
        },
        T0 + 10,
    )
    .unwrap();
    st.delete_binding(ids[1], T0 + 20).unwrap();
    check(&st, T0 + 20, false);
    // Expired at T0 + 1000 (now == expires_at is expired); one was deleted.
    assert_eq!(st.reap(T0 + 999), 0);
    assert_eq!(st.reap(T0 + 1000), 2);
    check(&st, T0 + 1000, true);
    let pool = &st.pools["p"];
    assert_eq!(
        pool.cooling_count(),
        7,
        "4 ended bindings' parties + 1 handover"
    );
    assert!(st.bindings.is_empty());
    // Cooling of the handover (T0 + 10) and the deletion (T0 + 20) ends first.
    st.reap(T0 + 20 + 60_000);
    assert_eq!(st.pools["p"].cooling_count(), 4);
    st.reap(T0 + 1000 + 60_000);
    check(&st, T0 + 1000 + 60_000, true);
    assert_eq!(st.pools["p"].footprint(), 0, "every index is empty again");
}

#[test]
fn reap_counts_only_expired_bindings_and_keeps_routes_of_live_ones() {
    let mut st = State::default();
    st.create_pool(spec("p", 0, 10, 5)).unwrap();
    st.import_numbers("p", numbers(0..1, None)).unwrap();
    let short = st
        .create_binding(new("p", "a", &p(1), &p(2), T0 + 100), T0)
        .unwrap();
    let long = st
        .create_binding(new("p", "b", &p(3), &p(4), T0 + 10_000), T0)
        .unwrap();
    assert_eq!(st.reap(T0 + 5000), 1);
    check(&st, T0 + 5000, true);
    assert!(st.route("p", &n(0), &p(1), T0 + 5000).is_none());
    let r = st.route("p", &n(0), &p(3), T0 + 5000).unwrap();
    assert_eq!((r.binding_id, r.callee), (long.binding().id, p(4)));
    // With no cooling, the first pair may take the number again at once.
    let again = st
        .create_binding(new("p", "a", &p(1), &p(2), T0 + 20_000), T0 + 5000)
        .unwrap();
    assert!(matches!(again, Created::New(_)));
    assert_ne!(again.binding().id, short.binding().id);
    check(&st, T0 + 5000, true);
}

#[test]
fn reaping_in_batches_ends_where_one_reap_would() {
    let mut st = State::default();
    st.create_pool(spec("p", 1, 10, 100)).unwrap();
    st.create_pool(spec("q", 1, 10, 100)).unwrap();
    st.import_numbers("p", numbers(0..2, None)).unwrap();
    st.import_numbers("q", numbers(2..4, None)).unwrap();
    for i in 0..30 {
        let pool = if i % 2 == 0 { "p" } else { "q" };
        st.create_binding(
            new(
                pool,
                &format!("s{i}"),
                &p(2 * i),
                &p(2 * i + 1),
                T0 + 100 + i as i64,
            ),
            T0,
        )
        .unwrap();
    }
    let now = T0 + 5000;
    let (mut total, mut rounds) = (0, 0);
    loop {
        let (n, done) = st.reap_some(now, 7);
        check(&st, now, done);
        total += n;
        rounds += 1;
        if done {
            break;
        }
    }
    assert_eq!(total, 30);
    assert!(rounds >= 5, "the budget was respected ({rounds} rounds)");
    // Cooling (1 s) has passed too: everything is gone.
    assert_eq!(st.pools["p"].footprint() + st.pools["q"].footprint(), 0);
}

#[tokio::test]
async fn store_reap_returns_every_expired_binding_across_batches() {
    let store = MemoryStore::new();
    store.create_pool(spec("p", 0, 10, 10_000)).await.unwrap();
    store
        .import_numbers("p", numbers(0..1, None))
        .await
        .unwrap();
    for i in 0..3000u64 {
        store
            .create_binding(
                new("p", &format!("s{i}"), &p(2 * i), &p(2 * i + 1), T0 + 10),
                T0,
            )
            .await
            .unwrap();
    }
    assert_eq!(store.reap(T0 + 10).await.unwrap(), 3000);
    let stats = store.pool_stats("p", T0 + 10).await.unwrap();
    assert_eq!((stats.live_bindings, stats.cooling), (0, 0));
}

#[test]
fn busiest_parties_are_the_top_ten_by_live_bindings() {
    let hasher = NumberHasher::new(&[9u8; 32]).unwrap();
    let mut st = State::default();
    st.create_pool(spec("p", 0, 10, 1000)).unwrap();
    st.import_numbers("p", numbers(0..12, None)).unwrap();
    // Courier k (k = 1..=12) has k bindings, each with its own customer.
    let mut customer = 1000;
    for k in 1..=12u64 {
        for j in 0..k {
            customer += 1;
            st.create_binding(
                new("p", &format!("s{k}-{j}"), &p(k), &p(customer), T0 + 60_000),
                T0,
            )
            .unwrap();
        }
    }
    let stats = st.pool_stats("p", T0, &hasher).unwrap();
    assert_eq!(stats.live_bindings, 78);
    let counts: Vec<u64> = stats
        .busiest_parties
        .iter()
        .map(|p| p.live_bindings)
        .collect();
    assert_eq!(counts, vec![12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    let top = hex::encode(&hasher.hash(&p(12))[..8]);
    assert_eq!(stats.busiest_parties[0].party, top);
}

#[test]
fn audit_ring_keeps_the_newest_entries() {
    let mut st = State::default();
    for i in 0..AUDIT_CAPACITY + 5 {
        st.append_audit(AuditEntry {
            at: i as i64,
            actor: "a".into(),
            role: "auditor".into(),
            action: "binding.read_unmasked".into(),
            target: i.to_string(),
            ..Default::default()
        });
    }
    let all = st.read_audit(usize::MAX);
    assert_eq!(all.len(), AUDIT_CAPACITY);
    assert_eq!(all[0].at, (AUDIT_CAPACITY + 4) as i64);
    assert_eq!(all[AUDIT_CAPACITY - 1].at, 5);
}

#[tokio::test]
async fn opaque_party_ids_come_from_the_given_hasher() {
    let hasher = NumberHasher::new(&[3u8; 32]).unwrap();
    let store = MemoryStore::with_hasher(hasher.clone());
    store.create_pool(spec("p", 0, 10, 5)).await.unwrap();
    store
        .import_numbers("p", numbers(0..1, None))
        .await
        .unwrap();
    store
        .create_binding(new("p", "s", &p(1), &p(2), T0 + 1000), T0)
        .await
        .unwrap();
    let stats = store.pool_stats("p", T0).await.unwrap();
    let mut ids: Vec<String> = stats.busiest_parties.into_iter().map(|p| p.party).collect();
    ids.sort();
    let mut want = vec![
        hex::encode(&hasher.hash(&p(1))[..8]),
        hex::encode(&hasher.hash(&p(2))[..8]),
    ];
    want.sort();
    assert_eq!(ids, want);
}
