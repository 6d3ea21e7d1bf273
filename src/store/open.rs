//! Building the configured store at start-up ([`open`]), including a relay that
//! starts before its Redis: only configuration errors stop start-up; an
//! unreachable Redis is waited for in the background while the API answers `503`.

use std::sync::Arc;
use std::time::Duration;

use super::memory::MemoryStore;
use super::redis::{RedisOptions, RedisStore};
use super::{BindingStore, StoreError};
use crate::config::{Backend, Secrets, StoreConfig};

/// First wait between attempts to reach Redis at start-up; doubles up to
/// [`RETRY_MAX`].
pub const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest wait between attempts to reach Redis at start-up.
pub const RETRY_MAX: Duration = Duration::from_secs(10);

/// Builds the store `cfg` asks for. With Redis this does not wait for Redis: an
/// unusable URL fails here, but an unreachable Redis only makes every call (and
/// `/readyz`) fail with [`StoreError::Unavailable`] until it answers; a background
/// task keeps trying with back-off and logs each failure and the first success.
/// Must be called within a Tokio runtime.
pub fn open(cfg: &StoreConfig, secrets: &Secrets) -> Result<Arc<dyn BindingStore>, StoreError> {
    match cfg.backend {
        Backend::Memory => Ok(Arc::new(MemoryStore::new())),
        Backend::Redis | Backend::RedisCluster => {
            let options = RedisOptions {
                timeout: Duration::from_millis(cfg.redis_timeout_ms),
                connections: cfg.redis_connections,
                replica_ack: cfg.replica_ack,
                subpools: cfg.subpools,
            };
            let (store, what) = if cfg.backend == Backend::RedisCluster {
                let store = RedisStore::open_cluster_lazy(
                    &cfg.cluster_nodes,
                    secrets.hasher.clone(),
                    secrets.sealer.clone(),
                    options,
                )?;
                let nodes: Vec<String> =
                    cfg.cluster_nodes.iter().map(|u| redacted_url(u)).collect();
                (store, format!("cluster {}", nodes.join(",")))
            } else {
                let store = RedisStore::open_lazy(
                    &cfg.redis_url,
                    secrets.hasher.clone(),
                    secrets.sealer.clone(),
                    options,
                )?;
                (store, redacted_url(&cfg.redis_url))
            };
            let store = Arc::new(store);
            tokio::spawn(wait_for_store(store.clone(), what));
            Ok(store)
        }
    }
}

/// Pings `store` with back-off until it answers, logging every failure (WARN) and
/// the first success (INFO).
pub async fn wait_for_store(store: Arc<dyn BindingStore>, what: String) {
    let mut delay = RETRY_MIN;
    let mut attempt = 1u32;
    loop {
        match store.ping().await {
            Ok(()) => {
                tracing::info!(redis = %what, attempt, "store: Redis answers; ready");
                return;
            }
            Err(e) => {
                tracing::warn!(
                    redis = %what,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    error = %e,
                    "store: waiting for Redis (the API answers 503 until it answers)"
                );
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_MAX);
        attempt = attempt.saturating_add(1);
    }
}

/// A Redis URL without its password, for logs and errors.
pub fn redacted_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_passwords_never_reach_logs() {
        assert_eq!(
            redacted_url("redis://:s3cret@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(
            redacted_url("rediss://user:p@ss@host:6380/"),
            "rediss://***@host:6380/"
        );
        assert_eq!(
            redacted_url("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
    }
}
