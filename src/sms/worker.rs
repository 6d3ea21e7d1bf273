//! Delivery: workers take queued texts and hand them to the carrier named in the
//! job, retry transient failures (SMPP throttling and temporary errors, HTTP 5xx and
//! timeouts, a link that is down) with exponential back-off until the text is
//! `retry_max_age_s` old, and record the final status (`submitted`, `failed` with
//! the reason, `expired`). Also the record writer, which adds shipment and
//! direction to records off the relay path (one store read per binding, cached).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch, Semaphore};

use super::job::Job;
use super::metric;
use super::queue::Entry;
use super::relay::{direction, Party, Relay};
use crate::bindings::now_ms;
use crate::events::{Direction, MessageRecord, RecordStore};
use crate::numbers::E164;
use crate::store::BindingStore;

/// Why a carrier did not take a text.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Try again later (throttled, temporary error, link down, timeout, 5xx).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never work (invalid destination, 4xx, rejected).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A way out to a carrier.
#[async_trait]
pub trait Carrier: Send + Sync + 'static {
    /// Sends `body` from `from` to `to`; the carrier's ids for it (one per part).
    async fn send(
        &self,
        job_id: &str,
        from: &E164,
        to: &E164,
        body: &str,
    ) -> Result<Vec<String>, SendError>;
}

/// Outbound carriers by name (`http`, `smpp:<link>`).
pub type Carriers = HashMap<String, Arc<dyn Carrier>>;

/// First retry delay; doubled per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between attempts (kept below the queue's take-over time).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the workers until `stop` turns true; in-flight texts are finished first
/// (or left queued for the next start).
pub async fn run(
    relay: Arc<Relay>,
    carriers: Arc<Carriers>,
    workers: usize,
    retry_max_age: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(workers));
    let in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    let mut depth_at = std::time::Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        if depth_at.elapsed() >= Duration::from_secs(1) {
            depth_at = std::time::Instant::now();
            if let Ok(d) = relay.queue.depth().await {
                metrics::gauge!(metric::QUEUE_DEPTH).set(d as f64);
            }
        }
        let free = permits.available_permits().max(1);
        let take = relay.queue.take(free.min(512), Duration::from_millis(500));
        let entries = tokio::select! {
            r = take => r,
            _ = stop.changed() => continue,
        };
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "sms: queue unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for entry in entries {
            let fresh = in_flight
                .lock()
                .map(|mut s| s.insert(entry.entry.clone()))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let relay = relay.clone();
            let carriers = carriers.clone();
            let in_flight = in_flight.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let id = entry.entry.clone();
                deliver(&relay, &carriers, entry, retry_max_age, stop).await;
                if let Ok(mut s) = in_flight.lock() {
                    s.remove(&id);
                }
                drop(permit);
            });
        }
    }
    // Drain: wait for in-flight deliveries (each stops retrying on `stop`).
    let _ = permits.acquire_many(workers as u32).await;
}

/// Delivers one entry; returns when it is finished or left for a later start.
async fn deliver(
    relay: &Relay,
    carriers: &Carriers,
    entry: Entry,
    retry_max_age: Duration,
    stop: watch::Receiver<bool>,
) {
    let job = match Job::from_stored(&entry.job, &relay.sealer) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "sms: dropping an unreadable queued job");
            let _ = relay.queue.finish(&entry.entry, "unreadable").await;
            return;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        match relay.queue.is_done(&job.id).await {
            Ok(true) => {
                let _ = relay.queue.finish(&entry.entry, &job.id).await;
                return;
            }
            Ok(false) => {}
            Err(_) => {
                if *stop.borrow() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                continue;
            }
        }
        let age = now_ms().saturating_sub(job.meta.received_at);
        if age > retry_max_age.as_millis() as i64 {
            finish(
                relay,
                &entry,
                &job,
                "expired",
                Some("retry_max_age".into()),
                attempts,
            )
            .await;
            return;
        }
        let Some(carrier) = carriers.get(&job.carrier) else {
            finish(
                relay,
                &entry,
                &job,
                "failed",
                Some(format!("no carrier {}", job.carrier)),
                attempts,
            )
            .await;
            return;
        };
        attempts += 1;
        match carrier.send(&job.id, &job.from, &job.to, &job.body).await {
            Ok(ids) => {
                let latency = now_ms().saturating_sub(job.meta.received_at);
                metrics::histogram!(metric::LATENCY).record(latency as f64 / 1000.0);
                metrics::counter!(metric::RELAYED, "carrier" => job.carrier.clone()).increment(1);
                let rec = job.record("submitted", None, attempts, &relay.sealer);
                let stored = serde_json::to_string(&rec);
                // The `submitted` record goes to the writer before the receipt note
                // exists: a receipt (which the SMSC may send right behind its
                // submit_sm_resp) then always follows it in the writer's queue and
                // its `delivered` is never overwritten by the older `submitted`.
                // A receipt that overtakes the note is retried by the carrier side.
                send_record(relay, &job, rec);
                if let Ok(s) = stored {
                    for id in &ids {
                        let _ = relay
                            .queue
                            .put_receipt(&format!("{}:{id}", job.carrier), &s)
                            .await;
                    }
                }
                mark_done(relay, &entry, &job).await;
                return;
            }
            Err(SendError::Permanent(why)) => {
                finish(relay, &entry, &job, "failed", Some(why), attempts).await;
                return;
            }
            Err(SendError::Transient(why)) => {
                tracing::debug!(attempts, reason = %why, "sms: transient failure; retrying");
                if *stop.borrow() {
                    // Left queued (unacknowledged): the next start takes it back.
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                let _ = relay.queue.touch(&entry.entry).await;
            }
        }
    }
}

async fn finish(
    relay: &Relay,
    entry: &Entry,
    job: &Job,
    status: &str,
    reason: Option<String>,
    attempts: u32,
) {
    metrics::counter!(metric::FAILED, "status" => status.to_owned()).increment(1);
    // The record first: a crash between the two redelivers the entry, and the
    // done marker (set by `finish`) is not there yet, so it is tried again.
    send_record(
        relay,
        job,
        job.record(status, reason, attempts, &relay.sealer),
    );
    mark_done(relay, entry, job).await;
}

/// Hands `rec` (a record of `job`'s text) to the record writer.
fn send_record(relay: &Relay, job: &Job, rec: MessageRecord) {
    let _ = relay
        .records
        .send((rec, Some(Party::Recipient(job.to.clone()))));
}

/// Marks `job` done in the queue (retried with backoff).
async fn mark_done(relay: &Relay, entry: &Entry, job: &Job) {
    let mut delay = FIRST_BACKOFF;
    for _ in 0..20 {
        if relay.queue.finish(&entry.entry, &job.id).await.is_ok() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_BACKOFF);
    }
    tracing::error!("sms: could not mark a text done; it may be sent again after a restart");
}

/// Writes message records, adding shipment and direction; runs until every sender
/// is gone.
pub async fn write_records(
    mut rx: mpsc::UnboundedReceiver<(MessageRecord, Option<Party>)>,
    store: Arc<dyn BindingStore>,
    records: Arc<dyn RecordStore>,
) {
    // binding id → (shipment, courier); bounded by clearing.
    let mut cache: HashMap<String, (String, E164)> = HashMap::new();
    // text id → direction, for later records of the same text (receipts).
    let mut dirs: HashMap<String, Direction> = HashMap::new();
    while let Some((mut rec, sender)) = rx.recv().await {
        if let Some(bid) = rec.binding_id.clone() {
            if !cache.contains_key(&bid) {
                if let Ok(id) = bid.parse::<uuid::Uuid>() {
                    if let Ok(b) = store.get_binding(id, now_ms()).await {
                        if cache.len() > 100_000 {
                            cache.clear();
                        }
                        cache.insert(bid.clone(), (b.shipment_id.clone(), b.party_a.clone()));
                    }
                }
            }
            if let Some((shipment, courier)) = cache.get(&bid) {
                rec.shipment_id = Some(shipment.clone());
                if rec.direction.is_none() {
                    rec.direction = match &sender {
                        Some(Party::Sender(s)) => Some(direction(s, courier)),
                        Some(Party::Recipient(r)) => Some(if r == courier {
                            Direction::CustomerToCourier
                        } else {
                            Direction::CourierToCustomer
                        }),
                        None => None,
                    };
                }
            }
        }
        match rec.direction {
            Some(d) => {
                if dirs.len() > 100_000 {
                    dirs.clear();
                }
                dirs.insert(rec.id.clone(), d);
            }
            None => rec.direction = dirs.get(&rec.id).copied(),
        }
        let mut written = false;
        for attempt in 0..3u32 {
            match records.append_message(&rec).await {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "message record not written yet");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        if !written {
            metrics::counter!("maskline_sms_records_dropped_total").increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::OnceLock;

    use super::super::queue::{Admission, Admitted, MemoryQueue, QueueError, SmsQueue};
    use super::super::relay::{Inbound, Outcome};
    use super::*;
    use crate::bindings::{NewBinding, NumberSpec, PoolSpec};
    use crate::config::SmsConfig;
    use crate::numbers::{NumberHasher, Sealer};
    use crate::store::memory::MemoryStore;
    use crate::voice::router::CallRouter;

    /// The memory queue, with an SMSC that sends its DELIVRD receipt the instant
    /// the relay can match it (right after the receipt note is stored).
    #[derive(Default)]
    struct EagerReceipts {
        inner: MemoryQueue,
        relay: OnceLock<Arc<Relay>>,
    }

    #[async_trait]
    impl SmsQueue for EagerReceipts {
        async fn admit(&self, a: Admission) -> Result<Admitted, QueueError> {
            self.inner.admit(a).await
        }
        async fn add_part(
            &self,
            key: &str,
            total: u8,
            seq: u8,
            part: &str,
        ) -> Result<Option<Vec<String>>, QueueError> {
            self.inner.add_part(key, total, seq, part).await
        }
        async fn take(&self, max: usize, wait: Duration) -> Result<Vec<Entry>, QueueError> {
            self.inner.take(max, wait).await
        }
        async fn touch(&self, entry: &str) -> Result<(), QueueError> {
            self.inner.touch(entry).await
        }
        async fn is_done(&self, job_id: &str) -> Result<bool, QueueError> {
            self.inner.is_done(job_id).await
        }
        async fn finish(&self, entry: &str, job_id: &str) -> Result<(), QueueError> {
            self.inner.finish(entry, job_id).await
        }
        async fn depth(&self) -> Result<u64, QueueError> {
            self.inner.depth().await
        }
        async fn put_receipt(&self, carrier_id: &str, value: &str) -> Result<(), QueueError> {
            self.inner.put_receipt(carrier_id, value).await?;
            if let Some(relay) = self.relay.get() {
                assert!(relay.receipt(carrier_id, true, "DELIVRD").await.unwrap());
            }
            Ok(())
        }
        async fn take_receipt(&self, carrier_id: &str) -> Result<Option<String>, QueueError> {
            self.inner.take_receipt(carrier_id).await
        }
    }

    /// A carrier that takes every text and gives it the id `m1`.
    struct Accepts;

    #[async_trait]
    impl Carrier for Accepts {
        async fn send(
            &self,
            _job_id: &str,
            _from: &E164,
            _to: &E164,
            _body: &str,
        ) -> Result<Vec<String>, SendError> {
            Ok(vec!["m1".into()])
        }
    }

    fn n(s: &str) -> E164 {
        E164::parse(s).unwrap()
    }

    /// A receipt sent right behind the carrier's acceptance ends the text
    /// `delivered`: its record reaches the writer after the `submitted` one.
    #[tokio::test]
    async fn a_receipt_right_behind_the_submit_is_the_last_word() {
        let store = Arc::new(MemoryStore::new());
        store
            .create_pool(PoolSpec {
                name: "p".into(),
                country: 86,
                grace_s: 60,
                cooling_s: 60,
                max_bindings_per_number: 10,
                allow_foreign_parties: false,
                extensions: false,
                extension_len: crate::bindings::DEFAULT_EXTENSION_LEN,
            })
            .await
            .unwrap();
        let x = n("+8617000000001");
        store
            .import_numbers(
                "p",
                vec![NumberSpec {
                    number: x.clone(),
                    area: None,
                    capabilities: Default::default(),
                }],
            )
            .await
            .unwrap();
        let courier = n("+8613800138000");
        store
            .create_binding(
                NewBinding {
                    pool: "p".into(),
                    shipment_id: "S1".into(),
                    party_a: courier.clone(),
                    party_b: n("+8613900139000"),
                    expires_at: now_ms() + 3_600_000,
                    area: None,
                    extension: None,
                },
                now_ms(),
            )
            .await
            .unwrap();
        let queue = Arc::new(EagerReceipts::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let relay = Arc::new(Relay::new(
            &SmsConfig {
                carrier: "http".into(),
                ..SmsConfig::default()
            },
            CallRouter::new(store),
            queue.clone(),
            Sealer::random(),
            NumberHasher::new(&[7u8; 32]).unwrap(),
            tx,
        ));
        let _ = queue.relay.set(relay.clone());
        let text = Inbound {
            carrier: "http".into(),
            carrier_id: Some("in1".into()),
            fingerprint: None,
            from: courier,
            to: x,
            text: "at your door".into(),
            concat: None,
        };
        assert_eq!(relay.ingest(text).await.unwrap(), Outcome::Queued);
        let entry = queue
            .take(1, Duration::from_millis(10))
            .await
            .unwrap()
            .pop()
            .unwrap();
        let carriers: Carriers = HashMap::from([("http".to_owned(), Arc::new(Accepts) as _)]);
        let (_stop_tx, stop) = watch::channel(false);
        deliver(&relay, &carriers, entry, Duration::from_secs(60), stop).await;
        let mut statuses = Vec::new();
        while let Ok((rec, _)) = rx.try_recv() {
            statuses.push(rec.status);
        }
        assert_eq!(
            statuses.last().map(String::as_str),
            Some("delivered"),
            "{statuses:?}"
        );
        assert!(statuses.contains(&"submitted".to_owned()), "{statuses:?}");
    }
}
