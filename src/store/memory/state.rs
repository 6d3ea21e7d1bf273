//! The memory store's state and rules, as plain synchronous code.
//!
//! [`State`] holds every pool, binding and audit entry; [`super::MemoryStore`] wraps it
//! in one lock, so each method here runs atomically. Keeping the rules free of locks
//! and `async` makes them easy to read and to unit-test with a synthetic clock.
//!
//! Every call that changes a pool or reads its counters first reaps the pool's
//! expired bindings (see [`Pool::reap`]), so counters are exact at `now` and no
//! change ever meets an expired-but-unreaped binding; lookups that do not reap check
//! `expires_at` themselves, so an expired binding never routes. Time passed in is
//! assumed not to run backwards between calls (callers pass the wall clock).
//!
//! Cost: that in-call reap is O(bindings expired since the last one) — about 5 µs
//! each on the 2-core dev box. The background reaper (`MemoryStore::reap`, in
//! batches that release the lock) keeps that backlog small; without it, the first
//! change after a long idle period pays for the whole backlog at once.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

use super::pool::Pool;
use crate::bindings::{
    validate_area, validate_expiry, validate_new_binding, validate_pool_spec, Binding, BindingId,
    BindingPatch, BindingState, Created, ExtensionRoute, ImportOutcome, Invalid, NewBinding,
    NumberLoad, NumberSpec, NumberState, PartyLoad, PoolSpec, PoolStats, Route, UnixMs,
};
use crate::numbers::{NumberHasher, E164};
use crate::store::{AuditEntry, StoreError};

/// How many audit entries the memory store keeps (oldest dropped first).
pub const AUDIT_CAPACITY: usize = 10_000;

/// How many parties `pool_stats` lists.
pub(super) const BUSIEST_PARTIES: usize = 10;

/// Everything the memory store knows.
#[derive(Default)]
pub(super) struct State {
    pub(super) pools: HashMap<String, Pool>,
    /// Which pool each virtual number belongs to.
    pub(super) number_pool: HashMap<E164, String>,
    /// Bindings not yet reaped (live, or expired and awaiting the reaper).
    pub(super) bindings: HashMap<BindingId, Binding>,
    /// Newest first.
    audit: VecDeque<AuditEntry>,
}

fn pool_mut<'a>(
    pools: &'a mut HashMap<String, Pool>,
    name: &str,
) -> Result<&'a mut Pool, StoreError> {
    pools
        .get_mut(name)
        .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))
}

/// A random probe (start, step) for extension allocation: the step is coprime to
/// 10, so probing visits every extension of any length.
fn probe() -> (u32, u32) {
    use rand::Rng;
    let mut rng = rand::rng();
    const STEPS: [u32; 8] = [1, 3, 7, 9, 11, 13, 17, 19];
    let step = STEPS
        .get(rng.random_range(0..STEPS.len()))
        .copied()
        .unwrap_or(1);
    (rng.random_range(0..1_000_000), step)
}

/// The opaque id of a party in statistics: first 8 bytes of its keyed hash, hex.
fn opaque_party(hasher: &NumberHasher, party: &E164) -> String {
    let h = hasher.hash(party);
    hex::encode(h.get(..8).unwrap_or(&h))
}

impl State {
    pub(super) fn create_pool(&mut self, spec: PoolSpec) -> Result<(), StoreError> {
        validate_pool_spec(&spec)?;
        if self.pools.contains_key(&spec.name) {
            return Err(StoreError::PoolExists(spec.name));
        }
        self.pools.insert(spec.name.clone(), Pool::new(spec));
        Ok(())
    }

    pub(super) fn get_pool(&self, name: &str) -> Result<PoolSpec, StoreError> {
        self.pools
            .get(name)
            .map(|p| p.spec.clone())
            .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))
    }

    pub(super) fn list_pools(&self) -> Vec<PoolSpec> {
        let mut out: Vec<PoolSpec> = self.pools.values().map(|p| p.spec.clone()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub(super) fn import_numbers(
        &mut self,
        name: &str,
        numbers: Vec<NumberSpec>,
    ) -> Result<ImportOutcome, StoreError> {
        let pool = pool_mut(&mut self.pools, name)?;
        let mut out = ImportOutcome::default();
        for (i, spec) in numbers.into_iter().enumerate() {
            if let Some(area) = &spec.area {
                if let Err(e) = validate_area(area, "area") {
                    out.errors.push((i, e.to_string()));
                    continue;
                }
            }
            match self.number_pool.get(&spec.number) {
                Some(p) if p == name => out.skipped += 1,
                Some(_) => out
                    .errors
                    .push((i, "number belongs to another pool".to_owned())),
                None => {
                    self.number_pool
                        .insert(spec.number.clone(), name.to_owned());
                    pool.add_number(spec.number, spec.area, spec.capabilities);
                    out.added += 1;
                }
            }
        }
        Ok(out)
    }

    pub(super) fn retire_number(&mut self, name: &str, number: &E164) -> Result<(), StoreError> {
        if pool_mut(&mut self.pools, name)?.retire(number) {
            Ok(())
        } else {
            Err(StoreError::NumberNotFound)
        }
    }

    pub(super) fn pool_of_number(&self, number: &E164) -> Option<String> {
        self.number_pool.get(number).cloned()
    }

    pub(super) fn pool_stats(
        &mut self,
        name: &str,
        now: UnixMs,
        hasher: &NumberHasher,
    ) -> Result<PoolStats, StoreError> {
        let pool = pool_mut(&mut self.pools, name)?;
        pool.reap(&mut self.bindings, now);
        let mut per_number: Vec<NumberLoad> = pool
            .numbers
            .iter()
            .map(|(x, rec)| NumberLoad {
                number: x.clone(),
                area: rec.area.clone(),
                state: rec.state,
                live_bindings: rec.live,
            })
            .collect();
        per_number.sort_by(|a, b| {
            b.live_bindings
                .cmp(&a.live_bindings)
                .then_with(|| a.number.cmp(&b.number))
        });
        let numbers = per_number.len() as u64;
        let active_numbers = per_number
            .iter()
            .filter(|n| n.state == NumberState::Active)
            .count() as u64;
        // Top parties by live bindings in O(parties); only those get hashed.
        let mut top: Vec<(u64, &E164)> = pool.party_live().iter().map(|(p, n)| (*n, p)).collect();
        let busiest_first = |a: &(u64, &E164), b: &(u64, &E164)| b.0.cmp(&a.0).then(a.1.cmp(b.1));
        if top.len() > BUSIEST_PARTIES {
            top.select_nth_unstable_by(BUSIEST_PARTIES - 1, busiest_first);
            top.truncate(BUSIEST_PARTIES);
        }
        let mut busiest_parties: Vec<PartyLoad> = top
            .into_iter()
            .map(|(n, p)| PartyLoad {
                party: opaque_party(hasher, p),
                live_bindings: n,
            })
            .collect();
        busiest_parties.sort_by(|a, b| {
            b.live_bindings
                .cmp(&a.live_bindings)
                .then_with(|| a.party.cmp(&b.party))
        });
        Ok(PoolStats {
            spec: pool.spec.clone(),
            numbers,
            active_numbers,
            retired_numbers: numbers - active_numbers,
            live_bindings: pool.expiry.len() as u64,
            cooling: pool.cooling_count(),
            per_number,
            busiest_parties,
        })
    }

    pub(super) fn create_binding(
        &mut self,
        req: NewBinding,
        now: UnixMs,
    ) -> Result<Created, StoreError> {
        validate_new_binding(&req, now)?;
        let pool = pool_mut(&mut self.pools, &req.pool)?;
        pool.reap(&mut self.bindings, now);
        if let Some(existing) = pool
            .ship
            .get(&req.shipment_id)
            .and_then(|id| self.bindings.get(id))
        {
            // Reaped just above, so the binding is live.
            if existing.party_a == req.party_a && existing.party_b == req.party_b {
                return Ok(Created::Existing(existing.clone()));
            }
            return Err(StoreError::ShipmentConflict {
                existing: existing.id,
            });
        }
        let number = pool
            .pick(
                &req.party_a,
                &req.party_b,
                req.area.as_deref(),
                req.extension,
                now,
            )
            .ok_or_else(|| StoreError::PoolExhausted {
                pool: req.pool.clone(),
            });
        let number = match number {
            Ok(n) => n,
            Err(e) => {
                pool.count(now, 1);
                return Err(e);
            }
        };
        let id = Uuid::now_v7();
        let extension = match req.extension {
            Some(len) => Some(
                pool.take_extension(
                    &number,
                    len,
                    id,
                    req.expires_at.saturating_add(pool.cooling_ms),
                    probe(),
                    now,
                )
                .ok_or_else(|| {
                    pool.count(now, 1);
                    StoreError::PoolExhausted {
                        pool: req.pool.clone(),
                    }
                })?,
            ),
            None => None,
        };
        let binding = Binding {
            id,
            pool: req.pool,
            shipment_id: req.shipment_id,
            number,
            party_a: req.party_a,
            party_b: req.party_b,
            created_at: now,
            expires_at: req.expires_at,
            state: BindingState::Active,
            extension,
        };
        pool.link(&binding);
        pool.count(now, 0);
        self.bindings.insert(binding.id, binding.clone());
        Ok(Created::New(binding))
    }

    /// The live binding `id` at `now`.
    fn live(&self, id: BindingId, now: UnixMs) -> Result<&Binding, StoreError> {
        self.bindings
            .get(&id)
            .filter(|b| b.expires_at > now)
            .ok_or(StoreError::BindingNotFound)
    }

    /// The live binding `id` (cloned) and its pool, reaped at `now`.
    fn live_in_pool(
        &mut self,
        id: BindingId,
        now: UnixMs,
    ) -> Result<(Binding, &mut Pool), StoreError> {
        let cur = self.live(id, now)?.clone();
        let pool = self
            .pools
            .get_mut(&cur.pool)
            .ok_or(StoreError::BindingNotFound)?;
        // Does not remove `cur`: it is live at `now`.
        pool.reap(&mut self.bindings, now);
        Ok((cur, pool))
    }

    pub(super) fn get_binding(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
        self.live(id, now).cloned()
    }

    pub(super) fn find_by_shipment(
        &self,
        pool: Option<&str>,
        shipment_id: &str,
        now: UnixMs,
    ) -> Result<Vec<Binding>, StoreError> {
        let mut pools: Vec<&Pool> = match pool {
            Some(name) => vec![self
                .pools
                .get(name)
                .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))?],
            None => self.pools.values().collect(),
        };
        pools.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(pools
            .into_iter()
            .filter_map(|p| p.ship.get(shipment_id))
            .filter_map(|id| self.live(*id, now).ok())
            .cloned()
            .collect())
    }

    pub(super) fn update_binding(
        &mut self,
        id: BindingId,
        patch: BindingPatch,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        let (cur, pool) = self.live_in_pool(id, now)?;
        let new_a = patch.party_a.unwrap_or_else(|| cur.party_a.clone());
        let new_b = patch.party_b.unwrap_or_else(|| cur.party_b.clone());
        if new_a == new_b {
            let field = if new_b != cur.party_b {
                "party_b"
            } else {
                "party_a"
            };
            return Err(Invalid::new(field, "party_a and party_b must differ").into());
        }
        if let Some(exp) = patch.expires_at {
            validate_expiry(exp, now)?;
        }
        let x = &cur.number;
        let a_changes = new_a != cur.party_a;
        let b_changes = new_b != cur.party_b;
        if a_changes && pool.holds(&new_a, x, now) {
            return Err(StoreError::ReassignConflict { field: "party_a" });
        }
        if b_changes && pool.holds(&new_b, x, now) {
            return Err(StoreError::ReassignConflict { field: "party_b" });
        }
        // New parties hold no hold on X (checked above), so they differ from the
        // old ones and the two handovers cannot overwrite each other.
        if a_changes {
            pool.hand_over(&cur, &cur.party_a, &new_a, now);
        }
        if b_changes {
            pool.hand_over(&cur, &cur.party_b, &new_b, now);
        }
        let mut next = cur;
        next.party_a = new_a;
        next.party_b = new_b;
        if let Some(exp) = patch.expires_at {
            pool.move_expiry(&next, exp);
            next.expires_at = exp;
        }
        self.bindings.insert(id, next.clone());
        Ok(next)
    }

    pub(super) fn mark_delivered(
        &mut self,
        id: BindingId,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        let (mut b, pool) = self.live_in_pool(id, now)?;
        let exp = now.saturating_add(pool.grace_ms);
        pool.move_expiry(&b, exp);
        b.expires_at = exp;
        b.state = BindingState::Delivered;
        self.bindings.insert(id, b.clone());
        Ok(b)
    }

    pub(super) fn delete_binding(&mut self, id: BindingId, now: UnixMs) -> Result<(), StoreError> {
        let (b, pool) = self.live_in_pool(id, now)?;
        pool.unlink(&b, now);
        self.bindings.remove(&id);
        Ok(())
    }

    pub(super) fn route(
        &self,
        pool: &str,
        number: &E164,
        caller: &E164,
        now: UnixMs,
    ) -> Option<Route> {
        let id = self.pools.get(pool)?.routes.get(number)?.get(caller)?;
        let b = self.live(*id, now).ok()?;
        let callee = if *caller == b.party_a {
            &b.party_b
        } else if *caller == b.party_b {
            &b.party_a
        } else {
            return None;
        };
        Some(Route {
            binding_id: b.id,
            pool: b.pool.clone(),
            callee: callee.clone(),
            expires_at: b.expires_at,
            shipment_id: Some(b.shipment_id.clone()),
            caller_is_a: Some(*caller == b.party_a),
        })
    }

    pub(super) fn route_extension(
        &self,
        pool: &str,
        number: &E164,
        ext: &str,
        now: UnixMs,
    ) -> ExtensionRoute {
        let Some(h) = self
            .pools
            .get(pool)
            .and_then(|p| p.ext_holder(number, ext, now))
        else {
            return ExtensionRoute::Unknown;
        };
        match self.live(h.id, now) {
            Ok(b) => ExtensionRoute::Live(Route {
                binding_id: b.id,
                pool: b.pool.clone(),
                callee: b.party_a.clone(),
                expires_at: b.expires_at,
                shipment_id: Some(b.shipment_id.clone()),
                caller_is_a: None,
            }),
            Err(_) => ExtensionRoute::Ended,
        }
    }

    /// Reaps every pool at `now` in one go.
    #[cfg(test)]
    pub(super) fn reap(&mut self, now: UnixMs) -> u64 {
        self.reap_some(now, usize::MAX).0
    }

    /// Reaps pools at `now`, doing at most about `budget` steps (bindings reaped
    /// plus cooled holds forgotten). Returns (bindings reaped, whether finished).
    pub(super) fn reap_some(&mut self, now: UnixMs, budget: usize) -> (u64, bool) {
        let mut reaped = 0;
        let mut left = budget;
        for pool in self.pools.values_mut() {
            let (n, used, done) = pool.reap_some(&mut self.bindings, now, left);
            reaped += n;
            left = left.saturating_sub(used);
            if !done {
                return (reaped, false);
            }
        }
        (reaped, true)
    }

    pub(super) fn append_audit(&mut self, entry: AuditEntry) {
        if self.audit.len() >= AUDIT_CAPACITY {
            self.audit.pop_back();
        }
        self.audit.push_front(entry);
    }

    pub(super) fn read_audit(&self, limit: usize) -> Vec<AuditEntry> {
        self.audit.iter().take(limit).cloned().collect()
    }
}
