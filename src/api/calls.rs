//! `GET /v1/calls`: call records (numbers masked), newest first, filtered by
//! binding, shipment, virtual number and time. Roles: app, ops, admin, auditor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::auth::BINDING_READERS;
use super::bindings::{fmt_time, parse_time};
use super::error::HttpError;
use super::{json, AppState, Caller, QueryPairs};
use crate::events::{CallQuery, CallRecord, Direction};
use crate::numbers::E164;

/// Default and largest `limit`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Serialize)]
struct CallView {
    id: String,
    binding_id: Option<String>,
    shipment_id: Option<String>,
    pool: Option<String>,
    number: String,
    direction: Option<Direction>,
    caller: String,
    callee: Option<String>,
    trunk: String,
    invite_at: String,
    ringing_at: Option<String>,
    answer_at: Option<String>,
    end_at: String,
    duration_ms: u64,
    end_reason: String,
    sip_status: u16,
    hangup_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ivr: Option<String>,
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

#[derive(Serialize)]
struct CallList {
    calls: Vec<CallView>,
}

/// `GET /v1/calls?binding_id=&shipment_id=&number=&since=&until=&limit=`
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
