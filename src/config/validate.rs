//! [`Config::validate`]: every rule the configuration must satisfy before anything
//! binds, each failure naming its field. Kept apart from the shape in `config.rs`.

use redis::IntoConnectionInfo;

use super::{Backend, Config, ConfigError};

impl Config {
    /// Checks every field; the first problem found is returned, naming its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let api = &self.api;
        api.listen_addr()?;
        if api.max_body_bytes < 1024 || api.max_body_bytes > 64 * 1024 * 1024 {
            return Err(ConfigError::field(
                "api.max_body_bytes",
                "must be between 1024 and 67108864 (64 MiB)",
            ));
        }
        if api.rate_per_key_per_s == 0 {
            return Err(ConfigError::field(
                "api.rate_per_key_per_s",
                "must be at least 1",
            ));
        }
        if api.rate_burst == 0 {
            return Err(ConfigError::field("api.rate_burst", "must be at least 1"));
        }
        for (field, v) in [
            ("api.header_timeout_ms", api.header_timeout_ms),
            ("api.body_timeout_ms", api.body_timeout_ms),
            ("api.idle_timeout_ms", api.idle_timeout_ms),
        ] {
            if !(100..=3_600_000).contains(&v) {
                return Err(ConfigError::field(field, "must be between 100 and 3600000"));
            }
        }
        if api.max_connections == 0 || api.max_connections > 1_000_000 {
            return Err(ConfigError::field(
                "api.max_connections",
                "must be between 1 and 1000000",
            ));
        }
        if let Some(tls) = &api.tls {
            for (field, path) in [("api.tls.cert", &tls.cert), ("api.tls.key", &tls.key)] {
                if path.is_empty() {
                    return Err(ConfigError::field(
                        field,
                        "required when [api.tls] is set (a PEM file path)",
                    ));
                }
                if let Err(e) = std::fs::metadata(path) {
                    return Err(ConfigError::field(
                        field,
                        format!("cannot read {path}: {e}"),
                    ));
                }
            }
        }
        for (i, key) in api.keys.iter().enumerate() {
            let name = key.name.trim();
            if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()) {
                return Err(ConfigError::field(
                    format!("api.keys[{i}].name"),
                    "must be 1 to 64 printable characters without spaces",
                ));
            }
            if api.keys[..i].iter().any(|k| k.name == key.name) {
                return Err(ConfigError::field(
                    format!("api.keys[{i}].name"),
                    format!("duplicate key name {:?}", key.name),
                ));
            }
            let hex_part = key.hash.strip_prefix("sha256:").unwrap_or("");
            if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::field(
                    format!("api.keys[{i}].hash"),
                    "must be \"sha256:\" and 64 hex digits (from `maskline key new`)",
                ));
            }
            if api.keys[..i]
                .iter()
                .any(|k| k.hash.eq_ignore_ascii_case(&key.hash))
            {
                return Err(ConfigError::field(
                    format!("api.keys[{i}].hash"),
                    "the same key is configured twice",
                ));
            }
        }

        let store = &self.store;
        if store.backend == Backend::Redis
            && store
                .redis_url
                .starts_with(crate::store::redis::conn::SENTINEL_SCHEME)
        {
            if let Err(e) = crate::store::redis::conn::SentinelSpec::parse(&store.redis_url) {
                return Err(ConfigError::field("store.redis_url", e));
            }
        } else if store.backend == Backend::Redis {
            if redis::parse_redis_url(&store.redis_url).is_none() {
                return Err(ConfigError::field(
                    "store.redis_url",
                    "must be a redis:// URL, e.g. redis://127.0.0.1:6379/",
                ));
            }
            if let Err(e) = store.redis_url.as_str().into_connection_info() {
                return Err(ConfigError::field("store.redis_url", e.to_string()));
            }
        }
        if store.backend == Backend::RedisCluster {
            if store.cluster_nodes.is_empty() {
                return Err(ConfigError::field(
                    "store.cluster_nodes",
                    "name at least one seed node with store.backend = \"redis-cluster\", \
                     e.g. [\"redis://10.0.0.5:6379\"]",
                ));
            }
            for (i, node) in store.cluster_nodes.iter().enumerate() {
                let field = format!("store.cluster_nodes[{i}]");
                if redis::parse_redis_url(node).is_none() {
                    return Err(ConfigError::field(
                        field,
                        "must be a redis:// URL, e.g. redis://10.0.0.5:6379",
                    ));
                }
                if let Err(e) = node.as_str().into_connection_info() {
                    return Err(ConfigError::field(field, e.to_string()));
                }
            }
        }
        if store.subpools == 0 || store.subpools > 64 {
            return Err(ConfigError::field(
                "store.subpools",
                "must be between 1 and 64 (hash slots a new pool spans)",
            ));
        }
        if store.replica_ack > 16 {
            return Err(ConfigError::field(
                "store.replica_ack",
                "must be between 0 and 16 (replicas that acknowledge a new binding)",
            ));
        }
        if store.redis_timeout_ms < 10 || store.redis_timeout_ms > 60_000 {
            return Err(ConfigError::field(
                "store.redis_timeout_ms",
                "must be between 10 and 60000",
            ));
        }
        if store.redis_connections == 0 || store.redis_connections > 64 {
            return Err(ConfigError::field(
                "store.redis_connections",
                "must be between 1 and 64",
            ));
        }
        if store.reaper_interval_ms < 10 || store.reaper_interval_ms > 3_600_000 {
            return Err(ConfigError::field(
                "store.reaper_interval_ms",
                "must be between 10 and 3600000",
            ));
        }

        let hasher = self.secrets.number_hasher()?;
        let sealer = self.secrets.sealer()?;
        if store.backend.is_redis() {
            let why = "required with store.backend = \"redis\"";
            if hasher.is_none() {
                return Err(ConfigError::field(
                    "secrets.hmac_key",
                    format!("{why} (base64 of 32 random bytes: `openssl rand -base64 32`)"),
                ));
            }
            if sealer.is_none() {
                return Err(ConfigError::field(
                    "secrets.seal_keys",
                    format!("{why} (e.g. [\"1:<base64 of 32 random bytes>\"])"),
                ));
            }
            if api.keys.is_empty() {
                return Err(ConfigError::field(
                    "api.keys",
                    format!("{why}: add keys made by `maskline key new --role admin`"),
                ));
            }
        }

        match self.log.format.as_str() {
            "pretty" | "json" => {}
            other => {
                return Err(ConfigError::field(
                    "log.format",
                    format!("unknown format {other:?} (expected \"pretty\" or \"json\")"),
                ))
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::field("log.level", e.to_string()));
        }
        self.sip.validate()?;
        self.media.validate()?;
        self.sms.validate()?;
        Ok(())
    }
}
