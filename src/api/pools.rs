//! `/v1/pools`: create and list pools, statistics, retiring a number, and the route
//! troubleshooting view (number import is in `import.rs`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{POOL_READERS, POOL_WRITERS};
use super::bindings::{fmt_time, parse_number};
use super::error::HttpError;
use super::openapi::responses::{
    error, shared_responses, BadInput, BodyErrors, KeyedErrors, NotJson, PoolNotFound,
    PoolOrNumberNotFound,
};
use super::openapi::roles;
use super::params::{PoolNumberPath, PoolPath};
use super::{json, no_content, AppState, Caller, PathParams, QueryPairs};
use crate::bindings::{
    now_ms, validate_pool_name, NumberState, PoolSpec, DEFAULT_COOLING_S, DEFAULT_EXTENSION_LEN,
    DEFAULT_GRACE_S, DEFAULT_MAX_BINDINGS_PER_NUMBER,
};

/// Longest grace or cooling accepted (a year), so typos do not pin numbers forever.
const MAX_PERIOD_S: u64 = 366 * 24 * 3600;

/// Refuses a pool name in a path that no pool can have (400 `invalid_path`,
/// without echoing it).
pub(super) fn pool_in_path(pool: &str) -> Result<(), HttpError> {
    validate_pool_name(pool).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("pool: not a pool name: it {}", e.message),
        )
        .with_field("pool")
    })
}

/// Optional fields may be omitted; `null` is refused (400 `invalid_field`) like any
/// other wrong type.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "sh-express",
    "country": 86,
    "grace_s": 259200,
    "cooling_s": 86400,
    "max_bindings_per_number": 200,
    "allow_foreign_parties": false
}))]
struct CreatePool {
    /// 1 to 64 letters, digits, `_` or `-`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    name: String,
    /// Country calling code: every virtual number of the pool must be of this
    /// country (others are import errors), national-format numbers are read in it,
    /// and parties must be of it unless allow_foreign_parties.
    #[schema(minimum = 1, maximum = 999)]
    country: u16,
    /// Seconds a delivered binding stays live, 0 to 31622400 (366 days).
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, maximum = 31622400, default = json!(DEFAULT_GRACE_S))]
    grace_s: Option<u64>,
    /// Seconds a number rests before it may pair the same parties again, 0 to
    /// 31622400 (366 days).
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, maximum = 31622400, default = json!(DEFAULT_COOLING_S))]
    cooling_s: Option<u64>,
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(
        nullable = false,
        minimum = 1,
        maximum = 4294967295u64,
        format = Int64,
        default = json!(DEFAULT_MAX_BINDINGS_PER_NUMBER)
    )]
    max_bindings_per_number: Option<u32>,
    /// Whether parties (courier, customer) may have numbers of other countries.
    /// When false, a party of another country is refused with 400 invalid_field
    /// naming party_a or party_b.
    #[serde(default, deserialize_with = "json::non_null")]
    #[schema(nullable = false, default = false)]
    allow_foreign_parties: Option<bool>,
    /// Whether new bindings get an extension on their number unless the request
    /// says otherwise.
    #[serde(default)]
    #[schema(nullable = false, default = false)]
    extensions: Option<bool>,
    /// Digits of an extension (1 to 6).
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 6, default = json!(DEFAULT_EXTENSION_LEN))]
    extension_len: Option<u8>,
}

shared_responses! {
    /// 409 of `POST /v1/pools`.
    PoolExists { "409" => error("A pool with that name exists (`pool_exists`).") }
    /// 400 of `GET /v1/pools/{pool}`.
    InvalidPoolPath { "400" => error("The path's pool is not a pool name (`invalid_path`).") }
    /// 404 of the route view.
    NoRoute {
        "404" => error("No live binding routes it (`no_route`), or no such pool (`pool_not_found`).")
    }
}

/// `POST /v1/pools`
#[utoipa::path(
    post,
    path = "/v1/pools",
    operation_id = "createPool",
    tag = "pools",
    summary = "Create a pool.",
    description = roles(POOL_WRITERS, ""),
    request_body = CreatePool,
    responses(
        (status = 201, description = "Created.", body = PoolSpec, links(
            ("PoolStats" = (operation_id = "poolStats", parameters(("pool" = "$response.body#/name")))),
            ("ImportNumbers" = (operation_id = "importNumbers", parameters(("pool" = "$response.body#/name")))),
        )),
        BadInput,
        KeyedErrors,
        PoolExists,
        BodyErrors,
        NotJson,
    ),
)]
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    caller.require(POOL_WRITERS)?;
    json::require_json(&headers)?;
    let bytes = json::read_body(&headers, body, st.max_body, st.body_timeout).await?;
    let req: CreatePool = json::parse(&bytes)?;
    validate_pool_name(&req.name)?;
    if !(1..=999).contains(&req.country) {
        return Err(HttpError::invalid_field(
            "country",
            "country: a country calling code, 1 to 999",
        ));
    }
    let grace_s = req.grace_s.unwrap_or(DEFAULT_GRACE_S);
    let cooling_s = req.cooling_s.unwrap_or(DEFAULT_COOLING_S);
    for (field, v) in [("grace_s", grace_s), ("cooling_s", cooling_s)] {
        if v > MAX_PERIOD_S {
            return Err(HttpError::invalid_field(
                field,
                format!("{field}: at most {MAX_PERIOD_S} seconds"),
            ));
        }
    }
    let max = req
        .max_bindings_per_number
        .unwrap_or(DEFAULT_MAX_BINDINGS_PER_NUMBER);
    if max == 0 {
        return Err(HttpError::invalid_field(
            "max_bindings_per_number",
            "max_bindings_per_number: must be at least 1",
        ));
    }
    let spec = PoolSpec {
        name: req.name,
        country: req.country,
        grace_s,
        cooling_s,
        max_bindings_per_number: max,
        allow_foreign_parties: req.allow_foreign_parties.unwrap_or(false),
        extensions: req.extensions.unwrap_or(false),
        extension_len: req.extension_len.unwrap_or(DEFAULT_EXTENSION_LEN),
    };
    st.store.create_pool(spec.clone()).await?;
    Ok(json::respond(StatusCode::CREATED, &spec))
}

#[derive(Serialize, ToSchema)]
struct PoolList {
    pools: Vec<PoolSpec>,
}

/// `GET /v1/pools`
#[utoipa::path(
    get,
    path = "/v1/pools",
    operation_id = "listPools",
    tag = "pools",
    summary = "List pools.",
    description = roles(POOL_READERS, ""),
    responses((status = 200, description = "Pools.", body = PoolList), KeyedErrors),
)]
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    let pools = st.store.list_pools().await?;
    Ok(json::respond(StatusCode::OK, &PoolList { pools }))
}

#[derive(Serialize, ToSchema)]
struct NumberLoadView {
    /// Virtual number (ours; in clear).
    number: String,
    area: Option<String>,
    #[schema(inline)]
    state: NumberState,
    live_bindings: u64,
}

#[derive(Serialize, ToSchema)]
struct PartyLoadView {
    /// Opaque id (keyed hash prefix), never a number.
    party: String,
    live_bindings: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PoolStats)]
struct StatsView {
    pool: PoolSpec,
    numbers: u64,
    active: u64,
    retired: u64,
    live_bindings: u64,
    /// (party, number) holds in their cooling period.
    cooling: u64,
    #[schema(inline)]
    per_number: Vec<NumberLoadView>,
    #[schema(inline)]
    busiest_parties: Vec<PartyLoadView>,
}

/// `GET /v1/pools/{pool}`
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}",
    operation_id = "poolStats",
    tag = "pools",
    summary = "Pool statistics.",
    description = roles(POOL_READERS, ""),
    params(PoolPath),
    responses(
        (status = 200, description = "Statistics.", body = StatsView),
        InvalidPoolPath,
        KeyedErrors,
        PoolNotFound,
    ),
)]
pub(crate) async fn stats(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(PoolPath { pool }): PathParams<PoolPath>,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    pool_in_path(&pool)?;
    let s = st.store.pool_stats(&pool, now_ms()).await?;
    let view = StatsView {
        pool: s.spec,
        numbers: s.numbers,
        active: s.active_numbers,
        retired: s.retired_numbers,
        live_bindings: s.live_bindings,
        cooling: s.cooling,
        per_number: s
            .per_number
            .into_iter()
            .map(|n| NumberLoadView {
                // Virtual numbers are ours: shown in clear.
                number: n.number.expose().to_owned(),
                area: n.area,
                state: n.state,
                live_bindings: n.live_bindings,
            })
            .collect(),
        busiest_parties: s
            .busiest_parties
            .into_iter()
            .map(|p| PartyLoadView {
                party: p.party,
                live_bindings: p.live_bindings,
            })
            .collect(),
    };
    Ok(json::respond(StatusCode::OK, &view))
}

/// `DELETE /v1/pools/{pool}/numbers/{number}`: retire (drain) a number.
#[utoipa::path(
    delete,
    path = "/v1/pools/{pool}/numbers/{number}",
    operation_id = "retireNumber",
    tag = "pools",
    summary = "Retire (drain) a number: no new bindings, live ones continue.",
    description = roles(POOL_WRITERS, ""),
    params(PoolNumberPath),
    responses(
        (status = 204, description = "Retired."),
        BadInput,
        KeyedErrors,
        PoolOrNumberNotFound,
    ),
)]
pub(crate) async fn retire(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(PoolNumberPath { pool, number }): PathParams<PoolNumberPath>,
) -> Result<Response, HttpError> {
    caller.require(POOL_WRITERS)?;
    pool_in_path(&pool)?;
    let country = st.store.get_pool(&pool).await?.country;
    let number = parse_number(&number, "number", Some(country))?;
    st.store.retire_number(&pool, &number).await?;
    tracing::info!(%number, "number retired");
    Ok(no_content())
}

#[derive(Serialize, ToSchema)]
#[schema(as = Route)]
struct RouteView {
    binding_id: uuid::Uuid,
    pool: String,
    number: String,
    /// Masked.
    callee: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// `GET /v1/pools/{pool}/numbers/{number}/route?caller=...`
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}/numbers/{number}/route",
    operation_id = "route",
    tag = "pools",
    summary = "Where a call or text from `caller` to this number would go (callee masked).",
    description = roles(POOL_READERS, ""),
    params(
        PoolNumberPath,
        ("caller" = String, Query,
            min_length = 1,
            max_length = 32,
            pattern = r"^[ ().-]*(\+[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|[0-9]([ ().-]*[0-9]){4,14})[ ().-]*$",
            example = "+8613800138000",
            description = "The calling party (URL-encode the `+` as `%2B`; a leading space is read \
                as `+`). A phone number: E.164 (`+8613800138000`), or with `00` for `+`, or in \
                national format for the pool's country; spaces, `-`, `.`, `(` and `)` are \
                ignored. At most 32 characters."),
    ),
    responses(
        (status = 200, description = "The route.", body = RouteView),
        BadInput,
        KeyedErrors,
        NoRoute,
    ),
)]
pub(crate) async fn route(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(PoolNumberPath { pool, number }): PathParams<PoolNumberPath>,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    pool_in_path(&pool)?;
    query.only(&["caller"])?;
    let raw = query.get("caller").ok_or_else(|| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            "query parameter 'caller' is required",
        )
        .with_field("caller")
    })?;
    // An unencoded '+' in a query string arrives as a space.
    let raw = match raw.strip_prefix(' ') {
        Some(rest) => format!("+{rest}"),
        None => raw.to_owned(),
    };
    let country = st.store.get_pool(&pool).await?.country;
    let number = parse_number(&number, "number", Some(country))?;
    let from = parse_number(&raw, "caller", Some(country))?;
    match st.store.route(&pool, &number, &from, now_ms()).await? {
        Some(r) => Ok(json::respond(
            StatusCode::OK,
            &RouteView {
                binding_id: r.binding_id,
                pool: r.pool,
                number: number.expose().to_owned(),
                callee: r.callee.masked(),
                expires_at: fmt_time(r.expires_at),
            },
        )),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "no_route",
            "no live binding routes this caller on this number",
        )),
    }
}
