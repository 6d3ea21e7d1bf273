//! Contract cases for routing (the hot path) and party handover.

use super::*;

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
    // The same lookup names the shipment and the caller's side (the call record's
    // shipment and direction).
    assert_eq!(
        (r.shipment_id.as_deref(), r.caller_is_a),
        (Some(bd.shipment_id.as_str()), Some(true))
    );
    let back = s.route(&p, &x, &b, now_ms()).await.unwrap().unwrap();
    assert_eq!(
        (back.shipment_id.as_deref(), back.caller_is_a),
        (Some(bd.shipment_id.as_str()), Some(false))
    );
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
    let new_courier = s.route(&p, &x, &a2, now_ms()).await.unwrap().unwrap();
    assert_eq!(
        new_courier.caller_is_a,
        Some(true),
        "the new courier is party A"
    );
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
