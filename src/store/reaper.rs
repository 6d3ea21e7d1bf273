//! The reaper: a background task that calls [`BindingStore::reap`] periodically so
//! counters and load indexes stay exact between allocations.
//!
//! Correctness never depends on it (expired bindings route nowhere and are not
//! found without it), so a failing reap is logged and retried at the next tick,
//! never fatal: the relay keeps serving while Redis is away.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::BindingStore;
use crate::bindings::now_ms;

/// Calls `store.reap(now)` every `interval` until `shutdown` completes. Failures
/// are logged (warn) and do not stop the loop.
pub async fn run_reaper(
    store: Arc<dyn BindingStore>,
    interval: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        match store.reap(now_ms()).await {
            Ok(n) => {
                if failing {
                    tracing::info!("reaper recovered");
                    failing = false;
                }
                if n > 0 {
                    tracing::debug!(reaped = n, "reaped expired bindings");
                }
            }
            Err(e) => {
                // Log once per outage at warn, then at debug, to keep logs readable.
                if failing {
                    tracing::debug!(error = %e, "reap failed");
                } else {
                    tracing::warn!(error = %e, "reap failed; will retry");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::StoreError;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A store whose reap fails every other call and counts calls.
    struct Flaky(AtomicU32);

    #[async_trait::async_trait]
    impl BindingStore for Flaky {
        async fn create_pool(&self, _: crate::bindings::PoolSpec) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn get_pool(&self, _: &str) -> Result<crate::bindings::PoolSpec, StoreError> {
            unimplemented!()
        }
        async fn list_pools(&self) -> Result<Vec<crate::bindings::PoolSpec>, StoreError> {
            unimplemented!()
        }
        async fn import_numbers(
            &self,
            _: &str,
            _: Vec<crate::bindings::NumberSpec>,
        ) -> Result<crate::bindings::ImportOutcome, StoreError> {
            unimplemented!()
        }
        async fn retire_number(&self, _: &str, _: &crate::numbers::E164) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn pool_of_number(
            &self,
            _: &crate::numbers::E164,
        ) -> Result<Option<String>, StoreError> {
            unimplemented!()
        }
        async fn pool_stats(
            &self,
            _: &str,
            _: i64,
        ) -> Result<crate::bindings::PoolStats, StoreError> {
            unimplemented!()
        }
        async fn set_number_state(
            &self,
            _: &str,
            _: &crate::numbers::E164,
            _: crate::bindings::NumberState,
        ) -> Result<crate::bindings::NumberState, StoreError> {
            unimplemented!()
        }
        async fn pool_overview(
            &self,
            _: &str,
            _: i64,
        ) -> Result<crate::bindings::PoolOverview, StoreError> {
            unimplemented!()
        }
        async fn list_numbers(
            &self,
            _: &str,
            _: Option<&str>,
            _: usize,
        ) -> Result<crate::bindings::NumberPage, StoreError> {
            unimplemented!()
        }
        async fn create_binding(
            &self,
            _: crate::bindings::NewBinding,
            _: i64,
        ) -> Result<crate::bindings::Created, StoreError> {
            unimplemented!()
        }
        async fn get_binding(
            &self,
            _: crate::bindings::BindingId,
            _: i64,
        ) -> Result<crate::bindings::Binding, StoreError> {
            unimplemented!()
        }
        async fn find_by_shipment(
            &self,
            _: Option<&str>,
            _: &str,
            _: i64,
        ) -> Result<Vec<crate::bindings::Binding>, StoreError> {
            unimplemented!()
        }
        async fn update_binding(
            &self,
            _: crate::bindings::BindingId,
            _: crate::bindings::BindingPatch,
            _: i64,
        ) -> Result<crate::bindings::Binding, StoreError> {
            unimplemented!()
        }
        async fn mark_delivered(
            &self,
            _: crate::bindings::BindingId,
            _: i64,
        ) -> Result<crate::bindings::Binding, StoreError> {
            unimplemented!()
        }
        async fn delete_binding(
            &self,
            _: crate::bindings::BindingId,
            _: i64,
        ) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn route(
            &self,
            _: &str,
            _: &crate::numbers::E164,
            _: &crate::numbers::E164,
            _: i64,
        ) -> Result<Option<crate::bindings::Route>, StoreError> {
            unimplemented!()
        }
        async fn route_extension(
            &self,
            _: &str,
            _: &crate::numbers::E164,
            _: &str,
            _: i64,
        ) -> Result<crate::bindings::ExtensionRoute, StoreError> {
            unimplemented!()
        }
        async fn reap(&self, _: i64) -> Result<u64, StoreError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 0 {
                Err(StoreError::Unavailable("down".into()))
            } else {
                Ok(1)
            }
        }
        async fn ping(&self) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn append_audit(&self, _: crate::store::AuditEntry) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn read_audit(&self, _: usize) -> Result<Vec<crate::store::AuditEntry>, StoreError> {
            unimplemented!()
        }
    }

    #[tokio::test]
    async fn keeps_reaping_through_failures_until_shutdown() {
        let flaky = Arc::new(Flaky(AtomicU32::new(0)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_reaper(
            flaky.clone(),
            Duration::from_millis(10),
            async move {
                let _ = rx.await;
            },
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            flaky.0.load(Ordering::SeqCst) >= 4,
            "kept calling after errors"
        );
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .unwrap()
            .unwrap();
    }
}
