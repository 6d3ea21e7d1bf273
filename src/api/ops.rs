//! Operational endpoints: liveness, readiness, Prometheus metrics, the audit log
//! and serving the OpenAPI document (generated in [`super::openapi`]).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::AUDIT_READERS;
use super::bindings::{fmt_time, parse_time};
use super::error::{HttpError, STORE_RETRY_AFTER_S};
use super::openapi::responses::{
    error, error_retry_after, shared_responses, BadInput, Internal, KeyedErrors,
};
use super::openapi::roles;
use super::{json, AppState, Caller, QueryPairs};
use crate::store::{StoreError, DATA_LOST};

#[derive(Serialize, utoipa::ToSchema)]
struct Status {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "ops",
    summary = "Liveness: the process is up.",
    security(),
    responses((status = 200, description = "Up.", body = Status)),
)]
pub(crate) async fn healthz() -> Response {
    json::respond(StatusCode::OK, &Status { status: "ok" })
}

/// `GET /readyz`: the store answers; 503 `store_unavailable` otherwise, or 503
/// `store_data_lost` when the store lost its data and holds no pool yet.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "ops",
    summary = "Readiness: the store answers.",
    security(),
    responses(
        (status = 200, description = "Ready.", body = Status),
        Internal,
        NotReady,
    ),
)]
pub(crate) async fn readyz(State(st): State<AppState>) -> Result<Response, HttpError> {
    match st.store.ping().await {
        Ok(()) => Ok(json::respond(StatusCode::OK, &Status { status: "ready" })),
        Err(StoreError::Unavailable(d)) if d == DATA_LOST => Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_data_lost",
            DATA_LOST,
        )
        .with_retry_after(STORE_RETRY_AFTER_S)),
        Err(e) => Err(e.into()),
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "ops",
    summary = "Prometheus metrics (text format).",
    security(),
    responses(
        (status = 200, description = "Metrics.", body = String, content_type = "text/plain"),
        MetricsDisabled,
    ),
)]
pub(crate) async fn metrics(State(st): State<AppState>) -> Result<Response, HttpError> {
    let handle = st.metrics.as_ref().ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "metrics_disabled",
            "metrics are not enabled in this process",
        )
    })?;
    let mut resp = handle.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}

/// `GET /v1/openapi.json`: the generated document (a 500 if it cannot be
/// serialised, which the tests rule out).
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "ops",
    summary = "This document.",
    security(),
    responses(
        (status = 200, description = "OpenAPI 3 document.", body = Object, content_type = "application/json"),
    ),
)]
pub(crate) async fn openapi() -> Result<Response, HttpError> {
    let doc = super::openapi::document().map_err(|e| {
        tracing::error!(error = %e, "no OpenAPI document");
        HttpError::internal()
    })?;
    let mut resp = doc.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

shared_responses! {
    /// 404 of `GET /metrics`.
    MetricsDisabled { "404" => error("Metrics are not enabled in this process (`metrics_disabled`).") }
    /// 503 of `GET /readyz`.
    NotReady {
        "503" => error_retry_after(
            "The store is unavailable (`store_unavailable`: down, or not reached yet since \
             start-up), or it lost its data and holds no pool yet (`store_data_lost`: Redis \
             restarted without persistence, was flushed or failed over to a stale replica; \
             re-create the pools or restore the data).",
            None,
        )
    }
}

/// The answer's format.
#[derive(Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum AuditFormat {
    Json,
    Csv,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AuditView {
    #[schema(format = DateTime)]
    at: String,
    /// API key name.
    actor: String,
    /// Role of that key.
    role: String,
    #[schema(example = "binding.read_unmasked")]
    action: String,
    /// Binding id, shipment id or virtual number (never a party's number).
    target: String,
    /// Pool concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pool: Option<String>,
    /// Why, as the actor stated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AuditList {
    #[schema(inline)]
    entries: Vec<AuditView>,
}

/// Default and largest `limit` of `GET /v1/audit`.
const AUDIT_DEFAULT: usize = 100;
const AUDIT_MAX: usize = 1000;
/// Newest entries searched when filters are given (bounded scan).
const AUDIT_SCAN: usize = 10_000;

/// One CSV field, quoted when needed; a leading formula character is defused so
/// a spreadsheet never runs it.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /v1/audit?limit=N&actor=&action=&pool=&since=&until=&format=json|csv`:
/// newest entries first. Filters search the newest [`AUDIT_SCAN`] entries.
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "readAudit",
    tag = "ops",
    summary = "Audit log (unmasked reads, number state changes), newest first; JSON or CSV.",
    description = roles(AUDIT_READERS, "Filters search the newest 10,000 entries."),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
            description = "How many entries, 1 to 1000 (default 100)."),
        ("actor" = Option<String>, Query, description = "Only this API key name."),
        ("action" = Option<String>, Query,
            description = "Only this action, e.g. `number.quarantine`, `shipment.read_unmasked`."),
        ("pool" = Option<String>, Query, description = "Only this pool."),
        ("since" = Option<String>, Query, format = DateTime, description = "At or after (RFC 3339)."),
        ("until" = Option<String>, Query, format = DateTime, description = "Before (RFC 3339)."),
        ("format" = inline(Option<AuditFormat>), Query,
            description = "`json` (default) or `csv` (columns at,actor,role,action,target,pool,reason)."),
    ),
    responses(
        (status = 200, description = "Entries.", content(
            (AuditList = "application/json"),
            (String = "text/csv"),
        )),
        BadInput,
        KeyedErrors,
    ),
)]
pub(crate) async fn audit(
    State(st): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(AUDIT_READERS)?;
    query.only(&[
        "limit", "actor", "action", "pool", "since", "until", "format",
    ])?;
    let limit = match query.get("limit") {
        None => AUDIT_DEFAULT,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=AUDIT_MAX).contains(n))
            .ok_or_else(|| HttpError::invalid_field("limit", format!("limit: 1 to {AUDIT_MAX}")))?,
    };
    let format = match query.get("format") {
        None | Some("json") => AuditFormat::Json,
        Some("csv") => AuditFormat::Csv,
        Some(_) => return Err(HttpError::invalid_field("format", "format: json or csv")),
    };
    let csv = format == AuditFormat::Csv;
    let since = query
        .get("since")
        .map(|s| parse_time(s, "since"))
        .transpose()?;
    let until = query
        .get("until")
        .map(|s| parse_time(s, "until"))
        .transpose()?;
    let (actor, action, pool) = (query.get("actor"), query.get("action"), query.get("pool"));
    let filtered = actor.is_some() || action.is_some() || pool.is_some() || since.is_some();
    let scan = if filtered || until.is_some() {
        AUDIT_SCAN
    } else {
        limit
    };
    let entries: Vec<AuditView> = st
        .store
        .read_audit(scan)
        .await?
        .into_iter()
        .filter(|e| {
            actor.is_none_or(|a| e.actor == a)
                && action.is_none_or(|a| e.action == a)
                && pool.is_none_or(|p| e.pool.as_deref() == Some(p))
                && since.is_none_or(|t| e.at >= t)
                && until.is_none_or(|t| e.at < t)
        })
        .take(limit)
        .map(|e| AuditView {
            at: fmt_time(e.at),
            actor: e.actor,
            role: e.role,
            action: e.action,
            target: e.target,
            pool: e.pool,
            reason: e.reason,
        })
        .collect();
    if !csv {
        return Ok(json::respond(StatusCode::OK, &AuditList { entries }));
    }
    let mut out = String::from("at,actor,role,action,target,pool,reason\r\n");
    for e in &entries {
        let row = [
            e.at.as_str(),
            &e.actor,
            &e.role,
            &e.action,
            &e.target,
            e.pool.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
        ]
        .map(csv_field)
        .join(",");
        out.push_str(&row);
        out.push_str("\r\n");
    }
    let mut resp = out.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"maskline-audit.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
