//! Per-API-key rate limits (GCRA via `governor`, one state per key).
//!
//! Each key may make `rate_per_key_per_s` requests per second on average with bursts
//! up to `rate_burst`. A refused request gets 429 and `Retry-After` in whole seconds
//! (rounded up, at least 1). Limits are per process: several relays behind a load
//! balancer each allow the full rate.

use std::num::NonZeroU32;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::HttpError;
use super::ApiError;

/// The keyed limiter (keyed by the API key's index in the configuration).
#[derive(Debug)]
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<usize>,
}

impl RateLimits {
    /// Builds limits from the `[api]` settings; zero is a configuration error.
    pub fn new(per_s: u32, burst: u32) -> Result<Self, ApiError> {
        let per_s = NonZeroU32::new(per_s).ok_or_else(|| ApiError::Config {
            field: "api.rate_per_key_per_s".into(),
            message: "must be at least 1".into(),
        })?;
        let burst = NonZeroU32::new(burst).ok_or_else(|| ApiError::Config {
            field: "api.rate_burst".into(),
            message: "must be at least 1".into(),
        })?;
        let quota = Quota::per_second(per_s).allow_burst(burst);
        Ok(Self {
            limiter: RateLimiter::keyed(quota),
        })
    }

    /// Takes one request from `key`'s allowance, or 429 with `Retry-After`.
    pub fn check(&self, key: usize) -> Result<(), HttpError> {
        match self.limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(HttpError::rate_limited(secs.max(1)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn burst_then_429_with_retry_after() {
        let l = RateLimits::new(1, 3).unwrap();
        for _ in 0..3 {
            l.check(0).unwrap();
        }
        let e = l.check(0).unwrap_err();
        assert_eq!(e.status, 429);
        assert_eq!(e.retry_after, Some(1));
        // Another key has its own allowance.
        l.check(1).unwrap();
        assert!(RateLimits::new(0, 1).is_err());
    }
}
