//! `[media]`: the RTP/RTCP relay's section (port range, addresses, media timeout,
//! forwarding threads), its validation and its conversion into the relay's own
//! [`crate::media::MediaConfig`].

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[media]`: the media relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// RTP port range `"FIRST-LAST"`, inclusive; each leg takes an even RTP port and
    /// the odd port after it for RTCP, each call two legs.
    pub ports: String,
    /// Address the media sockets bind to.
    pub bind_ip: String,
    /// Address put into SDP; empty: `bind_ip` (which must then be a specific address).
    pub public_ip: String,
    /// No RTP/RTCP from either leg for this many seconds ends the call.
    pub timeout_s: u64,
    /// Forwarding threads; 0: one per available CPU.
    pub workers: usize,
    /// How long a busy forwarding thread gathers packets between passes, in µs
    /// (0 to 20,000): the most delay it adds to a packet, traded for fewer
    /// wake-ups and system calls per packet.
    pub coalesce_us: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            ports: "20000-39999".into(),
            bind_ip: "127.0.0.1".into(),
            public_ip: String::new(),
            timeout_s: 60,
            workers: 0,
            coalesce_us: crate::media::DEFAULT_COALESCE.as_micros() as u64,
        }
    }
}

impl MediaConfig {
    /// The validated port range.
    pub fn port_range(&self) -> Result<(u16, u16), ConfigError> {
        let bad = |why: &str| ConfigError::field("media.ports", why.to_string());
        let (lo, hi) = self
            .ports
            .split_once('-')
            .ok_or_else(|| bad("must be \"FIRST-LAST\", e.g. \"20000-39999\""))?;
        let lo: u16 = lo
            .trim()
            .parse()
            .map_err(|_| bad("FIRST is not a port number"))?;
        let hi: u16 = hi
            .trim()
            .parse()
            .map_err(|_| bad("LAST is not a port number"))?;
        if lo < 1024 {
            return Err(bad("must start at 1024 or above"));
        }
        // At least two even/odd pairs: one call.
        if hi < lo || (lo..hi).step_by(2).count() < 2 + usize::from(lo % 2 == 1) {
            return Err(bad(
                "must hold at least two port pairs (four ports) with FIRST <= LAST",
            ));
        }
        Ok((lo, hi))
    }

    fn ip(field: &str, value: &str) -> Result<IpAddr, ConfigError> {
        value
            .trim()
            .parse()
            .map_err(|_| ConfigError::field(field, format!("{value:?} is not an IP address")))
    }

    /// Checks every field, naming the first wrong one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.relay_config().map(|_| ())
    }

    /// The relay's settings (what [`crate::media::MediaRelay::start`] takes).
    pub fn relay_config(&self) -> Result<crate::media::MediaConfig, ConfigError> {
        let ports = self.port_range()?;
        let bind_ip = Self::ip("media.bind_ip", &self.bind_ip)?;
        let public_ip = if self.public_ip.trim().is_empty() {
            if bind_ip.is_unspecified() {
                return Err(ConfigError::field(
                    "media.public_ip",
                    "required when media.bind_ip is a wildcard address (it goes into SDP)",
                ));
            }
            bind_ip
        } else {
            let ip = Self::ip("media.public_ip", &self.public_ip)?;
            if ip.is_unspecified() {
                return Err(ConfigError::field(
                    "media.public_ip",
                    "must be an address the phones can reach, not a wildcard",
                ));
            }
            ip
        };
        if self.timeout_s == 0 || self.timeout_s > 3600 {
            return Err(ConfigError::field(
                "media.timeout_s",
                "must be between 1 and 3600",
            ));
        }
        if self.workers > 64 {
            return Err(ConfigError::field(
                "media.workers",
                "must be between 0 (one per CPU) and 64",
            ));
        }
        if self.coalesce_us > 20_000 {
            return Err(ConfigError::field(
                "media.coalesce_us",
                "must be between 0 and 20000 (it delays packets by up to that much)",
            ));
        }
        let workers = match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Ok(crate::media::MediaConfig {
            ports,
            bind_ip,
            public_ip,
            timeout: Duration::from_secs(self.timeout_s),
            workers,
            coalesce: Duration::from_micros(self.coalesce_us),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::super::{Config, ConfigError};

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_toml_with_env(text, Path::new("test.toml"), &env)
    }

    fn field(r: Result<Config, ConfigError>) -> String {
        r.unwrap_err().field_name().unwrap().to_string()
    }

    #[test]
    fn defaults_and_file_values_become_the_relay_config() {
        let c = parse("", &[]).unwrap();
        let m = c.media.relay_config().unwrap();
        assert_eq!(m.ports, (20000, 39999));
        assert_eq!(m.public_ip, m.bind_ip);
        assert_eq!(m.timeout.as_secs(), 60);
        assert!(m.workers >= 1);

        let c = parse(
            "[media]\nports = \"30000-30099\"\nbind_ip = \"0.0.0.0\"\n\
             public_ip = \"203.0.113.7\"\ntimeout_s = 30\nworkers = 3\n",
            &[],
        )
        .unwrap();
        let m = c.media.relay_config().unwrap();
        assert_eq!(m.ports, (30000, 30099));
        assert_eq!(m.public_ip.to_string(), "203.0.113.7");
        assert_eq!((m.timeout.as_secs(), m.workers), (30, 3));
    }

    #[test]
    fn env_overrides_every_media_field() {
        let c = parse(
            "",
            &[
                ("MASKLINE_MEDIA_PORTS", "40000-40999"),
                ("MASKLINE_MEDIA_BIND_IP", "0.0.0.0"),
                ("MASKLINE_MEDIA_PUBLIC_IP", "198.51.100.1"),
                ("MASKLINE_MEDIA_TIMEOUT_S", "90"),
                ("MASKLINE_MEDIA_WORKERS", "2"),
                ("MASKLINE_MEDIA_COALESCE_US", "250"),
            ],
        )
        .unwrap();
        let m = c.media.relay_config().unwrap();
        assert_eq!(m.ports, (40000, 40999));
        assert!(m.bind_ip.is_unspecified());
        assert_eq!((m.timeout.as_secs(), m.workers), (90, 2));
        assert_eq!(m.coalesce.as_micros(), 250);
        assert_eq!(
            field(parse("", &[("MASKLINE_MEDIA_PORTZ", "1-2")])),
            "MASKLINE_MEDIA_PORTZ"
        );
        assert_eq!(
            field(parse("", &[("MASKLINE_MEDIA_WORKERS", "many")])),
            "media.workers"
        );
    }

    #[test]
    fn each_media_rule_names_its_field() {
        for (toml, want) in [
            ("ports = \"20000\"", "media.ports"),
            ("ports = \"80-2000\"", "media.ports"),
            ("ports = \"30000-20000\"", "media.ports"),
            ("ports = \"20000-20002\"", "media.ports"),
            ("ports = \"20000-99999\"", "media.ports"),
            ("bind_ip = \"localhost\"", "media.bind_ip"),
            ("bind_ip = \"0.0.0.0\"", "media.public_ip"),
            ("public_ip = \"0.0.0.0\"", "media.public_ip"),
            ("timeout_s = 0", "media.timeout_s"),
            ("workers = 65", "media.workers"),
            ("coalesce_us = 20001", "media.coalesce_us"),
            ("colour = \"red\"", "media.colour"),
        ] {
            assert_eq!(
                field(parse(&format!("[media]\n{toml}\n"), &[])),
                want,
                "{toml}"
            );
        }
        assert!(parse("[media]\nports = \"20000-20003\"\n", &[]).is_ok());
    }
}
