//! The delivery queue: where an accepted text waits until a worker has handed it to
//! a carrier. A text is acknowledged to the carrier it came from only after
//! [`SmsQueue::admit`] returned, so nothing acknowledged is lost.
//!
//! [`SmsQueue::admit`] is one atomic step: duplicate check (carrier message id),
//! rate limits (per sender per X per hour, per pool per minute; counters shared by
//! every relay) and the append. Two implementations:
//! - [`RedisQueue`]: a Redis Stream `ml:{sms}:queue` with the consumer group
//!   `relay`; `admit` is one Lua script, so a relay crash between the checks and the
//!   append cannot happen. Each relay reads as a named consumer: after a restart it
//!   first takes back its own unacknowledged entries, and entries of a relay that
//!   stopped answering are taken over after `claim_idle_ms` (`XAUTOCLAIM`). A text
//!   handed to a carrier is marked done (`ml:{sms}:done:<id>`, 24 h) in the same
//!   transaction that acknowledges it, and a worker skips a text marked done, so a
//!   redelivered entry is not sent twice. The one window left: a crash after the
//!   carrier accepted a text and before that transaction (microseconds) sends it
//!   again after the restart.
//! - [`MemoryQueue`]: in-process, **not durable** (everything queued is lost when
//!   the process stops); for development with the memory store.
//!
//! The in-process queue is in [`memory`].
//!
//! Every key carries the `{sms}` hash tag (one slot). Nothing in the queue holds a
//! number or a body in clear: jobs seal both (see [`super::job`]), rate-limit and
//! dedupe keys hold keyed hashes.

use std::sync::Mutex;
use std::time::Duration;

use crate::store::redis::conn::{Conn, Target};
use async_trait::async_trait;

mod memory;
pub use memory::MemoryQueue;

/// Stream of queued jobs.
pub const QUEUE_STREAM: &str = "ml:{sms}:queue";
/// Consumer group of the relays.
pub const GROUP: &str = "relay";
/// How long a carrier message id is remembered for duplicate detection.
pub const DEDUPE_TTL_MS: u64 = 24 * 3600 * 1000;
/// How long an incomplete concatenated message waits for its other parts.
pub const PARTS_TTL_MS: u64 = 3600 * 1000;

/// Why the queue cannot answer (the text is then not acknowledged, so the carrier
/// sends it again).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis failed or timed out.
    #[error("sms queue unavailable: {0}")]
    Unavailable(String),
}

/// What [`SmsQueue::admit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Appended (or, without a job, only remembered).
    Queued,
    /// Same carrier message id seen before: nothing done.
    Duplicate,
    /// Over the per-sender limit: dropped.
    SenderLimited,
    /// Over the per-pool limit: dropped.
    PoolLimited,
}

/// One admission.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    /// Dedupe key (namespaced, hashed) and how long to remember it.
    pub dedupe: Option<(String, u64)>,
    /// Per-sender-per-X rate key (hashed) with limit and window.
    pub sender_limit: Option<(String, u32, u64)>,
    /// Per-pool rate key with limit and window.
    pub pool_limit: Option<(String, u32, u64)>,
    /// Parts of a concatenated message to drop once admitted.
    pub parts_key: Option<String>,
    /// The job to append (`None`: only remember the dedupe key).
    pub job: Option<String>,
}

/// A queued job handed to a worker.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Queue entry id (stream id).
    pub entry: String,
    /// The job (JSON of [`super::job::StoredJob`]).
    pub job: String,
}

/// The queue interface shared by the Redis and memory implementations.
#[async_trait]
pub trait SmsQueue: Send + Sync + 'static {
    /// Dedupe, rate limits and append, atomically (see the module docs).
    async fn admit(&self, a: Admission) -> Result<Admitted, QueueError>;
    /// Stores part `seq` of `total` under `key`; all parts by seq once complete.
    async fn add_part(
        &self,
        key: &str,
        total: u8,
        seq: u8,
        part: &str,
    ) -> Result<Option<Vec<String>>, QueueError>;
    /// Up to `max` jobs for this relay, waiting at most `wait` for one.
    async fn take(&self, max: usize, wait: Duration) -> Result<Vec<Entry>, QueueError>;
    /// Keeps an entry this relay is still working on from being taken over.
    async fn touch(&self, entry: &str) -> Result<(), QueueError>;
    /// Whether the job was already handed to a carrier.
    async fn is_done(&self, job_id: &str) -> Result<bool, QueueError>;
    /// Removes the entry and marks the job done.
    async fn finish(&self, entry: &str, job_id: &str) -> Result<(), QueueError>;
    /// Jobs queued or in flight.
    async fn depth(&self) -> Result<u64, QueueError>;
    /// Remembers what a delivery receipt for `carrier_id` belongs to.
    async fn put_receipt(&self, carrier_id: &str, value: &str) -> Result<(), QueueError>;
    /// Takes what [`SmsQueue::put_receipt`] remembered.
    async fn take_receipt(&self, carrier_id: &str) -> Result<Option<String>, QueueError>;
}

const ADMIT_LUA: &str = r"
if ARGV[1] == '1' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return 'dup' end
end
if ARGV[3] == '1' then
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
  if n > tonumber(ARGV[4]) then return 'sender' end
end
if ARGV[6] == '1' then
  local n = redis.call('INCR', KEYS[3])
  if n == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[8]) end
  if n > tonumber(ARGV[7]) then return 'pool' end
end
if ARGV[9] ~= '' then redis.call('XADD', KEYS[4], '*', 'j', ARGV[9]) end
if ARGV[10] == '1' then redis.call('DEL', KEYS[5]) end
return 'ok'
";

const PART_LUA: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return redis.call('HGETALL', KEYS[1])
end
return false
";

/// The Redis Stream queue. Connects lazily and reconnects by itself.
pub struct RedisQueue {
    target: Target,
    conn: tokio::sync::OnceCell<Conn>,
    /// A second connection for blocking reads (`XREADGROUP BLOCK`), so they never
    /// hold up admissions pipelined on the first.
    reader: tokio::sync::OnceCell<Conn>,
    consumer: String,
    claim_idle_ms: u64,
    timeout: Duration,
    admit: redis::Script,
    part: redis::Script,
    /// Own pending entries not yet re-read since start.
    backlog_read: Mutex<bool>,
    last_claim: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

impl RedisQueue {
    /// A queue in the Redis `client` points at, read as `consumer`.
    pub fn new(
        target: impl Into<Target>,
        consumer: String,
        claim_idle_ms: u64,
        timeout: Duration,
    ) -> Self {
        Self {
            target: target.into(),
            conn: tokio::sync::OnceCell::new(),
            reader: tokio::sync::OnceCell::new(),
            consumer,
            claim_idle_ms,
            timeout,
            admit: redis::Script::new(ADMIT_LUA),
            part: redis::Script::new(PART_LUA),
            backlog_read: Mutex::new(false),
            last_claim: Mutex::new(None),
        }
    }

    async fn conn(&self) -> Result<Conn, QueueError> {
        let init = self.conn.get_or_try_init(|| async {
            let mut c = self.target.connect(false).await.map_err(unavailable)?;
            let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(QUEUE_STREAM)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut c)
                .await;
            match created {
                Ok(()) => Ok(c),
                Err(e) if e.to_string().contains("BUSYGROUP") => Ok(c),
                Err(e) => Err(unavailable(e)),
            }
        });
        match tokio::time::timeout(self.timeout, init).await {
            Ok(r) => r.cloned(),
            Err(_) => Err(QueueError::Unavailable("redis timed out".into())),
        }
    }

    async fn reader(&self) -> Result<Conn, QueueError> {
        // Make sure the group exists first.
        self.conn().await?;
        let init = self
            .reader
            .get_or_try_init(|| async { self.target.connect(true).await.map_err(unavailable) });
        match tokio::time::timeout(self.timeout, init).await {
            Ok(r) => r.cloned(),
            Err(_) => Err(QueueError::Unavailable("redis timed out".into())),
        }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
        timeout: Duration,
    ) -> Result<T, QueueError> {
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(QueueError::Unavailable("redis timed out".into())),
        }
    }
}

type StreamReply = Vec<(String, Vec<(String, Vec<(String, String)>)>)>;

fn entries_of(reply: Option<StreamReply>) -> Vec<Entry> {
    let mut out = Vec::new();
    for (_, items) in reply.unwrap_or_default() {
        for (id, fields) in items {
            if let Some((_, job)) = fields.into_iter().find(|(k, _)| k == "j") {
                out.push(Entry { entry: id, job });
            }
        }
    }
    out
}

#[async_trait]
impl SmsQueue for RedisQueue {
    async fn admit(&self, a: Admission) -> Result<Admitted, QueueError> {
        let mut conn = self.conn().await?;
        let none = "ml:{sms}:none".to_owned();
        let flag = |b: bool| if b { "1" } else { "0" };
        let mut inv = self.admit.prepare_invoke();
        let (dk, dttl) = a.dedupe.clone().unwrap_or((none.clone(), 0));
        let (sk, sl, sw) = a.sender_limit.clone().unwrap_or((none.clone(), 0, 0));
        let (pk, pl, pw) = a.pool_limit.clone().unwrap_or((none.clone(), 0, 0));
        let parts = a.parts_key.clone().unwrap_or(none);
        inv.key(&dk)
            .key(&sk)
            .key(&pk)
            .key(QUEUE_STREAM)
            .key(&parts)
            .arg(flag(a.dedupe.is_some()))
            .arg(dttl)
            .arg(flag(a.sender_limit.is_some()))
            .arg(sl)
            .arg(sw)
            .arg(flag(a.pool_limit.is_some() && pl > 0))
            .arg(pl)
            .arg(pw)
            .arg(a.job.as_deref().unwrap_or(""))
            .arg(flag(a.parts_key.is_some()));
        let r: String = self.run(inv.invoke_async(&mut conn), self.timeout).await?;
        Ok(match r.as_str() {
            "dup" => Admitted::Duplicate,
            "sender" => Admitted::SenderLimited,
            "pool" => Admitted::PoolLimited,
            _ => Admitted::Queued,
        })
    }

    async fn add_part(
        &self,
        key: &str,
        total: u8,
        seq: u8,
        part: &str,
    ) -> Result<Option<Vec<String>>, QueueError> {
        let mut conn = self.conn().await?;
        let mut inv = self.part.prepare_invoke();
        inv.key(key).arg(seq).arg(part).arg(total).arg(PARTS_TTL_MS);
        let r: Option<Vec<(u8, String)>> =
            self.run(inv.invoke_async(&mut conn), self.timeout).await?;
        Ok(r.map(|mut parts| {
            parts.sort_by_key(|(s, _)| *s);
            parts.into_iter().map(|(_, p)| p).collect()
        }))
    }

    async fn take(&self, max: usize, wait: Duration) -> Result<Vec<Entry>, QueueError> {
        let mut conn = self.conn().await?;
        // After a start: our own entries that were never acknowledged.
        let backlog_done = self.backlog_read.lock().map(|b| *b).unwrap_or(true);
        if !backlog_done {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(GROUP)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(max);
            cmd.arg("STREAMS").arg(QUEUE_STREAM).arg("0");
            let r: Option<StreamReply> = self.run(cmd.query_async(&mut conn), self.timeout).await?;
            let got = entries_of(r);
            if got.is_empty() {
                if let Ok(mut b) = self.backlog_read.lock() {
                    *b = true;
                }
            } else {
                return Ok(got);
            }
        }
        // Entries of relays that stopped answering.
        let claim_due = self.last_claim.lock().map(|mut l| {
            let due =
                l.is_none_or(|t| t.elapsed() >= Duration::from_millis(self.claim_idle_ms / 2));
            if due {
                *l = Some(std::time::Instant::now());
            }
            due
        });
        if claim_due.unwrap_or(false) {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(QUEUE_STREAM)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(self.claim_idle_ms)
                .arg("0-0")
                .arg("COUNT")
                .arg(max);
            let r: (String, Vec<(String, Vec<(String, String)>)>, redis::Value) =
                self.run(cmd.query_async(&mut conn), self.timeout).await?;
            let got = entries_of(Some(vec![(String::new(), r.1)]));
            if !got.is_empty() {
                return Ok(got);
            }
        }
        let mut reader = self.reader().await?;
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max);
        cmd.arg("BLOCK").arg(wait.as_millis() as u64);
        cmd.arg("STREAMS").arg(QUEUE_STREAM).arg(">");
        let r: Option<StreamReply> = self
            .run(cmd.query_async(&mut reader), wait + self.timeout)
            .await?;
        Ok(entries_of(r))
    }

    async fn touch(&self, entry: &str) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(QUEUE_STREAM)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(0)
            .arg(entry)
            .arg("JUSTID");
        let _: redis::Value = self.run(cmd.query_async(&mut conn), self.timeout).await?;
        Ok(())
    }

    async fn is_done(&self, job_id: &str) -> Result<bool, QueueError> {
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(format!("ml:{{sms}}:done:{job_id}"));
        let n: u32 = self.run(cmd.query_async(&mut conn), self.timeout).await?;
        Ok(n > 0)
    }

    async fn finish(&self, entry: &str, job_id: &str) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let mut p = redis::pipe();
        p.atomic()
            .cmd("SET")
            .arg(format!("ml:{{sms}}:done:{job_id}"))
            .arg(1)
            .arg("PX")
            .arg(DEDUPE_TTL_MS)
            .ignore()
            .cmd("XACK")
            .arg(QUEUE_STREAM)
            .arg(GROUP)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(QUEUE_STREAM)
            .arg(entry)
            .ignore();
        let _: () = self.run(p.query_async(&mut conn), self.timeout).await?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(QUEUE_STREAM);
        self.run(cmd.query_async(&mut conn), self.timeout).await
    }

    async fn put_receipt(&self, carrier_id: &str, value: &str) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("ml:{{sms}}:rcpt:{carrier_id}"))
            .arg(value)
            .arg("PX")
            .arg(3 * DEDUPE_TTL_MS);
        let _: () = self.run(cmd.query_async(&mut conn), self.timeout).await?;
        Ok(())
    }

    async fn take_receipt(&self, carrier_id: &str) -> Result<Option<String>, QueueError> {
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(format!("ml:{{sms}}:rcpt:{carrier_id}"));
        self.run(cmd.query_async(&mut conn), self.timeout).await
    }
}
