//! Header fields: the raw `(name, value)` pairs of a message and the
//! classification of well-known names, compact forms included.
//!
//! Classification happens once while parsing, so typed lookups compare a
//! small enum instead of strings; unknown headers keep their raw name and
//! value for lossless pass-through.
#![deny(clippy::indexing_slicing)]

use std::fmt;

macro_rules! header_names {
    (@compact) => { None };
    (@compact $c:literal) => { Some($c) };
    ($( $(#[$doc:meta])* $variant:ident => $canon:literal, $lower:literal $(, $compact:literal)? ;)*) => {
        /// A header field name the crate knows about. Unknown names are
        /// [`HeaderName::Other`]; the raw spelling is always kept in
        /// [`Header::name`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// Any header the crate does not classify.
            Other,
        }

        impl HeaderName {
            /// Classifies a raw header name (case-insensitive, compact forms
            /// included).
            ///
            /// ```
            /// use maskline_sip::HeaderName;
            /// assert_eq!(HeaderName::from_raw("v"), HeaderName::Via);
            /// assert_eq!(HeaderName::from_raw("call-id"), HeaderName::CallId);
            /// assert_eq!(HeaderName::from_raw("X-Foo"), HeaderName::Other);
            /// ```
            #[must_use]
            pub fn from_raw(name: &str) -> HeaderName {
                classify(name.as_bytes())
            }

            /// Every classified name (not [`HeaderName::Other`]).
            pub const ALL: &'static [HeaderName] = &[$( HeaderName::$variant, )*];

            /// Lower-case long name and compact form.
            #[cfg(test)]
            fn spellings(&self) -> (&'static [u8], Option<&'static [u8]>) {
                match self {
                    $( HeaderName::$variant => ($lower, header_names!(@compact $($compact)?)), )*
                    HeaderName::Other => (b"", None),
                }
            }

            /// The canonical spelling used when the crate writes this header;
            /// `None` for [`HeaderName::Other`].
            #[must_use]
            pub fn as_str(&self) -> Option<&'static str> {
                match self {
                    $( HeaderName::$variant => Some($canon), )*
                    HeaderName::Other => None,
                }
            }
        }
    };
}

header_names! {
    /// `Via` / `v`
    Via => "Via", b"via", b"v";
    /// `From` / `f`
    From => "From", b"from", b"f";
    /// `To` / `t`
    To => "To", b"to", b"t";
    /// `Call-ID` / `i`
    CallId => "Call-ID", b"call-id", b"i";
    /// `CSeq`
    CSeq => "CSeq", b"cseq";
    /// `Contact` / `m`
    Contact => "Contact", b"contact", b"m";
    /// `Max-Forwards`
    MaxForwards => "Max-Forwards", b"max-forwards";
    /// `Route`
    Route => "Route", b"route";
    /// `Record-Route`
    RecordRoute => "Record-Route", b"record-route";
    /// `Content-Type` / `c`
    ContentType => "Content-Type", b"content-type", b"c";
    /// `Content-Length` / `l`
    ContentLength => "Content-Length", b"content-length", b"l";
    /// `Content-Encoding` / `e`
    ContentEncoding => "Content-Encoding", b"content-encoding", b"e";
    /// `Content-Disposition`
    ContentDisposition => "Content-Disposition", b"content-disposition";
    /// `Subject` / `s`
    Subject => "Subject", b"subject", b"s";
    /// `Supported` / `k`
    Supported => "Supported", b"supported", b"k";
    /// `Require`
    Require => "Require", b"require";
    /// `Proxy-Require`
    ProxyRequire => "Proxy-Require", b"proxy-require";
    /// `Unsupported`
    Unsupported => "Unsupported", b"unsupported";
    /// `Allow`
    Allow => "Allow", b"allow";
    /// `Allow-Events` / `u`
    AllowEvents => "Allow-Events", b"allow-events", b"u";
    /// `Event` / `o`
    Event => "Event", b"event", b"o";
    /// `Accept`
    Accept => "Accept", b"accept";
    /// `Expires`
    Expires => "Expires", b"expires";
    /// `Session-Expires` / `x`
    SessionExpires => "Session-Expires", b"session-expires", b"x";
    /// `Min-SE`
    MinSe => "Min-SE", b"min-se";
    /// `User-Agent`
    UserAgent => "User-Agent", b"user-agent";
    /// `Server`
    Server => "Server", b"server";
    /// `P-Asserted-Identity`
    PAssertedIdentity => "P-Asserted-Identity", b"p-asserted-identity";
    /// `P-Preferred-Identity`
    PPreferredIdentity => "P-Preferred-Identity", b"p-preferred-identity";
    /// `Privacy`
    Privacy => "Privacy", b"privacy";
    /// `Diversion`
    Diversion => "Diversion", b"diversion";
    /// `History-Info`
    HistoryInfo => "History-Info", b"history-info";
    /// `Remote-Party-ID`
    RemotePartyId => "Remote-Party-ID", b"remote-party-id";
    /// `Reason`
    Reason => "Reason", b"reason";
    /// `Refer-To` / `r`
    ReferTo => "Refer-To", b"refer-to", b"r";
    /// `Referred-By` / `b`
    ReferredBy => "Referred-By", b"referred-by", b"b";
    /// `Identity` / `y`
    Identity => "Identity", b"identity", b"y";
    /// `RSeq`
    RSeq => "RSeq", b"rseq";
    /// `RAck`
    RAck => "RAck", b"rack";
    /// `Authorization`
    Authorization => "Authorization", b"authorization";
    /// `Proxy-Authorization`
    ProxyAuthorization => "Proxy-Authorization", b"proxy-authorization";
    /// `WWW-Authenticate`
    WwwAuthenticate => "WWW-Authenticate", b"www-authenticate";
    /// `Proxy-Authenticate`
    ProxyAuthenticate => "Proxy-Authenticate", b"proxy-authenticate";
    /// `Retry-After`
    RetryAfter => "Retry-After", b"retry-after";
    /// `Warning`
    Warning => "Warning", b"warning";
    /// `Timestamp`
    Timestamp => "Timestamp", b"timestamp";
}

/// `w` bytes (1, 4 or 8) of `s` from `at` as a little-endian integer; zero
/// when out of range (callers check lengths first).
#[inline(always)]
fn load(s: &[u8], at: usize, w: usize) -> u64 {
    let Some(c) = s.get(at..at + w) else { return 0 };
    match w {
        8 => <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes),
        4 => <[u8; 4]>::try_from(c).map_or(0, |a| u64::from(u32::from_le_bytes(a))),
        _ => c.first().map_or(0, |&b| u64::from(b)),
    }
}

/// Case-insensitive comparison of `b` with `n`, a lower-case name made of
/// letters and `-`, a word at a time. A byte of `b` matches a letter of `n`
/// when it equals the letter with bit 0x20 forced on (`A`..`Z` and
/// `a`..`z` only), and must equal `-` exactly. `n` is a literal, so after
/// inlining the letter mask and the expected words are constants and the
/// loads overlap instead of looping over a tail.
#[inline(always)]
fn eq_lower(b: &[u8], n: &[u8]) -> bool {
    let len = n.len();
    if b.len() != len {
        return false;
    }
    let eq = |at: usize, w: usize| {
        let p = load(n, at, w);
        (load(b, at, w) | ((p & 0x4040_4040_4040_4040) >> 1)) == p
    };
    match len {
        0 => true,
        1..=3 => (0..len).all(|i| eq(i, 1)),
        4..=8 => eq(0, 4) & eq(len - 4, 4),
        9..=16 => eq(0, 8) & eq(len - 8, 8),
        17..=24 => eq(0, 8) & eq(8, 8) & eq(len - 8, 8),
        _ => b.eq_ignore_ascii_case(n),
    }
}

/// Classifies a header name: dispatch on length and first letter, then one
/// or two case-insensitive comparisons. Much cheaper than trying every name.
fn classify(b: &[u8]) -> HeaderName {
    use HeaderName as H;
    let Some(&first) = b.first() else {
        return H::Other;
    };
    let first = first.to_ascii_lowercase();
    let one = |n: &[u8], k: HeaderName| {
        if eq_lower(b, n) {
            k
        } else {
            H::Other
        }
    };
    let two = |n1: &[u8], k1: HeaderName, n2: &[u8], k2: HeaderName| {
        if eq_lower(b, n1) {
            k1
        } else {
            one(n2, k2)
        }
    };
    match (b.len(), first) {
        (1, c) => match c {
            b'v' => H::Via,
            b'f' => H::From,
            b't' => H::To,
            b'i' => H::CallId,
            b'm' => H::Contact,
            b'c' => H::ContentType,
            b'l' => H::ContentLength,
            b'e' => H::ContentEncoding,
            b's' => H::Subject,
            b'k' => H::Supported,
            b'u' => H::AllowEvents,
            b'o' => H::Event,
            b'x' => H::SessionExpires,
            b'r' => H::ReferTo,
            b'b' => H::ReferredBy,
            b'y' => H::Identity,
            _ => H::Other,
        },
        (2, b't') => one(b"to", H::To),
        (3, b'v') => one(b"via", H::Via),
        (4, b'f') => one(b"from", H::From),
        (4, b'c') => one(b"cseq", H::CSeq),
        (4, b'r') => two(b"rseq", H::RSeq, b"rack", H::RAck),
        (5, b'r') => one(b"route", H::Route),
        (5, b'a') => one(b"allow", H::Allow),
        (5, b'e') => one(b"event", H::Event),
        (6, b'a') => one(b"accept", H::Accept),
        (6, b'r') => one(b"reason", H::Reason),
        (6, b's') => one(b"server", H::Server),
        (6, b'm') => one(b"min-se", H::MinSe),
        (7, b'c') => two(b"call-id", H::CallId, b"contact", H::Contact),
        (7, b'e') => one(b"expires", H::Expires),
        (7, b'p') => one(b"privacy", H::Privacy),
        (7, b'r') => one(b"require", H::Require),
        (7, b's') => one(b"subject", H::Subject),
        (7, b'w') => one(b"warning", H::Warning),
        (8, b'i') => one(b"identity", H::Identity),
        (8, b'r') => one(b"refer-to", H::ReferTo),
        (9, b'd') => one(b"diversion", H::Diversion),
        (9, b's') => one(b"supported", H::Supported),
        (9, b't') => one(b"timestamp", H::Timestamp),
        (10, b'u') => one(b"user-agent", H::UserAgent),
        (11, b'r') => two(b"retry-after", H::RetryAfter, b"referred-by", H::ReferredBy),
        (11, b'u') => one(b"unsupported", H::Unsupported),
        (12, b'a') => one(b"allow-events", H::AllowEvents),
        (12, b'c') => one(b"content-type", H::ContentType),
        (12, b'h') => one(b"history-info", H::HistoryInfo),
        (12, b'm') => one(b"max-forwards", H::MaxForwards),
        (12, b'r') => one(b"record-route", H::RecordRoute),
        (13, b'a') => one(b"authorization", H::Authorization),
        (13, b'p') => one(b"proxy-require", H::ProxyRequire),
        (14, b'c') => one(b"content-length", H::ContentLength),
        (15, b'r') => one(b"remote-party-id", H::RemotePartyId),
        (15, b's') => one(b"session-expires", H::SessionExpires),
        (16, b'c') => one(b"content-encoding", H::ContentEncoding),
        (16, b'w') => one(b"www-authenticate", H::WwwAuthenticate),
        (18, b'p') => one(b"proxy-authenticate", H::ProxyAuthenticate),
        (19, b'c') => one(b"content-disposition", H::ContentDisposition),
        (19, b'p') => two(
            b"p-asserted-identity",
            H::PAssertedIdentity,
            b"proxy-authorization",
            H::ProxyAuthorization,
        ),
        (20, b'p') => one(b"p-preferred-identity", H::PPreferredIdentity),
        _ => H::Other,
    }
}

/// One header field as received: raw name, raw value (trimmed, folded
/// continuation lines included verbatim) and its classification.
///
/// ```
/// use maskline_sip::{Header, HeaderName};
///
/// let h = Header::new("X-Custom", "a, b");
/// assert_eq!(h.kind(), HeaderName::Other);
/// assert_eq!(h.to_string(), "X-Custom: a, b");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    name: &'a str,
    value: &'a str,
    kind: HeaderName,
}

impl<'a> Header<'a> {
    /// Builds a header from a name and a value, classifying the name.
    #[must_use]
    pub fn new(name: &'a str, value: &'a str) -> Self {
        Self {
            name,
            value,
            kind: HeaderName::from_raw(name),
        }
    }

    /// A header whose name was already classified (by the parser).
    pub(crate) fn with_kind(name: &'a str, value: &'a str, kind: HeaderName) -> Self {
        Self { name, value, kind }
    }

    /// The name as written (possibly a compact form such as `v`).
    #[must_use]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The value as written, without surrounding white space.
    #[must_use]
    pub fn value(&self) -> &'a str {
        self.value
    }

    /// The classified name.
    #[must_use]
    pub fn kind(&self) -> HeaderName {
        self.kind
    }

    /// True when this header has the given (case-insensitive, compact-aware)
    /// name.
    #[must_use]
    pub fn is(&self, name: &str) -> bool {
        match HeaderName::from_raw(name) {
            HeaderName::Other => self.name.eq_ignore_ascii_case(name),
            k => k == self.kind,
        }
    }
}

impl fmt::Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_classify() {
        for (c, k) in [
            ("v", HeaderName::Via),
            ("F", HeaderName::From),
            ("t", HeaderName::To),
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("k", HeaderName::Supported),
            ("s", HeaderName::Subject),
            ("e", HeaderName::ContentEncoding),
            ("o", HeaderName::Event),
            ("r", HeaderName::ReferTo),
            ("u", HeaderName::AllowEvents),
        ] {
            assert_eq!(HeaderName::from_raw(c), k, "{c}");
        }
    }

    #[test]
    fn classifier_covers_every_name_and_compact_form() {
        for &k in HeaderName::ALL {
            let (long, compact) = k.spellings();
            let long = std::str::from_utf8(long).unwrap();
            assert_eq!(HeaderName::from_raw(long), k, "{long}");
            assert_eq!(
                HeaderName::from_raw(&long.to_ascii_uppercase()),
                k,
                "{long}"
            );
            assert_eq!(HeaderName::from_raw(k.as_str().unwrap()), k);
            if let Some(c) = compact {
                let c = std::str::from_utf8(c).unwrap();
                assert_eq!(HeaderName::from_raw(c), k, "{c}");
                assert_eq!(HeaderName::from_raw(&c.to_ascii_uppercase()), k, "{c}");
            }
        }
        // Every single letter that is not a compact form is Other.
        let compacts: Vec<u8> = HeaderName::ALL
            .iter()
            .filter_map(|k| k.spellings().1)
            .map(|c| c[0])
            .collect();
        for c in b'a'..=b'z' {
            let k = HeaderName::from_raw(std::str::from_utf8(&[c]).unwrap());
            assert_eq!(
                k != HeaderName::Other,
                compacts.contains(&c),
                "{}",
                c as char
            );
        }
    }

    #[test]
    fn long_and_unknown_names() {
        assert_eq!(
            HeaderName::from_raw("P-ASSERTED-IDENTITY"),
            HeaderName::PAssertedIdentity
        );
        assert_eq!(HeaderName::from_raw(&"x".repeat(100)), HeaderName::Other);
        assert_eq!(HeaderName::from_raw(""), HeaderName::Other);
        assert_eq!(HeaderName::CallId.as_str(), Some("Call-ID"));
        assert_eq!(HeaderName::Other.as_str(), None);
    }

    #[test]
    fn word_compare_is_exact() {
        // Bit 0x20 is forced only at letter positions: `-` must match
        // exactly (CR | 0x20 == `-`), and neighbours of letters do not fold.
        for bad in [
            "call\rid",
            "Call_ID",
            "call-i@",
            "Cal\x0c-ID",
            "via\0",
            "v\x01a",
            "content-lengtH ",
            "p-asserted-identit\x19",
            "min\rse",
            "Call-Id:",
        ] {
            assert_eq!(HeaderName::from_raw(bad), HeaderName::Other, "{bad:?}");
        }
        for (name, k) in [
            ("CALL-id", HeaderName::CallId),
            ("cOnTaCt", HeaderName::Contact),
            ("WWW-Authenticate", HeaderName::WwwAuthenticate),
            ("p-PREFERRED-identity", HeaderName::PPreferredIdentity),
        ] {
            assert_eq!(HeaderName::from_raw(name), k, "{name}");
        }
        // Every single-byte change of a known name that is not a case
        // change makes it unknown.
        for &k in HeaderName::ALL {
            let long = k.spellings().0;
            for i in 0..long.len() {
                for c in 0..=255u8 {
                    let mut v = long.to_vec();
                    v[i] = c;
                    let Ok(s) = std::str::from_utf8(&v) else {
                        continue;
                    };
                    let same = c.eq_ignore_ascii_case(&long[i]);
                    assert_eq!(HeaderName::from_raw(s) == k, same, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn is_matches_compact_and_other() {
        let h = Header::new("i", "abc");
        assert!(h.is("Call-ID"));
        assert!(!h.is("To"));
        let x = Header::new("x-foo", "1");
        assert!(x.is("X-Foo"));
    }
}
