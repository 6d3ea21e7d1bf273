//! The Via header (RFC 3261 §20.42, §18.2.1, RFC 3581 `rport`).
//!
//! Responses are routed back along Via, and the top Via's branch keys
//! server transactions, so this is the header a B2BUA reads on every packet.
#![deny(clippy::indexing_slicing)]

use crate::params::Params;
use crate::scan::{eq_ic, is_token, is_token_byte, parse_decimal, split_byte, trim, trim_start};
use crate::uri::{split_host_port, Host};
use crate::ParseError;

/// The RFC 3261 magic cookie that starts every compliant branch id.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// Bytes of a Via parameter list without quoted strings: token characters,
/// `;` `=`, LWS, and `:` `[` `]` for IPv6 `received`/`maddr` values.
#[allow(clippy::indexing_slicing)] // evaluated at compile time
static VIA_PARAM: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'!'
                    | b'%'
                    | b'*'
                    | b'_'
                    | b'+'
                    | b'`'
                    | b'\''
                    | b'~'
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
                    | b' '
                    | b'\t'
                    | b'\r'
                    | b'\n'
            );
        i += 1;
    }
    t
};

#[inline]
fn via_param_byte(b: u8) -> bool {
    VIA_PARAM.get(usize::from(b)).copied().unwrap_or(false)
}

/// One Via value: `SIP/2.0/UDP host:port;branch=...;rport;received=...`.
///
/// ```
/// use maskline_sip::{Host, Via};
///
/// let v = Via::parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport=5062;received=198.51.100.7").unwrap();
/// assert_eq!(v.transport(), "UDP");
/// assert_eq!(v.host(), Host::Ipv4("192.0.2.1".parse().unwrap()));
/// assert_eq!(v.port(), Some(5060));
/// assert_eq!(v.branch(), Some("z9hG4bK776"));
/// assert_eq!(v.rport(), Some(Some(5062)));
/// assert_eq!(v.received(), Some("198.51.100.7"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    raw: &'a str,
    protocol: &'a str,
    version: &'a str,
    transport: &'a str,
    host: Host<'a>,
    host_raw: &'a str,
    port: Option<u16>,
    params: Params<'a>,
    /// No quoted strings or other bytes outside [`VIA_PARAM`] in the
    /// parameters (so none anywhere in the value).
    plain: bool,
}

impl<'a> Via<'a> {
    /// Parses a single Via value (no commas).
    ///
    /// # Errors
    /// [`ParseError::InvalidHeader`]`("Via")` on any grammar violation.
    pub fn parse(raw: &'a str) -> Result<Self, ParseError> {
        const E: ParseError = ParseError::InvalidHeader("Via");
        let raw = trim(raw);
        // sent-protocol: name SLASH version SLASH transport, LWS around slashes allowed.
        // `SIP/2.0/` (any case, no LWS) is the usual prefix: both parts are
        // tokens as they stand (`x | 0x20` is a given lower-case letter only
        // for that letter and its upper-case form).
        let (protocol, version, rest) = match raw.as_bytes() {
            [s, i, p, b'/', b'2', b'.', b'0', b'/', ..]
                if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' =>
            {
                (
                    raw.get(..3).ok_or(E)?,
                    raw.get(4..7).ok_or(E)?,
                    raw.get(8..).ok_or(E)?,
                )
            }
            _ => {
                let (protocol, rest) = split_byte(raw, b'/').ok_or(E)?;
                let (version, rest) = split_byte(rest, b'/').ok_or(E)?;
                let (protocol, version) = (trim(protocol), trim(version));
                if !is_token(protocol) || !is_token(version) {
                    return Err(E);
                }
                (protocol, version, rest)
            }
        };
        let rest = trim_start(rest);
        let split = rest
            .bytes()
            .position(|b| !is_token_byte(b))
            .unwrap_or(rest.len());
        let transport = rest.get(..split).ok_or(E)?;
        let rest = rest.get(split..).ok_or(E)?;
        if !is_token(transport) {
            return Err(E);
        }
        // sent-by follows after LWS.
        let rest = trim_start(rest);
        // sent-by holds no quotes or brackets, so the first ';' ends it.
        let (sent_by, params) = split_byte(rest, b';').unwrap_or((rest, ""));
        let sent_by = trim(sent_by);
        let (host_raw, port) = split_host_port(sent_by).map_err(|_| E)?;
        let host = Host::parse(host_raw).map_err(|_| E)?;
        let params = Params::new(params);
        // Parameter names must be tokens. Without quoted values one byte
        // scan settles it; otherwise walk the parameters.
        let plain = params
            .as_str()
            .bytes()
            .fold(true, |ok, b| ok & via_param_byte(b));
        if !plain && !params.iter().all(|p| is_token(p.name)) {
            return Err(E);
        }
        Ok(Via {
            raw,
            protocol,
            version,
            transport,
            host,
            host_raw,
            port,
            params,
            plain,
        })
    }

    /// True when the value holds no quoted string, `"` or `<`.
    pub(crate) fn is_plain(&self) -> bool {
        self.plain
    }

    /// The whole value as received.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Protocol name, `SIP` in practice.
    #[must_use]
    pub fn protocol(&self) -> &'a str {
        self.protocol
    }

    /// Protocol version, `2.0` in practice.
    #[must_use]
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// Transport token as written (`UDP`, `TCP`, `TLS`, `WSS` ...).
    #[must_use]
    pub fn transport(&self) -> &'a str {
        self.transport
    }

    /// Host of the sent-by.
    #[must_use]
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// Host of the sent-by as written (IPv6 keeps its brackets).
    #[must_use]
    pub fn host_str(&self) -> &'a str {
        self.host_raw
    }

    /// Port of the sent-by, when explicit.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// All parameters.
    #[must_use]
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `branch` parameter.
    #[must_use]
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }

    /// True when the branch starts with the RFC 3261 magic cookie.
    #[must_use]
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .and_then(|b| b.get(..BRANCH_MAGIC_COOKIE.len()))
            .is_some_and(|p| eq_ic(p, BRANCH_MAGIC_COOKIE))
    }

    /// The `received` parameter.
    #[must_use]
    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received")
    }

    /// The `rport` parameter: `None` when absent, `Some(None)` for a bare
    /// `;rport` request, `Some(Some(port))` when filled in. An unparsable
    /// value reads as `Some(None)`.
    #[must_use]
    pub fn rport(&self) -> Option<Option<u16>> {
        let p = self.params.get("rport")?;
        Some(
            p.value
                .and_then(|v| parse_decimal(v, 5))
                .and_then(|v| u16::try_from(v).ok()),
        )
    }

    /// The `maddr` parameter.
    #[must_use]
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_spacing_and_case() {
        let v =
            Via::parse("SIP / 2.0 / TCP   host.example.com ; branch = z9hG4bK1 ;RPORT").unwrap();
        assert_eq!(v.transport(), "TCP");
        assert_eq!(v.host_str(), "host.example.com");
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.rport(), Some(None));
        assert!(v.has_rfc3261_branch());
    }

    #[test]
    fn usual_prefix_shortcut_agrees_with_the_general_split() {
        for (fast, slow) in [
            (
                "sip/2.0/udp h;branch=z9hG4bK1",
                "sip /2.0/ udp h;branch=z9hG4bK1",
            ),
            ("SiP/2.0/TLS h:5061", "SiP/ 2.0 /TLS h:5061"),
        ] {
            let (a, b) = (Via::parse(fast).unwrap(), Via::parse(slow).unwrap());
            assert_eq!(
                (a.protocol(), a.version(), a.transport(), a.host(), a.port()),
                (b.protocol(), b.version(), b.transport(), b.host(), b.port())
            );
        }
        for bad in ["SIP/2.0/", "SIP/2.0/ ", "SIP/2.0/U@P h", "SIP/2.0/(UDP) h"] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ipv6_sent_by() {
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3").unwrap();
        assert_eq!(v.host(), Host::Ipv6("2001:db8::9:1"));
        assert_eq!(v.port(), Some(5070));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "SIP/2.0",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ;branch=x",
            "SIP/2.0/UDP host:70000",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP h;br@nch=1",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quoted_param_values_take_the_slow_path() {
        let v = Via::parse(r#"SIP/2.0/UDP h;branch=z9hG4bK1;x="a b@c;d""#).unwrap();
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.params().value("x"), Some(r#""a b@c;d""#));
        assert!(Via::parse(r#"SIP/2.0/UDP h;x="q";b@d=1"#).is_err());
        assert!(Via::parse("SIP/2.0/UDP h;received=[2001:db8::1];maddr=x").is_ok());
    }

    #[test]
    fn param_table_is_tokens_and_separators() {
        for b in 0..=255u8 {
            let want = is_token_byte(b)
                || matches!(
                    b,
                    b';' | b'=' | b':' | b'[' | b']' | b' ' | b'\t' | b'\r' | b'\n'
                );
            assert_eq!(via_param_byte(b), want, "{b}");
        }
    }

    #[test]
    fn legacy_branch_is_not_rfc3261() {
        let v = Via::parse("SIP/2.0/UDP h;branch=1234").unwrap();
        assert!(!v.has_rfc3261_branch());
        assert_eq!(v.received(), None);
        assert_eq!(v.rport(), None);
    }
}
