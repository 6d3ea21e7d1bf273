//! The production store: [`RedisStore`], a [`BindingStore`] on Redis.
//!
//! Every state change is one Lua script (`src/store/lua/*.lua`, each prefixed with
//! `prelude.lua`) touching keys of one (sub-)pool only, all under its hash tag
//! `{pool}`, so each script runs on one Redis Cluster slot. The store talks to one
//! Redis or to a Redis Cluster (`conn.rs`; `[store] backend = "redis-cluster"`),
//! and a pool can span several slots (`subpools.rs`). Time is always the caller's
//! `now`, never Redis `TIME`.
//!
//! ## Key layout (pool `p`; `X` = virtual number digits, `h(n)` = party tag: 8 bytes of its keyed hash)
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `{p}m` | hash | pool settings: `country grace_s cooling_s cap pid shards foreign ext ext_len` | none |
//! | `{p}n` | hash | `X` → `<state a/r/q><caps 0-3><area>` (active, retired, quarantined) | none |
//! | `{p}ld` | zset | active `X` → live bindings (allocation order) | none |
//! | `{p}la:<area>` | zset | same, for numbers of one area | none |
//! | `{p}lr` | zset | retired `X` → live bindings | none |
//! | `{p}l<X>:<k>` | zset | bindings on `X` (shard `k` of `shards`): `sh‖gen` → end time, kept through cooling | none (trimmed) |
//! | `{p}nx` | zset | `X` → its next event (an expiry or a cooling end) | none |
//! | `{p}nt` | hash | `X` → time of its last recount | none |
//! | `{p}r<X><h(party)>` | string | route **and** hold: `id(16) until(6) sealed callee` | until + cooling |
//! | `{p}s<sh[0..2]>` | hash | binding records, field `sh`: `gen created expires state h(A) h(B) lens X(BCD) extension(BCD) shipment` (`lens` = X's bytes + 16 × extension digits) | none (trimmed) |
//! | `{p}e<X>` | zset | extensions held on `X` → end of the hold (binding end + cooling) | none (trimmed when `X` is a create candidate) |
//! | `{p}E<X>` | hash | extension → `sh‖gen` of its binding | none (trimmed with `{p}e<X>`) |
//! | `{p}c` | zset | holds of parties replaced by a reassignment → since | none (trimmed) |
//! | `{p}f` | hash | sub-pools only, in a shipment's home sub-pool: `sh` → the sub-pool it was created in instead (`claim.lua`) | none |
//! | `{p}w` | string | with `replica_ack`: the write pipelined before each `WAIT` | 60 s |
//! | `{p}lq` | zset | quarantined `X` → live bindings (state `q` in `{p}n`: out of allocation, live bindings live out) | none |
//! | `{p}N` | zset | every `X`, score 0: number order for paged lists (rebuilt from `{p}n` if short) | none |
//! | `{p}Q` | string | count-min sketch of live bindings per party tag: 4 rows × 65,536 `u16` counters, then the total (`u32`): 512 KiB a pool, 0 bytes per binding | none |
//! | `{p}P` | zset | party tag → its sketch estimate, the 32 highest among parties with 2 or more live bindings (busiest parties) | none |
//! | `{p}t` | hash | `live`: the pool's running live total (kept by create and recounts from the first overview on) | none |
//! | `{p}ke` | hash | minute → bindings ending in that minute (cooling count = ends in the last cooling period × 2) | none (pruned by the overview) |
//! | `{p}kq` | list | ops counter updates queued by allocations and binding ends (`c‖tagA‖tagB‖now:exp`, or `+`/`-` then party tags), applied 128 at a time and before every overview (`fold` in `prelude.lua`) | none (≤ 128 entries) |
//! | `{p}k<hour>` | hash | per-minute ops counters of one hour: `a<m>` allocations, `x<m>` `pool_exhausted`, `L<m>` live sample | hour + 26 h |
//! | `ml:pools` / `ml:pid` | hash | pool name ↔ pool id (untagged, global) | none |
//! | `ml:x` | hash | `X` → pool (untagged, global: the voice/SMS entry point) | none |
//! | `ml:pseq` | string | pool id counter | none |
//! | `ml:epoch` | string | store epoch: random, written once, tells a relay that Redis lost its data | none |
//! | `ml:audit` | stream | audit entries | none (capped) |
//!
//! (`p` above is a sub-pool's tag: the pool name for sub-pool 0, `name~k` for
//! sub-pool `k`; see `subpools.rs`. Call records and the SMS queue have their own
//! tags, `ml:{rec}:*` and `ml:{sms}:*`.)
//!
//! ## On a Redis Cluster
//! - **Scripts** touch keys of one slot: every key a script names or computes starts
//!   with the `{p}` of the (sub-)pool whose meta or record key is `KEYS[1]`, and the
//!   cluster client sends `EVALSHA` to the master owning that key's slot (checked
//!   by the contract suite on a real cluster, where Redis refuses a cross-slot
//!   access).
//! - **Global keys** (`ml:pools`, `ml:pid`, `ml:pseq`, `ml:epoch`, `ml:x`,
//!   `ml:audit`) are untagged and each is only ever used by single-key commands
//!   (no script, no multi-key command, no pipeline or transaction mixes two of
//!   them or one with a pool key), so each lives on whatever master owns its slot.
//!   None is on a hot path: `ml:x` is read once per number (the voice router caches
//!   number → pool), the others at pool creation, start-up and audit. Creating a
//!   pool writes `ml:pid`, then each sub-pool's settings, then `{p}m` (separate
//!   commands; the pool is listed only once `{p}m` exists).
//! - **Pipelines** only group keys of one (sub-)pool (import, statistics); the
//!   reaper's look at every pool's next event is concurrent single-key reads.
//! - **Route lookups** are one `GET` sent straight to the slot owner (the client
//!   keeps the slot map; the sub-pool of `X` is computed, not looked up).
//! - **Failures**: `MOVED`/`ASK`, a changed topology and a failover are retried by
//!   the cluster client (bounded, `conn.rs`); the call timeout bounds the whole
//!   call, so while a slot has no master calls fail with
//!   [`StoreError::Unavailable`] (`503` + `Retry-After`) and work again after the
//!   promotion without a restart. Scripts are reloaded on `NOSCRIPT` (a promoted
//!   replica has an empty script cache).
//! - **Several relays** share the cluster with nothing of their own to replicate:
//!   allocation is one script per slot (atomic across relays), the reaper is the
//!   same idempotent script on every relay, SMS rate limits live in Redis
//!   (`ml:{sms}:rl*`). The API's per-key rate limit is per relay.
//!
//! ## Durability
//! With `appendonly yes` and `appendfsync everysec` (what `loadtest/cluster/run.sh`
//! and the test cluster use), a master fsyncs its append-only file once a second:
//! on a power loss of the whole cluster at most about the last second of
//! acknowledged bindings is lost. A *master* loss is different: replication is
//! asynchronous, so bindings the master answered but had not yet sent to its
//! replica are lost when the replica is promoted. `[store] replica_ack = 1` makes
//! `create_binding` wait (`WAIT 1 <¾ of the call timeout>`, on the connection that
//! wrote, pipelined after a keyed check that the slot's master holds the binding
//! and a write to `{p}w`, so the `WAIT` runs on that master and nowhere else)
//! until a replica holds the binding before it answers; fewer acknowledgements in time → `503` (the binding exists; the
//! client's idempotent retry returns it once acknowledged). `create_pool` waits
//! the same way, on each node it wrote (registry, pool id, every sub-pool's
//! settings), so an acknowledged pool survives a master's loss too. Allocations then use
//! their own connection, so a `WAIT` never holds up route lookups. Cost and the
//! measured losses without it: `loadtest/README.md`, section "Redis Cluster". A
//! promoted replica has no replica of its own until one is added back: with
//! `replica_ack = 1`, that slot's allocations answer `503` meanwhile (run 2
//! replicas per master to avoid this).
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
//! number from its values, and its keys disappear at expiry + cooling. So the
//! allocation check "neither party holds X" is one `EXISTS` of the two keys, with no
//! per-party index (which would cost ~100 bytes a party).
//!
//! **Memory.** The two route keys are the only keys a binding owns (each key with a
//! TTL costs ~150 bytes of Redis overhead before its content). Everything else about
//! a binding is an entry in small pool-level hashes and sorted sets that stay
//! listpack-encoded: the record (~60 bytes, in one of 65,536 shards by `sh`) and its
//! entry in the number's binding list (~25 bytes; `shards` = cap / 50 lists per
//! number so each stays under Redis' default 128-entry listpack limit). These
//! entries have no TTL of their own: every read checks the record's expiry, so an
//! expired binding is not found, does not route and is not counted even if no reaper
//! runs; the entries are dropped when the binding's cooling ends (at the next
//! recount of its number: the reaper, or an allocation's pass over due numbers).
//! They hold keyed hashes only. (This is why a binding's record is not a key with
//! PEXPIREAT = expiry: a third key per binding would cost ~190 bytes, over the
//! 600-byte budget; see `loadtest/README.md`, section "Store".)
//!
//! **Counters.** `{p}l<X>:*` hold each binding's end time, so the live count of X at
//! `now` is `ZCOUNT (now +inf` — exact without any reaper — and cooling holds are
//! the ends within the last cooling period (×2 parties, plus `{p}c`). The load index
//! `{p}ld` used to pick the least-loaded number is recounted for every number whose
//! next event (`{p}nx`) is due: by the allocation script first (up to 64 numbers, all
//! of them before answering "exhausted"), and by [`BindingStore::reap`].
//!
//! **Ops counters.** The overview (`overview.lua`) answers from the keys above:
//! state counts are `ZCARD`s, the live total is a running counter (`{p}t`,
//! summed from the load indexes once, by the first overview), quantiles are
//! `ZRANGE` by rank, busiest parties the
//! top of `{p}P`, allocation counts 24 small hashes. Allocations and binding ends
//! do not update these themselves: they queue the update (`{p}kq`, one `RPUSH`),
//! and every 128th queued entry applies the batch (one `BITFIELD` for all its
//! parties, one `HINCRBY` per minute), as does the overview before it reads.
//! This took the allocation script from 67 µs to 56 µs of Redis CPU (same-run A/B)
//! (`loadtest/README.md`). Per binding this costs no
//! key and no entry: create/delete/update bump bounded structures (the sketch
//! `{p}Q` is 512 KiB a pool whatever its size, `{p}P` holds 32 parties, `{p}ke`
//! one field per minute with an end). Per-party counts are count-mean-min
//! estimates: at 1,000,000 live bindings (2,000,000 holds) a counter averages ~30
//! other holds, which the estimator subtracts (each row's counter minus the
//! row's mean noise, median of the 4 rows, capped by the smallest counter); a
//! courier holding 100 is shown within a few of 100 (measured:
//! `loadtest/README.md`, "Ops overview"). A party's count
//! falls when its binding is deleted, handed over, or expires (at the next
//! recount of the number: the reaper, every second). An exact per-party index
//! would cost ~100 bytes a party (see above).
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
//! are [`StoreError::Unavailable`]; the [`ConnectionManager`](redis::aio::ConnectionManager) (or the cluster
//! client) reconnects by itself and scripts are reloaded on `NOSCRIPT`, so a Redis
//! restart needs no relay restart.
//! Domain failures come back from the scripts as `{'e', code}` replies and become
//! typed errors.

mod codec;
pub mod conn;
mod connect;
mod create;
mod epoch;
mod extensions;
mod ops;
mod opsview;
mod pools;
pub mod subpools;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;

use self::conn::Conn;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind, Value};

use self::codec::{pack_number, shipment_hash, unpack_number, CodecError};
use super::{AuditEntry, BindingStore, StoreError};
use crate::bindings::{
    Binding, BindingId, BindingPatch, Created, ExtensionRoute, ImportOutcome, NewBinding,
    NumberPage, NumberSpec, NumberState, PoolOverview, PoolSpec, PoolStats, Route, UnixMs,
};
use crate::numbers::{NumberHasher, Sealer, E164};

const PRELUDE: &str = include_str!("../lua/prelude.lua");

/// Global (untagged) keys.
const POOLS: &str = "ml:pools";
const PIDS: &str = "ml:pid";
const PSEQ: &str = "ml:pseq";
const EPOCH: &str = "ml:epoch";
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
    /// Replicas that must acknowledge a new binding or pool (`WAIT`) before
    /// `create_binding` / `create_pool` succeeds; 0: answer as soon as the
    /// master applied it. When fewer acknowledge within `timeout`, the call
    /// fails with [`StoreError::Unavailable`] (the binding or pool exists: a
    /// retry returns the binding once it is acknowledged; a pool's retry answers
    /// that it exists).
    pub replica_ack: u32,
    /// Sub-pools (slots) of each pool this store *creates* (1..=64; see
    /// `subpools.rs`): a pool of `n` sub-pools can spread over `n` cluster masters.
    /// Existing pools keep theirs.
    pub subpools: u32,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_COMMAND_TIMEOUT,
            connections: 1,
            replica_ack: 0,
            subpools: 1,
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
    /// `create` for pools of several sub-pools (with `subpool_guard.lua`).
    create_sub: Script,
    claim: Script,
    get: Script,
    update: Script,
    delete: Script,
    import: Script,
    retire: Script,
    reap: Script,
    stats: Script,
    extension: Script,
    numstate: Script,
    numbers: Script,
    overview: Script,
    /// The call path's lookup (no prelude: two reads).
    route: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Self {
            create: s(include_str!("../lua/create.lua")),
            create_sub: s(&format!(
                "{}\n{}",
                include_str!("../lua/subpool_guard.lua"),
                include_str!("../lua/create.lua")
            )),
            claim: s(include_str!("../lua/claim.lua")),
            get: s(include_str!("../lua/get.lua")),
            update: s(include_str!("../lua/update.lua")),
            delete: s(include_str!("../lua/delete.lua")),
            import: s(include_str!("../lua/import.lua")),
            retire: s(include_str!("../lua/retire.lua")),
            reap: s(include_str!("../lua/reap.lua")),
            stats: s(include_str!("../lua/stats.lua")),
            extension: s(include_str!("../lua/extension.lua")),
            numstate: s(include_str!("../lua/numstate.lua")),
            numbers: s(include_str!("../lua/numbers.lua")),
            overview: s(include_str!("../lua/overview.lua")),
            route: Script::new(include_str!("../lua/route.lua")),
        }
    }
}

/// The Redis [`BindingStore`]. Cheap to share behind an `Arc`; one multiplexed,
/// self-reconnecting connection carries all calls.
pub struct RedisStore {
    conns: Vec<Conn>,
    /// Replicas that must acknowledge a new binding (see [`RedisOptions`]).
    replica_ack: u32,
    /// With `replica_ack`: the connection allocations (and their `WAIT`) use, apart
    /// from the others so that a `WAIT` never holds up route lookups pipelined
    /// behind it on the same connection.
    ack_conn: Option<Conn>,
    /// Whether the store runs on a Redis Cluster.
    cluster: bool,
    next: AtomicUsize,
    hasher: NumberHasher,
    sealer: Sealer,
    scripts: Scripts,
    timeout: Duration,
    /// Pool id → name (pools are never renamed; refreshed on a miss).
    pool_names: RwLock<HashMap<u32, String>>,
    /// Pool name → id (refreshed when a script reports another id).
    pool_pids: RwLock<HashMap<String, u32>>,
    /// Pool name → sub-pools (fixed at creation).
    pool_subs: RwLock<HashMap<String, u32>>,
    /// Sub-pools of the pools this store creates.
    new_subpools: u32,
    /// The store epoch this relay knows (see `epoch.rs`).
    epoch: Mutex<epoch::EpochState>,
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
    /// The next connection, round-robin.
    fn conn(&self) -> Conn {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].clone()
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
        // The shipment's home sub-pool (the bench's pools never fall back).
        let n = self.subpools(&req.pool).await?;
        let k = subpools::home(&sh, n);
        if n > 1 {
            gen[0] = k as u8;
        }
        let t = subpools::tag(&req.pool, k);
        let (keys, args) = self.create_args(req, now, sh, gen, pid, &t);
        let script = if n > 1 {
            &self.scripts.create_sub
        } else {
            &self.scripts.create
        };
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys.len());
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
            &s.create,
            &s.create_sub,
            &s.route,
            &s.claim,
            &s.get,
            &s.update,
            &s.delete,
            &s.import,
            &s.retire,
            &s.reap,
            &s.stats,
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
        self.eval_on(&mut self.conn(), script, keys, args).await
    }

    /// Runs a script on connection `c` with the call timeout.
    async fn eval_on(
        &self,
        c: &mut Conn,
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
        match tokio::time::timeout(self.timeout, inv.invoke_async::<Value>(c)).await {
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

    async fn pool_names_all(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self.query(redis::cmd("HKEYS").arg(POOLS)).await?;
        names.sort();
        Ok(names)
    }
}

#[async_trait]
impl BindingStore for RedisStore {
    async fn create_pool(&self, spec: PoolSpec) -> Result<(), StoreError> {
        self.create_pool_impl(spec).await
    }

    async fn get_pool(&self, pool: &str) -> Result<PoolSpec, StoreError> {
        self.get_pool_impl(pool).await
    }

    async fn list_pools(&self) -> Result<Vec<PoolSpec>, StoreError> {
        self.list_pools_impl().await
    }

    async fn import_numbers(
        &self,
        pool: &str,
        numbers: Vec<NumberSpec>,
    ) -> Result<ImportOutcome, StoreError> {
        self.import_numbers_impl(pool, numbers).await
    }

    async fn retire_number(&self, pool: &str, number: &E164) -> Result<(), StoreError> {
        self.retire_number_impl(pool, number).await
    }

    async fn pool_of_number(&self, number: &E164) -> Result<Option<String>, StoreError> {
        self.pool_of_number_impl(number).await
    }

    async fn set_number_state(
        &self,
        pool: &str,
        number: &E164,
        state: NumberState,
    ) -> Result<NumberState, StoreError> {
        self.set_number_state_impl(pool, number, state).await
    }

    async fn pool_overview(&self, pool: &str, now: UnixMs) -> Result<PoolOverview, StoreError> {
        self.pool_overview_impl(pool, now).await
    }

    async fn list_numbers(
        &self,
        pool: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NumberPage, StoreError> {
        self.list_numbers_impl(pool, cursor, limit).await
    }

    async fn pool_stats(&self, pool: &str, now: UnixMs) -> Result<PoolStats, StoreError> {
        self.pool_stats_impl(pool, now).await
    }

    async fn create_binding(&self, req: NewBinding, now: UnixMs) -> Result<Created, StoreError> {
        self.create_binding_impl(req, now).await
    }

    async fn get_binding(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
        self.get_binding_impl(id, now).await
    }

    async fn find_by_shipment(
        &self,
        pool: Option<&str>,
        shipment_id: &str,
        now: UnixMs,
    ) -> Result<Vec<Binding>, StoreError> {
        self.find_by_shipment_impl(pool, shipment_id, now).await
    }

    async fn update_binding(
        &self,
        id: BindingId,
        patch: BindingPatch,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        self.update_binding_impl(id, patch, now).await
    }

    async fn mark_delivered(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
        self.mark_delivered_impl(id, now).await
    }

    async fn delete_binding(&self, id: BindingId, now: UnixMs) -> Result<(), StoreError> {
        self.delete_binding_impl(id, now).await
    }

    async fn route(
        &self,
        pool: &str,
        number: &E164,
        caller: &E164,
        now: UnixMs,
    ) -> Result<Option<Route>, StoreError> {
        self.route_impl(pool, number, caller, now).await
    }

    async fn route_extension(
        &self,
        pool: &str,
        number: &E164,
        extension: &str,
        now: UnixMs,
    ) -> Result<ExtensionRoute, StoreError> {
        self.route_extension_impl(pool, number, extension, now)
            .await
    }

    async fn reap(&self, now: UnixMs) -> Result<u64, StoreError> {
        self.reap_impl(now).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.ping_impl().await
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.append_audit_impl(entry).await
    }

    async fn read_audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_audit_impl(limit).await
    }
}
