//! Contract cases for allocation: least loaded, area preference, number order,
//! the AXB invariant, exhaustion and the per-number cap.

use super::*;

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
