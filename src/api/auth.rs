//! API keys and roles.
//!
//! Clients send `Authorization: Bearer <key>`. The configuration holds only
//! `sha256:<hex>` hashes of keys; a presented key is hashed and compared with every
//! configured hash in constant time (no early exit, so timing reveals neither which
//! key nor how much of it matched). The matching key's name and [`Role`] become the
//! request's [`Caller`]; handlers then check the role with [`Caller::require`].
//!
//! Role matrix (see also the OpenAPI document):
//! - `app`: bindings (create, read, list by shipment, update, delivered, delete).
//! - `ops`: read pools, pool statistics and bindings (masked), route troubleshooting.
//! - `admin`: everything `app` and `ops` may, plus pool changes and the audit log.
//! - `auditor`: read everything; only an auditor may read unmasked parties
//!   (`?reveal=true`), and each such read is written to the audit log first.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::HttpError;
use super::ApiError;
use crate::config::{ApiKeyConfig, Role};

/// Roles that manage bindings.
pub const BINDING_WRITERS: &[Role] = &[Role::App, Role::Admin];
/// Roles that read bindings (masked).
pub const BINDING_READERS: &[Role] = &[Role::App, Role::Ops, Role::Admin, Role::Auditor];
/// Roles that read pools and statistics, and use the route view.
pub const POOL_READERS: &[Role] = &[Role::Ops, Role::Admin, Role::Auditor];
/// Roles that change pools.
pub const POOL_WRITERS: &[Role] = &[Role::Admin];
/// Roles that read the audit log.
pub const AUDIT_READERS: &[Role] = &[Role::Admin, Role::Auditor];
/// Roles that may read unmasked numbers (audited).
pub const REVEALERS: &[Role] = &[Role::Auditor];

/// The authenticated client of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Index of the key in the configuration (rate-limit key).
    pub index: usize,
    /// The key's configured name (logs, audit).
    pub name: Arc<str>,
    /// The key's role.
    pub role: Role,
}

/// Name of a role as written in configuration.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::App => "app",
        Role::Ops => "ops",
        Role::Admin => "admin",
        Role::Auditor => "auditor",
    }
}

impl Caller {
    /// 403 unless the caller's role is one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), HttpError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<&str> = allowed.iter().map(|r| role_name(*r)).collect();
            Err(HttpError::forbidden(format!(
                "role '{}' may not do this; allowed: {}",
                role_name(self.role),
                names.join(", ")
            )))
        }
    }
}

#[derive(Debug)]
struct KeyEntry {
    name: Arc<str>,
    role: Role,
    hash: [u8; 32],
}

/// The configured keys, by hash.
#[derive(Debug, Default)]
pub struct KeyTable {
    keys: Vec<KeyEntry>,
}

/// The `sha256:<hex>` form stored in configuration for an API key.
pub use crate::config::api_key_hash as key_hash;

impl KeyTable {
    /// Reads `[[api.keys]]`; a malformed hash fails naming the entry.
    pub fn from_config(keys: &[ApiKeyConfig]) -> Result<Self, ApiError> {
        let mut out = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let field = format!("api.keys[{i}].hash");
            let hex_part = k
                .hash
                .strip_prefix("sha256:")
                .ok_or_else(|| ApiError::Config {
                    field: field.clone(),
                    message: "must be 'sha256:' followed by 64 hex digits".into(),
                })?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(hex_part, &mut hash).map_err(|_| ApiError::Config {
                field: field.clone(),
                message: "must be 'sha256:' followed by 64 hex digits".into(),
            })?;
            if k.name.is_empty() {
                return Err(ApiError::Config {
                    field: format!("api.keys[{i}].name"),
                    message: "must not be empty".into(),
                });
            }
            out.push(KeyEntry {
                name: k.name.as_str().into(),
                role: k.role,
                hash,
            });
        }
        Ok(Self { keys: out })
    }

    /// Number of configured keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is configured (every request is then refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Finds the caller from the `Authorization` header: 401 when missing or unknown.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, HttpError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| HttpError::unauthorized("missing 'Authorization: Bearer <key>'"))?;
        let value = value
            .to_str()
            .map_err(|_| HttpError::unauthorized("malformed Authorization header"))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or_else(|| HttpError::unauthorized("expected 'Authorization: Bearer <key>'"))?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(HttpError::unauthorized(
                "expected 'Authorization: Bearer <key>'",
            ));
        }
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare with every key, without early exit.
        let mut found: Option<usize> = None;
        for (i, k) in self.keys.iter().enumerate() {
            let eq: bool = k.hash.ct_eq(&presented).into();
            if eq && found.is_none() {
                found = Some(i);
            }
        }
        let i = found.ok_or_else(|| HttpError::unauthorized("invalid API key"))?;
        let k = self
            .keys
            .get(i)
            .ok_or_else(|| HttpError::unauthorized("invalid API key"))?;
        Ok(Caller {
            index: i,
            name: k.name.clone(),
            role: k.role,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn table() -> KeyTable {
        KeyTable::from_config(&[
            ApiKeyConfig {
                name: "platform".into(),
                role: Role::App,
                hash: key_hash("app-secret"),
            },
            ApiKeyConfig {
                name: "audit".into(),
                role: Role::Auditor,
                hash: key_hash("audit-secret"),
            },
        ])
        .unwrap()
    }

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn keys_authenticate_by_hash() {
        let t = table();
        let c = t.authenticate(&headers("Bearer audit-secret")).unwrap();
        assert_eq!((&*c.name, c.role), ("audit", Role::Auditor));
        let c = t.authenticate(&headers("bearer app-secret")).unwrap();
        assert_eq!(c.role, Role::App);
        for bad in ["Bearer nope", "Basic app-secret", "Bearer ", "app-secret"] {
            assert_eq!(t.authenticate(&headers(bad)).unwrap_err().status, 401);
        }
        assert_eq!(t.authenticate(&HeaderMap::new()).unwrap_err().status, 401);
    }

    #[test]
    fn malformed_hash_names_the_entry() {
        let e = KeyTable::from_config(&[ApiKeyConfig {
            name: "x".into(),
            role: Role::App,
            hash: "md5:abc".into(),
        }])
        .unwrap_err();
        assert!(e.to_string().contains("api.keys[0].hash"), "{e}");
    }

    #[test]
    fn roles_are_checked() {
        let t = table();
        let app = t.authenticate(&headers("Bearer app-secret")).unwrap();
        assert!(app.require(BINDING_WRITERS).is_ok());
        assert_eq!(app.require(POOL_WRITERS).unwrap_err().status, 403);
        assert_eq!(app.require(REVEALERS).unwrap_err().status, 403);
    }
}
