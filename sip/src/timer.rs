//! SIP timer values (RFC 3261 §17 and table 4, RFC 6026).
//!
//! This module owns the base timer constants T1, T2, T4 and the durations
//! derived from them. Nothing here reads a clock: the transaction layer is
//! sans-IO and takes `now` from its caller, so these are plain durations that
//! get added to the caller's instants. Tests can therefore drive every timer
//! with explicit instants.

use std::time::Duration;

/// Floor for every retransmission interval, so that a zero T1 or T2 in a
/// configuration cannot make the timer loop spin at one instant.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Base timer values. The defaults are RFC 3261's: T1 = 500 ms, T2 = 4 s,
/// T4 = 5 s, and timer D = 32 s.
///
/// ```
/// use std::time::Duration;
/// use maskline_sip::timer::TimerConfig;
///
/// let t = TimerConfig::default();
/// assert_eq!(t.timeout(), Duration::from_secs(32)); // timers B, F, H, J, L, M = 64*T1
/// let fast = TimerConfig { t1: Duration::from_millis(100), ..t };
/// assert_eq!(fast.timeout(), Duration::from_millis(6400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; initial retransmission interval.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE
    /// responses.
    pub t2: Duration,
    /// Maximum time a message stays in the network.
    pub t4: Duration,
    /// Timer D: how long an INVITE client transaction absorbs response
    /// retransmissions over an unreliable transport (at least 32 s).
    pub timer_d: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

impl TimerConfig {
    /// 64*T1: timers B, F, H, J (unreliable), L and M.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// The next retransmission interval after `current`, capped at T2
    /// (timers E and G), and never below [`MIN_INTERVAL`].
    pub fn backoff_capped(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.t2).max(MIN_INTERVAL)
    }
}
