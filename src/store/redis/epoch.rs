//! Noticing that Redis lost its data while the relay runs (a restart without
//! persistence, `FLUSHALL`, failover to a stale replica, a restored backup).
//!
//! The first relay to reach a Redis writes a random *store epoch* (`ml:epoch`, `SET
//! NX`); every relay remembers the epoch it saw first. When the epoch is later
//! missing or different, the data the relay knew is gone or replaced: the pool id
//! caches are dropped (a new pool may reuse an old pool id), an error is logged,
//! and [`RedisStore::ping`](super::super::BindingStore::ping) fails (so `/readyz`
//! answers 503) until the store holds at least one pool again (pools re-created or
//! data restored). The reaper checks the epoch on every pass, so caches are dropped
//! within one reaper interval even when nobody probes `/readyz`.

use rand::RngCore;

use super::{RedisStore, EPOCH, POOLS};
use crate::store::StoreError;

/// What this relay knows of the store's epoch.
#[derive(Debug, Default)]
pub(super) struct EpochState {
    /// The epoch this relay works with (`None` before the first contact).
    known: Option<String>,
    /// The store lost its data and holds no pool yet.
    lost: bool,
}

impl RedisStore {
    /// Reads (or, on a fresh store, writes) the store epoch and compares it with the
    /// one this relay knows. `Ok(false)` while the store lost its data and holds no
    /// pool; `Ok(true)` otherwise.
    pub(super) async fn check_epoch(&self) -> Result<bool, StoreError> {
        let current: Option<String> = self.query(redis::cmd("GET").arg(EPOCH)).await?;
        let known = self.epoch.lock().ok().and_then(|e| e.known.clone());
        let current = match current {
            Some(c) => c,
            None => self.write_epoch().await?,
        };
        match known {
            None => {
                if let Ok(mut e) = self.epoch.lock() {
                    e.known = Some(current);
                }
            }
            Some(k) if k == current => {}
            Some(_) => {
                self.forget_pool_ids();
                tracing::error!(
                    "store: Redis lost or replaced its data (store epoch changed): cached \
                     pool ids dropped; not ready until pools exist again (re-create them \
                     or restore the data)"
                );
                if let Ok(mut e) = self.epoch.lock() {
                    e.known = Some(current);
                    e.lost = true;
                }
            }
        }
        let lost = self.epoch.lock().map(|e| e.lost).unwrap_or(false);
        if !lost {
            return Ok(true);
        }
        let pools: u64 = self.query(redis::cmd("HLEN").arg(POOLS)).await?;
        if pools == 0 {
            return Ok(false);
        }
        if let Ok(mut e) = self.epoch.lock() {
            e.lost = false;
        }
        tracing::info!(pools, "store: pools exist again after the data loss; ready");
        Ok(true)
    }

    /// Writes a new random epoch unless another relay did first; returns the one
    /// that holds.
    async fn write_epoch(&self) -> Result<String, StoreError> {
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        let mine = hex::encode(b);
        let _: Option<String> = self
            .query(redis::cmd("SET").arg(EPOCH).arg(&mine).arg("NX"))
            .await?;
        let held: Option<String> = self.query(redis::cmd("GET").arg(EPOCH)).await?;
        Ok(held.unwrap_or(mine))
    }

    /// Drops both pool id caches.
    pub(super) fn forget_pool_ids(&self) {
        if let Ok(mut m) = self.pool_names.write() {
            m.clear();
        }
        if let Ok(mut m) = self.pool_pids.write() {
            m.clear();
        }
        if let Ok(mut m) = self.pool_subs.write() {
            m.clear();
        }
    }
}
