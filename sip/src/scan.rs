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

/// True when `b` holds a control byte other than HT, or DEL.
#[inline]
pub(crate) fn has_control(b: &[u8]) -> bool {
    // One branch-free pass (the compiler vectorizes it).
    b.iter().fold(false, |seen, &c| {
        seen | ((c < 0x20 && c != b'\t') | (c == 0x7f))
    })
}

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

/// True when `s` holds an LWS byte, eight bytes at a time: only bytes up to
/// SP (exactly flagged per byte) are looked at one by one.
pub(crate) fn has_lws(s: &str) -> bool {
    let b = s.as_bytes();
    let mut chunks = b.chunks_exact(8);
    for ch in &mut chunks {
        let x = word(ch);
        let mut m = !((x & !HI).wrapping_add(LO * (0x80 - 0x21)) | x) & HI;
        while m != 0 {
            if ch
                .get((m.trailing_zeros() / 8) as usize)
                .is_some_and(|&c| is_lws(c))
            {
                return true;
            }
            m &= m - 1;
        }
    }
    chunks.remainder().iter().any(|&c| is_lws(c))
}

/// Trims linear white space on both ends.
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if !is_lws(f) && !is_lws(l) => s,
        (None, _) | (_, None) => s,
        _ => trim_end(trim_start(s)),
    }
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

pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that is zero. Exact for the lowest
/// such byte (borrows only disturb higher bytes), which is all we use.
#[inline]
pub(crate) fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

#[inline]
pub(crate) fn word(c: &[u8]) -> u64 {
    <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes)
}

/// Index of the first byte equal to `a`, `b` or `c`, eight bytes at a time.
/// Header values are tens of bytes long: this beats both a byte loop and
/// `memchr`'s dispatch at that size.
#[inline]
pub(crate) fn find3(h: &[u8], a: u8, b: u8, c: u8) -> Option<usize> {
    let (pa, pb, pc) = (LO * u64::from(a), LO * u64::from(b), LO * u64::from(c));
    let mut chunks = h.chunks_exact(8);
    let mut base = 0;
    for ch in &mut chunks {
        let x = word(ch);
        let m = zero_bytes(x ^ pa) | zero_bytes(x ^ pb) | zero_bytes(x ^ pc);
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x == a || x == b || x == c)
        .map(|i| base + i)
}

/// Index of the first `a`.
#[inline]
pub(crate) fn find1(h: &[u8], a: u8) -> Option<usize> {
    find3(h, a, a, a)
}

/// Splits at the first `b` (an ASCII byte). A plain loop: the strings
/// split here are short, where `memchr`'s dispatch costs more than it saves.
#[inline]
pub(crate) fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find1(s.as_bytes(), b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Given `s` starting with `"`, returns the byte length of the quoted string
/// including both quotes. Backslash escapes any following byte.
#[inline]
pub(crate) fn quoted_len(s: &str) -> Result<usize, ParseError> {
    let b = s.as_bytes();
    let mut i = 1;
    loop {
        let off = b
            .get(i..)
            .and_then(|r| find3(r, b'\\', b'"', b'"'))
            .ok_or(ParseError::UnterminatedQuote)?;
        i += off;
        match b.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(_) => i += 2,
            None => return Err(ParseError::UnterminatedQuote),
        }
    }
}

/// Finds the first `needle` byte outside quoted strings and outside
/// `<...>`. Errors on an unterminated quote or angle bracket.
#[inline]
pub(crate) fn find_unquoted(s: &str, needle: u8) -> Result<Option<usize>, ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let Some(off) = b.get(i..).and_then(|r| find3(r, needle, b'"', b'<')) else {
            return Ok(None);
        };
        i += off;
        match b.get(i) {
            Some(&c) if c == needle => return Ok(Some(i)),
            Some(b'"') => {
                let rest = s.get(i..).ok_or(ParseError::UnterminatedQuote)?;
                i += quoted_len(rest)?;
            }
            Some(_) => {
                let close = b
                    .get(i..)
                    .and_then(|r| find1(r, b'>'))
                    .ok_or(ParseError::UnterminatedAngle)?;
                i += close + 1;
            }
            None => return Ok(None),
        }
    }
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

/// `x` with ASCII upper-case letters turned to lower case, bytewise:
/// 0x20 is added where the byte is in `A`..=`Z` (no carry crosses a byte).
#[inline(always)]
fn lower_word(x: u64) -> u64 {
    let low7 = x & !HI;
    let ge_a = low7.wrapping_add(LO * (0x80 - 0x41));
    let gt_z = low7.wrapping_add(LO * (0x80 - 0x5b));
    x | ((ge_a & !gt_z & !x & HI) >> 2)
}

/// [`eq_ic`] with the common outcomes settled inline: different lengths,
/// or the very same bytes (names written in the expected case).
#[inline(always)]
pub(crate) fn same_ic(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a == b || eq_ic(a, b))
}

/// Case-insensitive ASCII comparison, eight bytes at a time (overlapping
/// loads cover the tail).
#[inline]
pub(crate) fn eq_ic(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if b.len() != n {
        return false;
    }
    let w8 = |s: &[u8], i: usize| lower_word(s.get(i..i + 8).map_or(0, word));
    let w4 = |s: &[u8], i: usize| {
        let c = s.get(i..i + 4).and_then(|c| <[u8; 4]>::try_from(c).ok());
        lower_word(c.map_or(0, |c| u64::from(u32::from_le_bytes(c))))
    };
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if w8(a, i) != w8(b, i) {
                return false;
            }
            i += 8;
        }
        w8(a, n - 8) == w8(b, n - 8)
    } else if n >= 4 {
        w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4)
    } else {
        a.eq_ignore_ascii_case(b)
    }
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
    fn swar_search_matches_naive_search() {
        let hay: Vec<u8> = (0u8..=255).chain((0u8..=255).rev()).collect();
        for start in 0..40 {
            for &(a, b, c) in &[
                (b',', b'"', b'<'),
                (0x80, 0x01, 0xff),
                (0, 0, 0),
                (b'z', b'z', b'z'),
            ] {
                let h = &hay[start..];
                let naive = h.iter().position(|&x| x == a || x == b || x == c);
                assert_eq!(find3(h, a, b, c), naive, "{start} {a} {b} {c}");
            }
        }
        assert_eq!(find1(b"", b'a'), None);
        assert_eq!(find1(b"abcdefghij", b'j'), Some(9));
        assert_eq!(find1(&[0x01, 0x00, 0x61], 0x61), Some(2));
    }

    #[test]
    fn eq_ic_matches_std() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for b in 0..=255u8 {
            for c in 0..=255u8 {
                let (x, y) = ([b], [c]);
                assert_eq!(
                    lower_word(u64::from(b)) == lower_word(u64::from(c)),
                    x.eq_ignore_ascii_case(&y)
                );
            }
        }
        let words = [
            "",
            "a",
            "SiP",
            "sip",
            "application",
            "APPLICATION",
            "applicatioN ",
            "appl1cation",
            "branch",
            "BRANCH",
            "Branch",
            "bran(h",
            "SIP/2.0",
            "sip/2.0",
            "sip/2,0",
            "@[`{",
            "`{@[",
            "x-a-very-long-header-name",
            "X-A-VERY-LONG-HEADER-NAME",
            "X-A-VERY-LONG-HEADER-NAMF",
            "caf\u{e9}",
            "CAF\u{c9}",
        ];
        for a in words {
            for b in words {
                assert_eq!(eq_ic(a, b), a.eq_ignore_ascii_case(b), "{a:?} {b:?}");
            }
        }
        for i in 0..bytes.len() - 20 {
            let s = String::from_utf8_lossy(&bytes[i..i + 20]).into_owned();
            let u = s.to_ascii_uppercase();
            assert!(eq_ic(&s, &u));
        }
    }

    #[test]
    fn has_lws_matches_naive() {
        let mut v: Vec<u8> = (0x21..0x7f).collect();
        for at in 0..v.len() {
            for b in 0..0x80u8 {
                let keep = v[at];
                v[at] = b;
                let s = std::str::from_utf8(&v[at.saturating_sub(20)..]).unwrap();
                assert_eq!(has_lws(s), s.bytes().any(is_lws), "{s:?}");
                v[at] = keep;
            }
        }
        assert!(!has_lws(""));
        assert!(has_lws("abcdefgh\t"));
        assert!(!has_lws("caf\u{e9}-\u{1F600}-\u{a0}"));
    }

    #[test]
    fn decimal_rejects_overflow_and_signs() {
        assert_eq!(parse_decimal("70", 3), Some(70));
        assert_eq!(parse_decimal("-1", 3), None);
        assert_eq!(parse_decimal("1234", 3), None);
        assert_eq!(parse_decimal("", 3), None);
    }
}
