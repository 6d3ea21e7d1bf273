//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3, RFC 5626 §3.5.1).
//!
//! A stream carries messages back to back with no delimiter other than the
//! empty line after the headers and the Content-Length of the body, plus
//! CRLF keep-alives between messages. [`Framer`] is fed whatever the socket
//! returned and cuts it into complete messages, holding at most about two
//! maximal messages in memory and scanning each byte for the end of headers
//! only once.
#![deny(clippy::indexing_slicing)]

use crate::head::parse_head;
use crate::limits::Limits;
use crate::ParseError;

/// One unit cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message (headers and exactly Content-Length body bytes);
    /// parse it with [`Message::parse`](crate::Message::parse).
    Message(Vec<u8>),
    /// A `CRLF CRLF` keep-alive ping: answer with a single CRLF.
    Ping,
    /// A single `CRLF` keep-alive pong. It is reported once the next byte
    /// arrives, since a lone CRLF may be the first half of a ping.
    Pong,
}

/// Incremental decoder of a SIP byte stream.
///
/// ```
/// use maskline_sip::{Frame, Framer, Message};
///
/// let mut f = Framer::default();
/// let msg = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nhi";
/// // Delivered in two reads, followed by a keep-alive and half a message.
/// f.push(&msg[..10]).unwrap();
/// assert_eq!(f.next_frame().unwrap(), None);
/// f.push(&msg[10..]).unwrap();
/// f.push(b"\r\n\r\nBYE sip:a@b SIP/2.0\r\n").unwrap();
/// let Some(Frame::Message(bytes)) = f.next_frame().unwrap() else { panic!() };
/// assert_eq!(Message::parse(&bytes).unwrap().body(), b"hi");
/// assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
/// assert_eq!(f.next_frame().unwrap(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes already searched for `CRLF CRLF` without success.
    scanned: usize,
    /// Total length of the message at the front once its head is parsed.
    pending: Option<usize>,
    limits: Limits,
    failed: Option<ParseError>,
    finder: memchr::memmem::Finder<'static>,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new(Limits::DEFAULT)
    }
}

impl Framer {
    /// A framer enforcing `limits`.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            pending: None,
            limits,
            failed: None,
            finder: memchr::memmem::Finder::new(b"\r\n\r\n"),
        }
    }

    /// Bytes buffered and not yet returned as frames.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes read from the stream. Call [`Framer::next_frame`]
    /// until it returns `Ok(None)` after each push.
    ///
    /// # Errors
    /// [`ParseError::MessageTooLarge`] when the undrained buffer would grow
    /// past twice the maximum message size, or the error that poisoned the
    /// framer earlier. Either way the stream should be closed.
    pub fn push(&mut self, data: &[u8]) -> Result<(), ParseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.buf.len().saturating_add(data.len())
            > self.limits.max_message_size.saturating_mul(2)
        {
            return Err(self.fail(ParseError::MessageTooLarge {
                limit: self.limits.max_message_size,
            }));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn fail(&mut self, e: ParseError) -> ParseError {
        self.failed = Some(e);
        self.buf = Vec::new();
        e
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n.min(self.buf.len()));
        self.scanned = 0;
        self.pending = None;
        std::mem::replace(&mut self.buf, rest)
    }

    /// Returns the next complete frame, `Ok(None)` when more bytes are
    /// needed.
    ///
    /// # Errors
    /// A framing error (oversized message, bad or missing Content-Length,
    /// malformed header section). The framer stays failed afterwards: a
    /// stream that lost framing cannot be resynchronised.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.pending.is_none() {
            // Keep-alives are only recognised between messages.
            if self.buf.starts_with(b"\r\n\r\n") {
                self.take(4);
                return Ok(Some(Frame::Ping));
            }
            if self.buf.starts_with(b"\r\n") {
                // A lone CRLF may be the first half of a ping: wait for the
                // next byte before calling it a pong.
                if self.buf.len() == 2 || (self.buf.len() == 3 && self.buf.get(2) == Some(&b'\r')) {
                    return Ok(None);
                }
                self.take(2);
                return Ok(Some(Frame::Pong));
            }
            if self.buf == b"\r" {
                return Ok(None);
            }
        }
        let total = match self.pending {
            Some(t) => t,
            None => {
                let from = self.scanned;
                let hay = self.buf.get(from..).unwrap_or(&[]);
                let Some(i) = self.finder.find(hay) else {
                    if self.buf.len() > self.limits.max_message_size {
                        return Err(self.fail(ParseError::MessageTooLarge {
                            limit: self.limits.max_message_size,
                        }));
                    }
                    self.scanned = self.buf.len().saturating_sub(3);
                    return Ok(None);
                };
                let head_end = from + i;
                let head = self.buf.get(..head_end + 4).unwrap_or(&[]);
                let cl = match parse_head(head, &self.limits) {
                    Ok(h) => h.content_length,
                    Err(e) => return Err(self.fail(e)),
                };
                let Some(cl) = cl else {
                    return Err(self.fail(ParseError::MissingContentLength));
                };
                let total = head_end + 4 + cl;
                if total > self.limits.max_message_size {
                    return Err(self.fail(ParseError::MessageTooLarge {
                        limit: self.limits.max_message_size,
                    }));
                }
                self.pending = Some(total);
                total
            }
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::Message(self.take(total))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    const BYE: &[u8] = b"BYE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";

    #[test]
    fn several_messages_in_one_read() {
        let mut f = Framer::default();
        let mut data = BYE.to_vec();
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(BYE);
        f.push(&data).unwrap();
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(BYE.to_vec())));
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong));
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(BYE.to_vec())));
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn byte_by_byte_delivery() {
        let msg = b"INVITE sip:x@y SIP/2.0\r\nContent-Length: 5\r\nSubject: a\r\n b\r\n\r\nhello";
        let mut f = Framer::default();
        let mut out = Vec::new();
        for b in msg.iter().chain(msg.iter()) {
            f.push(&[*b]).unwrap();
            while let Some(fr) = f.next_frame().unwrap() {
                out.push(fr);
            }
        }
        assert_eq!(out.len(), 2);
        for fr in out {
            let Frame::Message(m) = fr else {
                panic!("not a message")
            };
            assert_eq!(Message::parse(&m).unwrap().body(), b"hello");
        }
    }

    #[test]
    fn missing_content_length_poisons() {
        let mut f = Framer::default();
        f.push(b"BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")
            .unwrap();
        assert_eq!(f.next_frame(), Err(ParseError::MissingContentLength));
        assert_eq!(f.next_frame(), Err(ParseError::MissingContentLength));
        assert_eq!(f.push(b"x"), Err(ParseError::MissingContentLength));
    }

    #[test]
    fn oversized_content_length_rejected_before_buffering() {
        let limits = Limits {
            max_message_size: 100,
            ..Limits::DEFAULT
        };
        let mut f = Framer::new(limits);
        f.push(b"BYE sip:a@b SIP/2.0\r\nContent-Length: 90\r\n\r\n")
            .unwrap();
        assert_eq!(
            f.next_frame(),
            Err(ParseError::MessageTooLarge { limit: 100 })
        );
    }

    #[test]
    fn endless_headers_are_cut_off() {
        let limits = Limits {
            max_message_size: 64,
            ..Limits::DEFAULT
        };
        let mut f = Framer::new(limits);
        for _ in 0..10 {
            if f.push(b"X-Long: aaaaaaaaaaaaaa\r\n").is_err() {
                break;
            }
            if f.next_frame().is_err() {
                break;
            }
        }
        assert_eq!(
            f.next_frame(),
            Err(ParseError::MessageTooLarge { limit: 64 })
        );
    }

    #[test]
    fn bad_content_length_is_typed() {
        let mut f = Framer::default();
        f.push(b"BYE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n")
            .unwrap();
        assert_eq!(f.next_frame(), Err(ParseError::InvalidContentLength));
    }

    #[test]
    fn split_ping_waits() {
        let mut f = Framer::default();
        f.push(b"\r\n").unwrap();
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(b"\r").unwrap();
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(b"\n").unwrap();
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
    }
}
