//! Call records, written off the call path: the engine hands a finished call's
//! record to this task, which adds the shipment and the direction where the route
//! lookup did not already give them (one store read by binding id, concurrently
//! for a batch: IVR calls, and routes read from an older store) and appends the
//! batch to the [`RecordStore`] in one round trip (gathered for a few
//! milliseconds first), retrying a store outage a few times before giving up
//! (counted in `maskline_call_records_dropped_total`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::bindings::now_ms;
use crate::events::{CallRecord, Direction, RecordStore};
use crate::numbers::E164;
use crate::store::BindingStore;

/// Most records written in one round trip.
const BATCH: usize = 256;

/// How long the writer gathers records after the first of a batch. The engine
/// ends about one call per loop under load, so without it every call cost a
/// round trip of its own (a write and a read on the engine's thread, and the
/// reply parsed); a record shows up this much later in `GET /v1/calls`.
const GATHER: Duration = Duration::from_millis(20);

/// Adds shipment and direction from the binding (if it still exists).
async fn enrich(
    store: &dyn BindingStore,
    mut record: CallRecord,
    caller: Option<E164>,
) -> CallRecord {
    if record.shipment_id.is_some() && record.direction.is_some() {
        return record;
    }
    if let Some(id) = record
        .binding_id
        .as_deref()
        .and_then(|b| b.parse::<uuid::Uuid>().ok())
    {
        if let Ok(b) = store.get_binding(id, now_ms()).await {
            record.shipment_id = Some(b.shipment_id.clone());
            record.direction = caller.map(|c| {
                if c == b.party_a {
                    Direction::CourierToCustomer
                } else {
                    Direction::CustomerToCourier
                }
            });
        }
    }
    record
}

/// Runs until every sender is gone and the queue is written.
pub async fn run(
    mut rx: mpsc::UnboundedReceiver<(CallRecord, Option<E164>)>,
    store: Arc<dyn BindingStore>,
    records: Arc<dyn RecordStore>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            tokio::time::sleep(GATHER).await;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
        }
        let enriched: Vec<CallRecord> = futures::future::join_all(
            batch
                .drain(..)
                .map(|(record, caller)| enrich(store.as_ref(), record, caller)),
        )
        .await;
        let mut written = false;
        for attempt in 0..3u32 {
            match records.append_calls(&enriched).await {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "call records not written yet");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        if !written {
            metrics::counter!("maskline_call_records_dropped_total")
                .increment(enriched.len() as u64);
        }
    }
}
