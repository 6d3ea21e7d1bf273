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

impl<'a> RequestInfo<'a> {
    /// The fields of the request in `buf`, for a request about to be sent:
    /// the same fields [`Message::parse`] then
    /// [`from_message`](Self::from_message) give, without parsing a request
    /// this process has just built whole a second time. Only the start line
    /// and the headers read here are looked at: the body, Content-Length and
    /// the parser's size limits are not checked. A head that is not plain (a
    /// folded line, several values on one Via or Route line, a quote or `<`
    /// in the Via, a repeated From, To, Call-ID or CSeq, a header name in
    /// another spelling, a byte that is not UTF-8 or is a control) and one
    /// with an error are read by the full parser, so errors are its own.
    ///
    /// ```
    /// use maskline_sip::{Message, transaction::RequestInfo};
    /// let req = b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n\
    ///     Via: SIP/2.0/UDP PC.Example:5070;branch=z9hG4bK74\r\n\
    ///     From: <sip:a@h>;tag=f1\r\nTo: <sip:bob@192.0.2.4>;tag=t2\r\nCall-ID: c9\r\n\
    ///     CSeq: 4 BYE\r\nRoute: <sip:p1;lr>\r\nContent-Length: 0\r\n\r\n";
    /// let quick = RequestInfo::from_bytes(req).unwrap();
    /// let full = RequestInfo::from_message(&Message::parse(req).unwrap()).unwrap();
    /// assert_eq!(quick, full);
    /// ```
    ///
    /// # Errors
    /// What [`Message::parse`] or [`from_message`](Self::from_message)
    /// returns for `buf`.
    pub fn from_bytes(buf: &'a [u8]) -> Result<Self, ParseError> {
        match quick_request(buf) {
            Some(info) => Ok(info),
            None => Self::from_message(&Message::parse(buf)?),
        }
    }
}

/// [`RequestInfo::from_bytes`] for a plain head; `None` sends it to the full
/// parser (which also gives the right error for a bad one).
fn quick_request(buf: &[u8]) -> Option<RequestInfo<'_>> {
    let mut rest = buf;
    let start = plain_str(next_line(&mut rest)?)?;
    let (method, rest_of_start) = start.split_once(' ')?;
    let (request_uri, version) = rest_of_start.split_once(' ')?;
    if version != crate::message::SIP_VERSION
        || request_uri.is_empty()
        || crate::Method::parse(method).is_err()
    {
        return None;
    }
    let (mut via, mut from, mut to, mut call_id, mut cseq) = (None, None, None, None, None);
    let mut routes = Vec::new();
    loop {
        let line = next_line(&mut rest)?;
        let colon = match line.first() {
            None => break,
            // A fold goes to the full parser.
            Some(b' ' | b'\t') => return None,
            Some(_) => memchr::memchr(b':', line)?,
        };
        let name = line.get(..colon)?;
        let slot = match name {
            b"Via" if via.is_none() => &mut via,
            b"From" => &mut from,
            b"To" => &mut to,
            b"Call-ID" => &mut call_id,
            b"CSeq" => &mut cseq,
            b"Route" => {
                let value = plain_str(line.get(colon + 1..)?)?;
                if value.contains([',', '"']) {
                    return None;
                }
                routes.push(crate::NameAddr::parse(trim_lws(value)).ok()?.as_str());
                continue;
            }
            b"Via" => continue,
            // Another header, unless it is one of these in another spelling.
            _ => match crate::HeaderName::from_raw(std::str::from_utf8(name).ok()?.trim_end()) {
                crate::HeaderName::Via
                | crate::HeaderName::From
                | crate::HeaderName::To
                | crate::HeaderName::CallId
                | crate::HeaderName::CSeq
                | crate::HeaderName::Route => return None,
                _ => continue,
            },
        };
        let value = trim_lws(plain_str(line.get(colon + 1..)?)?);
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let (via_s, from_s, to_s, call_id) = (via?, from?, to?, call_id?);
    if via_s.contains(',') || call_id.is_empty() || call_id.contains([' ', '\t']) {
        return None;
    }
    let via = Via::parse(via_s).ok().filter(Via::is_plain)?;
    let from = crate::NameAddr::parse(from_s).ok()?;
    let to = crate::NameAddr::parse(to_s).ok()?;
    let cseq = crate::typed::CSeq::parse(cseq?).ok()?;
    Some(RequestInfo {
        method,
        request_uri,
        top_via: via.as_str(),
        branch: via.branch(),
        sent_by: SentBy::from(&via),
        call_id,
        from: from.as_str(),
        from_tag: from.tag(),
        to: to.as_str(),
        to_tag: to.tag(),
        cseq: cseq.seq,
        routes,
    })
}

/// The next CRLF-ended line of `rest` (without its CRLF), moving past it;
/// `None` when no line end is left or it is a bare LF.
fn next_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let lf = memchr::memchr(b'\n', rest)?;
    let line = rest.get(..lf)?.strip_suffix(b"\r")?;
    *rest = rest.get(lf + 1..)?;
    Some(line)
}

/// `b` as text when it holds no control byte but HT (so no bare CR) and no DEL.
fn plain_str(b: &[u8]) -> Option<&str> {
    if crate::scan::has_control(b) {
        return None;
    }
    std::str::from_utf8(b).ok()
}

/// `s` without leading and trailing SP and HT.
fn trim_lws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PLAIN: &str = "INVITE sip:b@192.0.2.4 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq1;rport\r\n\
        Max-Forwards: 70\r\nFrom: \"A\" <sip:a@h>;tag=f1\r\nTo: <sip:b@192.0.2.4>\r\n\
        Call-ID: c1\r\nCSeq: 7 INVITE\r\nRoute: <sip:p1;lr>\r\nRoute: <sip:p2;lr>\r\n\
        Content-Length: 0\r\n\r\n";

    fn full(raw: &[u8]) -> Result<RequestInfo<'_>, ParseError> {
        RequestInfo::from_message(&Message::parse(raw)?)
    }

    #[test]
    fn a_plain_request_is_read_without_the_parser() {
        let raw = PLAIN.as_bytes();
        let quick = quick_request(raw).unwrap();
        assert_eq!(quick, full(raw).unwrap());
        assert_eq!(quick.routes, ["<sip:p1;lr>", "<sip:p2;lr>"]);
        assert_eq!(
            (quick.branch, quick.from_tag, quick.cseq),
            (Some("z9hG4bKq1"), Some("f1"), 7)
        );
    }

    #[test]
    fn every_other_head_goes_to_the_parser_and_reads_the_same() {
        let variants = [
            (
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq1;rport",
                "v: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKc",
            ),
            (
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq1;rport",
                "via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKl",
            ),
            (
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq1;rport",
                "Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b",
            ),
            (
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq1;rport",
                "Via: SIP/2.0/UDP a;branch=z9hG4bK1;x=\"q\"",
            ),
            (
                "To: <sip:b@192.0.2.4>",
                "To:\r\n <sip:b@192.0.2.4>;tag=folded",
            ),
            ("To: <sip:b@192.0.2.4>", "t: <sip:b@192.0.2.4>;tag=compact"),
            ("Call-ID: c1", "Call-ID: c1\r\ni: c1"),
            ("Route: <sip:p1;lr>", "Route: <sip:p0;lr>, <sip:p1;lr>"),
        ];
        for (from, to) in variants {
            let text = PLAIN.replacen(from, to, 1);
            let raw = text.as_bytes();
            assert!(quick_request(raw).is_none(), "{text}");
            assert_eq!(RequestInfo::from_bytes(raw), full(raw), "{text}");
        }
        // Broken requests: the parser's error.
        for (from, to) in [
            ("Call-ID: c1", "Call-ID: c1\r\nCall-ID: c2"),
            ("From: \"A\" <sip:a@h>;tag=f1\r\n", ""),
            (
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKq1;rport",
                "Via: nonsense",
            ),
            ("INVITE sip", "INVITE  sip"),
        ] {
            let text = PLAIN.replacen(from, to, 1);
            let raw = text.as_bytes();
            assert!(quick_request(raw).is_none(), "{text}");
            let got = RequestInfo::from_bytes(raw);
            assert!(got.is_err(), "{text}");
            assert_eq!(got, full(raw), "{text}");
        }
    }
}
