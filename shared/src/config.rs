//! Settings from the environment. A missing or invalid setting stops start-up with a message that names the variable,
//! so a misconfigured deployment fails on its first invocation instead of half-working.

use std::str::FromStr;
use std::time::Duration;

use crate::aws::SecretSource;
use crate::handlers::webhook::WebhookConfig;
use crate::pixlpay::{MAX_PER_PAGE, PixlpayConfig, RetryPolicy};
use crate::secret::Secret;
use crate::sync::{FullSyncConfig, WorkerConfig};
use crate::webhook::WebhookSecrets;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// Reads variables through `lookup` (the process environment in a Lambda; a map in tests).
pub struct Env<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, name: &'static str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError {
            variable: name,
            problem: "is required but not set".into(),
        })
    }

    pub fn parsed<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        valid: impl Fn(&T) -> bool,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let Some(text) = self.get(name) else { return Ok(default) };
        let value = text.parse::<T>().map_err(|_| ConfigError {
            variable: name,
            problem: format!("must be {expected}, got {text:?}"),
        })?;
        if valid(&value) {
            Ok(value)
        } else {
            Err(ConfigError {
                variable: name,
                problem: format!("must be {expected}, got {text:?}"),
            })
        }
    }

    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.get(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ConfigError {
                variable: name,
                problem: format!("must be true or false, got {other:?}"),
            }),
        }
    }

    /// A secret given as an SSM parameter name (`<NAME>_PARAM`, for AWS) or a plain value (`<NAME>`, local runs).
    pub fn secret(&self, param_var: &'static str, plain_var: &'static str) -> Result<SecretSource, ConfigError> {
        match (self.get(param_var), self.get(plain_var)) {
            (Some(name), _) => Ok(SecretSource::Ssm(name)),
            (None, Some(value)) => Ok(SecretSource::Plain(Secret::new(value))),
            (None, None) => Err(ConfigError {
                variable: param_var,
                problem: format!("(or {plain_var} for local runs) is required"),
            }),
        }
    }
}

/// Everything a function needs to talk to Pixlpay.
#[derive(Debug, Clone)]
pub struct PixlpaySettings {
    pub store_url: String,
    pub token: SecretSource,
    pub requests_per_minute: u32,
    pub writes_enabled: bool,
}

impl PixlpaySettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let store_url = env.required("PIXLPAY_STORE_URL")?;
        // Validate the URL now, so a typo fails start-up rather than the first request.
        PixlpayConfig::new(&store_url, Secret::new("check")).map_err(|e| ConfigError {
            variable: "PIXLPAY_STORE_URL",
            problem: e.reason,
        })?;
        Ok(Self {
            store_url,
            token: env.secret("PIXLPAY_API_TOKEN_PARAM", "PIXLPAY_API_TOKEN")?,
            requests_per_minute: env.parsed(
                "PIXLPAY_RPM",
                60,
                |v| (1..=1000).contains(v),
                "an integer from 1 to 1000",
            )?,
            writes_enabled: env.flag("PIXLPAY_WRITES_ENABLED")?,
        })
    }

    pub fn client_config(&self, token: Secret) -> PixlpayConfig {
        let mut config = PixlpayConfig::new(&self.store_url, token).expect("validated in from_env");
        config.requests_per_minute = self.requests_per_minute;
        config.writes_enabled = self.writes_enabled;
        config.request_timeout = Duration::from_secs(10);
        config.retry = RetryPolicy::default();
        config
    }
}

/// The tables and the bus.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    pub products_table: String,
    pub state_table: String,
    pub event_bus: String,
    pub event_source: String,
    /// How long audit entries are kept.
    pub audit_ttl: Duration,
}

impl StorageSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            products_table: env.required("PRODUCTS_TABLE")?,
            state_table: env.required("SYNC_STATE_TABLE")?,
            event_bus: env.required("EVENT_BUS_NAME")?,
            event_source: env.get("EVENT_SOURCE").unwrap_or_else(|| "pixlpay-sync".into()),
            audit_ttl: Duration::from_secs(
                env.parsed(
                    "AUDIT_TTL_DAYS",
                    90u64,
                    |d| (1..=3650).contains(d),
                    "days from 1 to 3650",
                )? * 24
                    * 3600,
            ),
        })
    }
}

pub fn full_sync_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<FullSyncConfig, ConfigError> {
    let defaults = FullSyncConfig::default();
    Ok(FullSyncConfig {
        per_page: env.parsed(
            "SYNC_PAGE_SIZE",
            MAX_PER_PAGE,
            |v| (1..=MAX_PER_PAGE).contains(v),
            "an integer from 1 to 100",
        )?,
        page_concurrency: env.parsed(
            "SYNC_PAGE_CONCURRENCY",
            defaults.page_concurrency,
            |v| (1..=16).contains(v),
            "an integer from 1 to 16",
        )?,
        write_concurrency: defaults.write_concurrency,
        delete_guard_share: env.parsed(
            "SYNC_DELETE_GUARD_PERCENT",
            10.0,
            |v: &f64| (0.0..=100.0).contains(v),
            "a percentage from 0 to 100",
        )? / 100.0,
        delete_guard_min: env.parsed(
            "SYNC_DELETE_GUARD_MIN",
            defaults.delete_guard_min,
            |_| true,
            "a whole number",
        )?,
    })
}

/// The webhook function's settings. The secrets stay a source until [`WebhookSettings::config`] resolves them.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub secrets: SecretSource,
    pub state_table: String,
    pub queue_url: String,
    pub dedup_ttl: Duration,
    pub max_event_age: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookSettingsError {
    #[error(transparent)]
    Source(#[from] crate::aws::SecretSourceError),
    #[error("configuration: WEBHOOK_SECRETS {0}")]
    Secrets(#[from] crate::webhook::WebhookSecretsError),
}

impl WebhookSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let max_age: u64 = env.parsed(
            "WEBHOOK_MAX_EVENT_AGE_SECS",
            0,
            |_| true,
            "a whole number of seconds (0: off)",
        )?;
        Ok(Self {
            // One comma-separated list: the current secret first, then any still being rotated out.
            secrets: env.secret("WEBHOOK_SECRETS_PARAM", "WEBHOOK_SECRETS")?,
            state_table: env.required("SYNC_STATE_TABLE")?,
            queue_url: env.required("WORK_QUEUE_URL")?,
            dedup_ttl: Duration::from_secs(
                env.parsed(
                    "WEBHOOK_DEDUP_TTL_HOURS",
                    168u64,
                    |h| (1..=24 * 365).contains(h),
                    "hours from 1 to 8760",
                )? * 3600,
            ),
            max_event_age: (max_age > 0).then(|| Duration::from_secs(max_age)),
        })
    }

    /// Resolves the secrets (SSM in AWS) into the handler's config.
    pub async fn config(&self, ssm: &aws_sdk_ssm::Client) -> Result<WebhookConfig, WebhookSettingsError> {
        let list = self.secrets.resolve(ssm).await?;
        let mut config = WebhookConfig::new(WebhookSecrets::parse_list(list.expose())?);
        config.dedup_ttl = self.dedup_ttl;
        config.max_event_age = self.max_event_age;
        Ok(config)
    }
}

/// The status function's queues (it also reads `StorageSettings` and, for live reads, `PixlpaySettings`).
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub work_queue_url: String,
    pub dead_letter_queue_url: String,
}

impl StatusSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            work_queue_url: env.required("WORK_QUEUE_URL")?,
            dead_letter_queue_url: env.required("WORK_DLQ_URL")?,
        })
    }
}

/// The external-sync function's settings (it also reads `StorageSettings` and `PixlpaySettings`, whose
/// `PIXLPAY_WRITES_ENABLED` decides between writing to Pixlpay and keeping a pending push).
#[derive(Debug, Clone)]
pub struct ExternalSyncSettings {
    pub policy: crate::sync::ConflictPolicy,
    pub rejects_queue_url: String,
}

impl ExternalSyncSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let policy = match env.get("EXTERNAL_CONFLICT_POLICY") {
            None => crate::sync::ConflictPolicy::LastWriterWins,
            Some(raw) => raw.parse().map_err(|problem| ConfigError {
                variable: "EXTERNAL_CONFLICT_POLICY",
                problem,
            })?,
        };
        Ok(Self {
            policy,
            rejects_queue_url: env.required("EXTERNAL_REJECTS_QUEUE_URL")?,
        })
    }
}

pub fn worker_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<WorkerConfig, ConfigError> {
    let defaults = WorkerConfig::default();
    Ok(WorkerConfig {
        concurrency: env.parsed(
            "WORKER_CONCURRENCY",
            defaults.concurrency,
            |v| (1..=10).contains(v),
            "an integer from 1 to 10",
        )?,
        skip_margin: Duration::from_secs(env.parsed(
            "WORKER_SKIP_MARGIN_SECS",
            defaults.skip_margin.as_secs(),
            |_| true,
            "a whole number of seconds",
        )?),
        rate_limit_delay: Duration::from_secs(env.parsed(
            "WORKER_RATE_LIMIT_DELAY_SECS",
            defaults.rate_limit_delay.as_secs(),
            |v| (1..=900).contains(v),
            "seconds from 1 to 900",
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn every_missing_or_invalid_setting_is_named() {
        let base = [
            ("PIXLPAY_STORE_URL", "https://s.pixlpay.net"),
            ("PIXLPAY_API_TOKEN", "sk_live_x"),
        ];
        assert!(PixlpaySettings::from_env(&env(&base)).is_ok());
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("PIXLPAY_API_TOKEN", "t")], "PIXLPAY_STORE_URL"),
            (
                vec![("PIXLPAY_STORE_URL", "not a url"), ("PIXLPAY_API_TOKEN", "t")],
                "PIXLPAY_STORE_URL",
            ),
            (
                vec![("PIXLPAY_STORE_URL", "https://s.pixlpay.net")],
                "PIXLPAY_API_TOKEN_PARAM",
            ),
            (vec![base[0], base[1], ("PIXLPAY_RPM", "0")], "PIXLPAY_RPM"),
            (vec![base[0], base[1], ("PIXLPAY_RPM", "fast")], "PIXLPAY_RPM"),
            (
                vec![base[0], base[1], ("PIXLPAY_WRITES_ENABLED", "maybe")],
                "PIXLPAY_WRITES_ENABLED",
            ),
        ];
        for (vars, named) in cases {
            let err = PixlpaySettings::from_env(&env(&vars)).unwrap_err();
            assert_eq!(err.variable, named, "{err}");
        }
        assert_eq!(
            StorageSettings::from_env(&env(&[])).unwrap_err().variable,
            "PRODUCTS_TABLE"
        );
        let tables = [
            ("PRODUCTS_TABLE", "p"),
            ("SYNC_STATE_TABLE", "s"),
            ("EVENT_BUS_NAME", "b"),
        ];
        assert_eq!(
            StorageSettings::from_env(&env(&tables)).unwrap().audit_ttl,
            Duration::from_secs(90 * 24 * 3600)
        );
        let zero = [tables[0], tables[1], tables[2], ("AUDIT_TTL_DAYS", "0")];
        assert_eq!(
            StorageSettings::from_env(&env(&zero)).unwrap_err().variable,
            "AUDIT_TTL_DAYS"
        );
        assert_eq!(
            full_sync_config(&env(&[("SYNC_PAGE_SIZE", "500")]))
                .unwrap_err()
                .variable,
            "SYNC_PAGE_SIZE"
        );
        assert_eq!(
            full_sync_config(&env(&[("SYNC_DELETE_GUARD_PERCENT", "150")]))
                .unwrap_err()
                .variable,
            "SYNC_DELETE_GUARD_PERCENT"
        );
        let guard = full_sync_config(&env(&[("SYNC_DELETE_GUARD_PERCENT", "25")])).unwrap();
        assert_eq!(guard.delete_guard_share, 0.25);
    }

    #[test]
    fn webhook_and_worker_settings_name_what_is_wrong() {
        let base = [
            ("WEBHOOK_SECRETS", "whsec_a,whsec_b"),
            ("SYNC_STATE_TABLE", "state"),
            ("WORK_QUEUE_URL", "http://q"),
        ];
        let settings = WebhookSettings::from_env(&env(&base)).unwrap();
        assert_eq!(settings.max_event_age, None);
        assert_eq!(settings.dedup_ttl, Duration::from_secs(7 * 24 * 3600));
        assert!(!format!("{settings:?}").contains("whsec_a"));
        let aged = [base[0], base[1], base[2], ("WEBHOOK_MAX_EVENT_AGE_SECS", "3600")];
        assert_eq!(
            WebhookSettings::from_env(&env(&aged)).unwrap().max_event_age,
            Some(Duration::from_secs(3600))
        );
        for (vars, named) in [
            (vec![base[1], base[2]], "WEBHOOK_SECRETS_PARAM"),
            (vec![base[0], base[2]], "SYNC_STATE_TABLE"),
            (vec![base[0], base[1]], "WORK_QUEUE_URL"),
            (
                vec![base[0], base[1], base[2], ("WEBHOOK_MAX_EVENT_AGE_SECS", "-1")],
                "WEBHOOK_MAX_EVENT_AGE_SECS",
            ),
            (
                vec![base[0], base[1], base[2], ("WEBHOOK_DEDUP_TTL_HOURS", "0")],
                "WEBHOOK_DEDUP_TTL_HOURS",
            ),
        ] {
            assert_eq!(WebhookSettings::from_env(&env(&vars)).unwrap_err().variable, named);
        }
        assert_eq!(
            worker_config(&env(&[("WORKER_CONCURRENCY", "0")]))
                .unwrap_err()
                .variable,
            "WORKER_CONCURRENCY"
        );
        assert_eq!(
            worker_config(&env(&[])).unwrap().concurrency,
            WorkerConfig::default().concurrency
        );
    }

    #[test]
    fn an_ssm_parameter_wins_over_a_plain_token_and_plain_tokens_never_print() {
        let both = env(&[
            ("PIXLPAY_API_TOKEN_PARAM", "/pixlpay/token"),
            ("PIXLPAY_API_TOKEN", "sk_live_secret"),
        ]);
        assert!(
            matches!(both.secret("PIXLPAY_API_TOKEN_PARAM", "PIXLPAY_API_TOKEN").unwrap(), SecretSource::Ssm(n) if n == "/pixlpay/token")
        );
        let plain = env(&[
            ("PIXLPAY_STORE_URL", "https://s.pixlpay.net"),
            ("PIXLPAY_API_TOKEN", "sk_live_secret"),
        ]);
        let settings = PixlpaySettings::from_env(&plain).unwrap();
        assert!(!format!("{settings:?}").contains("sk_live_secret"));
    }
}
