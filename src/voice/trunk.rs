//! Carrier trunks: who may send us SIP (source-address ACL), where outbound legs
//! go, and how to read the caller and the dialled number from a trunk's INVITEs.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use maskline_sip::transaction::Transport;
use maskline_sip::Message;

use crate::config::{Cidr, TrunkConfig};
use crate::numbers::E164;

/// One configured trunk, ready for the call path.
#[derive(Debug)]
pub struct Trunk {
    /// Name.
    pub name: String,
    sources: Vec<Cidr>,
    /// Outbound gateway.
    pub gateway: SocketAddr,
    /// Transport of outbound legs.
    pub transport: Transport,
    caller_from_pai: bool,
    called_from_to: bool,
    country: u16,
    /// New-call rate limit (per process).
    pub cps: DefaultDirectRateLimiter,
    /// Media address advertised towards this trunk.
    pub media_ip: Option<IpAddr>,
    /// How outbound TLS legs reach the gateway (`transport = "tls"`).
    pub tls: Option<TlsOut>,
}

/// The client side of outbound TLS legs to one gateway.
#[derive(Clone)]
pub struct TlsOut {
    /// Trusts only the trunk's configured CA certificates.
    pub connector: tokio_rustls::TlsConnector,
    /// The name the gateway's certificate must carry (SNI too).
    pub name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for TlsOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOut")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why the numbers of an INVITE cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberProblem {
    /// The caller is missing or not a phone number.
    Caller,
    /// The dialled number is missing or not a phone number.
    Called,
}

impl Trunk {
    /// Builds a trunk from validated config.
    pub fn new(c: &TrunkConfig) -> Option<Trunk> {
        let cps = NonZeroU32::new(c.cps)?;
        Some(Trunk {
            name: c.name.clone(),
            sources: c.sources.iter().filter_map(|s| Cidr::parse(s)).collect(),
            gateway: c.gateway.parse().ok()?,
            transport: match c.transport.as_str() {
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                _ => Transport::Udp,
            },
            caller_from_pai: c.caller_header == "pai",
            called_from_to: c.called_from == "to",
            country: c.country,
            cps: RateLimiter::direct(Quota::per_second(cps)),
            media_ip: c.media_ip,
            tls: match c.transport.as_str() {
                "tls" => Some(TlsOut {
                    connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(
                        crate::tls::client_config(c.tls_ca.as_deref()?).ok()?,
                    )),
                    name: rustls::pki_types::ServerName::try_from(c.tls_name.clone()?).ok()?,
                }),
                _ => None,
            },
        })
    }

    /// Whether `ip` is one of this trunk's sources.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.sources.iter().any(|c| c.contains(ip))
    }

    /// Caller and dialled number of an INVITE from this trunk, as E.164.
    pub fn numbers(&self, msg: &Message<'_>) -> Result<(E164, E164), NumberProblem> {
        let caller_user = if self.caller_from_pai {
            msg.p_asserted_identities()
                .filter_map(Result::ok)
                .find_map(|a| a.uri().user())
        } else {
            None
        };
        let caller_user = match caller_user {
            Some(u) => u,
            None => msg
                .from()
                .ok()
                .and_then(|f| f.uri().user())
                .ok_or(NumberProblem::Caller)?,
        };
        let called_user = if self.called_from_to {
            msg.to().ok().and_then(|t| t.uri().user())
        } else {
            msg.request_uri().ok().and_then(|u| u.user())
        }
        .ok_or(NumberProblem::Called)?;
        let caller = self.number(caller_user).ok_or(NumberProblem::Caller)?;
        let called = self.number(called_user).ok_or(NumberProblem::Called)?;
        Ok((caller, called))
    }

    /// A URI user part as E.164: `+8613800138000`, `8613800138000` with the trunk's
    /// country code, `013800138000`/`13800138000` (national), `tel`-style visual
    /// separators removed; URI parameters (`;phone-context=`) ignored.
    fn number(&self, user: &str) -> Option<E164> {
        let user = user.split(';').next().unwrap_or("");
        // The usual `+8613800138000` needs no cleaning.
        if user.starts_with('+') && user.bytes().skip(1).all(|b| b.is_ascii_digit()) {
            return E164::parse(user).ok();
        }
        let digits: String = user
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
            .collect();
        if digits.starts_with('+') {
            return E164::parse(&digits).ok();
        }
        if let Some(intl) = digits.strip_prefix("00") {
            return E164::parse(&format!("+{intl}")).ok();
        }
        let cc = self.country.to_string();
        if digits.starts_with(&cc) && digits.len() > cc.len() + 8 {
            return E164::parse(&format!("+{digits}")).ok();
        }
        E164::parse_lenient(&digits, Some(self.country)).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn trunk(caller: &str, called: &str) -> Trunk {
        Trunk::new(&TrunkConfig {
            name: "t".into(),
            sources: vec!["127.0.0.0/8".into()],
            gateway: "127.0.0.1:5080".into(),
            transport: "udp".into(),
            caller_header: caller.into(),
            called_from: called.into(),
            country: 86,
            cps: 10,
            media_ip: None,
            tls_name: None,
            tls_ca: None,
        })
        .unwrap()
    }

    const INVITE: &[u8] = b"INVITE sip:17000000001@relay SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\n\
        From: <sip:+8613800138000@gw>;tag=1\r\nTo: <sip:+8617000000002@relay>\r\n\
        P-Asserted-Identity: <sip:013900139000@gw>\r\n\
        Call-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n";

    #[test]
    fn numbers_come_from_the_configured_headers() {
        let msg = Message::parse(INVITE).unwrap();
        let (caller, called) = trunk("pai", "ruri").numbers(&msg).unwrap();
        assert_eq!(caller.expose(), "+8613900139000");
        assert_eq!(called.expose(), "+8617000000001");
        let (caller, called) = trunk("from", "to").numbers(&msg).unwrap();
        assert_eq!(caller.expose(), "+8613800138000");
        assert_eq!(called.expose(), "+8617000000002");
    }

    #[test]
    fn acl_is_by_source_range() {
        let t = trunk("pai", "ruri");
        assert!(t.trusts("127.0.0.9".parse().unwrap()));
        assert!(!t.trusts("192.0.2.1".parse().unwrap()));
    }
}
