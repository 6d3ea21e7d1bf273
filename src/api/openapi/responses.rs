//! The error answers the operations share, as `utoipa::IntoResponses` markers a
//! handler's `#[utoipa::path(responses(...))]` lists next to its own answers. Each
//! marker is an uninhabited type: it only names a set of (status, description)
//! pairs, all with the one JSON error shape ([`ErrorBody`]).

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref};
use utoipa::ToSchema;

use crate::api::error::ErrorBody;

/// A response with the JSON error shape and `description`.
pub(crate) fn error(description: &str) -> ResponseBuilder {
    let schema = Ref::from_schema_name(ErrorBody::name());
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(schema)).build(),
    )
}

/// An error response that also carries `Retry-After` (seconds), described when
/// `header` is given.
pub(crate) fn error_retry_after(description: &str, header: Option<&str>) -> ResponseBuilder {
    let integer = ObjectBuilder::new().schema_type(Type::Integer).build();
    error(description).header(
        "Retry-After",
        HeaderBuilder::new()
            .schema(integer)
            .description(header)
            .build(),
    )
}

/// Declares uninhabited markers whose `IntoResponses` is a fixed list of
/// (status, response) pairs; handler modules use it for their own errors too.
macro_rules! shared_responses {
    ($($(#[$doc:meta])* $name:ident { $($status:literal => $resp:expr),+ $(,)? })+) => {$(
        $(#[$doc])*
        pub(crate) enum $name {}

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                std::collections::BTreeMap::from([$((
                    $status.to_owned(),
                    utoipa::openapi::RefOr::T(utoipa::openapi::response::Response::from($resp)),
                )),+])
            }
        }
    )+};
}
pub(crate) use shared_responses;

/// 400 of any operation with input.
pub(crate) const BAD_INPUT: &str = "Invalid input (`invalid_json`, `invalid_field`, \
     `missing_field`, `unknown_field`, ...); `field` names the input at fault.";
/// 500: the same for every operation.
pub(crate) const INTERNAL: &str =
    "Server fault (`internal`): logged in full; the answer carries no detail.";
/// 503 of an operation that needs the store.
pub(crate) const STORE_UNAVAILABLE: &str = "The store is unavailable (`store_unavailable`).";

fn unauthorized() -> ResponseBuilder {
    error("Missing or unknown API key (`unauthorized`).")
}

fn forbidden() -> ResponseBuilder {
    error("The key's role may not do this (`forbidden`).")
}

fn rate_limited() -> ResponseBuilder {
    error_retry_after(
        "Rate limit of this API key exceeded (`rate_limited`).",
        Some("Seconds to wait."),
    )
}

fn store_unavailable() -> ResponseBuilder {
    error_retry_after(STORE_UNAVAILABLE, None)
}

shared_responses! {
    /// 400 `invalid_*` / `missing_field` / `unknown_field`.
    BadInput { "400" => error(BAD_INPUT) }
    /// 401: no key, or one the relay does not know.
    Unauthorized { "401" => unauthorized() }
    /// 403: the key's role may not do this.
    Forbidden { "403" => forbidden() }
    /// 429 with `Retry-After`.
    RateLimited { "429" => rate_limited() }
    /// 500.
    Internal { "500" => error(INTERNAL) }
    /// What every operation behind an API key may answer whatever it does: 401,
    /// 403, 429, 500 and 503.
    KeyedErrors {
        "401" => unauthorized(),
        "403" => forbidden(),
        "429" => rate_limited(),
        "500" => error(INTERNAL),
        "503" => store_unavailable(),
    }
    /// 408 and 413 of an operation that reads a body.
    BodyErrors {
        "408" => error(
            "The body did not arrive within `api.body_timeout_ms` (`request_timeout`); \
             the connection is closed.",
        ),
        "413" => error("Body too large (`body_too_large`)."),
    }
    /// 415 of an operation that takes JSON only.
    NotJson { "415" => error("Content-Type is not JSON.") }
    /// 415 of an operation that takes JSON or CSV.
    NotJsonOrCsv { "415" => error("Content-Type is neither JSON nor text/csv.") }
    /// 404 of an operation on a pool.
    PoolNotFound { "404" => error("No such pool (`pool_not_found`).") }
    /// 404 of an operation on a number of a pool.
    PoolOrNumberNotFound {
        "404" => error("No such pool or number (`pool_not_found`, `number_not_found`).")
    }
    /// 404 of an operation on a binding.
    BindingNotFound { "404" => error("No live binding with that id (`binding_not_found`).") }
}
