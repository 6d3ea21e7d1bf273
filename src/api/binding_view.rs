//! How the API shows a binding (`Binding` in the OpenAPI document: parties masked
//! unless revealed), and the documented answers of `/v1/bindings` that carry one,
//! with the links from each to what can be done with the binding next.

use serde::Serialize;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, Ref};
use utoipa::ToSchema;

use super::bindings::fmt_time;
use super::openapi::responses::{error, error_retry_after, shared_responses};
use crate::bindings::{Binding, BindingId, BindingState};
use crate::numbers::E164;

/// A binding as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Binding)]
pub(crate) struct BindingView {
    #[schema(value_type = String, format = Uuid)]
    id: BindingId,
    pool: String,
    shipment_id: String,
    /// The virtual number X (in clear).
    number: String,
    /// Masked, e.g. `+86 138****5678` (clear only for an audited reveal).
    party_a: String,
    party_b: String,
    #[schema(format = DateTime)]
    expires_at: String,
    #[schema(inline)]
    state: BindingState,
    /// The extension on `number` (printed waybills): present only when the binding
    /// has one. Unique among the live and cooling bindings on that number; kept
    /// across courier handovers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, pattern = "^[0-9]{1,6}$")]
    extension: Option<String>,
    /// What a phone dials to reach the courier through the extension:
    /// `tel:<number>,<extension>` (the comma is a pause). Present only with
    /// `extension`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "tel:+8617100001234,5821")]
    dial_string: Option<String>,
}

/// The `tel:` URI that dials `number` and then keys `extension` after a pause.
pub(crate) fn dial_string(number: &E164, extension: &str) -> String {
    format!("tel:{},{}", number.expose(), extension)
}

impl BindingView {
    /// Masked parties unless `reveal` (an audited auditor read).
    pub(crate) fn new(b: &Binding, reveal: bool) -> Self {
        let party = |n: &E164| {
            if reveal {
                n.expose().to_owned()
            } else {
                n.masked()
            }
        };
        Self {
            id: b.id,
            pool: b.pool.clone(),
            shipment_id: b.shipment_id.clone(),
            // The virtual number is ours, not a person's: shown in clear.
            number: b.number.expose().to_owned(),
            party_a: party(&b.party_a),
            party_b: party(&b.party_b),
            expires_at: fmt_time(b.expires_at),
            state: b.state,
            extension: b.extension.clone(),
            dial_string: b.extension.as_ref().map(|e| dial_string(&b.number, e)),
        }
    }
}

/// Links from a binding answer to what can be done with it next.
fn binding_answer(description: &str, links: &[&str]) -> ResponseBuilder {
    let schema = Ref::from_schema_name(BindingView::name());
    let mut r = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(schema)).build(),
    );
    let by_id = |op: &str, param: &str| {
        LinkBuilder::new()
            .operation_id(op)
            .parameter(param, "$response.body#/id")
    };
    for &name in links {
        let link = match name {
            "GetBinding" => by_id("getBinding", "id"),
            "UpdateBinding" => by_id("updateBinding", "id"),
            "MarkDelivered" => by_id("markDelivered", "id"),
            "DeleteBinding" => by_id("deleteBinding", "id"),
            "ListCalls" => by_id("listCalls", "binding_id"),
            "ListMessages" => by_id("listMessages", "binding_id"),
            "FindBindings" => LinkBuilder::new()
                .operation_id("findBindings")
                .parameter("shipment_id", "$response.body#/shipment_id")
                .parameter("pool", "$response.body#/pool"),
            "PoolStats" => LinkBuilder::new()
                .operation_id("poolStats")
                .parameter("pool", "$response.body#/pool"),
            "RouteCourier" => LinkBuilder::new()
                .operation_id("route")
                .parameter("pool", "$response.body#/pool")
                .parameter("number", "$response.body#/number")
                .parameter("caller", "$request.body#/party_a"),
            _ => continue,
        };
        r = r.link(name, link.build());
    }
    r
}

/// Every link from a created binding.
const CREATED_LINKS: &[&str] = &[
    "GetBinding",
    "UpdateBinding",
    "MarkDelivered",
    "DeleteBinding",
    "FindBindings",
    "PoolStats",
    "ListCalls",
    "ListMessages",
    "RouteCourier",
];

shared_responses! {
    /// 200 and 201 of `POST /v1/bindings`.
    CreatedBinding {
        "200" => binding_answer(
            "The same request was made before: the existing binding.",
            CREATED_LINKS,
        ),
        "201" => binding_answer("Created (parties masked).", CREATED_LINKS),
    }
    /// 200 of `PATCH /v1/bindings/{id}`.
    UpdatedBinding {
        "200" => binding_answer(
            "Updated (parties masked).",
            &["GetBinding", "MarkDelivered", "DeleteBinding"],
        )
    }
    /// 200 of `POST /v1/bindings/{id}/delivered`.
    DeliveredBinding {
        "200" => binding_answer(
            "Updated (parties masked).",
            &["GetBinding", "UpdateBinding", "DeleteBinding"],
        )
    }
    /// 409 of `POST /v1/bindings`.
    CreateConflict {
        "409" => error(
            "`pool_exhausted`: no number is free for these parties; `shipment_conflict`: the \
             shipment has a live binding with other parties.",
        )
    }
    /// 503 of `POST /v1/bindings`.
    CreateUnavailable {
        "503" => error_retry_after(
            "The store is unavailable (`store_unavailable`). The binding may or may not have \
             been created: retry the same request, which answers `200` with the committed \
             binding if there is one.",
            None,
        )
    }
    /// 409 of `PATCH /v1/bindings/{id}`.
    ReassignConflict {
        "409" => error(
            "The new party already holds this number (`reassign_conflict`, `field` names the \
             party).",
        )
    }
    /// 404 of `GET /v1/bindings`.
    ListPoolNotFound { "404" => error("`pool` names no pool (`pool_not_found`).") }
}
