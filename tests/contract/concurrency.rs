//! Contract cases for concurrency: racing calls never break the AXB invariant,
//! the per-number cap or idempotency.

use super::*;

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
