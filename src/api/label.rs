//! `GET /v1/bindings/{id}/label`: what a waybill prints for a binding (role app):
//! the customer's number with at least six digits hidden, the virtual number and
//! extension as printed, the `tel:` dial string and its QR code (SVG). The
//! rules are in [`crate::label`]; which digits stay visible is `[api]
//! label_keep_first` / `label_keep_last`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::auth::BINDING_WRITERS;
use super::error::HttpError;
use super::openapi::responses::{BadInput, BindingNotFound, KeyedErrors};
use super::openapi::roles;
use super::params::LabelPath;
use super::{json, AppState, Caller, PathParams};
use crate::bindings::{now_ms, BindingId};
use crate::label;

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Label)]
struct LabelView {
    #[schema(value_type = String, format = Uuid)]
    binding_id: BindingId,
    shipment_id: String,
    /// The customer's national number with at least 6 digits hidden.
    #[schema(example = "139******01")]
    customer: String,
    /// The virtual number (national, grouped).
    #[schema(example = "171 0000 1234")]
    number: String,
    /// Present when the binding has an extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "5821")]
    extension: Option<String>,
    /// The line to print.
    #[schema(example = "171 0000 1234 转 5821")]
    printed: String,
    #[schema(example = "tel:+8617100001234,5821")]
    dial_string: String,
    /// SVG document: a QR code of `dial_string`.
    qr_svg: String,
}

/// `GET /v1/bindings/{id}/label`
#[utoipa::path(
    get,
    path = "/v1/bindings/{id}/label",
    operation_id = "getLabel",
    tag = "bindings",
    summary = "What a waybill prints: the customer's number with at least 6 digits hidden, the \
               virtual number and extension as printed, the tel: dial string and its QR code \
               (SVG).",
    description = roles(
        BINDING_WRITERS,
        "Which digits stay visible is `[api] label_keep_first` / `label_keep_last` (default 3 \
         and 2: `139******01`); at least 6 digits are always hidden.",
    ),
    params(LabelPath),
    responses(
        (status = 200, description = "The label.", body = LabelView),
        BadInput,
        KeyedErrors,
        BindingNotFound,
    ),
)]
pub(crate) async fn get(
    State(st): State<AppState>,
    caller: Caller,
    PathParams(LabelPath { id }): PathParams<LabelPath>,
) -> Result<Response, HttpError> {
    // Labels are printed by the platform that ships (role app; admin too).
    caller.require(BINDING_WRITERS)?;
    let id = BindingId::parse_str(&id)
        .map_err(|_| HttpError::invalid_field("id", "id: not a binding id"))?;
    let b = st.store.get_binding(id, now_ms()).await?;
    let ext = b.extension.as_deref();
    let dial = label::dial_string(&b.number, ext);
    let qr_svg = label::qr_svg(&dial).map_err(|e| {
        tracing::warn!(error = %e, "label: no QR code");
        HttpError::internal()
    })?;
    let view = LabelView {
        binding_id: b.id,
        shipment_id: b.shipment_id.clone(),
        customer: st.label_rule.hide(label::national(&b.party_b)),
        number: label::group(label::national(&b.number)),
        extension: b.extension.clone(),
        printed: label::printed(&b.number, ext),
        dial_string: dial,
        qr_svg,
    };
    Ok(json::respond(StatusCode::OK, &view))
}
