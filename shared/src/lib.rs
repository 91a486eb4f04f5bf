//! pixlpay-sync's shared crate: everything the Lambda functions have in common, so each main stays thin.
//!
//! - [`pixlpay`]: the Pixlpay REST client (pacing, retries, typed errors, page walking).
//! - [`product`]: the product model, tolerant of both documented dialects, with exact decimal prices.
//! - [`webhook`]: signature verification and envelope parsing for Pixlpay's webhooks.
//! - [`secret`]: secrets that never print.
//! - [`sync`]: the sync engine, its ports and sync health; [`status`]: the status report built from them.
#![deny(clippy::all)]

pub mod aws;
pub mod config;
pub mod handlers;
pub mod ingest;
pub mod pixlpay;
pub mod product;
pub mod secret;
pub mod status;
pub mod sync;
pub mod timestamp;
pub mod webhook;

pub use product::{Product, ProductId};
pub use secret::Secret;
