//! A queued text ([`Job`]) and its stored form ([`StoredJob`]): the recipient and
//! the body are sealed (AES-256-GCM, context = job id) before they go into the
//! queue, so a Redis dump shows no number and no text. The rest is what the record
//! of the text needs (masked parties, binding, pool).

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::bindings::UnixMs;
use crate::events::{Direction, MessageRecord};
use crate::numbers::{Sealer, E164};

/// A text to hand to a carrier.
#[derive(Debug, Clone)]
pub struct Job {
    /// Text id (UUID v7); also the record id.
    pub id: String,
    /// Carrier to send through (`http`, `smpp:<link>`).
    pub carrier: String,
    /// Sender as the recipient sees it: the virtual number X.
    pub from: E164,
    /// Recipient (real number).
    pub to: E164,
    /// Body, already masked.
    pub body: String,
    /// Record fields.
    pub meta: JobMeta,
}

/// What the records of a job say (no cleartext number).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobMeta {
    /// Binding that routed it.
    pub binding_id: Option<String>,
    /// Shipment of that binding.
    pub shipment_id: Option<String>,
    /// Pool of X.
    pub pool: Option<String>,
    /// Direction.
    pub direction: Option<Direction>,
    /// Original sender, masked.
    pub sender: String,
    /// Recipient, masked.
    pub recipient: String,
    /// Carrier it came in on.
    pub carrier_in: String,
    /// Segments of the body.
    pub segments: u32,
    /// Numbers masked in the body.
    pub numbers_masked: u32,
    /// Received (ms).
    pub received_at: UnixMs,
    /// Keep the body (sealed) in records.
    pub store_body: bool,
    /// `relay` or `auto_reply`.
    pub kind: String,
}

/// The queued form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredJob {
    id: String,
    carrier: String,
    from: String,
    to_sealed: String,
    body_sealed: String,
    meta: JobMeta,
}

/// Why a stored job cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Not our JSON, or the seal does not open (wrong keys).
    #[error("queued job unreadable: {0}")]
    Corrupt(String),
}

impl Job {
    /// Seals and serialises.
    pub fn to_stored(&self, sealer: &Sealer) -> String {
        let ctx = self.id.as_bytes();
        let stored = StoredJob {
            id: self.id.clone(),
            carrier: self.carrier.clone(),
            from: self.from.expose().to_owned(),
            to_sealed: B64.encode(sealer.seal_number(&self.to, ctx)),
            body_sealed: B64.encode(sealer.seal(self.body.as_bytes(), ctx)),
            meta: self.meta.clone(),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// Reads and opens.
    pub fn from_stored(s: &str, sealer: &Sealer) -> Result<Job, JobError> {
        let bad = |e: &dyn std::fmt::Display| JobError::Corrupt(e.to_string());
        let st: StoredJob = serde_json::from_str(s).map_err(|e| bad(&e))?;
        let ctx = st.id.as_bytes();
        let to_blob = B64.decode(&st.to_sealed).map_err(|e| bad(&e))?;
        let body_blob = B64.decode(&st.body_sealed).map_err(|e| bad(&e))?;
        let to = sealer.open_number(&to_blob, ctx).map_err(|e| bad(&e))?;
        let body = sealer.open(&body_blob, ctx).map_err(|e| bad(&e))?;
        Ok(Job {
            id: st.id,
            carrier: st.carrier,
            from: E164::parse(&st.from).map_err(|e| bad(&e))?,
            to,
            body: String::from_utf8(body).map_err(|e| bad(&e))?,
            meta: st.meta,
        })
    }

    /// A record of this job with `status`.
    pub fn record(
        &self,
        status: &str,
        reason: Option<String>,
        attempts: u32,
        sealer: &Sealer,
    ) -> MessageRecord {
        let m = &self.meta;
        MessageRecord {
            id: self.id.clone(),
            binding_id: m.binding_id.clone(),
            shipment_id: m.shipment_id.clone(),
            pool: m.pool.clone(),
            number: self.from.expose().to_owned(),
            direction: m.direction,
            sender: m.sender.clone(),
            recipient: Some(m.recipient.clone()),
            carrier_in: m.carrier_in.clone(),
            carrier_out: Some(self.carrier.clone()),
            segments: m.segments,
            numbers_masked: m.numbers_masked,
            status: status.to_owned(),
            reason,
            received_at: m.received_at,
            at: crate::bindings::now_ms(),
            attempts,
            body_sealed: m
                .store_body
                .then(|| B64.encode(sealer.seal(self.body.as_bytes(), self.id.as_bytes()))),
        }
    }
}

/// Seals a text fragment (a part of a concatenated message) for the queue.
pub fn seal_fragment(sealer: &Sealer, text: &str, context: &str) -> String {
    B64.encode(sealer.seal(text.as_bytes(), context.as_bytes()))
}

/// Opens [`seal_fragment`].
pub fn open_fragment(sealer: &Sealer, blob: &str, context: &str) -> Option<String> {
    let raw = B64.decode(blob).ok()?;
    String::from_utf8(sealer.open(&raw, context.as_bytes()).ok()?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stored_job_holds_no_number_or_body_in_clear() {
        let sealer = Sealer::random();
        let job = Job {
            id: "j1".into(),
            carrier: "http".into(),
            from: E164::parse("+8617000000001").unwrap(),
            to: E164::parse("+8613812345678").unwrap(),
            body: "at your door".into(),
            meta: JobMeta {
                binding_id: None,
                shipment_id: None,
                pool: None,
                direction: None,
                sender: "+86 139****0000".into(),
                recipient: "+86 138****5678".into(),
                carrier_in: "http".into(),
                segments: 1,
                numbers_masked: 0,
                received_at: 0,
                store_body: false,
                kind: "relay".into(),
            },
        };
        let s = job.to_stored(&sealer);
        assert!(!s.contains("13812345678"));
        assert!(!s.contains("door"));
        let back = Job::from_stored(&s, &sealer).unwrap();
        assert_eq!(back.to, job.to);
        assert_eq!(back.body, "at your door");
        assert!(Job::from_stored(&s, &Sealer::random()).is_err());
    }
}
