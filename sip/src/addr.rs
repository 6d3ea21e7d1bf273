//! Address headers: `name-addr` / `addr-spec` with header parameters
//! (RFC 3261 §20.10, §20.20, §20.39, and the same shape in Route,
//! Record-Route, P-Asserted-Identity, Diversion, History-Info, Refer-To).
//!
//! The masking relay rewrites identities, so display names and URIs are
//! exposed separately and the `tag` parameter has its own accessor.
#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;

use crate::params::Params;
use crate::scan::{find_unquoted, is_lws, is_token, quoted_len, trim, unquote};
use crate::uri::Uri;
use crate::ParseError;

/// An address with optional display name and header parameters, e.g.
/// `"Alice" <sip:alice@example.com>;tag=1928301774`.
///
/// ```
/// use maskline_sip::NameAddr;
///
/// let a = NameAddr::parse(r#""Bob \"B\"" <sip:bob@example.com;transport=tcp>;tag=a6c85cf"#).unwrap();
/// assert_eq!(a.display_name().as_deref(), Some(r#"Bob "B""#));
/// assert_eq!(a.uri().user(), Some("bob"));
/// assert_eq!(a.uri().params().value("transport"), Some("tcp"));
/// assert_eq!(a.tag(), Some("a6c85cf"));
///
/// // addr-spec form: parameters after the URI belong to the header.
/// let b = NameAddr::parse("sip:carol@example.com;tag=88").unwrap();
/// assert_eq!(b.tag(), Some("88"));
/// assert_eq!(b.uri().as_str(), "sip:carol@example.com");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    raw: &'a str,
    display: Option<&'a str>,
    uri: Uri<'a>,
    angle: bool,
    params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses one address value (no top-level commas).
    ///
    /// # Errors
    /// [`ParseError::UnterminatedQuote`], [`ParseError::UnterminatedAngle`]
    /// or [`ParseError::InvalidUri`] when the value does not parse.
    #[inline]
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        let raw = trim(raw);
        let lt = find_unquoted(raw, b'<')?;
        let (display, uri_s, after) = match lt {
            Some(lt) => {
                let before = trim(raw.get(..lt).ok_or(ParseError::InvalidUri)?);
                let display = if before.is_empty() {
                    None
                } else if before.starts_with('"') {
                    // A quoted display name must be the whole prefix.
                    if quoted_len(before)? != before.len() {
                        return Err(ParseError::InvalidUri);
                    }
                    Some(before)
                } else {
                    if before.contains('"') {
                        return Err(ParseError::UnterminatedQuote);
                    }
                    // An unquoted display name is tokens separated by LWS
                    // (RFC 3261 §25.1); `Bell, Alexander <...>` is not.
                    if !before
                        .split(|c: char| c.is_ascii() && is_lws(c as u8))
                        .all(|t| t.is_empty() || is_token(t))
                    {
                        return Err(ParseError::InvalidUri);
                    }
                    Some(before)
                };
                let inner = raw.get(lt + 1..).ok_or(ParseError::InvalidUri)?;
                let gt =
                    memchr::memchr(b'>', inner.as_bytes()).ok_or(ParseError::UnterminatedAngle)?;
                let uri_s = inner.get(..gt).ok_or(ParseError::InvalidUri)?;
                let after = inner.get(gt + 1..).ok_or(ParseError::InvalidUri)?;
                (display, trim(uri_s), after)
            }
            None => {
                if raw.starts_with('"') {
                    quoted_len(raw)?;
                    return Err(ParseError::InvalidUri);
                }
                let (uri_s, after) = match memchr::memchr(b';', raw.as_bytes()) {
                    Some(i) => (
                        raw.get(..i).ok_or(ParseError::InvalidUri)?,
                        raw.get(i..).ok_or(ParseError::InvalidUri)?,
                    ),
                    None => (raw, ""),
                };
                // Without <...> the URI may not contain `,` `?` or `;`
                // (RFC 3261 §20.10): `m: sip:u@h?Route=...` is malformed.
                if uri_s.bytes().any(|b| b == b',' || b == b'?') {
                    return Err(ParseError::InvalidUri);
                }
                (None, uri_s, after)
            }
        };
        let after = trim(after);
        let params = if after.is_empty() {
            ""
        } else {
            after.strip_prefix(';').ok_or(ParseError::InvalidUri)?
        };
        let uri = Uri::parse(trim(uri_s))?;
        Ok(NameAddr {
            raw,
            display,
            uri,
            angle: lt.is_some(),
            params: Params::new(params),
        })
    }

    /// The whole value as received.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The display name as written (quotes and escapes kept), if any.
    #[must_use]
    pub fn display_name_raw(&self) -> Option<&'a str> {
        self.display
    }

    /// The display name with quotes and escapes removed, if any.
    #[must_use]
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(unquote)
    }

    /// The URI.
    #[must_use]
    pub fn uri(&self) -> Uri<'a> {
        self.uri
    }

    /// True when the URI was written inside `<...>`.
    #[must_use]
    pub fn has_angle_brackets(&self) -> bool {
        self.angle
    }

    /// Header parameters (after the URI).
    #[must_use]
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `tag` parameter (From/To).
    #[must_use]
    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }
}

/// A Contact value: `*` (only in REGISTER) or an address.
// Short-lived stack value; boxing the address would cost an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *`
    Star,
    /// A normal contact address with `expires`, `q` ... parameters.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one Contact value.
    ///
    /// # Errors
    /// As [`NameAddr::parse`].
    #[inline]
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        if trim(raw) == "*" {
            Ok(Contact::Star)
        } else {
            NameAddr::parse(raw).map(Contact::Addr)
        }
    }

    /// The address, unless this is `*`.
    #[must_use]
    pub fn addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_display_name() {
        let a = NameAddr::parse("Alice Smith <sip:alice@atlanta.com>;tag=1928301774").unwrap();
        assert_eq!(a.display_name().as_deref(), Some("Alice Smith"));
        assert_eq!(a.tag(), Some("1928301774"));
        assert!(a.has_angle_brackets());
    }

    #[test]
    fn no_display_name_and_spacing() {
        let a = NameAddr::parse("  <sip:x@y>  ;  tag = 7 ").unwrap();
        assert_eq!(a.display_name(), None);
        assert_eq!(a.tag(), Some("7"));
    }

    #[test]
    fn quoted_display_with_angle_and_comma_inside() {
        let a = NameAddr::parse(r#""<a, b>" <tel:+15550100>"#).unwrap();
        assert_eq!(a.display_name().as_deref(), Some("<a, b>"));
        assert_eq!(a.uri().user(), Some("+15550100"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            NameAddr::parse(r#""abc <sip:x@y>"#),
            Err(ParseError::UnterminatedQuote)
        );
        assert_eq!(
            NameAddr::parse("<sip:x@y"),
            Err(ParseError::UnterminatedAngle)
        );
        assert_eq!(
            NameAddr::parse("<sip:x@y> junk"),
            Err(ParseError::InvalidUri)
        );
        assert_eq!(NameAddr::parse(""), Err(ParseError::InvalidUri));
        assert_eq!(NameAddr::parse("<>"), Err(ParseError::InvalidUri));
        assert_eq!(
            NameAddr::parse(r#"a"b <sip:x@y>"#),
            Err(ParseError::UnterminatedQuote)
        );
    }

    #[test]
    fn contact_star() {
        assert_eq!(Contact::parse(" * ").unwrap(), Contact::Star);
        let c = Contact::parse("<sip:u@h>;expires=60;q=0.5").unwrap();
        assert_eq!(c.addr().unwrap().params().value("expires"), Some("60"));
    }
}
