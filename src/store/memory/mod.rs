//! The embedded in-memory [`BindingStore`]: for development, demos and tests.
//!
//! Not durable: everything is lost when the process exits. It follows the same
//! semantics as the Redis store (see [`crate::store`]) and passes the same contract
//! suite (`tests/store_contract.rs`).
//!
//! All state sits behind one `RwLock` ([`state::State`] holds the rules), so every
//! call is atomic; the lock is never held across an `.await`. Lookups (`route`,
//! `get_binding`, `pool_of_number`) take the read lock and answer from hash indexes in
//! O(1); changes take the write lock. Busiest parties in statistics are shown as
//! the first 8 bytes (hex) of a keyed hash under a per-store random key, so even
//! the memory store never reveals a party through statistics.

mod opsview;
mod pool;
mod state;
#[cfg(test)]
mod tests;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use rand::RngCore;

use crate::bindings::{
    Binding, BindingId, BindingPatch, Created, ExtensionRoute, ImportOutcome, NewBinding,
    NumberPage, NumberSpec, NumberState, PoolOverview, PoolSpec, PoolStats, Route, UnixMs,
};
use crate::numbers::{NumberHasher, E164};
use crate::store::{AuditEntry, BindingStore, StoreError};

pub use state::AUDIT_CAPACITY;

/// Steps (bindings reaped or cooled holds forgotten) per lock hold in `reap`.
const REAP_BATCH: usize = 1024;

/// The in-memory binding store.
pub struct MemoryStore {
    state: RwLock<state::State>,
    hasher: NumberHasher,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore(..)")
    }
}

impl MemoryStore {
    /// An empty store whose opaque party ids use a fresh random key.
    pub fn new() -> Self {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        #[allow(clippy::expect_used)]
        let hasher = NumberHasher::new(key.as_ref()).expect("a 32-byte HMAC key is always valid");
        Self::with_hasher(hasher)
    }

    /// An empty store whose opaque party ids use `hasher` (e.g. the configured
    /// `[secrets] hmac_key`, so ids match the Redis store's for the same secret).
    pub fn with_hasher(hasher: NumberHasher) -> Self {
        Self {
            state: RwLock::new(state::State::default()),
            hasher,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, state::State> {
        // A panic while holding the lock cannot leave the indexes half-updated in a
        // way later calls trust blindly (each call re-checks expiry), so keep serving.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, state::State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl BindingStore for MemoryStore {
    async fn create_pool(&self, spec: PoolSpec) -> Result<(), StoreError> {
        self.write().create_pool(spec)
    }

    async fn get_pool(&self, pool: &str) -> Result<PoolSpec, StoreError> {
        self.read().get_pool(pool)
    }

    async fn list_pools(&self) -> Result<Vec<PoolSpec>, StoreError> {
        Ok(self.read().list_pools())
    }

    async fn import_numbers(
        &self,
        pool: &str,
        numbers: Vec<NumberSpec>,
    ) -> Result<ImportOutcome, StoreError> {
        self.write().import_numbers(pool, numbers)
    }

    async fn retire_number(&self, pool: &str, number: &E164) -> Result<(), StoreError> {
        self.write().retire_number(pool, number)
    }

    async fn pool_of_number(&self, number: &E164) -> Result<Option<String>, StoreError> {
        Ok(self.read().pool_of_number(number))
    }

    async fn pool_stats(&self, pool: &str, now: UnixMs) -> Result<PoolStats, StoreError> {
        self.write().pool_stats(pool, now, &self.hasher)
    }

    async fn set_number_state(
        &self,
        pool: &str,
        number: &E164,
        state: NumberState,
    ) -> Result<NumberState, StoreError> {
        self.write().set_number_state(pool, number, state)
    }

    async fn pool_overview(&self, pool: &str, now: UnixMs) -> Result<PoolOverview, StoreError> {
        self.write().pool_overview(pool, now, &self.hasher)
    }

    async fn list_numbers(
        &self,
        pool: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NumberPage, StoreError> {
        self.read().list_numbers(pool, cursor, limit)
    }

    async fn create_binding(&self, req: NewBinding, now: UnixMs) -> Result<Created, StoreError> {
        self.write().create_binding(req, now)
    }

    async fn get_binding(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
        self.read().get_binding(id, now)
    }

    async fn find_by_shipment(
        &self,
        pool: Option<&str>,
        shipment_id: &str,
        now: UnixMs,
    ) -> Result<Vec<Binding>, StoreError> {
        self.read().find_by_shipment(pool, shipment_id, now)
    }

    async fn update_binding(
        &self,
        id: BindingId,
        patch: BindingPatch,
        now: UnixMs,
    ) -> Result<Binding, StoreError> {
        self.write().update_binding(id, patch, now)
    }

    async fn mark_delivered(&self, id: BindingId, now: UnixMs) -> Result<Binding, StoreError> {
        self.write().mark_delivered(id, now)
    }

    async fn delete_binding(&self, id: BindingId, now: UnixMs) -> Result<(), StoreError> {
        self.write().delete_binding(id, now)
    }

    async fn route(
        &self,
        pool: &str,
        number: &E164,
        caller: &E164,
        now: UnixMs,
    ) -> Result<Option<Route>, StoreError> {
        Ok(self.read().route(pool, number, caller, now))
    }

    async fn route_extension(
        &self,
        pool: &str,
        number: &E164,
        extension: &str,
        now: UnixMs,
    ) -> Result<ExtensionRoute, StoreError> {
        Ok(self.read().route_extension(pool, number, extension, now))
    }

    async fn reap(&self, now: UnixMs) -> Result<u64, StoreError> {
        // In batches, letting lookups in between, so a large backlog never holds
        // the lock for long (each batch is still atomic).
        let mut total = 0;
        loop {
            let (n, done) = self.write().reap_some(now, REAP_BATCH);
            total += n;
            if done {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write().append_audit(entry);
        Ok(())
    }

    async fn read_audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.read().read_audit(limit))
    }
}
