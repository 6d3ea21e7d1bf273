//! Refused requests (4xx) in the log without a line per request: each refusal is
//! logged at DEBUG and counted here by status, error code and API key name; a
//! periodic INFO line sums them up (nothing when there was nothing). A 429 burst or
//! a scan thus writes one line per period at INFO. Request metrics
//! (`maskline_http_requests_total`) count every refusal by status either way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Default period of the INFO summary of refused requests.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// The error code of an answer (set by `HttpError`'s response).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorCode(pub(crate) &'static str);

/// Where the auth extractor leaves the caller's key name for the request logger.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySlot(pub(crate) Arc<OnceLock<Arc<str>>>);

/// Counts of refusals since the last summary: (status, code, key name) → count.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    counts: Mutex<BTreeMap<(u16, &'static str, String), u64>>,
}

impl Refusals {
    /// Counts one refusal.
    pub(crate) fn record(&self, status: u16, code: &'static str, key: Option<&str>) {
        if let Ok(mut m) = self.counts.lock() {
            *m.entry((status, code, key.unwrap_or("-").to_owned()))
                .or_default() += 1;
        }
    }

    /// Logs the counts since the last call at INFO (if any) and resets them.
    pub(crate) fn summarize(&self) {
        let counts = match self.counts.lock() {
            Ok(mut m) => std::mem::take(&mut *m),
            Err(_) => return,
        };
        if counts.is_empty() {
            return;
        }
        let total: u64 = counts.values().sum();
        let by = counts
            .iter()
            .map(|((status, code, key), n)| format!("{status} {code} key={key}: {n}"))
            .collect::<Vec<_>>()
            .join("; ");
        tracing::info!(total, refused = %by, "requests refused since the last summary");
    }

    /// Summarizes every `every` until dropped (the task is aborted by the server).
    pub(crate) async fn run(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.summarize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_taken_by_the_summary() {
        let r = Refusals::default();
        r.record(401, "unauthorized", None);
        r.record(401, "unauthorized", None);
        r.record(429, "rate_limited", Some("platform"));
        assert_eq!(r.counts.lock().map(|m| m.len()).unwrap_or(0), 2);
        r.summarize();
        assert_eq!(r.counts.lock().map(|m| m.len()).unwrap_or(9), 0);
    }
}
