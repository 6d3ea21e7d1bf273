//! Operational endpoints: liveness, readiness, Prometheus metrics, the audit log
//! and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::AUDIT_READERS;
use super::bindings::fmt_time;
use super::error::{HttpError, STORE_RETRY_AFTER_S};
use super::{json, AppState, Caller, QueryPairs};
use crate::store::{StoreError, DATA_LOST};

/// The OpenAPI 3 document (hand-written; kept true by `tests/api_openapi.rs`).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Response {
    json::respond(StatusCode::OK, &Status { status: "ok" })
}

/// `GET /readyz`: the store answers; 503 `store_unavailable` otherwise, or 503
/// `store_data_lost` when the store lost its data and holds no pool yet.
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

/// `GET /v1/openapi.json`
pub(crate) async fn openapi() -> Response {
    let mut resp = OPENAPI_JSON.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[derive(Serialize)]
struct AuditView {
    at: String,
    actor: String,
    role: String,
    action: String,
    target: String,
}

#[derive(Serialize)]
struct AuditList {
    entries: Vec<AuditView>,
}

/// Default and largest `limit` of `GET /v1/audit`.
const AUDIT_DEFAULT: usize = 100;
const AUDIT_MAX: usize = 1000;

/// `GET /v1/audit?limit=N`: newest entries first.
pub(crate) async fn audit(
    State(st): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(AUDIT_READERS)?;
    query.only(&["limit"])?;
    let limit = match query.get("limit") {
        None => AUDIT_DEFAULT,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=AUDIT_MAX).contains(n))
            .ok_or_else(|| HttpError::invalid_field("limit", format!("limit: 1 to {AUDIT_MAX}")))?,
    };
    let entries = st
        .store
        .read_audit(limit)
        .await?
        .into_iter()
        .map(|e| AuditView {
            at: fmt_time(e.at),
            actor: e.actor,
            role: e.role,
            action: e.action,
            target: e.target,
        })
        .collect();
    Ok(json::respond(StatusCode::OK, &AuditList { entries }))
}
