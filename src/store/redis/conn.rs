//! The connection a [`RedisStore`](super::RedisStore) talks through: one Redis
//! ([`ConnectionManager`], reconnects by itself) or a Redis Cluster (the `redis`
//! crate's cluster-async client).
//!
//! On a cluster every command goes straight to the master that owns its key's slot
//! (the client keeps the slot map); `MOVED`/`ASK` replies, a changed topology and a
//! failover are followed by the client with a bounded number of retries
//! ([`CLUSTER_RETRIES`], waits of [`CLUSTER_RETRY_MIN_MS`]..[`CLUSTER_RETRY_MAX_MS`]),
//! and the store's call timeout bounds the whole call: while a slot has no master
//! the call fails with `StoreError::Unavailable` (HTTP `503` with `Retry-After`),
//! never hangs, and works again once a replica is promoted, without a restart.
//!
//! Pipelines on a cluster must stay within one slot (the client sends a pipeline to
//! the owner of its first key); the store only pipelines keys of one pool.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// Retries of one command on a cluster (redirections, topology refresh, failover).
pub const CLUSTER_RETRIES: u32 = 6;
/// Shortest wait between two retries on a cluster, ms.
pub const CLUSTER_RETRY_MIN_MS: u64 = 20;
/// Longest wait between two retries on a cluster, ms.
pub const CLUSTER_RETRY_MAX_MS: u64 = 250;

/// Where the store's commands go.
#[derive(Clone)]
pub enum Conn {
    /// One Redis (or a proxy in front of several).
    Single(ConnectionManager),
    /// A Redis Cluster: routed by slot.
    Cluster(ClusterConnection),
}

impl Conn {
    /// Sends `cmd` to the master owning `key`'s slot (one Redis: the connection).
    /// Used for keyless commands that must reach that master, e.g. `WAIT`.
    pub async fn on_master_of(&mut self, key: &[u8], cmd: Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::with_key(key, SlotAddr::Master);
                c.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A cluster connection to the seed `nodes` that connects in the background (calls
/// fail fast until it does). `timeout` bounds connecting and each response.
pub fn cluster(nodes: &[String], timeout: Duration) -> RedisResult<ClusterConnection> {
    let client = redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_RETRY_MIN_MS)
        .max_retry_wait(CLUSTER_RETRY_MAX_MS)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .build()?;
    let config = redis::cluster::ClusterConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout);
    Ok(client.get_pending_async_connection_with_config(config))
}

/// What a Redis user other than the store (call records, the SMS queue) connects
/// to: one Redis or a cluster. Their keys carry one hash tag each (`ml:{rec}:*`,
/// `ml:{sms}:*`), so their scripts and pipelines stay on one slot.
#[derive(Clone)]
pub enum Target {
    /// One Redis.
    Single(redis::Client),
    /// A Redis Cluster.
    Cluster(Box<redis::cluster::ClusterClient>),
}

impl From<redis::Client> for Target {
    fn from(c: redis::Client) -> Self {
        Target::Single(c)
    }
}

/// Longest a blocking read may wait for its reply on a cluster connection (the
/// cluster client needs a bound; blocking reads block for less).
const CLUSTER_BLOCKING_RESPONSE: Duration = Duration::from_secs(60);

impl Target {
    /// The Redis the store config points at (`redis_url`, or `cluster_nodes` with
    /// `backend = "redis-cluster"`).
    pub fn from_store_config(cfg: &crate::config::StoreConfig) -> RedisResult<Target> {
        if cfg.backend == crate::config::Backend::RedisCluster {
            let client = redis::cluster::ClusterClientBuilder::new(
                cfg.cluster_nodes.iter().map(String::as_str),
            )
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_RETRY_MIN_MS)
            .max_retry_wait(CLUSTER_RETRY_MAX_MS)
            .build()?;
            Ok(Target::Cluster(Box::new(client)))
        } else {
            Ok(Target::Single(redis::Client::open(cfg.redis_url.as_str())?))
        }
    }

    /// A self-reconnecting connection; `blocking`: for blocking reads (no response
    /// timeout on one Redis).
    pub async fn connect(&self, blocking: bool) -> RedisResult<Conn> {
        match self {
            Target::Single(c) if blocking => {
                let cfg = redis::aio::ConnectionManagerConfig::new().set_response_timeout(None);
                Ok(Conn::Single(
                    c.get_connection_manager_with_config(cfg).await?,
                ))
            }
            Target::Single(c) => Ok(Conn::Single(c.get_connection_manager().await?)),
            Target::Cluster(c) => {
                let mut cfg = redis::cluster::ClusterConfig::new();
                if blocking {
                    cfg = cfg.set_response_timeout(CLUSTER_BLOCKING_RESPONSE);
                }
                Ok(Conn::Cluster(
                    c.get_async_connection_with_config(cfg).await?,
                ))
            }
        }
    }
}
