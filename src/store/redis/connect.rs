//! Building a [`RedisStore`]: on one Redis or on a Redis Cluster, eagerly or
//! lazily, and the replica acknowledgement (`WAIT`) of new bindings.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;

use super::codec::{prefix, record_key};
use super::conn::{self, Conn};
use super::{corrupt, epoch, int, subpools, RedisOptions, RedisStore, Scripts};
use crate::bindings::Invalid;
use crate::numbers::{NumberHasher, Sealer};
use crate::store::StoreError;

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

    /// Like [`RedisStore::connect`], with explicit connection settings: builds the
    /// store and waits (at most `options.timeout`) until Redis answers.
    pub async fn connect_with(
        url: &str,
        hasher: NumberHasher,
        sealer: Sealer,
        options: RedisOptions,
    ) -> Result<RedisStore, StoreError> {
        let timeout = options.timeout;
        let store = Self::open_lazy(url, hasher, sealer, options)?;
        tokio::time::timeout(timeout, store.check_epoch())
            .await
            .map_err(|_| StoreError::Unavailable("connecting to Redis timed out".into()))??;
        Ok(store)
    }

    /// Builds the store without waiting for Redis: only an unusable URL fails
    /// here ([`StoreError::Invalid`], field `redis_url`). Until Redis answers, every
    /// call fails fast with [`StoreError::Unavailable`]; the connections keep
    /// reconnecting by themselves. Must be called within a Tokio runtime.
    pub fn open_lazy(
        url: &str,
        hasher: NumberHasher,
        sealer: Sealer,
        options: RedisOptions,
    ) -> Result<RedisStore, StoreError> {
        let timeout = options.timeout;
        if url.starts_with(conn::SENTINEL_SCHEME) {
            let spec = conn::SentinelSpec::parse(url)
                .map_err(|e| Invalid::new("redis_url", format!("not a Sentinel URL: {e}")))?;
            let mut conns = Vec::new();
            for _ in 0..options.connections.max(1) + usize::from(options.replica_ack > 0) {
                let c = conn::SentinelConn::new(&spec, timeout, Some(timeout))
                    .map_err(|e| Invalid::new("redis_url", format!("cannot use this URL: {e}")))?;
                conns.push(Conn::Sentinel(c));
            }
            return Ok(Self::with_conns(conns, false, hasher, sealer, options));
        }
        let client = redis::Client::open(url)
            .map_err(|e| Invalid::new("redis_url", format!("not a Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let mut conns = Vec::new();
        for _ in 0..options.connections.max(1) + usize::from(options.replica_ack > 0) {
            let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                .map_err(|e| Invalid::new("redis_url", format!("cannot use this URL: {e}")))?;
            conns.push(Conn::Single(conn));
        }
        Ok(Self::with_conns(conns, false, hasher, sealer, options))
    }

    /// Like [`RedisStore::open_lazy`], on a Redis Cluster reached through the seed
    /// `nodes` (`redis://host:port` each; any reachable one tells the client the
    /// whole topology). Fails only on unusable URLs ([`StoreError::Invalid`], field
    /// `cluster_nodes`).
    pub fn open_cluster_lazy(
        nodes: &[String],
        hasher: NumberHasher,
        sealer: Sealer,
        options: RedisOptions,
    ) -> Result<RedisStore, StoreError> {
        if nodes.is_empty() {
            return Err(Invalid::new("cluster_nodes", "name at least one seed node").into());
        }
        let mut conns = Vec::new();
        for _ in 0..options.connections.max(1) + usize::from(options.replica_ack > 0) {
            let conn = conn::cluster(nodes, options.timeout).map_err(|e| {
                Invalid::new("cluster_nodes", format!("cannot use these URLs: {e}"))
            })?;
            conns.push(Conn::Cluster(conn));
        }
        Ok(Self::with_conns(conns, true, hasher, sealer, options))
    }

    /// Like [`RedisStore::connect_with`], on a Redis Cluster (see
    /// [`RedisStore::open_cluster_lazy`]).
    pub async fn connect_cluster(
        nodes: &[String],
        hasher: NumberHasher,
        sealer: Sealer,
        options: RedisOptions,
    ) -> Result<RedisStore, StoreError> {
        let timeout = options.timeout;
        let store = Self::open_cluster_lazy(nodes, hasher, sealer, options)?;
        tokio::time::timeout(timeout, store.check_epoch())
            .await
            .map_err(|_| StoreError::Unavailable("connecting to Redis timed out".into()))??;
        Ok(store)
    }

    fn with_conns(
        mut conns: Vec<Conn>,
        cluster: bool,
        hasher: NumberHasher,
        sealer: Sealer,
        options: RedisOptions,
    ) -> RedisStore {
        let ack_conn = if options.replica_ack > 0 && conns.len() > 1 {
            conns.pop()
        } else {
            None
        };
        RedisStore {
            conns,
            replica_ack: options.replica_ack,
            ack_conn,
            cluster,
            next: AtomicUsize::new(0),
            hasher,
            sealer,
            scripts: Scripts::new(),
            timeout: options.timeout,
            pool_names: RwLock::new(HashMap::new()),
            pool_pids: RwLock::new(HashMap::new()),
            pool_subs: RwLock::new(HashMap::new()),
            new_subpools: options.subpools.clamp(1, subpools::MAX_SUBPOOLS),
            epoch: Mutex::new(epoch::EpochState::default()),
        }
    }

    /// Whether this store runs on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The connection allocations use: the dedicated one with `replica_ack`.
    pub(super) fn create_conn(&self) -> Conn {
        match &self.ack_conn {
            Some(c) => c.clone(),
            None => self.conn(),
        }
    }

    /// With `replica_ack`: runs `write` and then `WAIT` in one pipeline on `c`
    /// (so both reach the node that owns `write`'s key), and fails with
    /// [`StoreError::Unavailable`] unless enough replicas acknowledged `what`
    /// in time.
    pub(super) async fn wait_after(
        &self,
        c: &mut Conn,
        write: &redis::Cmd,
        what: &str,
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.add_command(write.clone()).ignore();
        match self.then_wait(c, pipe).await?.as_slice() {
            [acked] => self.acked(acked, what),
            _ => Err(corrupt("WAIT pipeline reply")),
        }
    }

    /// Runs `pipe` and then `WAIT replica_ack` (for ¾ of the call timeout,
    /// leaving a quarter for the reply) as one pipeline on `c`, within the call
    /// timeout; the replies not ignored, the `WAIT`'s last. Any error leaves the
    /// replication unconfirmed, never the data unreadable: mid-failover the node
    /// may have just become a replica ("WAIT cannot be used with replica
    /// instances") or lost the slot.
    async fn then_wait(
        &self,
        c: &mut Conn,
        mut pipe: redis::Pipeline,
    ) -> Result<Vec<Value>, StoreError> {
        let wait_ms = (self.timeout.as_millis() as u64 * 3 / 4).max(1);
        pipe.cmd("WAIT").arg(self.replica_ack).arg(wait_ms);
        match tokio::time::timeout(self.timeout, pipe.query_async(c)).await {
            Err(_) => Err(StoreError::Unavailable("Redis WAIT timed out".into())),
            Ok(r) => r.map_err(|e| StoreError::Unavailable(format!("Redis WAIT: {e}"))),
        }
    }

    /// Whether a `WAIT` reply counts `replica_ack` replicas (`what` names the
    /// write for the error).
    fn acked(&self, reply: &Value, what: &str) -> Result<(), StoreError> {
        match int(reply) {
            Some(n) if n >= i64::from(self.replica_ack) => Ok(()),
            Some(n) => Err(StoreError::Unavailable(format!(
                "{n} of {} replicas acknowledged {what} in time",
                self.replica_ack
            ))),
            None => Err(corrupt("WAIT reply")),
        }
    }

    /// With `replica_ack`: waits until that many replicas hold shipment `sh`'s
    /// binding record in sub-pool `t`. Fewer in time → [`StoreError::Unavailable`].
    ///
    /// One pipeline on connection `c`, so all three run on one node, in order:
    /// `HEXISTS` of the record (keyed: a node that does not own the slot answers
    /// `MOVED`; the owner says whether it holds the binding), a write of ours on
    /// the slot (`{p}w`, so that `WAIT` covers everything the node held when the
    /// record was seen), then `WAIT`. A `WAIT` sent alone is keyless: while the
    /// slot's master is down the cluster client sends it to a fallback or random
    /// node, whose replicas can acknowledge at once, and a binding only the dead
    /// master held would be answered `201`.
    pub(super) async fn wait_replicas(
        &self,
        c: &mut Conn,
        t: &str,
        sh: &[u8; 8],
    ) -> Result<(), StoreError> {
        if self.replica_ack == 0 {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HEXISTS")
            .arg(record_key(t, sh))
            .arg(&sh[..])
            .cmd("SET")
            .arg(format!("{}w", prefix(t)))
            .arg(1)
            .arg("PX")
            .arg(60_000)
            .ignore();
        let replies = self.then_wait(c, pipe).await?;
        let [held, acked] = replies.as_slice() else {
            return Err(corrupt("WAIT pipeline reply"));
        };
        if int(held) != Some(1) {
            // Written on a master that died before its replica (now the master)
            // got it: lost, and a retry allocates again.
            return Err(StoreError::Unavailable(
                "the binding's master failed before a replica held it".into(),
            ));
        }
        self.acked(acked, "the binding")
    }
}
