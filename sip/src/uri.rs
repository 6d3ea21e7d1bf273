//! SIP, SIPS and `tel:` URIs (RFC 3261 §19.1, RFC 3966), parsed into
//! borrowed parts.
//!
//! The relay reads user parts (numbers) and hosts to route and to mask, and
//! copies everything else verbatim, so a [`Uri`] keeps its raw text next to
//! the split-out fields. Any other absolute URI (`http:`, `urn:` ...) parses
//! as [`Scheme::Other`] so callers can answer 416 rather than 400.
#![deny(clippy::indexing_slicing)]

use std::fmt;

use crate::params::Params;
use crate::scan::{eq_ic, parse_decimal, split_byte, word, HI, LO};
use crate::ParseError;

/// A URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
    /// Any other syntactically valid scheme, kept as written.
    Other(&'a str),
}

/// The host of a SIP URI or Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name (or anything that is not an IP literal).
    Domain(&'a str),
    /// A dotted-quad IPv4 address.
    Ipv4(std::net::Ipv4Addr),
    /// An IPv6 reference; the slice is the text between the brackets.
    Ipv6(&'a str),
}

impl<'a> Host<'a> {
    /// Parses a host: `[v6]`, a dotted quad, or a domain name.
    ///
    /// # Errors
    /// [`ParseError::InvalidUri`] for empty hosts, bad IPv6 references or
    /// bytes outside the host grammar.
    #[inline]
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(ParseError::InvalidUri)?;
            if inner.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(ParseError::InvalidUri);
            }
            return Ok(Host::Ipv6(inner));
        }
        // A dotted quad is all digits and dots: no need for the class scan.
        if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            if let Some(a) = parse_ipv4(s) {
                return Ok(Host::Ipv4(a));
            }
        }
        let class = s.bytes().fold(HOST_OK | HOST_NUM, |acc, b| {
            acc & HOST_CLASS.get(usize::from(b)).copied().unwrap_or(0)
        });
        if s.is_empty() || class & HOST_OK == 0 {
            return Err(ParseError::InvalidUri);
        }
        if class & HOST_NUM != 0 {
            return parse_ipv4(s).map(Host::Ipv4).ok_or(ParseError::InvalidUri);
        }
        Ok(Host::Domain(s))
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed URI borrowing from the message.
///
/// For `sip:`/`sips:` URIs every field is filled in. For `tel:` URIs
/// [`Uri::user`] is the telephone number, [`Uri::host`] is `None` and
/// [`Uri::params`] holds the `;phone-context=...` style parameters. For
/// other schemes only [`Uri::scheme`] and [`Uri::as_str`] are meaningful.
///
/// ```
/// use maskline_sip::{Host, Scheme, Uri};
///
/// let u = Uri::parse("sip:+15550100@[2001:db8::1]:5061;transport=tls;user=phone?X=1").unwrap();
/// assert_eq!(u.scheme(), Scheme::Sip);
/// assert_eq!(u.user(), Some("+15550100"));
/// assert_eq!(u.host(), Some(Host::Ipv6("2001:db8::1")));
/// assert_eq!(u.port(), Some(5061));
/// assert_eq!(u.params().value("transport"), Some("tls"));
/// assert_eq!(u.headers(), Some("X=1"));
///
/// let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
/// assert_eq!(t.scheme(), Scheme::Tel);
/// assert_eq!(t.user(), Some("+1-201-555-0123"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    raw: &'a str,
    scheme: Scheme<'a>,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: Option<Host<'a>>,
    host_raw: &'a str,
    port: Option<u16>,
    params: Params<'a>,
    headers: Option<&'a str>,
}

fn valid_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

const BAD: u8 = 1;
const AT: u8 = 2;
const SEMI: u8 = 4;
const QMARK: u8 = 8;
const COLON: u8 = 16;

/// Byte classes for the one-pass URI scan. Bytes allowed anywhere in a URI
/// are RFC 3986 reserved + unreserved + `%`, `[` `]` for IPv6, and UTF-8;
/// white space, quotes, `<` `>` and controls are [`BAD`].
#[allow(clippy::indexing_slicing)] // evaluated at compile time
static URI_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let ok = (b.is_ascii_graphic()
            && !matches!(b, b'"' | b'<' | b'>' | b'\\' | b'{' | b'}' | b'|' | b'^'))
            || b >= 0x80;
        t[i] = match b {
            _ if !ok => BAD,
            b'@' => AT,
            b';' => SEMI,
            b'?' => QMARK,
            b':' => COLON,
            _ => 0,
        };
        i += 1;
    }
    t
};

/// Positions found by one pass over a URI: the first `:`, the first `@`,
/// and the first `;` and `?` after that `@` (or anywhere, without one).
#[derive(Default)]
struct Marks {
    colon: Option<usize>,
    at: Option<usize>,
    semi: Option<usize>,
    qmark: Option<usize>,
}

/// High bit set in exactly the bytes of `x` equal to `b`.
#[inline(always)]
fn eq_bytes(x: u64, b: u8) -> u64 {
    let t = x ^ (LO * u64::from(b));
    !((t & !HI).wrapping_add(!HI) | t) & HI
}

/// High bit set in every byte of `x` that has a non-zero [`URI_CLASS`],
/// and in `=` and `~` (neighbours of special bytes, cheaper to let
/// through): bytes up to SP, `:`..=`@`, `{`..=DEL, `"`, `\\` and `^`. Each
/// byte is tested on its own (no carry crosses a byte), so every flag can
/// be used, not only the lowest.
#[inline(always)]
fn uri_candidates(x: u64) -> u64 {
    let low7 = x & !HI;
    let upto_sp = !low7.wrapping_add(LO * (0x80 - 0x21));
    let colon_to_at =
        low7.wrapping_add(LO * (0x80 - 0x3a)) & !low7.wrapping_add(LO * (0x80 - 0x41));
    let brace_to_del = low7.wrapping_add(LO * (0x80 - 0x7b));
    ((upto_sp | colon_to_at | brace_to_del) & !x & HI)
        | eq_bytes(x, b'"')
        | eq_bytes(x & (LO * 0xfd), b'\\')
}

#[inline(always)]
fn uri_class(b: u8) -> u8 {
    URI_CLASS.get(usize::from(b)).copied().unwrap_or(BAD)
}

impl Marks {
    /// Records the byte at `i` of class `c`.
    #[inline(always)]
    fn note(&mut self, i: usize, c: u8) -> Result<(), ParseError> {
        match c {
            BAD => return Err(ParseError::InvalidUri),
            AT if self.at.is_none() => {
                self.at = Some(i);
                self.semi = None;
                self.qmark = None;
            }
            SEMI if self.semi.is_none() => self.semi = Some(i),
            QMARK if self.qmark.is_none() => self.qmark = Some(i),
            COLON if self.colon.is_none() => self.colon = Some(i),
            _ => {}
        }
        Ok(())
    }
}

/// One pass over the URI, eight bytes at a time; only flagged bytes are
/// classified.
fn scan_uri(raw: &str) -> Result<Marks, ParseError> {
    let b = raw.as_bytes();
    let mut m = Marks::default();
    let mut chunks = b.chunks_exact(8);
    let mut base = 0;
    for ch in &mut chunks {
        let mut c = uri_candidates(word(ch));
        while c != 0 {
            let j = (c.trailing_zeros() / 8) as usize;
            let class = ch.get(j).map_or(BAD, |&x| uri_class(x));
            m.note(base + j, class)?;
            c &= c - 1;
        }
        base += 8;
    }
    for (j, &x) in chunks.remainder().iter().enumerate() {
        m.note(base + j, uri_class(x))?;
    }
    Ok(m)
}

const HOST_OK: u8 = 1;
const HOST_NUM: u8 = 2;

/// Host byte classes: letters, digits, `-`, `.`, `_` are valid; digits and
/// `.` may form an IPv4 address.
#[allow(clippy::indexing_slicing)] // evaluated at compile time
static HOST_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_digit() || b == b'.' {
            HOST_OK | HOST_NUM
        } else if b.is_ascii_alphabetic() || b == b'-' || b == b'_' {
            HOST_OK
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Parses a dotted quad strictly (four decimal octets of 1–3 digits),
/// one octet at a time.
#[inline]
fn parse_ipv4(s: &str) -> Option<std::net::Ipv4Addr> {
    let mut rest = s.as_bytes();
    let mut octets = [0u8; 4];
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let mut v: u16 = 0;
        let mut n = 0;
        while let Some(&d) = rest.get(n).filter(|d| d.is_ascii_digit() && n < 3) {
            v = v * 10 + u16::from(d - b'0');
            n += 1;
        }
        if n == 0 {
            return None;
        }
        *octet = u8::try_from(v).ok()?;
        rest = rest.get(n..)?;
    }
    rest.is_empty().then(|| std::net::Ipv4Addr::from(octets))
}

#[cfg(test)]
#[test]
fn ipv4_matches_a_naive_parser() {
    let naive = |s: &str| -> Option<std::net::Ipv4Addr> {
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        let mut o = [0u8; 4];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            o[i] = p.parse().ok()?;
        }
        Some(std::net::Ipv4Addr::from(o))
    };
    let alphabet = [b'0', b'2', b'5', b'9', b'.', b'a'];
    let mut buf = Vec::new();
    for len in 0..=8usize {
        let total = alphabet.len().pow(len as u32);
        for mut code in 0..total {
            buf.clear();
            for _ in 0..len {
                buf.push(alphabet[code % alphabet.len()]);
                code /= alphabet.len();
            }
            let s = std::str::from_utf8(&buf).unwrap();
            assert_eq!(parse_ipv4(s), naive(s), "{s}");
        }
    }
    for s in [
        "255.255.255.255",
        "256.1.1.1",
        "010.0.0.1",
        "1.2.3.4.",
        "1.2.3.4444",
        "1..2.3",
    ] {
        assert_eq!(parse_ipv4(s), naive(s), "{s}");
    }
}

impl<'a> Uri<'a> {
    /// Parses a URI.
    ///
    /// # Errors
    /// [`ParseError::InvalidUri`] when the text is not a URI.
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        let marks = scan_uri(raw)?;
        let colon = marks.colon.ok_or(ParseError::InvalidUri)?;
        let scheme_s = raw.get(..colon).ok_or(ParseError::InvalidUri)?;
        let rest = raw.get(colon + 1..).ok_or(ParseError::InvalidUri)?;
        // `sip` in any case (the usual scheme) is valid by construction:
        // `x | 0x20` equals a lower-case letter only for that letter and
        // its upper-case form.
        let is_sip = if let [s, i, p] = scheme_s.as_bytes() {
            s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p'
        } else {
            false
        };
        let scheme = if is_sip {
            Scheme::Sip
        } else if !valid_scheme(scheme_s) {
            return Err(ParseError::InvalidUri);
        } else if eq_ic(scheme_s, "sips") {
            Scheme::Sips
        } else if eq_ic(scheme_s, "tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme_s)
        };
        let mut uri = Uri {
            raw,
            scheme,
            user: None,
            password: None,
            host: None,
            host_raw: "",
            port: None,
            params: Params::default(),
            headers: None,
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(colon + 1, &marks)?,
            Scheme::Tel => {
                let (num, params) = match split_byte(rest, b';') {
                    Some((n, p)) => (n, p),
                    None => (rest, ""),
                };
                let ok = num.bytes().all(|b| {
                    b.is_ascii_hexdigit()
                        || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
                });
                if num.is_empty() || !ok {
                    return Err(ParseError::InvalidUri);
                }
                uri.user = Some(num);
                uri.params = Params::new(params);
            }
            Scheme::Other(_) => {
                if rest.is_empty() {
                    return Err(ParseError::InvalidUri);
                }
            }
        }
        Ok(uri)
    }

    fn parse_sip(&mut self, start: usize, m: &Marks) -> Result<(), ParseError> {
        const E: ParseError = ParseError::InvalidUri;
        let raw = self.raw;
        let host_start = match m.at {
            Some(at) => {
                let userinfo = raw.get(start..at).ok_or(E)?;
                let (user, password) = match split_byte(userinfo, b':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(E);
                }
                self.user = Some(user);
                self.password = password;
                at + 1
            }
            None => start,
        };
        let end = m.qmark.unwrap_or(raw.len());
        if let Some(q) = m.qmark {
            self.headers = Some(raw.get(q + 1..).ok_or(E)?);
        }
        let hostport_end = match m.semi {
            Some(semi) if semi < end => {
                self.params = Params::new(raw.get(semi + 1..end).ok_or(E)?);
                semi
            }
            _ => end,
        };
        let hostport = raw.get(host_start..hostport_end).ok_or(E)?;
        let (host_s, port) = split_host_port(hostport)?;
        self.host = Some(Host::parse(host_s)?);
        self.host_raw = host_s;
        self.port = port;
        Ok(())
    }

    /// The whole URI as received.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The scheme.
    #[must_use]
    pub fn scheme(&self) -> Scheme<'a> {
        self.scheme
    }

    /// True for `sip:` and `sips:` URIs.
    #[must_use]
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The user part (still %-escaped), or the number of a `tel:` URI.
    #[must_use]
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }

    /// The password of the userinfo, if any (deprecated but legal).
    #[must_use]
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }

    /// The host of a SIP URI.
    #[must_use]
    pub fn host(&self) -> Option<Host<'a>> {
        self.host
    }

    /// The host exactly as written (IPv6 references keep their brackets).
    #[must_use]
    pub fn host_str(&self) -> &'a str {
        self.host_raw
    }

    /// The explicit port, if any.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// URI parameters (`;transport=udp;lr` ...).
    #[must_use]
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The raw `?hname=hvalue&...` part without the `?`.
    #[must_use]
    pub fn headers(&self) -> Option<&'a str> {
        self.headers
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Splits `host[:port]` (IPv6 references in brackets).
#[inline]
pub(crate) fn split_host_port(s: &str) -> Result<(&str, Option<u16>), ParseError> {
    let (host, port) = if s.starts_with('[') {
        let close = memchr::memchr(b']', s.as_bytes()).ok_or(ParseError::InvalidUri)?;
        let host = s.get(..=close).ok_or(ParseError::InvalidUri)?;
        let rest = s.get(close + 1..).ok_or(ParseError::InvalidUri)?;
        if rest.is_empty() {
            (host, None)
        } else {
            (
                host,
                Some(rest.strip_prefix(':').ok_or(ParseError::InvalidUri)?),
            )
        }
    } else {
        match split_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            parse_decimal(p, 5)
                .and_then(|v| u16::try_from(v).ok())
                .ok_or(ParseError::InvalidUri)?,
        ),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_with_password_and_escapes() {
        let u = Uri::parse("sip:j%40hn:secret@example.com;maddr=239.255.255.1;ttl=15").unwrap();
        assert_eq!(u.user(), Some("j%40hn"));
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(u.host(), Some(Host::Domain("example.com")));
        assert_eq!(u.params().value("ttl"), Some("15"));
    }

    #[test]
    fn ipv4_strict() {
        assert_eq!(
            Host::parse("0.0.0.0").unwrap(),
            Host::Ipv4([0, 0, 0, 0].into())
        );
        assert_eq!(
            Host::parse("255.255.255.255").unwrap(),
            Host::Ipv4([255; 4].into())
        );
        for bad in [
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4444",
            "1234.1.1.1",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv4_host_and_port() {
        let u = Uri::parse("sips:192.0.2.4:5061").unwrap();
        assert_eq!(u.scheme(), Scheme::Sips);
        assert_eq!(u.host(), Some(Host::Ipv4("192.0.2.4".parse().unwrap())));
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.user(), None);
    }

    #[test]
    fn user_with_semicolon_is_user_part() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert_eq!(u.host_str(), "example.com");
    }

    #[test]
    fn rejects_bad_ipv6_and_ports() {
        assert!(Uri::parse("sip:[2001:db8::1").is_err());
        assert!(Uri::parse("sip:[2001:db8::g]").is_err());
        assert!(Uri::parse("sip:[2001:db8::1]5060").is_err());
        assert!(Uri::parse("sip:host:99999").is_err());
        assert!(Uri::parse("sip:host:-1").is_err());
        assert!(Uri::parse("sip:").is_err());
        assert!(Uri::parse("sip:@host").is_err());
    }

    #[test]
    fn other_schemes_parse_as_other() {
        let u = Uri::parse("http://example.com/x").unwrap();
        assert_eq!(u.scheme(), Scheme::Other("http"));
        assert!(!u.is_sip());
        assert!(Uri::parse("1abc:x").is_err());
        assert!(Uri::parse("no-colon").is_err());
        assert!(Uri::parse("sip:a b@h").is_err());
    }

    #[test]
    fn candidate_mask_flags_exactly_the_special_bytes() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                for fill in [b'a', 0, b'=', 0xff, b'"', 0x01] {
                    let mut w = [fill; 8];
                    w[pos] = b;
                    let m = uri_candidates(u64::from_le_bytes(w));
                    for (i, &c) in w.iter().enumerate() {
                        let flag = m >> (8 * i + 7) & 1 == 1;
                        let extra = c == b'=' || c == b'~';
                        assert_eq!(flag, uri_class(c) != 0 || extra, "{w:?} {i}");
                    }
                }
            }
        }
        // Plain URI bytes raise no flag (`=` and `~` are known false positives).
        let plain = b"abcXYZ019.-_+%=&$,/!~*'()[]";
        for w in plain.windows(8) {
            let f = w.iter().filter(|&&c| c == b'=' || c == b'~').count();
            assert_eq!(f > 0, uri_candidates(word(w)) != 0, "{w:?}");
        }
    }

    #[test]
    fn tel_uri() {
        let t = Uri::parse("tel:+358-555-1234567;postd=pp22").unwrap();
        assert_eq!(t.user(), Some("+358-555-1234567"));
        assert_eq!(t.params().value("postd"), Some("pp22"));
        assert!(Uri::parse("tel:").is_err());
        assert!(Uri::parse("tel:abc@x").is_err());
    }
}
