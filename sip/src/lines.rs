//! Cutting a header section into CRLF-terminated lines, with the check
//! that no raw control byte (HT aside) or DEL hides in them.
//!
//! Every byte of every message head goes through here, so the scan tests
//! sixteen bytes at a time and only looks closer at the word holding a hit
//! — in practice the CR of each line end.
#![deny(clippy::indexing_slicing)]

use crate::scan::{word, HI, LO};
use crate::ParseError;

/// True for the bytes a header section may not hold raw: controls other
/// than CR, LF and HT (which the line cutter handles), and DEL.
#[inline(always)]
fn is_ctl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

/// High bit set in every byte of `x` that is below 0x20 or DEL; exact for
/// every byte (no carry crosses a byte). Per byte: `z = ((b & 0x7f) + 1) &
/// 0x7f` maps DEL to 0 and 0..=0x1f to 1..=0x20, `z + 0x5f` keeps its high
/// bit clear exactly when `z <= 0x20`, and bytes from 0x80 are excluded.
#[inline(always)]
fn ctl_bytes(x: u64) -> u64 {
    let z = ((x & !HI).wrapping_add(LO)) & !HI;
    !(z.wrapping_add(LO * 0x5f) | x) & HI
}

/// Cuts a header section into CRLF-terminated lines and rejects bare
/// CR/LF and control bytes (HT aside) on the way. Each line is scanned from
/// its first byte for the first byte below 0x20 or equal to DEL, sixteen
/// bytes at a time: in practice the CR of the line end, after a few
/// chunks; an HT restarts the scan past it.
pub(crate) struct Lines<'a> {
    h: &'a [u8],
    line_start: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(h: &'a [u8]) -> Self {
        Self { h, line_start: 0 }
    }

    /// Where the next line starts (after the last CRLF returned).
    pub(crate) fn line_start(&self) -> usize {
        self.line_start
    }

    /// Offset of the first byte at or after `from` that is below 0x20 or
    /// DEL, `None` when there is none. Sixteen bytes are tested at a time
    /// (a fixed-size fold the compiler turns into vector compares); the
    /// word holding the hit is then searched exactly.
    #[inline]
    fn next_control(&self, from: usize) -> Option<usize> {
        let h = self.h;
        let mut w = from;
        while let Some(ch) = h.get(w..w + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
            if ch.iter().fold(false, |any, &c| any | is_ctl(c)) {
                break;
            }
            w += 16;
        }
        while let Some(ch) = h.get(w..w + 8) {
            let m = ctl_bytes(word(ch));
            if m != 0 {
                return Some(w + (m.trailing_zeros() / 8) as usize);
            }
            w += 8;
        }
        h.get(w..)?.iter().position(|&c| is_ctl(c)).map(|i| w + i)
    }

    /// The next line as `(start, end)` byte offsets, `end` at its CR;
    /// `Ok(None)` when no complete line is left.
    ///
    /// # Errors
    /// [`ParseError::InvalidEncoding`] for a bare CR or LF or a control
    /// byte other than HT.
    #[inline(always)]
    pub(crate) fn next_line(&mut self) -> Result<Option<(usize, usize)>, ParseError> {
        let mut from = self.line_start;
        loop {
            let Some(i) = self.next_control(from) else {
                return Ok(None);
            };
            match self.h.get(i) {
                Some(b'\r') => {
                    return match self.h.get(i + 1) {
                        Some(b'\n') => {
                            let line = (self.line_start, i);
                            self.line_start = i + 2;
                            Ok(Some(line))
                        }
                        None => Ok(None),
                        Some(_) => Err(ParseError::InvalidEncoding),
                    }
                }
                Some(b'\t') => from = i + 1,
                _ => return Err(ParseError::InvalidEncoding),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_mask_is_exact() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                for fill in [0u8, b'a', 0x7f, 0xff, 0x1f, 0x20, 0x80] {
                    let mut w = [fill; 8];
                    w[pos] = b;
                    let m = ctl_bytes(u64::from_le_bytes(w));
                    for (i, &c) in w.iter().enumerate() {
                        assert_eq!(m >> (8 * i + 7) & 1 == 1, is_ctl(c), "{w:?}");
                    }
                }
            }
        }
    }

    fn all_lines(h: &[u8]) -> Result<Vec<(usize, usize)>, ParseError> {
        let mut l = Lines::new(h);
        let mut out = Vec::new();
        while let Some(x) = l.next_line()? {
            out.push(x);
            if x.0 == x.1 {
                break; // the empty line ends a header section
            }
        }
        Ok(out)
    }

    #[test]
    fn lines_are_cut_and_validated() {
        assert_eq!(all_lines(b"Via: x\r\nrest"), Ok(vec![(0, 6)]));
        assert_eq!(
            all_lines(b"a long line with\ttab and more text\r\n\r\nbody\x00\x01"),
            Ok(vec![(0, 34), (36, 36)])
        );
        assert_eq!(all_lines(b"no end yet"), Ok(vec![]));
        assert_eq!(all_lines(b"ends in cr\r"), Ok(vec![]));
        assert_eq!(all_lines(b"bare\nlf\r\n"), Err(ParseError::InvalidEncoding));
        assert_eq!(all_lines(b"\n"), Err(ParseError::InvalidEncoding));
        assert_eq!(all_lines(b"bare\rcr\r\n"), Err(ParseError::InvalidEncoding));
        assert_eq!(
            all_lines(b"nul \x00 here long enough\r\n"),
            Err(ParseError::InvalidEncoding)
        );
        assert_eq!(all_lines(b"del\x7f\r\n"), Err(ParseError::InvalidEncoding));
        assert_eq!(
            all_lines("caf\u{e9} \u{1F600}\r\n".as_bytes()),
            Ok(vec![(0, 10)])
        );
        // CRLF straddling a word boundary, and a space right after a CR
        // (a false positive of the word test).
        assert_eq!(
            all_lines(b"1234567\r\n \x20\x20x\r\n"),
            Ok(vec![(0, 7), (9, 13)])
        );
    }

    #[test]
    fn lines_match_a_naive_splitter() {
        // Every byte value at every offset of a short line.
        for pos in 0..20 {
            for b in 0u8..=255 {
                let mut h = b"abcdefghijklmnopqrstuvwx\r\n".to_vec();
                h[pos] = b;
                let ok = !(b < 0x20 && b != b'\t') && b != 0x7f;
                let got = all_lines(&h);
                if ok {
                    assert_eq!(got, Ok(vec![(0, 24)]), "{pos} {b}");
                } else {
                    assert_eq!(got, Err(ParseError::InvalidEncoding), "{pos} {b}");
                }
            }
        }
    }
}
