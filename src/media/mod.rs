//! Media (RTP/RTCP) for bridged calls: the interface the voice B2BUA drives.
//!
//! A masking relay must carry the voice itself: if the two phones' RTP flowed
//! directly, each would learn the other's IP address from the packets and from
//! the SDP. The voice code therefore never forwards an SDP body as it came: it
//! hands every body to the call's [`MediaSession`], which records where that leg
//! receives media and returns the body to send to the *other* leg, pointing at
//! the relay's own address and the port allocated for that other leg.
//!
//! The interface (stable; the voice code depends on nothing else here):
//! - [`MediaRelay::allocate`]: one session per call, one port pair (RTP, RTP+1 for
//!   RTCP) per leg. Running out of ports is [`MediaError::PortsExhausted`]: the voice
//!   code answers `503`, never sets up a call without media.
//! - [`MediaSession::offer`] / [`MediaSession::answer`]: an SDP body received from
//!   one [`Leg`] in; the rewritten body for the other leg out. Re-INVITEs (hold,
//!   codec change, new remote address) go through the same two calls.
//! - [`MediaSession::events`]: a receiver of [`MediaEvent`]s (media timeout); the
//!   voice code ends the call with BYE on both legs.
//! - Dropping the [`MediaSession`] releases its ports.
//! - IVR (the relay answers leg A itself): [`MediaSession::answer_locally`]
//!   answers A's offer (G.711 + `telephone-event`) and returns the offer for a
//!   later B leg; [`MediaSession::play`] streams a [`prompt::Prompt`] to A;
//!   digits come as [`MediaEvent::Dtmf`]; [`MediaSession::bridge`] starts
//!   forwarding once B answered.
//!
//! The forwarding engine lives in the submodules: `relay` (the public types,
//! control side), `ports` (port pool, socket binding), `rewrite` (SDP),
//! `worker` (forwarding threads, latching, timeouts, counters), `ivr` (prompt
//! playback and DTMF detection inside a worker), `prompt` (recordings), `rtcp` (SDES
//! scrubbing) and `sys` (epoll, eventfd, `recvmmsg`/`sendmmsg`; Linux only).

use std::net::IpAddr;

/// One side of a bridged call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The caller's side (the call came in from it).
    A,
    /// The callee's side (the relay placed this call).
    B,
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }

    /// `"a"` or `"b"`, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::A => "a",
            Leg::B => "b",
        }
    }
}

/// What the media relay tells the call that owns a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// No RTP/RTCP from either leg for the configured media timeout.
    Timeout,
    /// IVR mode: leg A sent an RFC 4733 telephone-event (`0`-`9`, `*`, `#`,
    /// `A`-`D`), reported once per event, as soon as its first packet arrives.
    Dtmf(char),
    /// IVR mode: the prompt being played has been sent completely.
    PromptDone,
}

/// Why a media operation failed. The voice code maps these to SIP statuses in one
/// place (`PortsExhausted` → 503, `BadSdp` → 488).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Every port pair of the configured range is in use.
    #[error("media ports exhausted")]
    PortsExhausted,
    /// The SDP body cannot be parsed or has no usable media.
    #[error("unusable SDP: {0}")]
    BadSdp(String),
    /// A socket could not be opened or used.
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
    /// A prompt file cannot be read or is not 8 kHz G.711.
    #[error("prompt: {0}")]
    Prompt(String),
    /// The caller offered neither PCMU nor PCMA: the relay cannot answer it itself.
    #[error("the caller offers no G.711 codec")]
    NoG711,
}

/// Per-call addresses the relay advertises in SDP, one per leg (trunks can sit on
/// different networks). `None` uses the relay's configured public address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Advertise {
    /// Address put into SDP sent to leg A.
    pub a: Option<IpAddr>,
    /// Address put into SDP sent to leg B.
    pub b: Option<IpAddr>,
}

mod counters;
mod ivr;
mod local_sdp;
mod ports;
pub mod prompt;
mod relay;
mod rewrite;
mod rtcp;
pub(crate) mod sys;
mod worker;

pub use relay::{LocalAnswer, MediaConfig, MediaRelay, MediaSession, MediaStats, DEFAULT_COALESCE};
