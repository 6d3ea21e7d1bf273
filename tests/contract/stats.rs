//! Contract cases for statistics, audit, and privacy of error messages.

use super::*;

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
            ..Default::default()
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
            // the 6 digits in between must never appear. Match them with the 3
            // leading digits before them, so hex in ids and pool names cannot
            // match by chance (16^-9).
            assert!(!t.contains(&digits[2..11]), "{t:?} shows a number");
        }
    }
}
