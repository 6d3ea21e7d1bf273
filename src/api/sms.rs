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

use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::ToSchema;

use super::auth::BINDING_READERS;
use super::bindings::fmt_time;
use super::error::HttpError;
use super::openapi::responses::{
    error, error_retry_after, shared_responses, BadInput, BodyErrors, Internal, KeyedErrors,
};
use super::openapi::roles;
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

#[derive(Serialize, ToSchema)]
#[schema(as = SmsAccepted)]
struct Accepted {
    status: &'static str,
}

shared_responses! {
    /// The errors both webhooks share, but 408, 413 and 500.
    WebhookErrors {
        "400" => error("Invalid body (`invalid_json`, `invalid_field`)."),
        "401" => error(
            "Missing, stale or wrong signature (`unauthorized`). A request without both \
             signature headers gets this first, whether SMS runs or not.",
        ),
        "404" => error(
            "The relay runs without SMS or without an inbound secret (`sms_disabled`).",
        ),
        "503" => error_retry_after(
            "Store or queue unavailable (`store_unavailable`): not taken, send it again after \
             `Retry-After`.",
            None,
        ),
    }
}

/// `POST /v1/sms/inbound`
#[utoipa::path(
    post,
    path = "/v1/sms/inbound",
    operation_id = "smsInbound",
    tag = "sms",
    summary = "A text from a CPaaS provider (signed webhook).",
    description = "The provider posts each text to a virtual number here. It is routed like a \
        call (`route(X, sender)`), numbers in the body are masked, and it is queued for the \
        bound party, who receives it from X. A provider message id (`id`) makes retries safe: \
        a text with an id seen before is taken once.",
    security(),
    params(
        ("X-Maskline-Timestamp" = String, Header, pattern = "^[0-9]+$",
            description = "Unix time (seconds) of signing; refused outside \
                `sms.http.replay_window_s`."),
        ("X-Maskline-Signature" = String, Header,
            description = "Hex HMAC-SHA256 with `sms.http.inbound_secret` over \
                `<timestamp>.<raw body>` (a `sha256=` prefix is accepted)."),
    ),
    request_body(content(
        (InboundForm = "application/json"),
        (InboundForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, body = Accepted, description = "Taken: the outcome is durable. \
            `status`: `queued`, `duplicate`, `not_forwarded` (no live binding; the configured \
            auto-reply is queued), `blocked`, `rate_limited`."),
        WebhookErrors,
        BodyErrors,
        Internal,
    ),
)]
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
#[utoipa::path(
    post,
    path = "/v1/sms/receipts",
    operation_id = "smsReceipt",
    tag = "sms",
    summary = "A delivery receipt from a CPaaS provider (signed webhook).",
    description = "`id` is the provider id returned by the outbound POST. The text's record \
        becomes `delivered`, or `failed` with the provider's reason.",
    security(),
    params(
        ("X-Maskline-Timestamp" = String, Header, pattern = "^[0-9]+$",
            description = "Unix time (seconds) of signing; refused outside \
                `sms.http.replay_window_s`."),
        ("X-Maskline-Signature" = String, Header,
            description = "Hex HMAC-SHA256 with `sms.http.inbound_secret` over \
                `<timestamp>.<raw body>` (a `sha256=` prefix is accepted)."),
    ),
    request_body(content(
        (ReceiptForm = "application/json"),
        (ReceiptForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, body = Accepted,
            description = "Taken: the outcome is durable. `status`: `recorded`, or `unknown_id`."),
        WebhookErrors,
        BodyErrors,
        Internal,
    ),
)]
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

/// A message record as the API shows it (numbers masked).
#[derive(Serialize, ToSchema)]
#[schema(as = MessageRecord)]
pub(crate) struct MessageView {
    /// Text id (UUID v7).
    id: String,
    /// Binding that routed it.
    binding_id: Option<String>,
    /// Its shipment.
    shipment_id: Option<String>,
    /// Pool of the virtual number.
    pool: Option<String>,
    /// The virtual number X (E.164).
    number: String,
    #[schema(inline)]
    direction: Option<Direction>,
    /// Sender, masked.
    sender: String,
    /// Recipient, masked.
    recipient: Option<String>,
    /// `http` or `smpp:<link>`.
    carrier_in: String,
    /// Carrier it went out on.
    carrier_out: Option<String>,
    /// SMS parts of the forwarded text (GSM 7-bit 160/153, UCS-2 70/67).
    segments: u32,
    /// Phone numbers masked in the body.
    numbers_masked: u32,
    #[schema(schema_with = message_status)]
    status: String,
    /// Why (`no_binding`, `unknown_number`, `blocked_keyword`, `too_long`, `sender`,
    /// `pool`, a carrier error, ...).
    reason: Option<String>,
    #[schema(format = DateTime)]
    received_at: String,
    /// Time of this status.
    #[schema(format = DateTime)]
    updated_at: String,
    /// Delivery attempts.
    attempts: u32,
    /// Sealed body (base64), only when the pool keeps bodies.
    body_sealed: Option<String>,
}

/// `status` of a message record.
fn message_status() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([
            "queued",
            "submitted",
            "delivered",
            "failed",
            "expired",
            "not_forwarded",
            "blocked",
            "rate_limited",
        ]))
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

#[derive(Serialize, ToSchema)]
struct MessageList {
    messages: Vec<MessageView>,
}

/// `GET /v1/messages?binding_id=&shipment_id=&number=&since=&limit=`
#[utoipa::path(
    get,
    path = "/v1/messages",
    operation_id = "listMessages",
    tag = "records",
    summary = "Message (SMS) records through the relay, newest first (numbers masked).",
    description = roles(
        BINDING_READERS,
        "One entry per text: its latest status (`queued`, `submitted`, `delivered`, `failed`, \
         `expired`, `not_forwarded`, `blocked`, `rate_limited`) and why. Party numbers are \
         masked; the virtual number is shown as is. Bodies are not kept unless the pool enables \
         it (`[sms.pools.<name>] store_bodies`), and then only sealed (`body_sealed`).",
    ),
    params(
        ("binding_id" = Option<String>, Query, format = Uuid,
            pattern = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
            description = "Binding id: a UUID in its hyphenated form."),
        ("shipment_id" = Option<String>, Query, min_length = 1, max_length = 128,
            pattern = "^[!-~]+$", example = "SF1234567890",
            description = "Only texts of this shipment (1 to 128 characters): 1 to 128 \
                printable ASCII characters, no spaces."),
        ("number" = Option<String>, Query, pattern = r"^\+[1-9][0-9]{7,14}$",
            description = "Only texts to this virtual number (E.164)."),
        ("since" = Option<String>, Query, format = DateTime,
            description = "Only texts received at or after this time (RFC 3339)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
            description = "How many records, 1 to 1000 (default 100)."),
    ),
    responses(
        (status = 200, description = "Records.", body = MessageList),
        BadInput,
        KeyedErrors,
    ),
)]
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
