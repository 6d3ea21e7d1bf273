//! `[sms]`, `[[sms.smpp]]`, `[sms.http]` and `[sms.pools.<name>]`: the SMS relay's
//! carrier links (SMPP binds and an HTTP provider), its relay rules (masking,
//! blocklist, length, rate limits, auto-reply) and its delivery queue. Validated
//! with the rest of the config before anything binds; every failure names its field.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

/// `[sms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Whether the SMS relay runs at all.
    pub enabled: bool,
    /// Carrier for outbound texts when the pool names none: `http` or `smpp:<link>`
    /// (empty: the first SMPP link, else `http`).
    pub carrier: String,
    /// Mask phone numbers in forwarded bodies (pools may override).
    pub mask_numbers: bool,
    /// Extra national number forms to mask, as templates: `#` is one digit, other
    /// digits must match as written (`0##########` masks an 11-digit trunk form).
    pub mask_patterns: Vec<String>,
    /// Texts containing one of these words (case-insensitive) are not forwarded.
    pub blocklist: Vec<String>,
    /// Longest body forwarded, in characters; longer ones are refused.
    pub max_length: usize,
    /// Texts one sender may send to one virtual number per hour (all relays).
    pub rate_per_sender_per_hour: u32,
    /// Texts per minute through one pool (all relays); 0 = no limit.
    pub rate_per_pool_per_min: u32,
    /// Reply sent (from X) to a sender whose binding is gone; empty = none.
    pub auto_reply: String,
    /// Transient delivery failures are retried until a text is this old; then it is
    /// recorded as `expired`.
    pub retry_max_age_s: u64,
    /// Delivery workers (texts in flight towards carriers per relay).
    pub workers: usize,
    /// Name of this relay in the queue's consumer group (empty: `$HOSTNAME`, else
    /// `maskline`). Must be stable across restarts and unique per relay.
    pub consumer: String,
    /// A queued text held by a relay that stopped answering is taken over after this
    /// long, milliseconds.
    pub claim_idle_ms: u64,
    /// `[[sms.smpp]]`: SMPP links (this relay binds as an ESME).
    pub smpp: Vec<SmppLinkConfig>,
    /// `[sms.http]`: the HTTP (CPaaS) provider.
    pub http: SmsHttpConfig,
    /// `[sms.pools.<name>]`: per-pool overrides.
    pub pools: BTreeMap<String, SmsPoolConfig>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            carrier: String::new(),
            mask_numbers: true,
            mask_patterns: Vec::new(),
            blocklist: Vec::new(),
            max_length: 1000,
            rate_per_sender_per_hour: 20,
            rate_per_pool_per_min: 0,
            auto_reply: String::new(),
            retry_max_age_s: 3600,
            workers: 256,
            consumer: String::new(),
            claim_idle_ms: 30_000,
            smpp: Vec::new(),
            http: SmsHttpConfig::default(),
            pools: BTreeMap::new(),
        }
    }
}

/// `[[sms.smpp]]`: one SMPP link to a carrier's SMS centre.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppLinkConfig {
    /// Name (logs, metrics, records, `carrier = "smpp:<name>"`).
    pub name: String,
    /// SMS centre address, `host:port`.
    pub address: String,
    /// `system_id` of the bind.
    pub system_id: String,
    /// Bind password.
    #[serde(default)]
    pub password: String,
    /// `system_type` of the bind.
    #[serde(default)]
    pub system_type: String,
    /// Transceiver binds to open on this link.
    #[serde(default = "default_binds")]
    pub binds: usize,
    /// Outstanding `submit_sm` per bind (window).
    #[serde(default = "default_window")]
    pub window: usize,
    /// `submit_sm` per second on this link (all binds).
    #[serde(default = "default_submit_rate")]
    pub submit_rate: u32,
    /// Keep-alive interval, seconds.
    #[serde(default = "default_enquire_link")]
    pub enquire_link_s: u64,
    /// Country code for national source addresses (`13800138000` → `+86...`).
    #[serde(default = "default_country")]
    pub country: u16,
}

fn default_binds() -> usize {
    1
}
fn default_window() -> usize {
    64
}
fn default_submit_rate() -> u32 {
    1000
}
fn default_enquire_link() -> u64 {
    30
}
fn default_country() -> u16 {
    86
}

/// `[sms.http]`: a CPaaS provider reached over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsHttpConfig {
    /// Shared secret of the inbound HMAC-SHA256 signature (empty: inbound off).
    pub inbound_secret: String,
    /// Signed requests older or newer than this are refused (replay window), seconds.
    pub replay_window_s: u64,
    /// Where outbound texts are POSTed (`http://...`; empty: outbound off).
    pub outbound_url: String,
    /// Bearer token sent with outbound POSTs (empty: none).
    pub outbound_token: String,
    /// One outbound POST may take this long, milliseconds.
    pub timeout_ms: u64,
}

/// `[sms.pools.<name>]`: settings of one pool.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SmsPoolConfig {
    /// Carrier for this pool's outbound texts (`http` or `smpp:<link>`).
    pub carrier: Option<String>,
    /// Mask numbers in bodies (default: `[sms] mask_numbers`).
    pub mask_numbers: Option<bool>,
    /// Keep bodies in message records, sealed (default false).
    pub store_bodies: bool,
}

/// Where a pool's outbound texts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierRef {
    /// The HTTP provider.
    Http,
    /// An SMPP link by name.
    Smpp(String),
}

impl CarrierRef {
    /// Parses `http` or `smpp:<name>`.
    pub fn parse(s: &str) -> Option<CarrierRef> {
        match s {
            "http" => Some(CarrierRef::Http),
            _ => s
                .strip_prefix("smpp:")
                .filter(|n| !n.is_empty())
                .map(|n| CarrierRef::Smpp(n.to_owned())),
        }
    }
}

impl SmsConfig {
    /// The default carrier (see [`SmsConfig::carrier`]).
    pub fn default_carrier(&self) -> CarrierRef {
        CarrierRef::parse(&self.carrier).unwrap_or_else(|| match self.smpp.first() {
            Some(l) => CarrierRef::Smpp(l.name.clone()),
            None => CarrierRef::Http,
        })
    }

    /// Checks every `[sms]` field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check_carrier = |field: String, s: &str| -> Result<(), ConfigError> {
            match CarrierRef::parse(s) {
                Some(CarrierRef::Http) => Ok(()),
                Some(CarrierRef::Smpp(n)) if self.smpp.iter().any(|l| l.name == n) => Ok(()),
                _ => Err(ConfigError::field(
                    field,
                    format!("{s:?}: use \"http\" or \"smpp:<name of an [[sms.smpp]] link>\""),
                )),
            }
        };
        if !self.carrier.is_empty() {
            check_carrier("sms.carrier".into(), &self.carrier)?;
        }
        for p in &self.mask_patterns {
            if p.is_empty() || !p.chars().all(|c| c == '#' || c.is_ascii_digit()) {
                return Err(ConfigError::field(
                    "sms.mask_patterns",
                    format!("{p:?}: use '#' for any digit and digits, e.g. \"0##########\""),
                ));
            }
        }
        if !(1..=10_000).contains(&self.max_length) {
            return Err(ConfigError::field("sms.max_length", "must be 1 to 10000"));
        }
        if self.rate_per_sender_per_hour == 0 {
            return Err(ConfigError::field(
                "sms.rate_per_sender_per_hour",
                "must be at least 1",
            ));
        }
        if !(1..=30 * 86_400).contains(&self.retry_max_age_s) {
            return Err(ConfigError::field(
                "sms.retry_max_age_s",
                "must be 1 to 2592000 (30 days)",
            ));
        }
        if !(1..=10_000).contains(&self.workers) {
            return Err(ConfigError::field("sms.workers", "must be 1 to 10000"));
        }
        if !(100..=3_600_000).contains(&self.claim_idle_ms) {
            return Err(ConfigError::field(
                "sms.claim_idle_ms",
                "must be between 100 and 3600000",
            ));
        }
        for (i, l) in self.smpp.iter().enumerate() {
            let f = |k: &str| format!("sms.smpp[{i}].{k}");
            if l.name.is_empty() || self.smpp.iter().take(i).any(|o| o.name == l.name) {
                return Err(ConfigError::field(f("name"), "must be set and unique"));
            }
            if l.address
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(ConfigError::field(f("address"), "use host:port"));
            }
            if l.system_id.is_empty() || l.system_id.len() > 15 {
                return Err(ConfigError::field(f("system_id"), "1 to 15 characters"));
            }
            if l.password.len() > 8 {
                return Err(ConfigError::field(
                    f("password"),
                    "at most 8 characters (SMPP 3.4)",
                ));
            }
            if !(1..=64).contains(&l.binds) {
                return Err(ConfigError::field(f("binds"), "must be 1 to 64"));
            }
            if !(1..=10_000).contains(&l.window) {
                return Err(ConfigError::field(f("window"), "must be 1 to 10000"));
            }
            if l.submit_rate == 0 {
                return Err(ConfigError::field(f("submit_rate"), "must be at least 1"));
            }
            if !(1..=3600).contains(&l.enquire_link_s) {
                return Err(ConfigError::field(f("enquire_link_s"), "must be 1 to 3600"));
            }
        }
        let h = &self.http;
        if !(1..=86_400).contains(&h.replay_window_s) {
            return Err(ConfigError::field(
                "sms.http.replay_window_s",
                "must be 1 to 86400",
            ));
        }
        if !(100..=600_000).contains(&h.timeout_ms) {
            return Err(ConfigError::field(
                "sms.http.timeout_ms",
                "must be 100 to 600000",
            ));
        }
        if !h.outbound_url.is_empty() && !h.outbound_url.starts_with("http://") {
            return Err(ConfigError::field(
                "sms.http.outbound_url",
                "must be an http:// URL (put a TLS proxy in front of an https:// provider)",
            ));
        }
        if !h.inbound_secret.is_empty() && h.inbound_secret.len() < 16 {
            return Err(ConfigError::field(
                "sms.http.inbound_secret",
                "at least 16 characters",
            ));
        }
        for (name, p) in &self.pools {
            if let Some(c) = &p.carrier {
                check_carrier(format!("sms.pools.{name}.carrier"), c)?;
            }
        }
        Ok(())
    }
}

impl SmsHttpConfig {
    /// The outbound timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }
}

impl Default for SmsHttpConfig {
    fn default() -> Self {
        Self {
            inbound_secret: String::new(),
            replay_window_s: 300,
            outbound_url: String::new(),
            outbound_token: String::new(),
            timeout_ms: 5000,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;
    use std::collections::HashMap;
    use std::path::Path;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_toml_with_env(toml, Path::new("t.toml"), &env)
    }

    #[test]
    fn links_pools_and_overrides_parse() {
        let cfg = load(
            r#"
[sms]
enabled = true
[[sms.smpp]]
name = "c1"
address = "127.0.0.1:2775"
system_id = "maskline"
[sms.pools.demo]
carrier = "http"
store_bodies = true
"#,
            &[
                ("MASKLINE_SMS_BLOCKLIST", "casino, loan"),
                ("MASKLINE_SMS_RATE_PER_SENDER_PER_HOUR", "5"),
                ("MASKLINE_SMS_HTTP_TIMEOUT_MS", "800"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.sms.default_carrier(), CarrierRef::Smpp("c1".into()));
        assert_eq!(cfg.sms.smpp[0].binds, 1);
        assert_eq!(cfg.sms.blocklist, ["casino", "loan"]);
        assert_eq!(cfg.sms.rate_per_sender_per_hour, 5);
        assert_eq!(
            cfg.sms.http.timeout(),
            std::time::Duration::from_millis(800)
        );
        assert!(cfg.sms.pools["demo"].store_bodies);
    }

    #[test]
    fn each_sms_rule_names_its_field() {
        for (toml, field) in [
            ("[sms]\ncarrier = \"smpp:nope\"", "sms.carrier"),
            ("[sms]\nmask_patterns = [\"0x##\"]", "sms.mask_patterns"),
            (
                "[sms]\nrate_per_sender_per_hour = 0",
                "sms.rate_per_sender_per_hour",
            ),
            (
                "[sms.http]\noutbound_url = \"https://p\"",
                "sms.http.outbound_url",
            ),
            (
                "[sms.http]\ninbound_secret = \"short\"",
                "sms.http.inbound_secret",
            ),
            (
                "[[sms.smpp]]\nname = \"a\"\naddress = \"nohost\"\nsystem_id = \"x\"",
                "sms.smpp[0].address",
            ),
            (
                "[[sms.smpp]]\nname = \"a\"\naddress = \"h:1\"\nsystem_id = \"x\"\nwindow = 0",
                "sms.smpp[0].window",
            ),
            ("[sms.pools.p]\ncarrier = \"smtp\"", "sms.pools.p.carrier"),
        ] {
            let e = load(toml, &[]).unwrap_err();
            assert_eq!(e.field_name(), Some(field), "{toml}: {e}");
        }
        let e = load("", &[("MASKLINE_SMS_WORKERS", "many")]).unwrap_err();
        assert_eq!(e.field_name(), Some("sms.workers"));
        let e = load("", &[("MASKLINE_SMS_NOPE", "1")]).unwrap_err();
        assert_eq!(e.field_name(), Some("MASKLINE_SMS_NOPE"));
    }
}
