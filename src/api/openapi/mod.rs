//! The OpenAPI document served at `GET /v1/openapi.json`, generated with
//! `utoipa` from the code so it cannot drift: each handler carries a
//! `#[utoipa::path]` (its path, method, parameters, body and every status it can
//! answer), and the request and response types it reads and writes derive
//! `ToSchema`, with the rules the server enforces (lengths, bounds, patterns,
//! nullability) beside their fields.
//!
//! This module owns the document's frame (info, tags, the bearer security scheme),
//! the list of operations, the error answers they share ([`responses`]) and
//! serialising the document (once, on first use) as OpenAPI 3.0.3. `tests/api_openapi.rs` checks
//! it against the router and against the server's answers.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::bindings::PatchMinProperties;
use crate::config::Role;

pub(crate) mod responses;

/// Failures producing the document.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// The document could not be serialised to JSON.
    #[error("openapi document: {0}")]
    Json(#[from] serde_json::Error),
}

/// The document's description: what holds for every operation.
const DESCRIPTION: &str = "Virtual phone number privacy relay: pools of virtual numbers and \
    AXB bindings. Every error is `{\"error\":{\"code\",\"message\",\"field\"?}}`. Parties are \
    masked (`+86 138****5678`) except for an auditor's audited `reveal=true` read. `/healthz`, \
    `/readyz`, `/metrics` and this document need no key; everything else under `/v1` needs \
    `Authorization: Bearer <key>`. Slow clients are cut off: headers within \
    `api.header_timeout_ms`, bodies within `api.body_timeout_ms` (else `408 request_timeout`), \
    and a connection with no request in flight is closed after `api.idle_timeout_ms` of \
    silence. A request line that is not HTTP answers `400 malformed_request`, one longer than \
    8192 bytes `414 uri_too_long`, both in the same error shape.";

/// The security scheme every operation uses unless it says otherwise.
pub(crate) const BEARER: &str = "bearer";

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "maskline API", version = "1", description = DESCRIPTION),
    paths(
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        super::ops::openapi,
        super::ops::audit,
        super::pools::list,
        super::pools::create,
        super::pools::stats,
        super::overview::overview,
        super::poolops::numbers,
        super::import::import,
        super::poolops::quarantine,
        super::poolops::release,
        super::poolops::retire,
        super::pools::retire,
        super::pools::route,
        super::bindings::list,
        super::bindings::create,
        super::bindings::get,
        super::bindings::update,
        super::bindings::delete,
        super::bindings::delivered,
        super::label::get,
        super::shipments::shipment,
        super::calls::list,
        super::sms::list,
        super::sms::inbound,
        super::sms::receipts,
    ),
    // Named here: referenced by hand-built responses, or only from descriptions.
    components(schemas(
        super::error::ErrorBody,
        super::bindings::BindingView,
        super::import::NumberEntry,
    )),
    modifiers(&BearerScheme, &PatchMinProperties),
    security(("bearer" = [])),
    tags(
        (name = "ops", description = "Liveness, readiness, metrics, this document and the audit log."),
        (name = "pools", description = "Pools of virtual numbers: settings, statistics, the ops overview, number import and health, taking numbers in and out of service."),
        (name = "bindings", description = "AXB bindings: a courier and a customer reach each other through one virtual number."),
        (name = "records", description = "What went through the relay: call and SMS records, and a shipment's bindings and records."),
        (name = "sms", description = "The CPaaS provider's signed webhooks."),
    )
)]
struct ApiDoc;

/// Adds the bearer security scheme (the API keys).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key; the config holds only its `sha256:<hex>` hash.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, serialised once.
pub fn document() -> Result<&'static str, OpenApiError> {
    static JSON: OnceLock<String> = OnceLock::new();
    if let Some(json) = JSON.get() {
        return Ok(json);
    }
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    camel_case_links(&mut doc);
    as_openapi_30(&mut doc);
    let json = serde_json::to_string(&doc)?;
    Ok(JSON.get_or_init(|| json))
}

/// The OpenAPI version the document is published as.
pub const OPENAPI_VERSION: &str = "3.0.3";

/// Publishes utoipa's OpenAPI 3.1 document as OpenAPI 3.0.3, the version the
/// contract has always had: under 3.1 (JSON Schema 2020-12) an `integer` also
/// admits `3.0`, which the server's typed parsing refuses (and clients generated
/// from 3.0 expect integers to be integral). The two differ here only in how
/// nullability is written: `type: [T, "null"]` and `oneOf: [{type: null}, S]`
/// become `nullable: true`; and in the license's SPDX `identifier` (3.1 only).
fn as_openapi_30(doc: &mut serde_json::Value) {
    use serde_json::Value;
    fn walk(v: &mut Value) {
        match v {
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => {
                map.values_mut().for_each(walk);
                // type: [T, "null"] -> type: T, nullable: true
                if let Some(Value::Array(types)) = map.get("type") {
                    let nullable = types.iter().any(|t| t == "null");
                    let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                    if let [single] = rest.as_slice() {
                        map.insert("type".into(), single.clone());
                    } else {
                        map.insert("type".into(), Value::Array(rest));
                    }
                    if nullable {
                        map.insert("nullable".into(), Value::Bool(true));
                    }
                }
                // oneOf: [{type: null}, S] -> S, nullable: true
                let null_or_one = match map.get("oneOf") {
                    Some(Value::Array(items)) if items.len() == 2 => {
                        let is_null = |i: &Value| i.get("type").is_some_and(|t| t == "null");
                        match items.as_slice() {
                            [a, b] if is_null(a) => Some(b.clone()),
                            [a, b] if is_null(b) => Some(a.clone()),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if let Some(Value::Object(inner)) = null_or_one {
                    map.remove("oneOf");
                    if inner.contains_key("$ref") {
                        // No siblings beside a $ref in 3.0.
                        map.insert("allOf".into(), Value::Array(vec![Value::Object(inner)]));
                    } else {
                        for (k, val) in inner {
                            map.entry(k).or_insert(val);
                        }
                    }
                    map.insert("nullable".into(), Value::Bool(true));
                }
            }
            _ => {}
        }
    }
    if let Some(paths) = doc.get_mut("paths") {
        walk(paths);
    }
    if let Some(components) = doc.get_mut("components") {
        walk(components);
    }
    if let Some(license) = doc
        .pointer_mut("/info/license")
        .and_then(|l| l.as_object_mut())
    {
        license.remove("identifier");
    }
    doc["openapi"] = serde_json::Value::from(OPENAPI_VERSION);
}

/// Renames the fields of every response link to the spec's camelCase
/// (`operationId`, `operationRef`, `requestBody`): utoipa 5.5 serialises its
/// `Link` with the Rust field names.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|r| r.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.to_owned(), v);
            }
        }
    }
}

/// `Roles: a, b.`: who may call an operation, from the role list its handler
/// checks, then `more`.
pub(crate) fn roles(roles: &[Role], more: &str) -> String {
    let names: Vec<&str> = roles.iter().map(|r| super::auth::role_name(*r)).collect();
    let sep = if more.is_empty() || more.starts_with('\n') {
        ""
    } else {
        " "
    };
    format!("Roles: {}.{sep}{more}", names.join(", "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;

    /// (path, method) of every operation in the document.
    fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
        doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (path.clone(), m.to_ascii_uppercase()))
            })
            .collect()
    }

    #[test]
    fn every_route_is_documented_and_every_operation_is_routed() {
        let store = Arc::new(crate::store::memory::MemoryStore::new());
        let api = crate::api::Api::new(&crate::config::ApiConfig::default(), store, None).unwrap();
        let served: BTreeSet<(String, String)> = api
            .routes()
            .iter()
            .flat_map(|(p, ms)| ms.iter().map(move |m| (p.to_string(), m.to_string())))
            .collect();
        let doc: serde_json::Value = serde_json::from_str(document().unwrap()).unwrap();
        // A route added without `#[utoipa::path]` (or not listed in `ApiDoc`'s
        // paths) is missing on the left; a documented path the router does not
        // serve is missing on the right.
        assert_eq!(documented(&doc), served);
    }

    #[test]
    fn operation_ids_are_unique_and_links_name_them() {
        let doc: serde_json::Value = serde_json::from_str(document().unwrap()).unwrap();
        let ops: Vec<&serde_json::Value> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .collect();
        let ids: BTreeSet<&str> = ops
            .iter()
            .map(|op| op["operationId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), ops.len());
        for op in &ops {
            for r in op["responses"].as_object().unwrap().values() {
                for l in r["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    assert!(ids.contains(l["operationId"].as_str().unwrap()), "{l}");
                    assert!(l.get("operation_id").is_none());
                }
            }
        }
    }

    #[test]
    fn the_document_is_openapi_30() {
        let json = document().unwrap();
        let doc: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(doc["openapi"], OPENAPI_VERSION);
        // No 3.1 nullability left: type arrays, `type: null`, identifier.
        assert!(
            !json.contains("\"type\":[") && !json.contains("\"null\""),
            "{json}"
        );
        assert!(doc["info"]["license"].get("identifier").is_none());
        // What was nullable still is.
        let calls = &doc["components"]["schemas"]["CallRecord"]["properties"];
        assert_eq!(calls["binding_id"]["nullable"], true);
        assert_eq!(calls["binding_id"]["type"], "string");
        assert_eq!(calls["direction"]["nullable"], true);
        assert_eq!(calls["hangup_by"]["nullable"], true);
        assert!(calls["via"].get("nullable").is_none());
    }

    #[test]
    fn patch_binding_needs_a_field() {
        let doc: serde_json::Value = serde_json::from_str(document().unwrap()).unwrap();
        let patch = &doc["components"]["schemas"]["PatchBinding"];
        assert_eq!(patch["minProperties"], 1);
        assert!(patch.get("maxProperties").is_none());
    }

    #[test]
    fn roles_are_listed_as_the_handlers_check_them() {
        assert_eq!(roles(super::super::auth::POOL_WRITERS, ""), "Roles: admin.");
        assert_eq!(
            roles(super::super::auth::AUDIT_READERS, "More."),
            "Roles: admin, auditor. More."
        );
        assert_eq!(
            roles(super::super::auth::BINDING_WRITERS, "\n\nMore."),
            "Roles: app, admin.\n\nMore."
        );
    }
}
