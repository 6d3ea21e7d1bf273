//! SDP (RFC 4566 / RFC 3264) session descriptions: the data model, parsing,
//! serialization and the helpers a media relay needs.
//!
//! This module owns everything about SDP bodies. A masking B2BUA must rewrite
//! every SDP it forwards: the `o=` line and the `c=` lines name the caller's
//! host, and the `m=` ports point at the caller's media. The model therefore
//! keeps every line of the original body, in order, so that a rewrite changes
//! only what it means to change and forwards everything else untouched
//! (including lines of types this crate does not know).
//!
//! * [`SessionDescription::parse`] reads a body under [`SdpLimits`] (size,
//!   line count, media count, formats per `m=` line) and never panics on
//!   arbitrary bytes; errors are [`SdpError`].
//! * [`SessionDescription`] implements [`std::fmt::Display`], which writes the
//!   canonical form (CRLF line ends); parse → serialize → parse is stable.
//! * Relay helpers ([`SessionDescription::set_connection_address`],
//!   [`MediaDescription::set_port`], [`SessionDescription::set_origin`]) and
//!   read helpers ([`MediaDescription::codecs`], [`Direction`]) live in the
//!   `rewrite` and `codec` submodules.
//!
//! ```
//! use maskline_sip::sdp::SessionDescription;
//!
//! let body = "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
//!             t=0 0\r\nm=audio 49170 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
//! let mut sdp = SessionDescription::parse(body.as_bytes()).unwrap();
//! sdp.set_connection_address("203.0.113.5".parse().unwrap());
//! sdp.media[0].set_port(40000);
//! let out = sdp.to_string();
//! assert!(out.contains("c=IN IP4 203.0.113.5\r\n"));
//! assert!(out.contains("m=audio 40000 RTP/AVP 0 101\r\n"));
//! ```

mod codec;
mod lines;
mod parse;
mod rewrite;
mod serialize;

use std::fmt;

pub use codec::{static_payload_type, Codec, Direction};
pub use lines::{ConnectionRef, LineFields, MediaRef, SdpLineRef, SdpLines};
pub use parse::SdpLimits;

/// Errors from parsing or editing an SDP body.
///
/// Line numbers are 1-based and count every line of the input, including
/// blank ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is larger than [`SdpLimits::max_size`].
    #[error("SDP body of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The body has more lines than [`SdpLimits::max_lines`].
    #[error("SDP body has more than {max} lines")]
    TooManyLines {
        /// The configured limit.
        max: usize,
    },
    /// The body has more `m=` sections than [`SdpLimits::max_media`].
    #[error("SDP body has more than {max} media sections")]
    TooManyMedia {
        /// The configured limit.
        max: usize,
    },
    /// An `m=` line lists more formats than [`SdpLimits::max_formats`].
    #[error("m= line {line} lists more than {max} formats")]
    TooManyFormats {
        /// Line number of the offending `m=` line.
        line: usize,
        /// The configured limit.
        max: usize,
    },
    /// The body is empty.
    #[error("SDP body is empty")]
    Empty,
    /// A line is not valid UTF-8.
    #[error("line {line} is not valid UTF-8")]
    NotUtf8 {
        /// Line number.
        line: usize,
    },
    /// A line does not have the `<type>=<value>` form.
    #[error("line {line} is not of the form <type>=<value>")]
    MalformedLine {
        /// Line number.
        line: usize,
    },
    /// The first line is not `v=0`.
    #[error("SDP must start with v=0")]
    BadVersion,
    /// A line of a known type has a value that does not follow its grammar.
    #[error("invalid {kind}= line {line}: {reason}")]
    InvalidLine {
        /// Line number.
        line: usize,
        /// The line's type letter.
        kind: char,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value given to an editing helper would break the line syntax
    /// (it is empty or holds a space, CR, LF or NUL).
    #[error("invalid value for {field}: must be non-empty without spaces or control characters")]
    InvalidValue {
        /// The field that was being set.
        field: &'static str,
    },
}

/// The `o=` line: who created the session (RFC 4566 §5.2).
///
/// All fields are kept as text so that unusual but harmless values (very
/// long session ids, FQDN addresses) survive a round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name on the originating host, `-` when there is none.
    pub username: String,
    /// Numeric session id.
    pub session_id: String,
    /// Version number of this session description.
    pub session_version: String,
    /// Network type, normally `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Address (or FQDN) of the originating host.
    pub address: String,
}

/// A `c=` line: where media is sent (RFC 4566 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, normally `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Connection address, possibly with multicast `/ttl/count` suffixes.
    pub address: String,
}

/// A `b=` line (RFC 4566 §5.8), e.g. `b=AS:64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// Bandwidth type (`AS`, `CT`, `TIAS`, ...).
    pub bwtype: String,
    /// Bandwidth value (kbit/s for `AS`/`CT`).
    pub bandwidth: u64,
}

/// A `t=` line (RFC 4566 §5.9); `0 0` means an unbounded session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds) or 0.
    pub start: u64,
    /// Stop time (NTP seconds) or 0.
    pub stop: u64,
}

/// An `a=` line (RFC 4566 §5.13): a property (`a=sendonly`) or a value
/// attribute (`a=rtpmap:0 PCMU/8000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name (the text before the first `:`).
    pub name: String,
    /// Attribute value (the text after the first `:`), `None` for a property.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute without a value, e.g. `a=sendrecv`.
    pub fn property(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// A value attribute, e.g. `a=ptime:20`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// One line of a session-level or media-level section, other than `v=`
/// and `m=` (which the model holds structurally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpLine {
    /// `o=`
    Origin(Origin),
    /// `s=`
    SessionName(String),
    /// `i=`
    Information(String),
    /// `u=`
    Uri(String),
    /// `e=`
    Email(String),
    /// `p=`
    Phone(String),
    /// `c=`
    Connection(Connection),
    /// `b=`
    Bandwidth(Bandwidth),
    /// `t=`
    Timing(Timing),
    /// `r=`, kept as text.
    Repeat(String),
    /// `z=`, kept as text.
    TimeZones(String),
    /// `k=`, kept as text.
    Key(String),
    /// `a=`
    Attribute(Attribute),
    /// A line of any other type, kept verbatim (e.g. 3GPP `y=`).
    Other {
        /// The type letter.
        kind: char,
        /// Everything after `=`.
        value: String,
    },
}

impl SdpLine {
    /// The type letter of this line.
    ///
    /// ```
    /// use maskline_sip::sdp::SdpLine;
    /// assert_eq!(SdpLine::SessionName("-".into()).kind(), 's');
    /// ```
    pub fn kind(&self) -> char {
        match self {
            SdpLine::Origin(_) => 'o',
            SdpLine::SessionName(_) => 's',
            SdpLine::Information(_) => 'i',
            SdpLine::Uri(_) => 'u',
            SdpLine::Email(_) => 'e',
            SdpLine::Phone(_) => 'p',
            SdpLine::Connection(_) => 'c',
            SdpLine::Bandwidth(_) => 'b',
            SdpLine::Timing(_) => 't',
            SdpLine::Repeat(_) => 'r',
            SdpLine::TimeZones(_) => 'z',
            SdpLine::Key(_) => 'k',
            SdpLine::Attribute(_) => 'a',
            SdpLine::Other { kind, .. } => *kind,
        }
    }
}

/// The `m=` line itself (RFC 4566 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Media type: `audio`, `video`, `image`, `application`, ...
    pub media: String,
    /// Transport port; 0 means the stream is rejected/disabled (RFC 3264).
    pub port: u16,
    /// Optional number of ports (`49170/2`).
    pub num_ports: Option<u16>,
    /// Transport protocol, e.g. `RTP/AVP`, `RTP/SAVP`, `udptl`.
    pub proto: String,
    /// Media formats; RTP payload type numbers for RTP protocols.
    pub formats: Vec<String>,
}

/// One media section: the `m=` line and the lines that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// The `m=` line.
    pub media: Media,
    /// The lines after `m=` up to the next `m=`, in order.
    pub lines: Vec<SdpLine>,
}

/// A whole SDP body: the session-level section and the media sections.
///
/// The implicit first line is always `v=0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The session-level lines after `v=`, in order.
    pub lines: Vec<SdpLine>,
    /// The media sections, in order.
    pub media: Vec<MediaDescription>,
}

/// Iterator over the attributes in a list of lines.
fn attrs_in(lines: &[SdpLine]) -> impl Iterator<Item = &Attribute> {
    lines.iter().filter_map(|l| match l {
        SdpLine::Attribute(a) => Some(a),
        _ => None,
    })
}

fn connection_in(lines: &[SdpLine]) -> Option<&Connection> {
    lines.iter().find_map(|l| match l {
        SdpLine::Connection(c) => Some(c),
        _ => None,
    })
}

impl SessionDescription {
    /// The `o=` line, if present.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let sdp = SessionDescription::parse(b"v=0\r\no=- 7 7 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n").unwrap();
    /// assert_eq!(sdp.origin().unwrap().address, "10.0.0.1");
    /// ```
    pub fn origin(&self) -> Option<&Origin> {
        self.lines.iter().find_map(|l| match l {
            SdpLine::Origin(o) => Some(o),
            _ => None,
        })
    }

    /// Mutable access to the `o=` line, if present.
    pub fn origin_mut(&mut self) -> Option<&mut Origin> {
        self.lines.iter_mut().find_map(|l| match l {
            SdpLine::Origin(o) => Some(o),
            _ => None,
        })
    }

    /// The `s=` session name, if present.
    pub fn session_name(&self) -> Option<&str> {
        self.lines.iter().find_map(|l| match l {
            SdpLine::SessionName(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The session-level `c=` line, if present.
    pub fn connection(&self) -> Option<&Connection> {
        connection_in(&self.lines)
    }

    /// The session-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        attrs_in(&self.lines)
    }

    /// The first session-level attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes().find(|a| a.name == name)
    }

    /// The connection that applies to `media`: its own `c=` line, or else the
    /// session-level one.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let sdp = SessionDescription::parse(
    ///     b"v=0\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
    /// assert_eq!(sdp.media_connection(&sdp.media[0]).unwrap().address, "10.0.0.1");
    /// ```
    pub fn media_connection<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection().or_else(|| self.connection())
    }
}

impl MediaDescription {
    /// The media-level `c=` line, if present.
    pub fn connection(&self) -> Option<&Connection> {
        connection_in(&self.lines)
    }

    /// The media-level attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        attrs_in(&self.lines)
    }

    /// The first media-level attribute called `name`.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let sdp = SessionDescription::parse(
    ///     b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=ptime:20\r\n").unwrap();
    /// assert_eq!(sdp.media[0].attribute("ptime").unwrap().value.as_deref(), Some("20"));
    /// ```
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes().find(|a| a.name == name)
    }

    /// Append an attribute at the end of this media section.
    pub fn push_attribute(&mut self, attribute: Attribute) {
        self.lines.push(SdpLine::Attribute(attribute));
    }

    /// Remove every media-level attribute called `name`; returns how many
    /// were removed. Useful to drop `a=candidate` or `a=rtcp` lines that
    /// would leak the other leg's addresses.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let mut sdp = SessionDescription::parse(
    ///     b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 10.1.1.1\r\n").unwrap();
    /// assert_eq!(sdp.media[0].remove_attributes("rtcp"), 1);
    /// assert!(sdp.media[0].attribute("rtcp").is_none());
    /// ```
    pub fn remove_attributes(&mut self, name: &str) -> usize {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, SdpLine::Attribute(a) if a.name == name));
        before - self.lines.len()
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        serialize::write_session(self, f)
    }
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, SdpError> {
        SessionDescription::parse(s.as_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
