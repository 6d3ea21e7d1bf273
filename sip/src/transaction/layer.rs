//! The transaction layer: matching messages to transactions and running
//! their timers (RFC 3261 §17.1.3, §17.2.3).
//!
//! This module owns the table of live transactions, the matching rules and
//! the timer schedule. Client transactions are matched by branch and CSeq
//! method. Server transactions are matched by branch, sent-by and method
//! (ACK and CANCEL look for the INVITE) when the branch has the
//! `z9hG4bK` cookie, and otherwise by the RFC 2543 fields (Request-URI,
//! From tag, To tag, Call-ID, CSeq number, top Via).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::tables::{Key, KeyBuf, LegacyKey, Map, TxMap};
use super::{
    ClientTransaction, Destination, RequestInfo, ResponseInfo, ServerTransaction, TransactionError,
    TransactionEvent, TransactionId, Transmit, TxEvent, TxOutput,
};
use crate::timer::TimerConfig;

/// What the TU must do with an incoming request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestDisposition {
    /// A new request: a server transaction was created for it; the TU
    /// answers through [`TransactionLayer::send_response`].
    New(TransactionId),
    /// A CANCEL: its own server transaction `id` was created (answer it
    /// with 200, or 481 if `invite` is `None`); `invite` is the INVITE
    /// server transaction it cancels (answer that one with 487).
    Cancel {
        /// The CANCEL's own server transaction.
        id: TransactionId,
        /// The INVITE server transaction it targets, if one matched.
        invite: Option<TransactionId>,
    },
    /// A retransmission, or the ACK of a non-2xx final response: handled
    /// by that transaction, nothing for the TU.
    Absorbed(TransactionId),
    /// The layer holds [`TransactionLayer::max_transactions`] transactions
    /// already: no transaction was created; the TU should answer
    /// statelessly with 503 (or drop the request).
    Overloaded,
    /// An ACK for the TU (the ACK of a 2xx is end-to-end). `invite` is the
    /// INVITE server transaction in the Accepted state it matched, if any;
    /// usually none, since that ACK carries a new branch.
    Ack {
        /// Matching INVITE server transaction, if any.
        invite: Option<TransactionId>,
    },
}

/// What the TU must do with an incoming response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseDisposition {
    /// Pass the response to the TU; it belongs to this client transaction.
    Deliver(TransactionId),
    /// A retransmission absorbed by this client transaction.
    Absorbed(TransactionId),
    /// No client transaction matches (RFC 3261 §18.1.2: normally dropped;
    /// a stray 2xx to an INVITE may be of interest to the TU).
    Stray,
}

#[derive(Debug)]
enum Machine {
    Client(ClientTransaction, Key),
    Server(ServerTransaction, ServerIndex, Option<Key>),
}

#[derive(Debug)]
enum ServerIndex {
    Branch(Key),
    Legacy,
}

#[derive(Debug)]
struct Entry {
    machine: Machine,
    destination: Destination,
    scheduled: Option<Instant>,
}

/// All live transactions of one SIP endpoint.
///
/// ```
/// use std::{sync::Arc, time::{Duration, Instant}};
/// use maskline_sip::transaction::*;
///
/// let mut layer = TransactionLayer::new(Default::default());
/// let t0 = Instant::now();
/// let dest = Destination { transport: Transport::Udp, addr: "192.0.2.1:5060".parse().unwrap() };
/// let req = RequestInfo {
///     method: "OPTIONS".into(),
///     branch: Some("z9hG4bK1".into()),
///     ..Default::default()
/// };
/// let id = layer.send_request(t0, &req, Arc::from(&b"OPTIONS ..."[..]), dest).unwrap();
/// assert_eq!(layer.poll_transmit().unwrap().transaction, id);
/// // Nothing came back: timer E retransmits after T1.
/// let t1 = layer.poll_timeout().unwrap();
/// assert_eq!(t1, t0 + Duration::from_millis(500));
/// layer.handle_timeout(t1);
/// assert!(layer.poll_transmit().is_some());
/// let ok = ResponseInfo { status: 200, branch: Some("z9hG4bK1".into()),
///                         cseq_method: "OPTIONS".into(), ..Default::default() };
/// assert_eq!(layer.handle_response(t1, &ok), ResponseDisposition::Deliver(id));
/// ```
#[derive(Debug)]
pub struct TransactionLayer {
    timers: TimerConfig,
    next_id: u64,
    entries: TxMap<Box<Entry>>,
    clients: Map<Key, TransactionId>,
    servers: Map<Key, TransactionId>,
    legacy: Vec<(LegacyKey, TransactionId)>,
    acks: Map<Key, TransactionId>,
    scratch: KeyBuf,
    max_transactions: usize,
    schedule: BTreeSet<(Instant, TransactionId)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
}

impl TransactionLayer {
    /// Default cap on live transactions.
    pub const DEFAULT_MAX_TRANSACTIONS: usize = 100_000;

    /// The cap on live transactions (each costs memory for up to 64*T1).
    pub fn max_transactions(&self) -> usize {
        self.max_transactions
    }

    /// Change the cap on live transactions. Past it, new incoming requests
    /// get [`RequestDisposition::Overloaded`] and new outgoing ones
    /// [`TransactionError::Overloaded`]; existing transactions carry on.
    pub fn set_max_transactions(&mut self, max: usize) {
        self.max_transactions = max;
    }

    /// An empty layer using `timers`.
    pub fn new(timers: TimerConfig) -> Self {
        TransactionLayer {
            timers,
            next_id: 0,
            entries: TxMap::default(),
            clients: Map::default(),
            servers: Map::default(),
            legacy: Vec::new(),
            acks: Map::default(),
            scratch: KeyBuf::default(),
            max_transactions: Self::DEFAULT_MAX_TRANSACTIONS,
            schedule: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// State of a client transaction, if it is live.
    pub fn client_state(&self, id: TransactionId) -> Option<super::ClientState> {
        match self.entries.get(&id).map(|e| &e.machine) {
            Some(Machine::Client(c, _)) => Some(c.state()),
            _ => None,
        }
    }

    /// State of a server transaction, if it is live.
    pub fn server_state(&self, id: TransactionId) -> Option<super::ServerState> {
        match self.entries.get(&id).map(|e| &e.machine) {
            Some(Machine::Server(s, ..)) => Some(s.state()),
            _ => None,
        }
    }

    /// Start a client transaction for an outgoing request (any method but
    /// ACK) and queue its transmission to `destination`.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: &RequestInfo<'_>,
        payload: Arc<[u8]>,
        destination: Destination,
    ) -> Result<TransactionId, TransactionError> {
        if request.method == "ACK" {
            return Err(TransactionError::AckRequest);
        }
        if !request.has_rfc3261_branch() {
            return Err(TransactionError::MissingBranch);
        }
        let key = self.scratch.client(request.branch, request.method);
        if self.clients.contains_key(key) {
            return Err(TransactionError::DuplicateBranch);
        }
        if self.entries.len() >= self.max_transactions {
            return Err(TransactionError::Overloaded);
        }
        let key = Key::from(key);
        let tx = ClientTransaction::new(
            now,
            request,
            payload,
            destination.transport.is_reliable(),
            self.timers,
        );
        let id = self.alloc_id();
        self.clients.insert(key.clone(), id);
        self.insert(id, Machine::Client(tx, key), destination);
        Ok(id)
    }

    /// Match an incoming response to its client transaction.
    pub fn handle_response(
        &mut self,
        now: Instant,
        response: &ResponseInfo<'_>,
    ) -> ResponseDisposition {
        let key = self.scratch.client(response.branch, response.cseq_method);
        let Some(&id) = self.clients.get(key) else {
            return ResponseDisposition::Stray;
        };
        let deliver = match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::Client(c, _)) => c.handle_response(now, response),
            _ => return ResponseDisposition::Stray,
        };
        self.sync(id);
        if deliver {
            ResponseDisposition::Deliver(id)
        } else {
            ResponseDisposition::Absorbed(id)
        }
    }

    /// Match an incoming request to a server transaction, creating one for
    /// a new request. `source` is where responses go (the caller applies
    /// RFC 3261 §18.2.2 / RFC 3581 to pick it).
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: &RequestInfo<'_>,
        source: Destination,
    ) -> RequestDisposition {
        let is_ack = request.method == "ACK";
        // ACK matches the INVITE; everything else matches its own method.
        let own_method = if is_ack { "INVITE" } else { request.method };
        if let Some(id) = self.find_server(request, own_method, is_ack) {
            let deliver = match self.entries.get_mut(&id).map(|e| &mut e.machine) {
                Some(Machine::Server(s, ..)) => s.handle_request(now, is_ack),
                _ => false,
            };
            self.sync(id);
            return match (is_ack, deliver) {
                (true, true) => RequestDisposition::Ack { invite: Some(id) },
                _ => RequestDisposition::Absorbed(id),
            };
        }
        if is_ack {
            return self.handle_ack_with_new_branch(now, request);
        }
        if self.entries.len() >= self.max_transactions {
            return RequestDisposition::Overloaded;
        }
        let invite = if request.method == "CANCEL" {
            self.find_server(request, "INVITE", true)
        } else {
            None
        };
        let id = self.alloc_id();
        let tx = ServerTransaction::new(
            request.method == "INVITE",
            source.transport.is_reliable(),
            self.timers,
        );
        let index = if request.has_rfc3261_branch() {
            let key = Key::from(self.scratch.server(
                request.branch,
                request.sent_by,
                request.method,
            ));
            self.servers.insert(key.clone(), id);
            ServerIndex::Branch(key)
        } else {
            self.legacy
                .push((LegacyKey::of(request, request.method), id));
            ServerIndex::Legacy
        };
        let ack_key = (request.method == "INVITE").then(|| {
            Key::from(
                self.scratch
                    .ack(request.call_id, request.from_tag, request.cseq),
            )
        });
        if let Some(k) = &ack_key {
            self.acks.insert(k.clone(), id);
        }
        self.insert(id, Machine::Server(tx, index, ack_key), source);
        if request.method == "CANCEL" {
            RequestDisposition::Cancel { id, invite }
        } else {
            RequestDisposition::New(id)
        }
    }

    /// Send a response through server transaction `id`.
    pub fn send_response(
        &mut self,
        now: Instant,
        id: TransactionId,
        status: u16,
        payload: Arc<[u8]>,
    ) -> Result<(), TransactionError> {
        if !(100..=699).contains(&status) {
            return Err(TransactionError::InvalidStatus(status));
        }
        match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::Server(s, ..)) => s
                .send_response(now, status, payload)
                .map_err(|_| TransactionError::InvalidResponse { id, status })?,
            _ => return Err(TransactionError::NoSuchTransaction(id)),
        }
        self.sync(id);
        Ok(())
    }

    /// The transport failed to send for transaction `id`.
    pub fn handle_transport_error(&mut self, id: TransactionId) -> Result<(), TransactionError> {
        match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::Client(c, _)) => c.handle_transport_error(),
            Some(Machine::Server(s, ..)) => s.handle_transport_error(),
            None => return Err(TransactionError::NoSuchTransaction(id)),
        }
        self.sync(id);
        Ok(())
    }

    /// Run every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Collect first: each due transaction runs once per call, even if
        // it reschedules itself at `now`.
        let due: Vec<(Instant, TransactionId)> = self
            .schedule
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .copied()
            .collect();
        for (at, id) in due {
            self.schedule.remove(&(at, id));
            if let Some(e) = self.entries.get_mut(&id) {
                e.scheduled = None;
                match &mut e.machine {
                    Machine::Client(c, _) => c.handle_timeout(now),
                    Machine::Server(s, ..) => s.handle_timeout(now),
                }
            }
            self.sync(id);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.schedule.first().map(|&(at, _)| at)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// An ACK that matched no transaction by branch: normally the ACK of a
    /// 2xx. If it names an INVITE server transaction (Call-ID, From tag,
    /// CSeq number), that transaction stops retransmitting its 2xx; a
    /// transaction still in Completed takes it as the ACK of its non-2xx
    /// (a peer that wrongly changed the branch).
    fn handle_ack_with_new_branch(
        &mut self,
        now: Instant,
        ack: &RequestInfo<'_>,
    ) -> RequestDisposition {
        let key = self.scratch.ack(ack.call_id, ack.from_tag, ack.cseq);
        let Some(&id) = self.acks.get(key) else {
            return RequestDisposition::Ack { invite: None };
        };
        let disposition = match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::Server(s, ..)) => match s.state() {
                super::ServerState::Accepted => {
                    s.handle_2xx_ack();
                    RequestDisposition::Ack { invite: Some(id) }
                }
                super::ServerState::Completed | super::ServerState::Confirmed => {
                    s.handle_request(now, true);
                    RequestDisposition::Absorbed(id)
                }
                _ => RequestDisposition::Ack { invite: None },
            },
            _ => RequestDisposition::Ack { invite: None },
        };
        self.sync(id);
        disposition
    }

    fn alloc_id(&mut self) -> TransactionId {
        self.next_id += 1;
        TransactionId(self.next_id)
    }

    fn insert(&mut self, id: TransactionId, machine: Machine, destination: Destination) {
        // Boxed: a machine is a few hundred bytes and a busy relay keeps hundreds
        // of thousands (UDP transactions linger up to 32 s), so the table itself
        // stays small and cache-friendly and growing it moves pointers only.
        self.entries.insert(
            id,
            Box::new(Entry {
                machine,
                destination,
                scheduled: None,
            }),
        );
        self.sync(id);
    }

    fn find_server(
        &mut self,
        req: &RequestInfo<'_>,
        method: &str,
        targets_invite: bool,
    ) -> Option<TransactionId> {
        if req.has_rfc3261_branch() {
            let key = self.scratch.server(req.branch, req.sent_by, method);
            return self.servers.get(key).copied();
        }
        self.legacy
            .iter()
            .find(|(k, _)| {
                if targets_invite {
                    k.targets(req)
                } else {
                    k.matches(req, method)
                }
            })
            .map(|&(_, id)| id)
    }

    /// Drain a transaction's outputs, reschedule its timer and drop it if
    /// it terminated.
    fn sync(&mut self, id: TransactionId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let mut terminated = false;
        loop {
            let out = match &mut entry.machine {
                Machine::Client(c, _) => c.poll_output(),
                Machine::Server(s, ..) => s.poll_output(),
            };
            match out {
                None => break,
                Some(TxOutput::Transmit(payload)) => self.transmits.push_back(Transmit {
                    transaction: id,
                    destination: entry.destination,
                    payload,
                }),
                Some(TxOutput::Event(ev)) => {
                    terminated |= ev == TxEvent::Terminated;
                    self.events.push_back(ev.with_id(id));
                }
            }
        }
        // Most messages leave the deadline as it was: touch the schedule (a tree
        // of every live transaction's deadline) only when it moves.
        let next = match (&entry.machine, terminated) {
            (_, true) => None,
            (Machine::Client(c, _), false) => c.poll_timeout(),
            (Machine::Server(s, ..), false) => s.poll_timeout(),
        };
        if entry.scheduled != next {
            if let Some(at) = entry.scheduled {
                self.schedule.remove(&(at, id));
            }
            if let Some(at) = next {
                self.schedule.insert((at, id));
            }
            entry.scheduled = next;
        }
        if terminated {
            if let Some(entry) = self.entries.remove(&id) {
                match entry.machine {
                    Machine::Client(_, key) => {
                        self.clients.remove(&key);
                    }
                    Machine::Server(_, index, ack_key) => {
                        match index {
                            ServerIndex::Branch(key) => {
                                self.servers.remove(&key);
                            }
                            ServerIndex::Legacy => self.legacy.retain(|&(_, i)| i != id),
                        }
                        if let Some(k) = ack_key {
                            if self.acks.get(&k) == Some(&id) {
                                self.acks.remove(&k);
                            }
                        }
                    }
                }
            }
        }
    }
}
