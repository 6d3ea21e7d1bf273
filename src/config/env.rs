//! Environment overrides: `MASKLINE_<SECTION>_<KEY>` for every scalar field.
//!
//! | variable | field |
//! |---|---|
//! | `MASKLINE_API_LISTEN` | `api.listen` |
//! | `MASKLINE_API_MAX_BODY_BYTES` | `api.max_body_bytes` |
//! | `MASKLINE_API_RATE_PER_KEY_PER_S` | `api.rate_per_key_per_s` |
//! | `MASKLINE_API_RATE_BURST` | `api.rate_burst` |
//! | `MASKLINE_API_HEADER_TIMEOUT_MS` | `api.header_timeout_ms` |
//! | `MASKLINE_API_BODY_TIMEOUT_MS` | `api.body_timeout_ms` |
//! | `MASKLINE_API_IDLE_TIMEOUT_MS` | `api.idle_timeout_ms` |
//! | `MASKLINE_API_MAX_CONNECTIONS` | `api.max_connections` |
//! | `MASKLINE_API_LABEL_KEEP_FIRST` | `api.label_keep_first` |
//! | `MASKLINE_API_LABEL_KEEP_LAST` | `api.label_keep_last` |
//! | `MASKLINE_API_TLS_CERT`, `MASKLINE_API_TLS_KEY` | `api.tls.cert`, `api.tls.key` (both empty: no TLS) |
//! | `MASKLINE_API_KEYS` | `api.keys`, as `name:role:sha256:<hex>,...` (replaces the list) |
//! | `MASKLINE_STORE_BACKEND` | `store.backend` |
//! | `MASKLINE_STORE_REDIS_URL` | `store.redis_url` |
//! | `MASKLINE_STORE_CLUSTER_NODES` | `store.cluster_nodes`, comma-separated |
//! | `MASKLINE_STORE_REPLICA_ACK` | `store.replica_ack` |
//! | `MASKLINE_STORE_SUBPOOLS` | `store.subpools` |
//! | `MASKLINE_STORE_REDIS_TIMEOUT_MS` | `store.redis_timeout_ms` |
//! | `MASKLINE_STORE_REDIS_CONNECTIONS` | `store.redis_connections` |
//! | `MASKLINE_STORE_REAPER_INTERVAL_MS` | `store.reaper_interval_ms` |
//! | `MASKLINE_STORE_DEMO_POOL` | `store.demo_pool` (`true`/`false`) |
//! | `MASKLINE_SECRETS_HMAC_KEY` | `secrets.hmac_key` (empty: unset) |
//! | `MASKLINE_SECRETS_SEAL_KEYS` | `secrets.seal_keys`, comma-separated |
//! | `MASKLINE_LOG_FORMAT`, `MASKLINE_LOG_LEVEL` | `log.format`, `log.level` |
//! | `MASKLINE_SIP_ENABLED` | `sip.enabled` (`true`/`false`) |
//! | `MASKLINE_SIP_LISTEN` | `sip.listen`, comma-separated `udp:IP:PORT`/`tcp:IP:PORT` |
//! | `MASKLINE_SIP_HOST` | `sip.host` (empty: the first listen IP) |
//! | `MASKLINE_SIP_TLS_CERT`, `MASKLINE_SIP_TLS_KEY` | `sip.tls.cert`, `sip.tls.key` (for `tls:` listen sockets) |
//! | `MASKLINE_SIP_UNKNOWN_SOURCE` | `sip.unknown_source` |
//! | `MASKLINE_SIP_NO_BINDING_STATUS` | `sip.no_binding_status` |
//! | `MASKLINE_SIP_NO_ANSWER_TIMEOUT_S` | `sip.no_answer_timeout_s` |
//! | `MASKLINE_SIP_MAX_CALL_DURATION_S` | `sip.max_call_duration_s` |
//! | `MASKLINE_SIP_CALLS_PER_CALLER_PER_MIN` | `sip.calls_per_caller_per_min` |
//! | `MASKLINE_SIP_DRAIN_TIMEOUT_S` | `sip.drain_timeout_s` |
//! | `MASKLINE_SIP_ENGINES` | `sip.engines` |
//! | `MASKLINE_SIP_ENGINE_PORT_BASE` | `sip.engine_port_base` |
//! | `MASKLINE_SIP_MAX_TRANSACTIONS` | `sip.max_transactions` |
//! | `MASKLINE_SIP_SPREAD_FROM_PCT` | `sip.spread_from_pct` |
//! | `MASKLINE_MEDIA_PORTS` | `media.ports` (`FIRST-LAST`) |
//! | `MASKLINE_MEDIA_BIND_IP`, `MASKLINE_MEDIA_PUBLIC_IP` | `media.bind_ip`, `media.public_ip` |
//! | `MASKLINE_MEDIA_TIMEOUT_S`, `MASKLINE_MEDIA_WORKERS` | `media.timeout_s`, `media.workers` |
//! | `MASKLINE_MEDIA_COALESCE_US` | `media.coalesce_us` |
//! | `MASKLINE_SMS_ENABLED` | `sms.enabled` (`true`/`false`) |
//! | `MASKLINE_SMS_CARRIER` | `sms.carrier` |
//! | `MASKLINE_SMS_MASK_NUMBERS` | `sms.mask_numbers` (`true`/`false`) |
//! | `MASKLINE_SMS_MASK_PATTERNS` | `sms.mask_patterns`, comma-separated |
//! | `MASKLINE_SMS_BLOCKLIST` | `sms.blocklist`, comma-separated |
//! | `MASKLINE_SMS_MAX_LENGTH` | `sms.max_length` |
//! | `MASKLINE_SMS_RATE_PER_SENDER_PER_HOUR` | `sms.rate_per_sender_per_hour` |
//! | `MASKLINE_SMS_RATE_PER_POOL_PER_MIN` | `sms.rate_per_pool_per_min` |
//! | `MASKLINE_SMS_AUTO_REPLY` | `sms.auto_reply` |
//! | `MASKLINE_SMS_RETRY_MAX_AGE_S` | `sms.retry_max_age_s` |
//! | `MASKLINE_SMS_WORKERS` | `sms.workers` |
//! | `MASKLINE_SMS_CONSUMER` | `sms.consumer` |
//! | `MASKLINE_SMS_CLAIM_IDLE_MS` | `sms.claim_idle_ms` |
//! | `MASKLINE_SMS_HTTP_INBOUND_SECRET` | `sms.http.inbound_secret` |
//! | `MASKLINE_SMS_HTTP_REPLAY_WINDOW_S` | `sms.http.replay_window_s` |
//! | `MASKLINE_SMS_HTTP_OUTBOUND_URL` | `sms.http.outbound_url` |
//! | `MASKLINE_SMS_HTTP_OUTBOUND_TOKEN` | `sms.http.outbound_token` |
//! | `MASKLINE_SMS_HTTP_TIMEOUT_MS` | `sms.http.timeout_ms` |
//!
//! Any other variable starting with `MASKLINE_API_`, `MASKLINE_STORE_`,
//! `MASKLINE_SECRETS_`, `MASKLINE_LOG_`, `MASKLINE_SIP_`, `MASKLINE_MEDIA_` or `MASKLINE_SMS_` is an error (a typo must not be ignored).
//! Values of secret variables never appear in error messages.

use std::collections::HashMap;
use std::str::FromStr;

use super::{ApiKeyConfig, Config, ConfigError, Role, TlsConfig};

/// Every override: (variable, field).
pub const VARS: &[(&str, &str)] = &[
    ("MASKLINE_API_LISTEN", "api.listen"),
    ("MASKLINE_API_MAX_BODY_BYTES", "api.max_body_bytes"),
    ("MASKLINE_API_RATE_PER_KEY_PER_S", "api.rate_per_key_per_s"),
    ("MASKLINE_API_RATE_BURST", "api.rate_burst"),
    ("MASKLINE_API_HEADER_TIMEOUT_MS", "api.header_timeout_ms"),
    ("MASKLINE_API_BODY_TIMEOUT_MS", "api.body_timeout_ms"),
    ("MASKLINE_API_IDLE_TIMEOUT_MS", "api.idle_timeout_ms"),
    ("MASKLINE_API_MAX_CONNECTIONS", "api.max_connections"),
    ("MASKLINE_API_LABEL_KEEP_FIRST", "api.label_keep_first"),
    ("MASKLINE_API_LABEL_KEEP_LAST", "api.label_keep_last"),
    ("MASKLINE_API_TLS_CERT", "api.tls.cert"),
    ("MASKLINE_API_TLS_KEY", "api.tls.key"),
    ("MASKLINE_API_KEYS", "api.keys"),
    ("MASKLINE_STORE_BACKEND", "store.backend"),
    ("MASKLINE_STORE_REDIS_URL", "store.redis_url"),
    ("MASKLINE_STORE_CLUSTER_NODES", "store.cluster_nodes"),
    ("MASKLINE_STORE_REPLICA_ACK", "store.replica_ack"),
    ("MASKLINE_STORE_SUBPOOLS", "store.subpools"),
    ("MASKLINE_STORE_REDIS_TIMEOUT_MS", "store.redis_timeout_ms"),
    (
        "MASKLINE_STORE_REDIS_CONNECTIONS",
        "store.redis_connections",
    ),
    (
        "MASKLINE_STORE_REAPER_INTERVAL_MS",
        "store.reaper_interval_ms",
    ),
    ("MASKLINE_STORE_DEMO_POOL", "store.demo_pool"),
    ("MASKLINE_SECRETS_HMAC_KEY", "secrets.hmac_key"),
    ("MASKLINE_SECRETS_SEAL_KEYS", "secrets.seal_keys"),
    ("MASKLINE_LOG_FORMAT", "log.format"),
    ("MASKLINE_LOG_LEVEL", "log.level"),
    ("MASKLINE_SIP_ENABLED", "sip.enabled"),
    ("MASKLINE_SIP_LISTEN", "sip.listen"),
    ("MASKLINE_SIP_HOST", "sip.host"),
    ("MASKLINE_SIP_TLS_CERT", "sip.tls.cert"),
    ("MASKLINE_SIP_TLS_KEY", "sip.tls.key"),
    ("MASKLINE_SIP_UNKNOWN_SOURCE", "sip.unknown_source"),
    ("MASKLINE_SIP_NO_BINDING_STATUS", "sip.no_binding_status"),
    (
        "MASKLINE_SIP_NO_ANSWER_TIMEOUT_S",
        "sip.no_answer_timeout_s",
    ),
    (
        "MASKLINE_SIP_MAX_CALL_DURATION_S",
        "sip.max_call_duration_s",
    ),
    (
        "MASKLINE_SIP_CALLS_PER_CALLER_PER_MIN",
        "sip.calls_per_caller_per_min",
    ),
    ("MASKLINE_SIP_DRAIN_TIMEOUT_S", "sip.drain_timeout_s"),
    ("MASKLINE_SIP_ENGINES", "sip.engines"),
    ("MASKLINE_SIP_ENGINE_PORT_BASE", "sip.engine_port_base"),
    ("MASKLINE_SIP_MAX_TRANSACTIONS", "sip.max_transactions"),
    ("MASKLINE_SIP_SPREAD_FROM_PCT", "sip.spread_from_pct"),
    ("MASKLINE_MEDIA_PORTS", "media.ports"),
    ("MASKLINE_MEDIA_BIND_IP", "media.bind_ip"),
    ("MASKLINE_MEDIA_PUBLIC_IP", "media.public_ip"),
    ("MASKLINE_MEDIA_TIMEOUT_S", "media.timeout_s"),
    ("MASKLINE_MEDIA_WORKERS", "media.workers"),
    ("MASKLINE_MEDIA_COALESCE_US", "media.coalesce_us"),
    ("MASKLINE_SMS_ENABLED", "sms.enabled"),
    ("MASKLINE_SMS_CARRIER", "sms.carrier"),
    ("MASKLINE_SMS_MASK_NUMBERS", "sms.mask_numbers"),
    ("MASKLINE_SMS_MASK_PATTERNS", "sms.mask_patterns"),
    ("MASKLINE_SMS_BLOCKLIST", "sms.blocklist"),
    ("MASKLINE_SMS_MAX_LENGTH", "sms.max_length"),
    (
        "MASKLINE_SMS_RATE_PER_SENDER_PER_HOUR",
        "sms.rate_per_sender_per_hour",
    ),
    (
        "MASKLINE_SMS_RATE_PER_POOL_PER_MIN",
        "sms.rate_per_pool_per_min",
    ),
    ("MASKLINE_SMS_AUTO_REPLY", "sms.auto_reply"),
    ("MASKLINE_SMS_RETRY_MAX_AGE_S", "sms.retry_max_age_s"),
    ("MASKLINE_SMS_WORKERS", "sms.workers"),
    ("MASKLINE_SMS_CONSUMER", "sms.consumer"),
    ("MASKLINE_SMS_CLAIM_IDLE_MS", "sms.claim_idle_ms"),
    (
        "MASKLINE_SMS_HTTP_INBOUND_SECRET",
        "sms.http.inbound_secret",
    ),
    (
        "MASKLINE_SMS_HTTP_REPLAY_WINDOW_S",
        "sms.http.replay_window_s",
    ),
    ("MASKLINE_SMS_HTTP_OUTBOUND_URL", "sms.http.outbound_url"),
    (
        "MASKLINE_SMS_HTTP_OUTBOUND_TOKEN",
        "sms.http.outbound_token",
    ),
    ("MASKLINE_SMS_HTTP_TIMEOUT_MS", "sms.http.timeout_ms"),
];

const SECTIONS: &[&str] = &[
    "MASKLINE_API_",
    "MASKLINE_STORE_",
    "MASKLINE_SECRETS_",
    "MASKLINE_LOG_",
    "MASKLINE_SIP_",
    "MASKLINE_MEDIA_",
    "MASKLINE_SMS_",
];

/// The process's `MASKLINE_*` variables (non-UTF-8 values are kept lossily, so
/// they fail validation instead of vanishing).
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("MASKLINE_")
                .then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect()
}

fn number<T: FromStr>(var: &str, field: &str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::field(field, format!("{var}={value:?} is not a valid number")))
}

fn boolean(var: &str, field: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::field(
            field,
            format!("{var}={value:?}: expected true or false"),
        )),
    }
}

/// A comma-separated list (empty items dropped).
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Parses `name:role:sha256:<hex>,...`.
fn api_keys(value: &str) -> Result<Vec<ApiKeyConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, entry) in value.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        let mut parts = entry.splitn(3, ':');
        let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ConfigError::field(
                format!("api.keys[{i}]"),
                "MASKLINE_API_KEYS entries must be name:role:sha256:<hex>",
            ));
        };
        let role = Role::from_str(role)
            .map_err(|e| ConfigError::field(format!("api.keys[{i}].role"), e))?;
        out.push(ApiKeyConfig {
            name: name.to_string(),
            role,
            hash: hash.to_string(),
        });
    }
    Ok(out)
}

/// Applies the overrides present in `env` to `config`.
pub fn apply(config: &mut Config, env: &HashMap<String, String>) -> Result<(), ConfigError> {
    // Unknown variables in a known section are typos: refuse them.
    let mut unknown: Vec<&String> = env
        .keys()
        .filter(|k| SECTIONS.iter().any(|s| k.starts_with(s)))
        .filter(|k| !VARS.iter().any(|(v, _)| v == k))
        .collect();
    unknown.sort();
    if let Some(var) = unknown.first() {
        return Err(ConfigError::field(
            var.as_str(),
            "unknown environment override (see config/maskline.toml for the fields)",
        ));
    }

    for (var, field) in VARS {
        let Some(value) = env.get(*var) else {
            continue;
        };
        let (var, field) = (*var, *field);
        match var {
            "MASKLINE_API_LISTEN" => config.api.listen = value.clone(),
            "MASKLINE_API_MAX_BODY_BYTES" => config.api.max_body_bytes = number(var, field, value)?,
            "MASKLINE_API_RATE_PER_KEY_PER_S" => {
                config.api.rate_per_key_per_s = number(var, field, value)?
            }
            "MASKLINE_API_RATE_BURST" => config.api.rate_burst = number(var, field, value)?,
            "MASKLINE_API_HEADER_TIMEOUT_MS" => {
                config.api.header_timeout_ms = number(var, field, value)?
            }
            "MASKLINE_API_BODY_TIMEOUT_MS" => {
                config.api.body_timeout_ms = number(var, field, value)?
            }
            "MASKLINE_API_IDLE_TIMEOUT_MS" => {
                config.api.idle_timeout_ms = number(var, field, value)?
            }
            "MASKLINE_API_LABEL_KEEP_FIRST" => {
                config.api.label_keep_first = number(var, field, value)?
            }
            "MASKLINE_API_LABEL_KEEP_LAST" => {
                config.api.label_keep_last = number(var, field, value)?
            }
            "MASKLINE_API_MAX_CONNECTIONS" => {
                config.api.max_connections = number(var, field, value)?
            }
            "MASKLINE_API_TLS_CERT" | "MASKLINE_API_TLS_KEY" => {
                let tls = config.api.tls.get_or_insert_with(|| TlsConfig {
                    cert: String::new(),
                    key: String::new(),
                });
                if var == "MASKLINE_API_TLS_CERT" {
                    tls.cert = value.clone();
                } else {
                    tls.key = value.clone();
                }
            }
            "MASKLINE_API_KEYS" => config.api.keys = api_keys(value)?,
            "MASKLINE_STORE_BACKEND" => {
                config.store.backend = value
                    .trim()
                    .parse()
                    .map_err(|e: String| ConfigError::field(field, format!("{var}: {e}")))?
            }
            "MASKLINE_STORE_REDIS_URL" => config.store.redis_url = value.clone(),
            "MASKLINE_STORE_CLUSTER_NODES" => {
                config.store.cluster_nodes = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "MASKLINE_STORE_REPLICA_ACK" => config.store.replica_ack = number(var, field, value)?,
            "MASKLINE_STORE_SUBPOOLS" => config.store.subpools = number(var, field, value)?,
            "MASKLINE_STORE_REDIS_TIMEOUT_MS" => {
                config.store.redis_timeout_ms = number(var, field, value)?
            }
            "MASKLINE_STORE_REDIS_CONNECTIONS" => {
                config.store.redis_connections = number(var, field, value)?
            }
            "MASKLINE_STORE_REAPER_INTERVAL_MS" => {
                config.store.reaper_interval_ms = number(var, field, value)?
            }
            "MASKLINE_STORE_DEMO_POOL" => config.store.demo_pool = boolean(var, field, value)?,
            "MASKLINE_SECRETS_HMAC_KEY" => {
                config.secrets.hmac_key = (!value.trim().is_empty()).then(|| value.clone())
            }
            "MASKLINE_SECRETS_SEAL_KEYS" => {
                config.secrets.seal_keys = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "MASKLINE_LOG_FORMAT" => config.log.format = value.clone(),
            "MASKLINE_LOG_LEVEL" => config.log.level = value.clone(),
            "MASKLINE_SIP_ENABLED" => config.sip.enabled = boolean(var, field, value)?,
            "MASKLINE_SIP_LISTEN" => {
                config.sip.listen = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "MASKLINE_SIP_UNKNOWN_SOURCE" => config.sip.unknown_source = value.trim().to_owned(),
            "MASKLINE_SIP_NO_BINDING_STATUS" => {
                config.sip.no_binding_status = number(var, field, value)?
            }
            "MASKLINE_SIP_NO_ANSWER_TIMEOUT_S" => {
                config.sip.no_answer_timeout_s = number(var, field, value)?
            }
            "MASKLINE_SIP_MAX_CALL_DURATION_S" => {
                config.sip.max_call_duration_s = number(var, field, value)?
            }
            "MASKLINE_SIP_CALLS_PER_CALLER_PER_MIN" => {
                config.sip.calls_per_caller_per_min = number(var, field, value)?
            }
            "MASKLINE_SIP_DRAIN_TIMEOUT_S" => {
                config.sip.drain_timeout_s = number(var, field, value)?
            }
            "MASKLINE_SIP_ENGINES" => config.sip.engines = number(var, field, value)?,
            "MASKLINE_SIP_MAX_TRANSACTIONS" => {
                config.sip.max_transactions = number(var, field, value)?
            }
            "MASKLINE_SIP_SPREAD_FROM_PCT" => {
                config.sip.spread_from_pct = number(var, field, value)?
            }
            "MASKLINE_SIP_ENGINE_PORT_BASE" => {
                config.sip.engine_port_base = Some(number(var, field, value)?)
            }
            "MASKLINE_SIP_TLS_CERT" | "MASKLINE_SIP_TLS_KEY" => {
                let tls = config.sip.tls.get_or_insert_with(|| TlsConfig {
                    cert: String::new(),
                    key: String::new(),
                });
                if var == "MASKLINE_SIP_TLS_CERT" {
                    tls.cert = value.clone();
                } else {
                    tls.key = value.clone();
                }
            }
            "MASKLINE_SIP_HOST" => {
                config.sip.host = (!value.trim().is_empty()).then(|| value.trim().to_owned())
            }
            "MASKLINE_MEDIA_PORTS" => config.media.ports = value.clone(),
            "MASKLINE_MEDIA_BIND_IP" => config.media.bind_ip = value.clone(),
            "MASKLINE_MEDIA_PUBLIC_IP" => config.media.public_ip = value.clone(),
            "MASKLINE_MEDIA_TIMEOUT_S" => config.media.timeout_s = number(var, field, value)?,
            "MASKLINE_MEDIA_WORKERS" => config.media.workers = number(var, field, value)?,
            "MASKLINE_MEDIA_COALESCE_US" => config.media.coalesce_us = number(var, field, value)?,
            "MASKLINE_SMS_ENABLED" => config.sms.enabled = boolean(var, field, value)?,
            "MASKLINE_SMS_CARRIER" => config.sms.carrier = value.clone(),
            "MASKLINE_SMS_MASK_NUMBERS" => config.sms.mask_numbers = boolean(var, field, value)?,
            "MASKLINE_SMS_MASK_PATTERNS" => config.sms.mask_patterns = list(value),
            "MASKLINE_SMS_BLOCKLIST" => config.sms.blocklist = list(value),
            "MASKLINE_SMS_MAX_LENGTH" => config.sms.max_length = number(var, field, value)?,
            "MASKLINE_SMS_RATE_PER_SENDER_PER_HOUR" => {
                config.sms.rate_per_sender_per_hour = number(var, field, value)?
            }
            "MASKLINE_SMS_RATE_PER_POOL_PER_MIN" => {
                config.sms.rate_per_pool_per_min = number(var, field, value)?
            }
            "MASKLINE_SMS_AUTO_REPLY" => config.sms.auto_reply = value.clone(),
            "MASKLINE_SMS_RETRY_MAX_AGE_S" => {
                config.sms.retry_max_age_s = number(var, field, value)?
            }
            "MASKLINE_SMS_WORKERS" => config.sms.workers = number(var, field, value)?,
            "MASKLINE_SMS_CONSUMER" => config.sms.consumer = value.clone(),
            "MASKLINE_SMS_CLAIM_IDLE_MS" => config.sms.claim_idle_ms = number(var, field, value)?,
            "MASKLINE_SMS_HTTP_INBOUND_SECRET" => config.sms.http.inbound_secret = value.clone(),
            "MASKLINE_SMS_HTTP_REPLAY_WINDOW_S" => {
                config.sms.http.replay_window_s = number(var, field, value)?
            }
            "MASKLINE_SMS_HTTP_OUTBOUND_URL" => config.sms.http.outbound_url = value.clone(),
            "MASKLINE_SMS_HTTP_OUTBOUND_TOKEN" => config.sms.http.outbound_token = value.clone(),
            "MASKLINE_SMS_HTTP_TIMEOUT_MS" => {
                config.sms.http.timeout_ms = number(var, field, value)?
            }
            _ => {}
        }
    }
    // Both TLS paths empty (e.g. overridden to ""): TLS off.
    if config
        .api
        .tls
        .as_ref()
        .is_some_and(|t| t.cert.is_empty() && t.key.is_empty())
    {
        config.api.tls = None;
    }
    Ok(())
}
