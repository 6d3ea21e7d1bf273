//! Binding operations of the Redis store: reads, changes, routing, reaping and the
//! audit stream (allocation: `create.rs`).
//!
//! The [`BindingStore`](super::super::BindingStore) trait methods in `mod.rs` delegate
//! here; the key layout and the scripts' contracts are documented in the parent
//! module and in `src/store/lua/`.

use std::collections::HashMap;

use redis::Value;

use super::codec::{
    meta_key, parse_record, parse_route, party_tag, prefix, record_key, route_key, shipment_hash,
    split_id, IdParts,
};
use super::{
    at, bytes, corrupt, int, items, pid_of, RedisStore, AUDIT, AUDIT_MAXLEN, PIDS, REAP_BATCH,
};
use crate::bindings::{validate_expiry, Binding, BindingId, BindingPatch, Invalid, Route, UnixMs};
use crate::numbers::E164;
use crate::store::{AuditEntry, StoreError};

impl RedisStore {
    pub(super) async fn get_binding_impl(
        &self,
        id: BindingId,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        self.load(id, now).await?.ok_or(StoreError::BindingNotFound)
    }

    pub(super) async fn find_by_shipment_impl(
        &self,
        pool: Option<&str>,
        shipment_id: &str,
        now: UnixMs,
    ) -> Result<Vec<Binding>, StoreError> {
        let pools = match pool {
            Some(p) => {
                self.get_pool_impl(p).await?;
                vec![p.to_owned()]
            }
            None => self.pool_names_all().await?,
        };
        let mut subs = Vec::new();
        for p in &pools {
            for t in self.tags(p).await? {
                subs.push((p.as_str(), t));
            }
        }
        let found = futures::future::join_all(subs.iter().map(|(p, t)| async move {
            let sh = shipment_hash(p, shipment_id);
            let r = self
                .eval(
                    &self.scripts.get,
                    &[&record_key(t, &sh)],
                    &[prefix(t).as_bytes(), now.to_string().as_bytes(), b"", &sh],
                )
                .await?;
            if r.len() != 3 {
                return Ok(None);
            }
            let ra = at(&r, 1)?;
            let b = self.assemble(p, parse_route(ra)?.id, at(&r, 0)?, ra, at(&r, 2)?)?;
            Ok::<_, StoreError>((b.shipment_id == shipment_id).then_some(b))
        }))
        .await;
        let mut out = Vec::new();
        for f in found {
            if let Some(b) = f? {
                out.push(b);
            }
        }
        Ok(out)
    }

    pub(super) async fn update_binding_impl(
        &self,
        id: BindingId,
        patch: BindingPatch,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        if let Some(e) = patch.expires_at {
            validate_expiry(e, now)?;
        }
        if let (Some(a), Some(b)) = (&patch.party_a, &patch.party_b) {
            if a == b {
                return Err(Invalid::new("party_b", "must differ from party_a").into());
            }
        }
        self.change(id, &patch, false, now).await
    }

    pub(super) async fn mark_delivered_impl(
        &self,
        id: BindingId,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        self.change(id, &BindingPatch::default(), true, now).await
    }

    pub(super) async fn delete_binding_impl(
        &self,
        id: BindingId,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        self.on_binding(id, |pool, parts| self.delete_in(pool, parts, now))
            .await
    }

    async fn delete_in(&self, pool: String, parts: IdParts, now: UnixMs) -> Result<(), StoreError> {
        let t = self.tag_of_gen(&pool, &parts.gen).await?;
        let r = self
            .eval(
                &self.scripts.delete,
                &[meta_key(&t).as_bytes(), &record_key(&t, &parts.sh)],
                &[
                    prefix(&t).as_bytes(),
                    now.to_string().as_bytes(),
                    &parts.gen,
                    &parts.sh,
                ],
            )
            .await?;
        match at(&r, 0)? {
            b"o" => Ok(()),
            _ => Err(StoreError::BindingNotFound),
        }
    }

    pub(super) async fn route_impl(
        &self,
        pool: &str,
        number: &E164,
        caller: &E164,
        now: UnixMs,
    ) -> Result<Option<Route>, StoreError> {
        let t = self.tag_of_number(pool, number).await?;
        let tag = party_tag(&self.hasher, caller);
        let key = route_key(&t, number, &tag);
        // One round trip: the route value and the binding's record (for the call
        // record's shipment and direction).
        let r = self
            .eval(&self.scripts.route, &[&key], &[prefix(&t).as_bytes()])
            .await?;
        let Some(v) = r.first().and_then(bytes) else {
            return Ok(None);
        };
        let rv = parse_route(v)?;
        if rv.until <= now || rv.sealed.is_empty() {
            return Ok(None);
        }
        // The record of the same binding (same generation) names the shipment and
        // whether the caller is party A; a missing or newer record only loses that.
        let rec = r
            .get(1)
            .and_then(bytes)
            .and_then(|raw| parse_record(raw).ok())
            .filter(|rec| split_id(&rv.id).is_some_and(|p| p.gen == rec.gen));
        Ok(Some(Route {
            binding_id: rv.id,
            pool: pool.to_owned(),
            callee: self.open(pool, rv.sealed)?,
            expires_at: rv.until,
            caller_is_a: rec.as_ref().map(|rec| rec.ha == tag),
            shipment_id: rec.map(|rec| rec.shipment),
        }))
    }

    pub(super) async fn reap_impl(&self, now: UnixMs) -> Result<u64, StoreError> {
        // Drops the pool id caches promptly when Redis lost its data.
        self.check_epoch().await?;
        let mut total = 0u64;
        let mut names = Vec::new();
        for pool in self.pool_names_all().await? {
            names.extend(self.tags(&pool).await?);
        }
        // One look at every (sub-)pool's next event (concurrent single-key reads: they
        // share the connection's pipeline, and on a cluster each goes to its pool's
        // master); scripts only where one is due.
        let mut due = Vec::new();
        for chunk in names.chunks(1000) {
            let firsts = futures::future::join_all(chunk.iter().map(|pool| async move {
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(format!("{{{pool}}}nx"))
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES");
                self.query::<Value>(&cmd).await
            }))
            .await;
            for (pool, first) in chunk.iter().zip(firsts) {
                let next = items(first?)?.get(1).and_then(|v| match v {
                    Value::Double(d) => Some(*d as i64),
                    other => bytes(other)
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|t| t.parse::<f64>().ok())
                        .map(|d| d as i64),
                });
                if next.is_some_and(|t| t <= now) {
                    due.push(pool.clone());
                }
            }
        }
        for pool in due {
            // Bounded batches; a pool with a long backlog is finished over a few calls.
            for _ in 0..64 {
                let r = self
                    .eval(
                        &self.scripts.reap,
                        &[meta_key(&pool).as_bytes()],
                        &[
                            prefix(&pool).as_bytes(),
                            now.to_string().as_bytes(),
                            REAP_BATCH.to_string().as_bytes(),
                        ],
                    )
                    .await?;
                total += r.first().and_then(int).unwrap_or(0).max(0) as u64;
                if r.get(1).and_then(int).unwrap_or(0) == 0 {
                    break;
                }
            }
        }
        Ok(total)
    }

    pub(super) async fn ping_impl(&self) -> Result<(), StoreError> {
        if self.check_epoch().await? {
            Ok(())
        } else {
            Err(StoreError::Unavailable(crate::store::DATA_LOST.into()))
        }
    }

    pub(super) async fn append_audit_impl(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(AUDIT)
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_MAXLEN)
            .arg("*")
            .arg("at")
            .arg(entry.at)
            .arg("actor")
            .arg(&entry.actor)
            .arg("role")
            .arg(&entry.role)
            .arg("action")
            .arg(&entry.action)
            .arg("target")
            .arg(&entry.target);
        if let Some(pool) = &entry.pool {
            cmd.arg("pool").arg(pool);
        }
        if let Some(reason) = &entry.reason {
            cmd.arg("reason").arg(reason);
        }
        let _: String = self.query(&cmd).await?;
        Ok(())
    }

    pub(super) async fn read_audit_impl(
        &self,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let v: Value = self
            .query(
                redis::cmd("XREVRANGE")
                    .arg(AUDIT)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        let mut out = Vec::new();
        for e in items(v)? {
            let e = items(e)?;
            let fields = items(e.get(1).cloned().unwrap_or(Value::Nil))?;
            let mut m: HashMap<&[u8], String> = HashMap::new();
            for kv in fields.chunks(2) {
                if let [k, v] = kv {
                    if let (Some(k), Some(v)) = (bytes(k), bytes(v)) {
                        m.insert(k, String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
            let pool = m.remove(&b"pool"[..]);
            let reason = m.remove(&b"reason"[..]);
            let mut take = |k: &[u8]| m.remove(k).unwrap_or_default();
            out.push(AuditEntry {
                at: take(b"at").parse().map_err(|_| corrupt("audit time"))?,
                actor: take(b"actor"),
                role: take(b"role"),
                action: take(b"action"),
                target: take(b"target"),
                pool,
                reason,
            });
        }
        Ok(out)
    }

    /// A pool's id (cached: pools are never renamed or removed; a script that finds
    /// another id in Redis says so and the cache is refreshed).
    pub(super) async fn pool_pid(
        &self,
        pool: &str,
        fresh: bool,
    ) -> Result<Option<u32>, StoreError> {
        if !fresh {
            if let Ok(m) = self.pool_pids.read() {
                if let Some(p) = m.get(pool) {
                    return Ok(Some(*p));
                }
            }
        }
        let pid: Option<Vec<u8>> = self
            .query(redis::cmd("HGET").arg(meta_key(pool)).arg("pid"))
            .await?;
        let Some(pid) = pid else {
            if let Ok(mut m) = self.pool_pids.write() {
                m.remove(pool);
            }
            return Ok(None);
        };
        let pid = pid_of(&pid)?;
        if let Ok(mut m) = self.pool_pids.write() {
            m.insert(pool.to_owned(), pid);
        }
        Ok(Some(pid))
    }

    /// Builds a binding from its record and its two route values (route of A holds
    /// sealed B and vice versa).
    pub(super) fn assemble(
        &self,
        pool: &str,
        id: BindingId,
        rec: &[u8],
        ra: &[u8],
        rb: &[u8],
    ) -> Result<Binding, StoreError> {
        let r = parse_record(rec)?;
        let party_b = self.open(pool, parse_route(ra)?.sealed)?;
        let party_a = self.open(pool, parse_route(rb)?.sealed)?;
        Ok(Binding {
            id,
            pool: pool.to_owned(),
            shipment_id: r.shipment,
            number: E164::parse(&format!("+{}", r.x))
                .map_err(|_| corrupt("virtual number in record"))?,
            party_a,
            party_b,
            created_at: r.created,
            expires_at: r.expires,
            state: r.state,
            extension: r.extension,
        })
    }

    /// The pool a binding id points to.
    pub(super) async fn pool_name(
        &self,
        pid: u32,
        fresh: bool,
    ) -> Result<Option<String>, StoreError> {
        if !fresh {
            if let Ok(m) = self.pool_names.read() {
                if let Some(n) = m.get(&pid) {
                    return Ok(Some(n.clone()));
                }
            }
        }
        let name: Option<String> = self.query(redis::cmd("HGET").arg(PIDS).arg(pid)).await?;
        if let Ok(mut m) = self.pool_names.write() {
            match &name {
                Some(n) => m.insert(pid, n.clone()),
                None => m.remove(&pid),
            };
        }
        Ok(name)
    }

    /// The live binding `id` as (pool, id parts), record and route values.
    pub(super) async fn load(
        &self,
        id: BindingId,
        now: UnixMs,
    ) -> Result<Option<Binding>, StoreError> {
        let Some(parts) = split_id(&id) else {
            return Ok(None);
        };
        for fresh in [false, true] {
            let Some(pool) = self.pool_name(parts.pid, fresh).await? else {
                return Ok(None);
            };
            let t = self.tag_of_gen(&pool, &parts.gen).await?;
            let r = self
                .eval(
                    &self.scripts.get,
                    &[&record_key(&t, &parts.sh)],
                    &[
                        prefix(&t).as_bytes(),
                        now.to_string().as_bytes(),
                        &parts.gen,
                        &parts.sh,
                    ],
                )
                .await?;
            if r.len() == 3 {
                let b = self.assemble(&pool, id, at(&r, 0)?, at(&r, 1)?, at(&r, 2)?)?;
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// Resolves a binding id to (pool, parts) for a change; `BindingNotFound` if the
    /// id is not ours or its pool is gone.
    /// `fresh` skips the cache (a cached name may be stale after Redis lost its data
    /// and a new pool got the same id).
    pub(super) async fn locate(
        &self,
        id: BindingId,
        fresh: bool,
    ) -> Result<(String, IdParts), StoreError> {
        let parts = split_id(&id).ok_or(StoreError::BindingNotFound)?;
        let pool = self
            .pool_name(parts.pid, fresh)
            .await?
            .ok_or(StoreError::BindingNotFound)?;
        Ok((pool, parts))
    }

    /// Runs `op` on the binding's pool; when it finds nothing under a cached pool
    /// name, checks the name against Redis and runs it again if the name changed.
    async fn on_binding<T, F, Fut>(&self, id: BindingId, op: F) -> Result<T, StoreError>
    where
        F: Fn(String, IdParts) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let (pool, parts) = self.locate(id, false).await?;
        match op(pool.clone(), parts).await {
            Err(StoreError::BindingNotFound) => {
                let (fresh, parts) = self.locate(id, true).await?;
                if fresh == pool {
                    return Err(StoreError::BindingNotFound);
                }
                op(fresh, parts).await
            }
            other => other,
        }
    }

    pub(super) async fn change(
        &self,
        id: BindingId,
        patch: &BindingPatch,
        delivered: bool,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        self.on_binding(id, |pool, parts| {
            self.change_in(id, pool, parts, patch, delivered, now)
        })
        .await
    }

    async fn change_in(
        &self,
        id: BindingId,
        pool: String,
        parts: IdParts,
        patch: &BindingPatch,
        delivered: bool,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        let part = |p: &Option<E164>| match p {
            Some(n) => (party_tag(&self.hasher, n).to_vec(), self.seal(&pool, n)),
            None => (Vec::new(), Vec::new()),
        };
        let (ha, sa) = part(&patch.party_a);
        let (hb, sb) = part(&patch.party_b);
        let exp = patch.expires_at.map(|e| e.to_string()).unwrap_or_default();
        let t = self.tag_of_gen(&pool, &parts.gen).await?;
        let r = self
            .eval(
                &self.scripts.update,
                &[meta_key(&t).as_bytes(), &record_key(&t, &parts.sh)],
                &[
                    prefix(&t).as_bytes(),
                    now.to_string().as_bytes(),
                    &parts.gen,
                    &ha,
                    &sa,
                    &hb,
                    &sb,
                    exp.as_bytes(),
                    if delivered { b"1" } else { b"" },
                    &parts.sh,
                ],
            )
            .await?;
        match at(&r, 0)? {
            b"o" => self.assemble(&pool, id, at(&r, 1)?, at(&r, 3)?, at(&r, 4)?),
            b"e" => {
                let field = match at(&r, 2).unwrap_or(b"") {
                    b"party_b" => "party_b",
                    _ => "party_a",
                };
                match at(&r, 1)? {
                    b"notfound" => Err(StoreError::BindingNotFound),
                    b"same" => Err(Invalid::new(field, "must differ from the other party").into()),
                    b"held" => Err(StoreError::ReassignConflict { field }),
                    _ => Err(corrupt("update error code")),
                }
            }
            _ => Err(corrupt("update reply")),
        }
    }
}
