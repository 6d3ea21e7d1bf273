//! Framing of one message: the start line and the header section, cut
//! into `(name, value)` slices in one pass, with the limits checked as the
//! bytes go by.
//!
//! This is the code every packet from the internet runs through, so it does
//! no per-header allocation, looks at most bytes eight at a time, and
//! stops at the first violation with a typed error.
#![deny(clippy::indexing_slicing)]

use crate::header::{Header, HeaderName};
use crate::limits::Limits;
use crate::message::{RequestLine, StartLine, StatusLine, SIP_VERSION};
use crate::method::Method;
use crate::scan::{
    count_values, eq_ic, find1, is_token, same_ic, split_byte, trim_end, trim_start,
};
use crate::typed::parse_content_length;
use crate::ParseError;

/// Kinds whose first occurrence is indexed at parse time, so the typed
/// accessors on the hot path do not scan the header list.
pub(crate) const INDEXED: usize = 8;

#[inline]
pub(crate) fn slot(kind: HeaderName) -> Option<usize> {
    Some(match kind {
        HeaderName::Via => 0,
        HeaderName::From => 1,
        HeaderName::To => 2,
        HeaderName::CallId => 3,
        HeaderName::CSeq => 4,
        HeaderName::Contact => 5,
        HeaderName::MaxForwards => 6,
        HeaderName::ContentType => 7,
        _ => return None,
    })
}

/// Position of the first header of each indexed kind and which kinds occur
/// more than once. Derived from the header list, so it never disagrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) first: [u32; INDEXED],
    pub(crate) repeated: u8,
    /// The first Via header is a non-empty value without a comma.
    pub(crate) top_via_single: bool,
}

pub(crate) const NONE: u32 = u32::MAX;

impl Index {
    const EMPTY: Index = Index {
        first: [NONE; INDEXED],
        repeated: 0,
        top_via_single: false,
    };

    /// Records header number `i` of kind `kind`; `None` only when `i` does
    /// not fit the index (impossible under the header-count limit).
    fn add(&mut self, i: usize, kind: HeaderName) -> Option<()> {
        if let Some(s) = slot(kind) {
            let i = u32::try_from(i).ok().filter(|&i| i != NONE)?;
            let f = self.first.get_mut(s)?;
            if *f == NONE {
                *f = i;
            } else {
                self.repeated |= 1 << s;
            }
        }
        Some(())
    }
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    if line.len() >= 4 && line.get(..4).is_some_and(|p| same_ic(p, "SIP/")) {
        let (version, rest) = split_byte(line, b' ').ok_or(ParseError::InvalidStartLine)?;
        if !same_ic(version, SIP_VERSION) {
            return Err(ParseError::InvalidVersion);
        }
        let (code, reason) = match split_byte(rest, b' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::InvalidStatusCode);
        }
        let code: u16 = code.parse().map_err(|_| ParseError::InvalidStatusCode)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::InvalidStatusCode);
        }
        return Ok(StartLine::Response(StatusLine {
            version,
            code,
            reason,
        }));
    }
    let (method, rest) = split_byte(line, b' ').ok_or(ParseError::InvalidStartLine)?;
    let (uri, version) = split_byte(rest, b' ').ok_or(ParseError::InvalidStartLine)?;
    if uri.is_empty() || version.contains(' ') {
        return Err(ParseError::InvalidStartLine);
    }
    let method = Method::parse(method)?;
    if !same_ic(version, SIP_VERSION) {
        return Err(if version.get(..4).is_some_and(|p| eq_ic(p, "SIP/")) {
            ParseError::InvalidVersion
        } else {
            ParseError::InvalidStartLine
        });
    }
    Ok(StartLine::Request(RequestLine {
        method,
        uri,
        version,
    }))
}

/// Where the header section and the body of a framed message are.
pub(crate) struct Head<'a> {
    pub(crate) start: StartLine<'a>,
    pub(crate) headers: Vec<Header<'a>>,
    pub(crate) content_length: Option<usize>,
    pub(crate) index: Index,
    /// Offset of the first body byte (just past the empty line).
    pub(crate) body_start: usize,
}

/// A header field being assembled while its continuation lines arrive.
struct Pending<'a> {
    name: &'a str,
    kind: HeaderName,
    /// Value on the first line (used when the field is not folded).
    value: &'a str,
    /// Byte offsets of the whole value, folds included.
    from: usize,
    to: usize,
    line_start: usize,
    folded: bool,
}

fn too_long(limits: &Limits) -> ParseError {
    ParseError::HeaderLineTooLong {
        limit: limits.max_header_line,
    }
}

/// Number of commas in `s`, eight bytes at a time.
fn count_commas(s: &str) -> usize {
    let b = s.as_bytes();
    let (mut n, mut i) = (0, 0);
    while let Some(off) = b.get(i..).and_then(|r| find1(r, b',')) {
        n += 1;
        i += off + 1;
    }
    n
}

/// The header list under construction, with the checks that depend on a
/// header's kind (Via depth, Content-Length) and the index. A failed check
/// is kept in `deferred` and reported only once every line has been cut, so
/// a line-level error further down still wins, exactly as when these checks
/// ran as a second pass over the finished list.
struct Fields<'a, 'l> {
    text: &'a str,
    limits: &'l Limits,
    headers: Vec<Header<'a>>,
    index: Index,
    vias: usize,
    content_length: Option<usize>,
    deferred: Option<ParseError>,
}

impl<'a> Fields<'a, '_> {
    #[inline(always)]
    fn push(&mut self, p: Pending<'a>) -> Result<(), ParseError> {
        let limits = self.limits;
        let n = self.headers.len();
        if n >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let value = if p.folded {
            self.text
                .get(p.from..p.to)
                .ok_or(ParseError::InvalidHeaderLine)?
        } else {
            p.value
        };
        let value = trim_end(trim_start(value));
        let checked = matches!(p.kind, HeaderName::Via | HeaderName::ContentLength);
        if checked && self.deferred.is_none() {
            if let Err(e) = self.check(p.kind, value) {
                self.deferred = Some(e);
            }
        }
        // Only a header list longer than u32 could fail to index; the
        // limits make that impossible, so treat it as too many headers.
        self.index
            .add(n, p.kind)
            .ok_or(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            })?;
        self.headers.push(Header::with_kind(p.name, value, p.kind));
        Ok(())
    }

    fn check(&mut self, kind: HeaderName, value: &str) -> Result<(), ParseError> {
        let limits = self.limits;
        match kind {
            HeaderName::Via => {
                // Commas bound the value count from above; only a header
                // that might breach the limit pays for the exact count.
                let commas = count_commas(value);
                if self.vias == 0 && commas == 0 && !value.is_empty() {
                    self.index.top_via_single = true;
                }
                self.vias += if self.vias + commas < limits.max_via {
                    commas + 1
                } else {
                    count_values(value)
                };
                if self.vias > limits.max_via {
                    return Err(ParseError::TooManyVias {
                        limit: limits.max_via,
                    });
                }
            }
            HeaderName::ContentLength => {
                if self.content_length.is_some() {
                    return Err(ParseError::DuplicateHeader("Content-Length"));
                }
                let cl = parse_content_length(value)?;
                if cl > limits.max_body {
                    return Err(ParseError::BodyTooLarge {
                        limit: limits.max_body,
                    });
                }
                self.content_length = Some(cl);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Cuts a header line into its name (with its kind) and the value on this
/// line. The name is the token before the first colon, optionally followed
/// by SP/HT (RFC 3261 HCOLON). A known name is a token by construction, so
/// only unknown names are checked byte by byte.
fn split_header_line(line: &str) -> Result<(&str, HeaderName, usize), ParseError> {
    let lb = line.as_bytes();
    let colon = find1(lb, b':').ok_or(ParseError::InvalidHeaderLine)?;
    let mut name_end = colon;
    while name_end > 0 && matches!(lb.get(name_end - 1), Some(b' ' | b'\t')) {
        name_end -= 1;
    }
    let name = line.get(..name_end).ok_or(ParseError::InvalidHeaderLine)?;
    let kind = HeaderName::from_raw(name);
    if kind == HeaderName::Other && !is_token(name) {
        return Err(ParseError::InvalidHeaderLine);
    }
    Ok((name, kind, colon))
}

/// Parses the start line and header fields at the front of `buf`, up to and
/// including the empty line that ends them. Lines end with CRLF; a bare CR
/// or LF, any other control byte except HT, and invalid UTF-8 are rejected.
pub(crate) fn parse_head<'a>(buf: &'a [u8], limits: &Limits) -> Result<Head<'a>, ParseError> {
    // One UTF-8 pass over the whole buffer is cheaper than one per line. A
    // binary body stops it early; the head must then end before that point.
    let text = match std::str::from_utf8(buf) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(buf.get(..e.valid_up_to()).unwrap_or(&[]))
            .map_err(|_| ParseError::InvalidEncoding)?,
    };
    let truncated = text.len() < buf.len();
    let bytes = text.as_bytes();
    let mut fields = Fields {
        text,
        limits,
        headers: Vec::with_capacity(24),
        index: Index::EMPTY,
        vias: 0,
        content_length: None,
        deferred: None,
    };
    let mut cur: Option<Pending<'a>> = None;
    let mut start: Option<StartLine<'a>> = None;

    let mut lines = crate::lines::Lines::new(bytes);
    let body_start = loop {
        let Some((pos, line_end)) = lines.next_line()? else {
            if bytes.len() - lines.line_start() > limits.max_header_line {
                return Err(too_long(limits));
            }
            if truncated {
                return Err(ParseError::InvalidEncoding);
            }
            return Err(ParseError::UnterminatedHeaders);
        };
        let next = line_end + 2;
        let line = text.get(pos..line_end).unwrap_or("");
        if line.is_empty() {
            break next;
        }
        if line.len() > limits.max_header_line {
            return Err(too_long(limits));
        }
        if start.is_none() {
            start = Some(parse_start_line(line)?);
        } else if matches!(line.as_bytes().first(), Some(b' ' | b'\t')) {
            // Folded continuation of the previous header.
            let c = cur.as_mut().ok_or(ParseError::InvalidHeaderLine)?;
            c.to = line_end;
            c.folded = true;
            if line_end - c.line_start > limits.max_header_line {
                return Err(too_long(limits));
            }
        } else {
            if let Some(c) = cur.take() {
                fields.push(c)?;
            }
            let (name, kind, colon) = split_header_line(line)?;
            cur = Some(Pending {
                name,
                kind,
                value: line.get(colon + 1..).unwrap_or(""),
                from: pos + colon + 1,
                to: line_end,
                line_start: pos,
                folded: false,
            });
        }
    };
    if let Some(c) = cur.take() {
        fields.push(c)?;
    }
    let start = start.ok_or(ParseError::Empty)?;
    if let Some(e) = fields.deferred {
        return Err(e);
    }
    Ok(Head {
        start,
        headers: fields.headers,
        content_length: fields.content_length,
        index: fields.index,
        body_start,
    })
}
