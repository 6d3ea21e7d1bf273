//! Pool operations of the Redis store: pools, numbers, statistics.
//!
//! The [`BindingStore`](super::super::BindingStore) trait methods in `mod.rs` delegate
//! here; the key layout they rely on is documented in the parent module.

use std::collections::HashMap;

use redis::Value;

use super::codec::{
    digits, meta_key, parse_number_info, parse_record, pid_bytes, prefix, record_key, shards_for,
    MAX_PID,
};
use super::{at, bytes, corrupt, int, subpools, RedisStore, NUMBERS, PIDS, POOLS, PSEQ};
use crate::bindings::{
    validate_area, validate_pool_spec, ImportOutcome, Invalid, NumberLoad, NumberSpec, NumberState,
    PartyLoad, PoolSpec, PoolStats, UnixMs, DEFAULT_EXTENSION_LEN,
};
use crate::numbers::E164;
use crate::store::StoreError;

impl RedisStore {
    pub(super) async fn create_pool_impl(&self, spec: PoolSpec) -> Result<(), StoreError> {
        validate_pool_spec(&spec)?;
        let name = spec.name.clone();
        let meta = meta_key(&name);
        let exists: bool = self.query(redis::cmd("EXISTS").arg(&meta)).await?;
        if exists {
            return Err(StoreError::PoolExists(name));
        }
        let pid: u32 = self.query(redis::cmd("INCR").arg(PSEQ)).await?;
        if pid > MAX_PID {
            return Err(Invalid::new("name", "this Redis holds the most pools it can").into());
        }
        let fresh: bool = self
            .query(redis::cmd("HSETNX").arg(POOLS).arg(&name).arg(pid))
            .await?;
        if !fresh {
            return Err(StoreError::PoolExists(name));
        }
        // Separate commands, not one pipeline: `ml:pid` and the settings of each
        // sub-pool live in different slots on a cluster. `{p}m` goes last: until it
        // exists the pool is not listed (`list_pools` skips a half-created pool).
        let _: () = self
            .query(redis::cmd("HSET").arg(PIDS).arg(pid).arg(&name))
            .await?;
        let n = self.new_subpools;
        for k in (0..n).rev() {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(meta_key(&subpools::tag(&name, k)))
                .arg("country")
                .arg(spec.country)
                .arg("grace_s")
                .arg(spec.grace_s)
                .arg("cooling_s")
                .arg(spec.cooling_s)
                .arg("cap")
                .arg(spec.max_bindings_per_number)
                .arg("pid")
                .arg(&pid_bytes(pid)[..])
                .arg("shards")
                .arg(shards_for(spec.max_bindings_per_number))
                .arg("foreign")
                .arg(u8::from(spec.allow_foreign_parties))
                .arg("ext")
                .arg(u8::from(spec.extensions))
                .arg("ext_len")
                .arg(spec.extension_len);
            if k == 0 && n > 1 {
                cmd.arg("subpools").arg(n);
            }
            let _: () = self.query(&cmd).await?;
        }
        if self.replica_ack > 0 {
            // With `replica_ack`, answered only once replicas hold the pool: the
            // registry entries and every sub-pool's settings, each on its node.
            // Each write below repeats one of ours (same value), so the `WAIT`
            // after it on the same connection covers all that node held.
            let mut c = self.create_conn();
            let mut writes = vec![
                redis::cmd("HSET").arg(POOLS).arg(&name).arg(pid).clone(),
                redis::cmd("HSET").arg(PIDS).arg(pid).arg(&name).clone(),
            ];
            for k in 0..n {
                writes.push(
                    redis::cmd("HSET")
                        .arg(meta_key(&subpools::tag(&name, k)))
                        .arg("pid")
                        .arg(&pid_bytes(pid)[..])
                        .clone(),
                );
            }
            for w in &writes {
                self.wait_after(&mut c, w, "the pool").await?;
            }
        }
        Ok(())
    }

    pub(super) async fn get_pool_impl(&self, pool: &str) -> Result<PoolSpec, StoreError> {
        let m: HashMap<String, Vec<u8>> = self
            .query(redis::cmd("HGETALL").arg(meta_key(pool)))
            .await?;
        if m.is_empty() {
            return Err(StoreError::PoolNotFound(pool.to_owned()));
        }
        fn num<T: std::str::FromStr>(
            m: &HashMap<String, Vec<u8>>,
            k: &str,
        ) -> Result<T, StoreError> {
            m.get(k)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| corrupt("pool settings"))
        }
        Ok(PoolSpec {
            name: pool.to_owned(),
            country: num(&m, "country")?,
            grace_s: num(&m, "grace_s")?,
            cooling_s: num(&m, "cooling_s")?,
            max_bindings_per_number: num(&m, "cap")?,
            // Pools made before this setting existed: no foreign parties.
            allow_foreign_parties: m.get("foreign").is_some_and(|v| v.as_slice() == b"1"),
            // Pools made before extensions existed: none by default, 4 digits.
            extensions: m.get("ext").is_some_and(|v| v.as_slice() == b"1"),
            extension_len: match m.get("ext_len") {
                Some(_) => num(&m, "ext_len")?,
                None => DEFAULT_EXTENSION_LEN,
            },
        })
    }

    pub(super) async fn list_pools_impl(&self) -> Result<Vec<PoolSpec>, StoreError> {
        let names = self.pool_names_all().await?;
        let specs = futures::future::join_all(names.iter().map(|n| self.get_pool_impl(n))).await;
        let mut out = Vec::with_capacity(specs.len());
        for s in specs {
            match s {
                Ok(s) => out.push(s),
                // Half-created (its settings not yet written): not listed.
                Err(StoreError::PoolNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub(super) async fn import_numbers_impl(
        &self,
        pool: &str,
        numbers: Vec<NumberSpec>,
    ) -> Result<ImportOutcome, StoreError> {
        let exists: bool = self.query(redis::cmd("EXISTS").arg(meta_key(pool))).await?;
        if !exists {
            return Err(StoreError::PoolNotFound(pool.to_owned()));
        }
        let mut out = ImportOutcome::default();
        let mut valid: Vec<(usize, &NumberSpec)> = Vec::new();
        for (i, n) in numbers.iter().enumerate() {
            match n.area.as_deref().map(|a| validate_area(a, "area")) {
                Some(Err(e)) => out.errors.push((i, e.to_string())),
                _ => valid.push((i, n)),
            }
        }
        // Claim each number for this pool in the global index (first come wins).
        let mut owners: Vec<(usize, &NumberSpec)> = Vec::new();
        for chunk in valid.chunks(1000) {
            let mut pipe = redis::pipe();
            for (_, n) in chunk {
                pipe.cmd("HSETNX")
                    .arg(NUMBERS)
                    .arg(digits(&n.number))
                    .arg(pool);
                pipe.cmd("HGET").arg(NUMBERS).arg(digits(&n.number));
            }
            let r: Vec<Value> = self.query_pipe(&pipe).await?;
            for ((i, n), pair) in chunk.iter().zip(r.chunks(2)) {
                let owner = pair.get(1).and_then(bytes).unwrap_or(b"");
                if owner == pool.as_bytes() {
                    owners.push((*i, n));
                } else {
                    out.errors
                        .push((*i, "the number belongs to another pool".to_owned()));
                }
            }
        }
        let n = self.subpools(pool).await?;
        let mut by_sub: Vec<Vec<(usize, &NumberSpec)>> = vec![Vec::new(); n as usize];
        for (i, num) in owners {
            let k = subpools::of_number(digits(&num.number), n) as usize;
            if let Some(v) = by_sub.get_mut(k) {
                v.push((i, num));
            }
        }
        for (k, owners) in by_sub.iter().enumerate() {
            let t = subpools::tag(pool, k as u32);
            self.import_into(&t, owners, &mut out).await?;
        }
        out.errors.sort_by_key(|(i, _)| *i);
        Ok(out)
    }

    /// Imports numbers (already claimed for the pool) into the sub-pool tagged `t`.
    async fn import_into(
        &self,
        t: &str,
        owners: &[(usize, &NumberSpec)],
        out: &mut ImportOutcome,
    ) -> Result<(), StoreError> {
        for chunk in owners.chunks(1000) {
            let p = prefix(t);
            let infos: Vec<(String, String, String)> = chunk
                .iter()
                .map(|(_, n)| {
                    let caps = u8::from(n.capabilities.voice) | (u8::from(n.capabilities.sms) << 1);
                    (
                        digits(&n.number).to_owned(),
                        caps.to_string(),
                        n.area.clone().unwrap_or_default(),
                    )
                })
                .collect();
            let mut args: Vec<&[u8]> = vec![p.as_bytes()];
            for (x, c, a) in &infos {
                args.extend([x.as_bytes(), c.as_bytes(), a.as_bytes()]);
            }
            let r = self
                .eval(&self.scripts.import, &[meta_key(t).as_bytes()], &args)
                .await?;
            if at(&r, 0)? == b"e" {
                let pool = t.split('~').next().unwrap_or(t);
                return Err(StoreError::PoolNotFound(pool.to_owned()));
            }
            for v in r.iter().skip(1) {
                match int(v) {
                    Some(1) => out.added += 1,
                    _ => out.skipped += 1,
                }
            }
        }
        Ok(())
    }

    pub(super) async fn retire_number_impl(
        &self,
        pool: &str,
        number: &E164,
    ) -> Result<(), StoreError> {
        let t = self.tag_of_number(pool, number).await?;
        let r = self
            .eval(
                &self.scripts.retire,
                &[meta_key(&t).as_bytes()],
                &[prefix(&t).as_bytes(), digits(number).as_bytes()],
            )
            .await?;
        match (at(&r, 0)?, r.get(1).and_then(bytes)) {
            (b"o", _) => Ok(()),
            (_, Some(b"nopool")) => Err(StoreError::PoolNotFound(pool.to_owned())),
            (_, Some(b"nonumber")) => Err(StoreError::NumberNotFound),
            _ => Err(corrupt("retire reply")),
        }
    }

    pub(super) async fn pool_of_number_impl(
        &self,
        number: &E164,
    ) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("HGET").arg(NUMBERS).arg(digits(number)))
            .await
    }

    pub(super) async fn pool_stats_impl(
        &self,
        pool: &str,
        now: UnixMs,
    ) -> Result<PoolStats, StoreError> {
        let spec = self.get_pool_impl(pool).await?;
        let mut cooling = 0i64;
        let mut per_number = Vec::new();
        let mut live_numbers: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.tags(pool).await? {
            let r = self
                .eval(
                    &self.scripts.stats,
                    &[meta_key(&t).as_bytes()],
                    &[prefix(&t).as_bytes(), now.to_string().as_bytes()],
                )
                .await?;
            if at(&r, 0)? != b"o" {
                return Err(StoreError::PoolNotFound(pool.to_owned()));
            }
            cooling += r.get(1).and_then(int).ok_or_else(|| corrupt("cooling"))?;
            let mut live_here = Vec::new();
            for row in r.get(2..).unwrap_or(&[]).chunks(3) {
                let [x, info, live] = row else {
                    return Err(corrupt("stats row"));
                };
                let x = bytes(x).ok_or_else(|| corrupt("number"))?;
                let x = std::str::from_utf8(x).map_err(|_| corrupt("number"))?;
                let (state, _, _, area) =
                    parse_number_info(bytes(info).ok_or_else(|| corrupt("number info"))?)?;
                let live = int(live).ok_or_else(|| corrupt("live count"))?.max(0) as u64;
                if live > 0 {
                    live_here.push(x.to_owned());
                }
                per_number.push(NumberLoad {
                    number: E164::parse(&format!("+{x}")).map_err(|_| corrupt("number"))?,
                    area,
                    state,
                    live_bindings: live,
                });
            }
            live_numbers.push((t, live_here));
        }
        per_number.sort_by(|a, b| {
            b.live_bindings
                .cmp(&a.live_bindings)
                .then_with(|| a.number.cmp(&b.number))
        });
        let busiest_parties = self.busiest(&live_numbers, now).await?;
        let retired = per_number
            .iter()
            .filter(|n| n.state != NumberState::Active)
            .count() as u64;
        Ok(PoolStats {
            spec,
            numbers: per_number.len() as u64,
            active_numbers: per_number.len() as u64 - retired,
            retired_numbers: retired,
            live_bindings: per_number.iter().map(|n| n.live_bindings).sum(),
            cooling: cooling.max(0) as u64,
            per_number,
            busiest_parties,
        })
    }

    /// Busiest parties of a pool: live bindings per party over every live binding
    /// (paged reads, not one script, so a big pool does not block Redis).
    /// `live_numbers`: per sub-pool (its key tag), the numbers with live bindings.
    pub(super) async fn busiest(
        &self,
        live_numbers: &[(String, Vec<String>)],
        now: UnixMs,
    ) -> Result<Vec<PartyLoad>, StoreError> {
        let mut counts: HashMap<[u8; 8], u64> = HashMap::new();
        for (pool, live) in live_numbers {
            self.count_parties(pool, live, now, &mut counts).await?;
        }
        let mut out: Vec<PartyLoad> = counts
            .into_iter()
            .map(|(k, n)| PartyLoad {
                party: hex::encode(k),
                live_bindings: n,
            })
            .collect();
        out.sort_by(|a, b| {
            b.live_bindings
                .cmp(&a.live_bindings)
                .then_with(|| a.party.cmp(&b.party))
        });
        out.truncate(10);
        Ok(out)
    }

    /// Adds the live bindings per party on `live_numbers` of the sub-pool tagged
    /// `pool` to `counts`.
    async fn count_parties(
        &self,
        pool: &str,
        live_numbers: &[String],
        now: UnixMs,
        counts: &mut HashMap<[u8; 8], u64>,
    ) -> Result<(), StoreError> {
        let shards: u32 = self
            .query::<Option<u32>>(redis::cmd("HGET").arg(meta_key(pool)).arg("shards"))
            .await?
            .unwrap_or(1);
        for chunk in live_numbers.chunks(100) {
            let mut pipe = redis::pipe();
            for x in chunk {
                for k in 0..shards {
                    pipe.cmd("ZRANGEBYSCORE")
                        .arg(format!("{{{pool}}}l{x}:{k}"))
                        .arg(format!("({now}"))
                        .arg("+inf");
                }
            }
            let members: Vec<Vec<Vec<u8>>> = self.query_pipe(&pipe).await?;
            let members: Vec<Vec<u8>> = members.into_iter().flatten().collect();
            for batch in members.chunks(500) {
                let mut get = redis::pipe();
                for m in batch {
                    let mut sh = [0u8; 8];
                    if let Some(s) = m.get(..8) {
                        sh.copy_from_slice(s);
                    }
                    get.cmd("HGET").arg(record_key(pool, &sh)).arg(&sh[..]);
                }
                let recs: Vec<Option<Vec<u8>>> = self.query_pipe(&get).await?;
                for (m, rec) in batch.iter().zip(recs) {
                    let Some(rec) = rec else { continue };
                    let Ok(r) = parse_record(&rec) else { continue };
                    if r.expires <= now || m.get(8..) != Some(&r.gen[..]) {
                        continue;
                    }
                    for h in [r.ha, r.hb] {
                        *counts.entry(h).or_default() += 1;
                    }
                }
            }
        }
        Ok(())
    }
}
