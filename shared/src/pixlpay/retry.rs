//! How often and how long the client retries. Exponential backoff with jitter, so that many callers refused at once
//! do not come back at once.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after a 5xx, a timeout, a connection error or a malformed body (so `max_retries + 1` attempts).
    pub max_retries: u32,
    /// 429s waited out before giving up. Large: rate limiting should delay work, not fail it.
    pub max_rate_limit_waits: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            max_rate_limit_waits: 30,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): half of `base * 2^(retry-1)` fixed, the other half random,
    /// capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1).min(20)));
        let ceiling = exp.min(self.max_backoff);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let policy = RetryPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Default::default()
        };
        for retry in 1..=10 {
            let ceiling = (Duration::from_millis(100) * 2u32.pow(retry - 1)).min(Duration::from_secs(1));
            for _ in 0..50 {
                let wait = policy.backoff(retry);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "retry {retry}: {wait:?} outside {ceiling:?}"
                );
            }
        }
        let samples: std::collections::HashSet<_> = (0..20).map(|_| policy.backoff(3)).collect();
        assert!(samples.len() > 1, "no jitter");
    }
}
