//! Header fields: the raw `(name, value)` pairs of a message and the
//! classification of well-known names, compact forms included.
//!
//! Classification happens once while parsing, so typed lookups compare a
//! small enum instead of strings; unknown headers keep their raw name and
//! value for lossless pass-through.
#![deny(clippy::indexing_slicing)]

use std::fmt;

macro_rules! header_names {
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
                let b = name.as_bytes();
                if b.len() > 32 {
                    return HeaderName::Other;
                }
                let mut buf = [0u8; 32];
                for (d, s) in buf.iter_mut().zip(b) {
                    *d = s.to_ascii_lowercase();
                }
                let lower = buf.get(..b.len()).unwrap_or(&[]);
                match lower {
                    $( $lower $(| $compact)? => HeaderName::$variant, )*
                    _ => HeaderName::Other,
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
    fn is_matches_compact_and_other() {
        let h = Header::new("i", "abc");
        assert!(h.is("Call-ID"));
        assert!(!h.is("To"));
        let x = Header::new("x-foo", "1");
        assert!(x.is("X-Foo"));
    }
}
