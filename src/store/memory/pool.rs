//! One pool of the memory store and the indexes that keep every call cheap.
//!
//! - `active` / `by_area`: active numbers ordered by (live bindings, number), so
//!   allocation walks from the least-loaded number and stops at the cap;
//! - `holds`: party → X → `end` of the party's binding on X; the party holds X
//!   while `now < end + cooling` (a live binding has `end = expires_at`);
//! - `cooling`: (end + cooling, party, X) of every *ended* hold, exactly one entry
//!   per ended hold, so purging and counting cooling holds cost O(changes);
//! - `routes`: X → caller → binding id, the hot-path lookup;
//! - `party_live`: party → live bindings, for the busiest-parties statistic;
//! - `expiry`: (expires_at, id), so expired bindings are reaped in order;
//! - `exts`: X → extension → (binding, hold end): an extension is held from
//!   creation until its binding's end + cooling, and forgotten lazily (on the next
//!   allocation on that X) once the hold is over.
//!
//! A binding is "ended" for these indexes when it is deleted, when a party is
//! handed over (for that party), or when it is reaped after expiry.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::bindings::{
    extension_space, Binding, BindingId, Capabilities, NumberState, PoolSpec, UnixMs,
};
use crate::numbers::E164;

/// One virtual number's record in its pool.
pub(super) struct NumberRec {
    pub(super) area: Option<String>,
    /// Kept with the number; no allocation rule reads it yet.
    #[allow(dead_code)]
    pub(super) capabilities: Capabilities,
    pub(super) state: NumberState,
    /// Unreaped bindings on this number (exact once the pool is reaped).
    pub(super) live: u64,
}

/// One pool and its indexes.
pub(super) struct Pool {
    pub(super) spec: PoolSpec,
    pub(super) cooling_ms: i64,
    pub(super) grace_ms: i64,
    pub(super) numbers: HashMap<E164, NumberRec>,
    active: BTreeSet<(u64, E164)>,
    by_area: HashMap<String, BTreeSet<(u64, E164)>>,
    /// Shipment id → binding (idempotency).
    pub(super) ship: HashMap<String, BindingId>,
    pub(super) routes: HashMap<E164, HashMap<E164, BindingId>>,
    holds: HashMap<E164, HashMap<E164, UnixMs>>,
    cooling: BTreeSet<(UnixMs, E164, E164)>,
    party_live: HashMap<E164, u64>,
    /// (expires_at, id) of every unreaped binding.
    pub(super) expiry: BTreeSet<(UnixMs, BindingId)>,
    /// X → extension → its holder and the end of the hold (end + cooling).
    exts: HashMap<E164, HashMap<String, ExtHold>>,
    /// Ops counters: minute → [allocations, `pool_exhausted` answers] (25 hours).
    pub(super) tally: BTreeMap<i64, [u64; 2]>,
    /// Ops samples: minute → live bindings seen by an overview (25 hours).
    pub(super) samples: BTreeMap<i64, u64>,
}

/// Who holds an extension on X and until when.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExtHold {
    pub(super) id: BindingId,
    pub(super) until: UnixMs,
}

fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX / 4)
}

impl Pool {
    pub(super) fn new(spec: PoolSpec) -> Self {
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
            cooling: BTreeSet::new(),
            party_live: HashMap::new(),
            expiry: BTreeSet::new(),
            exts: HashMap::new(),
            tally: BTreeMap::new(),
            samples: BTreeMap::new(),
        }
    }

    // ------------------------------------------------------------ numbers

    /// Adds an active number (the caller checked it is new).
    pub(super) fn add_number(&mut self, x: E164, area: Option<String>, caps: Capabilities) {
        self.numbers.insert(
            x.clone(),
            NumberRec {
                area,
                capabilities: caps,
                state: NumberState::Active,
                live: 0,
            },
        );
        self.index(&x);
    }

    /// Retires a number; `false` if it is not in the pool.
    pub(super) fn retire(&mut self, x: &E164) -> bool {
        if !self.numbers.contains_key(x) {
            return false;
        }
        self.unindex(x);
        if let Some(rec) = self.numbers.get_mut(x) {
            rec.state = NumberState::Retired;
        }
        true
    }

    /// Sets the state of `x`; its previous state, `None` if it is not in the pool.
    pub(super) fn set_state(&mut self, x: &E164, state: NumberState) -> Option<NumberState> {
        let old = self.numbers.get(x)?.state;
        self.unindex(x);
        if let Some(rec) = self.numbers.get_mut(x) {
            rec.state = state;
        }
        self.index(x);
        Some(old)
    }

    /// Counts an allocation (`kind` 0) or a `pool_exhausted` answer (1) at `now`.
    pub(super) fn count(&mut self, now: UnixMs, kind: usize) {
        let minute = now.div_euclid(60_000);
        if let Some(c) = self.tally.entry(minute).or_default().get_mut(kind) {
            *c += 1;
        }
        let keep = minute - 25 * 60;
        while self.tally.first_key_value().is_some_and(|(m, _)| *m < keep) {
            self.tally.pop_first();
        }
    }

    /// Removes `x` from the allocation indexes (before its load changes).
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

    /// Puts `x` into the allocation indexes if it is active.
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

    // ------------------------------------------------------------ holds

    /// Whether `party` holds `x` (live or cooling) at `now`.
    pub(super) fn holds(&self, party: &E164, x: &E164, now: UnixMs) -> bool {
        self.holds
            .get(party)
            .and_then(|m| m.get(x))
            .is_some_and(|end| end.saturating_add(self.cooling_ms) > now)
    }

    /// `party` takes (or keeps) a live hold on `x` until `end`.
    fn hold(&mut self, party: &E164, x: &E164, end: UnixMs) {
        let cooling_ms = self.cooling_ms;
        let xs = self.holds.entry(party.clone()).or_default();
        if let Some(old) = xs.insert(x.clone(), end) {
            // A re-taken hold (its cooling passed) leaves the cooling queue.
            self.cooling
                .remove(&(old.saturating_add(cooling_ms), party.clone(), x.clone()));
        }
    }

    /// `party`'s hold on `x` ends at `end`; cooling starts.
    fn end_hold(&mut self, party: &E164, x: &E164, end: UnixMs) {
        let cooling_ms = self.cooling_ms;
        if let Some(slot) = self.holds.get_mut(party).and_then(|m| m.get_mut(x)) {
            *slot = end;
            self.cooling
                .insert((end.saturating_add(cooling_ms), party.clone(), x.clone()));
        }
    }

    /// Forgets holds whose cooling has passed at `now`, at most `limit` of them;
    /// returns how many were looked at and whether none is left.
    fn purge_holds(&mut self, now: UnixMs, limit: usize) -> (usize, bool) {
        let mut done = 0;
        while let Some((until, _, _)) = self.cooling.first() {
            if *until > now {
                return (done, true);
            }
            if done >= limit {
                return (done, false);
            }
            let Some((until, party, x)) = self.cooling.pop_first() else {
                break;
            };
            done += 1;
            if let Some(xs) = self.holds.get_mut(&party) {
                if xs.get(&x).map(|end| end.saturating_add(self.cooling_ms)) == Some(until) {
                    xs.remove(&x);
                }
                if xs.is_empty() {
                    self.holds.remove(&party);
                }
            }
        }
        (done, true)
    }

    /// Ended holds still cooling (exact after [`Pool::purge_holds`] at the same now).
    pub(super) fn cooling_count(&self) -> u64 {
        self.cooling.len() as u64
    }

    fn party_delta(&mut self, party: &E164, up: bool) {
        if up {
            *self.party_live.entry(party.clone()).or_default() += 1;
        } else if let Some(n) = self.party_live.get_mut(party) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.party_live.remove(party);
            }
        }
    }

    /// Parties with live bindings and how many each.
    pub(super) fn party_live(&self) -> &HashMap<E164, u64> {
        &self.party_live
    }

    // ------------------------------------------------------------ bindings

    /// The number for a new binding of `a` and `b`, per the allocation rule:
    /// area first (if asked and any fits), then least loaded, then number order.
    pub(super) fn pick(
        &self,
        a: &E164,
        b: &E164,
        area: Option<&str>,
        ext_len: Option<u8>,
        now: UnixMs,
    ) -> Option<E164> {
        let cap = u64::from(self.spec.max_bindings_per_number);
        let cooling_ms = self.cooling_ms;
        // Each party's holds are looked up once, not once per candidate.
        let (ha, hb) = (self.holds.get(a), self.holds.get(b));
        let held = |h: Option<&HashMap<E164, UnixMs>>, x: &E164| {
            h.and_then(|m| m.get(x))
                .is_some_and(|end| end.saturating_add(cooling_ms) > now)
        };
        let first_free = |set: &BTreeSet<(u64, E164)>| {
            set.iter()
                .take_while(|(live, _)| *live < cap)
                .find(|(_, x)| {
                    !held(ha, x)
                        && !held(hb, x)
                        && ext_len.is_none_or(|len| self.ext_count(x, now) < extension_space(len))
                })
                .map(|(_, x)| x.clone())
        };
        area.and_then(|area| self.by_area.get(area))
            .and_then(first_free)
            .or_else(|| first_free(&self.active))
    }

    // ------------------------------------------------------------ extensions

    /// Extensions held on `x` at `now` (live and cooling).
    fn ext_count(&self, x: &E164, now: UnixMs) -> u32 {
        self.exts.get(x).map_or(0, |m| {
            u32::try_from(m.values().filter(|h| h.until > now).count()).unwrap_or(u32::MAX)
        })
    }

    /// Allocates a free extension of `len` digits on `x` for binding `id`, held
    /// until `until`; probes from `start` by `step` (coprime to 10, so every
    /// extension is visited). `None` if all are held.
    pub(super) fn take_extension(
        &mut self,
        x: &E164,
        len: u8,
        id: BindingId,
        until: UnixMs,
        (start, step): (u32, u32),
        now: UnixMs,
    ) -> Option<String> {
        let space = extension_space(len);
        let map = self.exts.entry(x.clone()).or_default();
        map.retain(|_, h| h.until > now);
        if u32::try_from(map.len()).unwrap_or(u32::MAX) >= space {
            return None;
        }
        let width = usize::from(len);
        let mut c = start % space;
        for _ in 0..space {
            let ext = format!("{c:0width$}");
            if !map.contains_key(&ext) {
                map.insert(ext.clone(), ExtHold { id, until });
                return Some(ext);
            }
            c = ((u64::from(c) + u64::from(step)) % u64::from(space)) as u32;
        }
        None
    }

    /// Moves the hold of binding `b`'s extension to end at `until`.
    fn move_ext(&mut self, b: &Binding, until: UnixMs) {
        if let Some(h) = b
            .extension
            .as_ref()
            .and_then(|e| self.exts.get_mut(&b.number)?.get_mut(e))
        {
            if h.id == b.id {
                h.until = until;
            }
        }
    }

    /// Who holds extension `ext` on `x` at `now`.
    pub(super) fn ext_holder(&self, x: &E164, ext: &str, now: UnixMs) -> Option<ExtHold> {
        self.exts
            .get(x)
            .and_then(|m| m.get(ext))
            .filter(|h| h.until > now)
            .copied()
    }

    /// Adds a new binding to every index.
    pub(super) fn link(&mut self, b: &Binding) {
        let routes = self.routes.entry(b.number.clone()).or_default();
        routes.insert(b.party_a.clone(), b.id);
        routes.insert(b.party_b.clone(), b.id);
        self.ship.insert(b.shipment_id.clone(), b.id);
        for party in [&b.party_a, &b.party_b] {
            self.hold(party, &b.number, b.expires_at);
            self.party_delta(party, true);
        }
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

    /// Removes a binding that ended at `end` from every index; its parties cool.
    pub(super) fn unlink(&mut self, b: &Binding, end: UnixMs) {
        for party in [&b.party_a, &b.party_b] {
            self.unroute(&b.number, party, b.id);
            self.end_hold(party, &b.number, end);
            self.party_delta(party, false);
        }
        if self.ship.get(&b.shipment_id) == Some(&b.id) {
            self.ship.remove(&b.shipment_id);
        }
        self.expiry.remove(&(b.expires_at, b.id));
        self.add_load(&b.number, false);
        self.move_ext(b, end.saturating_add(self.cooling_ms));
    }

    /// Hands a live binding's side over from `old` to `new` at `now` (the caller
    /// checked that `new` does not hold X).
    pub(super) fn hand_over(&mut self, b: &Binding, old: &E164, new: &E164, now: UnixMs) {
        self.unroute(&b.number, old, b.id);
        self.end_hold(old, &b.number, now);
        self.party_delta(old, false);
        self.routes
            .entry(b.number.clone())
            .or_default()
            .insert(new.clone(), b.id);
        self.hold(new, &b.number, b.expires_at);
        self.party_delta(new, true);
    }

    /// Moves a live binding's expiry, and its parties' holds, to `expires_at`.
    pub(super) fn move_expiry(&mut self, b: &Binding, expires_at: UnixMs) {
        self.expiry.remove(&(b.expires_at, b.id));
        self.expiry.insert((expires_at, b.id));
        self.hold(&b.party_a, &b.number, expires_at);
        self.hold(&b.party_b, &b.number, expires_at);
        self.move_ext(b, expires_at.saturating_add(self.cooling_ms));
    }

    /// Reaps the pool's bindings that expired at or before `now`, then purges
    /// cooled holds. Returns how many bindings were reaped.
    pub(super) fn reap(&mut self, bindings: &mut HashMap<BindingId, Binding>, now: UnixMs) -> u64 {
        self.reap_some(bindings, now, usize::MAX).0
    }

    /// Like [`Pool::reap`], but does at most about `budget` steps (bindings reaped
    /// plus holds purged). Returns (bindings reaped, steps used, whether finished).
    pub(super) fn reap_some(
        &mut self,
        bindings: &mut HashMap<BindingId, Binding>,
        now: UnixMs,
        budget: usize,
    ) -> (u64, usize, bool) {
        let mut reaped = 0;
        let mut steps = 0;
        while let Some(&(exp, id)) = self.expiry.first() {
            if exp > now {
                break;
            }
            if steps >= budget {
                return (reaped, steps, false);
            }
            self.expiry.pop_first();
            if let Some(b) = bindings.remove(&id) {
                self.unlink(&b, b.expires_at);
            }
            reaped += 1;
            steps += 1;
        }
        let (purged, done) = self.purge_holds(now, budget.saturating_sub(steps));
        (reaped, steps + purged, done)
    }

    /// Entries in all binding and hold indexes (unit tests: 0 once all cooled).
    #[cfg(test)]
    pub(super) fn footprint(&self) -> usize {
        self.ship.len()
            + self.routes.len()
            + self.holds.len()
            + self.cooling.len()
            + self.party_live.len()
            + self.expiry.len()
            + self
                .numbers
                .values()
                .map(|r| r.live as usize)
                .sum::<usize>()
    }

    /// Checks every index against the bindings (unit tests); `purged` when the
    /// pool was just reaped at `now`.
    #[cfg(test)]
    pub(super) fn check(&self, bindings: &HashMap<BindingId, Binding>, now: UnixMs, purged: bool) {
        let mine: Vec<&Binding> = bindings
            .values()
            .filter(|b| b.pool == self.spec.name)
            .collect();
        assert_eq!(self.expiry.len(), mine.len());
        let mut load: HashMap<&E164, u64> = HashMap::new();
        let mut party: HashMap<&E164, u64> = HashMap::new();
        let mut held: std::collections::HashSet<(&E164, &E164)> = Default::default();
        for b in &mine {
            assert!(self.expiry.contains(&(b.expires_at, b.id)));
            assert_eq!(self.ship.get(&b.shipment_id), Some(&b.id));
            *load.entry(&b.number).or_default() += 1;
            for p in [&b.party_a, &b.party_b] {
                *party.entry(p).or_default() += 1;
                assert!(held.insert((p, &b.number)), "AXB invariant broken");
                assert_eq!(
                    self.holds.get(p).and_then(|m| m.get(&b.number)),
                    Some(&b.expires_at)
                );
                assert_eq!(
                    self.routes.get(&b.number).and_then(|m| m.get(p)),
                    Some(&b.id)
                );
            }
        }
        let routes: usize = self.routes.values().map(HashMap::len).sum();
        assert_eq!(routes, 2 * mine.len(), "no stale routes");
        assert_eq!(self.ship.len(), mine.len());
        let holds: usize = self.holds.values().map(HashMap::len).sum();
        assert_eq!(holds, 2 * mine.len() + self.cooling.len());
        for (until, p, x) in &self.cooling {
            let end = self.holds.get(p).and_then(|m| m.get(x));
            assert_eq!(end.map(|e| e + self.cooling_ms), Some(*until));
            assert!(!purged || *until > now, "cooled hold not purged");
        }
        assert_eq!(party.len(), self.party_live.len());
        for (p, n) in &party {
            assert_eq!(self.party_live.get(*p), Some(n));
        }
        let mut active = 0;
        for (x, rec) in &self.numbers {
            assert_eq!(rec.live, load.get(x).copied().unwrap_or(0));
            let indexed = self.active.contains(&(rec.live, x.clone()));
            assert_eq!(indexed, rec.state == NumberState::Active);
            active += usize::from(indexed);
            if let (Some(area), true) = (&rec.area, indexed) {
                assert!(self
                    .by_area
                    .get(area)
                    .is_some_and(|s| s.contains(&(rec.live, x.clone()))));
            }
        }
        assert_eq!(self.active.len(), active);
    }
}
