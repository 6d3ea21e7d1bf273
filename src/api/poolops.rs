//! The ops console's API (issue "Ops console"): paged number health, quarantine /
//! release / retire with an audited reason (the pool overview is in `overview.rs`,
//! its sizing advice in `sizing.rs`, shipment lookup with the auditor's audited
//! reveal in `shipments.rs`).
//!
//! Nothing here shows a party's number in clear except the reveal, which is
//! written to the audit log before it is answered (no audit → 503, no reveal).
//! Number health reads call and SMS records of the last 24 hours with a bounded
//! scan ([`HEALTH_SCAN`] newest records of each kind), so its cost does not grow
//! with retention.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use super::auth::{role_name, POOL_READERS};
use super::bindings::parse_number;
use super::error::HttpError;
use super::openapi::responses::{
    BadInput, BodyErrors, KeyedErrors, NotJson, PoolNotFound, PoolOrNumberNotFound,
};
use super::openapi::roles;
use super::params::{PoolNumberPath, PoolPath};
use super::{json, AppState, Caller, PathParams, QueryPairs};
use crate::bindings::{now_ms, validate_pool_name, NumberState};
use crate::config::Role;
use crate::events::{CallQuery, CallRecord, MessageQuery, MessageRecord};
use crate::store::AuditEntry;

/// Roles that take numbers in and out of service (each change audited).
pub const NUMBER_OPERATORS: &[Role] = &[Role::Ops, Role::Admin];
/// Newest records of each kind read for number health.
pub const HEALTH_SCAN: usize = 20_000;
/// Default and largest page of `GET /v1/pools/{pool}/numbers`.
const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 500;
/// Calls a number needs in 24 h before its answer ratio is judged.
const SUSPECT_MIN_CALLS: u64 = 5;
/// A number is suspect below this share of the pool's median answer ratio.
const SUSPECT_SHARE: f64 = 0.5;
/// Answered calls shorter than this are "short".
const SHORT_CALL_MS: u64 = 10_000;
const DAY_MS: i64 = 86_400_000;

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

/// A stated reason: 3 to 500 characters, not only spaces (kept trimmed).
pub(super) fn reason(raw: Option<&str>) -> Result<String, HttpError> {
    let raw = raw.unwrap_or("");
    let r = raw.trim();
    if r.is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            "reason: say why (it is written to the audit log)",
        )
        .with_field("reason"));
    }
    if !(3..=500).contains(&raw.chars().count()) {
        return Err(HttpError::invalid_field(
            "reason",
            "reason: 3 to 500 printable characters",
        ));
    }
    Ok(r.to_owned())
}

/// Health of one number over the last 24 hours.
#[derive(Default, Clone)]
struct Health {
    calls: u64,
    answered: u64,
    short: u64,
    rejected: u64,
    texts: u64,
}

impl Health {
    fn answer_ratio(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.answered as f64 / self.calls as f64)
    }
}

#[derive(Serialize, ToSchema)]
struct NumberView {
    /// Virtual number (ours; in clear).
    number: String,
    #[schema(required = true)]
    area: Option<String>,
    #[schema(inline)]
    state: NumberState,
    live_bindings: u64,
    calls_24h: u64,
    texts_24h: u64,
    #[schema(required = true)]
    answer_ratio: Option<f64>,
    /// Answered calls under 10 s / answered calls.
    #[schema(required = true)]
    short_call_ratio: Option<f64>,
    /// Calls no binding routed and texts not forwarded.
    rejections_24h: u64,
    suspect: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    evidence: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = NumberList)]
struct NumberListView {
    #[schema(inline, max_items = 500)]
    numbers: Vec<NumberView>,
    #[schema(required = true)]
    next_cursor: Option<String>,
    #[schema(required = true)]
    pool_median_answer_ratio: Option<f64>,
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn tally(calls: &[CallRecord], texts: &[MessageRecord], pool: &str) -> HashMap<String, Health> {
    let mut h: HashMap<String, Health> = HashMap::new();
    for c in calls.iter().filter(|c| c.pool.as_deref() == Some(pool)) {
        let e = h.entry(c.number.clone()).or_default();
        e.calls += 1;
        if c.answer_at.is_some() {
            e.answered += 1;
            if c.duration_ms < SHORT_CALL_MS {
                e.short += 1;
            }
        }
        if c.binding_id.is_none() && c.via.is_none() {
            e.rejected += 1;
        }
    }
    for t in texts.iter().filter(|t| t.pool.as_deref() == Some(pool)) {
        let e = h.entry(t.number.clone()).or_default();
        e.texts += 1;
        if matches!(
            t.status.as_str(),
            "not_forwarded" | "blocked" | "rate_limited"
        ) {
            e.rejected += 1;
        }
    }
    h
}

/// `GET /v1/pools/{pool}/numbers?cursor=&limit=`: a page of numbers with health.
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}/numbers",
    operation_id = "listNumbers",
    tag = "pools",
    summary = "A page of the pool's numbers with their health over the last 24 hours.",
    description = roles(
        POOL_READERS,
        "Numbers in number order; pass `next_cursor` as `cursor` for the next page. Health \
         comes from the newest 20,000 call and SMS records of the last 24 hours (a bounded \
         scan). A number whose answer ratio is under half the pool's median (5 calls or more) \
         is `suspect`, with the evidence.",
    ),
    params(
        PoolPath,
        ("cursor" = Option<String>, Query, max_length = 15, pattern = "^[0-9]*$",
            description = "`next_cursor` of the previous page (digits)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500,
            description = "Numbers per page, 1 to 500 (default 50)."),
    ),
    responses(
        (status = 200, description = "A page of numbers.", body = NumberListView),
        BadInput,
        KeyedErrors,
        PoolNotFound,
    ),
)]
pub(crate) async fn numbers(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(PoolPath { pool }): PathParams<PoolPath>,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    pool_in_path(&pool)?;
    query.only(&["cursor", "limit"])?;
    let limit = match query.get("limit") {
        None => PAGE_DEFAULT,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_MAX).contains(n))
            .ok_or_else(|| HttpError::invalid_field("limit", format!("limit: 1 to {PAGE_MAX}")))?,
    };
    let cursor = match query.get("cursor") {
        None | Some("") => None,
        Some(c) if c.len() <= 15 && c.bytes().all(|b| b.is_ascii_digit()) => Some(c),
        Some(_) => {
            return Err(HttpError::invalid_field(
                "cursor",
                "cursor: the next_cursor of the previous page",
            ))
        }
    };
    let page = st.store.list_numbers(&pool, cursor, limit).await?;
    let since = now_ms() - DAY_MS;
    let calls = st
        .records
        .query_calls(&CallQuery {
            since: Some(since),
            limit: HEALTH_SCAN,
            ..Default::default()
        })
        .await?;
    let texts = st
        .records
        .query_messages(&MessageQuery {
            since: Some(since),
            limit: HEALTH_SCAN,
            ..Default::default()
        })
        .await?;
    let health = tally(&calls, &texts, &pool);
    let pool_median = median(
        health
            .values()
            .filter(|h| h.calls >= SUSPECT_MIN_CALLS)
            .filter_map(Health::answer_ratio)
            .collect(),
    );
    let numbers = page
        .numbers
        .into_iter()
        .map(|n| {
            let x = n.number.expose().to_owned();
            let h = health.get(&x).cloned().unwrap_or_default();
            let ratio = h.answer_ratio();
            let suspect = match (ratio, pool_median) {
                (Some(r), Some(m)) if h.calls >= SUSPECT_MIN_CALLS && m > 0.0 => {
                    r < m * SUSPECT_SHARE
                }
                _ => false,
            };
            let evidence = suspect.then(|| {
                format!(
                    "answer ratio {:.0}% over {} calls in 24 h against a pool median of {:.0}%",
                    ratio.unwrap_or(0.0) * 100.0,
                    h.calls,
                    pool_median.unwrap_or(0.0) * 100.0
                )
            });
            NumberView {
                // Virtual numbers are ours: shown in clear.
                number: x,
                area: n.area,
                state: n.state,
                live_bindings: n.live_bindings,
                calls_24h: h.calls,
                texts_24h: h.texts,
                answer_ratio: ratio.map(round3),
                short_call_ratio: (h.answered > 0)
                    .then(|| round3(h.short as f64 / h.answered as f64)),
                rejections_24h: h.rejected,
                suspect,
                evidence,
            }
        })
        .collect();
    Ok(json::respond(
        StatusCode::OK,
        &NumberListView {
            numbers,
            next_cursor: page.next,
            pool_median_answer_ratio: pool_median.map(round3),
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Reason)]
struct ReasonBody {
    /// Why (written to the audit log).
    #[serde(default)]
    #[schema(
        required = true,
        nullable = false,
        min_length = 3,
        max_length = 500,
        pattern = r"\S"
    )]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = NumberStateChange)]
struct StateChange {
    number: String,
    #[schema(inline)]
    state: NumberState,
    #[schema(inline)]
    previous: NumberState,
}

/// The description of a number state change: who may, and the audit.
fn audited_change() -> String {
    roles(
        NUMBER_OPERATORS,
        "The reason is required; the change is written to the audit log (who, when, why) \
         before it is made: if the audit log cannot be written the answer is 503 and nothing \
         changes.",
    )
}

/// Writes an audit entry; a failure refuses the act (503), never skips the log.
pub(super) async fn audit(st: &AppState, entry: AuditEntry) -> Result<(), HttpError> {
    st.store.append_audit(entry).await.map_err(|e| {
        tracing::warn!(error = %e, "audit write failed; act refused");
        HttpError::from(e)
    })
}

async fn change_state(
    st: AppState,
    caller: Caller,
    pool: String,
    number: String,
    headers: HeaderMap,
    body: Body,
    to: NumberState,
) -> Result<Response, HttpError> {
    caller.require(NUMBER_OPERATORS)?;
    pool_in_path(&pool)?;
    json::require_json(&headers)?;
    let bytes = json::read_body(&headers, body, st.max_body, st.body_timeout).await?;
    let req: ReasonBody = json::parse(&bytes)?;
    let why = reason(req.reason.as_deref())?;
    let country = st.store.get_pool(&pool).await?.country;
    let x = parse_number(&number, "number", Some(country))?;
    let action = match to {
        NumberState::Active => "number.release",
        NumberState::Quarantined => "number.quarantine",
        NumberState::Retired => "number.retire",
    };
    // Only changes that can happen are audited: the number must be in this pool.
    if st.store.pool_of_number(&x).await?.as_deref() != Some(pool.as_str()) {
        return Err(crate::store::StoreError::NumberNotFound.into());
    }
    let now = now_ms();
    // Audit first: a change that cannot be recorded does not happen.
    audit(
        &st,
        AuditEntry {
            at: now,
            actor: caller.name.to_string(),
            role: role_name(caller.role).to_owned(),
            action: action.into(),
            target: x.expose().to_owned(),
            pool: Some(pool.clone()),
            reason: Some(why),
        },
    )
    .await?;
    let previous = st.store.set_number_state(&pool, &x, to).await?;
    tracing::info!(number = %x, action, "number state changed (audited)");
    Ok(json::respond(
        StatusCode::OK,
        &StateChange {
            number: x.expose().to_owned(),
            state: to,
            previous,
        },
    ))
}

/// One audited state change of a number: its own route and documented operation,
/// all handled by [`change_state`].
macro_rules! state_change {
    ($name:ident, $path:tt, $op:tt, $summary:tt, $state:expr) => {
        #[doc = concat!("`POST ", $path, "` `{\"reason\"}`")]
        #[utoipa::path(
            post,
            path = $path,
            operation_id = $op,
            tag = "pools",
            summary = $summary,
            description = audited_change(),
            params(PoolNumberPath),
            request_body(content(
                (ReasonBody = "application/json",
                    example = json!({"reason": "answer ratio collapsed; flagged as spam"})),
            )),
            responses(
                (status = 200, description = "The new and the previous state.", body = StateChange),
                BadInput,
                KeyedErrors,
                PoolOrNumberNotFound,
                BodyErrors,
                NotJson,
            ),
        )]
        pub(crate) async fn $name(
            State(st): State<AppState>,
            caller: Caller,
            PathParams(PoolNumberPath { pool, number }): PathParams<PoolNumberPath>,
            headers: HeaderMap,
            body: Body,
        ) -> Result<Response, HttpError> {
            change_state(st, caller, pool, number, headers, body, $state).await
        }
    };
}

state_change!(
    quarantine,
    "/v1/pools/{pool}/numbers/{number}/quarantine",
    "quarantineNumber",
    "Quarantine a number: no new bindings, existing ones live out (e.g. flagged as spam).",
    NumberState::Quarantined
);
state_change!(
    release,
    "/v1/pools/{pool}/numbers/{number}/release",
    "releaseNumber",
    "Return a quarantined or retired number to service.",
    NumberState::Active
);
state_change!(
    retire,
    "/v1/pools/{pool}/numbers/{number}/retire",
    "retireNumberAudited",
    "Retire a number: no new bindings, existing ones live out.",
    NumberState::Retired
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reasons_are_required_and_bounded() {
        assert_eq!(reason(None).unwrap_err().code, "missing_field");
        assert_eq!(reason(Some("  ")).unwrap_err().code, "missing_field");
        assert_eq!(reason(Some("no")).unwrap_err().code, "invalid_field");
        assert_eq!(
            reason(Some(&"x".repeat(501))).unwrap_err().code,
            "invalid_field"
        );
        assert_eq!(reason(Some("spam reports")).unwrap(), "spam reports");
    }
}
