//! A seeded random run of store operations, checked step by step against a
//! brute-force reference model of the semantics in `crate::store`.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

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
