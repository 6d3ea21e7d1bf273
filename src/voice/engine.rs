//! The SIP engine: one task per engine thread that owns its transaction layer,
//! its live calls (those whose Call-ID maps to its shard, see [`super::shard`])
//! and their timers. Transports hand it [`Inbound`] messages; route lookups run as
//! separate tasks and come back as [`Internal`] events, so the engine never waits
//! on the store. Call logic (the B2BUA) is in [`super::call`].
//!
//! Per message: source ACL (trunks) → parse → validate → RFC 3261 checks (483,
//! 420, 415) → transaction layer → call handler. Malformed requests from trusted
//! sources get the `sip` crate's typed 4xx/5xx; nothing here panics on input.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::DefaultKeyedRateLimiter;
use maskline_sip::transaction::{
    Destination, RequestDisposition, RequestInfo, ResponseDisposition, ResponseInfo,
    TransactionEvent, TransactionId, TransactionLayer, Transport, TxMap,
};
use maskline_sip::{HeaderName, Limits, Message, MessageBuilder, Method};
use tokio::sync::{mpsc, watch};

use super::call::{Call, CallId, TxRole};
use super::router::{CallRouter, Decision};
use super::shard::{Owner, Shards};
use super::transport::{Inbound, Transports};
use super::trunk::Trunk;
use super::udp_batch::{RecvBatch, SendBatch, RECV_BATCH};
use super::VoiceSettings;
use crate::events::CallRecord;
use crate::media::MediaRelay;

/// The engine's maps (keys off the wire: seeded foldhash, cheaper than SipHash).
pub(super) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Methods we answer or relay (the `Allow` header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO";

/// Events from tasks the engine started.
#[derive(Debug)]
pub enum Internal {
    /// A route lookup finished.
    Decided {
        /// The call.
        call: CallId,
        /// What to do.
        decision: Decision,
    },
    /// A media event of a call whose events are forwarded (IVR calls).
    Media {
        /// The call.
        call: CallId,
        /// The event.
        event: crate::media::MediaEvent,
    },
    /// An extension lookup came back.
    Extension {
        /// The call.
        call: CallId,
        /// Where the extension goes.
        result: Result<crate::bindings::ExtensionRoute, crate::store::StoreError>,
    },
}

/// Call timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// Ringing too long.
    NoAnswer,
    /// Answered too long.
    MaxDuration,
    /// A cancelled call whose callee never sent a final response.
    CancelGuard,
    /// The IVR's digit/prompt timer, by generation (older ones are stale).
    Ivr(u32),
}

/// Everything the engine owns.
pub struct Engine {
    pub(super) settings: Arc<VoiceSettings>,
    pub(super) trunks: Arc<Vec<Trunk>>,
    pub(super) transports: Transports,
    pub(super) layer: TransactionLayer,
    pub(super) calls: Map<CallId, Call>,
    /// The call and role of each transaction the engine started or answered (a
    /// ring by id: a busy relay keeps hundreds of thousands while they linger).
    pub(super) by_tx: TxMap<(CallId, TxRole)>,
    pub(super) by_callid: Map<String, CallId>,
    timers: BinaryHeap<Reverse<(Instant, CallId, TimerKind)>>,
    pub(super) internal_tx: mpsc::UnboundedSender<Internal>,
    pub(super) router: CallRouter,
    pub(super) media: MediaRelay,
    pub(super) records: mpsc::UnboundedSender<(CallRecord, Option<crate::numbers::E164>)>,
    pub(super) caller_limit: Arc<DefaultKeyedRateLimiter<u64>>,
    pub(super) draining: bool,
    /// This engine among the engine threads.
    pub(super) shards: Shards,
    next_call: u64,
    /// `maskline_live_calls`, looked up once (a lookup hashes the name).
    live_calls: metrics::Gauge,
    /// `maskline_sip_requests_total` by method ([`METHOD_LABELS`]), looked up once.
    requests: [metrics::Counter; METHOD_LABELS.len()],
    /// Messages to send at the end of this pass (see [`Engine::flush`]).
    pub(super) outbox: Vec<(Destination, Arc<[u8]>)>,
    send_batch: SendBatch,
    /// When housekeeping last ran, and this thread's CPU time then (the engine's
    /// load, which decides whether shard 0 spreads new calls).
    cpu_seen: (Instant, Duration),
    /// Messages and events handled so far (counted where they are read:
    /// `read_udp`, `on_inbound`, `on_internal`), and the count at the last
    /// housekeeping (the engine's message rate).
    handled: (u64, u64),
    /// The last housekeeping measured at least [`COALESCE_RATE`] messages/s: every
    /// pass that found work is followed by a [`COALESCE`] sleep, even one that
    /// found a single message.
    busy: bool,
    /// `maskline_sip_transactions{engine}`.
    transactions: metrics::Gauge,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

/// A received message borrowed from the receive buffer.
struct Received<'b> {
    data: &'b [u8],
    source: SocketAddr,
    transport: Transport,
}

/// Most datagrams read from the primary UDP socket per wake-up.
const UDP_BATCH: usize = 64;

/// After a loop turn that found several messages waiting the engine sleeps this
/// long before it looks again, so one wake-up serves every datagram and reply
/// that arrived meanwhile (a context switch per sleep under load instead of one
/// per message; the same trade as the media workers' `COALESCE`). The runtime
/// runs before the wait (a new call's Redis request goes out) and after it (the
/// reply is read and the lookup finishes), so a route lookup costs one wait:
/// at 1,000 calls/s post-dial delay p99 ≤ 2.5 ms with 1 ms, as with 500 µs and
/// one yield, for 7–8 % less CPU per call at 1,000 and 2,000 calls/s (fewer
/// passes: 1.6 context switches and 6.8 system calls per call instead of 2.1
/// and 7.8; loadtest/README.md). An idle engine blocks until the next message.
const COALESCE: Duration = Duration::from_micros(1000);
/// Messages found waiting in one pass from which the engine counts as loaded.
const COALESCE_FROM: usize = 2;
/// Messages (and events) per second from which every pass is followed by a
/// [`COALESCE`] sleep: at 4,000/s one sleep gathers about two, so it replaces at
/// least one wake-up. Below `COALESCE_FROM` per pass but above this rate (about
/// 300 calls/s and up, 14 messages a call) an engine otherwise woke once per
/// message: at 1,000 calls/s it used half as much CPU again per call as at 2,000.
const COALESCE_RATE: f64 = 4_000.0;
const HOUSEKEEPING: Duration = Duration::from_millis(500);

impl Engine {
    /// A new engine.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Arc<VoiceSettings>,
        trunks: Arc<Vec<Trunk>>,
        transports: Transports,
        router: CallRouter,
        media: MediaRelay,
        records: mpsc::UnboundedSender<(CallRecord, Option<crate::numbers::E164>)>,
        internal_tx: mpsc::UnboundedSender<Internal>,
        caller_limit: Arc<DefaultKeyedRateLimiter<u64>>,
        shards: Shards,
    ) -> Self {
        let shards_index = shards.index;
        let mut layer = TransactionLayer::new(Default::default());
        layer.set_max_transactions(settings.max_transactions);
        Self {
            settings,
            trunks,
            transports,
            layer,
            calls: Map::default(),
            by_tx: TxMap::default(),
            by_callid: Map::default(),
            timers: BinaryHeap::new(),
            internal_tx,
            router,
            media,
            records,
            caller_limit,
            shards,
            draining: false,
            next_call: 0,
            live_calls: metrics::gauge!("maskline_live_calls"),
            requests: METHOD_LABELS
                .map(|m| metrics::counter!("maskline_sip_requests_total", "method" => m)),
            outbox: Vec::new(),
            send_batch: SendBatch::default(),
            cpu_seen: (Instant::now(), thread_cpu()),
            handled: (0, 0),
            busy: false,
            transactions: metrics::gauge!(
                "maskline_sip_transactions",
                "engine" => shards_index.to_string()
            ),
        }
    }

    /// Runs until `stop` turns true and the live calls have drained.
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
        mut stop: watch::Receiver<bool>,
    ) {
        // Housekeeping and the drain deadline are due on the clock, not as
        // branches of the wait below: a saturated engine always finds work queued
        // and never waits, and its housekeeping (the load measurement that spreads
        // new calls over the engines) must run then most of all.
        let mut housekeeping_at = Instant::now() + HOUSEKEEPING;
        let mut drain_deadline: Option<Instant> = None;
        // The primary UDP socket is read here, in the engine's own task: no hop
        // through a channel (and no thread wake-up) per datagram.
        let udp0 = self.transports.primary_udp();
        let mut batch = RecvBatch::default();
        loop {
            // Under load: take everything already queued, then sleep COALESCE and
            // yield (the runtime polls its sockets: Redis replies, records) before
            // looking again, instead of waking once per message.
            // Shard 0 reads the listen socket; another shard only while new calls
            // are spread (else every message it read would be handed to shard 0).
            let reading =
                self.shards.index == 0 || self.transports.has_own_udp() || self.shards.spreading();
            let udp_now = udp0.as_deref().filter(|_| reading);
            let taken = self.take_queued(udp_now, &mut batch, &mut inbound, &mut internal);
            let mut worked = taken > 0;
            let now = Instant::now();
            if now >= housekeeping_at {
                self.housekeeping();
                housekeeping_at = now + HOUSEKEEPING;
                worked = true;
            }
            if drain_deadline.is_some_and(|d| d <= now) {
                self.end_all("shutdown");
                drain_deadline = None;
                worked = true;
            }
            if worked {
                self.flush();
                if self.drained() {
                    break;
                }
                // Only under load (several messages were waiting, or the rate is
                // high): a lone message at a low rate means the next one is far
                // off, and sleeping would only add a wake-up.
                if taken >= COALESCE_FROM || (taken > 0 && self.busy) {
                    // The runtime first sends what this pass started (the Redis
                    // request of a route lookup), so the reply arrives during
                    // the wait. After it, one yield reads the reply and a second
                    // lets the woken lookup finish (tasks woken by I/O may run
                    // after this one): the next pass sees its result, and a new
                    // call costs one wait, not three.
                    tokio::task::yield_now().await;
                    std::thread::sleep(COALESCE);
                    tokio::task::yield_now().await;
                }
                tokio::task::yield_now().await;
                continue;
            }
            let next = [
                self.layer.poll_timeout(),
                self.timers.peek().map(|Reverse((at, _, _))| *at),
                drain_deadline,
                Some(housekeeping_at),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let udp_ready = async {
                match udp_now {
                    Some(s) => s.readable().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                r = udp_ready => {
                    if r.is_ok() {
                        if let Some(sock) = udp_now {
                            self.read_udp(sock, &mut batch);
                        }
                    }
                }
                m = inbound.recv() => match m {
                    Some(m) => self.on_inbound(m),
                    None => break,
                },
                Some(ev) = internal.recv() => self.on_internal(ev),
                _ = sleep => {
                    let now = Instant::now();
                    self.layer.handle_timeout(now);
                    self.fire_timers(now);
                }
                r = stop.changed(), if !self.draining => {
                    if r.is_err() || *stop.borrow() {
                        self.draining = true;
                        drain_deadline = Some(Instant::now() + self.settings.drain_timeout);
                        tracing::info!(live_calls = self.calls.len(), "sip: draining: new calls get 503");
                    }
                }
            }
            self.flush();
            if self.drained() {
                break;
            }
        }
        self.flush();
    }

    /// Handles what is already queued, without waiting: datagrams on the primary
    /// UDP socket (at most [`UDP_BATCH`]), inbound messages of the other
    /// transports, internal events and due timers. Returns how many it handled.
    fn take_queued(
        &mut self,
        udp0: Option<&tokio::net::UdpSocket>,
        batch: &mut RecvBatch,
        inbound: &mut mpsc::Receiver<Inbound>,
        internal: &mut mpsc::UnboundedReceiver<Internal>,
    ) -> usize {
        let mut n = 0;
        if let Some(sock) = udp0 {
            n += self.read_udp(sock, batch);
        }
        while let Ok(m) = inbound.try_recv() {
            self.on_inbound(m);
            n += 1;
        }
        while let Ok(ev) = internal.try_recv() {
            self.on_internal(ev);
            n += 1;
        }
        let now = Instant::now();
        if self.layer.poll_timeout().is_some_and(|at| at <= now) {
            self.layer.handle_timeout(now);
        }
        self.fire_timers(now);
        n
    }

    /// Reads and dispatches the datagrams queued on `sock`, [`RECV_BATCH`] per
    /// system call, at most [`UDP_BATCH`]; returns how many.
    fn read_udp(&mut self, sock: &tokio::net::UdpSocket, batch: &mut RecvBatch) -> usize {
        let mut n = 0;
        while n < UDP_BATCH {
            let got = batch.recv(sock);
            for i in 0..got {
                if let Some((data, src)) = batch.get(i) {
                    self.dispatch(data, src, Transport::Udp);
                }
            }
            n += got;
            if got < RECV_BATCH {
                break;
            }
        }
        self.handled.0 += n as u64;
        n
    }

    /// Queues a message; [`Engine::flush`] sends every queued message of a pass
    /// together (one `sendmmsg` per UDP socket).
    pub(super) fn send(&mut self, dest: Destination, payload: Arc<[u8]>) {
        self.outbox.push((dest, payload));
    }

    /// Draining and nothing left in any shard. Every shard keeps running until
    /// all are done: while one still has calls, new INVITEs of the others' Call-IDs
    /// must still be answered 503.
    fn drained(&self) -> bool {
        self.draining && self.calls.is_empty() && self.shards.others_live() == 0
    }

    /// Sends queued transmissions and handles transaction events.
    pub(super) fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.layer.poll_transmit() {
                progressed = true;
                self.outbox.push((t.destination, t.payload));
            }
            while let Some(ev) = self.layer.poll_event() {
                progressed = true;
                self.on_tx_event(ev);
            }
            if !progressed {
                break;
            }
        }
        self.transports
            .send_all(&mut self.send_batch, &mut self.outbox);
        let total = self.shards.set_live(self.calls.len());
        self.live_calls.set(total as f64);
    }

    pub(super) fn new_call_id(&mut self) -> CallId {
        self.next_call += 1;
        CallId(self.next_call)
    }

    pub(super) fn schedule(&mut self, at: Instant, call: CallId, kind: TimerKind) {
        self.timers.push(Reverse((at, call, kind)));
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, call, kind))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.on_call_timer(call, kind);
        }
    }

    fn housekeeping(&mut self) {
        self.caller_limit.retain_recent();
        self.transactions.set(self.layer.len() as f64);
        let now = Instant::now();
        let cpu = thread_cpu();
        let (at, was) = std::mem::replace(&mut self.cpu_seen, (now, cpu));
        let wall = now.duration_since(at).as_secs_f64();
        if wall > 0.0 {
            self.shards
                .tick(cpu.saturating_sub(was).as_secs_f64() / wall, now);
            let (total, seen) = self.handled;
            self.busy = (total - seen) as f64 / wall >= COALESCE_RATE;
            self.handled.1 = total;
        }
        let timed_out: Vec<CallId> = self
            .calls
            .iter_mut()
            .filter_map(|(id, c)| {
                let m = c.media.as_mut()?;
                match m.events().try_recv() {
                    Ok(crate::media::MediaEvent::Timeout) => Some(*id),
                    Ok(_) | Err(_) => None,
                }
            })
            .collect();
        for id in timed_out {
            metrics::counter!("maskline_media_timeouts_total").increment(1);
            self.hang_up_both(id, "media_timeout");
        }
    }

    fn on_internal(&mut self, ev: Internal) {
        self.handled.0 += 1;
        match ev {
            Internal::Decided { call, decision } => self.on_decided(call, decision),
            Internal::Media { call, event } => self.on_ivr_media(call, event),
            Internal::Extension { call, result } => self.on_extension(call, result),
        }
    }

    /// The trunk an address belongs to (its sources, or its gateway for responses).
    fn trunk_of(&self, ip: std::net::IpAddr, response: bool) -> Option<usize> {
        self.trunks
            .iter()
            .position(|t| t.trusts(ip) || (response && t.gateway.ip() == ip))
    }

    /// A message from a transport or another shard: handled here if its call is
    /// this shard's, else handed to its shard.
    fn on_inbound(&mut self, m: Inbound) {
        self.handled.0 += 1;
        let owner = self.owner(&m.data);
        if owner == self.shards.index {
            self.on_datagram(&m.data, m.source, m.transport);
        } else {
            self.shards.forward_owned(owner, m);
        }
    }

    /// A datagram read here: handled here if its call is this shard's.
    fn dispatch(&mut self, data: &[u8], source: SocketAddr, transport: Transport) {
        let owner = self.owner(data);
        if owner == self.shards.index {
            self.on_datagram(data, source, transport);
        } else {
            self.shards.forward(owner, data, source, transport);
        }
    }

    /// The shard that handles a message: the one it names, else shard 0, which
    /// keeps a new INVITE or gives it to another shard when the engines are loaded
    /// (and keeps whatever belongs to a call it already holds).
    fn owner(&mut self, data: &[u8]) -> usize {
        match self.shards.owner_of(data) {
            Owner::Shard(s) => s,
            Owner::Unclaimed(_) if self.shards.index != 0 => 0,
            Owner::Unclaimed(call_id) => {
                if !self.shards.spreading() || !data.starts_with(b"INVITE ") {
                    return 0;
                }
                let known =
                    std::str::from_utf8(call_id).is_ok_and(|c| self.by_callid.contains_key(c));
                if known {
                    return 0;
                }
                self.shards.place(call_id, Instant::now())
            }
        }
    }

    /// One received message (a datagram or one framed stream message).
    fn on_datagram(&mut self, data: &[u8], source: SocketAddr, transport: Transport) {
        let m = Received {
            data,
            source,
            transport,
        };
        let received = Instant::now();
        let is_response = m.data.starts_with(b"SIP/");
        let Some(trunk) = self.trunk_of(m.source.ip(), is_response) else {
            metrics::counter!("maskline_sip_untrusted_total").increment(1);
            tracing::debug!(source = %m.source.ip(), "sip: message from an address on no trunk");
            if !is_response && self.settings.reject_untrusted {
                if let Ok(msg) = Message::parse(m.data) {
                    if msg.method() != Some(Method::Ack) {
                        self.stateless(&msg, m.source, m.transport, 403, "Forbidden", &[]);
                    }
                }
            }
            return;
        };
        let msg = match Message::parse_with(m.data, &Limits::DEFAULT) {
            Ok(msg) => msg,
            Err(e) => {
                metrics::counter!("maskline_sip_malformed_total").increment(1);
                if !is_response {
                    if let Ok(resp) = MessageBuilder::error_response_to_datagram(m.data, &e) {
                        self.reply(&m, resp);
                    }
                }
                return;
            }
        };
        if let Err(e) = msg.validate() {
            metrics::counter!("maskline_sip_malformed_total").increment(1);
            if msg.is_request() && msg.method() != Some(Method::Ack) {
                if let Ok(resp) = MessageBuilder::error_response(&msg, &e) {
                    self.reply(&m, resp);
                }
            }
            return;
        }
        if msg.is_request() {
            self.on_request(&msg, m.data, m.source, m.transport, trunk, received);
        } else {
            self.on_response(&msg);
        }
    }

    /// Sends `bytes` back to where `m` came from (stateless error answers).
    fn reply(&mut self, m: &Received<'_>, bytes: Vec<u8>) {
        self.send(
            Destination {
                transport: m.transport,
                addr: m.source,
            },
            Arc::from(bytes),
        );
    }

    /// Answers a request outside any transaction (ACL refusals, overload).
    pub(super) fn stateless(
        &mut self,
        msg: &Message<'_>,
        to: SocketAddr,
        transport: Transport,
        status: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = maskline_sip::new_tag();
        if let Ok(mut b) = MessageBuilder::response_to(msg, status, reason, Some(&tag)) {
            for (n, v) in extra {
                b = b.header(n, v);
            }
            if let Ok(bytes) = b.build() {
                self.send(
                    Destination {
                        transport,
                        addr: to,
                    },
                    Arc::from(bytes),
                );
            }
        }
    }

    fn on_request(
        &mut self,
        msg: &Message<'_>,
        raw: &[u8],
        source: SocketAddr,
        transport: Transport,
        trunk: usize,
        received: Instant,
    ) {
        let Some(method) = msg.method() else { return };
        if let Some(c) = self.requests.get(method_index(method)) {
            c.increment(1);
        }
        let is_ack = method == Method::Ack;
        if !is_ack && method != Method::Cancel {
            if matches!(msg.max_forwards(), Ok(Some(0))) {
                self.stateless(msg, source, transport, 483, "Too Many Hops", &[]);
                return;
            }
            if let Some(req) = msg.get(HeaderName::Require) {
                let tags: Vec<&str> = req
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect();
                if !tags.is_empty() {
                    let unsupported = tags.join(", ");
                    self.stateless(
                        msg,
                        source,
                        transport,
                        420,
                        "Bad Extension",
                        &[("Unsupported", &unsupported)],
                    );
                    return;
                }
            }
        }
        let info = match RequestInfo::from_message(msg) {
            Ok(i) => i,
            Err(_) => return,
        };
        let dest = Destination {
            transport,
            addr: source,
        };
        let now = Instant::now();
        match self.layer.handle_request(now, &info, dest) {
            RequestDisposition::Absorbed(_) => {}
            RequestDisposition::Overloaded => {
                metrics::counter!("maskline_sip_transactions_full_total").increment(1);
                self.stateless(
                    msg,
                    source,
                    transport,
                    503,
                    "Service Unavailable",
                    &[("Retry-After", "5")],
                );
            }
            RequestDisposition::Ack { .. } => self.on_ack(msg),
            RequestDisposition::Cancel { id, invite } => {
                let status = if invite.is_some() { 200 } else { 481 };
                self.respond(id, msg, status, None, &[]);
                if let Some(inv) = invite {
                    self.on_cancel(inv);
                }
            }
            RequestDisposition::New(tx) => {
                let in_dialog = info.to_tag.is_some();
                match method {
                    Method::Invite if !in_dialog => {
                        self.on_new_invite(tx, msg, raw, dest, trunk, received);
                    }
                    Method::Options if !in_dialog => {
                        self.respond(
                            tx,
                            msg,
                            200,
                            None,
                            &[("Allow", ALLOW), ("Accept", "application/sdp")],
                        );
                    }
                    _ if in_dialog => self.on_in_dialog(tx, msg, raw),
                    Method::Bye | Method::Update | Method::Info | Method::Prack => {
                        self.respond(tx, msg, 481, None, &[]);
                    }
                    _ => self.respond(tx, msg, 405, None, &[("Allow", ALLOW)]),
                }
            }
        }
    }

    /// Answers server transaction `tx` (request `req`) with `status`.
    pub(super) fn respond(
        &mut self,
        tx: TransactionId,
        req: &Message<'_>,
        status: u16,
        to_tag: Option<&str>,
        extra: &[(&str, &str)],
    ) {
        let tag;
        let to_tag = match to_tag {
            Some(t) => Some(t),
            None if status > 100 && req.to().ok().and_then(|t| t.tag()).is_none() => {
                tag = maskline_sip::new_tag();
                Some(tag.as_str())
            }
            None => None,
        };
        let Ok(mut b) = MessageBuilder::response_to(req, status, reason_phrase(status), to_tag)
        else {
            return;
        };
        for (n, v) in extra {
            b = b.header(n, v);
        }
        if let Ok(bytes) = b.build() {
            let _ = self
                .layer
                .send_response(Instant::now(), tx, status, Arc::from(bytes));
        }
    }

    fn on_response(&mut self, msg: &Message<'_>) {
        let Ok(info) = ResponseInfo::from_message(msg) else {
            return;
        };
        match self.layer.handle_response(Instant::now(), &info) {
            ResponseDisposition::Deliver(tx) => {
                let Some((call, role)) = self.by_tx.get(&tx).cloned() else {
                    return;
                };
                self.on_call_response(call, role, msg);
            }
            ResponseDisposition::Absorbed(_) => {}
            ResponseDisposition::Stray => {
                // A 2xx retransmitted after its transaction ended: re-ACK it.
                if info.status >= 200 && info.status < 300 && info.cseq_method == "INVITE" {
                    if let Ok(cid) = msg.call_id() {
                        if let Some(&call) = self.by_callid.get(cid) {
                            self.resend_b_ack(call);
                        }
                    }
                }
            }
        }
    }

    fn on_tx_event(&mut self, ev: TransactionEvent) {
        match ev {
            TransactionEvent::Timeout(tx) => {
                if let Some((call, role)) = self.by_tx.get(&tx).cloned() {
                    self.on_call_tx_timeout(call, role);
                }
            }
            TransactionEvent::AckTimeout(tx) => {
                if let Some((call, TxRole::AInvite)) = self.by_tx.get(&tx).cloned() {
                    self.hang_up_both(call, "failed");
                }
            }
            TransactionEvent::TransportError(tx) => {
                if let Some((call, role)) = self.by_tx.get(&tx).cloned() {
                    self.on_call_tx_timeout(call, role);
                }
            }
            TransactionEvent::Terminated(tx) => {
                self.by_tx.remove(&tx);
            }
        }
    }

    /// Starts the route lookup of a new call (a separate task: the engine goes on).
    pub(super) fn lookup(
        &self,
        call: CallId,
        number: crate::numbers::E164,
        caller: crate::numbers::E164,
    ) {
        let router = self.router.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let decision = router
                .decide(&number, &caller, crate::bindings::now_ms())
                .await;
            let _ = tx.send(Internal::Decided { call, decision });
        });
    }
}

/// The `method` label values of `maskline_sip_requests_total`.
const METHOD_LABELS: [&str; 8] = [
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "other",
];

/// Index of a method's label in [`METHOD_LABELS`].
fn method_index(m: Method<'_>) -> usize {
    match m {
        Method::Invite => 0,
        Method::Ack => 1,
        Method::Bye => 2,
        Method::Cancel => 3,
        Method::Options => 4,
        Method::Update => 5,
        Method::Info => 6,
        _ => 7,
    }
}

/// The standard reason phrase of a status we send.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        s if s < 200 => "Progress",
        s if s < 300 => "OK",
        s if s < 400 => "Redirect",
        s if s < 500 => "Request Failure",
        s if s < 600 => "Server Failure",
        _ => "Global Failure",
    }
}

/// CPU time of the calling thread (zero if the clock cannot be read).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}
