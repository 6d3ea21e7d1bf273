//! The one JSON error shape of the HTTP API and the one place typed errors become
//! HTTP responses.
//!
//! Every failure a client can see is `{"error":{"code","message","field"?}}` with a
//! stable machine-readable `code`. Store errors, domain validation ([`Invalid`]),
//! body/JSON problems and auth failures all convert into [`HttpError`] here, so the
//! mapping from cause to status code lives in this file only. Server-side faults
//! (corrupt store data) are logged in full and reach the client as a bare 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::bindings::Invalid;
use crate::store::StoreError;

/// Seconds a client should wait before retrying when the store is down.
pub const STORE_RETRY_AFTER_S: u64 = 1;

/// An error answer: status, stable code, human message, and the input field at
/// fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `pool_exhausted`.
    pub code: &'static str,
    /// Human-readable explanation; never contains a phone number.
    pub message: String,
    /// The request field at fault (JSON name, path or query parameter).
    pub field: Option<String>,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl HttpError {
    /// A new error without field or retry hint.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Names the input field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a `Retry-After` hint.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// 400 `invalid_field`: a value of the right type that breaks a rule.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_field", message).with_field(field)
    }

    /// 400 `invalid_json`: the body is not (well-formed) JSON.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 404 `not_found`: no such route.
    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 413 `body_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    }

    /// 408 `request_timeout`: the body did not arrive in time (the connection is
    /// closed after this answer).
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {expected}"),
        )
    }

    /// 429 `rate_limited`.
    pub fn rate_limited(retry_after_s: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this API key",
        )
        .with_retry_after(retry_after_s)
    }

    /// 503 `store_unavailable`.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the binding store is unavailable; retry later",
        )
        .with_retry_after(STORE_RETRY_AFTER_S)
    }

    /// 500 `internal`: details stay in the log.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (logged)",
        )
    }
}

impl From<Invalid> for HttpError {
    fn from(e: Invalid) -> Self {
        let message = format!("{}: {}", e.field, e.message);
        HttpError::invalid_field(e.field, message)
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable");
                HttpError::store_unavailable()
            }
            StoreError::PoolNotFound(pool) => HttpError::new(
                StatusCode::NOT_FOUND,
                "pool_not_found",
                // Only a name that could be a pool's is echoed.
                if crate::bindings::validate_pool_name(&pool).is_ok() {
                    format!("pool '{pool}' not found")
                } else {
                    "no pool with that name".to_owned()
                },
            ),
            StoreError::PoolExists(pool) => HttpError::new(
                StatusCode::CONFLICT,
                "pool_exists",
                format!("pool '{pool}' already exists"),
            )
            .with_field("name"),
            StoreError::BindingNotFound => HttpError::new(
                StatusCode::NOT_FOUND,
                "binding_not_found",
                "no live binding with that id",
            ),
            StoreError::NumberNotFound => HttpError::new(
                StatusCode::NOT_FOUND,
                "number_not_found",
                "that number is not in this pool",
            ),
            StoreError::PoolExhausted { pool } => HttpError::new(
                StatusCode::CONFLICT,
                "pool_exhausted",
                format!("pool '{pool}' has no number free for these parties"),
            ),
            StoreError::ShipmentConflict { existing } => HttpError::new(
                StatusCode::CONFLICT,
                "shipment_conflict",
                format!("shipment already has live binding {existing} with different parties"),
            )
            .with_field("shipment_id"),
            StoreError::ReassignConflict { field } => HttpError::new(
                StatusCode::CONFLICT,
                "reassign_conflict",
                "the new party already holds this binding's number (live or cooling); \
                 create a new binding instead",
            )
            .with_field(field),
            StoreError::Invalid(inv) => inv.into(),
            StoreError::Corrupt(detail) => {
                tracing::error!(error = %detail, "store data unreadable");
                HttpError::internal()
            }
        }
    }
}

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    #[schema(inline)]
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail<'a> {
    #[schema(example = "pool_exhausted")]
    code: &'a str,
    message: &'a str,
    /// The input field at fault, e.g. `party_a` or `numbers[3].number`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<&'a str>,
}

impl HttpError {
    /// The JSON body of this error.
    pub fn body_json(&self) -> String {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_string()
        })
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body_json()).into_response();
        resp.extensions_mut()
            .insert(super::refusals::ErrorCode(self.code));
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn store_errors_map_to_documented_codes() {
        let cases: Vec<(StoreError, StatusCode, &str)> = vec![
            (
                StoreError::Unavailable("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
            ),
            (
                StoreError::PoolExhausted { pool: "p".into() },
                StatusCode::CONFLICT,
                "pool_exhausted",
            ),
            (
                StoreError::ShipmentConflict {
                    existing: uuid::Uuid::nil(),
                },
                StatusCode::CONFLICT,
                "shipment_conflict",
            ),
            (
                StoreError::ReassignConflict { field: "party_a" },
                StatusCode::CONFLICT,
                "reassign_conflict",
            ),
            (
                StoreError::PoolExists("p".into()),
                StatusCode::CONFLICT,
                "pool_exists",
            ),
            (
                StoreError::BindingNotFound,
                StatusCode::NOT_FOUND,
                "binding_not_found",
            ),
            (
                StoreError::Corrupt("secret detail".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        for (e, status, code) in cases {
            let h: HttpError = e.into();
            assert_eq!((h.status, h.code), (status, code));
            assert!(!h.message.contains("secret detail"));
        }
        let h: HttpError = StoreError::Unavailable("x".into()).into();
        assert_eq!(h.retry_after, Some(STORE_RETRY_AFTER_S));
    }

    #[test]
    fn body_has_the_one_shape() {
        let h = HttpError::invalid_field("party_a", "bad");
        let v: serde_json::Value = serde_json::from_str(&h.body_json()).unwrap();
        assert_eq!(v["error"]["code"], "invalid_field");
        assert_eq!(v["error"]["field"], "party_a");
        assert_eq!(v["error"]["message"], "bad");
        let v: serde_json::Value =
            serde_json::from_str(&HttpError::route_not_found().body_json()).unwrap();
        assert!(v["error"].get("field").is_none());
    }
}
