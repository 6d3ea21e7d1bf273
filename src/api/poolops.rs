//! The ops console's API (issue "Ops console"): pool overview with sizing advice,
//! paged number health, quarantine / release / retire with an audited reason,
//! (the sizing advice is in `sizing.rs`, shipment lookup with the auditor's
//! audited reveal in `shipments.rs`).
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

use super::auth::{role_name, POOL_READERS};
use super::bindings::{fmt_time, parse_number};
use super::error::HttpError;
use super::sizing::{sizing, SizingView};
use super::{json, AppState, Caller, PathParams, QueryPairs};
use crate::bindings::{
    now_ms, validate_pool_name, AllocationBucket, LoadQuantiles, NumberState, PoolOverview,
    PoolSpec,
};
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

fn pool_in_path(pool: &str) -> Result<(), HttpError> {
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

#[derive(Serialize)]
struct NumbersCount {
    active: u64,
    draining: u64,
    retired: u64,
    quarantined: u64,
}

#[derive(Serialize)]
struct PartyView {
    party: String,
    live_bindings: u64,
    exhaustion: f64,
}

#[derive(Serialize)]
struct BucketView {
    start: String,
    allocations: u64,
    exhausted: u64,
    live_sample: Option<u64>,
}

impl From<&AllocationBucket> for BucketView {
    fn from(b: &AllocationBucket) -> Self {
        Self {
            start: fmt_time(b.start),
            allocations: b.allocations,
            exhausted: b.exhausted,
            live_sample: b.live_sample,
        }
    }
}

#[derive(Serialize)]
struct Totals {
    allocations: u64,
    exhausted: u64,
}

#[derive(Serialize)]
struct OverviewView {
    pool: PoolSpec,
    numbers: NumbersCount,
    live_bindings: u64,
    cooling: u64,
    bindings_per_number: LoadQuantiles,
    busiest_parties: Vec<PartyView>,
    last_hour: Totals,
    last_day: Totals,
    hours: Vec<BucketView>,
    sizing: SizingView,
}

/// Publishes the overview as gauges (labels: pool name only).
fn export_metrics(o: &PoolOverview, s: &SizingView) {
    let pool = o.spec.name.clone();
    for (state, n) in [
        ("active", o.active),
        ("draining", o.draining),
        ("retired", o.retired),
        ("quarantined", o.quarantined),
    ] {
        metrics::gauge!("maskline_pool_numbers", "pool" => pool.clone(), "state" => state)
            .set(n as f64);
    }
    metrics::gauge!("maskline_pool_live_bindings", "pool" => pool.clone())
        .set(o.live_bindings as f64);
    metrics::gauge!("maskline_pool_cooling_holds", "pool" => pool.clone()).set(o.cooling as f64);
    for (q, v) in [
        ("min", o.per_number.min),
        ("median", o.per_number.median),
        ("p95", o.per_number.p95),
        ("max", o.per_number.max),
    ] {
        metrics::gauge!("maskline_pool_bindings_per_number", "pool" => pool.clone(), "quantile" => q)
            .set(v as f64);
    }
    metrics::gauge!("maskline_pool_peak_party_exhaustion", "pool" => pool.clone())
        .set(s.peak_party_exhaustion);
    metrics::gauge!("maskline_pool_allocations_last_hour", "pool" => pool.clone())
        .set(o.last_hour.allocations as f64);
    metrics::gauge!("maskline_pool_exhausted_last_hour", "pool" => pool.clone())
        .set(o.last_hour.exhausted as f64);
    metrics::gauge!("maskline_pool_recommended_numbers", "pool" => pool)
        .set(s.recommended_numbers as f64);
}

/// How often [`publish_metrics`] refreshes the pool gauges (and the live samples
/// behind the console's charts).
pub const METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Publishes every pool's overview as Prometheus gauges, every [`METRICS_EVERY`],
/// until dropped; each pass also samples the live total for the charts. A failed
/// pass is logged at DEBUG and retried on the next tick.
pub(crate) async fn publish_metrics(store: std::sync::Arc<dyn crate::store::BindingStore>) {
    let mut tick = tokio::time::interval(METRICS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pools = match store.list_pools().await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "pool metrics: cannot list pools");
                continue;
            }
        };
        for p in pools {
            match store.pool_overview(&p.name, now_ms()).await {
                Ok(o) => export_metrics(&o, &sizing(&o)),
                Err(e) => tracing::debug!(error = %e, "pool metrics: overview failed"),
            }
        }
    }
}

/// `GET /v1/pools/{pool}/overview`
pub(crate) async fn overview(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(pool): PathParams<String>,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    pool_in_path(&pool)?;
    query.only(&[])?;
    let o = st.store.pool_overview(&pool, now_ms()).await?;
    let sizing = sizing(&o);
    export_metrics(&o, &sizing);
    let in_service = o.active.max(1) as f64;
    let view = OverviewView {
        numbers: NumbersCount {
            active: o.active,
            draining: o.draining,
            retired: o.retired,
            quarantined: o.quarantined,
        },
        live_bindings: o.live_bindings,
        cooling: o.cooling,
        bindings_per_number: o.per_number,
        busiest_parties: o
            .busiest_parties
            .iter()
            .map(|p| PartyView {
                party: format!("party#{}", p.party.get(..8).unwrap_or(&p.party)),
                live_bindings: p.live_bindings,
                exhaustion: ((p.live_bindings as f64 / in_service) * 1000.0).round() / 1000.0,
            })
            .collect(),
        last_hour: Totals {
            allocations: o.last_hour.allocations,
            exhausted: o.last_hour.exhausted,
        },
        last_day: Totals {
            allocations: o.hours.iter().map(|h| h.allocations).sum(),
            exhausted: o.hours.iter().map(|h| h.exhausted).sum(),
        },
        hours: o.hours.iter().map(BucketView::from).collect(),
        sizing,
        pool: o.spec,
    };
    Ok(json::respond(StatusCode::OK, &view))
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

#[derive(Serialize)]
struct NumberView {
    number: String,
    area: Option<String>,
    state: NumberState,
    live_bindings: u64,
    calls_24h: u64,
    texts_24h: u64,
    answer_ratio: Option<f64>,
    short_call_ratio: Option<f64>,
    rejections_24h: u64,
    suspect: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<String>,
}

#[derive(Serialize)]
struct NumberListView {
    numbers: Vec<NumberView>,
    next_cursor: Option<String>,
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
pub(crate) async fn numbers(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(pool): PathParams<String>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Serialize)]
struct StateChange {
    number: String,
    state: NumberState,
    previous: NumberState,
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

/// `POST /v1/pools/{pool}/numbers/{number}/quarantine` `{"reason"}`
pub(crate) async fn quarantine(
    State(st): State<AppState>,
    caller: Caller,
    PathParams((pool, number)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    change_state(
        st,
        caller,
        pool,
        number,
        headers,
        body,
        NumberState::Quarantined,
    )
    .await
}

/// `POST /v1/pools/{pool}/numbers/{number}/release` `{"reason"}`
pub(crate) async fn release(
    State(st): State<AppState>,
    caller: Caller,
    PathParams((pool, number)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    change_state(st, caller, pool, number, headers, body, NumberState::Active).await
}

/// `POST /v1/pools/{pool}/numbers/{number}/retire` `{"reason"}`
pub(crate) async fn retire(
    State(st): State<AppState>,
    caller: Caller,
    PathParams((pool, number)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    change_state(
        st,
        caller,
        pool,
        number,
        headers,
        body,
        NumberState::Retired,
    )
    .await
}

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
