//! The ops view of the memory store: number states, the pool overview and paged
//! number lists, with the same semantics as the Redis store's (`opsview.rs`
//! there). Busiest parties are exact here (the pool keeps live bindings per party).

use super::state::{State, BUSIEST_PARTIES};
use crate::bindings::{
    AllocationBucket, LoadQuantiles, NumberPage, NumberRow, NumberState, PoolOverview, UnixMs,
};
use crate::numbers::{NumberHasher, E164};
use crate::store::StoreError;

const HOUR_MS: i64 = 3_600_000;

impl State {
    pub(super) fn set_number_state(
        &mut self,
        name: &str,
        number: &E164,
        state: NumberState,
    ) -> Result<NumberState, StoreError> {
        let pool = self
            .pools
            .get_mut(name)
            .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))?;
        pool.set_state(number, state)
            .ok_or(StoreError::NumberNotFound)
    }

    pub(super) fn pool_overview(
        &mut self,
        name: &str,
        now: UnixMs,
        hasher: &NumberHasher,
    ) -> Result<PoolOverview, StoreError> {
        let stats = self.pool_stats(name, now, hasher)?;
        let pool = self
            .pools
            .get_mut(name)
            .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))?;
        let mut o = PoolOverview {
            spec: stats.spec,
            active: 0,
            draining: 0,
            retired: 0,
            quarantined: 0,
            live_bindings: stats.live_bindings,
            cooling: stats.cooling,
            per_number: LoadQuantiles::default(),
            busiest_parties: stats.busiest_parties,
            hours: Vec::with_capacity(24),
            last_hour: AllocationBucket::default(),
        };
        let mut loads = Vec::new();
        for n in &stats.per_number {
            match n.state {
                NumberState::Active => {
                    o.active += 1;
                    loads.push(n.live_bindings);
                }
                NumberState::Quarantined => o.quarantined += 1,
                NumberState::Retired if n.live_bindings > 0 => o.draining += 1,
                NumberState::Retired => o.retired += 1,
            }
        }
        loads.sort_unstable();
        if let (Some(min), Some(max)) = (loads.first(), loads.last()) {
            let at = |q: f64| {
                let i = ((loads.len() - 1) as f64 * q).floor() as usize;
                loads.get(i).copied().unwrap_or(0)
            };
            o.per_number = LoadQuantiles {
                min: *min,
                median: at(0.5),
                p95: at(0.95),
                max: *max,
            };
        }
        o.busiest_parties.truncate(BUSIEST_PARTIES);
        let minute = now.div_euclid(60_000);
        pool.samples.insert(minute, o.live_bindings);
        let keep = minute - 25 * 60;
        while pool
            .samples
            .first_key_value()
            .is_some_and(|(m, _)| *m < keep)
        {
            pool.samples.pop_first();
        }
        let hour = now.div_euclid(HOUR_MS);
        for h in hour - 23..=hour {
            let (lo, hi) = (h * 60, h * 60 + 60);
            let mut b = AllocationBucket {
                start: h * HOUR_MS,
                ..Default::default()
            };
            for (_, [a, x]) in pool.tally.range(lo..hi) {
                b.allocations += a;
                b.exhausted += x;
            }
            b.live_sample = pool.samples.range(lo..hi).next_back().map(|(_, v)| *v);
            o.hours.push(b);
        }
        let mut last = AllocationBucket {
            start: now - HOUR_MS,
            live_sample: Some(o.live_bindings),
            ..Default::default()
        };
        for (_, [a, x]) in pool.tally.range(minute - 59..=minute) {
            last.allocations += a;
            last.exhausted += x;
        }
        o.last_hour = last;
        Ok(o)
    }

    pub(super) fn list_numbers(
        &self,
        name: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NumberPage, StoreError> {
        let pool = self
            .pools
            .get(name)
            .ok_or_else(|| StoreError::PoolNotFound(name.to_owned()))?;
        let mut all: Vec<(&str, &E164)> = pool
            .numbers
            .keys()
            .map(|x| (x.expose().get(1..).unwrap_or(""), x))
            .collect();
        all.sort_unstable();
        let start = match cursor {
            Some(c) => all.partition_point(|(d, _)| *d <= c),
            None => 0,
        };
        let limit = limit.max(1);
        let page = all.get(start..).unwrap_or(&[]);
        let numbers: Vec<NumberRow> = page
            .iter()
            .take(limit)
            .filter_map(|(_, x)| {
                let rec = pool.numbers.get(*x)?;
                Some(NumberRow {
                    number: (*x).clone(),
                    area: rec.area.clone(),
                    state: rec.state,
                    live_bindings: rec.live,
                })
            })
            .collect();
        let next = (page.len() > limit)
            .then(|| {
                numbers
                    .last()
                    .map(|n| n.number.expose().get(1..).unwrap_or("").to_owned())
            })
            .flatten();
        Ok(NumberPage { numbers, next })
    }
}
