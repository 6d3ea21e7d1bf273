//! What may be forwarded, and in what form: phone numbers typed into a text are
//! masked (`13812345678` → `138****5678`) so neither party learns the other's number
//! from the body either; blocked keywords and over-long texts are refused.
//!
//! Recognised as numbers (digits may be separated by single spaces or dashes):
//! - E.164: `+` and 8 to 15 digits;
//! - Chinese mobile: `1[3-9]` and 9 more digits, optionally preceded by `86`
//!   (or `+86`, `0086`);
//! - configured national forms (`[sms] mask_patterns`, `#` = any digit).
//!
//! A masked number keeps its first three and last four digits and nothing else;
//! separators inside it are dropped. Digit runs that match no form (order numbers,
//! amounts, codes) are left alone. Hand-written scanner, no regex: one pass, no
//! allocation unless a number is found.

/// Masking and refusal rules, from `[sms]`.
#[derive(Debug, Clone, Default)]
pub struct BodyRules {
    /// Extra national templates (`#` any digit).
    pub patterns: Vec<String>,
    /// Lower-cased blocked keywords.
    pub blocklist: Vec<String>,
    /// Longest body, characters.
    pub max_length: usize,
}

/// Why a body is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Holds a blocked keyword.
    Blocked,
    /// Longer than `max_length`.
    TooLong,
}

impl Refusal {
    /// Record/metric spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Blocked => "blocked_keyword",
            Refusal::TooLong => "too_long",
        }
    }
}

impl BodyRules {
    /// Builds the rules (keywords compared case-insensitively).
    pub fn new(patterns: &[String], blocklist: &[String], max_length: usize) -> Self {
        Self {
            patterns: patterns.to_vec(),
            blocklist: blocklist
                .iter()
                .map(|w| w.to_lowercase())
                .filter(|w| !w.is_empty())
                .collect(),
            max_length,
        }
    }

    /// Checks `text` against the blocklist and length limit.
    pub fn check(&self, text: &str) -> Result<(), Refusal> {
        if text.chars().count() > self.max_length {
            return Err(Refusal::TooLong);
        }
        if !self.blocklist.is_empty() {
            let lower = text.to_lowercase();
            if self.blocklist.iter().any(|w| lower.contains(w.as_str())) {
                return Err(Refusal::Blocked);
            }
        }
        Ok(())
    }

    /// `text` with every phone number masked; the count of numbers masked.
    pub fn mask(&self, text: &str) -> (String, usize) {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut masked = 0;
        let mut i = 0;
        while i < chars.len() {
            let starts_run = (chars[i].is_ascii_digit() || chars[i] == '+')
                && (i == 0 || !chars[i - 1].is_ascii_digit());
            if starts_run {
                if let Some((end, digits)) = self.number_at(&chars, i) {
                    out.push_str(&mask_digits(&digits));
                    masked += 1;
                    i = end;
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        (out, masked)
    }

    /// If a number starts at `i`: where it ends and its digits.
    fn number_at(&self, chars: &[char], i: usize) -> Option<(usize, String)> {
        let plus = chars[i] == '+';
        let start = if plus { i + 1 } else { i };
        // Collect the digit run, allowing single separators between digits.
        let mut digits = String::new();
        let mut ends = Vec::new(); // end index after each digit
        let mut j = start;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits.push(c);
                j += 1;
                ends.push(j);
            } else if (c == ' ' || c == '-')
                && !digits.is_empty()
                && chars.get(j + 1).is_some_and(char::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        if digits.is_empty() {
            return None;
        }
        let n = digits.len();
        let whole = |len: usize| ends.get(len - 1).map(|&e| (e, digits[..len].to_owned()));
        // The whole run must be the number (a longer run is some other identifier),
        // except that trailing digits after a separator may belong to the next word.
        if plus {
            return (8..=15).contains(&n).then(|| whole(n)).flatten();
        }
        let d = digits.as_bytes();
        let cn_mobile = |s: &[u8]| s.len() == 11 && s[0] == b'1' && (b'3'..=b'9').contains(&s[1]);
        if cn_mobile(d)
            || (n == 13 && d.starts_with(b"86") && cn_mobile(&d[2..]))
            || (n == 15 && d.starts_with(b"0086") && cn_mobile(&d[4..]))
        {
            return whole(n);
        }
        if self.patterns.iter().any(|p| template_matches(p, &digits)) {
            return whole(n);
        }
        None
    }
}

fn template_matches(template: &str, digits: &str) -> bool {
    template.len() == digits.len()
        && template
            .bytes()
            .zip(digits.bytes())
            .all(|(t, d)| t == b'#' || t == d)
}

/// `13812345678` → `138****5678`; short numbers keep less.
fn mask_digits(digits: &str) -> String {
    let n = digits.len();
    let (head, tail) = if n >= 9 { (3, 4) } else { (2, 2) };
    let mut s = String::with_capacity(n);
    s.push_str(&digits[..head]);
    s.extend(std::iter::repeat_n('*', n - head - tail));
    s.push_str(&digits[n - tail..]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> BodyRules {
        BodyRules::new(&["0##########".into()], &["Casino".into()], 20)
    }

    #[test]
    fn chinese_mobiles_and_e164_are_masked_with_or_without_separators() {
        let r = rules();
        for (input, want) in [
            ("call me 13812345678 ok", "call me 138****5678 ok"),
            ("call me 138 1234 5678", "call me 138****5678"),
            ("138-1234-5678!", "138****5678!"),
            ("my no. +8613812345678", "my no. 861******5678"),
            ("+44 20 7946 0958 office", "442*****0958 office"),
            ("我的电话13912345678谢谢", "我的电话139****5678谢谢"),
            ("8613812345678", "861******5678"),
            ("trunk 01012345678", "trunk 010****5678"),
        ] {
            assert_eq!(r.mask(input).0, want, "{input}");
            assert_eq!(r.mask(input).1, 1);
        }
    }

    #[test]
    fn other_digit_runs_are_left_alone() {
        let r = rules();
        for s in [
            "order 123456789012345678",
            "pay 12.50 at gate 3",
            "code 4821",
            "12345678901",
            "SF1234567890",
        ] {
            assert_eq!(r.mask(s).0, s);
        }
        let (_, n) = r.mask("a 13812345678 b 13987654321");
        assert_eq!(n, 2);
    }

    #[test]
    fn blocklist_and_length() {
        let r = rules();
        assert_eq!(r.check("best CASINO deals"), Err(Refusal::Blocked));
        assert_eq!(r.check(&"x".repeat(21)), Err(Refusal::TooLong));
        assert_eq!(r.check(&"快".repeat(20)), Ok(()));
    }
}
