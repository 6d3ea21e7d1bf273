//! Low-level lexical helpers shared by the typed header parsers.
//!
//! Everything here works on `&str` slices of header values and returns
//! sub-slices, never copies. Linear white space (RFC 3261 §25.1 `LWS`,
//! including folded `CRLF SP`) is treated as plain white space, which is
//! what lets typed accessors read folded header values without unfolding
//! them first.
#![deny(clippy::indexing_slicing)]

use crate::ParseError;

/// RFC 3261 `token` characters.
#[allow(clippy::indexing_slicing)] // evaluated at compile time
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// True for RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN.get(usize::from(b)).copied().unwrap_or(false)
}

/// True when `s` is a non-empty RFC 3261 token.
#[inline]
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().fold(true, |ok, b| ok & is_token_byte(b))
}

/// True for linear white space bytes (SP, HT and the CR/LF of a fold).
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims linear white space on both ends.
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    trim_end(trim_start(s))
}

/// Trims linear white space at the start.
#[inline]
pub(crate) fn trim_start(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if !is_lws(c) {
            break;
        }
        i += 1;
    }
    // `i` sits after ASCII bytes, so it is a char boundary.
    s.get(i..).unwrap_or("")
}

/// Trims linear white space at the end.
#[inline]
pub(crate) fn trim_end(s: &str) -> &str {
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 0 {
        match b.get(end - 1) {
            Some(&c) if is_lws(c) => end -= 1,
            _ => break,
        }
    }
    s.get(..end).unwrap_or("")
}

/// Splits at the first `b` (an ASCII byte). A plain loop: the strings
/// split here are short, where `memchr`'s dispatch costs more than it saves.
#[inline]
pub(crate) fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.as_bytes().iter().position(|&c| c == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Given `s` starting with `"`, returns the byte length of the quoted string
/// including both quotes. Backslash escapes any following byte.
pub(crate) fn quoted_len(s: &str) -> Result<usize, ParseError> {
    let b = s.as_bytes();
    let mut i = 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(ParseError::UnterminatedQuote)
}

/// Finds the first `needle` byte outside quoted strings and outside
/// `<...>`. Errors on an unterminated quote or angle bracket.
pub(crate) fn find_unquoted(s: &str, needle: u8) -> Result<Option<usize>, ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    // A plain loop: these strings are short, and quotes and angle brackets
    // need their own handling anyway.
    while let Some(&c) = b.get(i) {
        if c == needle {
            return Ok(Some(i));
        }
        match c {
            b'"' => {
                let rest = s.get(i..).ok_or(ParseError::UnterminatedQuote)?;
                i += quoted_len(rest)?;
            }
            b'<' => {
                let close = b
                    .get(i..)
                    .and_then(|r| r.iter().position(|&c| c == b'>'))
                    .ok_or(ParseError::UnterminatedAngle)?;
                i += close + 1;
            }
            _ => i += 1,
        }
    }
    Ok(None)
}

/// Iterator over comma-separated values of a header field, honouring
/// quoted strings and angle brackets; empty elements are skipped.
pub(crate) struct CommaSplit<'a> {
    rest: Option<&'a str>,
}

impl<'a> CommaSplit<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self { rest: Some(s) }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = Result<&'a str, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest?;
            let (item, next) = match find_unquoted(rest, b',') {
                Err(e) => {
                    self.rest = None;
                    return Some(Err(e));
                }
                Ok(Some(i)) => (rest.get(..i)?, rest.get(i + 1..)),
                Ok(None) => (rest, None),
            };
            self.rest = next;
            let item = trim(item);
            if !item.is_empty() {
                return Some(Ok(item));
            }
        }
    }
}

/// Counts comma-separated values cheaply (used for the Via depth limit).
pub(crate) fn count_values(s: &str) -> usize {
    CommaSplit::new(s).count()
}

/// Removes the quotes and backslash escapes of a quoted string; returns the
/// input unchanged when it is not quoted.
pub(crate) fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let inner = match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if s.len() >= 2 => inner,
        _ => return std::borrow::Cow::Borrowed(s),
    };
    if !inner.contains('\\') {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Case-insensitive ASCII comparison.
#[inline]
pub(crate) fn eq_ic(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Parses a decimal number with at most `max_digits` digits and no sign.
pub(crate) fn parse_decimal(s: &str, max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Vec<_> = CommaSplit::new(r#""a, b" <sip:x@y;p=1,2>;q=1 , <sip:z>,,"#)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(v, vec![r#""a, b" <sip:x@y;p=1,2>;q=1"#, "<sip:z>"]);
    }

    #[test]
    fn comma_split_reports_unterminated_quote() {
        let mut it = CommaSplit::new(r#""abc, <sip:x>"#);
        assert_eq!(it.next(), Some(Err(ParseError::UnterminatedQuote)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn quoted_len_handles_escapes() {
        assert_eq!(quoted_len(r#""a\"b" rest"#).unwrap(), 6);
        assert_eq!(quoted_len(r#""a\"#), Err(ParseError::UnterminatedQuote));
    }

    #[test]
    fn unquote_removes_escapes() {
        assert_eq!(unquote(r#""a\"b\\c""#), r#"a"b\c"#);
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\""), "\"");
    }

    #[test]
    fn decimal_rejects_overflow_and_signs() {
        assert_eq!(parse_decimal("70", 3), Some(70));
        assert_eq!(parse_decimal("-1", 3), None);
        assert_eq!(parse_decimal("1234", 3), None);
        assert_eq!(parse_decimal("", 3), None);
    }
}
