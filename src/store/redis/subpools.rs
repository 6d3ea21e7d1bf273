//! Pools larger than one master: a pool split into *sub-pools*, each an ordinary
//! pool of the store under its own hash tag (so each lives in its own slot, and a
//! cluster spreads them over its masters).
//!
//! Sub-pool `k` of pool `p` has the tag `p` for `k = 0` (a pool of one sub-pool is
//! exactly a pool as before) and `p~k` otherwise (`~` is not allowed in pool names).
//! Every sub-pool has the full per-pool layout of the parent module, with the
//! pool's settings and id in its own `{p~k}m`; `{p}m` also says how many sub-pools
//! there are (`subpools`, fixed at creation, absent = 1).
//!
//! - **Numbers** are partitioned: number `X` lives in sub-pool
//!   `fnv1a(digits of X) mod n` only, so the AXB check, cooling and the per-number
//!   cap on `X` stay inside one slot and one script, exactly as in a plain pool.
//!   Route lookups compute the sub-pool from `X` (no extra round trip).
//! - **Bindings**: the first byte of a binding's generation (in its id) is the
//!   index of the sub-pool holding it, so reads and changes by id go straight there.
//! - **Allocation**: a shipment's *home* sub-pool is `sh mod n` (`sh`: the shipment
//!   hash). The create script runs there first. Only when it answers "exhausted"
//!   does the relay pick another sub-pool — of those whose create script, asked
//!   without writing (`probe`), has a number free for the parties, the one whose
//!   least-loaded active number is least loaded — and record it in the home
//!   sub-pool with `claim.lua`
//!   (`{p}f`: `sh` → sub-pool; written once, and only while no live binding of the
//!   shipment is in the home sub-pool); then creates there. The create script of a
//!   multi-sub-pool pool first checks `{home}f` (`subpool_guard.lua`) and answers
//!   "moved" with the recorded sub-pool, where the relay then creates.
//!
//! **At most one live binding per shipment**, under any concurrent retries from
//! any relays: every create of a shipment runs in its home slot until a claim
//! exists there, and only in the claimed sub-pool after. Home creates and the claim
//! are serialized in one slot: a claim is written only when home holds no live
//! binding of the shipment, and once it exists every home create refuses; so home
//! and the claimed sub-pool never both hold a live binding of it, and each slot's
//! create script already makes at most one (same `sh` record field). The claim is
//! never changed (a second relay's `HSETNX` loses and follows the first).
//!
//! **Limits.** A shipment that falls back is pinned to its claimed sub-pool for
//! good: if that one is exhausted too (another create took its free number
//! between the probe and the create) the answer is "exhausted", even if a third
//! sub-pool had room (moving the claim would need to know, atomically, that the
//! claimed sub-pool holds no binding: a cross-slot read). Claims are kept (one
//! field of ~30 bytes per shipment that ever fell back; falling back only happens
//! when the home sub-pool has no number for the parties, i.e. near full). The least
//! loaded number is picked per sub-pool, not across the pool. A party's holds are
//! per number, so the AXB invariant is unaffected; but a party can hold numbers in
//! several sub-pools (as in one pool). The sub-pool count is fixed at creation.

use redis::Value;

use super::codec::{digits, meta_key, prefix, record_key};
use super::{at, bytes, int, items, RedisStore};
use crate::numbers::E164;
use crate::store::StoreError;

/// Most sub-pools a pool may have (the index must fit in one byte of the id).
pub const MAX_SUBPOOLS: u32 = 64;

/// Key tag of sub-pool `k` of `pool`.
pub(super) fn tag(pool: &str, k: u32) -> String {
    if k == 0 {
        pool.to_owned()
    } else {
        format!("{pool}~{k}")
    }
}

/// The sub-pool (of `n`) that virtual number `x` (digits) lives in: FNV-1a.
pub(super) fn of_number(x: &str, n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in x.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % n
}

/// A shipment's home sub-pool (of `n`), from its shipment hash.
pub(super) fn home(sh: &[u8; 8], n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    (u64::from_be_bytes(*sh) % u64::from(n)) as u32
}

/// The sub-pool (of `n`) a binding is in, from its generation bytes.
pub(super) fn of_gen(gen: &[u8; 3], n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        u32::from(gen[0]) % n
    }
}

impl RedisStore {
    /// How many sub-pools `pool` has (cached: fixed at creation). 1 for a pool
    /// that does not exist (the call that follows reports it).
    pub(super) async fn subpools(&self, pool: &str) -> Result<u32, StoreError> {
        if let Ok(m) = self.pool_subs.read() {
            if let Some(n) = m.get(pool) {
                return Ok(*n);
            }
        }
        let v: Vec<Option<Vec<u8>>> = self
            .query(
                redis::cmd("HMGET")
                    .arg(meta_key(pool))
                    .arg("pid")
                    .arg("subpools"),
            )
            .await?;
        let exists = v.first().is_some_and(Option::is_some);
        let n = v
            .get(1)
            .and_then(|b| b.as_deref())
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| t.parse::<u32>().ok())
            .unwrap_or(1)
            .clamp(1, MAX_SUBPOOLS);
        if exists {
            if let Ok(mut m) = self.pool_subs.write() {
                m.insert(pool.to_owned(), n);
            }
        }
        Ok(n)
    }

    /// Key tags of every sub-pool of `pool`.
    pub(super) async fn tags(&self, pool: &str) -> Result<Vec<String>, StoreError> {
        let n = self.subpools(pool).await?;
        Ok((0..n).map(|k| tag(pool, k)).collect())
    }

    /// Key tag of the sub-pool holding virtual number `x`.
    pub(super) async fn tag_of_number(&self, pool: &str, x: &E164) -> Result<String, StoreError> {
        let n = self.subpools(pool).await?;
        Ok(tag(pool, of_number(digits(x), n)))
    }

    /// Key tag of the sub-pool holding the binding with generation `gen`.
    pub(super) async fn tag_of_gen(&self, pool: &str, gen: &[u8; 3]) -> Result<String, StoreError> {
        let n = self.subpools(pool).await?;
        Ok(tag(pool, of_gen(gen, n)))
    }

    /// The sub-pools to fall back to from `home` (of `n`), in the order to try
    /// them: by the live bindings of their least loaded active number, fewest
    /// first; those without an active number are left out.
    pub(super) async fn fallback_order(
        &self,
        pool: &str,
        home: u32,
        n: u32,
    ) -> Result<Vec<u32>, StoreError> {
        let others: Vec<u32> = (1..n).map(|d| (home + d) % n).collect();
        let firsts = futures::future::join_all(others.iter().map(|k| async move {
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(format!("{}ld", prefix(&tag(pool, *k))))
                .arg(0)
                .arg(0)
                .arg("WITHSCORES");
            self.query::<Value>(&cmd).await
        }))
        .await;
        let mut order: Vec<(f64, u32)> = Vec::new();
        for (k, first) in others.iter().zip(firsts) {
            let load = items(first?)?.get(1).and_then(|v| match v {
                Value::Double(d) => Some(*d),
                other => bytes(other)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|t| t.parse::<f64>().ok()),
            });
            if let Some(load) = load {
                order.push((load, *k));
            }
        }
        // Stable: equal loads keep the order after `home`.
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(order.into_iter().map(|(_, k)| k).collect())
    }

    /// Records in `pool`'s sub-pool `home` that shipment `sh` is created in sub-pool
    /// `k` (see the module docs). `Ok(None)`: a live binding of it is home after all;
    /// `Ok(Some(j))`: create in `j` (the recorded one, maybe another relay's choice).
    pub(super) async fn claim(
        &self,
        pool: &str,
        home: u32,
        sh: &[u8; 8],
        k: u32,
        now: i64,
    ) -> Result<Option<u32>, StoreError> {
        let t = tag(pool, home);
        let r = self
            .eval(
                &self.scripts.claim,
                &[&record_key(&t, sh)],
                &[
                    prefix(&t).as_bytes(),
                    now.to_string().as_bytes(),
                    sh,
                    k.to_string().as_bytes(),
                ],
            )
            .await?;
        match at(&r, 0)? {
            b"h" => Ok(None),
            _ => Ok(Some(
                r.get(1)
                    .and_then(int)
                    .and_then(|j| u32::try_from(j).ok())
                    .ok_or_else(|| super::corrupt("claim reply"))?,
            )),
        }
    }
}
