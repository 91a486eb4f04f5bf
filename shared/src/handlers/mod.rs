//! What each Lambda does with its event, free of the Lambda runtime types so it is tested by calling it directly.
//! The mains in `functions/` only load config, build clients and hand events here.

pub mod full_sync;
pub mod product_worker;
pub mod webhook;

use std::time::{Duration, SystemTime};

/// The time assumed left when the invocation's deadline is unusable: Lambda's maximum timeout.
pub const UNKNOWN_DEADLINE: Duration = Duration::from_secs(900);

/// Time left before the invocation's `deadline`. Lambda always gives a future deadline; local emulators (cargo
/// lambda watch) may not, and then Lambda's longest timeout is assumed rather than stopping before any work.
pub fn time_left(deadline: SystemTime) -> Duration {
    match deadline.duration_since(SystemTime::now()) {
        Ok(remaining) if !remaining.is_zero() => remaining,
        _ => {
            tracing::warn!("invocation deadline missing or past; assuming {UNKNOWN_DEADLINE:?}");
            UNKNOWN_DEADLINE
        }
    }
}
