//! Call and message records: what happened on every call and text through the
//! relay, for the platform (`GET /v1/calls`, `GET /v1/messages`) and for ops.
//! Message records are described in [`messages`].
//!
//! This module owns the [`CallRecord`] type and the [`RecordStore`] trait that keeps
//! records, with two implementations:
//! - [`MemoryRecords`]: a bounded in-process list (newest kept), for the memory store;
//!   not durable.
//! - [`RedisRecords`]: one Redis Stream (`ml:{rec}:calls`, one slot, so it works on
//!   a cluster) trimmed by age with `MINID` (default retention 30 days, the deletion
//!   period the industry follows after delivery).
//!
//! Records hold **masked** party numbers only (`+86 138****5678`); the virtual
//! number X is ours and kept as is. Sizing: one record is about 450 bytes in the
//! stream; 1 million calls a day kept 30 days is about 13.5 GB, so at national
//! scale keep a shorter window in Redis and export the archive to a log or
//! columnar sink (a second [`RecordStore`] implementation; calls do not change).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crate::store::redis::conn::{Conn, Target};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::bindings::UnixMs;
use crate::store::StoreError;

pub mod messages;
pub use messages::{MessageQuery, MessageRecord, MESSAGES_STREAM};

/// Who called whom, in shipment terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Party A (courier) called party B (customer).
    CourierToCustomer,
    /// Party B (customer) called party A (courier).
    CustomerToCourier,
}

/// One finished (or refused) call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Record id (UUID v7).
    pub id: String,
    /// The binding that routed the call, if any.
    pub binding_id: Option<String>,
    /// The shipment of that binding.
    pub shipment_id: Option<String>,
    /// Pool of the dialled number, if known.
    pub pool: Option<String>,
    /// The dialled virtual number (E.164).
    pub number: String,
    /// Direction, when a binding routed the call.
    pub direction: Option<Direction>,
    /// Caller, masked.
    pub caller: String,
    /// Callee, masked (none when not routed).
    pub callee: Option<String>,
    /// Trunk the call came in on.
    pub trunk: String,
    /// INVITE received (ms since epoch).
    pub invite_at: UnixMs,
    /// First 180/183 from the callee.
    pub ringing_at: Option<UnixMs>,
    /// Answer (2xx).
    pub answer_at: Option<UnixMs>,
    /// End of the call.
    pub end_at: UnixMs,
    /// Answered duration in ms (0 when not answered).
    pub duration_ms: u64,
    /// Why it ended (`completed`, `no_binding`, `unknown_number`, `busy`, `no_answer`,
    /// `cancelled`, `failed`, `rate_limited`, `store_unavailable`, `media_timeout`,
    /// `max_duration`, `callee_timeout`, `ports_exhausted`, `shutdown`).
    pub end_reason: String,
    /// Final SIP status towards the caller.
    pub sip_status: u16,
    /// Who hung up an answered call: `caller`, `callee` or `relay`.
    pub hangup_by: Option<String>,
    /// How the callee was found when not by the caller's own binding:
    /// `extension` (keyed in the IVR) or `default_party` (the pool number's AXN
    /// default party).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The IVR's outcome when the relay answered the call itself: `extension`,
    /// `default_party`, `wrong_extension` (three wrong tries), `no_digits`,
    /// `not_serving` (the extension's binding ended: announcement played),
    /// `no_route` (announcement played), `caller_hung_up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ivr: Option<String>,
}

/// Filters of `GET /v1/calls`.
#[derive(Debug, Clone, Default)]
pub struct CallQuery {
    /// Only this binding.
    pub binding_id: Option<String>,
    /// Only this shipment.
    pub shipment_id: Option<String>,
    /// Only this virtual number (E.164).
    pub number: Option<String>,
    /// INVITE at or after (ms).
    pub since: Option<UnixMs>,
    /// INVITE before (ms).
    pub until: Option<UnixMs>,
    /// At most this many, newest first.
    pub limit: usize,
}

impl CallQuery {
    fn matches(&self, r: &CallRecord) -> bool {
        self.binding_id
            .as_ref()
            .is_none_or(|b| r.binding_id.as_ref() == Some(b))
            && self
                .shipment_id
                .as_ref()
                .is_none_or(|s| r.shipment_id.as_ref() == Some(s))
            && self.number.as_ref().is_none_or(|n| &r.number == n)
            && self.since.is_none_or(|s| r.invite_at >= s)
            && self.until.is_none_or(|u| r.invite_at < u)
    }
}

/// Where call records are kept.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Appends a record; durable (for Redis) once this returns Ok.
    async fn append_call(&self, record: &CallRecord) -> Result<(), StoreError>;
    /// Records matching `q`, newest first.
    async fn query_calls(&self, q: &CallQuery) -> Result<Vec<CallRecord>, StoreError>;
    /// Appends several records (Redis: one pipelined round trip).
    async fn append_calls(&self, records: &[CallRecord]) -> Result<(), StoreError> {
        for r in records {
            self.append_call(r).await?;
        }
        Ok(())
    }
    /// Appends a message record (one status of one text).
    async fn append_message(&self, record: &MessageRecord) -> Result<(), StoreError>;
    /// The newest record of each text matching `q`, newest first.
    async fn query_messages(&self, q: &MessageQuery) -> Result<Vec<MessageRecord>, StoreError>;
}

/// Bounded in-process records (memory store; not durable).
#[derive(Debug)]
pub struct MemoryRecords {
    max: usize,
    retention_ms: i64,
    calls: Mutex<VecDeque<CallRecord>>,
    messages: Mutex<VecDeque<MessageRecord>>,
}

impl MemoryRecords {
    /// Keeps at most `max` records, none older than `retention`.
    pub fn new(max: usize, retention: Duration) -> Self {
        Self {
            max,
            retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
            calls: Mutex::new(VecDeque::new()),
            messages: Mutex::new(VecDeque::new()),
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("record list lock poisoned".into())
}

#[async_trait]
impl RecordStore for MemoryRecords {
    async fn append_call(&self, record: &CallRecord) -> Result<(), StoreError> {
        let mut calls = self.calls.lock().map_err(|_| poisoned())?;
        calls.push_back(record.clone());
        let oldest = record.end_at.saturating_sub(self.retention_ms);
        while calls.len() > self.max || calls.front().is_some_and(|c| c.end_at < oldest) {
            calls.pop_front();
        }
        Ok(())
    }

    async fn query_calls(&self, q: &CallQuery) -> Result<Vec<CallRecord>, StoreError> {
        let calls = self.calls.lock().map_err(|_| poisoned())?;
        Ok(calls
            .iter()
            .rev()
            .filter(|r| q.matches(r))
            .take(q.limit)
            .cloned()
            .collect())
    }

    async fn append_message(&self, record: &MessageRecord) -> Result<(), StoreError> {
        let mut list = self.messages.lock().map_err(|_| poisoned())?;
        list.push_back(record.clone());
        let oldest = record.at.saturating_sub(self.retention_ms);
        // Three or so records per text: keep room for as many texts as calls.
        while list.len() > self.max.saturating_mul(4) || list.front().is_some_and(|m| m.at < oldest)
        {
            list.pop_front();
        }
        Ok(())
    }

    async fn query_messages(&self, q: &MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        let list = self.messages.lock().map_err(|_| poisoned())?;
        Ok(messages::latest_per_text(list.iter().rev().cloned(), q))
    }
}

/// Stream key of the call records (one hash slot).
pub const CALLS_STREAM: &str = "ml:{rec}:calls";

/// Records in a Redis Stream. Connects on first use (and reconnects), so the relay
/// starts before its Redis.
pub struct RedisRecords {
    target: Target,
    conn: tokio::sync::OnceCell<Conn>,
    retention_ms: i64,
    timeout: Duration,
}

impl std::fmt::Debug for RedisRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRecords").finish_non_exhaustive()
    }
}

impl RedisRecords {
    /// Records in the Redis `client` points at.
    pub fn new(target: impl Into<Target>, retention: Duration, timeout: Duration) -> Self {
        Self {
            target: target.into(),
            conn: tokio::sync::OnceCell::new(),
            retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
            timeout,
        }
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        let connect = self.conn.get_or_try_init(|| self.target.connect(false));
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(c)) => Ok(c.clone()),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable("redis timed out".into())),
        }
    }

    fn xadd(&self, record: &CallRecord) -> Result<redis::Cmd, StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let min_id = record.end_at.saturating_sub(self.retention_ms);
        let mut cmd = redis::cmd("XADD");
        cmd.arg(CALLS_STREAM)
            .arg("MINID")
            .arg("~")
            .arg(min_id)
            .arg("*")
            .arg("r")
            .arg(json);
        Ok(cmd)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let connect = self.conn.get_or_try_init(|| self.target.connect(false));
        let mut conn = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(c)) => c.clone(),
            Ok(Err(e)) => return Err(StoreError::Unavailable(e.to_string())),
            Err(_) => return Err(StoreError::Unavailable("redis timed out".into())),
        };
        match tokio::time::timeout(self.timeout, cmd.query_async(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable("redis timed out".into())),
        }
    }
}

/// The lowest stream id a query for records since `since` (ms) reads: stream ids
/// are milliseconds since 1970 and never negative, so a `since` before 1970 (which
/// Redis would refuse as an id) reads from the start.
fn stream_lower_bound(since: Option<i64>) -> String {
    match since {
        Some(ms) if ms > 0 => ms.to_string(),
        _ => "-".to_owned(),
    }
}

/// Most entries one query scans (newest first) before filtering.
const SCAN_CAP: usize = 10_000;

#[async_trait]
impl RecordStore for RedisRecords {
    async fn append_call(&self, record: &CallRecord) -> Result<(), StoreError> {
        let _: String = self.run(&self.xadd(record)?).await?;
        Ok(())
    }

    async fn append_calls(&self, records: &[CallRecord]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for r in records {
            pipe.add_command(self.xadd(r)?).ignore();
        }
        let mut conn = self.conn().await?;
        match tokio::time::timeout(self.timeout, pipe.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable("redis timed out".into())),
        }
    }

    async fn query_calls(&self, q: &CallQuery) -> Result<Vec<CallRecord>, StoreError> {
        // Stream ids are the append time; a call's end is after its INVITE, so
        // `since` bounds the scan from below.
        let lower = stream_lower_bound(q.since);
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(CALLS_STREAM)
            .arg("+")
            .arg(lower)
            .arg("COUNT")
            .arg(SCAN_CAP);
        let entries: Vec<(String, Vec<(String, String)>)> = self.run(&cmd).await?;
        let mut out = Vec::new();
        for (_, fields) in entries {
            for (k, v) in fields {
                if k != "r" {
                    continue;
                }
                let r: CallRecord =
                    serde_json::from_str(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if q.matches(&r) {
                    out.push(r);
                }
            }
            if out.len() >= q.limit {
                break;
            }
        }
        out.truncate(q.limit);
        Ok(out)
    }

    async fn append_message(&self, record: &MessageRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let min_id = record.at.saturating_sub(self.retention_ms);
        let mut cmd = redis::cmd("XADD");
        cmd.arg(MESSAGES_STREAM)
            .arg("MINID")
            .arg("~")
            .arg(min_id)
            .arg("*")
            .arg("r")
            .arg(json);
        let _: String = self.run(&cmd).await?;
        Ok(())
    }

    async fn query_messages(&self, q: &MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        // Every record of a text is appended after it was received.
        let lower = stream_lower_bound(q.since);
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(MESSAGES_STREAM)
            .arg("+")
            .arg(lower)
            .arg("COUNT")
            .arg(SCAN_CAP);
        let entries: Vec<(String, Vec<(String, String)>)> = self.run(&cmd).await?;
        let mut records = Vec::with_capacity(entries.len());
        for (_, fields) in entries {
            for (k, v) in fields {
                if k == "r" {
                    records.push(
                        serde_json::from_str::<MessageRecord>(&v)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    );
                }
            }
        }
        Ok(messages::latest_per_text(records, q))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(id: &str, at: i64, shipment: &str) -> CallRecord {
        CallRecord {
            id: id.into(),
            binding_id: Some(format!("b-{shipment}")),
            shipment_id: Some(shipment.into()),
            pool: Some("p".into()),
            number: "+8617000000001".into(),
            direction: Some(Direction::CourierToCustomer),
            caller: "+86 138****0000".into(),
            callee: Some("+86 139****0000".into()),
            trunk: "local".into(),
            invite_at: at,
            ringing_at: None,
            answer_at: None,
            end_at: at + 10,
            duration_ms: 0,
            end_reason: "completed".into(),
            sip_status: 200,
            hangup_by: None,
            via: None,
            ivr: None,
        }
    }

    #[tokio::test]
    async fn memory_records_are_bounded_and_filtered_newest_first() {
        let m = MemoryRecords::new(3, Duration::from_secs(3600));
        for (i, s) in ["s1", "s2", "s1", "s2"].iter().enumerate() {
            m.append_call(&rec(&i.to_string(), 1000 + i as i64, s))
                .await
                .unwrap();
        }
        let all = m
            .query_calls(&CallQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["3", "2", "1"]
        );
        let s1 = m
            .query_calls(&CallQuery {
                shipment_id: Some("s1".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(s1.len(), 1);
        assert_eq!(s1[0].id, "2");
    }
}
