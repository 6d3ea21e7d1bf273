//! The path parameters of the API: the types handlers extract through
//! [`super::PathParams`] and the OpenAPI document describes (`IntoParams`), with
//! the rule each segment follows. The handlers enforce the rules; the
//! descriptions and patterns here say what they enforce.

use serde::Deserialize;
use utoipa::IntoParams;

/// `{pool}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct PoolPath {
    /// Pool name: 1 to 64 letters, digits, `_` or `-`.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]+$",
        example = "demo"
    )]
    pub(crate) pool: String,
}

/// `{pool}` and `{number}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct PoolNumberPath {
    /// Pool name: 1 to 64 letters, digits, `_` or `-`.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]+$",
        example = "demo"
    )]
    pub(crate) pool: String,
    /// The virtual number. A phone number: E.164 (`+8613800138000`), or with `00` for
    /// `+`, or in national format for the pool's country; spaces, `-`, `.`, `(` and
    /// `)` are ignored. At most 32 characters.
    #[param(
        min_length = 1,
        max_length = 32,
        pattern = r"^[ ().-]*(\+[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9]([ ().-]*[0-9]){7,14}|[0-9]([ ().-]*[0-9]){4,14})[ ().-]*$",
        example = "+8617000000001"
    )]
    pub(crate) number: String,
}

/// `{id}` of a binding.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct BindingPath {
    /// Binding id: a UUID in its hyphenated form.
    #[param(
        format = Uuid,
        pattern = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
    )]
    pub(crate) id: String,
}

/// `{id}` of a shipment.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ShipmentPath {
    /// Shipment id: 1 to 128 printable ASCII characters, no spaces.
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = "^[!-~]+$",
        example = "SF1001"
    )]
    pub(crate) id: String,
}

/// `{id}` of a binding, as the label reads it (any UUID form).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct LabelPath {
    /// Binding id (UUID).
    #[param(format = Uuid)]
    pub(crate) id: String,
}
