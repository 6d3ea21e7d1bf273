//! SDP parser: bytes in, [`SessionDescription`] out, bounded by [`SdpLimits`].
//!
//! This module builds the owned model of an untrusted SDP body. The checks
//! (size before any byte is read, lines and media sections counted as they
//! come, the grammar of `o=`, `c=` and `m=`) are [`SdpLines`]'s, so hostile
//! input yields a typed [`SdpError`] and never a panic, and a relay that reads
//! a body through `SdpLines` alone accepts exactly what this parser accepts.
//!
//! Leniency choices (documented so the relay's behaviour is predictable):
//! * lines may end in LF or CRLF; blank lines are skipped; trailing spaces and
//!   tabs on a line are dropped;
//! * the `o=`, `c=` and `m=` lines must follow their grammar, because the relay
//!   has to rewrite them (forwarding one it cannot read could leak the
//!   caller); other typed lines (`b=`, `t=`, `a=`) that do not follow their
//!   grammar are kept verbatim as [`SdpLine::Other`];
//! * an `o=` user name with spaces is accepted (the last five fields are
//!   fixed, the rest is the user name);
//! * an `m=` line without formats is accepted.

use super::lines::{parse_decimal, LineFields, SdpLineRef, SdpLines};
use super::{
    Attribute, Bandwidth, MediaDescription, Origin, SdpError, SdpLine, SessionDescription, Timing,
};

/// Limits applied while parsing untrusted SDP.
///
/// ```
/// use maskline_sip::sdp::{SdpError, SdpLimits, SessionDescription};
/// let limits = SdpLimits { max_media: 1, ..SdpLimits::default() };
/// let body = b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 31\r\n";
/// assert_eq!(
///     SessionDescription::parse_with_limits(body, &limits),
///     Err(SdpError::TooManyMedia { max: 1 })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpLimits {
    /// Maximum body size in bytes (default 32 KiB).
    pub max_size: usize,
    /// Maximum number of non-blank lines (default 1024).
    pub max_lines: usize,
    /// Maximum number of `m=` sections (default 32).
    pub max_media: usize,
    /// Maximum number of formats on one `m=` line (default 64).
    pub max_formats: usize,
}

impl Default for SdpLimits {
    fn default() -> Self {
        SdpLimits {
            max_size: 32 * 1024,
            max_lines: 1024,
            max_media: 32,
            max_formats: 64,
        }
    }
}

impl SessionDescription {
    /// Parse an SDP body with the default [`SdpLimits`].
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let sdp = SessionDescription::parse(b"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=call\nt=0 0\n").unwrap();
    /// assert_eq!(sdp.session_name(), Some("call"));
    /// ```
    pub fn parse(input: &[u8]) -> Result<Self, SdpError> {
        parse(input, &SdpLimits::default())
    }

    /// Parse an SDP body with explicit limits.
    pub fn parse_with_limits(input: &[u8], limits: &SdpLimits) -> Result<Self, SdpError> {
        parse(input, limits)
    }
}

fn parse(input: &[u8], limits: &SdpLimits) -> Result<SessionDescription, SdpError> {
    let mut sdp = SessionDescription {
        lines: Vec::new(),
        media: Vec::new(),
    };
    // Every check is made by `SdpLines`; this only builds the owned model.
    for line in SdpLines::new(input, *limits) {
        let SdpLineRef {
            number,
            kind,
            value,
            fields,
        } = line?;
        let line = match fields {
            LineFields::Media(m) => {
                sdp.media.push(MediaDescription {
                    media: m.into(),
                    lines: Vec::new(),
                });
                continue;
            }
            LineFields::Connection(c) => SdpLine::Connection(c.into()),
            LineFields::Text => {
                parse_line(kind, value).map_err(|reason| SdpError::InvalidLine {
                    line: number,
                    kind,
                    reason,
                })?
            }
        };
        match sdp.media.last_mut() {
            Some(m) => m.lines.push(line),
            None => sdp.lines.push(line),
        }
    }
    Ok(sdp)
}

/// A line other than `m=` and `c=` (which `SdpLines` reads itself).
fn parse_line(kind: char, value: &str) -> Result<SdpLine, &'static str> {
    let other = || SdpLine::Other {
        kind,
        value: value.to_owned(),
    };
    Ok(match kind {
        'o' => SdpLine::Origin(parse_origin(value)?),
        's' => SdpLine::SessionName(value.to_owned()),
        'i' => SdpLine::Information(value.to_owned()),
        'u' => SdpLine::Uri(value.to_owned()),
        'e' => SdpLine::Email(value.to_owned()),
        'p' => SdpLine::Phone(value.to_owned()),
        'r' => SdpLine::Repeat(value.to_owned()),
        'z' => SdpLine::TimeZones(value.to_owned()),
        'k' => SdpLine::Key(value.to_owned()),
        'b' => parse_bandwidth(value).map_or_else(other, SdpLine::Bandwidth),
        't' => parse_timing(value).map_or_else(other, SdpLine::Timing),
        'a' => parse_attribute(value).map_or_else(other, SdpLine::Attribute),
        _ => other(),
    })
}

fn parse_origin(value: &str) -> Result<Origin, &'static str> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let split = fields
        .len()
        .checked_sub(5)
        .filter(|&n| n >= 1)
        .ok_or("expected <username> <sess-id> <sess-version> <nettype> <addrtype> <address>")?;
    let (user, rest) = fields.split_at(split);
    match rest {
        [id, version, net, addr_type, address] => Ok(Origin {
            username: user.join(" "),
            session_id: (*id).to_owned(),
            session_version: (*version).to_owned(),
            net_type: (*net).to_owned(),
            addr_type: (*addr_type).to_owned(),
            address: (*address).to_owned(),
        }),
        _ => Err("expected six fields"),
    }
}

fn parse_bandwidth(value: &str) -> Option<Bandwidth> {
    let (bwtype, bw) = value.split_once(':')?;
    if bwtype.is_empty() || bwtype.contains(char::is_whitespace) {
        return None;
    }
    Some(Bandwidth {
        bwtype: bwtype.to_owned(),
        bandwidth: parse_decimal(bw)?,
    })
}

fn parse_timing(value: &str) -> Option<Timing> {
    let mut it = value.split_ascii_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some(start), Some(stop), None) => Some(Timing {
            start: parse_decimal(start)?,
            stop: parse_decimal(stop)?,
        }),
        _ => None,
    }
}

fn parse_attribute(value: &str) -> Option<Attribute> {
    let (name, val) = match value.split_once(':') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (value, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some(Attribute {
        name: name.to_owned(),
        value: val,
    })
}
