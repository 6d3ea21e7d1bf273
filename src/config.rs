//! Typed configuration: TOML file plus `MASKLINE_<SECTION>_<KEY>` environment
//! overrides, validated before any port is bound. Every failure names the field.
//!
//! (Skeleton of the shape: loading, env overrides and validation are filled in by
//! the config work; other modules may rely on these struct and field names.)

use serde::Deserialize;

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
    /// `[api.tls]`: serve HTTPS with rustls when set.
    pub tls: Option<TlsConfig>,
    /// `[[api.keys]]`: API keys, stored as hashes.
    pub keys: Vec<ApiKeyConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            rate_per_key_per_s: 5000,
            rate_burst: 10000,
            tls: None,
            keys: Vec::new(),
        }
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

/// Which store backs the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Embedded, in memory, not durable (development default).
    #[default]
    Memory,
    /// Redis (production).
    Redis,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `memory` or `redis`.
    pub backend: Backend,
    /// Redis URL when `backend = "redis"`.
    pub redis_url: String,
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
            reaper_interval_ms: 1000,
            demo_pool: true,
        }
    }
}

/// `[secrets]`: keys protecting numbers at rest.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// HMAC key for number hashes: base64 of at least 32 bytes.
    pub hmac_key: Option<String>,
    /// Seal keys `"<id>:<base64 of 32 bytes>"`; the first seals, all open.
    pub seal_keys: Vec<String>,
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
