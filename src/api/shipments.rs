//! `GET /v1/shipments/{id}`: a shipment's live bindings (all pools) and its call
//! and SMS records, parties masked; an auditor may reveal the parties with a
//! stated reason, written to the audit log before the answer (no audit, 503 and
//! no reveal).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use utoipa::ToSchema;

use super::auth::{role_name, POOL_READERS, REVEALERS};
use super::bindings::BindingView;
use super::calls::CallView;
use super::error::HttpError;
use super::openapi::responses::{error, shared_responses, BadInput, KeyedErrors};
use super::openapi::roles;
use super::params::ShipmentPath;
use super::poolops::{audit, reason};
use super::sms::MessageView;
use super::{json, AppState, Caller, PathParams, QueryPairs};
use crate::bindings::now_ms;
use crate::events::{CallQuery, MessageQuery};
use crate::store::AuditEntry;

/// A shipment's live bindings and its call and SMS records, shown as
/// `GET /v1/calls` and `GET /v1/messages` show them.
#[derive(Serialize, ToSchema)]
#[schema(as = Shipment)]
struct ShipmentView {
    shipment_id: String,
    revealed: bool,
    bindings: Vec<BindingView>,
    calls: Vec<CallView>,
    messages: Vec<MessageView>,
}

shared_responses! {
    /// 404 of the shipment lookup.
    ShipmentNotFound {
        "404" => error("No live binding and no record has this id (`shipment_not_found`).")
    }
}

/// Records listed per shipment.
const SHIPMENT_RECORDS: usize = 200;

/// `GET /v1/shipments/{id}[?reveal=true&reason=...]`: bindings (all pools) and
/// records of a shipment; parties masked unless an auditor reveals with a reason.
#[utoipa::path(
    get,
    path = "/v1/shipments/{id}",
    operation_id = "getShipment",
    tag = "records",
    summary = "Shipment lookup: its live bindings (all pools) and its call and SMS records, \
               parties masked.",
    description = roles(
        POOL_READERS,
        "`reveal=true` (auditor only, with a `reason`) shows the parties in clear; the reveal \
         is written to the audit log before the answer (no audit, 503 and no reveal). `reason` \
         is accepted only with `reveal=true`, and required with it (400 `missing_field` / \
         `invalid_field` naming `reason`).",
    ),
    params(
        ShipmentPath,
        ("reveal" = Option<bool>, Query,
            description = "`true` to show parties in clear (auditor; audited)."),
        ("reason" = Option<String>, Query, min_length = 3, max_length = 500, pattern = r"\S",
            description = "Why (required with `reveal=true`; 3 to 500 characters)."),
    ),
    responses(
        (status = 200, description = "The shipment.", body = ShipmentView),
        BadInput,
        KeyedErrors,
        ShipmentNotFound,
    ),
)]
pub(crate) async fn shipment(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(ShipmentPath { id }): PathParams<ShipmentPath>,
    query: QueryPairs,
) -> Result<Response, HttpError> {
    caller.require(POOL_READERS)?;
    query.only(&["reveal", "reason"])?;
    if crate::bindings::validate_shipment_id(&id).is_err() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "id: a shipment id, 1 to 128 printable ASCII characters without spaces",
        )
        .with_field("id"));
    }
    let reveal = match query.get("reveal") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(HttpError::invalid_field(
                "reveal",
                "reveal: must be true or false",
            ))
        }
    };
    let why = if reveal {
        caller.require(REVEALERS)?;
        Some(reason(query.get("reason"))?)
    } else {
        if query.get("reason").is_some() {
            return Err(HttpError::invalid_field(
                "reason",
                "reason: only with reveal=true",
            ));
        }
        None
    };
    let now = now_ms();
    let bindings = st.store.find_by_shipment(None, &id, now).await?;
    let calls = st
        .records
        .query_calls(&CallQuery {
            shipment_id: Some(id.clone()),
            limit: SHIPMENT_RECORDS,
            ..Default::default()
        })
        .await?;
    let messages = st
        .records
        .query_messages(&MessageQuery {
            shipment_id: Some(id.clone()),
            limit: SHIPMENT_RECORDS,
            ..Default::default()
        })
        .await?;
    if bindings.is_empty() && calls.is_empty() && messages.is_empty() {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "shipment_not_found",
            "no live binding and no record has this shipment id",
        ));
    }
    if let Some(why) = why {
        // Audit first: a disclosure that cannot be recorded does not happen.
        audit(
            &st,
            AuditEntry {
                at: now,
                actor: caller.name.to_string(),
                role: role_name(caller.role).to_owned(),
                action: "shipment.read_unmasked".into(),
                target: id.clone(),
                pool: bindings.first().map(|b| b.pool.clone()),
                reason: Some(why),
            },
        )
        .await?;
        tracing::info!("shipment read unmasked (audited)");
    }
    let view = ShipmentView {
        shipment_id: id,
        revealed: reveal,
        bindings: bindings
            .iter()
            .map(|b| BindingView::new(b, reveal))
            .collect(),
        calls: calls.into_iter().map(CallView::from).collect(),
        messages: messages.into_iter().map(MessageView::from).collect(),
    };
    let mut resp = json::respond(StatusCode::OK, &view);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
