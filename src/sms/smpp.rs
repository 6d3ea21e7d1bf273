//! SMPP links: maskline binds to a carrier's SMS centre as an ESME (transceiver).
//!
//! **Crate choice.** `rusmpp` 0.4 (PDU codec; its `extra` feature encodes GSM 03.38
//! and UCS-2 and builds concatenated `submit_sm` with UDH) and `rusmppc` 0.4 (the
//! client session: request/response matching by sequence number, response
//! timeouts, `enquire_link` keep-alive). Both are actively released (2026), typed
//! and `forbid(unsafe_code)`; the older `smpp` crate is unmaintained. rusmppc
//! speaks 5.0 by default; we bind with `interface_version` 3.4 (its check turned
//! off), and use only PDUs and TLVs that are the same in 3.4. rusmppc does not
//! answer `deliver_sm` itself, which is what we need: the answer goes out only
//! after the text is durably queued. It has no TLS here (no default features).
//! One defect worked around: its connection task can stall with requests queued
//! under load (see [`drive`]).
//!
//! Per link: `binds` transceiver sessions, each with a window (outstanding
//! `submit_sm`) and one shared submit rate (`governor`); a session that fails
//! (connection lost, `enquire_link` unanswered) is re-bound with back-off (0.5 s
//! doubling to 30 s). `submit_sm_resp` errors: throttling, queue full and
//! temporary errors are transient (the worker backs off and retries), others
//! are permanent (recorded as failed). Long texts are split by us: GSM 7-bit when
//! every character has a GSM form (160 septets alone, 153 per part, an
//! extension character never split), else UCS-2 (70 / 67); every part of one
//! text carries the same 16-bit reference (derived from the text id), so a
//! retried text does not make the handset show parts twice.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rusmpp::extra::concatenation::SubmitSmMultipartExt;
use rusmpp::extra::encoding::ucs2::Ucs2;
use rusmpp::pdus::{BindTransceiver, DeliverSm, DeliverSmResp, SubmitSm};
use rusmpp::tlvs::TlvValue;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{
    InterfaceVersion, MCDeliveryReceipt, Npi, RegisteredDelivery, ServiceType, Ton,
};
use rusmpp::{CommandStatus, Pdu};
use rusmppc::{Client, ConnectionBuilder, Event};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Semaphore};

use super::relay::{Inbound, Relay};
use super::text;
use super::worker::{Carrier, SendError};
use crate::config::SmppLinkConfig;
use crate::numbers::E164;

/// One bound session.
struct Bound {
    client: Client,
    window: Arc<Semaphore>,
}

/// An SMPP link: its sessions and limits. Also the [`Carrier`] for `smpp:<name>`.
pub struct SmppLink {
    name: String,
    cfg: SmppLinkConfig,
    sessions: Vec<RwLock<Option<Arc<Bound>>>>,
    next: AtomicUsize,
    rate: DefaultDirectRateLimiter,
}

impl std::fmt::Debug for SmppLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppLink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const MAX_REBIND_DELAY: Duration = Duration::from_secs(30);

impl SmppLink {
    /// A link (not yet bound) from config.
    pub fn new(cfg: &SmppLinkConfig) -> Arc<Self> {
        let per_s = std::num::NonZeroU32::new(cfg.submit_rate).unwrap_or(std::num::NonZeroU32::MIN);
        Arc::new(Self {
            name: format!("smpp:{}", cfg.name),
            cfg: cfg.clone(),
            sessions: (0..cfg.binds).map(|_| RwLock::new(None)).collect(),
            next: AtomicUsize::new(0),
            rate: RateLimiter::direct(Quota::per_second(per_s)),
        })
    }

    /// The carrier name (`smpp:<link>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many sessions are bound now.
    pub fn bound(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.read().map(|g| g.is_some()).unwrap_or(false))
            .count()
    }

    /// Runs every session of the link until `stop`.
    pub async fn run(self: Arc<Self>, relay: Arc<Relay>, stop: watch::Receiver<bool>) {
        let mut tasks = Vec::new();
        for i in 0..self.sessions.len() {
            tasks.push(tokio::spawn(self.clone().session(
                i,
                relay.clone(),
                stop.clone(),
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn session(
        self: Arc<Self>,
        i: usize,
        relay: Arc<Relay>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut delay = Duration::from_millis(500);
        while !*stop.borrow() {
            match self.bind_once().await {
                Ok((client, mut events)) => {
                    delay = Duration::from_millis(500);
                    tracing::info!(link = %self.name, session = i, "smpp: bound");
                    let bound = Arc::new(Bound {
                        client: client.clone(),
                        window: Arc::new(Semaphore::new(self.cfg.window)),
                    });
                    if let Ok(mut s) = self.sessions[i].write() {
                        *s = Some(bound);
                    }
                    loop {
                        tokio::select! {
                            ev = events.next() => match ev {
                                Some(Event::Incoming(cmd)) => {
                                    let seq = cmd.sequence_number();
                                    let status = cmd.status();
                                    match cmd.pdu() {
                                        Some(Pdu::DeliverSm(sm)) => {
                                            let sm = sm.clone();
                                            let relay = relay.clone();
                                            let client = client.clone();
                                            let link = self.clone();
                                            tokio::spawn(async move {
                                                let st = link.on_deliver(&relay, &sm).await;
                                                let resp = DeliverSmResp::builder().build();
                                                let _ = client.status(st).deliver_sm_resp(seq, resp).await;
                                            });
                                        }
                                        Some(Pdu::Unbind) => {
                                            let _ = client.unbind_resp(seq).await;
                                            break;
                                        }
                                        _ => tracing::debug!(link = %self.name, ?status, "smpp: ignored PDU"),
                                    }
                                }
                                Some(Event::Error(e)) => {
                                    tracing::warn!(link = %self.name, session = i, error = %e, "smpp: session error");
                                    if client.is_closed() { break; }
                                }
                                None => break,
                            },
                            _ = stop.changed() => {
                                if *stop.borrow() {
                                    let _ = tokio::time::timeout(Duration::from_secs(2), client.unbind()).await;
                                    let _ = client.close().await;
                                    break;
                                }
                            }
                        }
                    }
                    if let Ok(mut s) = self.sessions[i].write() {
                        *s = None;
                    }
                    let _ = client.close().await;
                    tracing::warn!(link = %self.name, session = i, "smpp: unbound; re-binding");
                }
                Err(e) => {
                    tracing::warn!(link = %self.name, session = i, error = %e, retry_in_ms = delay.as_millis() as u64, "smpp: bind failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => {}
            }
            delay = (delay * 2).min(MAX_REBIND_DELAY);
        }
    }

    async fn bind_once(
        &self,
    ) -> Result<(Client, impl futures::Stream<Item = Event> + Unpin + 'static), String> {
        let c = &self.cfg;
        // Our own socket, so small PDUs are not held back by Nagle's algorithm.
        let sock = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(&c.address),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
        let _ = sock.set_nodelay(true);
        let (client, events, connection) = ConnectionBuilder::new()
            .disable_interface_version_check()
            .enquire_link_interval(Duration::from_secs(c.enquire_link_s))
            .enquire_link_response_timeout(Duration::from_secs(c.enquire_link_s.clamp(1, 10)))
            .response_timeout(Duration::from_secs(10))
            .no_spawn()
            .connected(sock);
        tokio::spawn(drive(connection));
        let bind = BindTransceiver::builder()
            .system_id(cs(&c.system_id)?)
            .password(cs(&c.password)?)
            .system_type(cs(&c.system_type)?)
            .interface_version(InterfaceVersion::Smpp3_4)
            .addr_ton(Ton::Unknown)
            .addr_npi(Npi::Unknown)
            .address_range(COctetString::empty())
            .build();
        match tokio::time::timeout(Duration::from_secs(10), client.bind_transceiver(bind)).await {
            Ok(Ok(_)) => Ok((client, events)),
            Ok(Err(e)) => {
                let _ = client.close().await;
                Err(e.to_string())
            }
            Err(_) => {
                let _ = client.close().await;
                Err("bind timed out".into())
            }
        }
    }

    /// Handles a `deliver_sm`; the status to answer with.
    async fn on_deliver(&self, relay: &Arc<Relay>, sm: &DeliverSm) -> CommandStatus {
        let esm: u8 = sm.esm_class.into();
        let mut payload: Vec<u8> = sm.short_message().as_ref().to_vec();
        let mut sar = (None, None, None);
        let mut receipted = None;
        let mut state = None;
        for tlv in sm.tlvs() {
            match tlv.value() {
                Some(TlvValue::MessagePayload(p)) if payload.is_empty() => {
                    payload = p.value.as_ref().to_vec()
                }
                Some(TlvValue::SarMsgRefNum(r)) => sar.0 = Some(*r),
                Some(TlvValue::SarTotalSegments(t)) => sar.1 = Some(*t),
                Some(TlvValue::SarSegmentSeqnum(s)) => sar.2 = Some(*s),
                Some(TlvValue::ReceiptedMessageId(id)) => {
                    receipted = Some(
                        String::from_utf8_lossy(id.as_ref())
                            .trim_end_matches('\0')
                            .to_owned(),
                    )
                }
                Some(TlvValue::MessageState(s)) => state = Some(u8::from(*s)),
                _ => {}
            }
        }
        let dc: u8 = sm.data_coding.into();
        // Delivery receipt (message type bits = MC delivery receipt).
        if esm & 0x3C == 0x04 {
            let body = String::from_utf8_lossy(&payload).into_owned();
            let id = receipted
                .or_else(|| receipt_field(&body, "id:"))
                .unwrap_or_default();
            let stat = receipt_field(&body, "stat:").unwrap_or_default();
            let delivered = state == Some(2) || stat.eq_ignore_ascii_case("DELIVRD");
            let carrier_id = format!("{}:{id}", self.name);
            return match relay.receipt(&carrier_id, delivered, &stat).await {
                Ok(true) => CommandStatus::EsmeRok,
                Ok(false) => {
                    // A receipt can overtake our own note of the submit (an SMSC may
                    // answer submit_sm and send the receipt back to back): retry it
                    // for a couple of seconds instead of dropping it.
                    let relay = relay.clone();
                    tokio::spawn(async move {
                        for _ in 0..RECEIPT_RETRIES {
                            tokio::time::sleep(RECEIPT_RETRY_EVERY).await;
                            if matches!(
                                relay.receipt(&carrier_id, delivered, &stat).await,
                                Ok(true)
                            ) {
                                break;
                            }
                        }
                    });
                    CommandStatus::EsmeRok
                }
                Err(_) => CommandStatus::EsmeRxTAppn,
            };
        }
        let (udh_concat, body) = text::split_udh(esm & 0x40 != 0, &payload);
        let concat = udh_concat.or(match sar {
            (Some(r), Some(t), Some(s)) if t >= 1 && s >= 1 && s <= t => Some(text::Concat {
                reference: r,
                total: t,
                seq: s,
            }),
            _ => None,
        });
        let addr = |a: &COctetString<1, 21>, ton: Ton| {
            let s = String::from_utf8_lossy(a.as_ref())
                .trim_end_matches('\0')
                .to_owned();
            if ton == Ton::International && !s.starts_with('+') {
                E164::parse(&format!("+{s}"))
            } else {
                E164::parse_lenient(&s, Some(self.cfg.country))
            }
        };
        let (Ok(from), Ok(to)) = (
            addr(&sm.source_addr, sm.source_addr_ton),
            addr(&sm.destination_addr, sm.dest_addr_ton),
        ) else {
            return CommandStatus::EsmeRinvsrcadr;
        };
        let mut fp = Sha256::new();
        fp.update(sm.source_addr.as_ref());
        fp.update([0]);
        fp.update(sm.destination_addr.as_ref());
        fp.update([esm, dc]);
        fp.update(&payload);
        let inbound = Inbound {
            carrier: self.name.clone(),
            carrier_id: None,
            fingerprint: Some(hex::encode(&fp.finalize()[..16])),
            from,
            to,
            text: text::decode(dc, body),
            concat,
        };
        match relay.ingest(inbound).await {
            Ok(_) => CommandStatus::EsmeRok,
            Err(e) => {
                tracing::warn!(link = %self.name, error = %e, "smpp: deliver_sm not accepted (temporary error; the SMSC retries)");
                CommandStatus::EsmeRxTAppn
            }
        }
    }

    fn pick(&self) -> Option<Arc<Bound>> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|k| {
            self.sessions[(start + k) % n]
                .read()
                .ok()
                .and_then(|g| g.clone())
        })
    }
}

/// Runs rusmppc's connection future, polling it at least every millisecond.
/// rusmppc 0.4 leaves its request loop after five queued requests without waking
/// itself again, so under load (more than five requests queued at once) a session
/// stalls until some other event arrives; the tick bounds that stall to 1 ms.
async fn drive(connection: impl std::future::Future<Output = ()>) {
    let mut connection = std::pin::pin!(connection);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut connection => return,
            _ = tick.tick() => {}
        }
    }
}

fn cs<const N: usize>(s: &str) -> Result<COctetString<1, N>, String> {
    COctetString::from_str(s).map_err(|e| format!("{e:?}"))
}

/// How often, and how many times, a receipt for a not-yet-known id is retried.
const RECEIPT_RETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
const RECEIPT_RETRIES: usize = 30;

fn receipt_field(body: &str, key: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let at = lower.find(key)? + key.len();
    Some(
        body[at..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned(),
    )
}

/// The `submit_sm` PDUs for one text (see the module docs for the split rules).
pub fn submit_pdus(
    job_id: &str,
    from: &E164,
    to: &E164,
    body: &str,
) -> Result<Vec<SubmitSm>, String> {
    let base = SubmitSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(cs(from.digits())?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(cs(to.digits())?)
        .registered_delivery(RegisteredDelivery::new(
            MCDeliveryReceipt::McDeliveryReceiptRequestedWhereFinalDeliveryOutcomeIsSuccessOrFailure,
            Default::default(),
            Default::default(),
            0,
        ))
        .short_message(OctetString::empty())
        .build();
    let digest = Sha256::digest(job_id.as_bytes());
    let reference = u16::from_be_bytes([digest[0], digest[1]]);
    let gsm: Option<usize> = body.chars().map(text::gsm_septets).sum();
    let parts = match gsm {
        // Unpacked septets: 160 alone; 153 + a 6-byte UDH (7 septets) per part.
        Some(septets) => {
            let max = if septets <= 160 { 160 } else { 159 };
            base.multipart(body)
                .max_short_message_size(max)
                .reference_u16(reference)
                .build()
                .map_err(|e| format!("{e:?}"))?
        }
        None => base
            .multipart(body)
            .encoder(Ucs2::new())
            .max_short_message_size(140)
            .reference_u16(reference)
            .build()
            .map_err(|e| format!("{e:?}"))?,
    };
    Ok(parts)
}

fn classify(e: rusmppc::error::Error) -> SendError {
    use rusmppc::error::Error as E;
    match e {
        E::UnexpectedResponse { response } => {
            let st = response.status();
            let transient = matches!(
                st,
                CommandStatus::EsmeRthrottled
                    | CommandStatus::EsmeRmsgqful
                    | CommandStatus::EsmeRsyserr
                    | CommandStatus::EsmeRxTAppn
                    | CommandStatus::EsmeRinvbndsts
            );
            let why = format!("submit_sm_resp {st:?}");
            if transient {
                SendError::Transient(why)
            } else {
                SendError::Permanent(why)
            }
        }
        other => SendError::Transient(other.to_string()),
    }
}

#[async_trait]
impl Carrier for SmppLink {
    async fn send(
        &self,
        job_id: &str,
        from: &E164,
        to: &E164,
        body: &str,
    ) -> Result<Vec<String>, SendError> {
        let pdus = submit_pdus(job_id, from, to, body).map_err(SendError::Permanent)?;
        let Some(bound) = self.pick() else {
            return Err(SendError::Transient(format!(
                "{}: no bound session",
                self.name
            )));
        };
        let mut ids = Vec::with_capacity(pdus.len());
        for pdu in pdus {
            self.rate.until_ready().await;
            let _permit = bound
                .window
                .acquire()
                .await
                .map_err(|_| SendError::Transient("session closed".into()))?;
            let resp = bound.client.submit_sm(pdu).await.map_err(classify)?;
            ids.push(
                String::from_utf8_lossy(resp.message_id().as_ref())
                    .trim_end_matches('\0')
                    .to_owned(),
            );
        }
        Ok(ids)
    }
}
