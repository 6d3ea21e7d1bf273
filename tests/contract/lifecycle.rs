//! Contract cases for the binding lifecycle: idempotent create, validation, lookup
//! by shipment, extend, delivered, delete, cooling and expiry.

use super::*;

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
