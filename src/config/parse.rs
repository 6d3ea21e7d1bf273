//! TOML parsing with errors that name the offending field as a dotted path
//! (`api.keys[1].role`), in config language rather than serde's.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::ConfigError;

/// Deserializes TOML, mapping errors to the dotted path of the offending field.
pub(super) fn parse_toml<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T, ConfigError> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|s| {
            let upto = text.get(..s.start).unwrap_or(text);
            format!(" (line {})", upto.matches('\n').count() + 1)
        })
        .unwrap_or_default()
    };
    let de = toml::de::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
        path: origin.to_path_buf(),
        message: format!("{}{}", e.message().trim(), line_of(e.span())),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().trim().to_string();
        let (field, message) = explain(&path, &message);
        ConfigError::field(field, format!("{message}{}", line_of(inner.span())))
    })
}

/// Rewrites serde's messages into config language: unknown keys name the key,
/// unknown roles say "unknown role".
fn explain(path: &str, message: &str) -> (String, String) {
    let join = |key: &str| {
        if path.is_empty() || path == "." {
            key.to_string()
        } else if path == key || path.ends_with(&format!(".{key}")) {
            // serde_path_to_error already recorded the offending key.
            path.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, tail)) = rest.split_once('`') {
            let expected = tail.trim_start_matches(", ").replace('`', "");
            return (join(key), format!("unknown key ({expected})"));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((value, tail)) = rest.split_once('`') {
            let what = if path.ends_with(".role") {
                "role"
            } else if path.ends_with(".backend") {
                "backend"
            } else {
                "value"
            };
            let expected = tail.trim_start_matches(", ").replace('`', "\"");
            return (
                path.to_string(),
                format!("unknown {what} {value:?} ({expected})"),
            );
        }
    }
    let field = if path.is_empty() || path == "." {
        "config".to_string()
    } else {
        path.to_string()
    };
    (field, message.to_string())
}
