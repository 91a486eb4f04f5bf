//! `hex(HMAC-SHA256(key = whole "whsec_…" secret, message = raw body))`, sent bare in the signature header.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{SIGNATURE_HEADERS, first_header};
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// The secrets a receiver accepts. More than one during rotation: the old secret stays valid until every sender uses
/// the new one.
#[derive(Clone, Debug)]
pub struct WebhookSecrets(Vec<Secret>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretsError {
    #[error("no webhook secret configured")]
    None,
    #[error("webhook secret number {0} is empty")]
    Empty(usize),
}

impl WebhookSecrets {
    pub fn new(secrets: Vec<Secret>) -> Result<Self, WebhookSecretsError> {
        if secrets.is_empty() {
            return Err(WebhookSecretsError::None);
        }
        if let Some(i) = secrets.iter().position(|s| s.expose().trim().is_empty()) {
            return Err(WebhookSecretsError::Empty(i + 1));
        }
        Ok(Self(secrets))
    }

    /// A comma-separated list, as kept in one SSM parameter or environment variable (`whsec_new,whsec_old`).
    pub fn parse_list(list: &str) -> Result<Self, WebhookSecretsError> {
        Self::new(
            list.split(',')
                .map(|s| Secret::new(s.trim()))
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a signature was refused. Every case is a 401 for the sender; the variants exist for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing (X-Pixlpay-Signature or X-Webhook-Signature)")]
    Missing,
    #[error("signature header is empty")]
    Empty,
    #[error("signature is malformed: {0}")]
    Malformed(&'static str),
    #[error("signature does not match any configured secret")]
    Mismatch,
}

/// Signs a body as Pixlpay does. Used by the simulator, the fixtures and tests.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies `signature` (hex, either case) over `body` against each secret in constant time. Returns the index of the
/// secret that matched, so a rotation can tell when the old secret is no longer used.
pub fn verify_signature(secrets: &WebhookSecrets, signature: &[u8], body: &[u8]) -> Result<usize, SignatureError> {
    let text = std::str::from_utf8(signature)
        .map_err(|_| SignatureError::Malformed("not ASCII"))?
        .trim();
    if text.is_empty() {
        return Err(SignatureError::Empty);
    }
    if text.len() != 64 {
        return Err(SignatureError::Malformed("not 64 hex characters"));
    }
    let expected = hex::decode(text).map_err(|_| SignatureError::Malformed("not hexadecimal"))?;
    secrets
        .0
        .iter()
        .position(|secret| {
            let mut mac =
                HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
            mac.update(body);
            // verify_slice compares in constant time.
            mac.verify_slice(&expected).is_ok()
        })
        .ok_or(SignatureError::Mismatch)
}

/// Finds the signature header (`X-Pixlpay-Signature`, else `X-Webhook-Signature`) and verifies it.
pub fn verify_request(
    secrets: &WebhookSecrets,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<usize, SignatureError> {
    let signature = first_header(headers, &SIGNATURE_HEADERS).ok_or(SignatureError::Missing)?;
    verify_signature(secrets, signature, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;

    const BODY: &[u8] = br#"{"id":"wh_del_1","event_type":"product.updated","data":{"product_id":1}}"#;

    fn secrets() -> WebhookSecrets {
        WebhookSecrets::parse_list("whsec_current, whsec_previous").unwrap()
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn matches_the_documented_algorithm() {
        // Same as Python: hmac.new(b"whsec_test", body, hashlib.sha256).hexdigest(), the whole secret as key.
        let sig = sign(&Secret::new("whsec_test"), b"{}");
        assert_eq!(sig, "46bdc2a2e83964bd2695acc6a1f97162d8bafc135a071aa5cd5c99aae5481440");
    }

    #[test]
    fn each_rotated_secret_verifies_and_is_identified() {
        let s = secrets();
        assert_eq!(
            verify_signature(&s, sign(&Secret::new("whsec_current"), BODY).as_bytes(), BODY),
            Ok(0)
        );
        assert_eq!(
            verify_signature(&s, sign(&Secret::new("whsec_previous"), BODY).as_bytes(), BODY),
            Ok(1)
        );
        assert_eq!(
            verify_signature(&s, sign(&Secret::new("whsec_retired"), BODY).as_bytes(), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_every_malformed_signature() {
        let s = secrets();
        let good = sign(&Secret::new("whsec_current"), BODY);
        assert_eq!(verify_signature(&s, good.to_uppercase().as_bytes(), BODY), Ok(0));
        assert_eq!(verify_signature(&s, b"", BODY), Err(SignatureError::Empty));
        assert_eq!(
            verify_signature(&s, &good.as_bytes()[..63], BODY),
            Err(SignatureError::Malformed("not 64 hex characters"))
        );
        assert_eq!(
            verify_signature(&s, format!("sha256={good}").as_bytes(), BODY),
            Err(SignatureError::Malformed("not 64 hex characters"))
        );
        let non_hex = format!("{}zz", &good[..62]);
        assert_eq!(
            verify_signature(&s, non_hex.as_bytes(), BODY),
            Err(SignatureError::Malformed("not hexadecimal"))
        );
        let mut flipped = BODY.to_vec();
        flipped[10] ^= 1;
        assert_eq!(
            verify_signature(&s, good.as_bytes(), &flipped),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn reads_either_header_family() {
        let s = secrets();
        let good = sign(&Secret::new("whsec_current"), BODY);
        assert_eq!(verify_request(&s, &headers("x-pixlpay-signature", &good), BODY), Ok(0));
        assert_eq!(verify_request(&s, &headers("x-webhook-signature", &good), BODY), Ok(0));
        assert_eq!(
            verify_request(&s, &HeaderMap::new(), BODY),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn secret_lists_refuse_empty_and_redact() {
        assert_eq!(
            WebhookSecrets::parse_list(" , ").unwrap_err(),
            WebhookSecretsError::None
        );
        assert!(WebhookSecrets::new(vec![Secret::new("a"), Secret::new(" ")]).is_err());
        assert!(!format!("{:?}", secrets()).contains("whsec_current"));
    }

    proptest! {
        #[test]
        fn any_body_signed_by_a_configured_secret_verifies_and_any_change_fails(
            body in proptest::collection::vec(any::<u8>(), 0..512), flip in any::<usize>(),
        ) {
            let s = secrets();
            let sig = sign(&Secret::new("whsec_previous"), &body);
            prop_assert_eq!(verify_signature(&s, sig.as_bytes(), &body), Ok(1));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip % changed.len();
                changed[i] ^= 0x01;
                prop_assert_eq!(verify_signature(&s, sig.as_bytes(), &changed), Err(SignatureError::Mismatch));
            }
        }
    }
}
