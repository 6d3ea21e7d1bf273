//! Contract cases for extensions on X (printed waybills): allocation with the
//! binding, uniqueness among live and cooling bindings, capacity, handover, and
//! routing by extension.

use super::*;
use maskline::bindings::ExtensionRoute;

fn ext_req(pool: &str, a: &E164, b: &E164, len: u8) -> NewBinding {
    NewBinding {
        extension: Some(len),
        ..req(pool, a, b)
    }
}

async fn by_ext(s: &Store, pool: &str, x: &E164, ext: &str) -> ExtensionRoute {
    s.route_extension(pool, x, ext, now_ms()).await.unwrap()
}

pub async fn extensions_are_unique_per_number_and_route_to_the_courier(s: Store) {
    let (p, xs) = pool_with(&s, 1, |sp| sp.extension_len = 1).await;
    let mut seen = HashSet::new();
    let mut couriers = HashMap::new();
    for _ in 0..10 {
        let a = party();
        let bd = bind_new(&s, ext_req(&p, &a, &party(), 1)).await;
        assert_eq!(bd.number, xs[0]);
        let ext = bd.extension.clone().expect("an extension");
        assert_eq!(ext.len(), 1, "{ext}");
        assert!(ext.bytes().all(|c| c.is_ascii_digit()));
        assert!(seen.insert(ext.clone()), "extension {ext} given twice");
        // Reads return it too.
        assert_eq!(s.get_binding(bd.id, now_ms()).await.unwrap(), bd);
        couriers.insert(ext, (bd.id, a));
    }
    for (ext, (id, a)) in &couriers {
        match by_ext(&s, &p, &xs[0], ext).await {
            ExtensionRoute::Live(r) => {
                assert_eq!((r.binding_id, &r.callee, &r.pool), (*id, a, &p));
            }
            other => panic!("extension {ext}: {other:?}"),
        }
    }
    // All 10 one-digit extensions of the only number are held: a clear exhaustion;
    // a binding without extension still fits.
    assert_exhausted(&bind_err(&s, ext_req(&p, &party(), &party(), 1)).await, &p);
    let plain = bind(&s, &p, &party(), &party()).await;
    assert_eq!(plain.extension, None);
}

pub async fn extensions_fill_every_number_then_exhaust(s: Store) {
    let (p, xs) = pool_with(&s, 2, |sp| sp.extension_len = 1).await;
    let mut per_x: HashMap<E164, HashSet<String>> = HashMap::new();
    for _ in 0..20 {
        let bd = bind_new(&s, ext_req(&p, &party(), &party(), 1)).await;
        let ext = bd.extension.unwrap();
        assert!(per_x.entry(bd.number).or_default().insert(ext));
    }
    for x in &xs {
        assert_eq!(per_x.get(x).map(HashSet::len), Some(10), "{x}");
    }
    assert_exhausted(&bind_err(&s, ext_req(&p, &party(), &party(), 1)).await, &p);
    // A longer extension has room on the same numbers.
    let bd = bind_new(&s, ext_req(&p, &party(), &party(), 4)).await;
    assert_eq!(bd.extension.map(|e| e.len()), Some(4));
}

pub async fn handover_keeps_number_and_extension_and_reroutes(s: Store) {
    let (p, _) = pool_with(&s, 3, |_| {}).await;
    let (a, b, a2) = (party(), party(), party());
    let bd = bind_new(&s, ext_req(&p, &a, &b, 4)).await;
    let ext = bd.extension.clone().unwrap();
    let patch = BindingPatch {
        party_a: Some(a2.clone()),
        ..Default::default()
    };
    let up = s.update_binding(bd.id, patch, now_ms()).await.unwrap();
    assert_eq!((&up.number, &up.extension), (&bd.number, &bd.extension));
    match by_ext(&s, &p, &bd.number, &ext).await {
        ExtensionRoute::Live(r) => assert_eq!(r.callee, a2, "the new courier"),
        other => panic!("{other:?}"),
    }
    // Extending keeps it too.
    let patch = BindingPatch {
        expires_at: Some(now_ms() + 7_200_000),
        ..Default::default()
    };
    let up = s.update_binding(bd.id, patch, now_ms()).await.unwrap();
    assert_eq!(up.extension, bd.extension);
    let d = s.mark_delivered(bd.id, now_ms()).await.unwrap();
    assert_eq!(d.extension, bd.extension);
    // Idempotent create answers the same extension.
    let again = NewBinding {
        shipment_id: bd.shipment_id.clone(),
        ..ext_req(&p, &a2, &b, 4)
    };
    match s.create_binding(again, now_ms()).await.unwrap() {
        Created::Existing(e) => assert_eq!(e.extension, bd.extension),
        other => panic!("{other:?}"),
    }
}

pub async fn ended_extension_is_known_and_not_reused_while_cooling(s: Store) {
    let (p, xs) = pool_with(&s, 1, |sp| sp.extension_len = 1).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(bind_new(&s, ext_req(&p, &party(), &party(), 1)).await);
    }
    let gone = &ids[3];
    s.delete_binding(gone.id, now_ms()).await.unwrap();
    let ext = gone.extension.clone().unwrap();
    assert_eq!(by_ext(&s, &p, &xs[0], &ext).await, ExtensionRoute::Ended);
    // Its extension cools: still no room on the only number.
    assert_exhausted(&bind_err(&s, ext_req(&p, &party(), &party(), 1)).await, &p);
    // Never-given extensions of another length are unknown.
    assert_eq!(by_ext(&s, &p, &xs[0], "55").await, ExtensionRoute::Unknown);
    let (q, ys) = pool_with(&s, 1, |_| {}).await;
    assert_eq!(
        by_ext(&s, &q, &ys[0], "1234").await,
        ExtensionRoute::Unknown
    );
}

pub async fn expired_extension_routes_nowhere_without_reaping(s: Store) {
    let (p, _) = pool_with(&s, 1, |_| {}).await;
    let r = NewBinding {
        expires_at: now_ms() + 300,
        ..ext_req(&p, &party(), &party(), 4)
    };
    let bd = bind_new(&s, r).await;
    let ext = bd.extension.clone().unwrap();
    assert!(matches!(
        by_ext(&s, &p, &bd.number, &ext).await,
        ExtensionRoute::Live(_)
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        by_ext(&s, &p, &bd.number, &ext).await,
        ExtensionRoute::Ended
    );
}

pub async fn extension_length_is_validated(s: Store) {
    let (p, _) = pool_with(&s, 1, |_| {}).await;
    for len in [0, 7] {
        assert_invalid(
            &bind_err(&s, ext_req(&p, &party(), &party(), len)).await,
            "extension",
        );
    }
    let mut sp = spec(&common::unique("p"));
    sp.extension_len = 7;
    let e = s.create_pool(sp).await.unwrap_err();
    assert_invalid(&e, "extension_len");
    // A pool's extension settings read back.
    let (q, _) = pool_with(&s, 1, |sp| {
        sp.extensions = true;
        sp.extension_len = 5;
    })
    .await;
    let got = s.get_pool(&q).await.unwrap();
    assert!(got.extensions);
    assert_eq!(got.extension_len, 5);
}

pub async fn concurrent_extension_creates_fill_a_number_exactly(s: Store) {
    let (p, _) = pool_with(&s, 1, |sp| sp.extension_len = 1).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        let r = ext_req(&p, &party(), &party(), 1);
        tasks.push(tokio::spawn(
            async move { s.create_binding(r, now_ms()).await },
        ));
    }
    let mut exts = HashSet::new();
    let mut exhausted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => assert!(exts.insert(c.binding().extension.clone().unwrap())),
            Err(StoreError::PoolExhausted { .. }) => exhausted += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((exts.len(), exhausted), (10, 6));
}
