//! The first request line of a connection, checked before hyper sees it, so that a
//! request line hyper would refuse with a bare, empty-bodied `400` or `414` gets the
//! API's JSON error shape instead: [`check_request_line`] reads up to the first
//! line end and either answers the error itself or hands the bytes back, which
//! [`Prefixed`] replays to hyper ahead of the rest of the stream.
//!
//! Only the first request of a connection is checked this way; later requests on a
//! kept-alive connection are parsed by hyper alone.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::error::HttpError;

/// Longest request line (method, URL, version) accepted; longer → 414.
pub const MAX_REQUEST_LINE: usize = 8192;

/// What the first line check decided.
pub(crate) enum Preface {
    /// Serve: these bytes were read already and go to hyper first.
    Serve(Bytes),
    /// The connection closed or failed before a full line.
    Closed,
    /// Refused (and answered, in our error shape).
    Refused,
}

/// Reads the first request line from `io` and checks it. On a bad or overlong line,
/// writes the JSON error answer and returns [`Preface::Refused`].
pub(crate) async fn check_request_line<IO>(io: &mut IO) -> Preface
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        // Leading empty lines are allowed before a request line (RFC 9112 2.2).
        let start = buf.iter().position(|b| *b != b'\r' && *b != b'\n');
        if let Some(start) = start {
            if let Some(end) = buf[start..].iter().position(|b| *b == b'\n') {
                let line = &buf[start..start + end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let Some(e) = line_error(line) {
                    refuse(io, e).await;
                    return Preface::Refused;
                }
                return Preface::Serve(buf.freeze());
            }
            if buf.len() - start > MAX_REQUEST_LINE {
                let e = match method_ok(&buf[start..]) {
                    true => HttpError::new(
                        StatusCode::URI_TOO_LONG,
                        "uri_too_long",
                        format!("the request line (URL) is longer than {MAX_REQUEST_LINE} bytes"),
                    ),
                    false => malformed(),
                };
                refuse(io, e).await;
                return Preface::Refused;
            }
        } else if buf.len() > MAX_REQUEST_LINE {
            return Preface::Closed;
        }
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Preface::Closed,
            Ok(_) => {}
        }
    }
}

fn malformed() -> HttpError {
    HttpError::new(
        StatusCode::BAD_REQUEST,
        "malformed_request",
        "the request line is not HTTP: expected METHOD /path HTTP/1.1",
    )
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether the line starts with a method token and a space (or is still one).
fn method_ok(line: &[u8]) -> bool {
    let method_len = line.iter().take_while(|b| is_tchar(**b)).count();
    method_len > 0 && (method_len == line.len() || line[method_len] == b' ')
}

/// Why a complete request line is unacceptable, if it is.
fn line_error(line: &[u8]) -> Option<HttpError> {
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Some(malformed());
    };
    if method.is_empty() || !method.iter().all(|b| is_tchar(*b)) {
        return Some(malformed());
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Some(malformed());
    }
    if !matches!(version, b"HTTP/1.0" | b"HTTP/1.1" | b"HTTP/2.0") {
        return Some(malformed());
    }
    if line.len() > MAX_REQUEST_LINE {
        return Some(HttpError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request line (URL) is longer than {MAX_REQUEST_LINE} bytes"),
        ));
    }
    None
}

/// Writes `e` as a complete HTTP/1.1 answer and closes the connection.
async fn refuse<IO: AsyncWrite + Unpin>(io: &mut IO, e: HttpError) {
    let body = e.body_json();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        e.status.as_u16(),
        e.status.canonical_reason().unwrap_or(""),
        body.len()
    );
    tracing::debug!(
        status = e.status.as_u16(),
        code = e.code,
        "request line refused"
    );
    let _ = io.write_all(head.as_bytes()).await;
    let _ = io.write_all(body.as_bytes()).await;
    let _ = io.shutdown().await;
}

/// A stream that first replays bytes already read from it.
pub(crate) struct Prefixed<IO> {
    prefix: Bytes,
    io: IO,
}

impl<IO> Prefixed<IO> {
    pub(crate) fn new(prefix: Bytes, io: IO) -> Self {
        Self { prefix, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert!(line_error(b"GET /v1/pools?x=1 HTTP/1.1").is_none());
        assert!(line_error(b"PRI * HTTP/2.0").is_none());
        for bad in [
            &b"garbage"[..],
            b"GET  HTTP/1.1",
            b"GET /a\x00b HTTP/1.1",
            b"G(T / HTTP/1.1",
            b"GET / HTTP/9",
            b"GET / HTTP/1.1 extra",
        ] {
            assert_eq!(
                line_error(bad).map(|e| e.code),
                Some("malformed_request"),
                "{bad:?}"
            );
        }
    }
}
