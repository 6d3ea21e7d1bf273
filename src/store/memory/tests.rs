//! Unit tests of the memory store's internals, with a synthetic clock: index
//! bookkeeping (nothing leaks after reaping and cooling), a randomized run checked
//! against a brute-force reference model, the audit ring and opaque party ids.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

// ---------------------------------------------------------------- reference model

/// One party's participation in a binding, for the model.
struct Part {
    party: E164,
    x: E164,
    id: BindingId,
    /// Set when the party left (handover) or the binding was deleted.
    ended: Option<i64>,
}

#[derive(Default)]
struct Model {
    /// id → (x, a, b, expires_at, deleted)
    bindings: HashMap<BindingId, (E164, E164, E164, i64, bool)>,
    parts: Vec<Part>,
    ship: HashMap<String, BindingId>,
}

impl Model {
    fn live(&self, id: &BindingId, now: i64) -> bool {
        self.bindings
            .get(id)
            .is_some_and(|(_, _, _, exp, deleted)| !deleted && *exp > now)
    }

    fn holds(&self, party: &E164, x: &E164, now: i64, cooling: i64) -> bool {
        self.parts.iter().any(|pt| {
            if &pt.party != party || &pt.x != x {
                return false;
            }
            let exp = self.bindings[&pt.id].3;
            let end = pt.ended.map_or(exp, |e| e.min(exp));
            end + cooling > now
        })
    }

    fn load(&self, x: &E164, now: i64) -> u64 {
        self.bindings
            .iter()
            .filter(|(id, b)| &b.0 == x && self.live(id, now))
            .count() as u64
    }

    /// Drops what can no longer matter: parts whose cooling passed, bindings
    /// that ended and have no part left.
    fn forget_cooled(&mut self, now: i64, cooling: i64) {
        let bindings = &self.bindings;
        self.parts.retain(|pt| {
            let (_, _, _, exp, _) = bindings[&pt.id];
            pt.ended.map_or(exp, |e| e.min(exp)) + cooling > now
        });
        let parts = &self.parts;
        self.bindings
            .retain(|id, _| parts.iter().any(|pt| pt.id == *id));
    }

    fn end_part(&mut self, id: BindingId, party: &E164, now: i64) {
        for pt in &mut self.parts {
            if pt.id == id && &pt.party == party && pt.ended.is_none() {
                pt.ended = Some(now);
            }
        }
    }
}

#[test]
fn random_operations_match_a_reference_model() {
    const COOLING: i64 = 3000;
    const CAP: u64 = 3;
    let mut rng = StdRng::seed_from_u64(7);
    let mut st = State::default();
    let mut model = Model::default();
    st.create_pool(spec("p", 3, 2, CAP as u32)).unwrap();
    st.import_numbers("p", numbers(0..3, Some("a"))).unwrap();
    st.import_numbers("p", numbers(3..6, None)).unwrap();
    let xs: Vec<E164> = (0..6).map(n).collect();
    let mut retired = [false; 6];
    let parties: Vec<E164> = (0..12).map(p).collect();
    let mut now = T0;
    let (mut created, mut exhausted, mut handovers, mut conflicts) = (0, 0, 0, 0);
    for step in 0..3000 {
        now += rng.random_range(0..400);
        let ids: Vec<BindingId> = model.bindings.keys().copied().collect();
        let live: Vec<BindingId> = ids
            .iter()
            .copied()
            .filter(|id| model.live(id, now))
            .collect();
        match rng.random_range(0..100) {
            0..=44 => {
                let a = parties[rng.random_range(0..12)].clone();
                let b = parties[rng.random_range(0..12)].clone();
                if a == b {
                    continue;
                }
                let ship = format!("s{}", rng.random_range(0..20));
                let area = rng.random_bool(0.3).then(|| "a".to_owned());
                let mut req = new("p", &ship, &a, &b, now + rng.random_range(1..8000));
                req.area = area.clone();
                let got = st.create_binding(req.clone(), now);
                // Idempotency per the model.
                if let Some(id) = model.ship.get(&ship).filter(|id| model.live(id, now)) {
                    let (_, ma, mb, _, _) = &model.bindings[id];
                    match got {
                        Ok(Created::Existing(bd)) => {
                            assert_eq!((&bd.id, ma, mb), (id, &a, &b), "step {step}");
                        }
                        Err(StoreError::ShipmentConflict { existing }) => {
                            assert_eq!(existing, *id);
                            assert!(ma != &a || mb != &b);
                        }
                        other => panic!("step {step}: {other:?}"),
                    }
                    continue;
                }
                // Allocation per the model: the best eligible number, or none.
                let eligible: Vec<(bool, u64, &E164)> = xs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !retired[*i])
                    .map(|(i, x)| (i < 3, model.load(x, now), x))
                    .filter(|(_, load, x)| {
                        *load < CAP
                            && !model.holds(&a, x, now, COOLING)
                            && !model.holds(&b, x, now, COOLING)
                    })
                    .collect();
                let want_area = area.is_some() && eligible.iter().any(|e| e.0);
                let best = eligible
                    .iter()
                    .filter(|e| !want_area || e.0)
                    .min_by(|l, r| l.1.cmp(&r.1).then(l.2.cmp(r.2)))
                    .map(|e| e.2.clone());
                match (got, best) {
                    (Ok(Created::New(bd)), Some(x)) => {
                        assert_eq!(bd.number, x, "step {step}");
                        model.bindings.insert(
                            bd.id,
                            (x.clone(), a.clone(), b.clone(), bd.expires_at, false),
                        );
                        for party in [&a, &b] {
                            model.parts.push(Part {
                                party: party.clone(),
                                x: x.clone(),
                                id: bd.id,
                                ended: None,
                            });
                        }
                        model.ship.insert(ship, bd.id);
                        created += 1;
                    }
                    (Err(StoreError::PoolExhausted { .. }), None) => exhausted += 1,
                    (got, best) => panic!("step {step}: got {got:?}, model wants {best:?}"),
                }
            }
            45..=59 if !ids.is_empty() => {
                // Mostly live bindings; sometimes an ended one (must be not found).
                let id = if !live.is_empty() && rng.random_bool(0.9) {
                    live[rng.random_range(0..live.len())]
                } else {
                    ids[rng.random_range(0..ids.len())]
                };
                let side_a = rng.random_bool(0.5);
                let newp = parties[rng.random_range(0..12)].clone();
                let patch = BindingPatch {
                    party_a: side_a.then(|| newp.clone()),
                    party_b: (!side_a).then(|| newp.clone()),
                    expires_at: rng
                        .random_bool(0.3)
                        .then(|| now + rng.random_range(1..8000)),
                };
                let got = st.update_binding(id, patch.clone(), now);
                if !model.live(&id, now) {
                    assert!(
                        matches!(got, Err(StoreError::BindingNotFound)),
                        "step {step}"
                    );
                    continue;
                }
                let (x, a, b, _, _) = model.bindings[&id].clone();
                let (old, other) = if side_a { (&a, &b) } else { (&b, &a) };
                if &newp == other {
                    assert!(matches!(got, Err(StoreError::Invalid(_))), "step {step}");
                } else if &newp != old && model.holds(&newp, &x, now, COOLING) {
                    assert!(matches!(got, Err(StoreError::ReassignConflict { .. })));
                    conflicts += 1;
                } else {
                    let bd = got.unwrap();
                    if &newp != old {
                        model.end_part(id, old, now);
                        model.parts.push(Part {
                            party: newp.clone(),
                            x: x.clone(),
                            id,
                            ended: None,
                        });
                        handovers += 1;
                    }
                    let m = model.bindings.get_mut(&id).unwrap();
                    if side_a {
                        m.1 = newp;
                    } else {
                        m.2 = newp;
                    }
                    if let Some(e) = patch.expires_at {
                        m.3 = e;
                    }
                    assert_eq!((&bd.party_a, &bd.party_b, bd.expires_at), (&m.1, &m.2, m.3));
                }
            }
            60..=69 if !live.is_empty() => {
                let id = live[rng.random_range(0..live.len())];
                st.delete_binding(id, now).unwrap();
                let (_, a, b, _, _) = model.bindings[&id].clone();
                model.end_part(id, &a, now);
                model.end_part(id, &b, now);
                model.bindings.get_mut(&id).unwrap().4 = true;
            }
            70..=74 if !live.is_empty() => {
                let id = live[rng.random_range(0..live.len())];
                let bd = st.mark_delivered(id, now).unwrap();
                assert_eq!(bd.expires_at, now + 2000);
                model.bindings.get_mut(&id).unwrap().3 = now + 2000;
            }
            75 if retired.iter().filter(|r| **r).count() < 2 => {
                let i = rng.random_range(0..6);
                st.retire_number("p", &xs[i]).unwrap();
                retired[i] = true;
            }
            76..=79 => {
                st.reap(now);
                check(&st, now, true);
            }
            _ => {
                // Routes from every party on every number.
                for x in &xs {
                    for c in &parties {
                        let want = model.bindings.iter().find_map(|(id, (bx, a, b, _, _))| {
                            (bx == x && model.live(id, now) && (a == c || b == c)).then(|| {
                                if a == c {
                                    b.clone()
                                } else {
                                    a.clone()
                                }
                            })
                        });
                        let got = st.route("p", x, c, now).map(|r| r.callee);
                        assert_eq!(got, want, "step {step}");
                    }
                }
            }
        }
        check(&st, now, false);
        model.forget_cooled(now, COOLING);
    }
    // The run exercised every path.
    assert!(
        created > 300 && exhausted > 50 && handovers > 30 && conflicts > 10,
        "created {created} exhausted {exhausted} handovers {handovers} conflicts {conflicts}"
    );
}

/// Throughput figures, not a timed test: run with
/// `cargo test --release --lib store::memory::tests::throughput -- --ignored --nocapture`.
/// Prints wall-clock rates and rates per CPU-second of this process (the latter
/// mean more on a shared, loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn throughput() {
    use std::sync::Arc;
    use std::time::Instant;

    const BINDINGS: u64 = 200_000;
    const ROUTES: u64 = 1_000_000;
    let report = |what: &str, ops: u64, t: Instant, cpu0: f64| {
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu0);
        println!(
            "{what}: {ops} in {wall:.2} s wall, {cpu:.2} s CPU = {:.0}/s wall, {:.0}/CPU-s",
            ops as f64 / wall,
            ops as f64 / cpu.max(0.01)
        );
    };
    let store = Arc::new(MemoryStore::new());
    store
        .create_pool(spec("p", 86_400, 3600, 200))
        .await
        .unwrap();
    store
        .import_numbers("p", numbers(0..2000, None))
        .await
        .unwrap();
    let couriers = 5000;
    let mut made = Vec::with_capacity(BINDINGS as usize);
    let rss_before = rss_bytes();
    let (t, cpu0) = (Instant::now(), cpu_secs());
    for i in 0..BINDINGS {
        let a = E164::parse(&format!("+86139{:08}", i % couriers)).unwrap();
        let b = E164::parse(&format!("+86138{i:08}")).unwrap();
        let c = store
            .create_binding(new("p", &format!("s{i}"), &a, &b, T0 + 3_600_000), T0)
            .await
            .unwrap();
        made.push((c.binding().number.clone(), a));
    }
    report("create (1 task)", BINDINGS, t, cpu0);
    // The test's own list of (number, caller) pairs is about 64 bytes a binding.
    println!(
        "memory: ~{} bytes per live binding (RSS growth, incl. ~64 B of test data)",
        (rss_bytes() - rss_before) / BINDINGS as i64
    );
    let made = Arc::new(made);
    for tasks in [1u64, 2] {
        let (t, cpu0) = (Instant::now(), cpu_secs());
        let handles: Vec<_> = (0..tasks)
            .map(|k| {
                let (store, made) = (store.clone(), made.clone());
                tokio::spawn(async move {
                    for i in 0..ROUTES / tasks {
                        let (x, caller) = &made[((i * 7919 + k) % BINDINGS) as usize];
                        let r = store.route("p", x, caller, T0).await.unwrap();
                        assert!(r.is_some());
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        report(&format!("route ({tasks} tasks)"), ROUTES, t, cpu0);
    }
    let (t, cpu0) = (Instant::now(), cpu_secs());
    let stats = store.pool_stats("p", T0).await.unwrap();
    report("pool_stats", 1, t, cpu0);
    assert_eq!(stats.live_bindings, BINDINGS);
    let (t, cpu0) = (Instant::now(), cpu_secs());
    let reaped = store.reap(T0 + 3_600_000).await.unwrap();
    report("reap (expired bindings)", reaped, t, cpu0);
    let (t, cpu0) = (Instant::now(), cpu_secs());
    store.reap(T0 + 3_600_000 + 86_400_000).await.unwrap();
    report("purge (cooled holds)", 2 * reaped, t, cpu0);
}

/// Resident set size of this process (Linux), for the throughput figures.
fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// User + system CPU seconds of this process so far (Linux, 100 Hz ticks).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}
