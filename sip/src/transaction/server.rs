//! Server transaction state machines (RFC 3261 §17.2, RFC 6026 §8.5–8.7).
//!
//! This module owns the INVITE server transaction (Proceeding → Completed →
//! Confirmed, or Proceeding → Accepted, then Terminated; timers G, H, I, L)
//! and the non-INVITE server transaction (Trying → Proceeding → Completed →
//! Terminated; timer J). Request retransmissions are absorbed here and
//! answered with the last response sent.
//!
//! The 2xx to an INVITE is also retransmitted here while in Accepted (over
//! unreliable transports, T1 doubling up to T2, RFC 3261 §13.3.1.4) until
//! the TU reports the ACK ([`ServerTransaction::handle_2xx_ack`]); if no ACK
//! arrives within 64*T1 the TU gets an `AckTimeout` and should send BYE.
//! RFC 3261 puts that loop in the UAS core; keeping it next to timer L
//! spares every TU from re-implementing it. Pure state machine: inputs carry
//! `now`, outputs are drained with [`ServerTransaction::poll_output`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{earliest, TxEvent, TxOutput};
use crate::timer::TimerConfig;

/// States of a server transaction. INVITE uses Proceeding, Completed,
/// Confirmed, Accepted and Terminated; non-INVITE uses Trying, Proceeding,
/// Completed and Terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    /// Non-INVITE request received, nothing sent yet.
    Trying,
    /// A provisional response was sent (INVITE starts here).
    Proceeding,
    /// A final response (non-2xx for INVITE) was sent.
    Completed,
    /// INVITE only: the ACK for the non-2xx final response arrived.
    Confirmed,
    /// RFC 6026: a 2xx was sent to the INVITE; retransmitted INVITEs are
    /// absorbed and ACKs go to the TU.
    Accepted,
    /// Done.
    Terminated,
}

/// A response the server transaction's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("response not allowed in the transaction's current state")]
pub struct ResponseRefused;

/// One server transaction.
///
/// ```
/// use std::{sync::Arc, time::{Duration, Instant}};
/// use maskline_sip::timer::TimerConfig;
/// use maskline_sip::transaction::{ServerState, ServerTransaction, TxOutput};
///
/// let t0 = Instant::now();
/// let mut tx = ServerTransaction::new(true, false, TimerConfig::default());
/// let ringing: Arc<[u8]> = Arc::from(&b"SIP/2.0 180 Ringing\r\n\r\n"[..]);
/// tx.send_response(t0, 180, ringing.clone()).unwrap();
/// assert_eq!(tx.poll_output(), Some(TxOutput::Transmit(ringing.clone())));
/// // A retransmitted INVITE gets the same provisional again.
/// assert!(!tx.handle_request(t0 + Duration::from_millis(500), false));
/// assert_eq!(tx.poll_output(), Some(TxOutput::Transmit(ringing)));
/// assert_eq!(tx.state(), ServerState::Proceeding);
/// ```
#[derive(Debug, Clone)]
pub struct ServerTransaction {
    invite: bool,
    reliable: bool,
    timers: TimerConfig,
    state: ServerState,
    last_response: Option<Arc<[u8]>>,
    /// Timer G: deadline and current interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer H.
    timeout: Option<Instant>,
    /// Timer I, J or L.
    linger: Option<Instant>,
    /// Accepted state: the 2xx has not been acknowledged yet.
    awaiting_ack: bool,
    out: VecDeque<TxOutput>,
}

impl ServerTransaction {
    /// A server transaction for a request just received. `invite` tells
    /// the kind; `reliable` whether the transport retransmits by itself.
    pub fn new(invite: bool, reliable: bool, timers: TimerConfig) -> Self {
        ServerTransaction {
            invite,
            reliable,
            timers,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            last_response: None,
            retransmit: None,
            timeout: None,
            linger: None,
            awaiting_ack: false,
            out: VecDeque::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Whether this is an INVITE transaction.
    pub fn is_invite(&self) -> bool {
        self.invite
    }

    /// Feed a request that matched this transaction: a retransmission of
    /// its request, or (`is_ack`) an ACK matching an INVITE transaction.
    /// Returns whether the request must be passed to the TU (only an ACK
    /// in the Accepted state is).
    pub fn handle_request(&mut self, now: Instant, is_ack: bool) -> bool {
        match (self.state, is_ack) {
            (ServerState::Terminated, _) => false,
            (ServerState::Accepted, true) => {
                self.handle_2xx_ack();
                true
            }
            (ServerState::Accepted, false) => false,
            (ServerState::Completed, true) if self.invite => {
                self.state = ServerState::Confirmed;
                self.retransmit = None;
                self.timeout = None;
                self.last_response = None;
                if self.reliable {
                    self.terminate(); // timer I is zero
                } else {
                    self.linger = Some(now + self.timers.t4); // timer I
                }
                false
            }
            (ServerState::Proceeding | ServerState::Completed, false) => {
                if let Some(r) = &self.last_response {
                    self.out.push_back(TxOutput::Transmit(r.clone()));
                }
                false
            }
            _ => false,
        }
    }

    /// Send a response through this transaction. Fails if the state does
    /// not allow it (a second final response, a non-2xx after a 2xx, ...).
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        payload: Arc<[u8]>,
    ) -> Result<(), ResponseRefused> {
        let provisional = status < 200;
        match (self.invite, self.state) {
            (_, ServerState::Trying | ServerState::Proceeding) if provisional => {
                self.state = ServerState::Proceeding;
                self.last_response = Some(payload.clone());
                self.out.push_back(TxOutput::Transmit(payload));
            }
            (true, ServerState::Proceeding) if status < 300 => {
                self.state = ServerState::Accepted;
                self.last_response = Some(payload.clone());
                self.out.push_back(TxOutput::Transmit(payload));
                self.linger = Some(now + self.timers.timeout()); // timer L
                self.awaiting_ack = true;
                if !self.reliable {
                    // 2xx retransmission, RFC 3261 §13.3.1.4.
                    self.retransmit = Some((now + self.timers.t1, self.timers.t1));
                }
            }
            (true, ServerState::Proceeding) => {
                self.state = ServerState::Completed;
                self.last_response = Some(payload.clone());
                self.out.push_back(TxOutput::Transmit(payload));
                if !self.reliable {
                    self.retransmit = Some((now + self.timers.t1, self.timers.t1));
                    // G
                }
                self.timeout = Some(now + self.timers.timeout()); // timer H
            }
            // The TU retransmits its 2xx while waiting for the ACK.
            (true, ServerState::Accepted) if (200..300).contains(&status) => {
                self.last_response = Some(payload.clone());
                self.out.push_back(TxOutput::Transmit(payload));
            }
            (false, ServerState::Trying | ServerState::Proceeding) => {
                self.state = ServerState::Completed;
                self.last_response = Some(payload.clone());
                self.out.push_back(TxOutput::Transmit(payload));
                if self.reliable {
                    self.terminate(); // timer J is zero
                } else {
                    self.linger = Some(now + self.timers.timeout()); // timer J
                }
            }
            _ => return Err(ResponseRefused),
        }
        Ok(())
    }

    /// Process every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timeout.is_some_and(|t| t <= now) {
            self.out.push_back(TxOutput::Event(TxEvent::AckTimeout));
            self.terminate();
            return;
        }
        if self.linger.is_some_and(|t| t <= now) {
            if self.state == ServerState::Accepted && self.awaiting_ack {
                self.out.push_back(TxOutput::Event(TxEvent::AckTimeout));
            }
            self.terminate();
            return;
        }
        if let Some((deadline, interval)) = self.retransmit {
            if deadline <= now {
                if let Some(r) = &self.last_response {
                    self.out.push_back(TxOutput::Transmit(r.clone()));
                }
                let next = self.timers.backoff_capped(interval);
                self.retransmit = Some((now + next, next));
            }
        }
    }

    /// Whether it still holds a response to send again (tests).
    #[cfg(test)]
    pub(crate) fn holds_response(&self) -> bool {
        self.last_response.is_some()
    }

    /// The ACK for the 2xx arrived (it carries its own branch, so the TU or
    /// the layer matches it by dialog): stop retransmitting the 2xx.
    /// Returns whether this transaction was waiting for it.
    pub fn handle_2xx_ack(&mut self) -> bool {
        if self.state == ServerState::Accepted && self.awaiting_ack {
            self.awaiting_ack = false;
            self.retransmit = None;
            // Nothing sends the 2xx again; the transaction only absorbs
            // retransmitted INVITEs until timer L.
            self.last_response = None;
            true
        } else {
            false
        }
    }

    /// The transport failed to send for this transaction.
    pub fn handle_transport_error(&mut self) {
        if self.state != ServerState::Terminated {
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

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.retransmit = None;
        self.timeout = None;
        self.linger = None;
        self.out.push_back(TxOutput::Event(TxEvent::Terminated));
    }
}
