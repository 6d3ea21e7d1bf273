//! The store contract: one suite every `BindingStore` must pass.
//!
//! Each case in [`cases`] takes a fresh store and checks behaviour a client of the
//! store would notice (allocation, the AXB invariant, cooling, idempotency, routing,
//! expiry, statistics, audit). `contract_tests!` instantiates every case for one
//! backend. Cases share no global state: pool names, shipment ids and audit actors
//! are unique per test and numbers are random, so backends that share one server
//! (Redis) run the cases in parallel. Time is real (`now_ms()`), because Redis
//! expiry is real time; where expiry must be observed, lifetimes are a few hundred
//! milliseconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use maskline::bindings::{
    now_ms, Binding, BindingPatch, BindingState, Capabilities, Created, NewBinding, NumberSpec,
    NumberState, PoolSpec,
};
use maskline::numbers::{NumberHasher, Sealer, E164};
use maskline::store::memory::MemoryStore;
use maskline::store::redis::RedisStore;
use maskline::store::{AuditEntry, BindingStore, StoreError};
use rand::Rng;

/// A store under test.
pub type Store = Arc<dyn BindingStore>;

async fn memory_store() -> Store {
    Arc::new(MemoryStore::new())
}

/// Instantiates every contract case for one backend: `contract_tests!(name, expr)`,
/// where `expr` (evaluated once per test, may `.await`) yields a fresh [`Store`].
macro_rules! contract_tests {
    ($backend:ident, $make:expr) => {
        contract_tests!(@cases $backend, $make;
            pools_are_created_listed_and_unique,
            pool_spec_is_validated,
            import_counts_added_skipped_and_errors,
            pool_of_number_finds_the_pool,
            allocation_takes_least_loaded_then_number_order,
            allocation_prefers_requested_area,
            a_party_never_gets_the_same_number_twice,
            courier_exhausts_pool_exactly,
            per_number_cap_exhausts_pool,
            retired_number_takes_no_new_bindings_but_keeps_routing,
            retire_unknown_number_or_pool_fails,
            create_is_idempotent_per_shipment,
            shipment_with_other_parties_conflicts,
            find_by_shipment_spans_pools,
            create_validates_input,
            route_goes_both_ways_and_nowhere_else,
            reassign_courier_keeps_number_and_reroutes_at_once,
            reassign_to_a_party_holding_the_number_conflicts,
            reassign_both_parties_at_once_then_delete,
            update_validates_input,
            extend_after_delivery_stays_delivered,
            freed_capacity_is_reused_and_area_falls_back_at_cap,
            extend_and_shorten_expiry,
            delivered_expires_after_grace,
            delete_ends_binding_and_starts_cooling,
            cooling_ends_after_cooling_period,
            expired_binding_is_gone_without_reaping,
            statistics_are_exact_before_and_after_reap,
            statistics_count_numbers_bindings_and_parties,
            audit_reads_newest_first,
            concurrent_allocations_keep_the_invariant,
            concurrent_identical_creates_make_one_binding,
            concurrent_creates_for_one_courier_fill_the_pool_exactly,
            concurrent_handovers_to_one_courier_let_exactly_one_win,
            expired_shipment_is_free_for_other_parties,
            handover_to_a_party_whose_cooling_passed_succeeds,
            errors_never_show_a_number,
            ping_answers,
        );
    };
    (@cases $backend:ident, $make:expr; $($case:ident),* $(,)?) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store: Store = $make;
                    cases::$case(store).await;
                }
            )*
        }
    };
}

/// A Redis store on the test Redis; each test gets its own connection and secrets
/// (the cases' pools and numbers are unique, so they share the server).
async fn redis_store() -> Store {
    Arc::new(
        RedisStore::connect(
            &common::redis_url(),
            NumberHasher::new(&[7u8; 32]).unwrap(),
            Sealer::random(),
        )
        .await
        .unwrap(),
    )
}

contract_tests!(memory, memory_store().await);
contract_tests!(redis, redis_store().await);

// ---------------------------------------------------------------- helpers

/// A random 15-digit number with `prefix` (6 chars incl. '+', then 10 digits).
fn rand_number(prefix: &str) -> E164 {
    let n: u64 = rand::rng().random_range(0..10_000_000_000);
    E164::parse(&format!("{prefix}{n:010}")).unwrap()
}

/// A person's number (a courier or customer).
fn party() -> E164 {
    rand_number("+86139")
}

/// `n` distinct virtual numbers, in number order.
fn vnums(n: usize) -> Vec<E164> {
    let mut set = HashSet::new();
    while set.len() < n {
        set.insert(rand_number("+86170"));
    }
    let mut v: Vec<E164> = set.into_iter().collect();
    v.sort();
    v
}

fn spec(name: &str) -> PoolSpec {
    PoolSpec {
        name: name.to_owned(),
        country: 86,
        grace_s: 3600,
        cooling_s: 24 * 3600,
        max_bindings_per_number: 200,
    }
}

fn num(x: &E164, area: Option<&str>) -> NumberSpec {
    NumberSpec {
        number: x.clone(),
        area: area.map(str::to_owned),
        capabilities: Capabilities::default(),
    }
}

/// Creates a pool (settings adjusted by `f`) with `n` fresh numbers, no area.
async fn pool_with(s: &Store, n: usize, f: impl FnOnce(&mut PoolSpec)) -> (String, Vec<E164>) {
    let name = common::unique("p");
    let mut sp = spec(&name);
    f(&mut sp);
    s.create_pool(sp).await.unwrap();
    let xs = vnums(n);
    let out = s
        .import_numbers(&name, xs.iter().map(|x| num(x, None)).collect())
        .await
        .unwrap();
    assert_eq!(out.added, n as u64, "{out:?}");
    (name, xs)
}

fn req(pool: &str, a: &E164, b: &E164) -> NewBinding {
    NewBinding {
        pool: pool.to_owned(),
        shipment_id: common::unique("SF"),
        party_a: a.clone(),
        party_b: b.clone(),
        expires_at: now_ms() + 3_600_000,
        area: None,
    }
}

/// Creates a binding that must be new.
async fn bind(s: &Store, pool: &str, a: &E164, b: &E164) -> Binding {
    match s.create_binding(req(pool, a, b), now_ms()).await.unwrap() {
        Created::New(b) => b,
        other => panic!("expected a new binding, got {other:?}"),
    }
}

async fn bind_err(s: &Store, r: NewBinding) -> StoreError {
    s.create_binding(r, now_ms()).await.unwrap_err()
}

fn assert_exhausted(e: &StoreError, pool: &str) {
    match e {
        StoreError::PoolExhausted { pool: p } => assert_eq!(p, pool),
        other => panic!("expected PoolExhausted, got {other:?}"),
    }
}

fn assert_invalid(e: &StoreError, field: &str) {
    match e {
        StoreError::Invalid(i) => assert_eq!(i.field, field, "{e}"),
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

async fn callee(s: &Store, pool: &str, x: &E164, caller: &E164) -> Option<E164> {
    s.route(pool, x, caller, now_ms())
        .await
        .unwrap()
        .map(|r| r.callee)
}

// ---------------------------------------------------------------- cases

mod cases {
    use super::*;

    pub async fn pools_are_created_listed_and_unique(s: Store) {
        let a = common::unique("pa");
        let b = common::unique("pb");
        s.create_pool(spec(&b)).await.unwrap();
        s.create_pool(spec(&a)).await.unwrap();
        assert_eq!(s.get_pool(&a).await.unwrap(), spec(&a));
        match s.create_pool(spec(&a)).await.unwrap_err() {
            StoreError::PoolExists(n) => assert_eq!(n, a),
            e => panic!("expected PoolExists, got {e:?}"),
        }
        // The duplicate did not change the first pool's settings.
        let mut other = spec(&b);
        other.grace_s = 1;
        assert!(matches!(
            s.create_pool(other).await,
            Err(StoreError::PoolExists(_))
        ));
        assert_eq!(s.get_pool(&b).await.unwrap().grace_s, 3600);
        let missing = common::unique("missing");
        match s.get_pool(&missing).await.unwrap_err() {
            StoreError::PoolNotFound(n) => assert_eq!(n, missing),
            e => panic!("expected PoolNotFound, got {e:?}"),
        }
        let names: Vec<String> = s
            .list_pools()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "pools are listed by name");
        assert!(names.contains(&a) && names.contains(&b));
    }

    pub async fn pool_spec_is_validated(s: Store) {
        let e = s.create_pool(spec("bad name!")).await.unwrap_err();
        assert_invalid(&e, "name");
        let mut sp = spec(&common::unique("p"));
        sp.max_bindings_per_number = 0;
        assert_invalid(
            &s.create_pool(sp.clone()).await.unwrap_err(),
            "max_bindings_per_number",
        );
        assert!(matches!(
            s.get_pool(&sp.name).await,
            Err(StoreError::PoolNotFound(_))
        ));
    }

    pub async fn import_counts_added_skipped_and_errors(s: Store) {
        let (p1, xs) = pool_with(&s, 2, |_| {}).await;
        let p2 = common::unique("p");
        s.create_pool(spec(&p2)).await.unwrap();
        let fresh = vnums(2);
        let out = s
            .import_numbers(
                &p2,
                vec![
                    num(&fresh[0], Some("sh")),
                    num(&xs[0], None),          // belongs to p1
                    num(&fresh[0], Some("sh")), // duplicate within the input
                    num(&fresh[1], Some("bad area!")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(out.added, 1, "{out:?}");
        assert_eq!(out.skipped, 1, "{out:?}");
        let idx: Vec<usize> = out.errors.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, vec![1, 3], "{out:?}");
        for (_, msg) in &out.errors {
            assert!(
                !msg.contains(&xs[0].expose()[1..]),
                "error leaks a number: {msg}"
            );
        }
        // Re-importing into the owning pool is a skip, not an error.
        let again = s
            .import_numbers(&p1, vec![num(&xs[0], None), num(&xs[1], None)])
            .await
            .unwrap();
        assert_eq!((again.added, again.skipped, again.errors.len()), (0, 2, 0));
        let missing = common::unique("missing");
        assert!(matches!(
            s.import_numbers(&missing, vec![num(&fresh[1], None)]).await,
            Err(StoreError::PoolNotFound(_))
        ));
        let st = s.pool_stats(&p2, now_ms()).await.unwrap();
        assert_eq!(st.numbers, 1);
        assert_eq!(st.per_number[0].area.as_deref(), Some("sh"));
    }

    pub async fn pool_of_number_finds_the_pool(s: Store) {
        let (p, xs) = pool_with(&s, 1, |_| {}).await;
        assert_eq!(s.pool_of_number(&xs[0]).await.unwrap(), Some(p));
        assert_eq!(s.pool_of_number(&vnums(1)[0]).await.unwrap(), None);
    }

    pub async fn allocation_takes_least_loaded_then_number_order(s: Store) {
        let (p, xs) = pool_with(&s, 3, |_| {}).await;
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(bind(&s, &p, &party(), &party()).await);
        }
        let numbers: Vec<E164> = got.iter().map(|b| b.number.clone()).collect();
        assert_eq!(
            numbers,
            vec![xs[0].clone(), xs[1].clone(), xs[2].clone(), xs[0].clone()]
        );
        // Free the middle number: it is now the least loaded.
        s.delete_binding(got[1].id, now_ms()).await.unwrap();
        assert_eq!(bind(&s, &p, &party(), &party()).await.number, xs[1]);
    }

    pub async fn allocation_prefers_requested_area(s: Store) {
        let p = common::unique("p");
        s.create_pool(spec(&p)).await.unwrap();
        let xs = vnums(3);
        s.import_numbers(
            &p,
            vec![
                num(&xs[0], Some("sh")),
                num(&xs[1], Some("bj")),
                num(&xs[2], None),
            ],
        )
        .await
        .unwrap();
        let with_area = |a: &E164, b: &E164, area: &str| {
            let mut r = req(&p, a, b);
            r.area = Some(area.to_owned());
            r
        };
        let courier = party();
        let first = s
            .create_binding(with_area(&courier, &party(), "bj"), now_ms())
            .await
            .unwrap();
        assert_eq!(first.binding().number, xs[1]);
        // The area wins over load: bj is busier than the others but still preferred.
        let second = s
            .create_binding(with_area(&party(), &party(), "bj"), now_ms())
            .await
            .unwrap();
        assert_eq!(second.binding().number, xs[1]);
        // When no number of that area is free for the parties, any area will do
        // (the least loaded, by number order).
        let third = s
            .create_binding(with_area(&courier, &party(), "bj"), now_ms())
            .await
            .unwrap();
        assert_eq!(third.binding().number, xs[0]);
        // An area no number has: any area.
        let fourth = s
            .create_binding(with_area(&party(), &party(), "gz"), now_ms())
            .await
            .unwrap();
        assert_eq!(fourth.binding().number, xs[2]);
    }

    pub async fn a_party_never_gets_the_same_number_twice(s: Store) {
        let (p, xs) = pool_with(&s, 3, |_| {}).await;
        let courier = party();
        let customer = party();
        let b1 = bind(&s, &p, &courier, &party()).await;
        let b2 = bind(&s, &p, &courier, &party()).await;
        assert_ne!(
            b1.number, b2.number,
            "one courier, two bindings, two numbers"
        );
        // The customer of b1 with another courier: not b1's number either.
        let b3 = bind(&s, &p, &party(), &b1.party_b).await;
        assert_ne!(b3.number, b1.number);
        // The same customer with our courier (third binding): the one number left.
        let b4 = bind(&s, &p, &courier, &customer).await;
        assert!(b4.number != b1.number && b4.number != b2.number);
        // An unrelated pair may share a number with others.
        let (q, ys) = pool_with(&s, 1, |_| {}).await;
        let c1 = bind(&s, &q, &party(), &party()).await;
        let c2 = bind(&s, &q, &party(), &party()).await;
        assert_eq!(c1.number, ys[0]);
        assert_eq!(c2.number, ys[0]);
        assert!(xs.contains(&b4.number));
    }

    pub async fn courier_exhausts_pool_exactly(s: Store) {
        let (p, _) = pool_with(&s, 2, |_| {}).await;
        let courier = party();
        bind(&s, &p, &courier, &party()).await;
        bind(&s, &p, &courier, &party()).await;
        assert_exhausted(&bind_err(&s, req(&p, &courier, &party())).await, &p);
        // As party B too: the courier holds both numbers whichever side it is on.
        assert_exhausted(&bind_err(&s, req(&p, &party(), &courier)).await, &p);
        // Another pair still gets a number.
        bind(&s, &p, &party(), &party()).await;
    }

    pub async fn per_number_cap_exhausts_pool(s: Store) {
        let (p, xs) = pool_with(&s, 1, |sp| sp.max_bindings_per_number = 2).await;
        assert_eq!(bind(&s, &p, &party(), &party()).await.number, xs[0]);
        assert_eq!(bind(&s, &p, &party(), &party()).await.number, xs[0]);
        assert_exhausted(&bind_err(&s, req(&p, &party(), &party())).await, &p);
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(st.live_bindings, 2);
        assert_eq!(st.per_number[0].live_bindings, 2);
    }

    pub async fn retired_number_takes_no_new_bindings_but_keeps_routing(s: Store) {
        let (p, xs) = pool_with(&s, 1, |_| {}).await;
        let (a, b) = (party(), party());
        let live = bind(&s, &p, &a, &b).await;
        s.retire_number(&p, &xs[0]).await.unwrap();
        s.retire_number(&p, &xs[0]).await.unwrap(); // idempotent
        assert_eq!(callee(&s, &p, &xs[0], &a).await, Some(b.clone()));
        assert_eq!(s.get_binding(live.id, now_ms()).await.unwrap(), live);
        assert_eq!(s.pool_of_number(&xs[0]).await.unwrap(), Some(p.clone()));
        assert_exhausted(&bind_err(&s, req(&p, &party(), &party())).await, &p);
        // A new number takes the new bindings; re-importing the retired one keeps it
        // retired (with equal load the retired one would otherwise win by order).
        let mut ys = vnums(1);
        while ys[0] < xs[0] {
            ys = vnums(1);
        }
        let out = s
            .import_numbers(&p, vec![num(&ys[0], None), num(&xs[0], None)])
            .await
            .unwrap();
        assert_eq!((out.added, out.skipped), (1, 1));
        assert_eq!(bind(&s, &p, &party(), &party()).await.number, ys[0]);
        assert_eq!(bind(&s, &p, &party(), &party()).await.number, ys[0]);
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(
            (st.numbers, st.active_numbers, st.retired_numbers),
            (2, 1, 1)
        );
        let retired = st.per_number.iter().find(|n| n.number == xs[0]).unwrap();
        assert_eq!(retired.state, NumberState::Retired);
        assert_eq!(retired.live_bindings, 1);
    }

    pub async fn retire_unknown_number_or_pool_fails(s: Store) {
        let (p, _) = pool_with(&s, 1, |_| {}).await;
        let (q, ys) = pool_with(&s, 1, |_| {}).await;
        assert!(matches!(
            s.retire_number(&p, &vnums(1)[0]).await,
            Err(StoreError::NumberNotFound)
        ));
        // A number of another pool is not in this one.
        assert!(matches!(
            s.retire_number(&p, &ys[0]).await,
            Err(StoreError::NumberNotFound)
        ));
        assert!(matches!(
            s.retire_number(&common::unique("missing"), &ys[0]).await,
            Err(StoreError::PoolNotFound(_))
        ));
        let st = s.pool_stats(&q, now_ms()).await.unwrap();
        assert_eq!(st.active_numbers, 1);
    }

    pub async fn create_is_idempotent_per_shipment(s: Store) {
        let (p, _) = pool_with(&s, 2, |_| {}).await;
        let r = req(&p, &party(), &party());
        let first = match s.create_binding(r.clone(), now_ms()).await.unwrap() {
            Created::New(b) => b,
            e => panic!("{e:?}"),
        };
        let mut again = r.clone();
        again.expires_at += 60_000; // ignored on a retry
        match s.create_binding(again, now_ms()).await.unwrap() {
            Created::Existing(b) => assert_eq!(b, first),
            e => panic!("expected Existing, got {e:?}"),
        }
        assert_eq!(s.pool_stats(&p, now_ms()).await.unwrap().live_bindings, 1);
        // Once the binding is gone, the shipment id makes a new one.
        s.delete_binding(first.id, now_ms()).await.unwrap();
        let next = bind_new(&s, r).await;
        assert_ne!(next.id, first.id);
    }

    async fn bind_new(s: &Store, r: NewBinding) -> Binding {
        match s.create_binding(r, now_ms()).await.unwrap() {
            Created::New(b) => b,
            e => panic!("expected New, got {e:?}"),
        }
    }

    pub async fn shipment_with_other_parties_conflicts(s: Store) {
        let (p, _) = pool_with(&s, 2, |_| {}).await;
        let r = req(&p, &party(), &party());
        let first = bind_new(&s, r.clone()).await;
        for change in 0..3 {
            let mut other = r.clone();
            match change {
                0 => other.party_a = party(),
                1 => other.party_b = party(),
                _ => std::mem::swap(&mut other.party_a, &mut other.party_b),
            }
            match s.create_binding(other, now_ms()).await.unwrap_err() {
                StoreError::ShipmentConflict { existing } => assert_eq!(existing, first.id),
                e => panic!("expected ShipmentConflict, got {e:?}"),
            }
        }
        // The same shipment id in another pool is another shipment.
        let (q, _) = pool_with(&s, 1, |_| {}).await;
        let mut elsewhere = r.clone();
        elsewhere.pool = q;
        elsewhere.party_a = party();
        bind_new(&s, elsewhere).await;
    }

    pub async fn find_by_shipment_spans_pools(s: Store) {
        let (p, _) = pool_with(&s, 1, |_| {}).await;
        let (q, _) = pool_with(&s, 1, |_| {}).await;
        let ship = common::unique("SF");
        let mut r1 = req(&p, &party(), &party());
        r1.shipment_id = ship.clone();
        let mut r2 = req(&q, &party(), &party());
        r2.shipment_id = ship.clone();
        let b1 = bind_new(&s, r1).await;
        let b2 = bind_new(&s, r2).await;
        let mut all = s.find_by_shipment(None, &ship, now_ms()).await.unwrap();
        all.sort_by(|a, b| a.pool.cmp(&b.pool));
        let mut want = vec![b1.clone(), b2.clone()];
        want.sort_by(|a, b| a.pool.cmp(&b.pool));
        assert_eq!(all, want);
        assert_eq!(
            s.find_by_shipment(Some(&q), &ship, now_ms()).await.unwrap(),
            vec![b2.clone()]
        );
        assert!(s
            .find_by_shipment(None, &common::unique("SF"), now_ms())
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            s.find_by_shipment(Some(&common::unique("missing")), &ship, now_ms())
                .await,
            Err(StoreError::PoolNotFound(_))
        ));
        s.delete_binding(b1.id, now_ms()).await.unwrap();
        assert_eq!(
            s.find_by_shipment(None, &ship, now_ms()).await.unwrap(),
            vec![b2]
        );
    }

    pub async fn create_validates_input(s: Store) {
        let (p, _) = pool_with(&s, 1, |_| {}).await;
        let a = party();
        let base = req(&p, &a, &party());
        let mut r = base.clone();
        r.party_b = a.clone();
        assert_invalid(&bind_err(&s, r).await, "party_b");
        let mut r = base.clone();
        r.expires_at = now_ms() - 1;
        assert_invalid(&bind_err(&s, r).await, "expires_at");
        let mut r = base.clone();
        r.shipment_id = "has space".into();
        assert_invalid(&bind_err(&s, r).await, "shipment_id");
        let mut r = base.clone();
        r.area = Some("b a d".into());
        assert_invalid(&bind_err(&s, r).await, "area");
        let mut r = base.clone();
        r.pool = common::unique("missing");
        assert!(matches!(bind_err(&s, r).await, StoreError::PoolNotFound(_)));
        // Nothing was created by the failed calls.
        assert_eq!(s.pool_stats(&p, now_ms()).await.unwrap().live_bindings, 0);
        bind_new(&s, base).await;
    }

    pub async fn route_goes_both_ways_and_nowhere_else(s: Store) {
        let (p, xs) = pool_with(&s, 2, |_| {}).await;
        let (a, b) = (party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        let x = bd.number.clone();
        let r = s.route(&p, &x, &a, now_ms()).await.unwrap().unwrap();
        assert_eq!(r.binding_id, bd.id);
        assert_eq!(r.pool, p);
        assert_eq!(r.callee, b);
        assert_eq!(r.expires_at, bd.expires_at);
        assert_eq!(callee(&s, &p, &x, &b).await, Some(a.clone()));
        assert_eq!(callee(&s, &p, &x, &party()).await, None, "stranger");
        let other = if x == xs[0] { &xs[1] } else { &xs[0] };
        assert_eq!(callee(&s, &p, other, &a).await, None, "wrong number");
        assert_eq!(
            callee(&s, &common::unique("missing"), &x, &a).await,
            None,
            "unknown pool"
        );
        // The right number asked through another pool routes nowhere.
        let (q, _) = pool_with(&s, 1, |_| {}).await;
        assert_eq!(callee(&s, &q, &x, &a).await, None, "number of another pool");
    }

    pub async fn reassign_courier_keeps_number_and_reroutes_at_once(s: Store) {
        let (p, _) = pool_with(&s, 1, |_| {}).await;
        let (a, b, a2) = (party(), party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        let x = bd.number.clone();
        let patch = BindingPatch {
            party_a: Some(a2.clone()),
            ..Default::default()
        };
        let up = s.update_binding(bd.id, patch, now_ms()).await.unwrap();
        assert_eq!(
            (up.id, &up.number, &up.party_a, &up.party_b),
            (bd.id, &x, &a2, &b)
        );
        assert_eq!(up.expires_at, bd.expires_at);
        assert_eq!(s.get_binding(bd.id, now_ms()).await.unwrap(), up);
        assert_eq!(callee(&s, &p, &x, &a2).await, Some(b.clone()));
        assert_eq!(callee(&s, &p, &x, &b).await, Some(a2.clone()));
        assert_eq!(
            callee(&s, &p, &x, &a).await,
            None,
            "old courier routes nowhere"
        );
        // The old courier is cooling on X: the one-number pool cannot serve it.
        assert_exhausted(&bind_err(&s, req(&p, &a, &party())).await, &p);
        // Setting a party to its current value is no change.
        let same = BindingPatch {
            party_b: Some(b.clone()),
            ..Default::default()
        };
        assert_eq!(s.update_binding(bd.id, same, now_ms()).await.unwrap(), up);
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(st.live_bindings, 1);
        assert_eq!(st.cooling, 1);
    }

    pub async fn reassign_to_a_party_holding_the_number_conflicts(s: Store) {
        let (p, xs) = pool_with(&s, 1, |_| {}).await;
        let (a, b, c, d) = (party(), party(), party(), party());
        let first = bind(&s, &p, &a, &b).await;
        let second = bind(&s, &p, &c, &d).await;
        assert_eq!((&first.number, &second.number), (&xs[0], &xs[0]));
        for (patch, field) in [
            (
                BindingPatch {
                    party_a: Some(c.clone()),
                    ..Default::default()
                },
                "party_a",
            ),
            (
                BindingPatch {
                    party_b: Some(d.clone()),
                    ..Default::default()
                },
                "party_b",
            ),
        ] {
            match s
                .update_binding(first.id, patch, now_ms())
                .await
                .unwrap_err()
            {
                StoreError::ReassignConflict { field: f } => assert_eq!(f, field),
                e => panic!("expected ReassignConflict, got {e:?}"),
            }
        }
        // Nothing changed.
        assert_eq!(s.get_binding(first.id, now_ms()).await.unwrap(), first);
        assert_eq!(callee(&s, &p, &xs[0], &a).await, Some(b.clone()));
        assert_eq!(callee(&s, &p, &xs[0], &c).await, Some(d.clone()));
    }

    pub async fn reassign_both_parties_at_once_then_delete(s: Store) {
        let (p, xs) = pool_with(&s, 1, |_| {}).await;
        let (a, b, a2, b2) = (party(), party(), party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        let patch = BindingPatch {
            party_a: Some(a2.clone()),
            party_b: Some(b2.clone()),
            expires_at: None,
        };
        let up = s.update_binding(bd.id, patch, now_ms()).await.unwrap();
        assert_eq!((&up.party_a, &up.party_b, &up.number), (&a2, &b2, &xs[0]));
        assert_eq!(callee(&s, &p, &xs[0], &a2).await, Some(b2.clone()));
        assert_eq!(callee(&s, &p, &xs[0], &b2).await, Some(a2.clone()));
        assert_eq!(callee(&s, &p, &xs[0], &a).await, None);
        assert_eq!(callee(&s, &p, &xs[0], &b).await, None);
        assert_eq!(s.pool_stats(&p, now_ms()).await.unwrap().cooling, 2);
        // The old parties cannot be handed the binding back: they cool on X.
        let back = BindingPatch {
            party_b: Some(b.clone()),
            ..Default::default()
        };
        match s.update_binding(bd.id, back, now_ms()).await.unwrap_err() {
            StoreError::ReassignConflict { field } => assert_eq!(field, "party_b"),
            e => panic!("expected ReassignConflict, got {e:?}"),
        }
        s.delete_binding(bd.id, now_ms()).await.unwrap();
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!((st.live_bindings, st.cooling), (0, 4));
        assert!(st.busiest_parties.is_empty());
        for who in [&a, &b, &a2, &b2] {
            assert_exhausted(&bind_err(&s, req(&p, who, &party())).await, &p);
        }
    }

    pub async fn extend_after_delivery_stays_delivered(s: Store) {
        let (p, _) = pool_with(&s, 1, |sp| sp.grace_s = 60).await;
        let bd = bind(&s, &p, &party(), &party()).await;
        s.mark_delivered(bd.id, now_ms()).await.unwrap();
        let later = now_ms() + 7_200_000;
        let up = s
            .update_binding(
                bd.id,
                BindingPatch {
                    expires_at: Some(later),
                    ..Default::default()
                },
                now_ms(),
            )
            .await
            .unwrap();
        assert_eq!((up.state, up.expires_at), (BindingState::Delivered, later));
        // Delivered again: expiry is now + grace again, from this moment.
        let t = now_ms();
        let again = s.mark_delivered(bd.id, t).await.unwrap();
        assert_eq!(
            (again.state, again.expires_at),
            (BindingState::Delivered, t + 60_000)
        );
    }

    pub async fn freed_capacity_is_reused_and_area_falls_back_at_cap(s: Store) {
        let p = common::unique("p");
        let mut sp = spec(&p);
        sp.max_bindings_per_number = 1;
        s.create_pool(sp).await.unwrap();
        let xs = vnums(2);
        s.import_numbers(&p, vec![num(&xs[0], None), num(&xs[1], Some("sh"))])
            .await
            .unwrap();
        let in_sh = || {
            let mut r = req(&p, &party(), &party());
            r.area = Some("sh".into());
            r
        };
        let first = bind_new(&s, in_sh()).await;
        assert_eq!(first.number, xs[1]);
        // The "sh" number is at its cap: another area will do.
        let second = bind_new(&s, in_sh()).await;
        assert_eq!(second.number, xs[0]);
        assert_exhausted(&bind_err(&s, in_sh()).await, &p);
        // Deleting frees capacity (for strangers) at once.
        s.delete_binding(first.id, now_ms()).await.unwrap();
        assert_eq!(bind_new(&s, in_sh()).await.number, xs[1]);
    }

    pub async fn update_validates_input(s: Store) {
        let (p, _) = pool_with(&s, 1, |_| {}).await;
        let (a, b) = (party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        let e = s
            .update_binding(
                bd.id,
                BindingPatch {
                    party_b: Some(a.clone()),
                    ..Default::default()
                },
                now_ms(),
            )
            .await
            .unwrap_err();
        assert_invalid(&e, "party_b");
        let e = s
            .update_binding(
                bd.id,
                BindingPatch {
                    expires_at: Some(now_ms() - 1000),
                    ..Default::default()
                },
                now_ms(),
            )
            .await
            .unwrap_err();
        assert_invalid(&e, "expires_at");
        assert!(matches!(
            s.update_binding(uuid::Uuid::now_v7(), BindingPatch::default(), now_ms())
                .await,
            Err(StoreError::BindingNotFound)
        ));
        assert_eq!(s.get_binding(bd.id, now_ms()).await.unwrap(), bd);
    }

    pub async fn extend_and_shorten_expiry(s: Store) {
        let (p, _) = pool_with(&s, 1, |_| {}).await;
        let (a, b) = (party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        let later = now_ms() + 7_200_000;
        let up = s
            .update_binding(
                bd.id,
                BindingPatch {
                    expires_at: Some(later),
                    ..Default::default()
                },
                now_ms(),
            )
            .await
            .unwrap();
        assert_eq!(up.expires_at, later);
        assert_eq!(
            s.get_binding(bd.id, now_ms()).await.unwrap().expires_at,
            later
        );
        let r = s
            .route(&p, &bd.number, &a, now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.expires_at, later);
        // Shorten to a moment from now: after it, the binding is gone.
        let soon = now_ms() + 300;
        s.update_binding(
            bd.id,
            BindingPatch {
                expires_at: Some(soon),
                ..Default::default()
            },
            now_ms(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(matches!(
            s.get_binding(bd.id, now_ms()).await,
            Err(StoreError::BindingNotFound)
        ));
        assert_eq!(callee(&s, &p, &bd.number, &a).await, None);
    }

    pub async fn delivered_expires_after_grace(s: Store) {
        let (p, _) = pool_with(&s, 1, |sp| sp.grace_s = 600).await;
        let (a, b) = (party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        let before = now_ms();
        let d = s.mark_delivered(bd.id, before).await.unwrap();
        assert_eq!(d.state, BindingState::Delivered);
        assert_eq!(d.expires_at, before + 600_000);
        let got = s.get_binding(bd.id, now_ms()).await.unwrap();
        assert_eq!(got, d);
        let r = s
            .route(&p, &bd.number, &b, now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((r.callee, r.expires_at), (a, before + 600_000));
        assert!(matches!(
            s.mark_delivered(uuid::Uuid::now_v7(), now_ms()).await,
            Err(StoreError::BindingNotFound)
        ));
    }

    pub async fn delete_ends_binding_and_starts_cooling(s: Store) {
        let (p, xs) = pool_with(&s, 1, |_| {}).await;
        let (a, b) = (party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        s.delete_binding(bd.id, now_ms()).await.unwrap();
        assert!(matches!(
            s.get_binding(bd.id, now_ms()).await,
            Err(StoreError::BindingNotFound)
        ));
        assert!(matches!(
            s.delete_binding(bd.id, now_ms()).await,
            Err(StoreError::BindingNotFound)
        ));
        assert_eq!(callee(&s, &p, &xs[0], &a).await, None);
        assert_eq!(callee(&s, &p, &xs[0], &b).await, None);
        // Both parties are cooling on the only number.
        assert_exhausted(&bind_err(&s, req(&p, &a, &party())).await, &p);
        assert_exhausted(&bind_err(&s, req(&p, &party(), &b)).await, &p);
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!((st.live_bindings, st.cooling), (0, 2));
        assert_eq!(st.per_number[0].live_bindings, 0);
        // Strangers are welcome on it.
        assert_eq!(bind(&s, &p, &party(), &party()).await.number, xs[0]);
    }

    pub async fn cooling_ends_after_cooling_period(s: Store) {
        let (p, xs) = pool_with(&s, 1, |sp| sp.cooling_s = 1).await;
        let (a, b) = (party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        s.delete_binding(bd.id, now_ms()).await.unwrap();
        assert_exhausted(&bind_err(&s, req(&p, &a, &party())).await, &p);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let again = bind(&s, &p, &a, &b).await;
        assert_eq!(again.number, xs[0]);
        assert_eq!(callee(&s, &p, &xs[0], &b).await, Some(a));
        assert_eq!(s.pool_stats(&p, now_ms()).await.unwrap().cooling, 0);
    }

    pub async fn expired_binding_is_gone_without_reaping(s: Store) {
        let (p, xs) = pool_with(&s, 2, |_| {}).await;
        let (a, b) = (party(), party());
        let mut r = req(&p, &a, &b);
        r.expires_at = now_ms() + 300;
        let bd = bind_new(&s, r.clone()).await;
        assert_eq!(callee(&s, &p, &bd.number, &a).await, Some(b.clone()));
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = now_ms();
        assert!(matches!(
            s.get_binding(bd.id, now).await,
            Err(StoreError::BindingNotFound)
        ));
        assert_eq!(callee(&s, &p, &bd.number, &a).await, None);
        assert_eq!(callee(&s, &p, &bd.number, &b).await, None);
        assert!(s
            .find_by_shipment(Some(&p), &r.shipment_id, now)
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            s.update_binding(bd.id, BindingPatch::default(), now).await,
            Err(StoreError::BindingNotFound)
        ));
        assert!(matches!(
            s.mark_delivered(bd.id, now).await,
            Err(StoreError::BindingNotFound)
        ));
        assert!(matches!(
            s.delete_binding(bd.id, now).await,
            Err(StoreError::BindingNotFound)
        ));
        // The shipment id is free again; the parties are cooling on the old number,
        // so the new binding takes the other one.
        r.expires_at = now_ms() + 3_600_000;
        let next = bind_new(&s, r).await;
        assert_ne!(next.id, bd.id);
        assert_ne!(next.number, bd.number);
        assert!(xs.contains(&next.number));
    }

    pub async fn statistics_are_exact_before_and_after_reap(s: Store) {
        let (p, xs) = pool_with(&s, 2, |_| {}).await;
        let short = |a: &E164, b: &E164| {
            let mut r = req(&p, a, b);
            r.expires_at = now_ms() + 300;
            r
        };
        let s1 = bind_new(&s, short(&party(), &party())).await;
        let s2 = bind_new(&s, short(&party(), &party())).await;
        let long = bind(&s, &p, &party(), &party()).await;
        assert_eq!(
            (&s1.number, &s2.number, &long.number),
            (&xs[0], &xs[1], &xs[0])
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let pre = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(
            (pre.live_bindings, pre.cooling),
            (1, 4),
            "exact before reap"
        );
        let loads: Vec<u64> = pre.per_number.iter().map(|n| n.live_bindings).collect();
        assert_eq!(loads, vec![1, 0], "exact before reap");
        assert_eq!(pre.busiest_parties.len(), 2, "exact before reap");
        s.reap(now_ms()).await.unwrap();
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(st.live_bindings, 1);
        let loads: Vec<(E164, u64)> = st
            .per_number
            .iter()
            .map(|n| (n.number.clone(), n.live_bindings))
            .collect();
        assert_eq!(loads, vec![(xs[0].clone(), 1), (xs[1].clone(), 0)]);
        assert_eq!(st.cooling, 4, "the parties of the expired bindings cool");
        assert_eq!(st.busiest_parties.len(), 2);
        // A second reap changes nothing.
        s.reap(now_ms()).await.unwrap();
        let again = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(again.live_bindings, 1);
        assert_eq!(again.per_number, st.per_number);
        // Reaping left the live binding routing.
        assert_eq!(
            callee(&s, &p, &long.number, &long.party_a).await,
            Some(long.party_b.clone())
        );
        // The freed number is the least loaded again.
        assert_eq!(bind(&s, &p, &party(), &party()).await.number, xs[1]);
    }

    pub async fn statistics_count_numbers_bindings_and_parties(s: Store) {
        let (p, xs) = pool_with(&s, 3, |_| {}).await;
        s.retire_number(&p, &xs[2]).await.unwrap();
        let courier = party();
        let b1 = bind(&s, &p, &courier, &party()).await;
        bind(&s, &p, &courier, &party()).await;
        bind(&s, &p, &party(), &party()).await;
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(st.spec, s.get_pool(&p).await.unwrap());
        assert_eq!(
            (st.numbers, st.active_numbers, st.retired_numbers),
            (3, 2, 1)
        );
        assert_eq!((st.live_bindings, st.cooling), (3, 0));
        let loads: Vec<(E164, u64)> = st
            .per_number
            .iter()
            .map(|n| (n.number.clone(), n.live_bindings))
            .collect();
        assert_eq!(
            loads,
            vec![(xs[0].clone(), 2), (xs[1].clone(), 1), (xs[2].clone(), 0)],
            "busiest first, then by number"
        );
        let counts: Vec<u64> = st.busiest_parties.iter().map(|p| p.live_bindings).collect();
        assert_eq!(counts, vec![2, 1, 1, 1, 1]);
        let digits = &courier.expose()[1..];
        for pl in &st.busiest_parties {
            assert_eq!(pl.party.len(), 16, "8 bytes as hex: {}", pl.party);
            assert!(pl.party.bytes().all(|c| c.is_ascii_hexdigit()));
            assert!(!pl.party.contains(&digits[digits.len() - 6..]));
        }
        let ids: HashSet<&str> = st
            .busiest_parties
            .iter()
            .map(|p| p.party.as_str())
            .collect();
        assert_eq!(ids.len(), 5, "one id per party");
        // The same party keeps the same opaque id.
        s.delete_binding(b1.id, now_ms()).await.unwrap();
        let st2 = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(st2.live_bindings, 2);
        assert_eq!(st2.cooling, 2);
        assert_eq!(st2.busiest_parties.len(), 4);
        let top = &st.busiest_parties[0].party;
        assert!(st2
            .busiest_parties
            .iter()
            .any(|p| &p.party == top && p.live_bindings == 1));
        assert!(matches!(
            s.pool_stats(&common::unique("missing"), now_ms()).await,
            Err(StoreError::PoolNotFound(_))
        ));
    }

    pub async fn audit_reads_newest_first(s: Store) {
        let actor = common::unique("auditor");
        let t = now_ms();
        for (i, target) in ["b-1", "b-2", "b-3"].iter().enumerate() {
            s.append_audit(AuditEntry {
                at: t + i as i64,
                actor: actor.clone(),
                role: "auditor".into(),
                action: "binding.read_unmasked".into(),
                target: (*target).into(),
            })
            .await
            .unwrap();
        }
        let mine: Vec<String> = s
            .read_audit(1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.actor == actor)
            .map(|e| e.target)
            .collect();
        assert_eq!(mine, vec!["b-3", "b-2", "b-1"]);
        let one = s.read_audit(1).await.unwrap();
        assert_eq!(one.len(), 1);
        assert!(s.read_audit(0).await.unwrap().is_empty());
    }

    pub async fn concurrent_allocations_keep_the_invariant(s: Store) {
        const CAP: u32 = 3;
        let (p, xs) = pool_with(&s, 4, |sp| sp.max_bindings_per_number = CAP).await;
        let couriers: Vec<E164> = (0..3).map(|_| party()).collect();
        let customers: Vec<E164> = (0..5).map(|_| party()).collect();
        let mut tasks = Vec::new();
        for a in &couriers {
            for b in &customers {
                let (s, r) = (s.clone(), req(&p, a, b));
                tasks.push(tokio::spawn(async move {
                    (r.clone(), s.create_binding(r, now_ms()).await)
                }));
            }
        }
        let mut made: Vec<Binding> = Vec::new();
        let mut failed: Vec<NewBinding> = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (_, Ok(Created::New(b))) => made.push(b),
                (r, Err(StoreError::PoolExhausted { .. })) => failed.push(r),
                (_, other) => panic!("unexpected result {other:?}"),
            }
        }
        assert!(made.len() <= xs.len() * CAP as usize);
        assert!(!made.is_empty());
        let mut per_number: HashMap<E164, u64> = HashMap::new();
        let mut held: HashSet<(E164, E164)> = HashSet::new();
        for b in &made {
            *per_number.entry(b.number.clone()).or_default() += 1;
            for party in [&b.party_a, &b.party_b] {
                assert!(
                    held.insert((party.clone(), b.number.clone())),
                    "a party got the same number twice"
                );
            }
            assert_eq!(
                callee(&s, &p, &b.number, &b.party_a).await,
                Some(b.party_b.clone())
            );
            assert_eq!(
                callee(&s, &p, &b.number, &b.party_b).await,
                Some(b.party_a.clone())
            );
        }
        assert!(
            per_number.values().all(|n| *n <= u64::from(CAP)),
            "{per_number:?}"
        );
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!(st.live_bindings, made.len() as u64);
        for n in &st.per_number {
            assert_eq!(
                n.live_bindings,
                per_number.get(&n.number).copied().unwrap_or(0)
            );
        }
        // Nothing ended, so a pair that found no number then finds none now.
        for mut r in failed {
            r.shipment_id = common::unique("SF");
            assert_exhausted(&bind_err(&s, r).await, &p);
        }
    }

    pub async fn concurrent_identical_creates_make_one_binding(s: Store) {
        let (p, _) = pool_with(&s, 3, |_| {}).await;
        let r = req(&p, &party(), &party());
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move { s.create_binding(r, now_ms()).await.unwrap() })
            })
            .collect();
        let mut new = 0;
        let mut ids = HashSet::new();
        for t in tasks {
            let c = t.await.unwrap();
            if matches!(c, Created::New(_)) {
                new += 1;
            }
            ids.insert(c.binding().id);
        }
        assert_eq!(new, 1);
        assert_eq!(ids.len(), 1);
        assert_eq!(s.pool_stats(&p, now_ms()).await.unwrap().live_bindings, 1);
    }

    pub async fn concurrent_creates_for_one_courier_fill_the_pool_exactly(s: Store) {
        let (p, xs) = pool_with(&s, 3, |_| {}).await;
        let courier = party();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (s, r) = (s.clone(), req(&p, &courier, &party()));
                tokio::spawn(async move { s.create_binding(r, now_ms()).await })
            })
            .collect();
        let mut got = Vec::new();
        let mut exhausted = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(Created::New(b)) => got.push(b.number),
                Err(StoreError::PoolExhausted { .. }) => exhausted += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        got.sort();
        assert_eq!(got, xs, "one binding per number, every number used");
        assert_eq!(exhausted, 7);
    }

    pub async fn concurrent_handovers_to_one_courier_let_exactly_one_win(s: Store) {
        let (p, xs) = pool_with(&s, 1, |_| {}).await;
        let mut ids = Vec::new();
        for _ in 0..8 {
            ids.push(bind(&s, &p, &party(), &party()).await.id);
        }
        let z = party();
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (s, id, z) = (s.clone(), *id, z.clone());
                tokio::spawn(async move {
                    let patch = BindingPatch {
                        party_a: Some(z),
                        ..Default::default()
                    };
                    s.update_binding(id, patch, now_ms()).await
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(b) => won.push(b),
                Err(StoreError::ReassignConflict { field }) => assert_eq!(field, "party_a"),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(won.len(), 1, "the new courier may hold X once");
        let r = s.route(&p, &xs[0], &z, now_ms()).await.unwrap().unwrap();
        assert_eq!(
            (r.binding_id, r.callee),
            (won[0].id, won[0].party_b.clone())
        );
        let st = s.pool_stats(&p, now_ms()).await.unwrap();
        assert_eq!((st.live_bindings, st.cooling), (8, 1));
    }

    pub async fn expired_shipment_is_free_for_other_parties(s: Store) {
        let (p, _) = pool_with(&s, 1, |_| {}).await;
        let mut r = req(&p, &party(), &party());
        r.expires_at = now_ms() + 300;
        let old = bind_new(&s, r.clone()).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        r.party_a = party();
        r.party_b = party();
        r.expires_at = now_ms() + 3_600_000;
        let new = bind_new(&s, r.clone()).await;
        assert_ne!(new.id, old.id);
        let found = s
            .find_by_shipment(Some(&p), &r.shipment_id, now_ms())
            .await
            .unwrap();
        assert_eq!(found, vec![new]);
    }

    pub async fn handover_to_a_party_whose_cooling_passed_succeeds(s: Store) {
        let (p, xs) = pool_with(&s, 1, |sp| sp.cooling_s = 1).await;
        let (a, b) = (party(), party());
        let first = bind(&s, &p, &a, &b).await;
        s.delete_binding(first.id, now_ms()).await.unwrap();
        let (c, d) = (party(), party());
        let second = bind(&s, &p, &c, &d).await;
        let to_a = || BindingPatch {
            party_a: Some(a.clone()),
            ..Default::default()
        };
        // Still cooling: refused.
        assert!(matches!(
            s.update_binding(second.id, to_a(), now_ms()).await,
            Err(StoreError::ReassignConflict { field: "party_a" })
        ));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let up = s.update_binding(second.id, to_a(), now_ms()).await.unwrap();
        assert_eq!(up.party_a, a);
        assert_eq!(callee(&s, &p, &xs[0], &a).await, Some(d.clone()));
        assert_eq!(callee(&s, &p, &xs[0], &d).await, Some(a));
        assert_eq!(callee(&s, &p, &xs[0], &c).await, None);
    }

    pub async fn errors_never_show_a_number(s: Store) {
        let (p, xs) = pool_with(&s, 1, |_| {}).await;
        let (q, ys) = pool_with(&s, 1, |_| {}).await;
        let (a, b, c) = (party(), party(), party());
        let bd = bind(&s, &p, &a, &b).await;
        let mut errors: Vec<StoreError> = Vec::new();
        // Exhausted, conflicting shipment, reassign conflict, invalid parties.
        errors.push(bind_err(&s, req(&p, &a, &c)).await);
        let mut r = req(&p, &c, &party());
        r.shipment_id = bd.shipment_id.clone();
        errors.push(bind_err(&s, r).await);
        let other = bind(&s, &p, &c, &party()).await;
        let patch = BindingPatch {
            party_a: Some(a.clone()),
            ..Default::default()
        };
        errors.push(
            s.update_binding(other.id, patch, now_ms())
                .await
                .unwrap_err(),
        );
        errors.push(bind_err(&s, req(&p, &c, &c)).await);
        errors.push(s.retire_number(&q, &xs[0]).await.unwrap_err());
        let mut text: Vec<String> = errors
            .iter()
            .flat_map(|e| [e.to_string(), format!("{e:?}")])
            .collect();
        // Import of a number that belongs to another pool.
        let out = s.import_numbers(&q, vec![num(&xs[0], None)]).await.unwrap();
        text.extend(out.errors.into_iter().map(|(_, m)| m));
        for t in &text {
            for n in [&a, &b, &c, &xs[0], &ys[0]] {
                let digits = &n.expose()[1..];
                // The masked form keeps 3 leading and 4 trailing national digits;
                // the 6 digits in between must never appear.
                assert!(!t.contains(&digits[5..11]), "{t:?} shows a number");
            }
        }
    }

    pub async fn ping_answers(s: Store) {
        s.ping().await.unwrap();
    }
}
