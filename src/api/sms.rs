//! SMS over HTTP: the CPaaS provider's webhooks (`POST /v1/sms/inbound`,
//! `POST /v1/sms/receipts`, authenticated by an HMAC-SHA256 signature, not by an
//! API key: see [`crate::sms::http`]) and the message records
//! (`GET /v1/messages`, roles app, ops, admin, auditor; numbers masked).
//!
//! A webhook answers `200` only once the text's outcome is durable (queued, or
//! recorded as not forwarded); `503` + `Retry-After` when the store or queue is
//! down, so the provider sends it again; `404 sms_disabled` when the relay runs
//! without SMS.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::auth::BINDING_READERS;
use super::bindings::fmt_time;
use super::error::HttpError;
use super::{json, AppState, Caller, QueryPairs};
use crate::events::{Direction, MessageQuery, MessageRecord};
use crate::numbers::E164;
use crate::sms::http::{self as gw, InboundForm, ReceiptForm, SignatureError};
use crate::sms::{Gateway, Inbound, SmsError};

/// Refuses (401) a webhook call without both signature headers, before anything
/// else: an unsigned request learns nothing, not even whether SMS runs.
fn require_signature_headers(headers: &HeaderMap) -> Result<(), HttpError> {
    if headers.contains_key(gw::TIMESTAMP_HEADER) && headers.contains_key(gw::SIGNATURE_HEADER) {
        Ok(())
    } else {
        Err(HttpError::unauthorized(format!(
            "sms webhook: {}",
            SignatureError::Missing
        )))
    }
}

fn gateway(st: &AppState) -> Result<Gateway, HttpError> {
    st.sms.get().cloned().ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "sms_disabled",
            "this relay runs without SMS ([sms] enabled = false)",
        )
    })
}

/// Reads and authenticates a signed webhook body.
async fn signed_body(
    st: &AppState,
    g: &Gateway,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, HttpError> {
    let bytes = json::read_body(headers, body, st.max_body, st.body_timeout).await?;
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let now_s = crate::bindings::now_ms() / 1000;
    gw::verify(
        &g.secret,
        g.window_s,
        h(gw::TIMESTAMP_HEADER),
        h(gw::SIGNATURE_HEADER),
        &bytes,
        now_s,
    )
    .map_err(|e| match e {
        SignatureError::Disabled => {
            HttpError::new(StatusCode::NOT_FOUND, "sms_disabled", e.to_string())
        }
        _ => HttpError::unauthorized(format!("sms webhook: {e}")),
    })?;
    Ok(bytes)
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

fn unavailable(e: SmsError) -> HttpError {
    tracing::warn!(error = %e, "sms webhook: not accepted now");
    HttpError::store_unavailable()
}

#[derive(Serialize)]
struct Accepted {
    status: &'static str,
}

/// `POST /v1/sms/inbound`
pub(crate) async fn inbound(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    require_signature_headers(&headers)?;
    let g = gateway(&st)?;
    let bytes = signed_body(&st, &g, &headers, body).await?;
    let form: InboundForm = gw::parse_body(content_type(&headers), &bytes)
        .map_err(|e| HttpError::invalid_json(format!("sms inbound: {e}")))?;
    let from = E164::parse_lenient(&form.from, None)
        .map_err(|_| HttpError::invalid_field("from", "from: an E.164 number"))?;
    let to = E164::parse_lenient(&form.to, None)
        .map_err(|_| HttpError::invalid_field("to", "to: an E.164 number"))?;
    if form.id.as_ref().is_some_and(|i| i.len() > 128) {
        return Err(HttpError::invalid_field("id", "id: at most 128 characters"));
    }
    let outcome = g
        .relay
        .ingest(Inbound {
            carrier: "http".into(),
            carrier_id: form.id,
            fingerprint: None,
            from,
            to,
            text: form.text,
            concat: None,
        })
        .await
        .map_err(unavailable)?;
    Ok(json::respond(
        StatusCode::OK,
        &Accepted {
            status: outcome.as_str(),
        },
    ))
}

/// `POST /v1/sms/receipts`
pub(crate) async fn receipts(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    require_signature_headers(&headers)?;
    let g = gateway(&st)?;
    let bytes = signed_body(&st, &g, &headers, body).await?;
    let form: ReceiptForm = gw::parse_body(content_type(&headers), &bytes)
        .map_err(|e| HttpError::invalid_json(format!("sms receipt: {e}")))?;
    let delivered = form.status.eq_ignore_ascii_case("delivered");
    let detail = form.error.as_deref().unwrap_or(&form.status);
    let known = g
        .relay
        .receipt(&format!("http:{}", form.id), delivered, detail)
        .await
        .map_err(unavailable)?;
    Ok(json::respond(
        StatusCode::OK,
        &Accepted {
            status: if known { "recorded" } else { "unknown_id" },
        },
    ))
}

#[derive(Serialize)]
struct MessageView {
    id: String,
    binding_id: Option<String>,
    shipment_id: Option<String>,
    pool: Option<String>,
    number: String,
    direction: Option<Direction>,
    sender: String,
    recipient: Option<String>,
    carrier_in: String,
    carrier_out: Option<String>,
    segments: u32,
    numbers_masked: u32,
    status: String,
    reason: Option<String>,
    received_at: String,
    updated_at: String,
    attempts: u32,
    body_sealed: Option<String>,
}

impl From<MessageRecord> for MessageView {
    fn from(r: MessageRecord) -> Self {
        MessageView {
            id: r.id,
            binding_id: r.binding_id,
            shipment_id: r.shipment_id,
            pool: r.pool,
            number: r.number,
            direction: r.direction,
            sender: r.sender,
            recipient: r.recipient,
            carrier_in: r.carrier_in,
            carrier_out: r.carrier_out,
            segments: r.segments,
            numbers_masked: r.numbers_masked,
            status: r.status,
            reason: r.reason,
            received_at: fmt_time(r.received_at),
            updated_at: fmt_time(r.at),
            attempts: r.attempts,
            body_sealed: r.body_sealed,
        }
    }
}

#[derive(Serialize)]
struct MessageList {
    messages: Vec<MessageView>,
}

/// `GET /v1/messages?binding_id=&shipment_id=&number=&since=&limit=`
pub(crate) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(BINDING_READERS)?;
    query.only(&["binding_id", "shipment_id", "number", "since", "limit"])?;
    let f = super::calls::RecordFilter::parse(&query)?;
    let q = MessageQuery {
        binding_id: f.binding_id,
        shipment_id: f.shipment_id,
        number: f.number,
        since: f.since,
        limit: f.limit,
    };
    let messages = st
        .records
        .query_messages(&q)
        .await?
        .into_iter()
        .map(MessageView::from)
        .collect();
    Ok(json::respond(StatusCode::OK, &MessageList { messages }))
}
