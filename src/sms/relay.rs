//! The relay rules, made in one place for every carrier kind: a text that came in
//! (SMPP `deliver_sm` or HTTP webhook) is reassembled if it is one part of several,
//! checked for duplicates, routed (`route(X, sender)`, one round trip through the
//! number → pool cache), refused (blocklist, length) or masked, rate limited, and
//! queued: [`Relay::ingest`] returns only once the outcome is durable, and the
//! carrier is acknowledged only then. Store or queue trouble returns an error, and
//! the carrier is asked to send again (SMPP temporary error, HTTP 503).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::job::{self, Job, JobMeta};
use super::mask::BodyRules;
use super::queue::{Admission, Admitted, SmsQueue, DEDUPE_TTL_MS};
use super::text::{self, Concat};
use super::{metric, SmsError};
use crate::bindings::{now_ms, UnixMs};
use crate::config::{CarrierRef, SmsConfig};
use crate::events::{Direction, MessageRecord};
use crate::numbers::{NumberHasher, Sealer, E164};
use crate::voice::router::{CallRouter, Decision};

/// A text as a carrier delivered it.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Carrier it came in on (`http`, `smpp:<link>`).
    pub carrier: String,
    /// The carrier's id for it, when it gives one (duplicates are found by it).
    pub carrier_id: Option<String>,
    /// Without a carrier id: a fingerprint of the PDU, remembered for a short time.
    pub fingerprint: Option<String>,
    /// Sender.
    pub from: E164,
    /// The virtual number X.
    pub to: E164,
    /// This part's text.
    pub text: String,
    /// Concatenation info when this is one part of several.
    pub concat: Option<Concat>,
}

/// What happened to an inbound text (all of them are acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Queued for the bound party.
    Queued,
    /// A part of a longer text; kept until the others arrive.
    PartStored,
    /// Seen before; nothing done.
    Duplicate,
    /// No live binding (or unknown X); auto-reply queued if configured.
    NotForwarded,
    /// Refused by the body rules.
    Blocked,
    /// Over a rate limit; dropped.
    RateLimited,
}

impl Outcome {
    /// JSON/metric spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::PartStored => "part_stored",
            Outcome::Duplicate => "duplicate",
            Outcome::NotForwarded => "not_forwarded",
            Outcome::Blocked => "blocked",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

/// Settings of one pool.
#[derive(Debug, Clone)]
struct PoolRules {
    carrier: String,
    mask: bool,
    store_bodies: bool,
}

/// The relay core shared by the carrier links, the HTTP gateway and the workers.
pub struct Relay {
    pub(crate) router: CallRouter,
    pub(crate) queue: Arc<dyn SmsQueue>,
    pub(crate) sealer: Sealer,
    hasher: NumberHasher,
    rules: BodyRules,
    default_pool: PoolRules,
    pools: HashMap<String, PoolRules>,
    rate_sender: u32,
    rate_pool: u32,
    auto_reply: String,
    pub(crate) records: mpsc::UnboundedSender<(MessageRecord, Option<Party>)>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

fn carrier_name(c: &CarrierRef) -> String {
    match c {
        CarrierRef::Http => "http".into(),
        CarrierRef::Smpp(n) => format!("smpp:{n}"),
    }
}

impl Relay {
    /// The relay over `router` and `queue`, with `[sms]` rules; records go to
    /// `records` (with the sender, for the direction).
    pub fn new(
        cfg: &SmsConfig,
        router: CallRouter,
        queue: Arc<dyn SmsQueue>,
        sealer: Sealer,
        hasher: NumberHasher,
        records: mpsc::UnboundedSender<(MessageRecord, Option<Party>)>,
    ) -> Self {
        let default_pool = PoolRules {
            carrier: carrier_name(&cfg.default_carrier()),
            mask: cfg.mask_numbers,
            store_bodies: false,
        };
        let pools = cfg
            .pools
            .iter()
            .map(|(name, p)| {
                let carrier = p
                    .carrier
                    .as_deref()
                    .and_then(CarrierRef::parse)
                    .map_or(default_pool.carrier.clone(), |c| carrier_name(&c));
                (
                    name.clone(),
                    PoolRules {
                        carrier,
                        mask: p.mask_numbers.unwrap_or(cfg.mask_numbers),
                        store_bodies: p.store_bodies,
                    },
                )
            })
            .collect();
        Self {
            router,
            queue,
            sealer,
            hasher,
            rules: BodyRules::new(&cfg.mask_patterns, &cfg.blocklist, cfg.max_length),
            default_pool,
            pools,
            rate_sender: cfg.rate_per_sender_per_hour,
            rate_pool: cfg.rate_per_pool_per_min,
            auto_reply: cfg.auto_reply.clone(),
            records,
        }
    }

    fn pool_rules(&self, pool: &str) -> &PoolRules {
        self.pools.get(pool).unwrap_or(&self.default_pool)
    }

    fn dedupe_key(&self, m: &Inbound) -> Option<(String, u64)> {
        match (&m.carrier_id, &m.fingerprint) {
            (Some(id), _) => Some((
                format!(
                    "ml:{{sms}}:seen:{}:{}",
                    m.carrier,
                    hex::encode(&self.hasher.hash(&m.from)[..8]) + id
                ),
                DEDUPE_TTL_MS,
            )),
            // A retransmission after a lost response comes within seconds.
            (None, Some(fp)) => Some((format!("ml:{{sms}}:seen:{}:fp:{fp}", m.carrier), 120_000)),
            (None, None) => None,
        }
    }

    fn sender_limit(&self, from: &E164, x: &E164, now: UnixMs) -> (String, u32, u64) {
        let hour = now / 3_600_000;
        let key = format!(
            "ml:{{sms}}:rl:{}:{}:{hour}",
            self.hasher.hash_hex(x),
            self.hasher.hash_hex(from)
        );
        (key, self.rate_sender, 3_600_000)
    }

    fn pool_limit(&self, pool: &str, now: UnixMs) -> Option<(String, u32, u64)> {
        (self.rate_pool > 0).then(|| {
            (
                format!("ml:{{sms}}:rlp:{pool}:{}", now / 60_000),
                self.rate_pool,
                60_000,
            )
        })
    }

    /// Handles one inbound text; see the module docs. `Ok` means: acknowledge it.
    pub async fn ingest(&self, m: Inbound) -> Result<Outcome, SmsError> {
        let received_at = now_ms();
        metrics::counter!(metric::RECEIVED, "carrier" => m.carrier.clone()).increment(1);
        // 1. Concatenated: store the part; continue only with the whole text.
        let (text, parts_key) = match m.concat.filter(|c| c.total > 1) {
            None => (m.text.clone(), None),
            Some(c) => {
                let key = format!(
                    "ml:{{sms}}:parts:{}:{}:{}:{}:{}",
                    m.carrier,
                    self.hasher.hash_hex(&m.from),
                    self.hasher.hash_hex(&m.to),
                    c.reference,
                    c.total
                );
                let sealed = job::seal_fragment(&self.sealer, &m.text, &key);
                match self.queue.add_part(&key, c.total, c.seq, &sealed).await? {
                    None => return Ok(Outcome::PartStored),
                    Some(parts) => {
                        let mut whole = String::new();
                        for p in &parts {
                            whole.push_str(
                                &job::open_fragment(&self.sealer, p, &key)
                                    .ok_or(SmsError::Corrupt("a stored part does not open"))?,
                            );
                        }
                        (whole, Some(key))
                    }
                }
            }
        };
        let dedupe = match &parts_key {
            // The whole text is identified by its parts' key.
            Some(k) => Some((format!("{k}:whole"), super::queue::PARTS_TTL_MS)),
            None => self.dedupe_key(&m),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let base = MessageRecord {
            id: id.clone(),
            binding_id: None,
            shipment_id: None,
            pool: None,
            number: m.to.expose().to_owned(),
            direction: None,
            sender: m.from.masked(),
            recipient: None,
            carrier_in: m.carrier.clone(),
            carrier_out: None,
            segments: text::segments(&text) as u32,
            numbers_masked: 0,
            status: String::new(),
            reason: None,
            received_at,
            at: received_at,
            attempts: 0,
            body_sealed: None,
        };
        // 2. Route.
        let route = match self.router.decide(&m.to, &m.from, received_at).await {
            Decision::Bridge { route } => route,
            Decision::Unavailable => return Err(SmsError::StoreUnavailable),
            d => {
                let (pool, reason) = match d {
                    Decision::NoBinding { pool } => (Some(pool), "no_binding"),
                    _ => (None, "unknown_number"),
                };
                return self
                    .not_forwarded(m, base, pool, reason, dedupe, parts_key)
                    .await;
            }
        };
        let rules = self.pool_rules(&route.pool).clone();
        let mut rec = MessageRecord {
            binding_id: Some(route.binding_id.to_string()),
            pool: Some(route.pool.clone()),
            recipient: Some(route.callee.masked()),
            ..base
        };
        // 3. Body rules.
        if let Err(refusal) = self.rules.check(&text) {
            let a = Admission {
                dedupe,
                parts_key,
                ..Default::default()
            };
            if self.queue.admit(a).await? == Admitted::Duplicate {
                return Ok(Outcome::Duplicate);
            }
            metrics::counter!(metric::BLOCKED, "reason" => refusal.as_str()).increment(1);
            rec.status = "blocked".into();
            rec.reason = Some(refusal.as_str().into());
            let _ = self.records.send((rec, Some(Party::Sender(m.from))));
            return Ok(Outcome::Blocked);
        }
        let (body, masked) = if rules.mask {
            self.rules.mask(&text)
        } else {
            (text, 0)
        };
        rec.numbers_masked = masked as u32;
        rec.segments = text::segments(&body) as u32;
        let job = Job {
            id,
            carrier: rules.carrier.clone(),
            from: m.to.clone(),
            to: route.callee.clone(),
            body,
            meta: JobMeta {
                binding_id: rec.binding_id.clone(),
                shipment_id: None,
                pool: rec.pool.clone(),
                direction: None,
                sender: rec.sender.clone(),
                recipient: route.callee.masked(),
                carrier_in: m.carrier.clone(),
                segments: rec.segments,
                numbers_masked: rec.numbers_masked,
                received_at,
                store_body: rules.store_bodies,
                kind: "relay".into(),
            },
        };
        // 4. Dedupe + rate limits + queue, atomically.
        let a = Admission {
            dedupe,
            sender_limit: Some(self.sender_limit(&m.from, &m.to, received_at)),
            pool_limit: self.pool_limit(&route.pool, received_at),
            parts_key,
            job: Some(job.to_stored(&self.sealer)),
        };
        let outcome = self.queue.admit(a).await?;
        let (outcome, status, reason) = match outcome {
            Admitted::Duplicate => return Ok(Outcome::Duplicate),
            Admitted::Queued => (Outcome::Queued, "queued", None),
            Admitted::SenderLimited => (Outcome::RateLimited, "rate_limited", Some("sender")),
            Admitted::PoolLimited => (Outcome::RateLimited, "rate_limited", Some("pool")),
        };
        if let Some(r) = reason {
            metrics::counter!(metric::BLOCKED, "reason" => format!("rate_limit_{r}")).increment(1);
        }
        let mut rec = job.record(status, reason.map(String::from), 0, &self.sealer);
        rec.at = received_at;
        let _ = self.records.send((rec, Some(Party::Sender(m.from))));
        Ok(outcome)
    }

    async fn not_forwarded(
        &self,
        m: Inbound,
        mut rec: MessageRecord,
        pool: Option<String>,
        reason: &str,
        dedupe: Option<(String, u64)>,
        parts_key: Option<String>,
    ) -> Result<Outcome, SmsError> {
        metrics::counter!(metric::BLOCKED, "reason" => reason.to_owned()).increment(1);
        let reply = match (&pool, self.auto_reply.is_empty()) {
            (Some(p), false) => Some(Job {
                id: uuid::Uuid::now_v7().to_string(),
                carrier: self.pool_rules(p).carrier.clone(),
                from: m.to.clone(),
                to: m.from.clone(),
                body: self.auto_reply.clone(),
                meta: JobMeta {
                    binding_id: None,
                    shipment_id: None,
                    pool: pool.clone(),
                    direction: None,
                    sender: m.to.expose().to_owned(),
                    recipient: m.from.masked(),
                    carrier_in: m.carrier.clone(),
                    segments: text::segments(&self.auto_reply) as u32,
                    numbers_masked: 0,
                    received_at: rec.received_at,
                    store_body: false,
                    kind: "auto_reply".into(),
                },
            }),
            _ => None,
        };
        let a = Admission {
            dedupe,
            // Auto-replies count against the sender's hourly limit, so a sender
            // cannot make X send texts without bound.
            sender_limit: reply
                .as_ref()
                .map(|_| self.sender_limit(&m.from, &m.to, rec.received_at)),
            pool_limit: None,
            parts_key,
            job: reply.as_ref().map(|j| j.to_stored(&self.sealer)),
        };
        let admitted = self.queue.admit(a).await?;
        if admitted == Admitted::Duplicate {
            return Ok(Outcome::Duplicate);
        }
        rec.pool = pool;
        rec.status = "not_forwarded".into();
        rec.reason = Some(reason.to_owned());
        let _ = self.records.send((rec, None));
        if let (Some(j), Admitted::Queued) = (reply, admitted) {
            let _ = self.records.send((
                j.record("queued", Some("auto_reply".into()), 0, &self.sealer),
                None,
            ));
        }
        Ok(Outcome::NotForwarded)
    }

    /// A delivery receipt for the carrier's id `carrier_id` (`delivered` or not).
    pub async fn receipt(
        &self,
        carrier_id: &str,
        delivered: bool,
        detail: &str,
    ) -> Result<bool, SmsError> {
        let Some(stored) = self.queue.take_receipt(carrier_id).await? else {
            return Ok(false);
        };
        let Ok(mut rec) = serde_json::from_str::<MessageRecord>(&stored) else {
            return Ok(false);
        };
        rec.at = now_ms();
        if delivered {
            rec.status = "delivered".into();
            rec.reason = None;
        } else {
            rec.status = "failed".into();
            rec.reason = Some(format!("receipt: {detail}"));
        }
        let _ = self.records.send((rec, None));
        Ok(true)
    }
}

/// Which party of a record's text the relay knows (for the direction).
#[derive(Debug, Clone)]
pub enum Party {
    /// The sender.
    Sender(E164),
    /// The recipient.
    Recipient(E164),
}

/// Direction of a text from `sender` on a binding whose courier is `party_a`.
pub fn direction(sender: &E164, party_a: &E164) -> Direction {
    if sender == party_a {
        Direction::CourierToCustomer
    } else {
        Direction::CustomerToCourier
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bindings::{NewBinding, NumberSpec, PoolSpec};
    use crate::store::memory::MemoryStore;
    use crate::store::BindingStore;
    use std::time::Duration;

    fn n(s: &str) -> E164 {
        E164::parse(s).unwrap()
    }

    /// The relay rules over the memory store and the in-process queue.
    #[tokio::test]
    async fn memory_relay_routes_masks_dedupes_and_refuses() {
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
        store
            .import_numbers(
                "p",
                vec![NumberSpec {
                    number: n("+8617000000001"),
                    area: None,
                    capabilities: Default::default(),
                }],
            )
            .await
            .unwrap();
        let (a, b, x) = (
            n("+8613800138000"),
            n("+8613900139000"),
            n("+8617000000001"),
        );
        store
            .create_binding(
                NewBinding {
                    pool: "p".into(),
                    shipment_id: "S1".into(),
                    party_a: a.clone(),
                    party_b: b.clone(),
                    expires_at: now_ms() + 3_600_000,
                    area: None,
                    extension: None,
                },
                now_ms(),
            )
            .await
            .unwrap();
        let cfg = SmsConfig {
            blocklist: vec!["casino".into()],
            auto_reply: "gone".into(),
            carrier: "http".into(),
            ..SmsConfig::default()
        };
        let queue = Arc::new(super::super::queue::MemoryQueue::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sealer = Sealer::random();
        let relay = Relay::new(
            &cfg,
            CallRouter::new(store.clone()),
            queue.clone(),
            sealer.clone(),
            NumberHasher::new(&[7u8; 32]).unwrap(),
            tx,
        );
        let msg = |from: &E164, text: &str, id: &str| Inbound {
            carrier: "http".into(),
            carrier_id: Some(id.into()),
            fingerprint: None,
            from: from.clone(),
            to: x.clone(),
            text: text.into(),
            concat: None,
        };
        let out = relay
            .ingest(msg(&a, "I am 13800138000", "1"))
            .await
            .unwrap();
        assert_eq!(out, Outcome::Queued);
        assert_eq!(
            relay
                .ingest(msg(&a, "I am 13800138000", "1"))
                .await
                .unwrap(),
            Outcome::Duplicate
        );
        let got = queue.take(10, Duration::from_millis(10)).await.unwrap();
        assert_eq!(got.len(), 1);
        let job = Job::from_stored(&got[0].job, &sealer).unwrap();
        assert_eq!((job.from.clone(), job.to.clone()), (x.clone(), b.clone()));
        assert_eq!(job.body, "I am 138****8000");
        assert_eq!(
            relay
                .ingest(msg(&b, "visit our CASINO", "2"))
                .await
                .unwrap(),
            Outcome::Blocked
        );
        let stranger = n("+8613700137000");
        assert_eq!(
            relay.ingest(msg(&stranger, "hello?", "3")).await.unwrap(),
            Outcome::NotForwarded
        );
        let got = queue.take(10, Duration::from_millis(10)).await.unwrap();
        let reply = Job::from_stored(&got[0].job, &sealer).unwrap();
        assert_eq!((reply.to, reply.body.as_str()), (stranger, "gone"));
        // Records: queued, blocked, not_forwarded (+ the auto-reply's queued).
        let mut statuses = Vec::new();
        while let Ok((r, _)) = rx.try_recv() {
            statuses.push(r.status);
        }
        assert_eq!(statuses, ["queued", "blocked", "not_forwarded", "queued"]);
    }
}
