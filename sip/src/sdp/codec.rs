//! Reading codecs and media direction from SDP (RFC 3264, RFC 3551).
//!
//! This module owns the interpretation of `a=rtpmap`, `a=fmtp`, the static
//! RTP payload types of RFC 3551 and the direction attributes
//! (`sendrecv`/`sendonly`/`recvonly`/`inactive`). The relay uses them to
//! know which codecs a leg offered (e.g. whether DTMF `telephone-event` is
//! present) and which way media flows (hold/resume).

use super::{Attribute, MediaDescription, SdpLine, SessionDescription};

/// One RTP payload format offered on an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// RTP payload type (0–127).
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`, ...).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (number of channels for audio), if given.
    pub channels: Option<u16>,
    /// The `a=fmtp` parameters for this payload type, if any.
    pub fmtp: Option<String>,
}

impl Codec {
    /// Whether this is the RFC 4733 DTMF event format.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let sdp = SessionDescription::parse(b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0 101\r\n\
    ///     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n").unwrap();
    /// let codecs = sdp.media[0].codecs();
    /// assert_eq!(codecs[0].encoding, "PCMU");
    /// assert!(codecs[1].is_telephone_event());
    /// assert_eq!(codecs[1].fmtp.as_deref(), Some("0-16"));
    /// ```
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }
}

/// Static payload types of RFC 3551 §6: (pt, encoding, clock rate, channels).
const STATIC_PAYLOAD_TYPES: &[(u8, &str, u32, Option<u16>)] = &[
    (0, "PCMU", 8000, Some(1)),
    (3, "GSM", 8000, Some(1)),
    (4, "G723", 8000, Some(1)),
    (5, "DVI4", 8000, Some(1)),
    (6, "DVI4", 16000, Some(1)),
    (7, "LPC", 8000, Some(1)),
    (8, "PCMA", 8000, Some(1)),
    (9, "G722", 8000, Some(1)),
    (10, "L16", 44100, Some(2)),
    (11, "L16", 44100, Some(1)),
    (12, "QCELP", 8000, Some(1)),
    (13, "CN", 8000, Some(1)),
    (14, "MPA", 90000, None),
    (15, "G728", 8000, Some(1)),
    (16, "DVI4", 11025, Some(1)),
    (17, "DVI4", 22050, Some(1)),
    (18, "G729", 8000, Some(1)),
    (25, "CelB", 90000, None),
    (26, "JPEG", 90000, None),
    (28, "nv", 90000, None),
    (31, "H261", 90000, None),
    (32, "MPV", 90000, None),
    (33, "MP2T", 90000, None),
    (34, "H263", 90000, None),
];

/// The codec a static payload type stands for, if it has one.
///
/// ```
/// use maskline_sip::sdp::static_payload_type;
/// assert_eq!(static_payload_type(8).unwrap().encoding, "PCMA");
/// assert!(static_payload_type(101).is_none());
/// ```
pub fn static_payload_type(pt: u8) -> Option<Codec> {
    STATIC_PAYLOAD_TYPES.iter().find(|(p, ..)| *p == pt).map(
        |&(payload_type, enc, clock_rate, channels)| Codec {
            payload_type,
            encoding: enc.to_owned(),
            clock_rate,
            channels,
            fmtp: None,
        },
    )
}

/// Split `a=rtpmap`/`a=fmtp` values into the payload type and the rest.
fn pt_value(attr: &Attribute, name: &str, pt: u8) -> Option<String> {
    if attr.name != name {
        return None;
    }
    let value = attr.value.as_deref()?;
    let (p, rest) = value.split_once(' ').unwrap_or((value, ""));
    (p.parse::<u8>().ok()? == pt).then(|| rest.trim().to_owned())
}

/// Parse `<encoding>/<clock rate>[/<params>]` of an rtpmap.
fn parse_rtpmap(pt: u8, value: &str) -> Option<Codec> {
    let mut it = value.split('/');
    let encoding = it.next().filter(|e| !e.is_empty())?;
    let clock_rate = it.next()?.trim().parse().ok()?;
    let channels = match it.next() {
        Some(c) => Some(c.trim().parse().ok()?),
        None => None,
    };
    Some(Codec {
        payload_type: pt,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
        fmtp: None,
    })
}

impl MediaDescription {
    /// Whether the `m=` line carries RTP (`RTP/AVP`, `RTP/SAVP`,
    /// `UDP/TLS/RTP/SAVPF`, ...), so that its formats are payload types.
    pub fn is_rtp(&self) -> bool {
        self.media.proto.split('/').any(|p| p == "RTP")
    }

    /// Whether the stream was rejected or disabled (port 0, RFC 3264 §6).
    pub fn is_rejected(&self) -> bool {
        self.media.port == 0
    }

    /// The codecs offered, in `m=` line order (the order of preference).
    ///
    /// Each payload type is described by its `a=rtpmap` if there is one,
    /// else by the RFC 3551 static table; dynamic payload types without an
    /// rtpmap are skipped. Empty for non-RTP media.
    pub fn codecs(&self) -> Vec<Codec> {
        if !self.is_rtp() {
            return Vec::new();
        }
        self.media
            .formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().filter(|pt| *pt <= 127))
            .filter_map(|pt| {
                let mapped = self
                    .attributes()
                    .find_map(|a| pt_value(a, "rtpmap", pt))
                    .and_then(|v| parse_rtpmap(pt, &v));
                let mut codec = mapped.or_else(|| static_payload_type(pt))?;
                codec.fmtp = self.attributes().find_map(|a| pt_value(a, "fmtp", pt));
                Some(codec)
            })
            .collect()
    }

    /// The direction attribute of this media section, if it has one.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.lines)
    }

    /// Replace any direction attributes of this media section by `dir`.
    ///
    /// ```
    /// use maskline_sip::sdp::{Direction, SessionDescription};
    /// let mut sdp = SessionDescription::parse(
    ///     b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\n").unwrap();
    /// sdp.media[0].set_direction(Direction::SendOnly);
    /// assert_eq!(sdp.media[0].direction(), Some(Direction::SendOnly));
    /// assert!(sdp.to_string().ends_with("a=sendonly\r\n"));
    /// ```
    pub fn set_direction(&mut self, dir: Direction) {
        set_direction_in(&mut self.lines, dir);
    }
}

impl SessionDescription {
    /// The session-level direction attribute, if there is one.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.lines)
    }

    /// Replace any session-level direction attributes by `dir`.
    pub fn set_direction(&mut self, dir: Direction) {
        set_direction_in(&mut self.lines, dir);
    }

    /// The direction in force for `media`: its own attribute, else the
    /// session-level one, else `sendrecv` (RFC 3264 §5.1).
    ///
    /// ```
    /// use maskline_sip::sdp::{Direction, SessionDescription};
    /// let sdp = SessionDescription::parse(
    ///     b"v=0\r\ns=-\r\nt=0 0\r\na=recvonly\r\nm=audio 1 RTP/AVP 0\r\n").unwrap();
    /// assert_eq!(sdp.media_direction(&sdp.media[0]), Direction::RecvOnly);
    /// ```
    pub fn media_direction(&self, media: &MediaDescription) -> Direction {
        media
            .direction()
            .or_else(|| self.direction())
            .unwrap_or(Direction::SendRecv)
    }
}

fn direction_in(lines: &[SdpLine]) -> Option<Direction> {
    lines.iter().find_map(|l| match l {
        SdpLine::Attribute(a) if a.value.is_none() => Direction::from_attribute(&a.name),
        _ => None,
    })
}

fn set_direction_in(lines: &mut Vec<SdpLine>, dir: Direction) {
    lines.retain(
        |l| !matches!(l, SdpLine::Attribute(a) if Direction::from_attribute(&a.name).is_some()),
    );
    lines.push(SdpLine::Attribute(Attribute::property(dir.as_str())));
}

/// Media direction (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute, if it is one.
    pub fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The direction seen from the other side: what an answer mirrors
    /// (`sendonly` ↔ `recvonly`).
    ///
    /// ```
    /// use maskline_sip::sdp::Direction;
    /// assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
    /// assert_eq!(Direction::Inactive.reversed(), Direction::Inactive);
    /// ```
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether the side that wrote this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}
