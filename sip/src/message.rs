//! Parsed SIP messages (RFC 3261 §7): start line, header fields in order,
//! body — all borrowed from the receive buffer.
//!
//! Parsing is two-staged so hostile input is cheap to reject:
//! [`Message::parse_with`] frames the message (start line, header lines,
//! Content-Length, limits) without looking inside header values, and
//! [`Message::validate`] then checks the headers a transaction needs. Typed
//! accessors parse individual headers on demand, so a relay that only needs
//! the top Via branch and the Call-ID never pays for the rest.
#![deny(clippy::indexing_slicing)]

use crate::addr::{Contact, NameAddr};
use crate::head::{parse_head, slot, Head, Index, NONE};
use crate::header::{Header, HeaderName};
use crate::limits::Limits;
use crate::method::Method;
use crate::scan::CommaSplit;
use crate::typed::{parse_max_forwards, CSeq, ContentType, Privacy, Reason};
use crate::uri::{Scheme, Uri};
use crate::via::Via;
use crate::ParseError;

/// The only protocol version the crate speaks.
pub const SIP_VERSION: &str = "SIP/2.0";

/// `Method SP Request-URI SP SIP-Version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The method.
    pub method: Method<'a>,
    /// The Request-URI as written; parse it with [`Uri::parse`] or
    /// [`Message::request_uri`].
    pub uri: &'a str,
    /// The version as written (`SIP/2.0`, any case).
    pub version: &'a str,
}

/// `SIP-Version SP Status-Code SP Reason-Phrase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// The version as written.
    pub version: &'a str,
    /// Status code, 100..=699.
    pub code: u16,
    /// Reason phrase as written (may be empty).
    pub reason: &'a str,
}

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// A request.
    Request(RequestLine<'a>),
    /// A response.
    Response(StatusLine<'a>),
}

/// A SIP request or response borrowing from its input buffer.
///
/// ```
/// use maskline_sip::{Message, Method};
///
/// let raw = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
/// v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
/// Max-Forwards: 70\r\n\
/// t: Bob <sip:bob@biloxi.example.com>\r\n\
/// f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
/// i: a84b4c76e66710@pc33.atlanta.example.com\r\n\
/// CSeq: 314159 INVITE\r\n\
/// l: 4\r\n\r\nv=0\n";
/// let msg = Message::parse(raw).unwrap();
/// msg.validate().unwrap();
/// assert_eq!(msg.method(), Some(Method::Invite));
/// assert_eq!(msg.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
/// assert_eq!(msg.from().unwrap().tag(), Some("1928301774"));
/// assert_eq!(msg.call_id().unwrap(), "a84b4c76e66710@pc33.atlanta.example.com");
/// assert_eq!(msg.body(), b"v=0\n");
/// // Serializing and parsing again gives the same message.
/// let again = msg.to_bytes();
/// assert_eq!(Message::parse(&again).unwrap(), msg);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    start: StartLine<'a>,
    headers: Vec<Header<'a>>,
    body: &'a [u8],
    content_length: Option<usize>,
    index: Index,
    /// From and To, parsed once with the message (validation, transaction
    /// matching and dialogs each ask for them); an error surfaces when asked.
    from_addr: Result<NameAddr<'a>, ParseError>,
    to_addr: Result<NameAddr<'a>, ParseError>,
    /// The top Via, parsed once with the message for the same reason.
    top_via: Result<Via<'a>, ParseError>,
}

impl<'a> Message<'a> {
    /// Parses a message from a datagram with the default [`Limits`].
    ///
    /// # Errors
    /// Any structural [`ParseError`]; see [`Message::parse_with`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(buf, &Limits::DEFAULT)
    }

    /// Parses a message from a datagram (or one frame cut by the
    /// [`Framer`](crate::Framer)), enforcing `limits`.
    ///
    /// This checks the start line, the header-line syntax, UTF-8, the
    /// limits and Content-Length. Leading CRLFs are skipped. With a
    /// Content-Length, bytes past the body are ignored (RFC 3261 §18.3);
    /// without one the rest of the datagram is the body. Header values are
    /// not interpreted: call [`Message::validate`] next.
    ///
    /// # Errors
    /// A typed [`ParseError`]; never panics, whatever the input.
    pub fn parse_with(buf: &'a [u8], limits: &Limits) -> Result<Self, ParseError> {
        if buf.len() > limits.max_message_size {
            return Err(ParseError::MessageTooLarge {
                limit: limits.max_message_size,
            });
        }
        let mut buf = buf;
        while let Some(rest) = buf.strip_prefix(b"\r\n") {
            buf = rest;
        }
        if buf.is_empty() {
            return Err(ParseError::Empty);
        }
        let Head {
            start,
            headers,
            content_length,
            index,
            body_start,
        } = parse_head(buf, limits)?;
        let rest = buf.get(body_start..).unwrap_or(&[]);
        let body = match content_length {
            Some(cl) => rest.get(..cl).ok_or(ParseError::BodyTruncated)?,
            None => {
                if rest.len() > limits.max_body {
                    return Err(ParseError::BodyTooLarge {
                        limit: limits.max_body,
                    });
                }
                rest
            }
        };
        Ok(Message {
            start,
            headers,
            body,
            content_length,
            index,
            from_addr: Err(ParseError::MissingHeader("From")),
            to_addr: Err(ParseError::MissingHeader("To")),
            top_via: Err(ParseError::MissingHeader("Via")),
        }
        .with_addresses())
    }

    /// The start line.
    #[must_use]
    pub fn start_line(&self) -> &StartLine<'a> {
        &self.start
    }

    /// True for requests.
    #[must_use]
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    /// The request line, for requests.
    #[must_use]
    pub fn request_line(&self) -> Option<&RequestLine<'a>> {
        match &self.start {
            StartLine::Request(r) => Some(r),
            StartLine::Response(_) => None,
        }
    }

    /// The status line, for responses.
    #[must_use]
    pub fn status_line(&self) -> Option<&StatusLine<'a>> {
        match &self.start {
            StartLine::Response(s) => Some(s),
            StartLine::Request(_) => None,
        }
    }

    /// The request method, for requests.
    #[must_use]
    pub fn method(&self) -> Option<Method<'a>> {
        self.request_line().map(|r| r.method)
    }

    /// The status code, for responses.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status_line().map(|s| s.code)
    }

    /// The parsed Request-URI.
    ///
    /// # Errors
    /// [`ParseError::InvalidStartLine`] for responses,
    /// [`ParseError::InvalidRequestUri`] when the URI does not parse.
    pub fn request_uri(&self) -> Result<Uri<'a>, ParseError> {
        let r = self.request_line().ok_or(ParseError::InvalidStartLine)?;
        Uri::parse(r.uri).map_err(|_| ParseError::InvalidRequestUri)
    }

    /// All header fields in order.
    #[must_use]
    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The body (exactly Content-Length bytes when that header is present).
    #[must_use]
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The Content-Length value, when the header is present.
    #[must_use]
    pub fn content_length(&self) -> Option<usize> {
        self.content_length
    }

    /// The first value of a classified header.
    #[must_use]
    pub fn get(&self, kind: HeaderName) -> Option<&'a str> {
        match slot(kind).and_then(|s| self.index.first.get(s)) {
            Some(&NONE) => None,
            Some(&i) => self.headers.get(i as usize).map(|h| h.value()),
            None => self
                .headers
                .iter()
                .find(|h| h.kind() == kind)
                .map(|h| h.value()),
        }
    }

    /// Every header field of a classified kind, in order.
    pub fn get_all(&self, kind: HeaderName) -> impl Iterator<Item = &'a str> + '_ {
        // An indexed kind seen once is the one header at its index.
        let (from, to) = match slot(kind).map(|s| (s, self.index.first.get(s))) {
            Some((_, Some(&NONE))) => (0, 0),
            Some((s, Some(&i))) if self.index.repeated & (1 << s) == 0 => {
                (i as usize, i as usize + 1)
            }
            Some((_, Some(&i))) => (i as usize, self.headers.len()),
            _ => (0, self.headers.len()),
        };
        self.headers
            .get(from..to)
            .unwrap_or(&[])
            .iter()
            .filter(move |h| h.kind() == kind)
            .map(|h| h.value())
    }

    /// The first value of a header by name (case-insensitive, compact forms
    /// match their long names).
    ///
    /// ```
    /// let m = maskline_sip::Message::parse(b"BYE sip:a@b SIP/2.0\r\ni: abc\r\nX-A: 1\r\n\r\n").unwrap();
    /// assert_eq!(m.header("Call-ID"), Some("abc"));
    /// assert_eq!(m.header("x-a"), Some("1"));
    /// ```
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&'a str> {
        match HeaderName::from_raw(name) {
            HeaderName::Other => self
                .headers
                .iter()
                .find(|h| h.kind() == HeaderName::Other && h.name().eq_ignore_ascii_case(name))
                .map(|h| h.value()),
            kind => self.get(kind),
        }
    }

    /// The comma-separated values of every header field of `kind`, in order
    /// (quotes and angle brackets respected).
    pub fn values(
        &self,
        kind: HeaderName,
    ) -> impl Iterator<Item = Result<&'a str, ParseError>> + '_ {
        self.get_all(kind).flat_map(CommaSplit::new)
    }

    /// The single value of a header that may appear once; identical
    /// repeats are tolerated, differing ones are an error.
    fn single(&self, kind: HeaderName, name: &'static str) -> Result<&'a str, ParseError> {
        if let Some(s) = slot(kind) {
            if self.index.repeated & (1 << s) == 0 {
                return self.get(kind).ok_or(ParseError::MissingHeader(name));
            }
        }
        let mut it = self.get_all(kind);
        let first = it.next().ok_or(ParseError::MissingHeader(name))?;
        if it.any(|v| v != first) {
            return Err(ParseError::DuplicateHeader(name));
        }
        Ok(first)
    }

    /// The top (first) Via value.
    ///
    /// # Errors
    /// [`ParseError::MissingHeader`] or [`ParseError::InvalidHeader`].
    pub fn top_via(&self) -> Result<Via<'a>, ParseError> {
        self.top_via
    }

    /// [`Message::top_via`], parsed.
    fn parse_top_via(&self) -> Result<Via<'a>, ParseError> {
        // One value without a comma is the top Via as it stands, unless a
        // quote or `<` could make the comma split fail: a Via parsed
        // without quoted parameters holds neither.
        if self.index.top_via_single {
            if let Some(Ok(v)) = self.get(HeaderName::Via).map(Via::parse) {
                if v.is_plain() {
                    return Ok(v);
                }
            }
        }
        let first = self
            .values(HeaderName::Via)
            .next()
            .ok_or(ParseError::MissingHeader("Via"))?
            .map_err(|_| ParseError::InvalidHeader("Via"))?;
        Via::parse(first)
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'a>, ParseError>> + '_ {
        self.values(HeaderName::Via).map(|v| {
            v.map_err(|_| ParseError::InvalidHeader("Via"))
                .and_then(Via::parse)
        })
    }

    fn addr(&self, kind: HeaderName, name: &'static str) -> Result<NameAddr<'a>, ParseError> {
        NameAddr::parse(self.single(kind, name)?).map_err(|e| addr_error(e, name))
    }

    /// The From header.
    ///
    /// # Errors
    /// Missing, duplicated or malformed From.
    pub fn from(&self) -> Result<NameAddr<'a>, ParseError> {
        self.from_addr
    }

    /// The To header.
    ///
    /// # Errors
    /// Missing, duplicated or malformed To.
    pub fn to(&self) -> Result<NameAddr<'a>, ParseError> {
        self.to_addr
    }

    /// Parses From and To into the message.
    fn with_addresses(mut self) -> Self {
        self.from_addr = self.addr(HeaderName::From, "From");
        self.to_addr = self.addr(HeaderName::To, "To");
        self.top_via = self.parse_top_via();
        self
    }

    /// True when the message has exactly one Via value (one Via header
    /// without a comma).
    fn one_via(&self) -> bool {
        self.index.top_via_single
            && crate::head::slot(HeaderName::Via)
                .is_some_and(|s| self.index.repeated & (1 << s) == 0)
    }

    /// The Call-ID.
    ///
    /// # Errors
    /// Missing, duplicated, empty or containing white space.
    pub fn call_id(&self) -> Result<&'a str, ParseError> {
        let v = self.single(HeaderName::CallId, "Call-ID")?;
        if v.is_empty() || crate::scan::has_lws(v) {
            return Err(ParseError::InvalidHeader("Call-ID"));
        }
        Ok(v)
    }

    /// The CSeq.
    ///
    /// # Errors
    /// Missing, duplicated or malformed CSeq.
    pub fn cseq(&self) -> Result<CSeq<'a>, ParseError> {
        CSeq::parse(self.single(HeaderName::CSeq, "CSeq")?)
    }

    /// Max-Forwards, `None` when absent.
    ///
    /// # Errors
    /// [`ParseError::InvalidMaxForwards`] or a duplicate.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.single(HeaderName::MaxForwards, "Max-Forwards") {
            Err(ParseError::MissingHeader(_)) => Ok(None),
            Err(e) => Err(e),
            Ok(v) => parse_max_forwards(v).map(Some),
        }
    }

    /// Every address value of an address-shaped header (Route,
    /// Record-Route, P-Asserted-Identity, Diversion, History-Info ...).
    pub fn addresses(
        &self,
        kind: HeaderName,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        let name = kind.as_str().unwrap_or("header");
        self.values(kind)
            .map(move |v| v.and_then(|v| NameAddr::parse(v).map_err(|e| addr_error(e, name))))
    }

    /// Every Contact value.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'a>, ParseError>> + '_ {
        self.values(HeaderName::Contact)
            .map(|v| v.and_then(|v| Contact::parse(v).map_err(|e| addr_error(e, "Contact"))))
    }

    /// Route values, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.addresses(HeaderName::Route)
    }

    /// Record-Route values, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.addresses(HeaderName::RecordRoute)
    }

    /// P-Asserted-Identity values (RFC 3325).
    pub fn p_asserted_identities(
        &self,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.addresses(HeaderName::PAssertedIdentity)
    }

    /// Diversion values (RFC 5806).
    pub fn diversions(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.addresses(HeaderName::Diversion)
    }

    /// History-Info values (RFC 7044).
    pub fn history_info(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.addresses(HeaderName::HistoryInfo)
    }

    /// The Privacy header, when present.
    #[must_use]
    pub fn privacy(&self) -> Option<Result<Privacy<'a>, ParseError>> {
        self.get(HeaderName::Privacy).map(Privacy::parse)
    }

    /// Every Reason value.
    pub fn reasons(&self) -> impl Iterator<Item = Result<Reason<'a>, ParseError>> + '_ {
        self.values(HeaderName::Reason)
            .map(|v| v.and_then(Reason::parse))
    }

    /// The Content-Type, when present.
    #[must_use]
    pub fn content_type(&self) -> Option<Result<ContentType<'a>, ParseError>> {
        self.get(HeaderName::ContentType).map(ContentType::parse)
    }

    /// Checks what every transaction relies on: a parsable Request-URI of a
    /// supported scheme, Via, From, To, Call-ID and CSeq present once and
    /// well-formed, CSeq method equal to the request method, Max-Forwards,
    /// Contact and Content-Type well-formed when present.
    ///
    /// # Errors
    /// The first problem found, as a typed [`ParseError`].
    pub fn validate(&self) -> Result<(), ParseError> {
        if let StartLine::Request(r) = &self.start {
            let uri = Uri::parse(r.uri).map_err(|_| ParseError::InvalidRequestUri)?;
            if let Scheme::Other(_) = uri.scheme() {
                return Err(ParseError::UnsupportedUriScheme);
            }
            // A Request-URI carries no `?headers` (RFC 3261 §19.1.5).
            if uri.headers().is_some() {
                return Err(ParseError::InvalidRequestUri);
            }
        }
        if self.one_via() {
            // Parsed with the message already.
            self.top_via()?;
        } else {
            let mut n = 0usize;
            for v in self.vias() {
                v?;
                n += 1;
            }
            if n == 0 {
                return Err(ParseError::MissingHeader("Via"));
            }
        }
        self.from()?;
        self.to()?;
        self.call_id()?;
        let cseq = self.cseq()?;
        if let StartLine::Request(r) = &self.start {
            if cseq.method != r.method {
                return Err(ParseError::CSeqMethodMismatch);
            }
        }
        self.max_forwards()?;
        for c in self.contacts() {
            c?;
        }
        if let Some(ct) = self.content_type() {
            ct?;
        }
        Ok(())
    }

    /// Serialized length in bytes.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let start = match &self.start {
            StartLine::Request(r) => r.method.as_str().len() + r.uri.len() + r.version.len() + 4,
            StartLine::Response(s) => s.version.len() + 5 + s.reason.len() + 2,
        };
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.name().len() + h.value().len() + 4)
            .sum();
        start + headers + 2 + self.body.len()
    }

    /// Appends the wire form to `out`: the start line, every header as
    /// `Name: value` with the name and value exactly as received, an empty
    /// line, and the body.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        match &self.start {
            StartLine::Request(r) => {
                out.extend_from_slice(r.method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(r.uri.as_bytes());
                out.push(b' ');
                out.extend_from_slice(r.version.as_bytes());
            }
            StartLine::Response(s) => {
                out.extend_from_slice(s.version.as_bytes());
                out.push(b' ');
                push_status(out, s.code);
                out.push(b' ');
                out.extend_from_slice(s.reason.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        for h in &self.headers {
            out.extend_from_slice(h.name().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body);
    }

    /// The wire form as a new buffer.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut out);
        out
    }
}

/// Writes a three-digit status code.
pub(crate) fn push_status(out: &mut Vec<u8>, code: u16) {
    let code = code.clamp(100, 999);
    // Each digit is 0..=9, so the casts cannot truncate.
    out.push(b'0' + (code / 100) as u8);
    out.push(b'0' + (code / 10 % 10) as u8);
    out.push(b'0' + (code % 10) as u8);
}

fn addr_error(e: ParseError, name: &'static str) -> ParseError {
    match e {
        ParseError::UnterminatedQuote | ParseError::UnterminatedAngle => e,
        ParseError::MissingHeader(_) | ParseError::DuplicateHeader(_) => e,
        _ => ParseError::InvalidHeader(name),
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
