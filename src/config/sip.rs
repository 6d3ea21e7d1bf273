//! `[sip]` and `[[sip.trunks]]`: where the voice B2BUA listens, which carrier
//! trunks it trusts, and the call limits. Validated with the rest of the config
//! before any port is bound; every failure names its field.
//!
//! Trust is by source address only (carrier trunks are IP-authenticated): a
//! request from an address on no trunk is dropped (or answered `403` when
//! `unknown_source = "reject"`) and counted. With no trunk configured nothing is
//! accepted, so toll fraud through an open relay is impossible by default.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::ConfigError;

/// `[sip]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Whether the relay listens for SIP at all.
    pub enabled: bool,
    /// Listen sockets as `udp:IP:PORT`, `tcp:IP:PORT` or `tls:IP:PORT`.
    pub listen: Vec<String>,
    /// `[sip.tls]`: certificate and key for `tls:` listen sockets.
    pub tls: Option<crate::config::TlsConfig>,
    /// Host written into our Via, Contact and From (default: the first listen IP).
    pub host: Option<String>,
    /// What to do with a request from an untrusted address: `drop` or `reject` (403).
    pub unknown_source: String,
    /// Status for a caller with no live binding on the dialled number (480 default;
    /// 403, 404, 410, 480, 486, 603 allowed).
    pub no_binding_status: u16,
    /// Ringing without answer for this long → 480 to the caller, CANCEL to the callee.
    pub no_answer_timeout_s: u64,
    /// Answered calls are ended (BYE both legs) after this long.
    pub max_call_duration_s: u64,
    /// Calls per minute one caller may place to one virtual number (harassment
    /// protection); beyond it → 486. Per relay process.
    pub calls_per_caller_per_min: u32,
    /// On shutdown, live calls may finish for at most this long before they are ended.
    pub drain_timeout_s: u64,
    /// SIP engine threads (each owns the calls whose Call-ID hashes to it);
    /// 0 = one per CPU, at most 4. At most 16.
    pub engines: u16,
    /// Most live SIP transactions per engine. A call keeps about three for 64*T1
    /// (32 s) after it ends, so an engine holds about 100 per call/s it carries;
    /// past the cap new calls get 503. About 1.2 KB each (loadtest/README.md).
    pub max_transactions: u32,
    /// Combined engine load, in % of one core, from which engine 0 spreads new
    /// calls over the engines (round-robin) instead of keeping them, once it
    /// held for 1 s; it keeps them again when the engines, spread, use less than
    /// 6/5 of it (spread, calls cost more). 0: always spread.
    pub spread_from_pct: u16,
    /// Own UDP sockets for the engines: engine `k` (from 1) also listens on the
    /// first UDP listen IP at port `engine_port_base + k - 1` (0: any free port),
    /// names it in its Via and Contact and sends its requests from it, so the
    /// responses and in-dialog requests of its calls reach it without passing
    /// through engine 0. Unset: every engine uses the listen socket (only it must
    /// be reachable). Open these ports to the carrier, as the listen port.
    pub engine_port_base: Option<u16>,
    /// `[[sip.trunks]]`.
    pub trunks: Vec<TrunkConfig>,
    /// `[sip.ivr]`: IVR, announcements, default parties.
    pub ivr: super::ivr::IvrConfig,
}

/// Default `sip.max_transactions`: room for about 10,000 calls/s per engine
/// (about 1.2 GB at the cap). At 400,000 one engine failed calls from 4,000
/// calls/s with most of a core to spare (loadtest/README.md, session 7).
pub const DEFAULT_MAX_TRANSACTIONS: u32 = 1_000_000;

impl SipConfig {
    /// How many engine threads to run (`engines`, or one per CPU up to 4).
    pub fn engine_count(&self) -> usize {
        match self.engines {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4),
            n => usize::from(n),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: vec!["udp:127.0.0.1:5060".into(), "tcp:127.0.0.1:5060".into()],
            tls: None,
            host: None,
            unknown_source: "drop".into(),
            no_binding_status: 480,
            no_answer_timeout_s: 60,
            max_call_duration_s: 7200,
            calls_per_caller_per_min: 10,
            drain_timeout_s: 30,
            engines: 0,
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            spread_from_pct: 35,
            engine_port_base: None,
            trunks: Vec::new(),
            ivr: Default::default(),
        }
    }
}

/// `[[sip.trunks]]`: one carrier interconnect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Name (logs, metrics, records).
    pub name: String,
    /// Source addresses or CIDRs its requests come from.
    pub sources: Vec<String>,
    /// Where outbound legs go, `IP:PORT`.
    pub gateway: String,
    /// `udp`, `tcp` or `tls` for outbound legs.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Header that carries the caller: `from` or `pai` (P-Asserted-Identity,
    /// falling back to From).
    #[serde(default = "default_caller_header")]
    pub caller_header: String,
    /// Where the dialled virtual number is: `ruri` (Request-URI user) or `to`.
    #[serde(default = "default_called_from")]
    pub called_from: String,
    /// Country code used to read national numbers (`13800138000` → `+8613800138000`).
    #[serde(default = "default_country")]
    pub country: u16,
    /// New calls per second accepted from this trunk; beyond it → 503 + Retry-After.
    #[serde(default = "default_cps")]
    pub cps: u32,
    /// Media address advertised in SDP towards this trunk (default `[media] public_ip`).
    #[serde(default)]
    pub media_ip: Option<IpAddr>,
    /// `transport = "tls"`: the name the gateway's certificate must carry (sent
    /// as SNI, checked against the certificate).
    #[serde(default)]
    pub tls_name: Option<String>,
    /// `transport = "tls"`: PEM file of the CA certificate(s) trusted to sign the
    /// gateway's certificate.
    #[serde(default)]
    pub tls_ca: Option<String>,
}

fn default_transport() -> String {
    "udp".into()
}
fn default_caller_header() -> String {
    "pai".into()
}
fn default_called_from() -> String {
    "ruri".into()
}
fn default_country() -> u16 {
    86
}
fn default_cps() -> u32 {
    2000
}

/// A listen socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipListen {
    /// Reliable (`tcp` or `tls`) or not (`udp`).
    pub tcp: bool,
    /// TLS over TCP (`tls`).
    pub tls: bool,
    /// Address.
    pub addr: SocketAddr,
}

/// An address range `IP/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub net: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// Parses `IP` or `IP/len`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip.trim().parse::<IpAddr>().ok()?, len.trim().parse().ok()?),
            None => {
                let ip: IpAddr = s.trim().parse().ok()?;
                (ip, if ip.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Cidr { net: ip, len })
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl SipConfig {
    /// The validated listen sockets.
    pub fn listen_addrs(&self) -> Result<Vec<SipListen>, ConfigError> {
        self.listen
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let field = format!("sip.listen[{i}]");
                let (proto, addr) = l.split_once(':').ok_or_else(|| {
                    ConfigError::field(
                        &field,
                        format!("{l:?}: use udp:IP:PORT, tcp:IP:PORT or tls:IP:PORT"),
                    )
                })?;
                let (tcp, tls) = match proto {
                    "udp" => (false, false),
                    "tcp" => (true, false),
                    "tls" => (true, true),
                    _ => {
                        return Err(ConfigError::field(
                            &field,
                            format!("{proto:?}: transport must be udp, tcp or tls"),
                        ))
                    }
                };
                let addr = addr.parse().map_err(|_| {
                    ConfigError::field(&field, format!("{addr:?} is not an IP:PORT address"))
                })?;
                Ok(SipListen { tcp, tls, addr })
            })
            .collect()
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        self.ivr.validate()?;
        let listen = self.listen_addrs()?;
        if listen.is_empty() {
            return Err(ConfigError::field(
                "sip.listen",
                "at least one listen socket is needed (or set sip.enabled = false)",
            ));
        }
        if listen.iter().any(|l| l.tls) {
            let Some(tls) = &self.tls else {
                return Err(ConfigError::field(
                    "sip.tls",
                    "a tls: listen socket needs [sip.tls] cert and key (PEM files)",
                ));
            };
            for (field, path) in [("sip.tls.cert", &tls.cert), ("sip.tls.key", &tls.key)] {
                if let Err(e) = std::fs::metadata(path) {
                    return Err(ConfigError::field(
                        field,
                        format!("cannot read {path}: {e}"),
                    ));
                }
            }
        }
        if !matches!(self.unknown_source.as_str(), "drop" | "reject") {
            return Err(ConfigError::field(
                "sip.unknown_source",
                "must be \"drop\" or \"reject\"",
            ));
        }
        if ![403, 404, 410, 480, 486, 603].contains(&self.no_binding_status) {
            return Err(ConfigError::field(
                "sip.no_binding_status",
                "must be one of 403, 404, 410, 480, 486, 603",
            ));
        }
        for (field, v, lo, hi) in [
            ("sip.no_answer_timeout_s", self.no_answer_timeout_s, 1, 3600),
            (
                "sip.max_call_duration_s",
                self.max_call_duration_s,
                1,
                86400,
            ),
            ("sip.drain_timeout_s", self.drain_timeout_s, 0, 3600),
            (
                "sip.spread_from_pct",
                u64::from(self.spread_from_pct),
                0,
                1600,
            ),
            (
                "sip.max_transactions",
                u64::from(self.max_transactions),
                1_000,
                10_000_000,
            ),
        ] {
            if v < lo || v > hi {
                return Err(ConfigError::field(
                    field,
                    format!("must be between {lo} and {hi}"),
                ));
            }
        }
        if self.engines > 16 {
            return Err(ConfigError::field(
                "sip.engines",
                "must be between 0 (one per CPU) and 16",
            ));
        }
        if let Some(base) = self.engine_port_base {
            if !listen.iter().any(|l| !l.tls && !l.tcp) {
                return Err(ConfigError::field(
                    "sip.engine_port_base",
                    "engine sockets are UDP: add a udp: listen socket",
                ));
            }
            let last = u32::from(base) + self.engine_count() as u32 - 1;
            if base != 0 && last > u32::from(u16::MAX) {
                return Err(ConfigError::field(
                    "sip.engine_port_base",
                    format!("engine ports {base}..{last} pass 65535"),
                ));
            }
        }
        if self.calls_per_caller_per_min == 0 {
            return Err(ConfigError::field(
                "sip.calls_per_caller_per_min",
                "must be at least 1",
            ));
        }
        for (i, t) in self.trunks.iter().enumerate() {
            let f = |name: &str| format!("sip.trunks[{i}].{name}");
            if t.name.is_empty()
                || t.name.len() > 64
                || !t
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::field(
                    f("name"),
                    "use 1 to 64 letters, digits, '-' or '_'",
                ));
            }
            if self.trunks[..i].iter().any(|o| o.name == t.name) {
                return Err(ConfigError::field(f("name"), "duplicate trunk name"));
            }
            if t.sources.is_empty() {
                return Err(ConfigError::field(
                    f("sources"),
                    "list the addresses or CIDRs the trunk sends from",
                ));
            }
            for (j, s) in t.sources.iter().enumerate() {
                if Cidr::parse(s).is_none() {
                    return Err(ConfigError::field(
                        format!("sip.trunks[{i}].sources[{j}]"),
                        format!("{s:?} is not an IP address or CIDR"),
                    ));
                }
            }
            if t.gateway.parse::<SocketAddr>().is_err() {
                return Err(ConfigError::field(
                    f("gateway"),
                    format!("{:?} is not an IP:PORT address", t.gateway),
                ));
            }
            if !matches!(t.transport.as_str(), "udp" | "tcp" | "tls") {
                return Err(ConfigError::field(
                    f("transport"),
                    "must be udp, tcp or tls",
                ));
            }
            if t.transport == "tls" {
                if !listen.iter().any(|l| l.tls) {
                    return Err(ConfigError::field(
                        f("transport"),
                        "tls needs a tls: socket in sip.listen (the gateway's requests come back to it)",
                    ));
                }
                let name = t.tls_name.as_deref().unwrap_or_default();
                if rustls::pki_types::ServerName::try_from(name).is_err() {
                    return Err(ConfigError::field(
                        f("tls_name"),
                        "name the gateway's certificate name (e.g. \"sbc.carrier.example\") for transport = \"tls\"",
                    ));
                }
                let ca = t.tls_ca.as_deref().unwrap_or_default();
                if let Err(e) = crate::tls::client_config(ca) {
                    return Err(ConfigError::field(
                        f("tls_ca"),
                        format!("a PEM file of the CA certificates to trust for transport = \"tls\": {e}"),
                    ));
                }
            }
            if t.transport == "tcp" && !listen.iter().any(|l| l.tcp && !l.tls) {
                return Err(ConfigError::field(
                    f("transport"),
                    "tcp needs a tcp: socket in sip.listen",
                ));
            }
            if t.transport == "udp" && !listen.iter().any(|l| !l.tcp) {
                return Err(ConfigError::field(
                    f("transport"),
                    "udp needs a udp: socket in sip.listen",
                ));
            }
            if !matches!(t.caller_header.as_str(), "from" | "pai") {
                return Err(ConfigError::field(
                    f("caller_header"),
                    "must be from or pai",
                ));
            }
            if !matches!(t.called_from.as_str(), "ruri" | "to") {
                return Err(ConfigError::field(f("called_from"), "must be ruri or to"));
            }
            if !(1..=999).contains(&t.country) {
                return Err(ConfigError::field(f("country"), "must be 1 to 999"));
            }
            if t.cps == 0 {
                return Err(ConfigError::field(f("cps"), "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains("127.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("10.0.0.1".parse().unwrap()));
        let one = Cidr::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }

    #[test]
    fn bad_fields_are_named() {
        let c = SipConfig {
            listen: vec!["sctp:1.2.3.4:5060".into()],
            ..SipConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().field_name(),
            Some("sip.listen[0]")
        );
        let mut c = SipConfig::default();
        c.trunks.push(TrunkConfig {
            name: "t".into(),
            sources: vec!["300.1.1.1".into()],
            gateway: "127.0.0.1:5080".into(),
            transport: "udp".into(),
            caller_header: "pai".into(),
            called_from: "ruri".into(),
            country: 86,
            cps: 10,
            media_ip: None,
            tls_name: None,
            tls_ca: None,
        });
        assert_eq!(
            c.validate().unwrap_err().field_name(),
            Some("sip.trunks[0].sources[0]")
        );
    }

    #[test]
    fn a_tls_trunk_needs_a_tls_socket_a_name_and_a_ca_file() {
        let trunk = |name: Option<&str>, ca: Option<&str>| TrunkConfig {
            name: "t".into(),
            sources: vec!["10.0.0.0/8".into()],
            gateway: "10.0.0.9:5061".into(),
            transport: "tls".into(),
            caller_header: "pai".into(),
            called_from: "ruri".into(),
            country: 86,
            cps: 10,
            media_ip: None,
            tls_name: name.map(str::to_owned),
            tls_ca: ca.map(str::to_owned),
        };
        let mut c = SipConfig::default();
        c.trunks
            .push(trunk(Some("sbc.example"), Some("/nonexistent.pem")));
        let e = c.validate().unwrap_err();
        assert_eq!(e.field_name(), Some("sip.trunks[0].transport"), "{e}");
        c.listen.push("tls:127.0.0.1:5061".into());
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        c.tls = Some(crate::config::TlsConfig {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
        });
        c.trunks[0] = trunk(None, Some("/nonexistent.pem"));
        let e = c.validate().unwrap_err();
        assert_eq!(e.field_name(), Some("sip.trunks[0].tls_name"), "{e}");
        c.trunks[0] = trunk(Some("sbc.example"), Some("/nonexistent.pem"));
        let e = c.validate().unwrap_err();
        assert_eq!(e.field_name(), Some("sip.trunks[0].tls_ca"), "{e}");
        c.trunks[0] = trunk(Some("sbc.example"), Some(&cert.display().to_string()));
        c.validate().unwrap();
    }
}
