//! Building a [`RedisStore`]: on one Redis or on a Redis Cluster, eagerly or
//! lazily, and the replica acknowledgement (`WAIT`) of new bindings.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

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

    /// With `replica_ack`: waits (`WAIT`, on connection `c` that wrote, to the master
    /// owning `key`) until that many replicas hold every write `c` sent so far.
    /// Fewer in time → [`StoreError::Unavailable`].
    pub(super) async fn wait_replicas(&self, c: &mut Conn, key: &[u8]) -> Result<(), StoreError> {
        if self.replica_ack == 0 {
            return Ok(());
        }
        // Leave a quarter of the call timeout for the reply.
        let wait_ms = (self.timeout.as_millis() as u64 * 3 / 4).max(1);
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(self.replica_ack).arg(wait_ms);
        let acked = match tokio::time::timeout(self.timeout, c.on_master_of(key, cmd)).await {
            Err(_) => return Err(StoreError::Unavailable("Redis WAIT timed out".into())),
            // Any error here leaves the replication unconfirmed, never the data
            // unreadable: mid-failover the node may have just become a replica
            // ("WAIT cannot be used with replica instances").
            Ok(r) => r.map_err(|e| StoreError::Unavailable(format!("Redis WAIT: {e}")))?,
        };
        match int(&acked) {
            Some(n) if n >= i64::from(self.replica_ack) => Ok(()),
            Some(n) => Err(StoreError::Unavailable(format!(
                "{n} of {} replicas acknowledged the binding in time",
                self.replica_ack
            ))),
            None => Err(corrupt("WAIT reply")),
        }
    }
}
