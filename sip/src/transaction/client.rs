//! Client transaction state machines (RFC 3261 §17.1, RFC 6026 §8.4).
//!
//! This module owns the INVITE client transaction (Calling → Proceeding →
//! Completed / Accepted → Terminated, timers A, B, D, M) and the non-INVITE
//! client transaction (Trying → Proceeding → Completed → Terminated, timers
//! E, F, K), including the ACK the INVITE transaction must send for a non-2xx
//! final response. It is a pure state machine: inputs carry `now`, outputs
//! are queued and drained with [`ClientTransaction::poll_output`].

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{earliest, RequestInfo, ResponseInfo, TxEvent, TxOutput};
use crate::timer::{TimerConfig, MIN_INTERVAL};

/// States of a client transaction. INVITE uses Calling, Proceeding,
/// Completed, Accepted and Terminated; non-INVITE uses Trying, Proceeding,
/// Completed and Terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientState {
    /// INVITE sent, no response yet.
    Calling,
    /// Non-INVITE request sent, no response yet.
    Trying,
    /// A provisional response was received.
    Proceeding,
    /// A final response (non-2xx for INVITE) was received; absorbing
    /// retransmissions.
    Completed,
    /// RFC 6026: a 2xx to the INVITE was received; further 2xx go to the TU.
    Accepted,
    /// Done.
    Terminated,
}

/// The ACK for a non-2xx response to an INVITE (RFC 3261 §17.1.1.3), written
/// but for its To header, which comes from the response: one buffer, kept
/// until the final response.
#[derive(Debug, Clone)]
struct AckBase {
    text: String,
    /// Where the To header goes in `text`.
    to_at: usize,
}

impl AckBase {
    fn new(request: &RequestInfo<'_>) -> Self {
        let mut text = String::with_capacity(256);
        for part in [
            "ACK ",
            request.request_uri,
            " SIP/2.0\r\nVia: ",
            request.top_via,
            "\r\n",
        ] {
            text.push_str(part);
        }
        for r in &request.routes {
            text.push_str("Route: ");
            text.push_str(r);
            text.push_str("\r\n");
        }
        text.push_str("Max-Forwards: 70\r\nFrom: ");
        text.push_str(request.from);
        text.push_str("\r\n");
        let to_at = text.len();
        text.push_str("Call-ID: ");
        text.push_str(request.call_id);
        text.push_str("\r\nCSeq: ");
        // Writing a number into a String cannot fail.
        let _ = write!(text, "{}", request.cseq);
        text.push_str(" ACK\r\nContent-Length: 0\r\n\r\n");
        AckBase { text, to_at }
    }

    fn build(&self, to: &str) -> Arc<[u8]> {
        let (head, tail) = self.text.split_at(self.to_at);
        let mut s = String::with_capacity(self.text.len() + to.len() + 6);
        s.push_str(head);
        s.push_str("To: ");
        s.push_str(to);
        s.push_str("\r\n");
        s.push_str(tail);
        Arc::from(s.into_bytes())
    }
}

/// One client transaction.
///
/// ```
/// use std::{sync::Arc, time::{Duration, Instant}};
/// use maskline_sip::timer::TimerConfig;
/// use maskline_sip::transaction::{ClientState, ClientTransaction, RequestInfo, ResponseInfo, TxOutput};
///
/// let t0 = Instant::now();
/// let req = RequestInfo { method: "OPTIONS".into(), ..Default::default() };
/// let bytes: Arc<[u8]> = Arc::from(&b"OPTIONS sip:x SIP/2.0\r\n\r\n"[..]);
/// let mut tx = ClientTransaction::new(t0, &req, bytes.clone(), false, TimerConfig::default());
/// assert_eq!(tx.poll_output(), Some(TxOutput::Transmit(bytes.clone())));
/// // Timer E: first retransmission after T1.
/// assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(500)));
/// let ok = ResponseInfo { status: 200, ..Default::default() };
/// assert!(tx.handle_response(t0 + Duration::from_millis(100), &ok));
/// assert_eq!(tx.state(), ClientState::Completed);
/// ```
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    invite: bool,
    reliable: bool,
    timers: TimerConfig,
    state: ClientState,
    /// The request, for retransmission; dropped at the final response (a UDP
    /// transaction lingers up to 32 s after it, and a relay keeps hundreds of
    /// thousands).
    request: Option<Arc<[u8]>>,
    ack_base: Option<AckBase>,
    ack: Option<Arc<[u8]>>,
    /// Timer A (INVITE) or E (non-INVITE): deadline and current interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B (INVITE) or F (non-INVITE).
    timeout: Option<Instant>,
    /// Timer D, K or M: how long to stay in Completed/Accepted.
    linger: Option<Instant>,
    out: VecDeque<TxOutput>,
}

impl ClientTransaction {
    /// Start a client transaction for `request` (already serialized as
    /// `payload`) and queue its first transmission. `reliable` tells whether
    /// the transport retransmits by itself (TCP/TLS/SCTP/WS).
    pub fn new(
        now: Instant,
        request: &RequestInfo<'_>,
        payload: Arc<[u8]>,
        reliable: bool,
        timers: TimerConfig,
    ) -> Self {
        let invite = request.method == "INVITE";
        let ack_base = invite.then(|| AckBase::new(request));
        let mut tx = ClientTransaction {
            invite,
            reliable,
            timers,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            request: Some(payload.clone()),
            ack_base,
            ack: None,
            retransmit: (!reliable).then(|| (now + timers.t1, timers.t1)),
            timeout: Some(now + timers.timeout()),
            linger: None,
            out: VecDeque::new(),
        };
        tx.out.push_back(TxOutput::Transmit(payload));
        tx
    }

    /// Current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether this is an INVITE transaction.
    pub fn is_invite(&self) -> bool {
        self.invite
    }

    /// The ACK sent for a non-2xx final response, once there is one.
    pub fn ack(&self) -> Option<&Arc<[u8]>> {
        self.ack.as_ref()
    }

    /// Feed a response that matched this transaction. Returns whether the
    /// response must be passed to the TU (`false`: absorbed retransmission).
    pub fn handle_response(&mut self, now: Instant, response: &ResponseInfo<'_>) -> bool {
        let status = response.status;
        match (self.invite, self.state) {
            (_, ClientState::Terminated) => false,
            (true, ClientState::Calling | ClientState::Proceeding) => {
                self.retransmit = None;
                self.timeout = None;
                match status {
                    100..=199 => self.state = ClientState::Proceeding,
                    200..=299 => {
                        self.state = ClientState::Accepted;
                        self.linger = Some(now + self.timers.timeout()); // timer M
                        self.release();
                    }
                    _ => {
                        self.state = ClientState::Completed;
                        self.send_ack(response.to);
                        self.linger_or_terminate(now, self.timers.timer_d);
                        self.release();
                    }
                }
                true
            }
            (true, ClientState::Completed) => {
                if status >= 300 {
                    if let Some(ack) = &self.ack {
                        self.out.push_back(TxOutput::Transmit(ack.clone()));
                    }
                }
                false
            }
            (true, ClientState::Accepted) => (200..=299).contains(&status),
            (false, ClientState::Trying | ClientState::Proceeding) => {
                if status < 200 {
                    self.state = ClientState::Proceeding;
                } else {
                    self.state = ClientState::Completed;
                    self.retransmit = None;
                    self.timeout = None;
                    self.linger_or_terminate(now, self.timers.t4); // timer K
                    self.release();
                }
                true
            }
            _ => false,
        }
    }

    /// Process every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timeout.is_some_and(|t| t <= now) {
            self.out.push_back(TxOutput::Event(TxEvent::Timeout));
            self.terminate();
            return;
        }
        if self.linger.is_some_and(|t| t <= now) {
            self.terminate();
            return;
        }
        if let Some((deadline, interval)) = self.retransmit {
            if deadline <= now {
                if let Some(r) = &self.request {
                    self.out.push_back(TxOutput::Transmit(r.clone()));
                }
                let next = if self.invite {
                    interval.saturating_mul(2).max(MIN_INTERVAL) // timer A: no cap
                } else if self.state == ClientState::Proceeding {
                    self.timers.t2.max(MIN_INTERVAL) // timer E in Proceeding
                } else {
                    self.timers.backoff_capped(interval)
                };
                self.retransmit = Some((now + next, next));
            }
        }
    }

    /// The transport failed to send for this transaction.
    pub fn handle_transport_error(&mut self) {
        if self.state != ClientState::Terminated {
            self.out.push_back(TxOutput::Event(TxEvent::TransportError));
            self.terminate();
        }
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.retransmit.map(|(t, _)| t), self.timeout, self.linger])
    }

    /// The next queued output.
    pub fn poll_output(&mut self) -> Option<TxOutput> {
        self.out.pop_front()
    }

    /// Whether it still holds its request or the parts of its ACK (tests).
    #[cfg(test)]
    pub(crate) fn holds_request(&self) -> bool {
        self.request.is_some() || self.ack_base.is_some()
    }

    /// After the final response nothing retransmits the request, and the ACK
    /// of a non-2xx is built already: keep only what matching needs.
    fn release(&mut self) {
        self.request = None;
        self.ack_base = None;
    }

    fn send_ack(&mut self, to: &str) {
        if let Some(base) = &self.ack_base {
            let ack = base.build(to);
            self.out.push_back(TxOutput::Transmit(ack.clone()));
            self.ack = Some(ack);
        }
    }

    /// Wait `unreliable_wait` in Completed, or end at once on a reliable
    /// transport (timers D and K are zero there).
    fn linger_or_terminate(&mut self, now: Instant, unreliable_wait: Duration) {
        if self.reliable {
            self.terminate();
        } else {
            self.linger = Some(now + unreliable_wait);
        }
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.retransmit = None;
        self.timeout = None;
        self.linger = None;
        self.out.push_back(TxOutput::Event(TxEvent::Terminated));
    }
}
