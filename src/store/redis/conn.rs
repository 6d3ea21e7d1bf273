//! The connection a [`RedisStore`](super::RedisStore) talks through: one Redis
//! ([`ConnectionManager`], reconnects by itself), a Redis Cluster (the `redis`
//! crate's cluster-async client), or the master of a Sentinel-monitored set
//! (`redis+sentinel://`, [`SentinelConn`]: asks the sentinels again after a
//! failover).
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
    /// The master a set of sentinels names (found again after a failover).
    Sentinel(SentinelConn),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
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
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
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
    /// The master a set of sentinels names.
    Sentinel(Box<SentinelSpec>),
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
        } else if cfg.redis_url.starts_with(SENTINEL_SCHEME) {
            let spec = SentinelSpec::parse(&cfg.redis_url).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "store.redis_url",
                    e,
                ))
            })?;
            Ok(Target::Sentinel(Box::new(spec)))
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
            Target::Sentinel(spec) => {
                let response = (!blocking).then_some(Duration::from_secs(2));
                Ok(Conn::Sentinel(SentinelConn::new(
                    spec,
                    Duration::from_secs(2),
                    response,
                )?))
            }
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

/// URL scheme of a Redis reached through Sentinel.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// A parsed `redis+sentinel://[:password@]host:port[,host:port...]/master[/db]`.
#[derive(Clone)]
pub struct SentinelSpec {
    /// `redis://host:port` of each sentinel.
    sentinels: Vec<String>,
    /// The monitored master's name.
    master: String,
    /// Password and database of the data nodes.
    node: redis::RedisConnectionInfo,
    db: i64,
}

impl SentinelSpec {
    /// Parses a Sentinel URL; the error says what is wrong (never the password).
    pub fn parse(url: &str) -> Result<SentinelSpec, String> {
        let rest = url
            .strip_prefix(SENTINEL_SCHEME)
            .ok_or_else(|| format!("must start with {SENTINEL_SCHEME}"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (hosts, path) = rest
            .split_once('/')
            .ok_or("name the master after the hosts: redis+sentinel://host:26379/mymaster")?;
        let mut parts = path.split('/');
        let master = parts.next().unwrap_or_default();
        if master.is_empty() {
            return Err(
                "name the master after the hosts: redis+sentinel://host:26379/mymaster".into(),
            );
        }
        let mut node = redis::RedisConnectionInfo::default();
        let mut db = 0;
        if let Some(d) = parts.next().filter(|d| !d.is_empty()) {
            db = d.parse().map_err(|_| "the database must be a number")?;
            node = node.set_db(db);
        }
        if let Some(pass) = auth.and_then(|a| a.split_once(':').map(|(_, p)| p).or(Some(a))) {
            if !pass.is_empty() {
                node = node.set_password(pass);
            }
        }
        let sentinels: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{h}"))
            .collect();
        if sentinels.is_empty() {
            return Err("name at least one sentinel host:port".into());
        }
        for s in &sentinels {
            if redis::parse_redis_url(s).is_none() {
                return Err("a sentinel is not host:port".into());
            }
        }
        Ok(SentinelSpec {
            sentinels,
            master: master.to_owned(),
            node,
            db,
        })
    }

    fn client(&self) -> RedisResult<redis::sentinel::SentinelClient> {
        redis::sentinel::SentinelClient::build(
            self.sentinels.clone(),
            self.master.clone(),
            Some(
                redis::sentinel::SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(self.node.clone()),
            ),
            redis::sentinel::SentinelServerType::Master,
        )
    }
}

/// A connection to the master a set of sentinels names, found again after a
/// failover: the first call asks a sentinel for the master and connects; a call
/// that fails because the connection broke, timed out or reached a demoted
/// master (`READONLY`) drops it, so the next call asks the sentinels again.
/// Clones share the connection.
#[derive(Clone)]
pub struct SentinelConn {
    inner: std::sync::Arc<SentinelInner>,
}

struct SentinelInner {
    client: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    current: std::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    config: redis::AsyncConnectionConfig,
    db: i64,
}

impl SentinelConn {
    /// A connection through `spec`'s sentinels (connects on first use);
    /// `response`: bound on each reply (`None` for blocking reads).
    pub fn new(
        spec: &SentinelSpec,
        connect: Duration,
        response: Option<Duration>,
    ) -> RedisResult<SentinelConn> {
        Ok(SentinelConn {
            inner: std::sync::Arc::new(SentinelInner {
                client: tokio::sync::Mutex::new(spec.client()?),
                current: std::sync::Mutex::new(None),
                config: redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect))
                    .set_response_timeout(response),
                db: spec.db,
            }),
        })
    }

    fn cached(&self) -> Option<redis::aio::MultiplexedConnection> {
        self.inner.current.lock().ok().and_then(|c| c.clone())
    }

    async fn master(&self) -> RedisResult<redis::aio::MultiplexedConnection> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let mut client = self.inner.client.lock().await;
        // Another call may have connected while this one waited.
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let c = client
            .get_async_connection_with_config(&self.inner.config)
            .await?;
        if let Ok(mut cur) = self.inner.current.lock() {
            *cur = Some(c.clone());
        }
        Ok(c)
    }

    fn check<T>(&self, r: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &r {
            let lost = e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"));
            if lost {
                if let Ok(mut cur) = self.inner.current.lock() {
                    *cur = None;
                }
            }
        }
        r
    }
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let r = match self.master().await {
                Ok(mut c) => c.req_packed_command(cmd).await,
                Err(e) => Err(e),
            };
            self.check(r)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let r = match self.master().await {
                Ok(mut c) => c.req_packed_commands(pipeline, offset, count).await,
                Err(e) => Err(e),
            };
            self.check(r)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.db
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_are_read_and_errors_never_show_the_password() {
        let s = SentinelSpec::parse("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26379/mm/2")
            .unwrap();
        assert_eq!(
            s.sentinels,
            ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"]
        );
        assert_eq!((s.master.as_str(), s.db), ("mm", 2));
        for bad in [
            "redis+sentinel://:s3cret@10.0.0.1:26379",
            "redis+sentinel://:s3cret@10.0.0.1:26379/",
            "redis+sentinel://:s3cret@/mm",
            "redis+sentinel://:s3cret@10.0.0.1:26379/mm/x",
            "redis://:s3cret@10.0.0.1:6379/",
        ] {
            let e = SentinelSpec::parse(bad).err().unwrap();
            assert!(!e.contains("s3cret"), "{bad}: {e}");
        }
    }
}
