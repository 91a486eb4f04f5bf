//! One pacer per API token per process, shared by every concurrent caller: requests leave evenly spaced at the token's
//! requests per minute, and a 429's `Retry-After` holds every caller back, not just the one that was refused.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Requests are spaced this much wider than the nominal rate, so that arrival jitter on the network never lets a
/// sliding window on Pixlpay's side count one request too many. 2% of a full sync's time buys no 429s.
const SAFETY_MARGIN: f64 = 1.02;

#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next_slot: Instant,
}

impl RateLimiter {
    /// Paces to `requests_per_minute` (at least 1).
    pub fn per_minute(requests_per_minute: u32) -> Self {
        let rpm = requests_per_minute.max(1);
        let interval = Duration::from_secs_f64(60.0 / f64::from(rpm) * SAFETY_MARGIN);
        Self {
            interval,
            state: Mutex::new(State {
                next_slot: Instant::now(),
            }),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this caller's slot. Slots are handed out in call order, one interval apart.
    pub async fn acquire(&self) {
        let slot = {
            let mut state = self.state.lock().expect("rate limiter lock poisoned");
            let slot = state.next_slot.max(Instant::now());
            state.next_slot = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Holds every caller back for `wait` from now (a 429's Retry-After). Slots already handed out are not recalled:
    /// their callers see the 429 themselves and come back through here.
    pub fn hold_for(&self, wait: Duration) {
        let mut state = self.state.lock().expect("rate limiter lock poisoned");
        state.next_slot = state.next_slot.max(Instant::now() + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_concurrent_callers_evenly() {
        let limiter = std::sync::Arc::new(RateLimiter::per_minute(60));
        let start = Instant::now();
        let handles: Vec<_> = (0..5)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.unwrap() - start);
        }
        times.sort();
        // 5 requests at 60 rpm: 0, 1.02, 2.04, 3.06, 4.08 seconds.
        for (i, t) in times.iter().enumerate() {
            let expected = limiter.interval() * i as u32;
            assert!(
                t.abs_diff(expected) < Duration::from_millis(5),
                "request {i} at {t:?}, expected {expected:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_delays_the_next_caller() {
        let limiter = RateLimiter::per_minute(6000);
        limiter.acquire().await;
        let start = Instant::now();
        limiter.hold_for(Duration::from_secs(3));
        limiter.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(3));
    }
}
