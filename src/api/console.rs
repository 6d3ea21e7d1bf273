//! The ops web console under `/ops/`: three static files embedded in the binary
//! (`src/api/console/`: `index.html`, `app.js`, `app.css`; plain JS, no build
//! step, no dependency, no CDN). The page signs in with an ops, auditor or admin
//! API key kept in `sessionStorage` (never a cookie) and calls the `/v1` API.
//!
//! Every answer carries a strict Content-Security-Policy (`default-src 'self'`,
//! no inline script or style, no framing), `nosniff` and `no-referrer`. These
//! routes are not part of the API (not in the OpenAPI document) and need no key:
//! the files hold no data.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                       frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

async fn to_index() -> Response {
    let mut resp = StatusCode::PERMANENT_REDIRECT.into_response();
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/ops/"));
    resp
}

/// Adds the console's routes.
pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/ops", get(to_index))
        .route("/ops/", get(index))
        .route("/ops/app.js", get(app_js))
        .route("/ops/app.css", get(app_css))
}
