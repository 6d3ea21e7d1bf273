//! SDP parser: bytes in, [`SessionDescription`] out, bounded by [`SdpLimits`].
//!
//! This module owns the reading of untrusted SDP bodies. It checks the size
//! before looking at any byte, counts lines and media sections as it goes,
//! and never indexes past what it has checked, so hostile input yields a
//! typed [`SdpError`] and never a panic.
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

use super::{
    Attribute, Bandwidth, Connection, Media, MediaDescription, Origin, SdpError, SdpLine,
    SessionDescription, Timing,
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
    if input.len() > limits.max_size {
        return Err(SdpError::TooLarge {
            size: input.len(),
            max: limits.max_size,
        });
    }
    let mut sdp = SessionDescription {
        lines: Vec::new(),
        media: Vec::new(),
    };
    let mut seen_version = false;
    let mut content_lines = 0usize;
    for (idx, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line_no = idx + 1;
        let raw = trim_line_end(raw);
        if raw.is_empty() {
            continue;
        }
        content_lines += 1;
        if content_lines > limits.max_lines {
            return Err(SdpError::TooManyLines {
                max: limits.max_lines,
            });
        }
        let text = std::str::from_utf8(raw).map_err(|_| SdpError::NotUtf8 { line: line_no })?;
        let (kind, value) = split_type(text).ok_or(SdpError::MalformedLine { line: line_no })?;
        if !seen_version {
            if kind == 'v' && value == "0" {
                seen_version = true;
                continue;
            }
            return Err(SdpError::BadVersion);
        }
        match kind {
            'v' => {
                return Err(SdpError::InvalidLine {
                    line: line_no,
                    kind,
                    reason: "more than one v= line",
                })
            }
            'm' => {
                if sdp.media.len() >= limits.max_media {
                    return Err(SdpError::TooManyMedia {
                        max: limits.max_media,
                    });
                }
                let media = parse_media(value, line_no, limits)?;
                sdp.media.push(MediaDescription {
                    media,
                    lines: Vec::new(),
                });
            }
            _ => {
                let line = parse_line(kind, value).map_err(|reason| SdpError::InvalidLine {
                    line: line_no,
                    kind,
                    reason,
                })?;
                match sdp.media.last_mut() {
                    Some(m) => m.lines.push(line),
                    None => sdp.lines.push(line),
                }
            }
        }
    }
    if !seen_version {
        return Err(SdpError::Empty);
    }
    Ok(sdp)
}

/// Drop a trailing CR and trailing spaces/tabs.
fn trim_line_end(mut raw: &[u8]) -> &[u8] {
    while let [rest @ .., last] = raw {
        if matches!(last, b'\r' | b' ' | b'\t') {
            raw = rest;
        } else {
            break;
        }
    }
    raw
}

/// Split `x=value` into its type letter and value. The value must not hold
/// CR or NUL (LF cannot occur: lines were split on it).
fn split_type(text: &str) -> Option<(char, &str)> {
    let mut chars = text.chars();
    let kind = chars.next().filter(char::is_ascii_alphabetic)?;
    let value = text.get(1..)?.strip_prefix('=')?;
    if value.contains(['\r', '\0']) {
        return None;
    }
    Some((kind, value))
}

fn parse_line(kind: char, value: &str) -> Result<SdpLine, &'static str> {
    let other = || SdpLine::Other {
        kind,
        value: value.to_owned(),
    };
    Ok(match kind {
        'o' => SdpLine::Origin(parse_origin(value)?),
        'c' => SdpLine::Connection(parse_connection(value)?),
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

fn parse_connection(value: &str) -> Result<Connection, &'static str> {
    let mut it = value.split_ascii_whitespace();
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(net), Some(addr_type), Some(address), None) => Ok(Connection {
            net_type: net.to_owned(),
            addr_type: addr_type.to_owned(),
            address: address.to_owned(),
        }),
        _ => Err("expected <nettype> <addrtype> <connection-address>"),
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

fn parse_media(value: &str, line: usize, limits: &SdpLimits) -> Result<Media, SdpError> {
    let invalid = |reason| SdpError::InvalidLine {
        line,
        kind: 'm',
        reason,
    };
    let mut it = value.split_ascii_whitespace();
    let media = it.next().ok_or(invalid("missing media type"))?;
    let port_field = it.next().ok_or(invalid("missing port"))?;
    let proto = it.next().ok_or(invalid("missing protocol"))?;
    let (port, num_ports) = match port_field.split_once('/') {
        Some((p, n)) => (
            parse_decimal(p),
            Some(parse_decimal(n).ok_or(invalid("bad number of ports"))?),
        ),
        None => (parse_decimal(port_field), None),
    };
    let port = port.ok_or(invalid("bad port"))?;
    let mut formats = Vec::new();
    for f in it {
        if formats.len() >= limits.max_formats {
            return Err(SdpError::TooManyFormats {
                line,
                max: limits.max_formats,
            });
        }
        formats.push(f.to_owned());
    }
    Ok(Media {
        media: media.to_owned(),
        port,
        num_ports,
        proto: proto.to_owned(),
        formats,
    })
}

/// Parse a plain decimal number (digits only, no sign), rejecting overflow.
fn parse_decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
