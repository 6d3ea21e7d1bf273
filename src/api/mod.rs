//! The HTTP API: hyper 1 server (HTTP/1.1 and HTTP/2, optional rustls TLS), an axum
//! router, API-key auth with roles, per-key rate limits, one JSON error shape,
//! request metrics and an OpenAPI document.
//!
//! ## Entry point (what `maskline serve` calls)
//! ```no_run
//! # async fn run(cfg: maskline::config::ApiConfig,
//! #              store: std::sync::Arc<dyn maskline::store::BindingStore>) -> Result<(), maskline::api::ApiError> {
//! use maskline::api::Api;
//! // `metrics`: the handle from `maskline::telemetry::init` (installed once per process).
//! # let metrics = maskline::telemetry::prometheus_builder().unwrap().build_recorder().handle();
//! let api = Api::new(&cfg, store, Some(metrics))?;           // validates keys, loads TLS
//! let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
//! api.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//! `serve` returns after `shutdown` resolves and every in-flight request has been
//! answered (connections are drained gracefully, at most [`DRAIN_TIMEOUT`]).
//!
//! ## Endpoints
//! Everything under `/v1` is JSON and needs `Authorization: Bearer <key>` (roles in
//! [`auth`]) except `/v1/openapi.json`. `/healthz` (process up), `/readyz` (store
//! answers `ping`, else 503) and `/metrics` need no key: they carry no numbers, no
//! party ids and no key names, and probes and Prometheus scrapers usually cannot
//! send a key. The OpenAPI document needs no key either: it is the published
//! contract and holds no data. Protect `/metrics` at the network level if the
//! request counts themselves are sensitive. Rate limits apply per API key, so the
//! open endpoints are not rate limited.
//!
//! ## Privacy
//! Virtual numbers (ours) appear in clear; parties are masked in every response
//! except an auditor's `GET /v1/bindings/{id}?reveal=true`, which is written to the
//! audit log before it is answered. Logs carry the route template, never the path,
//! and metrics labels are route templates, methods and status codes only. The SMS
//! webhooks (`/v1/sms/*`) are authenticated by the provider's HMAC signature
//! instead of an API key ([`crate::sms::http`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use futures::FutureExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::config::ApiConfig;
use crate::store::BindingStore;

pub mod auth;
mod binding_view;
mod bindings;
mod calls;
mod conn;
mod console;
pub mod error;
mod import;
pub mod json;
mod label;
pub mod openapi;
mod ops;
mod overview;
mod params;
mod poolops;
mod pools;
mod preface;
pub mod ratelimit;
mod refusals;
mod server;
mod shipments;
mod sizing;
mod sms;

pub use auth::{key_hash, Caller};
pub use error::HttpError;
pub use refusals::SUMMARY_EVERY as REFUSAL_SUMMARY_EVERY;
pub use server::{DRAIN_TIMEOUT, METRIC_CONNECTIONS_REFUSED};

/// Failures setting up or running the server (not request errors: see [`HttpError`]).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A configuration value is unusable; `field` names it (e.g. `api.keys[0].hash`).
    #[error("{field}: {message}")]
    Config {
        /// The config field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// TLS certificate or key could not be loaded.
    #[error("api.tls: {0}")]
    Tls(String),
    /// Socket failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Metric: requests by method, route template and status.
pub const METRIC_REQUESTS: &str = "maskline_http_requests_total";
/// Metric: request latency histogram (seconds) by method and route template.
pub const METRIC_LATENCY: &str = "maskline_http_request_duration_seconds";
/// Metric: binding creations by outcome (`new`, `existing`, `pool_exhausted`, ...).
pub const METRIC_BINDINGS_CREATED: &str = "maskline_bindings_created_total";

/// Shared state of all handlers.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn BindingStore>,
    pub(crate) records: Arc<dyn crate::events::RecordStore>,
    pub(crate) keys: auth::KeyTable,
    pub(crate) limits: ratelimit::RateLimits,
    pub(crate) metrics: Option<PrometheusHandle>,
    pub(crate) max_body: usize,
    /// Longest time a client may take to send a request body.
    pub(crate) body_timeout: std::time::Duration,
    /// Refused requests since the last INFO summary.
    pub(crate) refusals: Arc<refusals::Refusals>,
    /// The SMS relay's webhook handle, once SMS runs ([`Api::with_sms`]).
    pub(crate) sms: Arc<std::sync::OnceLock<crate::sms::Gateway>>,
    /// Which digits of a customer's number a label shows.
    pub(crate) label_rule: crate::label::MaskRule,
}

/// Cheap-to-clone handle on [`Inner`].
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The configured API, ready to serve.
pub struct Api {
    router: Router,
    routes: Vec<(&'static str, &'static [&'static str])>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: server::Limits,
    refusals: Arc<refusals::Refusals>,
    summary_every: Duration,
    sms: Arc<std::sync::OnceLock<crate::sms::Gateway>>,
    /// The store whose pools `serve` publishes as gauges (when metrics are on).
    pool_metrics: Option<Arc<dyn BindingStore>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("routes", &self.routes.len())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Api {
    /// Builds the API from `[api]` config: parses key hashes, sets rate limits and
    /// loads TLS material (when `cfg.tls` is set). `metrics` is the handle whose
    /// `render()` `/metrics` serves; without it `/metrics` answers 404.
    pub fn new(
        cfg: &ApiConfig,
        store: Arc<dyn BindingStore>,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Api, ApiError> {
        let records = Arc::new(crate::events::MemoryRecords::new(
            10_000,
            std::time::Duration::from_secs(30 * 86_400),
        ));
        Self::with_records(cfg, store, records, metrics)
    }

    /// Like [`Api::new`], with the store of call records that `GET /v1/calls` reads.
    pub fn with_records(
        cfg: &ApiConfig,
        store: Arc<dyn BindingStore>,
        records: Arc<dyn crate::events::RecordStore>,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Api, ApiError> {
        if cfg.max_body_bytes == 0 {
            return Err(ApiError::Config {
                field: "api.max_body_bytes".into(),
                message: "must be at least 1".into(),
            });
        }
        let keys = auth::KeyTable::from_config(&cfg.keys)?;
        if keys.is_empty() {
            tracing::warn!("no API keys configured: every /v1 request will be refused");
        }
        let limits = ratelimit::RateLimits::new(cfg.rate_per_key_per_s, cfg.rate_burst)?;
        let tls = match &cfg.tls {
            Some(t) => Some(server::tls_acceptor(&t.cert, &t.key)?),
            None => None,
        };
        let refusals = Arc::new(refusals::Refusals::default());
        let sms = Arc::new(std::sync::OnceLock::new());
        let pool_metrics = metrics.as_ref().map(|_| store.clone());
        let state = AppState(Arc::new(Inner {
            store,
            records,
            keys,
            limits,
            metrics,
            max_body: cfg.max_body_bytes,
            body_timeout: Duration::from_millis(cfg.body_timeout_ms),
            refusals: refusals.clone(),
            sms: sms.clone(),
            label_rule: crate::label::MaskRule {
                keep_first: cfg.label_keep_first,
                keep_last: cfg.label_keep_last,
            },
        }));
        let (router, routes) = build_router(state);
        let limits = server::Limits {
            header_timeout: Duration::from_millis(cfg.header_timeout_ms),
            idle_timeout: Duration::from_millis(cfg.idle_timeout_ms),
            max_connections: cfg.max_connections.max(1),
        };
        Ok(Api {
            router,
            routes,
            tls,
            limits,
            refusals,
            summary_every: refusals::SUMMARY_EVERY,
            sms,
            pool_metrics,
        })
    }

    /// Serves the SMS webhooks (`/v1/sms/inbound`, `/v1/sms/receipts`) through
    /// `gateway`; without it they answer `404 sms_disabled`.
    pub fn with_sms(self, gateway: crate::sms::Gateway) -> Self {
        let _ = self.sms.set(gateway);
        self
    }

    /// Every route the router serves: path template and methods. The OpenAPI
    /// document is checked against this list by the tests.
    pub fn routes(&self) -> &[(&'static str, &'static [&'static str])] {
        &self.routes
    }

    /// How often refused requests (4xx, logged one by one only at DEBUG) are summed
    /// up in one INFO line (default [`REFUSAL_SUMMARY_EVERY`]).
    pub fn refusal_summary_every(mut self, every: Duration) -> Self {
        self.summary_every = every.max(Duration::from_millis(10));
        self
    }

    /// Whether this API serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves HTTP/1.1 and HTTP/2 (over TLS when configured) on `listener` until
    /// `shutdown` resolves; then stops accepting, lets in-flight requests finish
    /// (up to [`DRAIN_TIMEOUT`]) and returns.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ApiError> {
        let summaries = tokio::spawn(self.refusals.clone().run(self.summary_every));
        let gauges = self
            .pool_metrics
            .map(|store| tokio::spawn(overview::publish_metrics(store)));
        let result = server::serve(self.router, self.tls, self.limits, listener, shutdown).await;
        summaries.abort();
        if let Some(g) = gauges {
            g.abort();
        }
        self.refusals.summarize();
        result
    }
}

/// Router plus the table of what it serves, built together so they cannot diverge.
struct Routes {
    router: Router<AppState>,
    table: Vec<(&'static str, &'static [&'static str])>,
}

impl Routes {
    fn add(
        mut self,
        path: &'static str,
        methods: &'static [&'static str],
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, handler);
        self.table.push((path, methods));
        self
    }
}

fn build_router(state: AppState) -> (Router, Vec<(&'static str, &'static [&'static str])>) {
    use axum::routing::delete;
    let r = Routes {
        router: Router::new(),
        table: Vec::new(),
    }
    .add("/healthz", &["GET"], get(ops::healthz))
    .add("/readyz", &["GET"], get(ops::readyz))
    .add("/metrics", &["GET"], get(ops::metrics))
    .add("/v1/openapi.json", &["GET"], get(ops::openapi))
    .add("/v1/audit", &["GET"], get(ops::audit))
    .add("/v1/calls", &["GET"], get(calls::list))
    .add("/v1/messages", &["GET"], get(sms::list))
    .add("/v1/sms/inbound", &["POST"], post(sms::inbound))
    .add("/v1/sms/receipts", &["POST"], post(sms::receipts))
    .add(
        "/v1/pools",
        &["GET", "POST"],
        get(pools::list).post(pools::create),
    )
    .add("/v1/pools/{pool}", &["GET"], get(pools::stats))
    .add(
        "/v1/pools/{pool}/overview",
        &["GET"],
        get(overview::overview),
    )
    .add(
        "/v1/pools/{pool}/numbers",
        &["GET", "POST"],
        get(poolops::numbers).post(import::import),
    )
    .add(
        "/v1/pools/{pool}/numbers/{number}/quarantine",
        &["POST"],
        post(poolops::quarantine),
    )
    .add(
        "/v1/pools/{pool}/numbers/{number}/release",
        &["POST"],
        post(poolops::release),
    )
    .add(
        "/v1/pools/{pool}/numbers/{number}/retire",
        &["POST"],
        post(poolops::retire),
    )
    .add("/v1/shipments/{id}", &["GET"], get(shipments::shipment))
    .add(
        "/v1/pools/{pool}/numbers/{number}",
        &["DELETE"],
        delete(pools::retire),
    )
    .add(
        "/v1/pools/{pool}/numbers/{number}/route",
        &["GET"],
        get(pools::route),
    )
    .add(
        "/v1/bindings",
        &["GET", "POST"],
        get(bindings::list).post(bindings::create),
    )
    .add(
        "/v1/bindings/{id}",
        &["GET", "PATCH", "DELETE"],
        get(bindings::get)
            .patch(bindings::update)
            .delete(bindings::delete),
    )
    .add("/v1/bindings/{id}/label", &["GET"], get(label::get))
    .add(
        "/v1/bindings/{id}/delivered",
        &["POST"],
        post(bindings::delivered),
    );
    let router = console::routes(r.router)
        .fallback(|| async { HttpError::route_not_found() })
        .method_not_allowed_fallback(|| async { HttpError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state);
    (router, r.table)
}

/// One span per request (method, route template, key name), request metrics, and
/// a log line with status and latency: WARN for 5xx, DEBUG otherwise; refusals
/// (4xx) are also counted for the periodic INFO summary ([`refusals`]).
async fn observe(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let key_slot = refusals::KeySlot::default();
    req.extensions_mut().insert(key_slot.clone());
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    // Never the raw path: it may hold a number.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "http",
        http.method = %method,
        http.route = %route,
        api.key = tracing::field::Empty,
        http.status = tracing::field::Empty,
    );
    // A bug must not cost the client its connection: a panic becomes a logged 500.
    let resp = match AssertUnwindSafe(next.run(req).instrument(span.clone()))
        .catch_unwind()
        .await
    {
        Ok(resp) => resp,
        Err(_) => {
            span.in_scope(|| tracing::error!("handler panicked"));
            HttpError::internal().into_response()
        }
    };
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    span.record("http.status", status);
    metrics::counter!(METRIC_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!(METRIC_LATENCY, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    let micros = elapsed.as_micros() as u64;
    if (400..500).contains(&status) {
        let code = resp
            .extensions()
            .get::<refusals::ErrorCode>()
            .map_or("other", |c| c.0);
        st.refusals
            .record(status, code, key_slot.0.get().map(|k| &**k));
    }
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, latency_us = micros, "request failed");
        } else if status >= 400 {
            tracing::debug!(status, latency_us = micros, "request refused");
        } else {
            tracing::debug!(status, latency_us = micros, "request");
        }
    });
    resp
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, HttpError> {
        let caller = st.keys.authenticate(&parts.headers)?;
        tracing::Span::current().record("api.key", &*caller.name);
        if let Some(slot) = parts.extensions.get::<refusals::KeySlot>() {
            let _ = slot.0.set(caller.name.clone());
        }
        st.limits.check(caller.index)?;
        Ok(caller)
    }
}

/// Path parameters with our error shape on rejection.
pub(crate) struct PathParams<T>(pub(crate) T);

impl<T> FromRequestParts<AppState> for PathParams<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, HttpError> {
        Path::<T>::from_request_parts(parts, st)
            .await
            .map(|Path(t)| PathParams(t))
            .map_err(|_| {
                HttpError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_path",
                    "a path segment could not be decoded",
                )
            })
    }
}

/// Query parameters as name/value pairs; each handler reads the ones it knows and
/// refuses the rest (`unknown_field`).
pub(crate) struct QueryPairs(pub(crate) Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _st: &S) -> Result<Self, HttpError> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(v)| QueryPairs(v))
            .map_err(|_| {
                HttpError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_query",
                    "the query string could not be decoded",
                )
            })
    }
}

impl QueryPairs {
    /// Refuses parameters other than `known`, and repeated ones.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), HttpError> {
        for (i, (k, _)) in self.0.iter().enumerate() {
            if !known.contains(&k.as_str()) {
                let shown =
                    if k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') {
                        k.as_str()
                    } else {
                        "(unprintable name)"
                    };
                return Err(HttpError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "unknown_field",
                    format!("unknown query parameter '{shown}'"),
                )
                .with_field(shown));
            }
            if self.0.iter().skip(i + 1).any(|(k2, _)| k2 == k) {
                return Err(HttpError::invalid_field(
                    k.clone(),
                    format!("query parameter '{k}' given twice"),
                ));
            }
        }
        Ok(())
    }

    /// The value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A `204 No Content` answer.
pub(crate) fn no_content() -> Response {
    axum::http::StatusCode::NO_CONTENT.into_response()
}
