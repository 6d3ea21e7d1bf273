//! Answering a datagram request that [`Message::parse`] rejected because of
//! its Content-Length: RFC 3261 §18.3 says a request whose body is shorter
//! than its Content-Length SHOULD get a 400, but a failed parse leaves no
//! message to answer. Found by the SIPp interop tests.
#![deny(clippy::indexing_slicing)]

use super::{BuildError, MessageBuilder};
use crate::{Message, ParseError};

/// Whether a header line (without its CRLF) is a Content-Length line.
fn is_content_length(line: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    let name = line.get(..colon).unwrap_or(&[]).trim_ascii_end();
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")
}

impl MessageBuilder {
    /// Builds the error response for a datagram `buf` that failed
    /// [`Message::parse`] with `err`, when only its Content-Length is at
    /// fault ([`ParseError::BodyTruncated`], [`ParseError::InvalidContentLength`],
    /// or two Content-Length headers): the header section is read without
    /// its Content-Length lines and answered like
    /// [`error_response`](Self::error_response) (status and reason phrase
    /// from `err`, fresh To tag, no body).
    ///
    /// ```
    /// use maskline_sip::{Message, MessageBuilder};
    ///
    /// let req = b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
    ///   From: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
    ///   Content-Length: 500\r\n\r\nv=0\r\n";
    /// let err = Message::parse(req).unwrap_err();
    /// let resp = MessageBuilder::error_response_to_datagram(req, &err).unwrap();
    /// let resp = Message::parse(&resp).unwrap();
    /// assert_eq!(resp.status(), Some(400));
    /// assert_eq!(resp.status_line().unwrap().reason, "Bad Request - Body Shorter Than Content-Length");
    /// assert_eq!(resp.call_id().unwrap(), "c");
    /// ```
    ///
    /// A request of another SIP version ([`ParseError::InvalidVersion`]) is
    /// answered `505 Version Not Supported` the same way (RFC 3261 §8.2.1:
    /// the header section is read as SIP/2.0 only to build the answer).
    ///
    /// # Errors
    /// [`BuildError::Source`] with `err` for any other error, for a
    /// response, or when the header section is itself unusable (the
    /// datagram is then dropped silently).
    pub fn error_response_to_datagram(buf: &[u8], err: &ParseError) -> Result<Vec<u8>, BuildError> {
        if *err == ParseError::InvalidVersion {
            return Self::version_not_supported(buf, err);
        }
        if !matches!(
            err,
            ParseError::BodyTruncated
                | ParseError::InvalidContentLength
                | ParseError::DuplicateHeader("Content-Length")
        ) {
            return Err(BuildError::Source(*err));
        }
        let end = memchr::memmem::find(buf, b"\r\n\r\n").ok_or(BuildError::Source(*err))?;
        let head = buf.get(..end + 2).unwrap_or(&[]);
        let mut out = Vec::with_capacity(head.len() + 2);
        let mut skipping = false;
        for (i, line) in head.split_inclusive(|&b| b == b'\n').enumerate() {
            let folded = matches!(line.first(), Some(b' ' | b'\t'));
            if i > 0 && !folded {
                skipping = is_content_length(line);
            }
            if i == 0 || !skipping {
                out.extend_from_slice(line);
            }
        }
        out.extend_from_slice(b"\r\n");
        let msg = Message::parse(&out)?;
        if !msg.is_request() {
            return Err(BuildError::Source(*err));
        }
        Self::error_response(&msg, err)
    }

    /// 505 for a request line `METHOD URI SIP/x.y` (x.y not 2.0).
    fn version_not_supported(buf: &[u8], err: &ParseError) -> Result<Vec<u8>, BuildError> {
        let end = memchr::memmem::find(buf, b"\r\n\r\n").ok_or(BuildError::Source(*err))?;
        let head = buf.get(..end + 2).unwrap_or(&[]);
        let line_end = memchr::memchr(b'\n', head).ok_or(BuildError::Source(*err))?;
        let line = head.get(..line_end).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let sp = memchr::memrchr(b' ', line).ok_or(BuildError::Source(*err))?;
        let version = line.get(sp + 1..).unwrap_or(&[]);
        if !version.starts_with(b"SIP/") || version.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(BuildError::Source(*err));
        }
        let mut out = Vec::with_capacity(head.len() + 2);
        out.extend_from_slice(line.get(..sp).unwrap_or(&[]));
        out.extend_from_slice(b" SIP/2.0\r\n");
        for l in head
            .get(line_end + 1..)
            .unwrap_or(&[])
            .split_inclusive(|&b| b == b'\n')
        {
            if !is_content_length(l) {
                out.extend_from_slice(l);
            }
        }
        out.extend_from_slice(b"\r\n");
        let msg = Message::parse(&out)?;
        if !msg.is_request() {
            return Err(BuildError::Source(*err));
        }
        Self::error_response(&msg, err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn another_sip_version_is_answered_505() {
        let req = b"INVITE sip:b@h SIP/3.0\r\nVia: SIP/3.0/UDP p;branch=z9hG4bK1\r\n\
            From: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        let err = Message::parse(req).unwrap_err();
        assert_eq!(err, ParseError::InvalidVersion);
        let resp = MessageBuilder::error_response_to_datagram(req, &err).unwrap();
        let resp = Message::parse(&resp).unwrap();
        assert_eq!(resp.status(), Some(505));
        assert_eq!(resp.call_id().unwrap(), "c");
        // A response of another version is never answered.
        let err = Message::parse(b"SIP/3.0 200 OK\r\n\r\n").unwrap_err();
        assert!(
            MessageBuilder::error_response_to_datagram(b"SIP/3.0 200 OK\r\n\r\n", &err).is_err()
        );
    }

    const HEAD: &str = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
        From: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n";

    fn answer(raw: &str) -> Result<(u16, String), BuildError> {
        let err = Message::parse(raw.as_bytes()).unwrap_err();
        let out = MessageBuilder::error_response_to_datagram(raw.as_bytes(), &err)?;
        let resp = Message::parse(&out).unwrap();
        resp.validate().unwrap();
        assert_eq!(resp.content_length(), Some(0));
        assert!(resp.to().unwrap().tag().is_some());
        let line = resp.status_line().unwrap();
        Ok((line.code, line.reason.to_owned()))
    }

    #[test]
    fn broken_content_length_is_answered() {
        let cases = [
            (
                format!("{HEAD}Content-Length: 99\r\n\r\nv=0\r\n"),
                "Bad Request - Body Shorter Than Content-Length",
            ),
            (
                format!("{HEAD}l: many\r\n\r\n"),
                "Bad Request - Malformed Content-Length",
            ),
            (
                format!("{HEAD}Content-Length: 0\r\ncontent-length : 4\r\n\r\nv=0\r\n"),
                "Bad Request - Duplicate Content-Length",
            ),
            (
                format!("{HEAD}Content-Length:\r\n 99\r\n\r\n"),
                "Bad Request - Body Shorter Than Content-Length",
            ),
        ];
        for (raw, reason) in cases {
            assert_eq!(answer(&raw).unwrap(), (400, reason.to_owned()), "{raw}");
        }
    }

    #[test]
    fn other_errors_and_responses_are_not_answered() {
        // Missing Call-ID: no response can be built.
        let raw = HEAD.replace("Call-ID: c\r\n", "") + "Content-Length: 99\r\n\r\n";
        assert!(answer(&raw).is_err());
        // A response is never answered.
        let raw =
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=9\r\n\
            To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\n";
        assert!(answer(raw).is_err());
        // Other parse errors are not this function's business.
        let err = ParseError::InvalidStartLine;
        assert_eq!(
            MessageBuilder::error_response_to_datagram(b"x\r\n\r\n", &err),
            Err(BuildError::Source(err))
        );
        // No end of headers.
        let err = ParseError::BodyTruncated;
        assert!(MessageBuilder::error_response_to_datagram(HEAD.as_bytes(), &err).is_err());
    }
}
