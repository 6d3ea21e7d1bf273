//! SIP request methods (RFC 3261 §7.1 and the extension RFCs).
//!
//! Methods are case-sensitive tokens; the well-known ones get an enum
//! variant so the transaction layer can `match` on them, anything else is
//! kept as a borrowed extension token.
#![deny(clippy::indexing_slicing)]

use std::fmt;

use crate::scan::is_token;
use crate::ParseError;

/// A SIP method.
///
/// ```
/// use maskline_sip::Method;
///
/// assert_eq!(Method::parse("INVITE").unwrap(), Method::Invite);
/// assert_eq!(Method::parse("FOO").unwrap(), Method::Extension("FOO"));
/// assert_eq!(Method::Bye.as_str(), "BYE");
/// assert!(Method::parse("BAD METHOD").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// REGISTER (RFC 3261).
    Register,
    /// OPTIONS (RFC 3261).
    Options,
    /// INFO (RFC 6086).
    Info,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other method token.
    Extension(&'a str),
}

impl<'a> Method<'a> {
    /// Parses a method token (case-sensitive, as RFC 3261 requires).
    ///
    /// # Errors
    /// [`ParseError::InvalidMethod`] when `s` is not a token.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        Ok(match s {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "REGISTER" => Self::Register,
            "OPTIONS" => Self::Options,
            "INFO" => Self::Info,
            "UPDATE" => Self::Update,
            "PRACK" => Self::Prack,
            "SUBSCRIBE" => Self::Subscribe,
            "NOTIFY" => Self::Notify,
            "REFER" => Self::Refer,
            "MESSAGE" => Self::Message,
            "PUBLISH" => Self::Publish,
            other if is_token(other) => Self::Extension(other),
            _ => return Err(ParseError::InvalidMethod),
        })
    }

    /// The method as written on the wire.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Register => "REGISTER",
            Self::Options => "OPTIONS",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Prack => "PRACK",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Refer => "REFER",
            Self::Message => "MESSAGE",
            Self::Publish => "PUBLISH",
            Self::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(
            Method::parse("invite").unwrap(),
            Method::Extension("invite")
        );
        assert_eq!(Method::parse("NOTIFY").unwrap(), Method::Notify);
    }

    #[test]
    fn rejects_non_tokens() {
        assert_eq!(Method::parse(""), Err(ParseError::InvalidMethod));
        assert_eq!(Method::parse("IN<VITE"), Err(ParseError::InvalidMethod));
    }

    #[test]
    fn round_trips_as_str() {
        for m in ["INVITE", "ACK", "BYE", "CANCEL", "PRACK", "X-Y"] {
            assert_eq!(Method::parse(m).unwrap().as_str(), m);
        }
    }
}
