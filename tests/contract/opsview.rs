//! Contract cases for the ops view: quarantine and release, the counter-based
//! overview (states, live, quantiles, busiest parties, allocation and exhausted
//! counts) and paged number lists.

use super::*;

pub async fn quarantined_number_takes_no_new_bindings_and_returns_to_service(s: Store) {
    let (p, xs) = pool_with(&s, 2, |_| {}).await;
    let (a, b) = (party(), party());
    let live = bind(&s, &p, &a, &b).await;
    let q = live.number.clone();
    let prev = s
        .set_number_state(&p, &q, NumberState::Quarantined)
        .await
        .unwrap();
    assert_eq!(prev, NumberState::Active);
    // Idempotent; the existing binding lives out and keeps routing.
    assert_eq!(
        s.set_number_state(&p, &q, NumberState::Quarantined)
            .await
            .unwrap(),
        NumberState::Quarantined
    );
    assert_eq!(callee(&s, &p, &q, &a).await, Some(b.clone()));
    assert_eq!(s.get_binding(live.id, now_ms()).await.unwrap(), live);
    let other = xs.iter().find(|x| **x != q).unwrap().clone();
    for _ in 0..4 {
        assert_eq!(bind(&s, &p, &party(), &party()).await.number, other);
    }
    let o = s.pool_overview(&p, now_ms()).await.unwrap();
    assert_eq!((o.active, o.quarantined, o.live_bindings), (1, 1, 5));
    // Back in service: the least-loaded number again, so it takes the next ones.
    assert_eq!(
        s.set_number_state(&p, &q, NumberState::Active)
            .await
            .unwrap(),
        NumberState::Quarantined
    );
    assert_eq!(bind(&s, &p, &party(), &party()).await.number, q);
    // Quarantined then retired: drains, never returns by itself.
    s.set_number_state(&p, &q, NumberState::Quarantined)
        .await
        .unwrap();
    s.retire_number(&p, &q).await.unwrap();
    let o = s.pool_overview(&p, now_ms()).await.unwrap();
    assert_eq!(
        (o.active, o.quarantined, o.draining, o.retired),
        (1, 0, 1, 0)
    );
    assert!(matches!(
        s.set_number_state(&p, &vnums(1)[0], NumberState::Quarantined)
            .await,
        Err(StoreError::NumberNotFound)
    ));
    assert!(matches!(
        s.set_number_state(&common::unique("nopool"), &q, NumberState::Active)
            .await,
        Err(StoreError::PoolNotFound(_))
    ));
}

pub async fn overview_counts_from_counters(s: Store) {
    let (p, xs) = pool_with(&s, 3, |_| {}).await;
    let courier = party();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(bind(&s, &p, &courier, &party()).await.id);
    }
    // The courier holds every number: the pool is exhausted for them.
    assert_exhausted(&bind_err(&s, req(&p, &courier, &party())).await, &p);
    bind(&s, &p, &party(), &party()).await;
    let o = s.pool_overview(&p, now_ms()).await.unwrap();
    assert_eq!(
        (o.active, o.draining, o.retired, o.quarantined),
        (3, 0, 0, 0)
    );
    assert_eq!(o.live_bindings, 4);
    assert_eq!(
        (o.per_number.min, o.per_number.median, o.per_number.max),
        (1, 1, 2)
    );
    assert_eq!(o.busiest_parties[0].live_bindings, 3);
    assert_eq!((o.last_hour.allocations, o.last_hour.exhausted), (4, 1));
    assert_eq!(o.hours.len(), 24);
    let day: u64 = o.hours.iter().map(|h| h.allocations).sum();
    assert_eq!(day, 4);
    assert_eq!(o.hours[23].live_sample, Some(4));
    // Ending a binding lowers the live count and the courier's load.
    s.delete_binding(ids[0], now_ms()).await.unwrap();
    let o = s.pool_overview(&p, now_ms()).await.unwrap();
    assert_eq!(o.live_bindings, 3);
    assert_eq!(o.busiest_parties[0].live_bindings, 2);
    // Creations after the first overview are counted in (the running total).
    bind(&s, &p, &party(), &party()).await;
    assert_eq!(
        s.pool_overview(&p, now_ms()).await.unwrap().live_bindings,
        4
    );
    let _ = xs;
}

pub async fn numbers_are_paged_in_number_order(s: Store) {
    let (p, mut xs) = pool_with(&s, 5, |_| {}).await;
    xs.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s.list_numbers(&p, cursor.as_deref(), 2).await.unwrap();
        assert!(page.numbers.len() <= 2);
        seen.extend(page.numbers.iter().map(|n| n.number.clone()));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, xs);
    let all = s.list_numbers(&p, None, 100).await.unwrap();
    assert_eq!((all.numbers.len(), all.next), (5, None));
    assert!(all.numbers.iter().all(|n| n.state == NumberState::Active));
    assert!(matches!(
        s.list_numbers(&common::unique("nopool"), None, 10).await,
        Err(StoreError::PoolNotFound(_))
    ));
}

pub async fn expired_bindings_leave_the_overview(s: Store) {
    let (p, _) = pool_with(&s, 2, |_| {}).await;
    let courier = party();
    for _ in 0..2 {
        let mut r = req(&p, &courier, &party());
        r.expires_at = now_ms() + 300;
        bind_new(&s, r).await;
    }
    let o = s.pool_overview(&p, now_ms()).await.unwrap();
    assert_eq!(o.live_bindings, 2);
    assert_eq!(o.busiest_parties[0].live_bindings, 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.reap(now_ms()).await.unwrap();
    let o = s.pool_overview(&p, now_ms()).await.unwrap();
    assert_eq!(o.live_bindings, 0);
    assert!(
        o.busiest_parties.iter().all(|b| b.live_bindings == 0),
        "{o:?}"
    );
    // The two ended bindings cool (both parties each): counted at minute
    // resolution, so at most 4.
    assert!(o.cooling <= 4, "{o:?}");
}

/// Many allocations and ends (more than the Redis store's batch of queued counter
/// updates, 128): the overview is still exact — live total, allocations of the
/// hour, and the two busy couriers' counts, busiest first.
pub async fn overview_stays_exact_over_many_updates(s: Store) {
    let (p, _) = pool_with(&s, 160, |_| {}).await;
    let (c1, c2) = (party(), party());
    let mut ids = Vec::new();
    for _ in 0..150 {
        ids.push(bind(&s, &p, &c1, &party()).await.id);
    }
    for _ in 0..20 {
        bind(&s, &p, &c2, &party()).await;
    }
    for id in &ids[..10] {
        s.delete_binding(*id, now_ms()).await.unwrap();
    }
    let o = s.pool_overview(&p, now_ms()).await.unwrap();
    assert_eq!(o.live_bindings, 160);
    assert_eq!(o.last_hour.allocations, 170);
    let busiest: Vec<u64> = o.busiest_parties.iter().map(|b| b.live_bindings).collect();
    assert_eq!(&busiest[..2], &[140, 20], "{busiest:?}");
}
