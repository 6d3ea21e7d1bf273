//! `GET /v1/pools/{pool}/overview`: the ops overview of a pool (numbers by state,
//! live and cooling, bindings per number, busiest parties, allocations and
//! `pool_exhausted` answers by hour, sizing advice), and the Prometheus gauges
//! that publish the same figures for every pool.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::POOL_READERS;
use super::bindings::fmt_time;
use super::error::HttpError;
use super::openapi::responses::{BadInput, KeyedErrors, PoolNotFound};
use super::openapi::roles;
use super::params::PoolPath;
use super::poolops::pool_in_path;
use super::sizing::{sizing, SizingView};
use super::{json, AppState, Caller, PathParams, QueryPairs};
use crate::bindings::{now_ms, AllocationBucket, LoadQuantiles, PoolOverview, PoolSpec};

#[derive(Serialize, ToSchema)]
struct NumbersCount {
    active: u64,
    /// Retired, still carrying live bindings.
    draining: u64,
    retired: u64,
    quarantined: u64,
}

#[derive(Serialize, ToSchema)]
struct PartyView {
    /// Opaque id (keyed hash prefix), never a number.
    party: String,
    live_bindings: u64,
    /// Share of the numbers in service this party holds (1 = exhausted for it).
    exhaustion: f64,
}

#[derive(Serialize, ToSchema)]
struct BucketView {
    #[schema(format = DateTime)]
    start: String,
    allocations: u64,
    exhausted: u64,
    /// Live bindings last sampled in this hour (sampled when the overview is read).
    #[schema(required = true)]
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

#[derive(Serialize, ToSchema)]
struct Totals {
    allocations: u64,
    exhausted: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PoolOverview)]
struct OverviewView {
    pool: PoolSpec,
    #[schema(inline)]
    numbers: NumbersCount,
    live_bindings: u64,
    /// (party, number) holds in their cooling period (minute resolution).
    cooling: u64,
    #[schema(inline)]
    bindings_per_number: LoadQuantiles,
    #[schema(inline, max_items = 10)]
    busiest_parties: Vec<PartyView>,
    #[schema(inline)]
    last_hour: Totals,
    #[schema(inline)]
    last_day: Totals,
    /// The last 24 hours, oldest first.
    #[schema(inline)]
    hours: Vec<BucketView>,
    #[schema(inline)]
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
#[utoipa::path(
    get,
    path = "/v1/pools/{pool}/overview",
    operation_id = "poolOverview",
    tag = "pools",
    summary = "Pool overview for ops: numbers by state, live and cooling, bindings per number, \
               busiest parties (masked) and how close each is to exhausting the pool, \
               allocations and pool_exhausted answers over the last hour and day, and sizing \
               advice. Answered from running counters, never a scan of bindings.",
    description = roles(
        POOL_READERS,
        "Also publishes the figures as Prometheus gauges (`maskline_pool_*`).",
    ),
    params(PoolPath),
    responses(
        (status = 200, description = "Overview.", body = OverviewView),
        BadInput,
        KeyedErrors,
        PoolNotFound,
    ),
)]
pub(crate) async fn overview(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(PoolPath { pool }): PathParams<PoolPath>,
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
