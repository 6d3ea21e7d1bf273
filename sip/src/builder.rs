//! Owned builders for the messages a B2BUA sends: responses to a received
//! request, and new requests assembled from an allow-list of headers.
//!
//! A masking relay never forwards a message; it writes a new one and copies
//! only what it decided to copy. The builder therefore starts empty, copies
//! headers only on request, rejects any value that could inject a header
//! line (bare CR/LF, controls), and always writes Content-Length last.
#![deny(clippy::indexing_slicing)]

use thiserror::Error;

use crate::header::HeaderName;
use crate::message::{push_status, Message, SIP_VERSION};
use crate::method::Method;
use crate::scan::is_token;
use crate::ParseError;

/// Why a builder refused to produce a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A header name is not a token.
    #[error("invalid header name")]
    InvalidHeaderName,
    /// A header value holds a control byte or a CR/LF that is not a fold.
    #[error("invalid header value for {0}")]
    InvalidHeaderValue(String),
    /// The Request-URI holds white space or control bytes.
    #[error("invalid Request-URI")]
    InvalidRequestUri,
    /// The reason phrase holds control bytes.
    #[error("invalid reason phrase")]
    InvalidReasonPhrase,
    /// The status code is outside 100..=699.
    #[error("invalid status code")]
    InvalidStatusCode,
    /// The message a response or ACK/CANCEL is derived from lacks a header
    /// it needs.
    #[error("source message unusable: {0}")]
    Source(#[from] ParseError),
}

/// An outgoing SIP message under construction.
///
/// ```
/// use maskline_sip::{Message, MessageBuilder, Method, HeaderName};
///
/// let bytes = MessageBuilder::request(Method::Bye, "sip:bob@192.0.2.4")
///     .via("UDP", "relay.example.net", &maskline_sip::new_branch())
///     .max_forwards(70)
///     .header("From", "<sip:alice@relay.example.net>;tag=a1")
///     .header("To", "<sip:bob@192.0.2.4>;tag=b2")
///     .header("Call-ID", "c-1")
///     .cseq(2, Method::Bye)
///     .build()
///     .unwrap();
/// let msg = Message::parse(&bytes).unwrap();
/// msg.validate().unwrap();
/// assert_eq!(msg.content_length(), Some(0));
///
/// // Header injection is refused.
/// let err = MessageBuilder::request(Method::Bye, "sip:b@h")
///     .header("Subject", "x\r\nEvil: 1")
///     .build();
/// assert!(err.is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBuilder {
    /// The start line and every header line so far, each with its CRLF:
    /// the message is written as it is built, with no per-header allocation.
    head: Vec<u8>,
    body: Vec<u8>,
    error: Option<BuildError>,
    /// A Content-Type line may be in `head` (so [`body`](Self::body) has one
    /// to remove); false saves that scan on the usual path.
    content_type: bool,
}

/// Appends the decimal form of `n` without allocating.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            // n % 10 < 10, so the cast cannot truncate.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(&[]));
}

/// Iterates the header lines of `head` (after the start line) as
/// `(start, end, kind)` byte ranges, folded continuations included.
fn header_lines(head: &[u8]) -> Vec<(usize, usize, HeaderName)> {
    // Sized for a usual message: growing from empty costs three reallocations.
    let mut out = Vec::with_capacity(16);
    let mut pos = match crate::scan::find1(head, b'\n') {
        Some(i) => i + 1,
        None => return out,
    };
    while pos < head.len() {
        let mut end = pos;
        // A line ends at a CRLF not followed by SP/HT.
        loop {
            match head.get(end..).and_then(|r| crate::scan::find1(r, b'\n')) {
                Some(i) => {
                    end += i + 1;
                    if !matches!(head.get(end), Some(b' ' | b'\t')) {
                        break;
                    }
                }
                None => {
                    end = head.len();
                    break;
                }
            }
        }
        let line = head.get(pos..end).unwrap_or(&[]);
        let name_len = crate::scan::find1(line, b':').unwrap_or(0);
        let name = std::str::from_utf8(line.get(..name_len).unwrap_or(&[])).unwrap_or("");
        out.push((pos, end, HeaderName::from_raw(name)));
        pos = end;
    }
    out
}

/// True when `v` is safe as a header value: no controls except HT, and
/// CR LF only as a fold (followed by SP/HT).
fn valid_value(v: &str) -> bool {
    let b = v.as_bytes();
    // Almost every value has no control byte at all: one pass settles those;
    // the byte walk below handles folds.
    if !crate::scan::has_control(b) {
        return true;
    }
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'\r' => {
                if b.get(i + 1) != Some(&b'\n') || !matches!(b.get(i + 2), Some(b' ' | b'\t')) {
                    return false;
                }
                i += 3;
                continue;
            }
            b'\t' => {}
            c if c < 0x20 || c == 0x7f => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

/// Escapes `"` and `\` for a quoted string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl MessageBuilder {
    /// Starts a request.
    #[must_use]
    pub fn request(method: Method<'_>, uri: &str) -> Self {
        let method = method.as_str();
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(uri.as_bytes());
        head.push(b' ');
        head.extend_from_slice(SIP_VERSION.as_bytes());
        head.extend_from_slice(b"\r\n");
        let mut b = Self {
            head,
            body: Vec::new(),
            error: None,
            content_type: false,
        };
        if uri.is_empty() || uri.bytes().any(|c| c <= b' ' || c == 0x7f) {
            b.error = Some(BuildError::InvalidRequestUri);
        }
        b
    }

    /// Starts a response with no headers.
    #[must_use]
    pub fn response(code: u16, reason: &str) -> Self {
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(SIP_VERSION.as_bytes());
        head.push(b' ');
        push_status(&mut head, code);
        head.push(b' ');
        head.extend_from_slice(reason.as_bytes());
        head.extend_from_slice(b"\r\n");
        let mut b = Self {
            head,
            body: Vec::new(),
            error: None,
            content_type: false,
        };
        if !(100..=699).contains(&code) {
            b.error = Some(BuildError::InvalidStatusCode);
        } else if reason
            .bytes()
            .any(|c| (c < 0x20 && c != b'\t') || c == 0x7f)
        {
            b.error = Some(BuildError::InvalidReasonPhrase);
        }
        b
    }

    /// Starts a response to `req` (RFC 3261 §8.2.6): copies every Via,
    /// From, To, Call-ID and CSeq; adds `to_tag` to To unless the request's
    /// To already has a tag or the status is 100; copies Timestamp into a
    /// 100; copies Record-Route into 101–299 responses to INVITE, SUBSCRIBE
    /// and REFER (§12.1.1). Use the same `to_tag` for every response of
    /// one dialog.
    ///
    /// ```
    /// use maskline_sip::{Message, MessageBuilder};
    ///
    /// let req = Message::parse(b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
    ///   Via: SIP/2.0/UDP q;branch=z9hG4bK2\r\nRecord-Route: <sip:p;lr>\r\n\
    ///   From: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
    /// let resp = MessageBuilder::response_to(&req, 180, "Ringing", Some("t1")).unwrap().build().unwrap();
    /// let resp = Message::parse(&resp).unwrap();
    /// assert_eq!(resp.status(), Some(180));
    /// assert_eq!(resp.vias().count(), 2);
    /// assert_eq!(resp.to().unwrap().tag(), Some("t1"));
    /// assert_eq!(resp.record_routes().count(), 1);
    /// ```
    ///
    /// # Errors
    /// [`BuildError::Source`] when `req` is not a request or one of those
    /// headers is missing or unreadable.
    pub fn response_to(
        req: &Message<'_>,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Result<Self, BuildError> {
        let method = req.method().ok_or(ParseError::InvalidStartLine)?;
        req.top_via()?;
        req.from()?;
        let to = req.to()?;
        req.call_id()?;
        req.cseq()?;
        let mut b = Self::response(code, reason);
        for h in req.headers() {
            match h.kind() {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    b.push_kind(h.kind(), h.value());
                }
                HeaderName::To => match (to.tag(), to_tag) {
                    (None, Some(tag)) if code > 100 => {
                        b.push_parts("To", &[h.value(), ";tag=", tag]);
                    }
                    _ => b.push_kind(HeaderName::To, h.value()),
                },
                HeaderName::Timestamp if code == 100 => b.push_kind(h.kind(), h.value()),
                HeaderName::RecordRoute
                    if (101..=299).contains(&code)
                        && matches!(method, Method::Invite | Method::Subscribe | Method::Refer) =>
                {
                    b.push_kind(h.kind(), h.value());
                }
                _ => {}
            }
        }
        if let Some(tag) = to_tag {
            if !is_token(tag) {
                b.error = Some(BuildError::InvalidHeaderValue("To".into()));
            }
        }
        Ok(b)
    }

    /// The same response with another status line: a template built once with
    /// [`MessageBuilder::response_to`] can answer a request several times (a
    /// 180, then the 200) without parsing the request again. The template's
    /// headers are kept as they are, so use it only for statuses that take the
    /// same ones (`response_to` writes the To tag above 100 and Record-Route
    /// from 101 to 299).
    ///
    /// ```
    /// use maskline_sip::{Message, MessageBuilder};
    ///
    /// let req = Message::parse(b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
    ///   From: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
    /// let template = MessageBuilder::response_to(&req, 200, "OK", Some("t1")).unwrap();
    /// let ringing = template.clone().with_status(180, "Ringing").build().unwrap();
    /// let ringing = Message::parse(&ringing).unwrap();
    /// assert_eq!(ringing.status(), Some(180));
    /// assert_eq!(ringing.to().unwrap().tag(), Some("t1"));
    /// assert_eq!(ringing.call_id().unwrap(), "c");
    /// assert!(template.with_status(99, "No").build().is_err());
    /// ```
    #[must_use]
    pub fn with_status(self, code: u16, reason: &str) -> Self {
        let mut b = Self::response(code, reason);
        let headers = self
            .head
            .windows(2)
            .position(|w| w == b"\r\n")
            .and_then(|i| self.head.get(i + 2..))
            .unwrap_or_default();
        b.head.extend_from_slice(headers);
        b.body = self.body;
        b.content_type = self.content_type;
        if b.error.is_none() {
            b.error = self.error;
        }
        b
    }

    /// Builds the error response for a request that failed
    /// [`Message::validate`] (or any later check) with `err`: status code
    /// and reason phrase from the error, a fresh To-tag, no body.
    ///
    /// ```
    /// use maskline_sip::{Message, MessageBuilder};
    ///
    /// let req = Message::parse(b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
    ///   From: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n").unwrap();
    /// let err = req.validate().unwrap_err();
    /// let resp = MessageBuilder::error_response(&req, &err).unwrap();
    /// let resp = Message::parse(&resp).unwrap();
    /// assert_eq!(resp.status(), Some(400));
    /// assert_eq!(resp.status_line().unwrap().reason, "Bad Request - CSeq Method Mismatch");
    /// ```
    ///
    /// # Errors
    /// [`BuildError::Source`] when the request is too broken to answer
    /// (no readable Via, From, To, Call-ID or CSeq): drop it silently.
    pub fn error_response(req: &Message<'_>, err: &ParseError) -> Result<Vec<u8>, BuildError> {
        let tag = crate::ids::new_tag();
        if let Ok(b) = Self::response_to(req, err.status_code(), err.reason_phrase(), Some(&tag)) {
            return b.build();
        }
        // The error may be in the very headers a response copies (a malformed
        // From, To or CSeq): copy them verbatim, as RFC 3261 §8.2.6.2 asks, and
        // tag To only when it can be read. Without any of them, drop.
        req.method().ok_or(ParseError::InvalidStartLine)?;
        for (kind, name) in [
            (HeaderName::Via, "Via"),
            (HeaderName::From, "From"),
            (HeaderName::To, "To"),
            (HeaderName::CallId, "Call-ID"),
            (HeaderName::CSeq, "CSeq"),
        ] {
            req.get(kind).ok_or(ParseError::MissingHeader(name))?;
        }
        let to_has_tag = req.to().map(|t| t.tag().is_some());
        let mut b = Self::response(err.status_code(), err.reason_phrase());
        for h in req.headers() {
            match h.kind() {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    b.push_kind(h.kind(), h.value());
                }
                HeaderName::To => match to_has_tag {
                    Ok(false) => b.push_parts("To", &[h.value(), ";tag=", &tag]),
                    _ => b.push_kind(HeaderName::To, h.value()),
                },
                _ => {}
            }
        }
        b.build()
    }

    /// Starts a CANCEL for a pending INVITE (RFC 3261 §9.1): same
    /// Request-URI, top Via, From, To, Call-ID and Route set, CSeq number
    /// with method CANCEL.
    ///
    /// # Errors
    /// [`BuildError::Source`] when `invite` lacks those headers.
    pub fn cancel_for(invite: &Message<'_>) -> Result<Self, BuildError> {
        Self::hop_by_hop(invite, Method::Cancel, None)
    }

    /// Starts the ACK for a non-2xx final response to `invite`
    /// (RFC 3261 §17.1.1.3): like CANCEL, but To comes from the response
    /// (with its tag). ACKs for 2xx belong to the dialog layer.
    ///
    /// # Errors
    /// [`BuildError::Source`] when either message lacks needed headers.
    pub fn ack_for(invite: &Message<'_>, response: &Message<'_>) -> Result<Self, BuildError> {
        Self::hop_by_hop(invite, Method::Ack, Some(response))
    }

    fn hop_by_hop(
        invite: &Message<'_>,
        method: Method<'_>,
        response: Option<&Message<'_>>,
    ) -> Result<Self, BuildError> {
        let uri = invite
            .request_line()
            .ok_or(ParseError::InvalidStartLine)?
            .uri;
        let via = invite.top_via()?;
        let from = invite
            .get(HeaderName::From)
            .ok_or(ParseError::MissingHeader("From"))?;
        invite.from()?;
        let to = match response {
            Some(r) => {
                r.to()?;
                r.get(HeaderName::To)
                    .ok_or(ParseError::MissingHeader("To"))?
            }
            None => {
                invite.to()?;
                invite
                    .get(HeaderName::To)
                    .ok_or(ParseError::MissingHeader("To"))?
            }
        };
        let call_id = invite.call_id()?;
        let cseq = invite.cseq()?;
        let mut b = Self::request(method, uri)
            .header_kind(HeaderName::Via, via.as_str())
            .max_forwards(70)
            .header_kind(HeaderName::From, from)
            .header_kind(HeaderName::To, to)
            .header_kind(HeaderName::CallId, call_id)
            .cseq(cseq.seq, method);
        for r in invite.get_all(HeaderName::Route) {
            b.push_kind(HeaderName::Route, r);
        }
        Ok(b)
    }

    fn push_kind(&mut self, kind: HeaderName, value: &str) {
        self.content_type |= kind == HeaderName::ContentType;
        let name = kind.as_str().unwrap_or("X-Invalid");
        self.push_parts(name, &[value]);
    }

    /// Appends `name: part1part2...` CRLF after checking the name and
    /// every part.
    fn push_parts(&mut self, name: &str, parts: &[&str]) {
        if self.error.is_none() {
            if !is_token(name) {
                self.error = Some(BuildError::InvalidHeaderName);
            } else if !parts.iter().all(|p| valid_value(p)) {
                self.error = Some(BuildError::InvalidHeaderValue(name.to_owned()));
            }
        }
        self.head.extend_from_slice(name.as_bytes());
        self.head.extend_from_slice(b": ");
        for p in parts {
            self.head.extend_from_slice(p.as_bytes());
        }
        self.head.extend_from_slice(b"\r\n");
    }

    /// Appends a header. Content-Length is ignored here: [`build`](Self::build)
    /// always writes its own.
    #[must_use]
    pub fn header(self, name: &str, value: &str) -> Self {
        self.header_parts(name, &[value])
    }

    /// Appends a header whose value is `parts` written one after another
    /// (checked like [`header`](Self::header)): a value put together from
    /// pieces without formatting it into a string first.
    ///
    /// ```
    /// use maskline_sip::{Message, MessageBuilder, Method};
    /// let out = MessageBuilder::request(Method::Invite, "sip:b@h")
    ///     .header_parts("From", &["<sip:", "+15550100", "@h>;tag=", "t1"])
    ///     .build().unwrap();
    /// let m = Message::parse(&out).unwrap();
    /// assert_eq!(m.from().unwrap().tag(), Some("t1"));
    /// assert!(MessageBuilder::request(Method::Bye, "sip:b@h")
    ///     .header_parts("Subject", &["a", "\r\nEvil: 1"]).build().is_err());
    /// ```
    #[must_use]
    pub fn header_parts(mut self, name: &str, parts: &[&str]) -> Self {
        let kind = HeaderName::from_raw(name);
        if kind == HeaderName::ContentLength {
            return self;
        }
        self.content_type |= kind == HeaderName::ContentType;
        match kind.as_str() {
            // Write known headers under their canonical spelling.
            Some(canon) if canon.eq_ignore_ascii_case(name) => self.push_parts(canon, parts),
            _ => self.push_parts(name, parts),
        }
        self
    }

    /// Appends a header by its canonical name.
    #[must_use]
    pub fn header_kind(mut self, kind: HeaderName, value: &str) -> Self {
        if kind != HeaderName::ContentLength {
            self.push_kind(kind, value);
        }
        self
    }

    /// Copies every header of `src` whose kind is in `allow`, in `src`
    /// order, under its canonical name. Everything else is left behind:
    /// this is how the relay builds the outgoing leg from an allow-list.
    ///
    /// ```
    /// use maskline_sip::{HeaderName, Message, MessageBuilder, Method};
    ///
    /// let inbound = Message::parse(b"INVITE sip:b@h SIP/2.0\r\nk: timer\r\n\
    ///   P-Asserted-Identity: <tel:+15550100>\r\nAllow: INVITE, BYE\r\n\r\n").unwrap();
    /// let out = MessageBuilder::request(Method::Invite, "sip:c@h")
    ///     .copy_headers(&inbound, &[HeaderName::Supported, HeaderName::Allow])
    ///     .build().unwrap();
    /// let out = String::from_utf8(out).unwrap();
    /// assert!(out.contains("Supported: timer\r\n"));
    /// assert!(!out.contains("P-Asserted-Identity"));
    /// ```
    #[must_use]
    pub fn copy_headers(mut self, src: &Message<'_>, allow: &[HeaderName]) -> Self {
        for h in src.headers() {
            let k = h.kind();
            if k != HeaderName::Other && k != HeaderName::ContentLength && allow.contains(&k) {
                self.push_kind(k, h.value());
            }
        }
        self
    }

    /// Appends `Via: SIP/2.0/{transport} {sent_by};branch={branch};rport`.
    #[must_use]
    pub fn via(mut self, transport: &str, sent_by: &str, branch: &str) -> Self {
        if !is_token(transport) || !is_token(branch) {
            self.error = Some(BuildError::InvalidHeaderValue("Via".into()));
        }
        self.push_parts(
            "Via",
            &[
                SIP_VERSION,
                "/",
                transport,
                " ",
                sent_by,
                ";branch=",
                branch,
                ";rport",
            ],
        );
        self
    }

    /// Appends `Max-Forwards`.
    #[must_use]
    pub fn max_forwards(mut self, n: u8) -> Self {
        self.head.extend_from_slice(b"Max-Forwards: ");
        push_decimal(&mut self.head, u64::from(n));
        self.head.extend_from_slice(b"\r\n");
        self
    }

    /// Appends `CSeq: {seq} {method}`.
    #[must_use]
    pub fn cseq(mut self, seq: u32, method: Method<'_>) -> Self {
        self.head.extend_from_slice(b"CSeq: ");
        push_decimal(&mut self.head, u64::from(seq));
        self.push_raw_value(method.as_str(), " ");
        self
    }

    /// Ends a line started by hand: `sep`, `value`, CRLF, after checking
    /// `value` (method tokens from [`Method::parse`] are always fine, but a
    /// hand-made `Method::Extension` may not be).
    fn push_raw_value(&mut self, value: &str, sep: &str) {
        if self.error.is_none() && !is_token(value) {
            self.error = Some(BuildError::InvalidHeaderValue("CSeq".into()));
        }
        self.head.extend_from_slice(sep.as_bytes());
        self.head.extend_from_slice(value.as_bytes());
        self.head.extend_from_slice(b"\r\n");
    }

    /// Appends `Reason: {protocol};cause={cause};text="{text}"` (RFC 3326),
    /// escaping the text.
    ///
    /// ```
    /// use maskline_sip::{Message, MessageBuilder};
    /// let b = MessageBuilder::response(503, "Service Unavailable")
    ///     .reason("Q.850", 41, "Temporary \"failure\"")
    ///     .build().unwrap();
    /// let m = Message::parse(&b).unwrap();
    /// let r = m.reasons().next().unwrap().unwrap();
    /// assert_eq!(r.cause(), Some(41));
    /// assert_eq!(r.text().as_deref(), Some("Temporary \"failure\""));
    /// ```
    #[must_use]
    pub fn reason(mut self, protocol: &str, cause: u16, text: &str) -> Self {
        if !is_token(protocol) {
            self.error = Some(BuildError::InvalidHeaderValue("Reason".into()));
        }
        let mut cause_s = Vec::with_capacity(5);
        push_decimal(&mut cause_s, u64::from(cause));
        let cause_s = std::str::from_utf8(&cause_s).unwrap_or("0").to_owned();
        let text = quote(text);
        self.push_parts("Reason", &[protocol, ";cause=", &cause_s, ";text=", &text]);
        self
    }

    /// Sets the body and its Content-Type (replacing an earlier one).
    #[must_use]
    pub fn body(self, content_type: &str, body: &[u8]) -> Self {
        self.body_owned(content_type, body.to_vec())
    }

    /// [`body`](Self::body), taking the bytes without copying them.
    #[must_use]
    pub fn body_owned(self, content_type: &str, body: Vec<u8>) -> Self {
        let mut b = if self.content_type {
            self.without(HeaderName::ContentType)
        } else {
            self
        };
        b.push_kind(HeaderName::ContentType, content_type);
        b.body = body;
        b
    }

    /// Removes every header of `kind` added so far.
    #[must_use]
    pub fn without(mut self, kind: HeaderName) -> Self {
        if kind == HeaderName::ContentType {
            self.content_type = false;
        }
        let lines = header_lines(&self.head);
        if lines.iter().any(|&(_, _, k)| k == kind) {
            let start_end = lines.first().map_or(self.head.len(), |l| l.0);
            let mut head = Vec::with_capacity(self.head.len());
            head.extend_from_slice(self.head.get(..start_end).unwrap_or(&[]));
            for (a, b, k) in lines {
                if k != kind {
                    head.extend_from_slice(self.head.get(a..b).unwrap_or(&[]));
                }
            }
            self.head = head;
        }
        self
    }

    /// Writes the message, ending the headers with Content-Length.
    ///
    /// # Errors
    /// The first [`BuildError`] recorded while building.
    pub fn build(&self) -> Result<Vec<u8>, BuildError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let mut out = Vec::with_capacity(self.head.len() + self.body.len() + 32);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(&mut out, self.body.len() as u64);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
        Ok(out)
    }
}

#[path = "builder_stamp.rs"]
mod stamp;

#[path = "builder_datagram.rs"]
mod datagram;

#[cfg(test)]
#[path = "builder_tests.rs"]
mod tests;
