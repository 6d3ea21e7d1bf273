//! The in-process queue for the memory store: the same admission rules as the
//! Redis queue (dedupe, rate limits, parts), in one mutex. **Not durable**: what
//! is queued is lost when the process stops.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Admission, Admitted, Entry, QueueError, SmsQueue, DEDUPE_TTL_MS, PARTS_TTL_MS};
use crate::bindings::UnixMs;

/// In-process queue (memory store): **not durable**.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<MemState>,
    notify: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct MemState {
    seq: u64,
    queue: VecDeque<Entry>,
    in_flight: HashSet<String>,
    expiring: HashMap<String, (u64, UnixMs)>,
    parts: HashMap<String, (HashMap<u8, String>, UnixMs)>,
    done: HashMap<String, UnixMs>,
    receipts: HashMap<String, String>,
}

fn now() -> UnixMs {
    crate::bindings::now_ms()
}

fn poisoned() -> QueueError {
    QueueError::Unavailable("queue lock poisoned".into())
}

impl MemState {
    /// Increments a counter that lives `window` ms; returns the new value.
    fn bump(&mut self, key: &str, window: u64) -> u64 {
        let t = now();
        let e = self
            .expiring
            .entry(key.to_owned())
            .or_insert((0, t + window as i64));
        if e.1 <= t {
            *e = (0, t + window as i64);
        }
        e.0 += 1;
        e.0
    }

    fn sweep(&mut self) {
        let t = now();
        if self.expiring.len() > 100_000 {
            self.expiring.retain(|_, (_, until)| *until > t);
        }
        if self.done.len() > 100_000 {
            self.done.retain(|_, until| *until > t);
        }
        self.parts.retain(|_, (_, until)| *until > t);
    }
}

#[async_trait]
impl SmsQueue for MemoryQueue {
    async fn admit(&self, a: Admission) -> Result<Admitted, QueueError> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        s.sweep();
        if let Some((k, ttl)) = &a.dedupe {
            if s.expiring.get(k).is_some_and(|(_, until)| *until > now()) {
                return Ok(Admitted::Duplicate);
            }
            s.expiring.insert(k.clone(), (1, now() + *ttl as i64));
        }
        if let Some((k, limit, window)) = &a.sender_limit {
            if s.bump(k, *window) > u64::from(*limit) {
                return Ok(Admitted::SenderLimited);
            }
        }
        if let Some((k, limit, window)) = &a.pool_limit {
            if *limit > 0 && s.bump(k, *window) > u64::from(*limit) {
                return Ok(Admitted::PoolLimited);
            }
        }
        if let Some(job) = a.job {
            s.seq += 1;
            let entry = format!("{}-{}", now(), s.seq);
            s.queue.push_back(Entry { entry, job });
            self.notify.notify_one();
        }
        if let Some(p) = &a.parts_key {
            s.parts.remove(p);
        }
        Ok(Admitted::Queued)
    }

    async fn add_part(
        &self,
        key: &str,
        total: u8,
        seq: u8,
        part: &str,
    ) -> Result<Option<Vec<String>>, QueueError> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        let until = now() + PARTS_TTL_MS as i64;
        let e = s
            .parts
            .entry(key.to_owned())
            .or_insert_with(|| (HashMap::new(), until));
        e.0.insert(seq, part.to_owned());
        e.1 = until;
        if e.0.len() >= usize::from(total) {
            let mut v: Vec<(u8, String)> = e.0.iter().map(|(k, v)| (*k, v.clone())).collect();
            v.sort_by_key(|(k, _)| *k);
            return Ok(Some(v.into_iter().map(|(_, p)| p).collect()));
        }
        Ok(None)
    }

    async fn take(&self, max: usize, wait: Duration) -> Result<Vec<Entry>, QueueError> {
        let notified = self.notify.notified();
        {
            let mut s = self.state.lock().map_err(|_| poisoned())?;
            if !s.queue.is_empty() {
                let n = max.min(s.queue.len());
                let got: Vec<Entry> = s.queue.drain(..n).collect();
                for e in &got {
                    s.in_flight.insert(e.entry.clone());
                }
                return Ok(got);
            }
        }
        let _ = tokio::time::timeout(wait, notified).await;
        Ok(Vec::new())
    }

    async fn touch(&self, _entry: &str) -> Result<(), QueueError> {
        Ok(())
    }

    async fn is_done(&self, job_id: &str) -> Result<bool, QueueError> {
        let s = self.state.lock().map_err(|_| poisoned())?;
        Ok(s.done.contains_key(job_id))
    }

    async fn finish(&self, entry: &str, job_id: &str) -> Result<(), QueueError> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        s.in_flight.remove(entry);
        s.done
            .insert(job_id.to_owned(), now() + DEDUPE_TTL_MS as i64);
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let s = self.state.lock().map_err(|_| poisoned())?;
        Ok((s.queue.len() + s.in_flight.len()) as u64)
    }

    async fn put_receipt(&self, carrier_id: &str, value: &str) -> Result<(), QueueError> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        if s.receipts.len() > 100_000 {
            s.receipts.clear();
        }
        s.receipts.insert(carrier_id.to_owned(), value.to_owned());
        Ok(())
    }

    async fn take_receipt(&self, carrier_id: &str) -> Result<Option<String>, QueueError> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        Ok(s.receipts.remove(carrier_id))
    }
}
