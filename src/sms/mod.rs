//! SMS: texts to a virtual number X reach the bound party from X, real numbers
//! masked in the body, and nothing acknowledged to a carrier is ever lost.
//!
//! ```text
//!  SMSC ──deliver_sm──▶ smpp ─┐                         ┌─▶ smpp ──submit_sm──▶ SMSC
//!  CPaaS ──POST /v1/sms/inbound (api) ─▶ relay ─▶ queue ─▶ worker
//!                              route(X, sender)  (durable)  └─▶ http ──POST──▶ CPaaS
//!                                                      └─▶ records (GET /v1/messages)
//! ```
//!
//! Module map:
//! - [`relay`]: the rules (reassembly, duplicates, route, body rules, masking, rate
//!   limits), one place for every carrier kind; acknowledges only what is queued.
//! - [`queue`]: the durable queue (Redis Stream + consumer group; in-process for
//!   the memory store, not durable) with atomic dedupe and rate limits.
//! - [`worker`]: delivery with retries and back-off, final statuses, the record
//!   writer.
//! - [`smpp`]: SMPP 3.4 ESME links (rusmpp/rusmppc), binds, window, rate, rebind.
//! - [`http`]: the CPaaS gateway (HMAC-signed webhooks, outbound POSTs).
//! - [`mask`], [`text`], [`job`]: body masking; GSM 03.38/UCS-2 decoding and
//!   segment counts; the sealed queued form of a text.
//!
//! Routing reuses the voice path's [`CallRouter`] (number → pool cache, then one
//! `route` round trip), so a text costs the same single store read as a call.
//!
//! Metrics: `maskline_sms_received_total{carrier}`,
//! `maskline_sms_relayed_total{carrier}`, `maskline_sms_blocked_total{reason}`,
//! `maskline_sms_failed_total{status}`, `maskline_sms_queue_depth`,
//! `maskline_sms_delivery_latency_seconds` (received → accepted by the carrier).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub mod http;
pub mod job;
pub mod mask;
pub mod queue;
pub mod relay;
pub mod smpp;
pub mod text;
pub mod worker;

pub use relay::{Inbound, Outcome, Relay};

use crate::config::{Backend, Secrets, SmsConfig, StoreConfig};
use crate::events::RecordStore;
use crate::store::BindingStore;
use crate::voice::router::CallRouter;

/// Metric names.
pub mod metric {
    /// Texts received, by carrier.
    pub const RECEIVED: &str = "maskline_sms_received_total";
    /// Texts handed to a carrier, by carrier.
    pub const RELAYED: &str = "maskline_sms_relayed_total";
    /// Texts not forwarded, by reason.
    pub const BLOCKED: &str = "maskline_sms_blocked_total";
    /// Texts that ended failed or expired, by status.
    pub const FAILED: &str = "maskline_sms_failed_total";
    /// Texts queued or in flight.
    pub const QUEUE_DEPTH: &str = "maskline_sms_queue_depth";
    /// Received → accepted by the carrier, seconds.
    pub const LATENCY: &str = "maskline_sms_delivery_latency_seconds";
}

/// Why a text cannot be taken now, or why the SMS relay cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The binding store failed or timed out (the carrier should retry).
    #[error("store unavailable")]
    StoreUnavailable,
    /// The queue failed (the carrier should retry).
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    /// Stored data does not open (wrong secrets).
    #[error("sms data unreadable: {0}")]
    Corrupt(&'static str),
    /// A setting is unusable.
    #[error("{field}: {message}")]
    Config {
        /// Dotted field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The running SMS relay.
pub struct Sms {
    relay: Arc<Relay>,
    links: Vec<Arc<smpp::SmppLink>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    inbound_secret: Vec<u8>,
    replay_window_s: u64,
}

impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sms")
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl Sms {
    /// Builds the queue (Redis Stream with the Redis store, in-process otherwise),
    /// the carriers and the relay, and starts the SMPP sessions, the workers and the
    /// record writer.
    pub fn start(
        cfg: &SmsConfig,
        store_cfg: &StoreConfig,
        secrets: &Secrets,
        store: Arc<dyn BindingStore>,
        records: Arc<dyn RecordStore>,
    ) -> Result<Sms, SmsError> {
        let queue: Arc<dyn queue::SmsQueue> = match store_cfg.backend {
            Backend::Memory => {
                tracing::warn!(
                    "sms: in-process queue, NOT durable: queued texts are lost when this \
                     process stops; use store.backend = \"redis\" in production"
                );
                Arc::new(queue::MemoryQueue::default())
            }
            Backend::Redis | Backend::RedisCluster => {
                let client = crate::store::redis::conn::Target::from_store_config(store_cfg)
                    .map_err(|e| SmsError::Config {
                        field: if store_cfg.backend == Backend::RedisCluster {
                            "store.cluster_nodes".into()
                        } else {
                            "store.redis_url".into()
                        },
                        message: e.to_string(),
                    })?;
                let consumer = if cfg.consumer.is_empty() {
                    std::env::var("HOSTNAME")
                        .ok()
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| "maskline".into())
                } else {
                    cfg.consumer.clone()
                };
                Arc::new(queue::RedisQueue::new(
                    client,
                    consumer,
                    cfg.claim_idle_ms,
                    Duration::from_millis(store_cfg.redis_timeout_ms),
                ))
            }
        };
        Self::start_with_queue(cfg, secrets, store, records, queue)
    }

    /// Like [`Sms::start`] with a given queue.
    pub fn start_with_queue(
        cfg: &SmsConfig,
        secrets: &Secrets,
        store: Arc<dyn BindingStore>,
        records: Arc<dyn RecordStore>,
        queue: Arc<dyn queue::SmsQueue>,
    ) -> Result<Sms, SmsError> {
        let (rec_tx, rec_rx) = mpsc::unbounded_channel();
        let relay = Arc::new(Relay::new(
            cfg,
            CallRouter::new(store.clone()),
            queue,
            secrets.sealer.clone(),
            secrets.hasher.clone(),
            rec_tx,
        ));
        let (stop, stop_rx) = watch::channel(false);
        let mut carriers = worker::Carriers::new();
        if !cfg.http.outbound_url.is_empty() {
            let c = http::HttpCarrier::new(
                &cfg.http.outbound_url,
                &cfg.http.outbound_token,
                cfg.http.timeout(),
            )
            .map_err(|message| SmsError::Config {
                field: "sms.http.outbound_url".into(),
                message,
            })?;
            carriers.insert("http".into(), Arc::new(c));
        }
        let mut tasks = Vec::new();
        let mut links = Vec::new();
        for l in &cfg.smpp {
            let link = smpp::SmppLink::new(l);
            carriers.insert(link.name().to_owned(), link.clone());
            tasks.push(tokio::spawn(
                link.clone().run(relay.clone(), stop_rx.clone()),
            ));
            links.push(link);
        }
        tasks.push(tokio::spawn(worker::run(
            relay.clone(),
            Arc::new(carriers),
            cfg.workers,
            Duration::from_secs(cfg.retry_max_age_s),
            stop_rx,
        )));
        // The writer ends when the relay (the last sender) is dropped.
        tokio::spawn(worker::write_records(rec_rx, store, records));
        Ok(Sms {
            relay,
            links,
            stop,
            tasks,
            inbound_secret: cfg.http.inbound_secret.as_bytes().to_vec(),
            replay_window_s: cfg.http.replay_window_s,
        })
    }

    /// The handle the API's SMS webhooks use.
    pub fn gateway(&self) -> Gateway {
        Gateway {
            relay: self.relay.clone(),
            secret: Arc::from(self.inbound_secret.as_slice()),
            window_s: self.replay_window_s,
        }
    }

    /// Bound SMPP sessions per link name.
    pub fn bound_sessions(&self) -> Vec<(String, usize)> {
        self.links
            .iter()
            .map(|l| (l.name().to_owned(), l.bound()))
            .collect()
    }

    /// Stops: SMPP sessions unbind, workers finish what they hold (texts not yet
    /// handed over stay queued for the next start).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// What the HTTP API needs to take webhooks: the relay and the signing secret.
#[derive(Clone)]
pub struct Gateway {
    /// The relay.
    pub relay: Arc<Relay>,
    /// Inbound shared secret (empty: webhooks refused).
    pub secret: Arc<[u8]>,
    /// Replay window, seconds.
    pub window_s: u64,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}
