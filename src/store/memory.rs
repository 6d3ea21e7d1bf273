//! memory store (being written).
