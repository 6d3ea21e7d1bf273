//! Typed errors of the SIP message layer.
//!
//! Every way a message can be malformed or exceed a [`Limits`](crate::Limits)
//! bound has its own variant, so the relay can count them, log them without
//! echoing hostile bytes, and answer with a precise status line
//! ([`ParseError::status_code`], [`ParseError::reason_phrase`]).

use thiserror::Error;

/// Why a SIP message (or one of its parts) was rejected.
///
/// Errors never carry bytes from the input: a hostile peer cannot make the
/// relay log or echo attacker-chosen text through them.
///
/// ```
/// use maskline_sip::{Message, ParseError};
///
/// let raw = b"OPTIONS sip:a@example.com SIP/2.0\r\n\
///             Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n\
///             Max-Forwards: 70\r\nFrom: <sip:b@example.com>;tag=1\r\n\
///             To: <sip:a@example.com>\r\nCSeq: 1 OPTIONS\r\n\r\n";
/// let msg = Message::parse(raw).unwrap();
/// let err = msg.validate().unwrap_err();
/// assert_eq!(err, ParseError::MissingHeader("Call-ID"));
/// assert_eq!(err.status_code(), 400);
/// assert_eq!(err.reason_phrase(), "Bad Request - Missing Call-ID");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input held no message at all.
    #[error("empty message")]
    Empty,
    /// The message is bigger than [`Limits::max_message_size`](crate::Limits).
    #[error("message larger than {limit} bytes")]
    MessageTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// More header fields than [`Limits::max_headers`](crate::Limits).
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// A header line (folded continuation included) exceeds
    /// [`Limits::max_header_line`](crate::Limits).
    #[error("header line longer than {limit} bytes")]
    HeaderLineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// More Via values than [`Limits::max_via`](crate::Limits).
    #[error("more than {limit} Via values")]
    TooManyVias {
        /// The limit in force.
        limit: usize,
    },
    /// The body (or the declared Content-Length) exceeds
    /// [`Limits::max_body`](crate::Limits).
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The header section never ended with an empty line.
    #[error("header section not terminated")]
    UnterminatedHeaders,
    /// The start line is neither a request line nor a status line.
    #[error("malformed start line")]
    InvalidStartLine,
    /// The method is not a valid token.
    #[error("malformed method")]
    InvalidMethod,
    /// The protocol version is not `SIP/2.0`.
    #[error("unsupported SIP version")]
    InvalidVersion,
    /// The status code is not three digits in 100..=699.
    #[error("malformed status code")]
    InvalidStatusCode,
    /// The Request-URI is malformed.
    #[error("malformed Request-URI")]
    InvalidRequestUri,
    /// A URI uses a scheme the relay does not handle (answer 416).
    #[error("unsupported URI scheme")]
    UnsupportedUriScheme,
    /// A URI is malformed.
    #[error("malformed URI")]
    InvalidUri,
    /// A header line has no colon or an invalid name.
    #[error("malformed header line")]
    InvalidHeaderLine,
    /// The header section is not valid UTF-8 or holds forbidden control bytes.
    #[error("invalid bytes in header section")]
    InvalidEncoding,
    /// A required header is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header that may appear once appears several times with different values.
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    /// A header value does not follow its grammar.
    #[error("malformed {0} header")]
    InvalidHeader(&'static str),
    /// A quoted string has no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// An angle-bracketed URI has no closing `>`.
    #[error("unterminated angle bracket")]
    UnterminatedAngle,
    /// Content-Length is not a non-negative decimal number.
    #[error("malformed Content-Length")]
    InvalidContentLength,
    /// Content-Length is missing on a stream transport.
    #[error("missing Content-Length on a stream")]
    MissingContentLength,
    /// Content-Length declares more bytes than the datagram holds.
    #[error("body shorter than Content-Length")]
    BodyTruncated,
    /// CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// Max-Forwards is not a number in 0..=255.
    #[error("malformed Max-Forwards")]
    InvalidMaxForwards,
}

impl ParseError {
    /// The status code to answer a request that failed with this error:
    /// 400 for syntax, 413 for an oversized body, 416 for an unknown URI
    /// scheme, 505 for another SIP version, 513 for an oversized message.
    ///
    /// ```
    /// use maskline_sip::ParseError;
    /// assert_eq!(ParseError::UnsupportedUriScheme.status_code(), 416);
    /// assert_eq!(ParseError::MessageTooLarge { limit: 1 }.status_code(), 513);
    /// ```
    #[must_use]
    pub fn status_code(&self) -> u16 {
        match self {
            Self::MessageTooLarge { .. }
            | Self::TooManyHeaders { .. }
            | Self::HeaderLineTooLong { .. }
            | Self::TooManyVias { .. } => 513,
            Self::BodyTooLarge { .. } => 413,
            Self::UnsupportedUriScheme => 416,
            Self::InvalidVersion => 505,
            _ => 400,
        }
    }

    /// A reason phrase for the response line, such as
    /// `"Bad Request - Missing Call-ID"`. Never contains input bytes.
    ///
    /// ```
    /// use maskline_sip::ParseError;
    /// assert_eq!(
    ///     ParseError::InvalidHeader("CSeq").reason_phrase(),
    ///     "Bad Request - Malformed CSeq"
    /// );
    /// ```
    #[must_use]
    pub fn reason_phrase(&self) -> &'static str {
        match self {
            Self::Empty => "Bad Request - Empty Message",
            Self::MessageTooLarge { .. } => "Message Too Large",
            Self::TooManyHeaders { .. } => "Message Too Large - Too Many Headers",
            Self::HeaderLineTooLong { .. } => "Message Too Large - Header Too Long",
            Self::TooManyVias { .. } => "Message Too Large - Too Many Via",
            Self::BodyTooLarge { .. } => "Request Entity Too Large",
            Self::UnterminatedHeaders => "Bad Request - Unterminated Headers",
            Self::InvalidStartLine => "Bad Request - Malformed Start Line",
            Self::InvalidMethod => "Bad Request - Malformed Method",
            Self::InvalidVersion => "Version Not Supported",
            Self::InvalidStatusCode => "Bad Request - Malformed Status Code",
            Self::InvalidRequestUri => "Bad Request - Malformed Request-URI",
            Self::UnsupportedUriScheme => "Unsupported URI Scheme",
            Self::InvalidUri => "Bad Request - Malformed URI",
            Self::InvalidHeaderLine => "Bad Request - Malformed Header Line",
            Self::InvalidEncoding => "Bad Request - Invalid Characters",
            Self::MissingHeader(name) => missing_phrase(name),
            Self::DuplicateHeader(name) => duplicate_phrase(name),
            Self::InvalidHeader(name) => malformed_phrase(name),
            Self::UnterminatedQuote => "Bad Request - Unterminated Quoted String",
            Self::UnterminatedAngle => "Bad Request - Unterminated Angle Bracket",
            Self::InvalidContentLength => "Bad Request - Malformed Content-Length",
            Self::MissingContentLength => "Bad Request - Missing Content-Length",
            Self::BodyTruncated => "Bad Request - Body Shorter Than Content-Length",
            Self::CSeqMethodMismatch => "Bad Request - CSeq Method Mismatch",
            Self::InvalidMaxForwards => "Bad Request - Malformed Max-Forwards",
        }
    }
}

fn missing_phrase(name: &str) -> &'static str {
    match name {
        "Via" => "Bad Request - Missing Via",
        "From" => "Bad Request - Missing From",
        "To" => "Bad Request - Missing To",
        "Call-ID" => "Bad Request - Missing Call-ID",
        "CSeq" => "Bad Request - Missing CSeq",
        "Max-Forwards" => "Bad Request - Missing Max-Forwards",
        "Content-Length" => "Bad Request - Missing Content-Length",
        "Contact" => "Bad Request - Missing Contact",
        _ => "Bad Request - Missing Header",
    }
}

fn duplicate_phrase(name: &str) -> &'static str {
    match name {
        "From" => "Bad Request - Duplicate From",
        "To" => "Bad Request - Duplicate To",
        "Call-ID" => "Bad Request - Duplicate Call-ID",
        "CSeq" => "Bad Request - Duplicate CSeq",
        "Max-Forwards" => "Bad Request - Duplicate Max-Forwards",
        "Content-Length" => "Bad Request - Duplicate Content-Length",
        _ => "Bad Request - Duplicate Header",
    }
}

fn malformed_phrase(name: &str) -> &'static str {
    match name {
        "Via" => "Bad Request - Malformed Via",
        "From" => "Bad Request - Malformed From",
        "To" => "Bad Request - Malformed To",
        "Call-ID" => "Bad Request - Malformed Call-ID",
        "CSeq" => "Bad Request - Malformed CSeq",
        "Contact" => "Bad Request - Malformed Contact",
        "Route" => "Bad Request - Malformed Route",
        "Record-Route" => "Bad Request - Malformed Record-Route",
        "Content-Type" => "Bad Request - Malformed Content-Type",
        "P-Asserted-Identity" => "Bad Request - Malformed P-Asserted-Identity",
        "Privacy" => "Bad Request - Malformed Privacy",
        "Diversion" => "Bad Request - Malformed Diversion",
        "History-Info" => "Bad Request - Malformed History-Info",
        "Reason" => "Bad Request - Malformed Reason",
        "Expires" => "Bad Request - Malformed Expires",
        _ => "Bad Request - Malformed Header",
    }
}
