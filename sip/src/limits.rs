//! Size bounds applied while parsing and framing.
//!
//! The parser runs on every packet from the internet, so each dimension a
//! hostile peer controls (total size, header count, line length, Via depth,
//! body size) has a ceiling checked before any work proportional to it.

/// Bounds enforced by [`Message::parse_with`](crate::Message::parse_with) and
/// by the stream [`Framer`](crate::Framer). Each breach is its own
/// [`ParseError`](crate::ParseError) variant.
///
/// ```
/// use maskline_sip::{Limits, Message, ParseError};
///
/// let limits = Limits { max_headers: 1, ..Limits::default() };
/// let raw = b"BYE sip:a@h SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n";
/// assert_eq!(
///     Message::parse_with(raw, &limits).unwrap_err(),
///     ParseError::TooManyHeaders { limit: 1 }
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (start line + headers + body), in bytes.
    pub max_message_size: usize,
    /// Largest number of header fields (lines, not comma-separated values).
    pub max_headers: usize,
    /// Longest single header field including folded continuation lines.
    pub max_header_line: usize,
    /// Largest number of Via values across all Via header fields.
    pub max_via: usize,
    /// Largest body, in bytes (declared by Content-Length or present).
    pub max_body: usize,
}

impl Limits {
    /// The defaults: 64 KiB messages, 128 header fields, 8 KiB header lines,
    /// 70 Via values (as many hops as Max-Forwards allows; RFC 4475 §3.1.1.7
    /// sends 34), 32 KiB bodies. Generous for any carrier INVITE, small
    /// enough that a flood of maximal messages costs little.
    pub const DEFAULT: Limits = Limits {
        max_message_size: 64 * 1024,
        max_headers: 128,
        max_header_line: 8 * 1024,
        max_via: 70,
        max_body: 32 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
