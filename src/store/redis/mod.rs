//! The production store: [`RedisStore`], a [`BindingStore`] on Redis.
//!
//! Every state change is one Lua script (`src/store/lua/*.lua`, each prefixed with
//! `prelude.lua`) touching keys of one pool only, all under the pool's hash tag
//! `{pool}`, so the store runs unchanged on Redis Cluster (one pool = one slot).
//! Time is always the caller's `now`, never Redis `TIME`.
//!
//! ## Key layout (pool `p`; `X` = virtual number digits, `h(n)` = party tag: 8 bytes of its keyed hash)
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `{p}m` | hash | pool settings: `country grace_s cooling_s cap pid shards` | none |
//! | `{p}n` | hash | `X` → `<state a/r><caps 0-3><area>` | none |
//! | `{p}ld` | zset | active `X` → live bindings (allocation order) | none |
//! | `{p}la:<area>` | zset | same, for numbers of one area | none |
//! | `{p}lr` | zset | retired `X` → live bindings | none |
//! | `{p}l<X>:<k>` | zset | bindings on `X` (shard `k` of `shards`): `sh‖gen` → end time, kept through cooling | none (trimmed) |
//! | `{p}nx` | zset | `X` → its next event (an expiry or a cooling end) | none |
//! | `{p}nt` | hash | `X` → time of its last recount | none |
//! | `{p}r<X><h(party)>` | string | route **and** hold: `id(16) until(6) sealed callee` | until + cooling |
//! | `{p}s<sh[0..2]>` | hash | binding records, field `sh`: `gen created expires state h(A) h(B) X(BCD) shipment` | none (trimmed) |
//! | `{p}c` | zset | holds of parties replaced by a reassignment → since | none (trimmed) |
//! | `ml:pools` / `ml:pid` | hash | pool name ↔ pool id (untagged, global) | none |
//! | `ml:x` | hash | `X` → pool (untagged, global: the voice/SMS entry point) | none |
//! | `ml:pseq` | string | pool id counter | none |
//! | `ml:audit` | stream | audit entries | none (capped) |
//!
//! `sh` is 8 bytes of SHA-256(pool, shipment id); the binding id (a UUIDv8) is
//! `sh`, the pool id and a random 3-byte generation, so `get_binding(id)` finds the
//! pool (id → name, cached) and the record (field `sh` of `{p}s<sh[0..2]>`) without
//! an index per binding, and `find_by_shipment` reads the same field.
//!
//! **Route keys are the party holds.** `{p}r<X><h(party)>` exists exactly while the
//! party holds X (live binding or cooling); its value says until when it *routes*.
//! `route()` is one `GET`, and answers only while `now < until` and the value carries
//! the sealed callee. Ending a binding (delete, reassignment away) rewrites the value
//! without the sealed number and sets PEXPIREAT to end + cooling; a binding that
//! simply expires routes nowhere from its expiry on (the value's `until`), the next
//! recount of its number (the reaper, every second by default) strips the sealed
//! number from its values, and its keys disappear at expiry + cooling. So the allocation check "neither party holds
//! X" is two `EXISTS`, with no per-party index (which would cost ~100 bytes a party).
//!
//! **Memory.** The two route keys are the only keys a binding owns (each key with a
//! TTL costs ~150 bytes of Redis overhead before its content). Everything else about
//! a binding is an entry in small pool-level hashes and sorted sets that stay
//! listpack-encoded: the record (~60 bytes, in one of 65,536 shards by `sh`) and its
//! entry in the number's binding list (~25 bytes; `shards` = cap / 50 lists per
//! number so each stays under Redis' default 128-entry listpack limit). These
//! entries have no TTL of their own: every read checks the record's expiry, so an
//! expired binding is not found, does not route and is not counted even if no reaper
//! runs; the entries are dropped when the binding's cooling ends (by the next
//! allocation on that number or the reaper). They hold keyed hashes only.
//!
//! **Counters.** `{p}l<X>:*` hold each binding's end time, so the live count of X at
//! `now` is `ZCOUNT (now +inf` — exact without any reaper — and cooling holds are
//! the ends within the last cooling period (×2 parties, plus `{p}c`). The load index
//! `{p}ld` used to pick the least-loaded number is recounted for every number whose
//! next event (`{p}nx`) is due: by the allocation script first (up to 64 numbers, all
//! of them before answering "exhausted"), and by [`BindingStore::reap`].
//!
//! **Clocks.** Scripts use the caller's `now`; TTLs (`PXAT`) use Redis' clock. Relays
//! and Redis must agree on time (NTP): a relay clock ahead of Redis by *d* makes
//! holds last *d* longer, one behind makes them end *d* early.
//!
//! **Privacy at rest.** Party numbers appear only as keyed hashes in keys and
//! records, and sealed (AES-GCM, BCD-packed, context = pool name) inside route
//! values. Virtual numbers are ours and appear in clear.
//!
//! **Failures.** Connection errors and timeouts (a command timeout bounds every call)
//! are [`StoreError::Unavailable`]; the [`ConnectionManager`] reconnects by itself
//! and scripts are reloaded on `NOSCRIPT`, so a Redis restart needs no relay restart.
//! Domain failures come back from the scripts as `{'e', code}` replies and become
//! typed errors.

mod codec;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script, ServerErrorKind, Value};

use self::codec::{
    digits, make_id, meta_key, pack_number, parse_number_info, parse_record, parse_route,
    party_tag, pid_bytes, prefix, record_key, route_key, shards_for, shipment_hash, split_id,
    unpack_number, CodecError, IdParts, MAX_PID,
};
use super::{AuditEntry, BindingStore, StoreError};
use crate::bindings::{
    validate_area, validate_expiry, validate_new_binding, validate_pool_spec, Binding, BindingId,
    BindingPatch, Created, ImportOutcome, Invalid, NewBinding, NumberLoad, NumberSpec, NumberState,
    PartyLoad, PoolSpec, PoolStats, Route, UnixMs,
};
use crate::numbers::{NumberHasher, Sealer, E164};

const PRELUDE: &str = include_str!("../lua/prelude.lua");

/// Global (untagged) keys.
const POOLS: &str = "ml:pools";
const PIDS: &str = "ml:pid";
const PSEQ: &str = "ml:pseq";
const NUMBERS: &str = "ml:x";
const AUDIT: &str = "ml:audit";
/// Audit entries kept (approximately) in the stream.
const AUDIT_MAXLEN: u64 = 1_000_000;
/// Numbers recounted per reap script call (bounds how long one call blocks Redis).
const REAP_BATCH: i64 = 256;

/// Default bound on every store call.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection settings of a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Bound on every call: past it the call fails with [`StoreError::Unavailable`].
    pub timeout: Duration,
    /// Multiplexed connections, used round-robin. Each pipelines the concurrent
    /// calls it carries; one batches best (measured: 114k route lookups/s from 128
    /// tasks on one connection vs 104k on two, on 2 busy cores).
    pub connections: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_COMMAND_TIMEOUT,
            connections: 1,
        }
    }
}

impl From<CodecError> for StoreError {
    fn from(e: CodecError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

struct Scripts {
    create: Script,
    get: Script,
    update: Script,
    delete: Script,
    import: Script,
    retire: Script,
    reap: Script,
    stats: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Self {
            create: s(include_str!("../lua/create.lua")),
            get: s(include_str!("../lua/get.lua")),
            update: s(include_str!("../lua/update.lua")),
            delete: s(include_str!("../lua/delete.lua")),
            import: s(include_str!("../lua/import.lua")),
            retire: s(include_str!("../lua/retire.lua")),
            reap: s(include_str!("../lua/reap.lua")),
            stats: s(include_str!("../lua/stats.lua")),
        }
    }
}

/// The Redis [`BindingStore`]. Cheap to share behind an `Arc`; one multiplexed,
/// self-reconnecting connection carries all calls.
pub struct RedisStore {
    conns: Vec<ConnectionManager>,
    next: AtomicUsize,
    hasher: NumberHasher,
    sealer: Sealer,
    scripts: Scripts,
    timeout: Duration,
    /// Pool id → name (pools are never renamed; refreshed on a miss).
    pool_names: RwLock<HashMap<u32, String>>,
    /// Pool name → id (refreshed when a script reports another id).
    pool_pids: RwLock<HashMap<String, u32>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Maps a Redis error: anything about reaching Redis is retryable
/// ([`StoreError::Unavailable`]); a reply we cannot use is [`StoreError::Corrupt`].
fn map_err(e: RedisError) -> StoreError {
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(e.code(), Some("OOM" | "BUSY" | "LOADING" | "READONLY"));
    match e.kind() {
        _ if transient => StoreError::Unavailable(e.to_string()),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::NoScript,
        ) => StoreError::Unavailable(e.to_string()),
        ErrorKind::Server(_)
        | ErrorKind::Extension
        | ErrorKind::Parse
        | ErrorKind::UnexpectedReturnType => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// 6-byte big-endian timestamp, as the scripts' `enc6`.
fn enc6(ms: UnixMs) -> [u8; 6] {
    let b = ms.max(0).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("unexpected reply: {what}"))
}

fn items(v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        _ => Err(corrupt("expected an array")),
    }
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn at(v: &[Value], i: usize) -> Result<&[u8], StoreError> {
    v.get(i)
        .and_then(bytes)
        .ok_or_else(|| corrupt("missing field"))
}

fn pid_of(b: &[u8]) -> Result<u32, StoreError> {
    match b {
        [x, y, z] => Ok(u32::from_be_bytes([0, *x, *y, *z])),
        _ => Err(corrupt("pool id")),
    }
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://[:password@]host:port[/db]`, or
    /// `rediss://` for TLS) with the default command timeout.
    pub async fn connect(
        url: &str,
        hasher: NumberHasher,
        sealer: Sealer,
    ) -> Result<RedisStore, StoreError> {
        Self::connect_with(url, hasher, sealer, RedisOptions::default()).await
    }

    /// Like [`RedisStore::connect`], with explicit connection settings.
    pub async fn connect_with(
        url: &str,
        hasher: NumberHasher,
        sealer: Sealer,
        options: RedisOptions,
    ) -> Result<RedisStore, StoreError> {
        let timeout = options.timeout;
        let client = redis::Client::open(url)
            .map_err(|e| Invalid::new("redis_url", format!("not a Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let mut conns = Vec::new();
        for _ in 0..options.connections.max(1) {
            let conn = tokio::time::timeout(
                timeout,
                ConnectionManager::new_with_config(client.clone(), config.clone()),
            )
            .await
            .map_err(|_| StoreError::Unavailable("connecting to Redis timed out".into()))?
            .map_err(map_err)?;
            conns.push(conn);
        }
        Ok(RedisStore {
            conns,
            next: AtomicUsize::new(0),
            hasher,
            sealer,
            scripts: Scripts::new(),
            timeout,
            pool_names: RwLock::new(HashMap::new()),
            pool_pids: RwLock::new(HashMap::new()),
        })
    }

    /// The next connection, round-robin.
    fn conn(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].clone()
    }

    /// Keys and arguments of the create script for `req` in pool id `pid`. Everything
    /// that does not depend on the number the script picks is built here, so the
    /// script (which runs on the one Redis thread) only concatenates.
    fn create_args(
        &self,
        req: &NewBinding,
        now: UnixMs,
        sh: [u8; 8],
        gen: [u8; 3],
        pid: u32,
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let pool = req.pool.as_str();
        let id = make_id(&IdParts { sh, pid, gen });
        let ta = party_tag(&self.hasher, &req.party_a);
        let tb = party_tag(&self.hasher, &req.party_b);
        let route_value = |callee: &E164| {
            let mut v = id.as_bytes().to_vec();
            v.extend_from_slice(&enc6(req.expires_at));
            v.extend_from_slice(&self.seal(pool, callee));
            v
        };
        let mut head = gen.to_vec();
        head.extend_from_slice(&enc6(now));
        head.extend_from_slice(&enc6(req.expires_at));
        head.push(b'a');
        head.extend_from_slice(&ta);
        head.extend_from_slice(&tb);
        let keys = vec![meta_key(pool).into_bytes(), record_key(pool, &sh)];
        let args = vec![
            prefix(pool).into_bytes(),
            now.to_string().into_bytes(),
            sh.to_vec(),
            gen.to_vec(),
            req.expires_at.to_string().into_bytes(),
            req.shipment_id.clone().into_bytes(),
            ta.to_vec(),
            tb.to_vec(),
            route_value(&req.party_b),
            route_value(&req.party_a),
            req.area.clone().unwrap_or_default().into_bytes(),
            pid_bytes(pid).to_vec(),
            head,
        ];
        (keys, args)
    }

    /// A pool's id (cached: pools are never renamed or removed; a script that finds
    /// another id in Redis says so and the cache is refreshed).
    async fn pool_pid(&self, pool: &str, fresh: bool) -> Result<Option<u32>, StoreError> {
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

    /// Benchmark support (`loadtest`'s `store_bench`): the allocation script for `req`
    /// as a bare `EVALSHA` command, to drive Redis directly (pipelined, on other
    /// connections) and measure the ceiling below this store. Call
    /// [`RedisStore::load_scripts`] first. The reply is the script's raw reply
    /// (`["n", ...]` new, `["x", ...]` existing, `["e", code, ...]` error).
    #[doc(hidden)]
    pub async fn create_command(
        &self,
        req: &NewBinding,
        now: UnixMs,
    ) -> Result<redis::Cmd, StoreError> {
        let pid = self
            .pool_pid(&req.pool, false)
            .await?
            .ok_or_else(|| StoreError::PoolNotFound(req.pool.clone()))?;
        let sh = shipment_hash(&req.pool, &req.shipment_id);
        let mut gen = [0u8; 3];
        rand::rng().fill_bytes(&mut gen);
        let (keys, args) = self.create_args(req, now, sh, gen, pid);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.scripts.create.get_hash()).arg(keys.len());
        for k in keys {
            cmd.arg(k);
        }
        for a in args {
            cmd.arg(a);
        }
        Ok(cmd)
    }

    /// Loads every script into Redis (`SCRIPT LOAD`), e.g. before sending
    /// [`RedisStore::create_command`]s. Normal calls load scripts on demand.
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        let s = &self.scripts;
        for script in [
            &s.create, &s.get, &s.update, &s.delete, &s.import, &s.retire, &s.reap, &s.stats,
        ] {
            let mut c = self.conn();
            tokio::time::timeout(self.timeout, script.load_async(&mut c))
                .await
                .map_err(|_| StoreError::Unavailable("Redis call timed out".into()))?
                .map_err(map_err)?;
        }
        Ok(())
    }

    /// Runs one command with the call timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut c = self.conn();
        match tokio::time::timeout(self.timeout, cmd.query_async(&mut c)).await {
            Err(_) => Err(StoreError::Unavailable("Redis call timed out".into())),
            Ok(r) => r.map_err(map_err),
        }
    }

    /// Runs a pipeline with the call timeout.
    async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut c = self.conn();
        match tokio::time::timeout(self.timeout, pipe.query_async(&mut c)).await {
            Err(_) => Err(StoreError::Unavailable("Redis call timed out".into())),
            Ok(r) => r.map_err(map_err),
        }
    }

    /// Runs a script with the call timeout.
    async fn eval(
        &self,
        script: &Script,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Vec<Value>, StoreError> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        let mut c = self.conn();
        match tokio::time::timeout(self.timeout, inv.invoke_async::<Value>(&mut c)).await {
            Err(_) => Err(StoreError::Unavailable("Redis call timed out".into())),
            Ok(r) => items(r.map_err(map_err)?),
        }
    }

    fn open(&self, pool: &str, sealed: &[u8]) -> Result<E164, StoreError> {
        let plain = self
            .sealer
            .open(sealed, pool.as_bytes())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(unpack_number(&plain)?)
    }

    fn seal(&self, pool: &str, n: &E164) -> Vec<u8> {
        self.sealer.seal(&pack_number(n), pool.as_bytes())
    }

    /// Builds a binding from its record and its two route values (route of A holds
    /// sealed B and vice versa).
    fn assemble(
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
        })
    }

    /// The pool a binding id points to.
    async fn pool_name(&self, pid: u32, fresh: bool) -> Result<Option<String>, StoreError> {
        if !fresh {
            if let Ok(m) = self.pool_names.read() {
                if let Some(n) = m.get(&pid) {
                    return Ok(Some(n.clone()));
                }
            }
        }
        let name: Option<String> = self.query(redis::cmd("HGET").arg(PIDS).arg(pid)).await?;
        if let (Some(n), Ok(mut m)) = (&name, self.pool_names.write()) {
            m.insert(pid, n.clone());
        }
        Ok(name)
    }

    /// The live binding `id` as (pool, id parts), record and route values.
    async fn load(&self, id: BindingId, now: UnixMs) -> Result<Option<Binding>, StoreError> {
        let Some(parts) = split_id(&id) else {
            return Ok(None);
        };
        for fresh in [false, true] {
            let Some(pool) = self.pool_name(parts.pid, fresh).await? else {
                return Ok(None);
            };
            let r = self
                .eval(
                    &self.scripts.get,
                    &[&record_key(&pool, &parts.sh)],
                    &[
                        prefix(&pool).as_bytes(),
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
    async fn locate(&self, id: BindingId) -> Result<(String, IdParts), StoreError> {
        let parts = split_id(&id).ok_or(StoreError::BindingNotFound)?;
        let pool = self
            .pool_name(parts.pid, false)
            .await?
            .ok_or(StoreError::BindingNotFound)?;
        Ok((pool, parts))
    }

    async fn change(
        &self,
        id: BindingId,
        patch: &BindingPatch,
        delivered: bool,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        let (pool, parts) = self.locate(id).await?;
        let part = |p: &Option<E164>| match p {
            Some(n) => (party_tag(&self.hasher, n).to_vec(), self.seal(&pool, n)),
            None => (Vec::new(), Vec::new()),
        };
        let (ha, sa) = part(&patch.party_a);
        let (hb, sb) = part(&patch.party_b);
        let exp = patch.expires_at.map(|e| e.to_string()).unwrap_or_default();
        let r = self
            .eval(
                &self.scripts.update,
                &[meta_key(&pool).as_bytes(), &record_key(&pool, &parts.sh)],
                &[
                    prefix(&pool).as_bytes(),
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

    /// Busiest parties of a pool: live bindings per party over every live binding
    /// (paged reads, not one script, so a big pool does not block Redis).
    async fn busiest(
        &self,
        pool: &str,
        live_numbers: &[String],
        now: UnixMs,
    ) -> Result<Vec<PartyLoad>, StoreError> {
        let mut counts: HashMap<[u8; 8], u64> = HashMap::new();
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

    async fn pool_names_all(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self.query(redis::cmd("HKEYS").arg(POOLS)).await?;
        names.sort();
        Ok(names)
    }
}

#[async_trait]
impl BindingStore for RedisStore {
    async fn create_pool(&self, spec: PoolSpec) -> Result<(), StoreError> {
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
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(PIDS)
            .arg(pid)
            .arg(&name)
            .ignore()
            .cmd("HSET")
            .arg(&meta)
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
            .ignore();
        self.query_pipe::<()>(&pipe).await
    }

    async fn get_pool(&self, pool: &str) -> Result<PoolSpec, StoreError> {
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
        })
    }

    async fn list_pools(&self) -> Result<Vec<PoolSpec>, StoreError> {
        let names = self.pool_names_all().await?;
        let specs = futures::future::join_all(names.iter().map(|n| self.get_pool(n))).await;
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

    async fn import_numbers(
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
        for chunk in owners.chunks(1000) {
            let p = prefix(pool);
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
                .eval(&self.scripts.import, &[meta_key(pool).as_bytes()], &args)
                .await?;
            if at(&r, 0)? == b"e" {
                return Err(StoreError::PoolNotFound(pool.to_owned()));
            }
            for v in r.iter().skip(1) {
                match int(v) {
                    Some(1) => out.added += 1,
                    _ => out.skipped += 1,
                }
            }
        }
        out.errors.sort_by_key(|(i, _)| *i);
        Ok(out)
    }

    async fn retire_number(&self, pool: &str, number: &E164) -> Result<(), StoreError> {
        let r = self
            .eval(
                &self.scripts.retire,
                &[meta_key(pool).as_bytes()],
                &[prefix(pool).as_bytes(), digits(number).as_bytes()],
            )
            .await?;
        match (at(&r, 0)?, r.get(1).and_then(bytes)) {
            (b"o", _) => Ok(()),
            (_, Some(b"nopool")) => Err(StoreError::PoolNotFound(pool.to_owned())),
            (_, Some(b"nonumber")) => Err(StoreError::NumberNotFound),
            _ => Err(corrupt("retire reply")),
        }
    }

    async fn pool_of_number(&self, number: &E164) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("HGET").arg(NUMBERS).arg(digits(number)))
            .await
    }

    async fn pool_stats(&self, pool: &str, now: UnixMs) -> Result<PoolStats, StoreError> {
        let spec = self.get_pool(pool).await?;
        let r = self
            .eval(
                &self.scripts.stats,
                &[meta_key(pool).as_bytes()],
                &[prefix(pool).as_bytes(), now.to_string().as_bytes()],
            )
            .await?;
        if at(&r, 0)? != b"o" {
            return Err(StoreError::PoolNotFound(pool.to_owned()));
        }
        let cooling = r.get(1).and_then(int).ok_or_else(|| corrupt("cooling"))?;
        let mut per_number = Vec::new();
        let mut live_numbers = Vec::new();
        for t in r.get(2..).unwrap_or(&[]).chunks(3) {
            let [x, info, live] = t else {
                return Err(corrupt("stats row"));
            };
            let x = bytes(x).ok_or_else(|| corrupt("number"))?;
            let x = std::str::from_utf8(x).map_err(|_| corrupt("number"))?;
            let (retired, _, _, area) =
                parse_number_info(bytes(info).ok_or_else(|| corrupt("number info"))?)?;
            let live = int(live).ok_or_else(|| corrupt("live count"))?.max(0) as u64;
            if live > 0 {
                live_numbers.push(x.to_owned());
            }
            per_number.push(NumberLoad {
                number: E164::parse(&format!("+{x}")).map_err(|_| corrupt("number"))?,
                area,
                state: if retired {
                    NumberState::Retired
                } else {
                    NumberState::Active
                },
                live_bindings: live,
            });
        }
        per_number.sort_by(|a, b| {
            b.live_bindings
                .cmp(&a.live_bindings)
                .then_with(|| a.number.cmp(&b.number))
        });
        let busiest_parties = self.busiest(pool, &live_numbers, now).await?;
        let retired = per_number
            .iter()
            .filter(|n| n.state == NumberState::Retired)
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

    async fn create_binding(&self, req: NewBinding, now: UnixMs) -> Result<Created, StoreError> {
        validate_new_binding(&req, now)?;
        let pool = req.pool.as_str();
        let sh = shipment_hash(pool, &req.shipment_id);
        let mut gen = [0u8; 3];
        rand::rng().fill_bytes(&mut gen);
        let mut fresh = false;
        let r = loop {
            let Some(pid) = self.pool_pid(pool, fresh).await? else {
                return Err(StoreError::PoolNotFound(req.pool));
            };
            let (keys, args) = self.create_args(&req, now, sh, gen, pid);
            let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let r = self.eval(&self.scripts.create, &keys, &args).await?;
            if !fresh && r.get(1).and_then(bytes) == Some(b"pid") {
                fresh = true;
                continue;
            }
            break r;
        };
        match at(&r, 0)? {
            b"n" => {
                let rec = parse_record(at(&r, 1)?)?;
                let id = make_id(&IdParts {
                    sh,
                    pid: pid_of(at(&r, 2)?)?,
                    gen,
                });
                Ok(Created::New(Binding {
                    id,
                    pool: req.pool.clone(),
                    shipment_id: req.shipment_id,
                    number: E164::parse(&format!("+{}", rec.x))
                        .map_err(|_| corrupt("virtual number"))?,
                    party_a: req.party_a,
                    party_b: req.party_b,
                    created_at: rec.created,
                    expires_at: rec.expires,
                    state: rec.state,
                }))
            }
            b"x" => {
                let ra = at(&r, 3)?;
                let id = parse_route(ra)?.id;
                Ok(Created::Existing(self.assemble(
                    pool,
                    id,
                    at(&r, 1)?,
                    ra,
                    at(&r, 4)?,
                )?))
            }
            b"e" => match at(&r, 1)? {
                b"nopool" => Err(StoreError::PoolNotFound(req.pool)),
                b"exhausted" => Err(StoreError::PoolExhausted { pool: req.pool }),
                b"conflict" => {
                    let rec = parse_record(at(&r, 2)?)?;
                    let existing = make_id(&IdParts {
                        sh,
                        pid: pid_of(at(&r, 3)?)?,
                        gen: rec.gen,
                    });
                    Err(StoreError::ShipmentConflict { existing })
                }
                _ => Err(corrupt("create error code")),
            },
            _ => Err(corrupt("create reply")),
        }
    }

    async fn get_binding(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
        self.load(id, now).await?.ok_or(StoreError::BindingNotFound)
    }

    async fn find_by_shipment(
        &self,
        pool: Option<&str>,
        shipment_id: &str,
        now: UnixMs,
    ) -> Result<Vec<Binding>, StoreError> {
        let pools = match pool {
            Some(p) => {
                self.get_pool(p).await?;
                vec![p.to_owned()]
            }
            None => self.pool_names_all().await?,
        };
        let found = futures::future::join_all(pools.iter().map(|p| async move {
            let sh = shipment_hash(p, shipment_id);
            let r = self
                .eval(
                    &self.scripts.get,
                    &[&record_key(p, &sh)],
                    &[prefix(p).as_bytes(), now.to_string().as_bytes(), b"", &sh],
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

    async fn update_binding(
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

    async fn mark_delivered(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
        self.change(id, &BindingPatch::default(), true, now).await
    }

    async fn delete_binding(&self, id: BindingId, now: UnixMs) -> Result<(), StoreError> {
        let (pool, parts) = self.locate(id).await?;
        let r = self
            .eval(
                &self.scripts.delete,
                &[meta_key(&pool).as_bytes(), &record_key(&pool, &parts.sh)],
                &[
                    prefix(&pool).as_bytes(),
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

    async fn route(
        &self,
        pool: &str,
        number: &E164,
        caller: &E164,
        now: UnixMs,
    ) -> Result<Option<Route>, StoreError> {
        let key = route_key(pool, number, &party_tag(&self.hasher, caller));
        let v: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(key)).await?;
        let Some(v) = v else { return Ok(None) };
        let rv = parse_route(&v)?;
        if rv.until <= now || rv.sealed.is_empty() {
            return Ok(None);
        }
        Ok(Some(Route {
            binding_id: rv.id,
            pool: pool.to_owned(),
            callee: self.open(pool, rv.sealed)?,
            expires_at: rv.until,
        }))
    }

    async fn reap(&self, now: UnixMs) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for pool in self.pool_names_all().await? {
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

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let _: String = self
            .query(
                redis::cmd("XADD")
                    .arg(AUDIT)
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
                    .arg(&entry.target),
            )
            .await?;
        Ok(())
    }

    async fn read_audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
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
            let mut take = |k: &[u8]| m.remove(k).unwrap_or_default();
            out.push(AuditEntry {
                at: take(b"at").parse().map_err(|_| corrupt("audit time"))?,
                actor: take(b"actor"),
                role: take(b"role"),
                action: take(b"action"),
                target: take(b"target"),
            });
        }
        Ok(out)
    }
}
