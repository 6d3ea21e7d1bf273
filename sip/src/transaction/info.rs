//! The fields of a SIP message that the transaction layer reads.
//!
//! This module owns [`RequestInfo`] and [`ResponseInfo`]: small summaries
//! extracted once from a parsed message, so that the state machines and the
//! matching rules of RFC 3261 §17.1.3 / §17.2.3 do not depend on the parser's
//! types, and tests can build them directly. They borrow from the message:
//! the layer copies only what a transaction keeps (its matching key, and for
//! an INVITE client transaction the parts of its ACK), so matching a message
//! allocates nothing.

use std::fmt;

use crate::{Message, ParseError, Via, BRANCH_MAGIC_COOKIE};

/// A Via's sent-by (`host[:port]`), compared as RFC 3261 §20.42 asks: host
/// without regard to case, port as a number.
///
/// ```
/// use maskline_sip::transaction::SentBy;
/// let s = SentBy::from("PC.Example:05070");
/// assert_eq!((s.host, s.port), ("PC.Example", Some(5070)));
/// assert_eq!(s.to_string(), "pc.example:5070");
/// assert_eq!(SentBy::from("[2001:db8::1]").port, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentBy<'a> {
    /// The host as written.
    pub host: &'a str,
    /// The port, if written.
    pub port: Option<u16>,
}

impl<'a> From<&'a str> for SentBy<'a> {
    /// Splits `host[:port]` (tests and hand-built infos); a port that is not a
    /// number stays part of the host.
    fn from(s: &'a str) -> Self {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && !port.contains(']') => match port.parse() {
                Ok(p) => SentBy {
                    host,
                    port: Some(p),
                },
                Err(_) => SentBy {
                    host: s,
                    port: None,
                },
            },
            _ => SentBy {
                host: s,
                port: None,
            },
        }
    }
}

impl fmt::Display for SentBy<'_> {
    /// Host lower-cased, then `:port` if written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.host.chars() {
            write!(f, "{}", c.to_ascii_lowercase())?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl<'a> From<&Via<'a>> for SentBy<'a> {
    fn from(via: &Via<'a>) -> Self {
        SentBy {
            host: via.host_str(),
            port: via.port(),
        }
    }
}

/// What the transaction layer needs to know about a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo<'a> {
    /// Method token (case-sensitive), e.g. `INVITE`.
    pub method: &'a str,
    /// Request-URI as written.
    pub request_uri: &'a str,
    /// The top Via value as written.
    pub top_via: &'a str,
    /// The top Via's `branch` parameter.
    pub branch: Option<&'a str>,
    /// The top Via's sent-by.
    pub sent_by: SentBy<'a>,
    /// Call-ID.
    pub call_id: &'a str,
    /// The From header value as written.
    pub from: &'a str,
    /// The From tag.
    pub from_tag: Option<&'a str>,
    /// The To header value as written.
    pub to: &'a str,
    /// The To tag.
    pub to_tag: Option<&'a str>,
    /// CSeq number.
    pub cseq: u32,
    /// Route header values, in order (copied into the ACK of a non-2xx).
    pub routes: Vec<&'a str>,
}

impl<'a> RequestInfo<'a> {
    /// Whether the top Via carries an RFC 3261 branch (`z9hG4bK...`), so
    /// that branch-based matching applies.
    ///
    /// ```
    /// use maskline_sip::transaction::RequestInfo;
    /// let mut r = RequestInfo { branch: Some("z9hG4bKabc"), ..Default::default() };
    /// assert!(r.has_rfc3261_branch());
    /// r.branch = Some("1234");
    /// assert!(!r.has_rfc3261_branch());
    /// ```
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .and_then(|b| b.get(..BRANCH_MAGIC_COOKIE.len()))
            .is_some_and(|p| p.eq_ignore_ascii_case(BRANCH_MAGIC_COOKIE))
    }

    /// Extract the fields from a parsed request.
    ///
    /// ```
    /// use maskline_sip::{Message, transaction::RequestInfo};
    /// let msg = Message::parse(b"INVITE sip:bob@192.0.2.4 SIP/2.0\r\n\
    ///     Via: SIP/2.0/UDP PC.Example:5070;branch=z9hG4bK74\r\n\
    ///     From: <sip:a@h>;tag=f1\r\nTo: <sip:bob@192.0.2.4>\r\nCall-ID: c9\r\n\
    ///     CSeq: 4 INVITE\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\n\r\n").unwrap();
    /// let info = RequestInfo::from_message(&msg).unwrap();
    /// assert_eq!(info.method, "INVITE");
    /// assert_eq!(info.sent_by.to_string(), "pc.example:5070");
    /// assert_eq!(info.branch, Some("z9hG4bK74"));
    /// assert_eq!((info.from_tag, info.to_tag), (Some("f1"), None));
    /// assert_eq!(info.routes, ["<sip:p1;lr>", "<sip:p2;lr>"]);
    /// ```
    pub fn from_message(msg: &Message<'a>) -> Result<Self, ParseError> {
        let line = msg.request_line().ok_or(ParseError::InvalidStartLine)?;
        let via = msg.top_via()?;
        let from = msg.from()?;
        let to = msg.to()?;
        let routes = msg
            .routes()
            .map(|r| r.map(|a| a.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RequestInfo {
            method: line.method.as_str(),
            request_uri: line.uri,
            top_via: via.as_str(),
            branch: via.branch(),
            sent_by: SentBy::from(&via),
            call_id: msg.call_id()?,
            from: from.as_str(),
            from_tag: from.tag(),
            to: to.as_str(),
            to_tag: to.tag(),
            cseq: msg.cseq()?.seq,
            routes,
        })
    }
}

/// What the transaction layer needs to know about a response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseInfo<'a> {
    /// Status code.
    pub status: u16,
    /// The top Via's `branch` parameter.
    pub branch: Option<&'a str>,
    /// The CSeq method.
    pub cseq_method: &'a str,
    /// The To header value as written (copied into the ACK of a non-2xx).
    pub to: &'a str,
}

impl<'a> ResponseInfo<'a> {
    /// Extract the fields from a parsed response.
    ///
    /// ```
    /// use maskline_sip::{Message, transaction::ResponseInfo};
    /// let msg = Message::parse(b"SIP/2.0 486 Busy Here\r\n\
    ///     Via: SIP/2.0/UDP relay.example;branch=z9hG4bK74\r\n\
    ///     From: <sip:a@h>;tag=f1\r\nTo: <sip:b@h>;tag=t2\r\nCall-ID: c9\r\n\
    ///     CSeq: 4 INVITE\r\n\r\n").unwrap();
    /// let info = ResponseInfo::from_message(&msg).unwrap();
    /// assert_eq!((info.status, info.cseq_method), (486, "INVITE"));
    /// assert_eq!(info.to, "<sip:b@h>;tag=t2");
    /// ```
    pub fn from_message(msg: &Message<'a>) -> Result<Self, ParseError> {
        let status = msg.status().ok_or(ParseError::InvalidStartLine)?;
        let via = msg.top_via()?;
        Ok(ResponseInfo {
            status,
            branch: via.branch(),
            cseq_method: msg.cseq()?.method.as_str(),
            to: msg.to()?.as_str(),
        })
    }
}
