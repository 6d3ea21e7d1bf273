//! maskline: a virtual phone number privacy relay.
//!
//! Parcel carriers give a courier (party A) and a customer (party B) one virtual
//! number X per shipment; calls and texts to X are bridged to the other party with X
//! as caller ID, so neither learns the other's real number.
//!
//! Module map (data flows top to bottom):
//! - [`config`]: typed, validated configuration.
//! - [`numbers`]: E.164 numbers (masked by type), keyed hashing, sealing.
//! - [`bindings`]: the domain types and rules: pools, AXB bindings, routes.
//! - [`store`]: the `BindingStore` trait and its memory and Redis implementations.
//! - [`api`]: the HTTP API (hyper, auth and roles, rate limits, JSON errors, OpenAPI).
//! - [`voice`]: the SIP B2BUA (trunks, call flow, topology hiding) on the `sip` crate.
//! - [`media`]: the RTP/RTCP relay the voice calls drive.
//! - [`events`]: call records (memory list or Redis Stream).
//! - [`sms`]: the SMS relay (SMPP and HTTP carriers, masking, durable queue).
//! - [`label`]: waybill text for printed numbers (hidden digits, dial string, QR).
//! - [`telemetry`]: logs (pretty/JSON) and the Prometheus metrics recorder.

pub mod api;
pub mod bindings;
pub mod config;
pub mod events;
pub mod label;
pub mod media;
pub mod numbers;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod voice;
