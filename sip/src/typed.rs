//! Small typed headers: CSeq, Max-Forwards, Content-Type, Privacy and
//! Reason (RFC 3261 §20.16, §20.22, §20.15; RFC 3323; RFC 3326).
//!
//! Each parser takes the raw header value and borrows from it.
#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;

use crate::method::Method;
use crate::params::Params;
use crate::scan::{eq_ic, is_token, parse_decimal, same_ic, split_byte, trim, unquote};
use crate::ParseError;

/// `CSeq: 4711 INVITE`.
///
/// ```
/// use maskline_sip::{CSeq, Method};
/// let c = CSeq::parse("  4711   INVITE ").unwrap();
/// assert_eq!((c.seq, c.method), (4711, Method::Invite));
/// assert!(CSeq::parse("-1 INVITE").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (RFC 3261: less than 2^31).
    pub seq: u32,
    /// Method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parses a CSeq value.
    ///
    /// # Errors
    /// [`ParseError::InvalidHeader`]`("CSeq")`.
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        const E: ParseError = ParseError::InvalidHeader("CSeq");
        let raw = trim(raw);
        let split = raw
            .bytes()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .ok_or(E)?;
        let num = raw.get(..split).ok_or(E)?;
        let method = trim(raw.get(split..).ok_or(E)?);
        let seq = parse_decimal(num, 10)
            .filter(|&v| v < (1 << 31))
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(E)?;
        let method = Method::parse(method).map_err(|_| E)?;
        Ok(CSeq { seq, method })
    }
}

/// Parses Max-Forwards (`0..=255`).
///
/// ```
/// assert_eq!(maskline_sip::parse_max_forwards(" 70 "), Ok(70));
/// assert!(maskline_sip::parse_max_forwards("4294967301").is_err());
/// ```
///
/// # Errors
/// [`ParseError::InvalidMaxForwards`].
pub fn parse_max_forwards(raw: &str) -> Result<u8, ParseError> {
    // Leading zeros are legal (`0068`), so bound the digit count loosely.
    parse_decimal(trim(raw), 10)
        .and_then(|v| u8::try_from(v).ok())
        .ok_or(ParseError::InvalidMaxForwards)
}

/// Parses Content-Length (a non-negative decimal, at most 10 digits).
///
/// # Errors
/// [`ParseError::InvalidContentLength`].
pub fn parse_content_length(raw: &str) -> Result<usize, ParseError> {
    parse_decimal(trim(raw), 10)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or(ParseError::InvalidContentLength)
}

/// `Content-Type: application/sdp;charset=utf-8`.
///
/// ```
/// use maskline_sip::ContentType;
/// let c = ContentType::parse("Application/SDP ; charset=utf-8").unwrap();
/// assert!(c.is("application", "sdp"));
/// assert_eq!(c.params().value("charset"), Some("utf-8"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a> {
    mtype: &'a str,
    subtype: &'a str,
    params: Params<'a>,
}

impl<'a> ContentType<'a> {
    /// Parses a media type.
    ///
    /// # Errors
    /// [`ParseError::InvalidHeader`]`("Content-Type")`.
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        const E: ParseError = ParseError::InvalidHeader("Content-Type");
        let (media, params) = match split_byte(raw, b';') {
            Some((m, p)) => (m, p),
            None => (raw, ""),
        };
        let (t, s) = split_byte(media, b'/').ok_or(E)?;
        let (t, s) = (trim(t), trim(s));
        if !is_token(t) || !is_token(s) {
            return Err(E);
        }
        Ok(ContentType {
            mtype: t,
            subtype: s,
            params: Params::new(params),
        })
    }

    /// Top-level type, e.g. `application`.
    #[must_use]
    pub fn mtype(&self) -> &'a str {
        self.mtype
    }

    /// Subtype, e.g. `sdp`.
    #[must_use]
    pub fn subtype(&self) -> &'a str {
        self.subtype
    }

    /// Parameters.
    #[must_use]
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// Case-insensitive comparison with `type/subtype`.
    #[must_use]
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        same_ic(self.mtype, mtype) && same_ic(self.subtype, subtype)
    }
}

/// `Privacy: id;header` (RFC 3323, RFC 3325): a list of tokens separated
/// by `;`.
///
/// ```
/// use maskline_sip::Privacy;
/// let p = Privacy::parse("id; header").unwrap();
/// assert!(p.has("id") && p.has("header") && !p.has("none"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privacy<'a> {
    raw: &'a str,
}

impl<'a> Privacy<'a> {
    /// Parses a Privacy value.
    ///
    /// # Errors
    /// [`ParseError::InvalidHeader`]`("Privacy")` when a value is not a token.
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        let p = Privacy { raw };
        if p.values().next().is_none() || !p.values().all(is_token) {
            return Err(ParseError::InvalidHeader("Privacy"));
        }
        Ok(p)
    }

    /// The privacy values in order.
    pub fn values(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.raw
            .split([';', ','])
            .map(trim)
            .filter(|s| !s.is_empty())
    }

    /// True when `value` is present (case-insensitive).
    #[must_use]
    pub fn has(&self, value: &str) -> bool {
        self.values().any(|v| eq_ic(v, value))
    }
}

/// `Reason: Q.850;cause=16;text="Normal call clearing"` (RFC 3326).
///
/// ```
/// use maskline_sip::Reason;
/// let r = Reason::parse(r#"Q.850 ;cause=16 ;text="Normal \"call\" clearing""#).unwrap();
/// assert_eq!(r.protocol(), "Q.850");
/// assert_eq!(r.cause(), Some(16));
/// assert_eq!(r.text().as_deref(), Some(r#"Normal "call" clearing"#));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    protocol: &'a str,
    params: Params<'a>,
}

impl<'a> Reason<'a> {
    /// Parses one Reason value.
    ///
    /// # Errors
    /// [`ParseError::InvalidHeader`]`("Reason")`.
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        let (proto, params) = match split_byte(raw, b';') {
            Some((p, rest)) => (trim(p), rest),
            None => (trim(raw), ""),
        };
        if !is_token(proto) {
            return Err(ParseError::InvalidHeader("Reason"));
        }
        Ok(Reason {
            protocol: proto,
            params: Params::new(params),
        })
    }

    /// Protocol token (`SIP`, `Q.850` ...).
    #[must_use]
    pub fn protocol(&self) -> &'a str {
        self.protocol
    }

    /// The `cause` parameter as a number.
    #[must_use]
    pub fn cause(&self) -> Option<u16> {
        self.params
            .value("cause")
            .and_then(|v| parse_decimal(v, 5))
            .and_then(|v| u16::try_from(v).ok())
    }

    /// The `text` parameter, unquoted.
    #[must_use]
    pub fn text(&self) -> Option<Cow<'a, str>> {
        self.params.value("text").map(unquote)
    }

    /// All parameters.
    #[must_use]
    pub fn params(&self) -> Params<'a> {
        self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_bounds_and_shapes() {
        assert_eq!(CSeq::parse("2147483647 BYE").unwrap().seq, 2_147_483_647);
        for bad in [
            "2147483648 BYE",
            "1",
            "INVITE",
            "1 IN VITE",
            "0x1 INVITE",
            "",
            "1\u{a0}INVITE",
        ] {
            assert_eq!(
                CSeq::parse(bad),
                Err(ParseError::InvalidHeader("CSeq")),
                "{bad:?}"
            );
        }
        assert_eq!(CSeq::parse("8\r\n INVITE").unwrap().method, Method::Invite);
    }

    #[test]
    fn max_forwards_and_content_length() {
        assert_eq!(parse_max_forwards("255"), Ok(255));
        assert!(parse_max_forwards("256").is_err());
        assert!(parse_max_forwards("").is_err());
        assert_eq!(parse_max_forwards("0068"), Ok(68));
        assert!(parse_max_forwards("+1").is_err());
        assert_eq!(parse_content_length("0"), Ok(0));
        assert!(parse_content_length("-5").is_err());
        assert!(parse_content_length("99999999999").is_err());
    }

    #[test]
    fn content_type_rejects_garbage() {
        assert!(ContentType::parse("sdp").is_err());
        assert!(ContentType::parse("a/").is_err());
    }

    #[test]
    fn privacy_rejects_empty() {
        assert!(Privacy::parse(" ").is_err());
        assert!(Privacy::parse("id;<x>").is_err());
    }
}
