//! Borrowed, checked reading of an SDP body, one line at a time.
//!
//! This module owns the checks every SDP body goes through: the size, line and
//! media limits of [`SdpLimits`], UTF-8, the `x=value` shape, `v=0` first and
//! only once, and the grammar of the `o=`, `c=` and `m=` lines (the lines a
//! relay must rewrite). [`SessionDescription::parse`](super::SessionDescription::parse)
//! builds its owned model from these lines, so both ways of reading accept and
//! reject exactly the same bodies.
//!
//! [`SdpLines`] allocates nothing: a relay that only rewrites a few lines (the
//! media relay's per-call rewrite) reads the body through it and copies the
//! lines it keeps, instead of building and serializing a whole model twice per
//! call.

use super::{Connection, Media, SdpError, SdpLimits};

/// One non-blank line of an SDP body, trailing CR/spaces/tabs removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpLineRef<'a> {
    /// 1-based line number in the input (blank lines count).
    pub number: usize,
    /// The type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: &'a str,
    /// The fields of an `m=` or `c=` line, as the checks read them.
    pub fields: LineFields<'a>,
}

/// What [`SdpLines`] read of a line whose grammar it checks, so that a reader
/// does not parse the line again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFields<'a> {
    /// An `m=` line.
    Media(MediaRef<'a>),
    /// A `c=` line.
    Connection(ConnectionRef<'a>),
    /// Any other line: only its value.
    Text,
}

impl<'a> SdpLineRef<'a> {
    /// An `a=` line's name and value, when it follows the attribute grammar
    /// (a non-empty name without whitespace); `None` for other lines.
    ///
    /// ```
    /// use maskline_sip::sdp::{SdpLimits, SdpLines};
    /// let mut it = SdpLines::new(b"v=0\r\na=rtpmap:0 PCMU/8000\r\na=bad name\r\n", SdpLimits::default());
    /// assert_eq!(it.next().unwrap().unwrap().attribute(), Some(("rtpmap", Some("0 PCMU/8000"))));
    /// assert_eq!(it.next().unwrap().unwrap().attribute(), None);
    /// ```
    pub fn attribute(&self) -> Option<(&'a str, Option<&'a str>)> {
        if self.kind != 'a' {
            return None;
        }
        let (name, value) = match self.value.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (self.value, None),
        };
        (!name.is_empty() && !name.contains(char::is_whitespace)).then_some((name, value))
    }
}

/// The fields of an `m=` line, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRef<'a> {
    /// Media type.
    pub media: &'a str,
    /// Transport port; 0 means rejected/disabled.
    pub port: u16,
    /// Number of ports (`49170/2`).
    pub num_ports: Option<u16>,
    /// Transport protocol.
    pub proto: &'a str,
    value: &'a str,
}

impl<'a> MediaRef<'a> {
    /// Reads an `m=` value (line `line` of the body) under `limits`.
    ///
    /// ```
    /// use maskline_sip::sdp::{MediaRef, SdpLimits};
    /// let m = MediaRef::parse("audio 49170/2 RTP/AVP 0  8", 4, &SdpLimits::default()).unwrap();
    /// assert_eq!((m.media, m.port, m.num_ports, m.proto), ("audio", 49170, Some(2), "RTP/AVP"));
    /// assert_eq!(m.formats().collect::<Vec<_>>(), ["0", "8"]);
    /// assert!(MediaRef::parse("audio x RTP/AVP 0", 4, &SdpLimits::default()).is_err());
    /// ```
    pub fn parse(value: &'a str, line: usize, limits: &SdpLimits) -> Result<Self, SdpError> {
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
        if it.count() > limits.max_formats {
            return Err(SdpError::TooManyFormats {
                line,
                max: limits.max_formats,
            });
        }
        Ok(MediaRef {
            media,
            port,
            num_ports,
            proto,
            value,
        })
    }

    /// The formats, in order.
    pub fn formats(&self) -> impl Iterator<Item = &'a str> {
        self.value.split_ascii_whitespace().skip(3)
    }
}

impl From<MediaRef<'_>> for Media {
    fn from(m: MediaRef<'_>) -> Media {
        Media {
            media: m.media.to_owned(),
            port: m.port,
            num_ports: m.num_ports,
            proto: m.proto.to_owned(),
            formats: m.formats().map(str::to_owned).collect(),
        }
    }
}

/// The fields of a `c=` line, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRef<'a> {
    /// Network type (`IN`).
    pub net_type: &'a str,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: &'a str,
    /// Connection address, possibly with `/ttl` or `/count`.
    pub address: &'a str,
}

impl<'a> ConnectionRef<'a> {
    /// Reads a `c=` value; the error is the reason it does not follow the grammar.
    pub fn parse(value: &'a str) -> Result<Self, &'static str> {
        let mut it = value.split_ascii_whitespace();
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(net_type), Some(addr_type), Some(address), None) => Ok(ConnectionRef {
                net_type,
                addr_type,
                address,
            }),
            _ => Err("expected <nettype> <addrtype> <connection-address>"),
        }
    }
}

impl From<ConnectionRef<'_>> for Connection {
    fn from(c: ConnectionRef<'_>) -> Connection {
        Connection {
            net_type: c.net_type.to_owned(),
            addr_type: c.addr_type.to_owned(),
            address: c.address.to_owned(),
        }
    }
}

/// Checks that an `o=` value has a user name (which may hold spaces) and the
/// five fixed fields; the error is the reason it does not.
fn check_origin(value: &str) -> Result<(), &'static str> {
    if value.split_ascii_whitespace().nth(5).is_none() {
        return Err("expected <username> <sess-id> <sess-version> <nettype> <addrtype> <address>");
    }
    Ok(())
}

/// The checked lines of an SDP body; see the module documentation. The `v=0`
/// line is checked and not yielded. After the first error the iterator ends.
///
/// ```
/// use maskline_sip::sdp::{SdpError, SdpLimits, SdpLines};
/// let body = b"v=0\r\ns=-\r\n\r\nc=IN IP4 192.0.2.1 \r\nm=audio 4000 RTP/AVP 0\r\n";
/// let kinds: Vec<char> = SdpLines::new(body, SdpLimits::default())
///     .map(|l| l.unwrap().kind)
///     .collect();
/// assert_eq!(kinds, ['s', 'c', 'm']);
/// let bad = SdpLines::new(b"v=0\r\nc=IN IP4\r\n", SdpLimits::default()).last().unwrap();
/// assert!(matches!(bad, Err(SdpError::InvalidLine { line: 2, kind: 'c', .. })));
/// ```
#[derive(Debug, Clone)]
pub struct SdpLines<'a> {
    input: &'a [u8],
    /// Byte offset of the next line.
    at: usize,
    number: usize,
    content_lines: usize,
    media: usize,
    seen_version: bool,
    done: bool,
    limits: SdpLimits,
}

impl<'a> SdpLines<'a> {
    /// Reads `input` under `limits`.
    pub fn new(input: &'a [u8], limits: SdpLimits) -> Self {
        SdpLines {
            input,
            at: 0,
            number: 0,
            content_lines: 0,
            media: 0,
            seen_version: false,
            done: false,
            limits,
        }
    }

    fn fail(&mut self, e: SdpError) -> Option<Result<SdpLineRef<'a>, SdpError>> {
        self.done = true;
        Some(Err(e))
    }

    /// Checks one non-blank line; `Ok(None)` for the `v=0` line.
    fn check(&mut self, raw: &'a [u8]) -> Result<Option<SdpLineRef<'a>>, SdpError> {
        let line = self.number;
        self.content_lines += 1;
        if self.content_lines > self.limits.max_lines {
            return Err(SdpError::TooManyLines {
                max: self.limits.max_lines,
            });
        }
        let text = std::str::from_utf8(raw).map_err(|_| SdpError::NotUtf8 { line })?;
        let (kind, value) = split_type(text).ok_or(SdpError::MalformedLine { line })?;
        if !self.seen_version {
            if kind == 'v' && value == "0" {
                self.seen_version = true;
                return Ok(None);
            }
            return Err(SdpError::BadVersion);
        }
        let invalid = |reason| SdpError::InvalidLine { line, kind, reason };
        let fields = match kind {
            'v' => return Err(invalid("more than one v= line")),
            'm' => {
                if self.media >= self.limits.max_media {
                    return Err(SdpError::TooManyMedia {
                        max: self.limits.max_media,
                    });
                }
                self.media += 1;
                LineFields::Media(MediaRef::parse(value, line, &self.limits)?)
            }
            'o' => {
                check_origin(value).map_err(invalid)?;
                LineFields::Text
            }
            'c' => LineFields::Connection(ConnectionRef::parse(value).map_err(invalid)?),
            _ => LineFields::Text,
        };
        Ok(Some(SdpLineRef {
            number: line,
            kind,
            value,
            fields,
        }))
    }
}

impl<'a> Iterator for SdpLines<'a> {
    type Item = Result<SdpLineRef<'a>, SdpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.number == 0 && self.input.len() > self.limits.max_size {
            return self.fail(SdpError::TooLarge {
                size: self.input.len(),
                max: self.limits.max_size,
            });
        }
        while self.at <= self.input.len() {
            let rest = self.input.get(self.at..).unwrap_or_default();
            let (raw, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (rest.get(..i).unwrap_or_default(), self.at + i + 1),
                // The last line: `at` moves past the end so the loop ends.
                None => (rest, self.input.len() + 1),
            };
            self.at = next;
            self.number += 1;
            let raw = trim_line_end(raw);
            if raw.is_empty() {
                continue;
            }
            match self.check(raw) {
                Ok(Some(line)) => return Some(Ok(line)),
                Ok(None) => {}
                Err(e) => return self.fail(e),
            }
        }
        self.done = true;
        (!self.seen_version).then_some(Err(SdpError::Empty))
    }
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
    if memchr::memchr2(b'\r', b'\0', value.as_bytes()).is_some() {
        return None;
    }
    Some((kind, value))
}

/// Parse a plain decimal number (digits only, no sign), rejecting overflow.
pub(super) fn parse_decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
