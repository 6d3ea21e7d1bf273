//! The memory store's state and rules, as plain synchronous code.
//!
//! [`State`] holds every pool, binding and audit entry; [`super::MemoryStore`] wraps it
//! in one lock, so each method here runs atomically. Keeping the rules free of locks
//! and `async` makes them easy to read and to unit-test.
//!
//! Per pool, indexes keep every call cheap:
//! - `active`/`by_area`: active numbers ordered by (live bindings, number), so
//!   allocation walks from the least-loaded number and stops at the cap;
//! - `holds`: party → X → end of the party's binding on X; the party holds X while
//!   `now < end + cooling` (live bindings have `end = expires_at`);
//! - `routes`: X → caller → binding id, the hot-path lookup;
//! - `expiry`: (expires_at, id), so expired bindings are reaped in order.
//!
//! Every call that reads counters or allocates first reaps the pool's expired
//! bindings, so counters are exact at `now`; lookups that do not reap check
//! `expires_at` themselves, so an expired binding never routes.

use std::collections::{BTreeSet, HashMap, VecDeque};

use uuid::Uuid;

use crate::bindings::{
    validate_area, validate_expiry, validate_new_binding, validate_pool_spec, Binding, BindingId,
    BindingPatch, BindingState, Capabilities, Created, ImportOutcome, Invalid, NewBinding,
    NumberLoad, NumberSpec, NumberState, PartyLoad, PoolSpec, PoolStats, Route, UnixMs,
};
use crate::numbers::{NumberHasher, E164};
use crate::store::{AuditEntry, StoreError};

/// How many audit entries the memory store keeps (oldest dropped first).
pub const AUDIT_CAPACITY: usize = 10_000;

/// How many parties `pool_stats` lists.
const BUSIEST_PARTIES: usize = 10;

/// Everything the memory store knows.
#[derive(Default)]
pub(super) struct State {
    pools: HashMap<String, Pool>,
    /// Which pool each virtual number belongs to.
    number_pool: HashMap<E164, String>,
    /// Bindings not yet reaped (live, or expired and awaiting the reaper).
    bindings: HashMap<BindingId, Binding>,
    /// Newest first.
    audit: VecDeque<AuditEntry>,
}

/// One virtual number's record in its pool.
struct NumberRec {
    area: Option<String>,
    #[allow(dead_code)] // kept for the number's record; no rule reads it yet
    capabilities: Capabilities,
    state: NumberState,
    /// Bindings on this number not yet reaped (exact after the pool is reaped).
    live: u64,
}

/// One pool and its indexes.
struct Pool {
    spec: PoolSpec,
    cooling_ms: i64,
    grace_ms: i64,
    numbers: HashMap<E164, NumberRec>,
    /// Active numbers by (live bindings, number).
    active: BTreeSet<(u64, E164)>,
    /// The same, per area tag.
    by_area: HashMap<String, BTreeSet<(u64, E164)>>,
    /// Shipment id → binding (idempotency).
    ship: HashMap<String, BindingId>,
    /// X → caller → binding.
    routes: HashMap<E164, HashMap<E164, BindingId>>,
    /// Party → X → end of the party's binding on X.
    holds: HashMap<E164, HashMap<E164, UnixMs>>,
    /// (expires_at, id) of every unreaped binding.
    expiry: BTreeSet<(UnixMs, BindingId)>,
}

fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX / 4)
}

impl Pool {
    fn new(spec: PoolSpec) -> Self {
        Self {
            cooling_ms: secs_to_ms(spec.cooling_s),
            grace_ms: secs_to_ms(spec.grace_s),
            spec,
            numbers: HashMap::new(),
            active: BTreeSet::new(),
            by_area: HashMap::new(),
            ship: HashMap::new(),
            routes: HashMap::new(),
            holds: HashMap::new(),
            expiry: BTreeSet::new(),
        }
    }

    /// Whether `party` holds `x` (live or cooling) at `now`.
    fn holds(&self, party: &E164, x: &E164, now: UnixMs) -> bool {
        self.holds
            .get(party)
            .and_then(|m| m.get(x))
            .is_some_and(|end| end.saturating_add(self.cooling_ms) > now)
    }

    fn set_hold(&mut self, party: &E164, x: &E164, end: UnixMs) {
        self.holds
            .entry(party.clone())
            .or_default()
            .insert(x.clone(), end);
    }

    /// Removes `x` from the allocation indexes (before its load changes or it retires).
    fn unindex(&mut self, x: &E164) {
        let Some(rec) = self.numbers.get(x) else {
            return;
        };
        if rec.state != NumberState::Active {
            return;
        }
        let key = (rec.live, x.clone());
        self.active.remove(&key);
        if let Some(set) = rec.area.as_ref().and_then(|a| self.by_area.get_mut(a)) {
            set.remove(&key);
        }
    }

    /// Puts `x` back into the allocation indexes if it is active.
    fn index(&mut self, x: &E164) {
        let Some(rec) = self.numbers.get(x) else {
            return;
        };
        if rec.state != NumberState::Active {
            return;
        }
        let key = (rec.live, x.clone());
        if let Some(area) = &rec.area {
            self.by_area
                .entry(area.clone())
                .or_default()
                .insert(key.clone());
        }
        self.active.insert(key);
    }

    fn add_load(&mut self, x: &E164, up: bool) {
        self.unindex(x);
        if let Some(rec) = self.numbers.get_mut(x) {
            rec.live = if up {
                rec.live.saturating_add(1)
            } else {
                rec.live.saturating_sub(1)
            };
        }
        self.index(x);
    }

    /// The number for a new binding of `a` and `b`, per the allocation rule.
    fn pick(&self, a: &E164, b: &E164, area: Option<&str>, now: UnixMs) -> Option<E164> {
        let cap = u64::from(self.spec.max_bindings_per_number);
        let first_free = |set: &BTreeSet<(u64, E164)>| {
            set.iter()
                .take_while(|(live, _)| *live < cap)
                .find(|(_, x)| !self.holds(a, x, now) && !self.holds(b, x, now))
                .map(|(_, x)| x.clone())
        };
        area.and_then(|area| self.by_area.get(area))
            .and_then(first_free)
            .or_else(|| first_free(&self.active))
    }

    /// Adds a new binding to every index.
    fn link(&mut self, b: &Binding) {
        let routes = self.routes.entry(b.number.clone()).or_default();
        routes.insert(b.party_a.clone(), b.id);
        routes.insert(b.party_b.clone(), b.id);
        self.ship.insert(b.shipment_id.clone(), b.id);
        self.set_hold(&b.party_a, &b.number, b.expires_at);
        self.set_hold(&b.party_b, &b.number, b.expires_at);
        self.expiry.insert((b.expires_at, b.id));
        self.add_load(&b.number, true);
    }

    fn unroute(&mut self, x: &E164, party: &E164, id: BindingId) {
        if let Some(routes) = self.routes.get_mut(x) {
            if routes.get(party) == Some(&id) {
                routes.remove(party);
            }
            if routes.is_empty() {
                self.routes.remove(x);
            }
        }
    }

    /// Removes an ended binding from every index but the holds (which then cool).
    fn unlink(&mut self, b: &Binding) {
        self.unroute(&b.number, &b.party_a, b.id);
        self.unroute(&b.number, &b.party_b, b.id);
        if self.ship.get(&b.shipment_id) == Some(&b.id) {
            self.ship.remove(&b.shipment_id);
        }
        self.expiry.remove(&(b.expires_at, b.id));
        self.add_load(&b.number, false);
    }

    /// Reaps the pool's bindings that expired at or before `now`.
    fn reap(&mut self, bindings: &mut HashMap<BindingId, Binding>, now: UnixMs) -> u64 {
        let mut reaped = 0;
        while let Some(&(exp, id)) = self.expiry.first() {
            if exp > now {
                break;
            }
            self.expiry.pop_first();
            if let Some(b) = bindings.remove(&id) {
                self.unlink(&b);
            }
            reaped += 1;
        }
        reaped
    }

    /// Forgets holds whose cooling has passed.
    fn purge_holds(&mut self, now: UnixMs) {
        let cooling = self.cooling_ms;
        self.holds.retain(|_, xs| {
            xs.retain(|_, end| end.saturating_add(cooling) > now);
            !xs.is_empty()
        });
    }
}

fn pool_mut<'a>(
    pools: &'a mut HashMap<String, Pool>,
    name: &str,
) -> Result<&'a mut Pool, StoreError> {
    pools
        .get_mut(name)
        .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))
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
                    pool.numbers.insert(
                        spec.number.clone(),
                        NumberRec {
                            area: spec.area,
                            capabilities: spec.capabilities,
                            state: NumberState::Active,
                            live: 0,
                        },
                    );
                    pool.index(&spec.number);
                    out.added += 1;
                }
            }
        }
        Ok(out)
    }

    pub(super) fn retire_number(&mut self, name: &str, number: &E164) -> Result<(), StoreError> {
        let pool = pool_mut(&mut self.pools, name)?;
        if !pool.numbers.contains_key(number) {
            return Err(StoreError::NumberNotFound);
        }
        pool.unindex(number);
        if let Some(rec) = pool.numbers.get_mut(number) {
            rec.state = NumberState::Retired;
        }
        Ok(())
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
        let active_numbers = per_number
            .iter()
            .filter(|n| n.state == NumberState::Active)
            .count() as u64;
        let mut cooling = 0u64;
        let mut parties: Vec<PartyLoad> = Vec::new();
        for (party, xs) in &pool.holds {
            let mut live = 0u64;
            for end in xs.values() {
                if *end > now {
                    live += 1;
                } else if end.saturating_add(pool.cooling_ms) > now {
                    cooling += 1;
                }
            }
            if live > 0 {
                let h = hasher.hash(party);
                parties.push(PartyLoad {
                    party: hex::encode(h.get(..8).unwrap_or(&h)),
                    live_bindings: live,
                });
            }
        }
        parties.sort_by(|a, b| {
            b.live_bindings
                .cmp(&a.live_bindings)
                .then_with(|| a.party.cmp(&b.party))
        });
        parties.truncate(BUSIEST_PARTIES);
        Ok(PoolStats {
            spec: pool.spec.clone(),
            numbers: per_number.len() as u64,
            active_numbers,
            retired_numbers: per_number.len() as u64 - active_numbers,
            live_bindings: pool.expiry.len() as u64,
            cooling,
            per_number,
            busiest_parties: parties,
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
            .pick(&req.party_a, &req.party_b, req.area.as_deref(), now)
            .ok_or_else(|| StoreError::PoolExhausted {
                pool: req.pool.clone(),
            })?;
        let binding = Binding {
            id: Uuid::now_v7(),
            pool: req.pool,
            shipment_id: req.shipment_id,
            number,
            party_a: req.party_a,
            party_b: req.party_b,
            created_at: now,
            expires_at: req.expires_at,
            state: BindingState::Active,
        };
        pool.link(&binding);
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

    /// Moves a live binding's expiry (and its parties' holds) to `expires_at`.
    fn set_expiry(&mut self, id: BindingId, expires_at: UnixMs) {
        let Some(b) = self.bindings.get_mut(&id) else {
            return;
        };
        let Some(pool) = self.pools.get_mut(&b.pool) else {
            return;
        };
        pool.expiry.remove(&(b.expires_at, id));
        pool.expiry.insert((expires_at, id));
        pool.set_hold(&b.party_a, &b.number, expires_at);
        pool.set_hold(&b.party_b, &b.number, expires_at);
        b.expires_at = expires_at;
    }

    pub(super) fn update_binding(
        &mut self,
        id: BindingId,
        patch: BindingPatch,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        let cur = self.live(id, now)?.clone();
        let pool = pool_mut(&mut self.pools, &cur.pool)?;
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
        let x = cur.number.clone();
        let a_changes = new_a != cur.party_a;
        let b_changes = new_b != cur.party_b;
        if a_changes && pool.holds(&new_a, &x, now) {
            return Err(StoreError::ReassignConflict { field: "party_a" });
        }
        if b_changes && pool.holds(&new_b, &x, now) {
            return Err(StoreError::ReassignConflict { field: "party_b" });
        }
        // New parties hold none of X (checked above), so they differ from the old
        // ones and these steps cannot overwrite each other.
        for (changes, old, new) in [
            (a_changes, &cur.party_a, &new_a),
            (b_changes, &cur.party_b, &new_b),
        ] {
            if changes {
                pool.set_hold(old, &x, now);
                pool.unroute(&x, old, id);
                pool.routes
                    .entry(x.clone())
                    .or_default()
                    .insert(new.clone(), id);
                pool.set_hold(new, &x, cur.expires_at);
            }
        }
        if let Some(b) = self.bindings.get_mut(&id) {
            b.party_a = new_a;
            b.party_b = new_b;
        }
        if let Some(exp) = patch.expires_at {
            self.set_expiry(id, exp);
        }
        self.live(id, now).cloned()
    }

    pub(super) fn mark_delivered(
        &mut self,
        id: BindingId,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        let pool_name = self.live(id, now)?.pool.clone();
        let grace_ms = pool_mut(&mut self.pools, &pool_name)?.grace_ms;
        self.set_expiry(id, now.saturating_add(grace_ms));
        let b = self
            .bindings
            .get_mut(&id)
            .ok_or(StoreError::BindingNotFound)?;
        b.state = BindingState::Delivered;
        Ok(b.clone())
    }

    pub(super) fn delete_binding(&mut self, id: BindingId, now: UnixMs) -> Result<(), StoreError> {
        self.live(id, now)?;
        let b = self
            .bindings
            .remove(&id)
            .ok_or(StoreError::BindingNotFound)?;
        if let Some(pool) = self.pools.get_mut(&b.pool) {
            pool.unlink(&b);
            pool.set_hold(&b.party_a, &b.number, now);
            pool.set_hold(&b.party_b, &b.number, now);
        }
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
        })
    }

    pub(super) fn reap(&mut self, now: UnixMs) -> u64 {
        let mut reaped = 0;
        for pool in self.pools.values_mut() {
            reaped += pool.reap(&mut self.bindings, now);
            pool.purge_holds(now);
        }
        reaped
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
