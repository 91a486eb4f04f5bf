//! The Pixlpay REST API client (pixlpay-api.md §1-§7).

mod client;
mod error;
mod pages;
mod rate_limit;
mod retry;
mod stats;

pub use client::{InvalidStoreUrl, MAX_PER_PAGE, PageMeta, PixlpayClient, PixlpayConfig, ProductChanges, ProductPage};
pub use error::PixlpayError;
pub use pages::PageWalker;
pub use rate_limit::RateLimiter;
pub use retry::RetryPolicy;
pub use stats::ClientStatsSnapshot;
