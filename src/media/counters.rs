//! Forwarding counters: worker-local [`Local`] figures, flushed once per wake-up
//! into the relay-wide [`Counters`] (atomics) and once per second to `metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Relay-wide counters (sums over workers).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub relayed_packets: AtomicU64,
    pub relayed_bytes: AtomicU64,
    pub dropped_unknown_source: AtomicU64,
    pub dropped_no_session: AtomicU64,
    pub dropped_send_error: AtomicU64,
    pub latches: AtomicU64,
    pub timeouts: AtomicU64,
}

/// One worker's counts since its last flush.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Local {
    pub(super) relayed_packets: u64,
    pub(super) relayed_bytes: u64,
    pub(super) unknown_source: u64,
    pub(super) no_session: u64,
    pub(super) send_error: u64,
    pub(super) latches: u64,
    pub(super) timeouts: u64,
}

impl Local {
    pub(super) fn is_zero(&self) -> bool {
        self.relayed_packets
            + self.unknown_source
            + self.no_session
            + self.send_error
            + self.latches
            + self.timeouts
            == 0
    }

    pub(super) fn add(&mut self, o: &Local) {
        self.relayed_packets += o.relayed_packets;
        self.relayed_bytes += o.relayed_bytes;
        self.unknown_source += o.unknown_source;
        self.no_session += o.no_session;
        self.send_error += o.send_error;
        self.latches += o.latches;
        self.timeouts += o.timeouts;
    }

    pub(super) fn publish(&self, c: &Counters) {
        let r = Ordering::Relaxed;
        c.relayed_packets.fetch_add(self.relayed_packets, r);
        c.relayed_bytes.fetch_add(self.relayed_bytes, r);
        c.dropped_unknown_source.fetch_add(self.unknown_source, r);
        c.dropped_no_session.fetch_add(self.no_session, r);
        c.dropped_send_error.fetch_add(self.send_error, r);
        c.latches.fetch_add(self.latches, r);
        c.timeouts.fetch_add(self.timeouts, r);
    }

    pub(super) fn record_metrics(&self) {
        metrics::counter!("maskline_media_relayed_packets_total").increment(self.relayed_packets);
        metrics::counter!("maskline_media_relayed_bytes_total").increment(self.relayed_bytes);
        for (reason, n) in [
            ("unknown_source", self.unknown_source),
            ("no_session", self.no_session),
            ("send_error", self.send_error),
        ] {
            metrics::counter!("maskline_media_dropped_packets_total", "reason" => reason)
                .increment(n);
        }
        metrics::counter!("maskline_media_latches_total").increment(self.latches);
        metrics::counter!("maskline_media_timeouts_total").increment(self.timeouts);
    }
}
