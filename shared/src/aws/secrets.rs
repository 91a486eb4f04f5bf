//! Where a secret comes from: an SSM SecureString parameter in AWS, or a plain value for local runs.

use aws_sdk_ssm::Client;

use crate::secret::Secret;

#[derive(Clone, Debug)]
pub enum SecretSource {
    /// The name of an SSM parameter (SecureString), read with decryption.
    Ssm(String),
    /// The value itself (local runs only).
    Plain(Secret),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretSourceError {
    #[error("reading SSM parameter {name}: {message}")]
    Ssm { name: String, message: String },
    #[error("SSM parameter {0} is empty")]
    Empty(String),
}

impl SecretSource {
    pub async fn resolve(&self, ssm: &Client) -> Result<Secret, SecretSourceError> {
        match self {
            Self::Plain(secret) => Ok(secret.clone()),
            Self::Ssm(name) => {
                let output = ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| SecretSourceError::Ssm {
                        name: name.clone(),
                        message: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
                    })?;
                let value = output.parameter.and_then(|p| p.value).unwrap_or_default();
                if value.trim().is_empty() {
                    return Err(SecretSourceError::Empty(name.clone()));
                }
                Ok(Secret::new(value.trim()))
            }
        }
    }
}
