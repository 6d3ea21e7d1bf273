//! Sans-IO SIP/SDP protocol crate (skeleton).

pub mod sdp;
