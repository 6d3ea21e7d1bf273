//! SIP transactions (RFC 3261 §17 with the RFC 6026 corrections), sans-IO.
//!
//! This module owns the four transaction state machines and the
//! [`TransactionLayer`] that matches messages to them. It never touches a
//! socket or reads a clock: the caller passes in parsed messages and `now`,
//! and takes out bytes to send ([`TransactionLayer::poll_transmit`]), events
//! for the transaction user ([`TransactionLayer::poll_event`]) and the next
//! instant at which it must call [`TransactionLayer::handle_timeout`]
//! ([`TransactionLayer::poll_timeout`]).
//!
//! Design choices:
//! * **RFC 6026 "Accepted" state** on both sides. After a 2xx to an INVITE,
//!   the server transaction stays in Accepted for 64*T1 so that retransmitted
//!   INVITEs are absorbed instead of looking like new calls, and the client
//!   transaction stays in Accepted so that 2xx retransmissions reach the TU
//!   (which re-sends its ACK). The ACK for a 2xx is end-to-end: it is never
//!   generated here, and an incoming one is handed to the TU as
//!   [`RequestDisposition::Ack`].
//! * The 2xx to an INVITE is retransmitted by the server transaction in
//!   Accepted (unreliable transports, RFC 3261 §13.3.1.4 schedule) until the
//!   layer sees its ACK, matched by Call-ID, From tag and CSeq number since
//!   it carries a new branch; without ACK within 64*T1 the TU gets
//!   [`TransactionEvent::AckTimeout`] and should send BYE.
//! * Timer A doubles without a cap (RFC 3261 §17.1.1.2); timers E and G
//!   double up to T2.
//! * Over reliable transports nothing is retransmitted and timers D, I, J, K
//!   are zero, so those transactions end at once.
//! * The TU sends `100 Trying` itself (a B2BUA always does so at once).
//! * The ACK for a non-2xx final response is built by the client transaction
//!   from the original request (§17.1.1.3).
//!
//! Messages enter as [`RequestInfo`] / [`ResponseInfo`]: the few fields the
//! layer needs, extracted once from a parsed message.

mod client;
mod info;
mod layer;
mod server;
mod tables;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use client::{ClientState, ClientTransaction};
pub use info::{RequestInfo, ResponseInfo, SentBy};
pub use layer::{RequestDisposition, ResponseDisposition, TransactionLayer};
pub use server::{ResponseRefused, ServerState, ServerTransaction};
pub use tables::TxMap;

/// Opaque handle of one transaction inside a [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransactionId(pub(crate) u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// Transport protocol of a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (unreliable: the transaction layer retransmits).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket.
    Wss,
}

impl Transport {
    /// Whether the transport delivers reliably, so that the transaction
    /// layer does not retransmit.
    ///
    /// ```
    /// use maskline_sip::transaction::Transport;
    /// assert!(!Transport::Udp.is_reliable());
    /// assert!(Transport::Tls.is_reliable());
    /// ```
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// Where a transaction's messages go: the transport and the remote address
/// (or, for connection-oriented transports, the peer of the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    /// Transport to use.
    pub transport: Transport,
    /// Remote address.
    pub addr: SocketAddr,
}

/// Bytes the caller must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The transaction that sends them.
    pub transaction: TransactionId,
    /// Where to send them.
    pub destination: Destination,
    /// The serialized message.
    pub payload: Arc<[u8]>,
}

/// Something the transaction user must learn about asynchronously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionEvent {
    /// A client transaction got no final response in time (timer B or F):
    /// the TU treats it as a 408.
    Timeout(TransactionId),
    /// An INVITE server transaction never got the ACK for its final
    /// response: timer H for a non-2xx; for a 2xx, 64*T1 without ACK
    /// (RFC 3261 §13.3.1.4: the TU should send BYE).
    AckTimeout(TransactionId),
    /// The transport reported a failure sending for this transaction.
    TransportError(TransactionId),
    /// The transaction ended and was removed from the layer.
    Terminated(TransactionId),
}

/// Errors the transaction layer returns to its caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// No transaction has this id (it may have terminated).
    #[error("no such transaction: {0}")]
    NoSuchTransaction(TransactionId),
    /// A response was sent that the transaction's state does not allow
    /// (e.g. a second final response).
    #[error("transaction {id} cannot send a {status} response in its current state")]
    InvalidResponse {
        /// The transaction.
        id: TransactionId,
        /// The status code that was refused.
        status: u16,
    },
    /// A status code outside 100–699.
    #[error("invalid status code {0}")]
    InvalidStatus(u16),
    /// ACK does not create a client transaction (RFC 3261 §17.1).
    #[error("ACK is not sent through a client transaction")]
    AckRequest,
    /// A client transaction with the same branch and method already exists.
    #[error("a client transaction with this branch already exists")]
    DuplicateBranch,
    /// The layer already holds its maximum number of transactions.
    #[error("too many live transactions")]
    Overloaded,
    /// A request without an RFC 3261 branch cannot start a client
    /// transaction (this layer always generates compliant branches).
    #[error("client requests need a z9hG4bK branch")]
    MissingBranch,
}

/// Output of a single transaction state machine (see
/// [`ClientTransaction::poll_output`]); the layer turns these into
/// [`Transmit`]s and [`TransactionEvent`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutput {
    /// Send these bytes to the transaction's destination.
    Transmit(Arc<[u8]>),
    /// Tell the transaction user.
    Event(TxEvent),
}

/// Transaction-local events (the layer adds the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxEvent {
    /// Timer B or F fired.
    Timeout,
    /// Timer H fired, or timer L fired before the 2xx was acknowledged.
    AckTimeout,
    /// The transport failed.
    TransportError,
    /// The transaction reached the Terminated state.
    Terminated,
}

impl TxEvent {
    fn with_id(self, id: TransactionId) -> TransactionEvent {
        match self {
            TxEvent::Timeout => TransactionEvent::Timeout(id),
            TxEvent::AckTimeout => TransactionEvent::AckTimeout(id),
            TxEvent::TransportError => TransactionEvent::TransportError(id),
            TxEvent::Terminated => TransactionEvent::Terminated(id),
        }
    }
}

/// The earliest of a set of optional deadlines.
fn earliest(deadlines: &[Option<Instant>]) -> Option<Instant> {
    deadlines.iter().flatten().min().copied()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_client;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_layer;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests_server;
