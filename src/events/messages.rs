//! Message (SMS) records: what happened to every text through the relay, for the
//! platform (`GET /v1/messages`) and for ops.
//!
//! A text's life is several records with the same `id`, one per status change
//! (`queued` → `submitted` → `delivered`, or a final `failed`/`expired`, or at once
//! `not_forwarded`/`blocked`/`rate_limited`/`duplicate`); a query answers the newest
//! record of each text. Records are appended to the same stores as call records
//! ([`super::RecordStore`]): in-process for the memory store, a Redis Stream
//! (`ml:{rec}:messages`, trimmed by age) for Redis.
//!
//! Parties are masked (`+86 138****5678`); X is ours and kept as is. The body is not
//! kept unless the pool enables it (`[sms.pools.<name>] store_bodies`), and then only
//! sealed (AES-256-GCM, context = record id). Sizing: one record is about 400 bytes,
//! about three per text; 1 million texts a day for 30 days is about 36 GB, so at
//! scale keep a shorter window in Redis and export the archive.

use serde::{Deserialize, Serialize};

use super::Direction;
use crate::bindings::UnixMs;

/// Stream key of the message records (one hash slot).
pub const MESSAGES_STREAM: &str = "ml:{rec}:messages";

/// One status of one text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Text id (UUID v7), the same across its records.
    pub id: String,
    /// The binding that routed it, if any.
    pub binding_id: Option<String>,
    /// The shipment of that binding.
    pub shipment_id: Option<String>,
    /// Pool of X, if known.
    pub pool: Option<String>,
    /// The virtual number X (E.164).
    pub number: String,
    /// Courier → customer or back, when routed.
    pub direction: Option<Direction>,
    /// Sender, masked.
    pub sender: String,
    /// Recipient, masked (none when not routed).
    pub recipient: Option<String>,
    /// Carrier it came in on (`http`, `smpp:<link>`).
    pub carrier_in: String,
    /// Carrier it went out on.
    pub carrier_out: Option<String>,
    /// SMS parts of the forwarded text.
    pub segments: u32,
    /// Numbers masked in the body.
    pub numbers_masked: u32,
    /// `queued`, `submitted`, `delivered`, `failed`, `expired`, `not_forwarded`,
    /// `blocked`, `rate_limited`.
    pub status: String,
    /// Why (for `failed`, `not_forwarded`, `blocked`, `rate_limited`, ...).
    pub reason: Option<String>,
    /// Received from the carrier (ms since epoch).
    pub received_at: UnixMs,
    /// This status (ms).
    pub at: UnixMs,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Sealed body (base64), only when the pool keeps bodies.
    pub body_sealed: Option<String>,
}

/// Filters of `GET /v1/messages`.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Only this binding.
    pub binding_id: Option<String>,
    /// Only this shipment.
    pub shipment_id: Option<String>,
    /// Only this virtual number.
    pub number: Option<String>,
    /// Received at or after (ms).
    pub since: Option<UnixMs>,
    /// At most this many texts, newest first.
    pub limit: usize,
}

impl MessageQuery {
    /// Whether `r` passes the filters.
    pub fn matches(&self, r: &MessageRecord) -> bool {
        self.binding_id
            .as_ref()
            .is_none_or(|b| r.binding_id.as_ref() == Some(b))
            && self
                .shipment_id
                .as_ref()
                .is_none_or(|s| r.shipment_id.as_ref() == Some(s))
            && self.number.as_ref().is_none_or(|n| &r.number == n)
            && self.since.is_none_or(|s| r.received_at >= s)
    }
}

/// Keeps the newest record per text id from `newest_first`, filtered, up to `limit`.
pub fn latest_per_text(
    newest_first: impl IntoIterator<Item = MessageRecord>,
    q: &MessageQuery,
) -> Vec<MessageRecord> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in newest_first {
        if !seen.insert(r.id.clone()) {
            continue;
        }
        if q.matches(&r) {
            out.push(r);
            if out.len() >= q.limit {
                break;
            }
        }
    }
    out
}
