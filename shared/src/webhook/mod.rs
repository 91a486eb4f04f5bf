//! Pixlpay webhooks: signature verification (pure, constant time, several secrets for rotation) and the envelope
//! parser that accepts every documented shape (pixlpay-api.md §8).

mod envelope;
mod signature;

pub use envelope::{EnvelopeError, ProductEvent, ProductEventKind, WebhookEvent, parse_envelope};
pub use signature::{SignatureError, WebhookSecrets, WebhookSecretsError, sign, verify_request, verify_signature};

/// Header names, first the `X-Pixlpay-*` family, then the `X-Webhook-*` family. The docs disagree on which Pixlpay
/// sends (pixlpay-api.md §8.4), so each lookup takes the first one present.
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-pixlpay-signature", "x-webhook-signature"];
pub const EVENT_HEADERS: [&str; 2] = ["x-pixlpay-event", "x-webhook-event"];
pub const DELIVERY_ID_HEADERS: [&str; 2] = ["x-pixlpay-delivery-id", "x-webhook-id"];

/// The first of `names` present in `headers`, as raw bytes.
pub(crate) fn first_header<'h>(headers: &'h http::HeaderMap, names: &[&str]) -> Option<&'h [u8]> {
    names.iter().find_map(|name| headers.get(*name)).map(|v| v.as_bytes())
}
