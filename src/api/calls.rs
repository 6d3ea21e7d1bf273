//! `GET /v1/calls`: call records (numbers masked), newest first, filtered by
//! binding, shipment, virtual number and time. Roles: app, ops, admin, auditor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::ToSchema;

use super::auth::BINDING_READERS;
use super::bindings::{fmt_time, parse_time};
use super::error::HttpError;
use super::openapi::responses::{BadInput, KeyedErrors};
use super::openapi::roles;
use super::{json, AppState, Caller, QueryPairs};
use crate::events::{CallQuery, CallRecord, Direction};
use crate::numbers::E164;

/// Default and largest `limit`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// A call record as the API shows it (numbers masked).
#[derive(Serialize, ToSchema)]
#[schema(as = CallRecord)]
pub(crate) struct CallView {
    /// Record id (UUID v7).
    id: String,
    /// Binding that routed the call.
    binding_id: Option<String>,
    shipment_id: Option<String>,
    pool: Option<String>,
    /// The dialled virtual number (E.164).
    number: String,
    #[schema(inline)]
    direction: Option<Direction>,
    /// Caller, masked (+86 138****5678).
    caller: String,
    /// Callee, masked.
    callee: Option<String>,
    trunk: String,
    #[schema(format = DateTime)]
    invite_at: String,
    #[schema(format = DateTime)]
    ringing_at: Option<String>,
    #[schema(format = DateTime)]
    answer_at: Option<String>,
    #[schema(format = DateTime)]
    end_at: String,
    /// Answered time.
    duration_ms: u64,
    /// completed, no_binding, unknown_number, busy, declined, no_answer, cancelled,
    /// failed, rate_limited, store_unavailable, media_timeout, max_duration,
    /// callee_timeout, ports_exhausted, shutdown.
    end_reason: String,
    /// Final status towards the caller.
    sip_status: u16,
    #[schema(schema_with = hangup_by)]
    hangup_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = via)]
    via: Option<String>,
    /// Outcome of the IVR when the relay answered the call itself: `extension`,
    /// `default_party`, `wrong_extension`, `no_digits`, `not_serving`, `no_route`,
    /// `caller_hung_up`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    ivr: Option<String>,
}

/// `hangup_by`: who hung up an answered call (null otherwise).
fn hangup_by() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            serde_json::json!("caller"),
            serde_json::json!("callee"),
            serde_json::json!("relay"),
            serde_json::Value::Null,
        ]))
}

/// `via`: how the callee was found, when not by the caller's own binding.
fn via() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["extension", "default_party"]))
        .description(Some(
            "How the callee was found when not by the caller's own binding: an extension \
             keyed in the IVR, or the number's default party (AXN).",
        ))
}

impl From<CallRecord> for CallView {
    fn from(r: CallRecord) -> Self {
        CallView {
            id: r.id,
            binding_id: r.binding_id,
            shipment_id: r.shipment_id,
            pool: r.pool,
            number: r.number,
            direction: r.direction,
            caller: r.caller,
            callee: r.callee,
            trunk: r.trunk,
            invite_at: fmt_time(r.invite_at),
            ringing_at: r.ringing_at.map(fmt_time),
            answer_at: r.answer_at.map(fmt_time),
            end_at: fmt_time(r.end_at),
            duration_ms: r.duration_ms,
            end_reason: r.end_reason,
            sip_status: r.sip_status,
            hangup_by: r.hangup_by,
            via: r.via,
            ivr: r.ivr,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct CallList {
    calls: Vec<CallView>,
}

/// `GET /v1/calls?binding_id=&shipment_id=&number=&since=&until=&limit=`
#[utoipa::path(
    get,
    path = "/v1/calls",
    operation_id = "listCalls",
    tag = "records",
    summary = "Call records through the voice relay, newest first (numbers masked).",
    description = roles(
        BINDING_READERS,
        "Every call that reached the relay from a trusted trunk leaves one record: answered, \
         rejected (no binding, unknown number, rate limited, store unavailable), cancelled, \
         busy, not answered. Kept 30 days (Redis Stream; the memory store keeps the newest \
         100,000). Party numbers are masked; the virtual number is shown as is.",
    ),
    params(
        ("binding_id" = Option<String>, Query, format = Uuid,
            pattern = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
            description = "Binding id: a UUID in its hyphenated form."),
        ("shipment_id" = Option<String>, Query, min_length = 1, max_length = 128,
            pattern = "^[!-~]+$", example = "SF1234567890",
            description = "Only calls of this shipment (1 to 128 characters): 1 to 128 \
                printable ASCII characters, no spaces."),
        ("number" = Option<String>, Query, pattern = r"^\+[1-9][0-9]{7,14}$",
            description = "Only calls to this virtual number (E.164)."),
        ("since" = Option<String>, Query, format = DateTime,
            description = "Only calls whose INVITE arrived at or after this time (RFC 3339)."),
        ("until" = Option<String>, Query, format = DateTime,
            description = "Only calls whose INVITE arrived before this time (RFC 3339)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
            description = "How many records, 1 to 1000 (default 100)."),
    ),
    responses(
        (status = 200, description = "Records.", body = CallList),
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
    query.only(&[
        "binding_id",
        "shipment_id",
        "number",
        "since",
        "until",
        "limit",
    ])?;
    let f = RecordFilter::parse(&query)?;
    let q = CallQuery {
        binding_id: f.binding_id,
        shipment_id: f.shipment_id,
        number: f.number,
        since: f.since,
        until: f.until,
        limit: f.limit,
    };
    let calls = st
        .records
        .query_calls(&q)
        .await?
        .into_iter()
        .map(CallView::from)
        .collect();
    Ok(json::respond(StatusCode::OK, &CallList { calls }))
}

/// The filters `GET /v1/calls` and `GET /v1/messages` share, validated (each
/// handler first refuses the parameters it does not take).
pub(crate) struct RecordFilter {
    pub(crate) binding_id: Option<String>,
    pub(crate) shipment_id: Option<String>,
    pub(crate) number: Option<String>,
    pub(crate) since: Option<crate::bindings::UnixMs>,
    pub(crate) until: Option<crate::bindings::UnixMs>,
    pub(crate) limit: usize,
}

impl RecordFilter {
    /// Reads `binding_id`, `shipment_id`, `number`, `since`, `until` and `limit`.
    pub(crate) fn parse(query: &QueryPairs) -> Result<RecordFilter, HttpError> {
        let binding_id = match query.get("binding_id") {
            None => None,
            Some(s) => Some(
                super::bindings::parse_uuid(s)
                    .ok_or_else(|| {
                        HttpError::invalid_field("binding_id", "binding_id: not a binding id")
                    })?
                    .to_string(),
            ),
        };
        let shipment_id = match query.get("shipment_id") {
            None => None,
            Some(s) => {
                crate::bindings::validate_shipment_id(s)?;
                Some(s.to_owned())
            }
        };
        let number = match query.get("number") {
            None => None,
            Some(s) => Some(
                E164::parse(s)
                    .map_err(|_| {
                        HttpError::invalid_field(
                            "number",
                            "number: an E.164 number such as +8617000000001",
                        )
                    })?
                    .expose()
                    .to_owned(),
            ),
        };
        let since = query
            .get("since")
            .map(|s| parse_time(s, "since"))
            .transpose()?;
        let until = query
            .get("until")
            .map(|s| parse_time(s, "until"))
            .transpose()?;
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    HttpError::invalid_field("limit", format!("limit: 1 to {MAX_LIMIT}"))
                })?,
        };
        Ok(RecordFilter {
            binding_id,
            shipment_id,
            number,
            since,
            until,
            limit,
        })
    }
}
