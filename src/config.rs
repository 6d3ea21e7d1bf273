//! Typed configuration: TOML file plus `MASKLINE_<SECTION>_<KEY>` environment
//! overrides, validated before any port is bound. Every failure names the field.
//!
//! Loading order: the file (`--config FILE`, else `MASKLINE_CONFIG`, else
//! `config/maskline.toml`), then environment overrides (see [`env`] for the list),
//! then [`Config::validate`]. Unknown TOML keys and unknown `MASKLINE_<SECTION>_*`
//! variables are errors, so a typo never silently falls back to a default.
//!
//! This module also turns the configured secrets into the [`NumberHasher`] and
//! [`Sealer`] the stores use ([`Config::secrets`]) and owns the API key format
//! (`mk_` + 32 random bytes, stored in config only as `sha256:<hex>`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::numbers::{NumberHasher, Sealer};
pub use sip::{Cidr, SipConfig, SipListen, TrunkConfig};
pub use sms::{CarrierRef, SmppLinkConfig, SmsConfig, SmsHttpConfig, SmsPoolConfig};

pub use media::MediaConfig;

pub mod env;
pub mod ivr;
mod media;
mod parse;
pub mod sip;
pub mod sms;
#[cfg(test)]
mod tests;
mod validate;

/// Default config file, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/maskline.toml";

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "MASKLINE_CONFIG";

/// Why the configuration is unusable. `Display` always names the file or the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("config file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (part of the message, so not also a `source`).
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What and where (line).
        message: String,
    },
    /// One field is wrong: `field` is its dotted path (`api.keys[1].role`).
    #[error("{field}: {message}")]
    Field {
        /// Dotted path of the field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    /// A field error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The dotted field path, for field errors.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            ConfigError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// The whole configuration (`config/maskline.toml`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[api]`
    pub api: ApiConfig,
    /// `[store]`
    pub store: StoreConfig,
    /// `[secrets]`
    pub secrets: SecretsConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[sip]`: the voice B2BUA.
    pub sip: SipConfig,
    /// `[media]`: the RTP/RTCP relay ([`MediaConfig::relay_config`]).
    pub media: MediaConfig,
    /// `[sms]`: the SMS relay.
    pub sms: SmsConfig,
}

/// `[api]`: the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// Sustained requests per second allowed per API key.
    pub rate_per_key_per_s: u32,
    /// Burst allowed per API key.
    pub rate_burst: u32,
    /// Longest time a client may take to send a request's headers, milliseconds.
    pub header_timeout_ms: u64,
    /// Longest time a client may take to send a request's body, milliseconds
    /// (past it: 408 and the connection is closed).
    pub body_timeout_ms: u64,
    /// A connection with no request in flight that sends nothing for this long is
    /// closed, milliseconds (also a new connection that never sends a request).
    pub idle_timeout_ms: u64,
    /// Most open client connections; further ones are closed at once.
    pub max_connections: usize,
    /// `[api.tls]`: serve HTTPS with rustls when set.
    pub tls: Option<TlsConfig>,
    /// `[[api.keys]]`: API keys, stored as hashes.
    pub keys: Vec<ApiKeyConfig>,
    /// Leading digits of the customer's number a waybill label shows (default 3).
    pub label_keep_first: usize,
    /// Trailing digits a label shows (default 2). Whatever these say, a label
    /// hides at least 6 digits.
    pub label_keep_last: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            rate_per_key_per_s: 5000,
            rate_burst: 10000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 10_000,
            tls: None,
            keys: Vec::new(),
            label_keep_first: 3,
            label_keep_last: 2,
        }
    }
}

impl ApiConfig {
    /// The validated listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::field(
                "api.listen",
                format!(
                    "{:?} is not an address: use IP:PORT, e.g. 127.0.0.1:8080",
                    self.listen
                ),
            )
        })
    }
}

/// `[api.tls]`: PEM certificate chain and private key paths.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: String,
    /// Private key (PEM).
    pub key: String,
}

/// Roles an API key can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The logistics platform: manages bindings.
    App,
    /// Operations staff: read pools and stats, masked numbers only.
    Ops,
    /// Administrators: everything, including pool changes.
    Admin,
    /// Auditors: read, and may read unmasked numbers; each such read is audited.
    Auditor,
}

impl Role {
    /// Every role, in config spelling order.
    pub const ALL: [Role; 4] = [Role::App, Role::Ops, Role::Admin, Role::Auditor];

    /// The config spelling (`app`, `ops`, `admin`, `auditor`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Ops => "ops",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (expected app, ops, admin or auditor)"))
    }
}

/// `[[api.keys]]`: one API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Human name (appears in logs and audit).
    pub name: String,
    /// Role.
    pub role: Role,
    /// `sha256:<hex>` of the key.
    pub hash: String,
}

/// Prefix of every API key maskline generates (recognisable in leaks and scanners).
pub const API_KEY_PREFIX: &str = "mk_";

/// A new random API key: `mk_` and 32 CSPRNG bytes in unpadded base64url.
pub fn generate_api_key() -> String {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(bytes.as_mut());
    format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
    )
}

/// The config form of a key: `sha256:<lowercase hex of SHA-256(key)>`.
pub fn api_key_hash(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

impl ApiKeyConfig {
    /// Whether `key` (as presented in `Authorization: Bearer`) is this key.
    pub fn matches(&self, key: &str) -> bool {
        let want = self.hash.to_ascii_lowercase();
        let got = api_key_hash(key);
        // Compare digests in constant time (the digest hides the key anyway).
        want.len() == got.len()
            && want
                .bytes()
                .zip(got.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Which store backs the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Embedded, in memory, not durable (development default).
    #[default]
    Memory,
    /// Redis (production).
    Redis,
    /// Redis Cluster, reached through `store.cluster_nodes` (production, scaled out).
    #[serde(rename = "redis-cluster")]
    RedisCluster,
}

impl Backend {
    /// Whether data lives in Redis (one server or a cluster).
    pub fn is_redis(self) -> bool {
        matches!(self, Backend::Redis | Backend::RedisCluster)
    }

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis => "redis",
            Backend::RedisCluster => "redis-cluster",
        }
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "memory" => Ok(Backend::Memory),
            "redis" => Ok(Backend::Redis),
            "redis-cluster" => Ok(Backend::RedisCluster),
            _ => Err(format!(
                "unknown backend {s:?} (expected \"memory\", \"redis\" or \"redis-cluster\")"
            )),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `memory`, `redis` or `redis-cluster`.
    pub backend: Backend,
    /// Redis URL when `backend = "redis"`.
    pub redis_url: String,
    /// Seed nodes (`redis://host:port` each) when `backend = "redis-cluster"`; any
    /// reachable one tells the relay the whole cluster.
    pub cluster_nodes: Vec<String>,
    /// Replicas that must acknowledge a new binding (Redis `WAIT`) before the API
    /// answers `201`; 0 = answer once the master applied it.
    pub replica_ack: u32,
    /// Sub-pools (hash slots) of each pool created from now on, 1–64: a pool of n
    /// sub-pools can spread over n Redis Cluster masters (see the Redis store docs).
    pub subpools: u32,
    /// Bound on every Redis call, milliseconds; past it the call fails (503).
    pub redis_timeout_ms: u64,
    /// Multiplexed Redis connections per relay (each pipelines concurrent calls).
    pub redis_connections: usize,
    /// How often the reaper runs, milliseconds.
    pub reaper_interval_ms: u64,
    /// Create a demo pool with a few numbers at start-up (memory store only).
    pub demo_pool: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            redis_url: "redis://127.0.0.1:6379/".into(),
            cluster_nodes: Vec::new(),
            replica_ack: 0,
            subpools: 1,
            redis_timeout_ms: 2000,
            redis_connections: 1,
            reaper_interval_ms: 1000,
            demo_pool: true,
        }
    }
}

/// `[secrets]`: keys protecting numbers at rest. `Debug` never prints them.
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// HMAC key for number hashes: base64 of at least 32 bytes.
    pub hmac_key: Option<String>,
    /// Seal keys `"<id>:<base64 of 32 bytes>"`; the first seals, all open.
    pub seal_keys: Vec<String>,
}

impl fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self
            .seal_keys
            .iter()
            .map(|k| k.split(':').next().unwrap_or(""))
            .collect();
        f.debug_struct("SecretsConfig")
            .field("hmac_key", &self.hmac_key.as_ref().map(|_| "<redacted>"))
            .field("seal_key_ids", &ids)
            .finish()
    }
}

/// A seal key: id and 32 key bytes (wiped on drop).
pub type SealKey = (u8, Zeroizing<Vec<u8>>);

/// Decodes standard or URL-safe base64, with or without padding.
fn decode_b64(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
        .map(Zeroizing::new)
}

impl SecretsConfig {
    /// The number hasher from `hmac_key`, if one is configured.
    pub fn number_hasher(&self) -> Result<Option<NumberHasher>, ConfigError> {
        let Some(b64) = &self.hmac_key else {
            return Ok(None);
        };
        let bad = || {
            ConfigError::field(
                "secrets.hmac_key",
                "must be base64 of at least 32 random bytes (e.g. `openssl rand -base64 32`)",
            )
        };
        let key = decode_b64(b64).ok_or_else(bad)?;
        NumberHasher::new(&key).map(Some).map_err(|_| bad())
    }

    /// The parsed seal keys `(id, key)`, in configured order (the first seals).
    pub fn parsed_seal_keys(&self) -> Result<Vec<SealKey>, ConfigError> {
        let mut out: Vec<SealKey> = Vec::with_capacity(self.seal_keys.len());
        for (i, entry) in self.seal_keys.iter().enumerate() {
            let field = format!("secrets.seal_keys[{i}]");
            let bad = || {
                ConfigError::field(
                    field.clone(),
                    "must be <id>:<base64 of 32 bytes>, id 1 to 255 (e.g. \"1:$(openssl rand -base64 32)\")",
                )
            };
            let (id, b64) = entry.split_once(':').ok_or_else(bad)?;
            let id: u8 = id.trim().parse().map_err(|_| bad())?;
            if id == 0 {
                return Err(bad());
            }
            let key = decode_b64(b64).ok_or_else(bad)?;
            if key.len() != 32 {
                return Err(bad());
            }
            if out.iter().any(|(other, _)| *other == id) {
                return Err(ConfigError::field(field, format!("duplicate key id {id}")));
            }
            out.push((id, key));
        }
        Ok(out)
    }

    /// The sealer from `seal_keys`, if any are configured.
    pub fn sealer(&self) -> Result<Option<Sealer>, ConfigError> {
        let keys = self.parsed_seal_keys()?;
        if keys.is_empty() {
            return Ok(None);
        }
        Sealer::new(&keys)
            .map(Some)
            .map_err(|e| ConfigError::field("secrets.seal_keys", e.to_string()))
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `maskline=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            level: "info".into(),
        }
    }
}

/// The secrets the stores use, ready to go.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// Keyed hash of numbers.
    pub hasher: NumberHasher,
    /// Sealing of numbers at rest.
    pub sealer: Sealer,
    /// True when at least one of them was generated at random for this process
    /// (memory store without configured secrets): nothing sealed survives a restart.
    pub ephemeral: bool,
}

impl Config {
    /// Loads the config: the file (`path`, else `MASKLINE_CONFIG`, else
    /// [`DEFAULT_PATH`]), then the process's `MASKLINE_*` environment, then validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env = env::process_env();
        Self::load_with_env(path, &env)
    }

    /// Like [`Config::load`] with an explicit environment (tests inject a map).
    pub fn load_with_env(
        path: Option<&Path>,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let path = Self::resolve_path(path, env);
        let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
            path: path.clone(),
            error,
        })?;
        Self::from_toml_with_env(&text, &path, env)
    }

    /// The file to read: `path`, else `MASKLINE_CONFIG`, else [`DEFAULT_PATH`].
    pub fn resolve_path(
        path: Option<&Path>,
        env: &std::collections::HashMap<String, String>,
    ) -> PathBuf {
        match (path, env.get(CONFIG_ENV)) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_PATH),
        }
    }

    /// Parses TOML text (`origin` names it in syntax errors), applies `env`
    /// overrides and validates.
    pub fn from_toml_with_env(
        text: &str,
        origin: &Path,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = parse::parse_toml(text, origin)?;
        env::apply(&mut config, env)?;
        config.validate()?;
        Ok(config)
    }

    /// The hasher and sealer for the store: the configured ones, or (memory store
    /// only) random ones for missing secrets, flagged `ephemeral`.
    pub fn secrets(&self) -> Result<Secrets, ConfigError> {
        let hasher = self.secrets.number_hasher()?;
        let sealer = self.secrets.sealer()?;
        let ephemeral = hasher.is_none() || sealer.is_none();
        if ephemeral && self.store.backend.is_redis() {
            let field = if hasher.is_none() {
                "secrets.hmac_key"
            } else {
                "secrets.seal_keys"
            };
            return Err(ConfigError::field(
                field,
                "required with store.backend = \"redis\"",
            ));
        }
        let hasher = match hasher {
            Some(h) => h,
            None => {
                let mut key = Zeroizing::new(vec![0u8; 32]);
                rand::rng().fill_bytes(&mut key);
                NumberHasher::new(&key)
                    .map_err(|e| ConfigError::field("secrets.hmac_key", e.to_string()))?
            }
        };
        Ok(Secrets {
            hasher,
            sealer: sealer.unwrap_or_else(Sealer::random),
            ephemeral,
        })
    }

    /// Development default: with the memory store and no API keys, adds an admin key
    /// named `dev-admin` and returns the key (to be shown once). `None` otherwise.
    pub fn ensure_dev_admin_key(&mut self) -> Option<String> {
        if self.store.backend != Backend::Memory || !self.api.keys.is_empty() {
            return None;
        }
        let key = generate_api_key();
        self.api.keys.push(ApiKeyConfig {
            name: "dev-admin".into(),
            role: Role::Admin,
            hash: api_key_hash(&key),
        });
        Some(key)
    }
}
