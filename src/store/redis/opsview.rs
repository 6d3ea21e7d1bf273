//! The ops view of the Redis store: number states (quarantine, release, retire),
//! the pool overview from running counters, and paged number lists. The keys
//! these read are in the key layout of the parent module (`{p}lq`, `{p}N`,
//! `{p}P`, `{p}ke`, `{p}k<hour>`).
//!
//! A pool of several sub-pools (Redis Cluster, `subpools`): a number's state is
//! changed in the sub-pool that holds it; the overview adds up every sub-pool's
//! (counts, hours, a party's estimates; min and max of the per-number load are
//! exact, the median and p95 are the largest of the sub-pools', an upper bound);
//! a page of numbers merges every sub-pool's page after the same cursor.

use redis::Value;

use super::codec::{digits, meta_key, parse_number_info, prefix};
use super::{at, bytes, corrupt, int, RedisStore};
use crate::bindings::{
    AllocationBucket, LoadQuantiles, NumberPage, NumberRow, NumberState, PartyLoad, PoolOverview,
    UnixMs,
};
use crate::numbers::E164;
use crate::store::StoreError;

const HOUR_MS: i64 = 3_600_000;

fn state_char(s: NumberState) -> &'static [u8] {
    match s {
        NumberState::Active => b"a",
        NumberState::Retired => b"r",
        NumberState::Quarantined => b"q",
    }
}

fn count(v: &[Value], i: usize, what: &str) -> Result<u64, StoreError> {
    v.get(i)
        .and_then(int)
        .map(|n| n.max(0) as u64)
        .ok_or_else(|| corrupt(what))
}

fn nopool(r: &[Value], pool: &str) -> Result<(), StoreError> {
    match (at(r, 0)?, r.get(1).and_then(bytes)) {
        (b"o", _) => Ok(()),
        (_, Some(b"nopool")) => Err(StoreError::PoolNotFound(pool.to_owned())),
        (_, Some(b"nonumber")) => Err(StoreError::NumberNotFound),
        _ => Err(corrupt("ops reply")),
    }
}

impl RedisStore {
    pub(super) async fn set_number_state_impl(
        &self,
        pool: &str,
        number: &E164,
        state: NumberState,
    ) -> Result<NumberState, StoreError> {
        let t = self.tag_of_number(pool, number).await?;
        let r = self
            .eval(
                &self.scripts.numstate,
                &[meta_key(&t).as_bytes()],
                &[
                    prefix(&t).as_bytes(),
                    digits(number).as_bytes(),
                    state_char(state),
                ],
            )
            .await?;
        nopool(&r, pool)?;
        match r.get(1).and_then(bytes) {
            Some(b"a") => Ok(NumberState::Active),
            Some(b"r") => Ok(NumberState::Retired),
            Some(b"q") => Ok(NumberState::Quarantined),
            _ => Err(corrupt("number state")),
        }
    }

    pub(super) async fn pool_overview_impl(
        &self,
        pool: &str,
        now: UnixMs,
    ) -> Result<PoolOverview, StoreError> {
        let mut all: Option<PoolOverview> = None;
        for t in self.tags(pool).await? {
            let o = self.sub_overview(pool, &t, now).await?;
            all = Some(match all {
                None => o,
                Some(a) => merge_overviews(a, o),
            });
        }
        all.ok_or_else(|| StoreError::PoolNotFound(pool.to_owned()))
    }

    /// The overview of one sub-pool (tag `t`) of `pool`.
    async fn sub_overview(
        &self,
        pool: &str,
        t: &str,
        now: UnixMs,
    ) -> Result<PoolOverview, StoreError> {
        let spec = self.get_pool_impl(pool).await?;
        let r = self
            .eval(
                &self.scripts.overview,
                &[meta_key(t).as_bytes()],
                &[prefix(t).as_bytes(), now.to_string().as_bytes()],
            )
            .await?;
        nopool(&r, pool)?;
        let n = |i: usize, what: &str| count(&r, i, what);
        let mut o = PoolOverview {
            spec,
            active: n(1, "active")?,
            draining: n(2, "draining")?,
            retired: n(3, "retired")?,
            quarantined: n(4, "quarantined")?,
            live_bindings: n(5, "live")?,
            cooling: n(6, "cooling")?,
            per_number: LoadQuantiles {
                min: n(7, "min")?,
                median: n(8, "median")?,
                p95: n(9, "p95")?,
                max: n(10, "max")?,
            },
            busiest_parties: Vec::new(),
            hours: Vec::with_capacity(24),
            last_hour: AllocationBucket::default(),
        };
        let parties = n(11, "parties")? as usize;
        let mut i = 12;
        for _ in 0..parties {
            let tag = r.get(i).and_then(bytes).ok_or_else(|| corrupt("party"))?;
            o.busiest_parties.push(PartyLoad {
                party: hex::encode(tag),
                live_bindings: n(i + 1, "party load")?,
            });
            i += 2;
        }
        let hour0 = (now.div_euclid(HOUR_MS) - 23) * HOUR_MS;
        for h in 0..24 {
            let live = r
                .get(i + 2)
                .and_then(int)
                .ok_or_else(|| corrupt("sample"))?;
            o.hours.push(AllocationBucket {
                start: hour0 + h * HOUR_MS,
                allocations: n(i, "allocations")?,
                exhausted: n(i + 1, "exhausted")?,
                live_sample: u64::try_from(live).ok(),
            });
            i += 3;
        }
        o.last_hour = AllocationBucket {
            start: now - HOUR_MS,
            allocations: n(i, "allocations")?,
            exhausted: n(i + 1, "exhausted")?,
            live_sample: Some(o.live_bindings),
        };
        Ok(o)
    }

    pub(super) async fn list_numbers_impl(
        &self,
        pool: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NumberPage, StoreError> {
        let tags = self.tags(pool).await?;
        if tags.len() == 1 {
            return self.sub_numbers(pool, pool, cursor, limit).await;
        }
        // Each sub-pool's first `limit` numbers after the cursor hold the pool's.
        let limit = limit.max(1);
        let mut rows = Vec::new();
        let mut more = false;
        for t in &tags {
            let page = self.sub_numbers(pool, t, cursor, limit).await?;
            more |= page.next.is_some();
            rows.extend(page.numbers);
        }
        rows.sort_by(|a, b| digits(&a.number).cmp(digits(&b.number)));
        more |= rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| digits(&r.number).to_owned())
        } else {
            None
        };
        Ok(NumberPage {
            numbers: rows,
            next,
        })
    }

    /// A page of the numbers of one sub-pool (tag `t`) of `pool`.
    async fn sub_numbers(
        &self,
        pool: &str,
        t: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NumberPage, StoreError> {
        let after = cursor.unwrap_or("");
        let r = self
            .eval(
                &self.scripts.numbers,
                &[meta_key(t).as_bytes()],
                &[
                    prefix(t).as_bytes(),
                    after.as_bytes(),
                    limit.max(1).to_string().as_bytes(),
                ],
            )
            .await?;
        nopool(&r, pool)?;
        let next = match r.get(1).and_then(bytes) {
            Some(b) if !b.is_empty() => {
                Some(String::from_utf8(b.to_vec()).map_err(|_| corrupt("cursor"))?)
            }
            _ => None,
        };
        let mut numbers = Vec::new();
        for t in r.get(2..).unwrap_or(&[]).chunks(3) {
            let [x, info, live] = t else {
                return Err(corrupt("number row"));
            };
            let x = bytes(x).ok_or_else(|| corrupt("number"))?;
            let x = std::str::from_utf8(x).map_err(|_| corrupt("number"))?;
            let (state, _, _, area) =
                parse_number_info(bytes(info).ok_or_else(|| corrupt("number info"))?)?;
            numbers.push(NumberRow {
                number: E164::parse(&format!("+{x}")).map_err(|_| corrupt("number"))?,
                area,
                state,
                live_bindings: int(live).ok_or_else(|| corrupt("live"))?.max(0) as u64,
            });
        }
        Ok(NumberPage { numbers, next })
    }
}

/// The overview of a pool from two of its sub-pools' (see the module docs).
fn merge_overviews(mut a: PoolOverview, b: PoolOverview) -> PoolOverview {
    // Load quantiles of a sub-pool without active numbers say nothing.
    if b.active > 0 {
        if a.active == 0 {
            a.per_number = b.per_number;
        } else {
            let (p, q) = (&mut a.per_number, &b.per_number);
            p.min = p.min.min(q.min);
            p.median = p.median.max(q.median);
            p.p95 = p.p95.max(q.p95);
            p.max = p.max.max(q.max);
        }
    }
    a.active += b.active;
    a.draining += b.draining;
    a.retired += b.retired;
    a.quarantined += b.quarantined;
    a.live_bindings += b.live_bindings;
    a.cooling += b.cooling;
    // A party's holds are split over the sub-pools (by number): add them up.
    let mut parties: Vec<PartyLoad> = a.busiest_parties;
    for pl in b.busiest_parties {
        match parties.iter_mut().find(|x| x.party == pl.party) {
            Some(x) => x.live_bindings += pl.live_bindings,
            None => parties.push(pl),
        }
    }
    parties.sort_by_key(|p| std::cmp::Reverse(p.live_bindings));
    parties.truncate(10);
    a.busiest_parties = parties;
    for (h, g) in a.hours.iter_mut().zip(b.hours) {
        h.allocations += g.allocations;
        h.exhausted += g.exhausted;
        h.live_sample = match (h.live_sample, g.live_sample) {
            (Some(x), Some(y)) => Some(x + y),
            _ => None,
        };
    }
    a.last_hour.allocations += b.last_hour.allocations;
    a.last_hour.exhausted += b.last_hour.exhausted;
    a.last_hour.live_sample = Some(a.live_bindings);
    a
}
