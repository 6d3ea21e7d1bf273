//! The fields of a SIP message that the transaction layer reads.
//!
//! This module owns [`RequestInfo`] and [`ResponseInfo`]: small owned
//! summaries extracted once from a parsed message, so that the state machines
//! and the matching rules of RFC 3261 §17.1.3 / §17.2.3 do not depend on the
//! parser's borrowed types, and tests can build them directly.

use crate::{Message, ParseError, Via, BRANCH_MAGIC_COOKIE};

/// `host[:port]` of a Via, host lower-cased, for sent-by comparison.
fn sent_by(via: &Via<'_>) -> String {
    let mut s = via.host_str().to_ascii_lowercase();
    if let Some(port) = via.port() {
        s.push(':');
        s.push_str(&port.to_string());
    }
    s
}

/// What the transaction layer needs to know about a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo {
    /// Method token (case-sensitive), e.g. `INVITE`.
    pub method: String,
    /// Request-URI as written.
    pub request_uri: String,
    /// The top Via value as written.
    pub top_via: String,
    /// The top Via's `branch` parameter.
    pub branch: Option<String>,
    /// The top Via's sent-by (`host[:port]`), lower-cased.
    pub sent_by: String,
    /// Call-ID.
    pub call_id: String,
    /// The From header value as written.
    pub from: String,
    /// The From tag.
    pub from_tag: Option<String>,
    /// The To header value as written.
    pub to: String,
    /// The To tag.
    pub to_tag: Option<String>,
    /// CSeq number.
    pub cseq: u32,
    /// Route header values, in order (copied into the ACK of a non-2xx).
    pub routes: Vec<String>,
}

impl RequestInfo {
    /// Whether the top Via carries an RFC 3261 branch (`z9hG4bK...`), so
    /// that branch-based matching applies.
    ///
    /// ```
    /// use maskline_sip::transaction::RequestInfo;
    /// let mut r = RequestInfo { branch: Some("z9hG4bKabc".into()), ..Default::default() };
    /// assert!(r.has_rfc3261_branch());
    /// r.branch = Some("1234".into());
    /// assert!(!r.has_rfc3261_branch());
    /// ```
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .as_deref()
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
    /// assert_eq!(info.sent_by, "pc.example:5070");
    /// assert_eq!(info.branch.as_deref(), Some("z9hG4bK74"));
    /// assert_eq!((info.from_tag.as_deref(), info.to_tag), (Some("f1"), None));
    /// assert_eq!(info.routes, ["<sip:p1;lr>", "<sip:p2;lr>"]);
    /// ```
    pub fn from_message(msg: &Message<'_>) -> Result<Self, ParseError> {
        let line = msg.request_line().ok_or(ParseError::InvalidStartLine)?;
        let via = msg.top_via()?;
        let from = msg.from()?;
        let to = msg.to()?;
        let routes = msg
            .routes()
            .map(|r| r.map(|a| a.as_str().to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RequestInfo {
            method: line.method.as_str().to_owned(),
            request_uri: line.uri.to_owned(),
            top_via: via.as_str().to_owned(),
            branch: via.branch().map(str::to_owned),
            sent_by: sent_by(&via),
            call_id: msg.call_id()?.to_owned(),
            from: from.as_str().to_owned(),
            from_tag: from.tag().map(str::to_owned),
            to: to.as_str().to_owned(),
            to_tag: to.tag().map(str::to_owned),
            cseq: msg.cseq()?.seq,
            routes,
        })
    }
}

/// What the transaction layer needs to know about a response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseInfo {
    /// Status code.
    pub status: u16,
    /// The top Via's `branch` parameter.
    pub branch: Option<String>,
    /// The CSeq method.
    pub cseq_method: String,
    /// The To header value as written (copied into the ACK of a non-2xx).
    pub to: String,
}

impl ResponseInfo {
    /// Extract the fields from a parsed response.
    ///
    /// ```
    /// use maskline_sip::{Message, transaction::ResponseInfo};
    /// let msg = Message::parse(b"SIP/2.0 486 Busy Here\r\n\
    ///     Via: SIP/2.0/UDP relay.example;branch=z9hG4bK74\r\n\
    ///     From: <sip:a@h>;tag=f1\r\nTo: <sip:b@h>;tag=t2\r\nCall-ID: c9\r\n\
    ///     CSeq: 4 INVITE\r\n\r\n").unwrap();
    /// let info = ResponseInfo::from_message(&msg).unwrap();
    /// assert_eq!((info.status, info.cseq_method.as_str()), (486, "INVITE"));
    /// assert_eq!(info.to, "<sip:b@h>;tag=t2");
    /// ```
    pub fn from_message(msg: &Message<'_>) -> Result<Self, ParseError> {
        let status = msg.status().ok_or(ParseError::InvalidStartLine)?;
        let via = msg.top_via()?;
        Ok(ResponseInfo {
            status,
            branch: via.branch().map(str::to_owned),
            cseq_method: msg.cseq()?.method.as_str().to_owned(),
            to: msg.to()?.as_str().to_owned(),
        })
    }
}
