//! `/v1/bindings`: create (idempotent per shipment), read, list by shipment,
//! update (party handover, expiry), mark delivered, delete.
//!
//! Parties are masked in every answer, except an auditor's
//! `GET /v1/bindings/{id}?reveal=true`, which is audited (written to the store's audit
//! log) before the answer leaves; if the audit write fails, so does the read. How a
//! binding is shown, and the answers that carry one, are in `binding_view.rs`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::{role_name, BINDING_READERS, BINDING_WRITERS, REVEALERS};
pub(crate) use super::binding_view::BindingView;
use super::binding_view::{
    CreateConflict, CreateUnavailable, CreatedBinding, DeliveredBinding, ListPoolNotFound,
    ReassignConflict, UpdatedBinding,
};
use super::error::HttpError;
use super::openapi::responses::{
    BadInput, BindingNotFound, BodyErrors, Forbidden, Internal, KeyedErrors, NotJson, PoolNotFound,
    RateLimited, Unauthorized,
};
use super::openapi::roles;
use super::params::BindingPath;
use super::{json, no_content, AppState, Caller, PathParams, QueryPairs, METRIC_BINDINGS_CREATED};
use crate::bindings::{
    datetime_to_ms, ms_to_datetime, now_ms, validate_area, validate_expiry, validate_shipment_id,
    BindingId, BindingPatch, Created, NewBinding, PoolSpec, UnixMs,
};
use crate::numbers::E164;
use crate::store::AuditEntry;

/// RFC 3339 text of a store time.
pub(crate) fn fmt_time(ms: UnixMs) -> String {
    ms_to_datetime(ms).format(&Rfc3339).unwrap_or_default()
}

/// Parses an RFC 3339 timestamp for `field`.
pub(crate) fn parse_time(s: &str, field: &str) -> Result<UnixMs, HttpError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(datetime_to_ms)
        .map_err(|_| {
            HttpError::invalid_field(
                field,
                format!("{field}: must be an RFC 3339 timestamp, e.g. 2026-12-01T18:00:00Z"),
            )
        })
}

/// Longest phone number input accepted, separators included.
pub(crate) const MAX_NUMBER_INPUT: usize = 32;

/// Parses a phone number for `field`: strict E.164 (also `00`-prefixed or with
/// separators); national format only when `country` is given.
///
/// At most [`MAX_NUMBER_INPUT`] characters (the OpenAPI document's `maxLength`).
pub(crate) fn parse_number(s: &str, field: &str, country: Option<u16>) -> Result<E164, HttpError> {
    if s.chars().count() > MAX_NUMBER_INPUT {
        return Err(HttpError::invalid_field(
            field,
            format!("{field}: at most {MAX_NUMBER_INPUT} characters"),
        ));
    }
    E164::parse_lenient(s, country)
        .map_err(|e| HttpError::invalid_field(field, format!("{field}: {e}")))
}

/// Whether `s` needs the pool's country to be read (no `+` or `00` prefix).
fn needs_country(s: &str) -> bool {
    let t = s.trim_start();
    !(t.starts_with('+') || t.starts_with("00"))
}

/// Reads a party number; looks the pool's country up (once) only for national input.
async fn parse_party(
    st: &AppState,
    pool: &str,
    raw: &str,
    field: &str,
    country: &mut Option<u16>,
) -> Result<E164, HttpError> {
    if needs_country(raw) && country.is_none() {
        *country = Some(st.store.get_pool(pool).await?.country);
    }
    parse_number(raw, field, *country)
}

/// Refuses a party of another country than the pool's, unless the pool allows
/// foreign parties (400 naming the field).
fn check_party_country(spec: &PoolSpec, field: &str, party: &E164) -> Result<(), HttpError> {
    if spec.allow_foreign_parties || party.country_code() == spec.country.to_string() {
        return Ok(());
    }
    Err(HttpError::invalid_field(
        field,
        format!(
            "{field}: not a +{} number; pool '{}' takes parties of its country only \
             (allow_foreign_parties is false)",
            spec.country, spec.name
        ),
    ))
}

/// Exactly one of `expires_at` and `ttl_s` (neither or both: 400 `invalid_field`).
/// Optional fields may be omitted; `null` is refused. Rules the schema cannot
/// state, refused with 400 `invalid_field`: `expires_at` must be in the future and
/// at most 366 days ahead; the parties must differ and, unless the pool has
/// `allow_foreign_parties`, be of the pool's country.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateBinding, example = json!({
    "pool": "demo",
    "shipment_id": "SF1234567890",
    "party_a": "+8613800138000",
    "party_b": "+8613900139000",
    "ttl_s": 86400
}))]
struct CreateBody {
    /// Pool name.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    pool: String,
    /// Idempotency key within the pool: 1 to 128 printable ASCII characters, no
    /// spaces.
    #[schema(min_length = 1, max_length = 128, pattern = "^[!-~]+$")]
    shipment_id: String,
    /// Courier.
    /// A phone number: E.164 (`+8613800138000`), or with `00` for `+`, or in
    /// national format for the pool's country; spaces, `-`, `.`, `(` and `)` are
    /// ignored. At most 32 characters.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[ ().-]*(\+[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|[0-9]([ ().-]*[0-9]){4,14})[ ().-]*$"
    )]
    party_a: String,
    /// Customer.
    /// A phone number: E.164 (`+8613800138000`), or with `00` for `+`, or in
    /// national format for the pool's country; spaces, `-`, `.`, `(` and `)` are
    /// ignored. At most 32 characters.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[ ().-]*(\+[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|[0-9]([ ().-]*[0-9]){4,14})[ ().-]*$"
    )]
    party_b: String,
    /// RFC 3339; in the future and at most 366 days ahead.
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, format = DateTime)]
    expires_at: Option<String>,
    /// Seconds from now, 1 to 31622400 (366 days).
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, minimum = 1, maximum = 31622400)]
    ttl_s: Option<u64>,
    /// Preferred area tag of the virtual number: 1 to 32 letters, digits, `_` or
    /// `-`.
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 32,
        pattern = "^[A-Za-z0-9_-]+$"
    )]
    area: Option<String>,
    /// Ask for an extension on the virtual number (printed waybills: any phone can
    /// call the number and key the extension). Default: the pool's `extensions`
    /// setting. An extension binding needs a number with a free extension; none
    /// left is `409 pool_exhausted`.
    #[serde(default)]
    #[schema(nullable = false)]
    extension: Option<bool>,
}

fn creation_outcome(r: &Result<Created, HttpError>) -> &'static str {
    match r {
        Ok(Created::New(_)) => "new",
        Ok(Created::Existing(_)) => "existing",
        Err(e) => match e.code {
            "pool_exhausted" => "pool_exhausted",
            "shipment_conflict" => "shipment_conflict",
            "store_unavailable" => "store_unavailable",
            "pool_not_found" => "pool_not_found",
            "internal" => "error",
            _ => "invalid",
        },
    }
}

/// `POST /v1/bindings`
#[utoipa::path(
    post,
    path = "/v1/bindings",
    operation_id = "createBinding",
    tag = "bindings",
    summary = "Create a binding (idempotent per pool and shipment).",
    description = roles(
        BINDING_WRITERS,
        "\n\nA `503 store_unavailable` does not mean the binding was not created: when the store \
         stalls past its call timeout, the creation may still commit afterwards. Retry the same \
         request (same pool, shipment id and parties) after `Retry-After`: it answers `200` with \
         the binding that was committed, or `201` if none was. Retries never create a second \
         binding for a shipment.",
    ),
    request_body = CreateBody,
    responses(
        CreatedBinding,
        BadInput,
        Unauthorized,
        Forbidden,
        PoolNotFound,
        CreateConflict,
        BodyErrors,
        NotJson,
        RateLimited,
        Internal,
        CreateUnavailable,
    ),
)]
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    caller.require(BINDING_WRITERS)?;
    let result = create_inner(&st, &headers, body).await;
    metrics::counter!(METRIC_BINDINGS_CREATED, "outcome" => creation_outcome(&result)).increment(1);
    match result? {
        Created::New(b) => Ok(json::respond(
            StatusCode::CREATED,
            &BindingView::new(&b, false),
        )),
        Created::Existing(b) => Ok(json::respond(StatusCode::OK, &BindingView::new(&b, false))),
    }
}

async fn create_inner(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Created, HttpError> {
    json::require_json(headers)?;
    let bytes = json::read_body(headers, body, st.max_body, st.body_timeout).await?;
    let req: CreateBody = json::parse(&bytes)?;
    crate::bindings::validate_pool_name(&req.pool)
        .map_err(|e| HttpError::invalid_field("pool", format!("pool: {}", e.message)))?;
    validate_shipment_id(&req.shipment_id)?;
    if let Some(a) = &req.area {
        validate_area(a, "area")?;
    }
    let now = now_ms();
    let expires_at = match (&req.expires_at, req.ttl_s) {
        (Some(t), None) => parse_time(t, "expires_at")?,
        (None, Some(ttl)) => {
            if ttl == 0 {
                return Err(HttpError::invalid_field(
                    "ttl_s",
                    "ttl_s: must be at least 1",
                ));
            }
            let ttl_ms = i64::try_from(ttl)
                .ok()
                .and_then(|t| t.checked_mul(1000))
                .ok_or_else(|| HttpError::invalid_field("ttl_s", "ttl_s: too large"))?;
            now.saturating_add(ttl_ms)
        }
        _ => {
            return Err(HttpError::invalid_field(
                "expires_at",
                "give exactly one of expires_at (RFC 3339) or ttl_s (seconds)",
            ))
        }
    };
    let field = if req.ttl_s.is_some() {
        "ttl_s"
    } else {
        "expires_at"
    };
    validate_expiry(expires_at, now)
        .map_err(|e| HttpError::invalid_field(field, format!("{field}: {}", e.message)))?;
    // The pool's settings: its country reads national input and, unless the pool
    // allows foreign parties, is the only country a party may have.
    let spec = st.store.get_pool(&req.pool).await?;
    let mut country = Some(spec.country);
    let party_a = parse_party(st, &req.pool, &req.party_a, "party_a", &mut country).await?;
    let party_b = parse_party(st, &req.pool, &req.party_b, "party_b", &mut country).await?;
    for (field, party) in [("party_a", &party_a), ("party_b", &party_b)] {
        check_party_country(&spec, field, party)?;
    }
    if party_a == party_b {
        return Err(HttpError::invalid_field(
            "party_b",
            "party_b: must differ from party_a",
        ));
    }
    let new = NewBinding {
        pool: req.pool,
        shipment_id: req.shipment_id,
        party_a,
        party_b,
        expires_at,
        area: req.area,
        extension: req
            .extension
            .unwrap_or(spec.extensions)
            .then_some(spec.extension_len),
    };
    Ok(st.store.create_binding(new, now).await?)
}

/// Parses a binding id from the path.
fn binding_id(s: &str) -> Result<BindingId, HttpError> {
    parse_uuid(s).ok_or_else(|| HttpError::invalid_field("id", "id: not a binding id"))
}

/// A UUID in its hyphenated form only (`8-4-4-4-12` hex digits), the one form the
/// API writes and the OpenAPI document declares.
pub(crate) fn parse_uuid(s: &str) -> Option<BindingId> {
    if s.len() != 36 {
        return None;
    }
    BindingId::parse_str(s).ok()
}

/// `GET /v1/bindings/{id}[?reveal=true]`
#[utoipa::path(
    get,
    path = "/v1/bindings/{id}",
    operation_id = "getBinding",
    tag = "bindings",
    summary = "A live binding. With `reveal=true` (auditor only) the parties are shown in clear \
               and the read is written to the audit log first.",
    description = roles(BINDING_READERS, ""),
    params(
        BindingPath,
        ("reveal" = Option<bool>, Query,
            description = "Show parties unmasked (auditor only; audited): `true` or `false`."),
    ),
    responses(
        (status = 200, description = "The binding.", body = BindingView),
        BadInput,
        KeyedErrors,
        BindingNotFound,
    ),
)]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(BindingPath { id }): PathParams<BindingPath>,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(BINDING_READERS)?;
    query.only(&["reveal"])?;
    let reveal = match query.get("reveal") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(HttpError::invalid_field(
                "reveal",
                "reveal: must be true or false",
            ))
        }
    };
    if reveal {
        caller.require(REVEALERS)?;
    }
    let id = binding_id(&id)?;
    let now = now_ms();
    let b = st.store.get_binding(id, now).await?;
    if !reveal {
        return Ok(json::respond(StatusCode::OK, &BindingView::new(&b, false)));
    }
    // Audit first: a disclosure that cannot be recorded does not happen.
    st.store
        .append_audit(AuditEntry {
            at: now,
            actor: caller.name.to_string(),
            role: role_name(caller.role).to_owned(),
            action: "binding.read_unmasked".into(),
            target: id.to_string(),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "audit write failed; reveal refused");
            HttpError::from(e)
        })?;
    tracing::info!(binding = %id, "unmasked read (audited)");
    let mut resp = json::respond(StatusCode::OK, &BindingView::new(&b, true));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Serialize, ToSchema)]
struct BindingList {
    bindings: Vec<BindingView>,
}

/// `GET /v1/bindings?shipment_id=...[&pool=...]`
#[utoipa::path(
    get,
    path = "/v1/bindings",
    operation_id = "findBindings",
    tag = "bindings",
    summary = "Live bindings of a shipment.",
    description = roles(BINDING_READERS, ""),
    params(
        ("shipment_id" = String, Query, min_length = 1, max_length = 128, pattern = "^[!-~]+$",
            example = "SF1234567890",
            description = "The shipment id: 1 to 128 printable ASCII characters, no spaces."),
        ("pool" = Option<String>, Query, min_length = 1, max_length = 64,
            pattern = "^[A-Za-z0-9_-]+$", example = "demo", description = "Only this pool."),
    ),
    responses(
        (status = 200, description = "Bindings (parties masked).", body = BindingList),
        BadInput,
        KeyedErrors,
        ListPoolNotFound,
    ),
)]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(BINDING_READERS)?;
    query.only(&["shipment_id", "pool"])?;
    let shipment = query.get("shipment_id").ok_or_else(|| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            "query parameter 'shipment_id' is required",
        )
        .with_field("shipment_id")
    })?;
    validate_shipment_id(shipment)?;
    let pool = query.get("pool");
    if let Some(p) = pool {
        crate::bindings::validate_pool_name(p)
            .map_err(|e| HttpError::invalid_field("pool", format!("pool: {}", e.message)))?;
    }
    let found = st.store.find_by_shipment(pool, shipment, now_ms()).await?;
    let bindings = found.iter().map(|b| BindingView::new(b, false)).collect();
    Ok(json::respond(StatusCode::OK, &BindingList { bindings }))
}

/// At least one field. `null` is refused. Rules the schema cannot state, refused
/// with 400 `invalid_field`: `expires_at` must be in the future and at most 366
/// days ahead; a new party must differ from the other one and, unless the pool has
/// `allow_foreign_parties`, be of the pool's country.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PatchBinding, example = json!({"party_a": "+8613800138001"}))]
struct PatchBody {
    /// New courier.
    /// A phone number: E.164 (`+8613800138000`), or with `00` for `+`, or in
    /// national format for the pool's country; spaces, `-`, `.`, `(` and `)` are
    /// ignored. At most 32 characters.
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 32,
        pattern = r"^[ ().-]*(\+[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|[0-9]([ ().-]*[0-9]){4,14})[ ().-]*$"
    )]
    party_a: Option<String>,
    /// New customer.
    /// A phone number: E.164 (`+8613800138000`), or with `00` for `+`, or in
    /// national format for the pool's country; spaces, `-`, `.`, `(` and `)` are
    /// ignored. At most 32 characters.
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 32,
        pattern = r"^[ ().-]*(\+[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|[0-9]([ ().-]*[0-9]){4,14})[ ().-]*$"
    )]
    party_b: Option<String>,
    /// RFC 3339; in the future and at most 366 days ahead.
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, format = DateTime)]
    expires_at: Option<String>,
}

/// Sets `minProperties: 1` on `PatchBinding` (utoipa 5.5's `min_properties`
/// attribute writes `maxProperties` instead).
pub(crate) struct PatchMinProperties;

impl utoipa::Modify for PatchMinProperties {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let schema = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut(PatchBody::name().as_ref()));
        if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::Schema::Object(o))) = schema {
            o.min_properties = Some(1);
        }
    }
}

/// `PATCH /v1/bindings/{id}`
#[utoipa::path(
    patch,
    path = "/v1/bindings/{id}",
    operation_id = "updateBinding",
    tag = "bindings",
    summary = "Reassign a party (courier handover) and/or change expiry.",
    description = roles(BINDING_WRITERS, ""),
    params(BindingPath),
    request_body = PatchBody,
    responses(
        UpdatedBinding,
        BadInput,
        KeyedErrors,
        BindingNotFound,
        ReassignConflict,
        BodyErrors,
        NotJson,
    ),
)]
pub(crate) async fn update(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(BindingPath { id }): PathParams<BindingPath>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    caller.require(BINDING_WRITERS)?;
    let id = binding_id(&id)?;
    json::require_json(&headers)?;
    let bytes = json::read_body(&headers, body, st.max_body, st.body_timeout).await?;
    let req: PatchBody = json::parse(&bytes)?;
    if req.party_a.is_none() && req.party_b.is_none() && req.expires_at.is_none() {
        return Err(HttpError::invalid_field(
            "(body)",
            "give at least one of party_a, party_b, expires_at",
        ));
    }
    let now = now_ms();
    let expires_at = match &req.expires_at {
        Some(t) => {
            let ms = parse_time(t, "expires_at")?;
            validate_expiry(ms, now)?;
            Some(ms)
        }
        None => None,
    };
    // National-format parties need the pool's country, found through the binding.
    // A new party needs the pool's settings (country, foreign parties), found
    // through the binding.
    let mut spec = None;
    if req.party_a.is_some() || req.party_b.is_some() {
        let b = st.store.get_binding(id, now).await?;
        spec = Some(st.store.get_pool(&b.pool).await?);
    }
    let country = spec.as_ref().map(|s| s.country);
    let parse = |raw: &Option<String>, field: &'static str| -> Result<_, HttpError> {
        match (raw, &spec) {
            (Some(p), Some(spec)) => {
                let n = parse_number(p, field, country)?;
                check_party_country(spec, field, &n)?;
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    };
    let party_a = parse(&req.party_a, "party_a")?;
    let party_b = parse(&req.party_b, "party_b")?;
    if party_a.is_some() && party_a == party_b {
        return Err(HttpError::invalid_field(
            "party_b",
            "party_b: must differ from party_a",
        ));
    }
    let patch = BindingPatch {
        party_a,
        party_b,
        expires_at,
    };
    let b = st.store.update_binding(id, patch, now).await?;
    Ok(json::respond(StatusCode::OK, &BindingView::new(&b, false)))
}

/// `POST /v1/bindings/{id}/delivered`
#[utoipa::path(
    post,
    path = "/v1/bindings/{id}/delivered",
    operation_id = "markDelivered",
    tag = "bindings",
    summary = "Mark delivered: expiry becomes now + the pool's grace.",
    description = roles(BINDING_WRITERS, ""),
    params(BindingPath),
    responses(DeliveredBinding, BadInput, KeyedErrors, BindingNotFound),
)]
pub(crate) async fn delivered(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(BindingPath { id }): PathParams<BindingPath>,
) -> Result<Response, HttpError> {
    caller.require(BINDING_WRITERS)?;
    let id = binding_id(&id)?;
    let b = st.store.mark_delivered(id, now_ms()).await?;
    Ok(json::respond(StatusCode::OK, &BindingView::new(&b, false)))
}

/// `DELETE /v1/bindings/{id}`
#[utoipa::path(
    delete,
    path = "/v1/bindings/{id}",
    operation_id = "deleteBinding",
    tag = "bindings",
    summary = "End a binding now (its parties start cooling on the number).",
    description = roles(BINDING_WRITERS, ""),
    params(BindingPath),
    responses(
        (status = 204, description = "Deleted."),
        BadInput,
        KeyedErrors,
        BindingNotFound,
    ),
)]
pub(crate) async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(BindingPath { id }): PathParams<BindingPath>,
) -> Result<Response, HttpError> {
    caller.require(BINDING_WRITERS)?;
    let id = binding_id(&id)?;
    st.store.delete_binding(id, now_ms()).await?;
    Ok(no_content())
}
