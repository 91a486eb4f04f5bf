//! What each Lambda does with its event, free of the Lambda runtime types so it is tested by calling it directly.
//! The mains in `functions/` only load config, build clients and hand events here.

pub mod full_sync;
