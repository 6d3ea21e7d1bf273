//! Sans-IO SIP/SDP protocol crate (skeleton).
