//! Contract cases for pools and numbers: create, list, import, retire, the pool
//! of a number, ping.

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

pub async fn ping_answers(s: Store) {
    s.ping().await.unwrap();
}
