//! Settings: command-line flags with environment fallbacks, validated into a
//! plain [`Settings`] struct. No globals: tests build `Settings` literally.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::TokenTable;
use crate::domain::ids::AccountId;
pub use crate::grpc::limits::LimitsConfig;
use crate::persistence::DEFAULT_DATABASE_URL;
pub use crate::service::settings::{EngineConfig, LeaseConfig, TimeConfig};

/// Flags of `autoscaler serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file of settings: keys are these flags in snake_case
    /// (`database_url = "..."`); flags and environment variables override it.
    #[arg(long, env = "AUTOSCALER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address the gRPC server listens on.
    #[arg(long, env = "AUTOSCALER_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub meta: MetaArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
    /// Address of the Prometheus `/metrics` endpoint, or "off".
    #[arg(long, env = "AUTOSCALER_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: String,
    /// Cron schedule (seconds first, UTC) of the optimize cycle, or "off".
    #[arg(long, env = "AUTOSCALER_OPTIMIZE_SCHEDULE", default_value = "0 0 * * * *")]
    pub optimize_schedule: String,
    /// Cron schedule (seconds first, UTC) of the daily learn cycle, or "off".
    #[arg(long, env = "AUTOSCALER_LEARN_SCHEDULE", default_value = "off")]
    pub learn_schedule: String,
    #[command(flatten)]
    pub limits: LimitsArgs,
}

/// What one caller may hold of the server at a time.
#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// Seconds a call may run before it ends with DEADLINE_EXCEEDED; 0 turns
    /// it off. Calls that change budgets on Meta and WatchActions are exempt.
    #[arg(long, env = "AUTOSCALER_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,
    /// Calls in progress on one connection; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "AUTOSCALER_MAX_CONCURRENT_REQUESTS", default_value_t = 64)]
    pub max_concurrent_requests: usize,
    /// Open WatchActions streams per principal; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "AUTOSCALER_MAX_WATCH_STREAMS", default_value_t = 64)]
    pub max_watch_streams: usize,
}

impl LimitsArgs {
    /// Validates the limits.
    pub fn into_config(self) -> Result<LimitsConfig, ConfigError> {
        if self.request_timeout_secs > 24 * 3600 {
            return Err(ConfigError {
                setting: "AUTOSCALER_REQUEST_TIMEOUT_SECS",
                reason: "must be 0 to 86400".into(),
            });
        }
        if !(1..=10_000).contains(&self.max_concurrent_requests) {
            return Err(ConfigError {
                setting: "AUTOSCALER_MAX_CONCURRENT_REQUESTS",
                reason: "must be 1 to 10000".into(),
            });
        }
        if !(1..=10_000).contains(&self.max_watch_streams) {
            return Err(ConfigError { setting: "AUTOSCALER_MAX_WATCH_STREAMS", reason: "must be 1 to 10000".into() });
        }
        Ok(LimitsConfig {
            request_timeout: (self.request_timeout_secs > 0)
                .then(|| std::time::Duration::from_secs(self.request_timeout_secs)),
            max_concurrent_requests: self.max_concurrent_requests,
            max_watch_streams: self.max_watch_streams,
        })
    }
}

/// How the engine treats approvals and alerts.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Hours a pending action may wait for approval before it expires (its
    /// metrics are stale by then).
    #[arg(long, env = "AUTOSCALER_APPROVAL_TTL_HOURS", default_value_t = 24)]
    pub approval_ttl_hours: u32,
    /// Webhook (Slack-compatible JSON) for alerts; none when unset.
    #[arg(long, env = "AUTOSCALER_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// A budget change of at least this many minor units raises an alert.
    #[arg(long, env = "AUTOSCALER_ALERT_BUDGET_CHANGE_MINOR", default_value_t = 10_000)]
    pub alert_budget_change_minor: i64,
    /// `host:port` operators reach the gRPC server at, used in the approve and
    /// reject commands alerts carry; the listen address when unset.
    #[arg(long, env = "AUTOSCALER_ALERT_SERVER_ADDRESS")]
    pub alert_server_address: Option<String>,
    /// Hour of the day (0-23, in --approval-digest-time-zone) at which the
    /// webhook gets a digest of the actions still waiting for approval, or "off".
    #[arg(long, env = "AUTOSCALER_APPROVAL_DIGEST_HOUR", default_value = "9")]
    pub approval_digest_hour: String,
    /// IANA time zone of the digest hour (`Europe/Berlin`); daylight saving included.
    #[arg(long, env = "AUTOSCALER_APPROVAL_DIGEST_TIME_ZONE", default_value = "UTC")]
    pub approval_digest_time_zone: String,
    /// Strategy of the rule created for an account without one:
    /// `thresholds` (the decision table) or `marginal-roas`.
    #[arg(long, env = "AUTOSCALER_DEFAULT_STRATEGY", default_value = "thresholds")]
    pub default_strategy: String,
    /// Lowest hourly multiplier of a learned budget schedule (1 = daily / 24).
    #[arg(long, env = "AUTOSCALER_TIME_MIN_HOURLY_MULTIPLIER", default_value_t = 0.5)]
    pub time_min_hourly_multiplier: f64,
    /// Highest hourly multiplier of a learned budget schedule (at most 8, Meta's cap).
    #[arg(long, env = "AUTOSCALER_TIME_MAX_HOURLY_MULTIPLIER", default_value_t = 2.0)]
    pub time_max_hourly_multiplier: f64,
    /// Below this profile confidence a budget schedule stays flat.
    #[arg(long, env = "AUTOSCALER_TIME_MIN_CONFIDENCE", default_value_t = 0.3)]
    pub time_min_confidence: f64,
    /// From this confidence on a schedule follows the profile fully (blended in between).
    #[arg(long, env = "AUTOSCALER_TIME_FULL_CONFIDENCE", default_value_t = 0.7)]
    pub time_full_confidence: f64,
    /// Days of hourly data (ending with the account's latest) that learning uses.
    #[arg(long, env = "AUTOSCALER_TIME_LOOKBACK_DAYS", default_value_t = 28)]
    pub time_lookback_days: u32,
    /// Past days fetched from Meta's hourly breakdown when learning; 0 turns the backfill off.
    #[arg(long, env = "AUTOSCALER_TIME_BACKFILL_DAYS", default_value_t = 28)]
    pub time_backfill_days: u32,
    /// Seconds a cycle lease or an executor's liveness mark lasts without
    /// renewal: how long a crashed process can block cycles and hold its
    /// interrupted actions before another process takes over.
    #[arg(long, env = "AUTOSCALER_LEASE_TTL_SECS", default_value_t = 30)]
    pub lease_ttl_secs: u64,
    /// Seconds between renewals of a held lease (less than a third of the TTL).
    #[arg(long, env = "AUTOSCALER_LEASE_RENEW_SECS", default_value_t = 10)]
    pub lease_renew_secs: u64,
    /// Days routine decisions (nothing changed: maintain, insufficient data,
    /// held by a limit) and their events are kept; 0 keeps them for good.
    /// Budget changes, approvals and failures are always kept.
    #[arg(long, env = "AUTOSCALER_RETAIN_ROUTINE_DAYS", default_value_t = 30)]
    pub retain_routine_days: u32,
    /// Days performance snapshots are kept (at least 46: replays of 31 days
    /// read 15 days before them); 0 keeps them for good.
    #[arg(long, env = "AUTOSCALER_RETAIN_SNAPSHOTS_DAYS", default_value_t = 90)]
    pub retain_snapshots_days: u32,
}

/// Who may call, and over what.
#[derive(Debug, Args)]
pub struct SecurityArgs {
    /// File of API tokens, one `name role sha256hex` per line (`#` starts a
    /// comment). Roles: viewer, operator, approver, admin. Without any token
    /// the server only listens on loopback.
    #[arg(long, env = "AUTOSCALER_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<PathBuf>,
    /// API tokens in the same format, `;`-separated.
    #[arg(long, env = "AUTOSCALER_AUTH_TOKENS", hide_env_values = true)]
    pub auth_tokens: Option<String>,
    /// Listen beyond loopback without API tokens: anyone who reaches the port
    /// may then change budgets.
    #[arg(long, env = "AUTOSCALER_INSECURE")]
    pub insecure: bool,
    /// PEM certificate chain of the gRPC server (TLS); needs --tls-key.
    #[arg(long, env = "AUTOSCALER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the gRPC server (TLS); needs --tls-cert.
    #[arg(long, env = "AUTOSCALER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// Where the data lives.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://file.db?mode=rwc` (default, embedded) or
    /// `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// How to reach Meta's Marketing API.
#[derive(Debug, Args)]
pub struct MetaArgs {
    /// Meta access token (a system-user token). Without it the server starts
    /// the local Meta sandbox and talks to that instead.
    #[arg(long, env = "META_ACCESS_TOKEN", hide_env_values = true)]
    pub meta_access_token: Option<SecretString>,
    /// Meta app secret; when set, every call carries `appsecret_proof`.
    #[arg(long, env = "META_APP_SECRET", hide_env_values = true)]
    pub meta_app_secret: Option<SecretString>,
    /// Ad accounts to optimize, comma-separated (`act_123,act_456`).
    #[arg(long, env = "META_AD_ACCOUNT_IDS", value_delimiter = ',')]
    pub meta_ad_account_ids: Vec<String>,
    /// One ad account (the older single-account setting); added to the list.
    #[arg(long, env = "META_AD_ACCOUNT_ID")]
    pub meta_ad_account_id: Option<String>,
    /// Graph API base URL.
    #[arg(long, env = "META_GRAPH_URL", default_value = "https://graph.facebook.com")]
    pub meta_graph_url: String,
    /// Graph API version, pinned.
    #[arg(long, env = "META_API_VERSION", default_value = "v26.0")]
    pub meta_api_version: String,
    /// The purchase action type whose values are revenue.
    #[arg(long, env = "META_PURCHASE_ACTION_TYPE", default_value = "omni_purchase")]
    pub meta_purchase_action_type: String,
    /// Seed of the sandbox's simulated market (sandbox only).
    #[arg(long, env = "AUTOSCALER_SANDBOX_SEED", default_value_t = 42)]
    pub sandbox_seed: u64,
    /// Ad accounts in the sandbox (sandbox only).
    #[arg(long, env = "AUTOSCALER_SANDBOX_ACCOUNTS", default_value_t = 2)]
    pub sandbox_accounts: usize,
    /// Campaigns per sandbox account (sandbox only).
    #[arg(long, env = "AUTOSCALER_SANDBOX_CAMPAIGNS", default_value_t = 30)]
    pub sandbox_campaigns: usize,
    /// Timeout of one Graph API request, in seconds.
    #[arg(long, env = "META_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub meta_request_timeout_secs: u64,
    /// Retries of a transient or throttled Graph API request.
    #[arg(long, env = "META_MAX_RETRIES", default_value_t = 3)]
    pub meta_max_retries: u32,
}

/// A setting that cannot be used, naming it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// Flag / environment variable at fault.
    pub setting: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Validated settings of the server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// gRPC listen address (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// The ad platform.
    pub meta: MetaConfig,
    /// Approvals and alerts.
    pub engine: EngineConfig,
    /// When the background cycles run.
    pub schedules: crate::service::scheduler::Schedules,
    /// Where `/metrics` is served; `None` turns it off.
    pub metrics_listen: Option<SocketAddr>,
    /// Authentication and TLS; the default (no tokens, no TLS) only serves
    /// loopback.
    pub security: SecurityConfig,
    /// Request timeout, concurrency and stream limits.
    pub limits: LimitsConfig,
}

/// Validated security settings.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// API tokens; empty turns authentication off (loopback only).
    pub tokens: TokenTable,
    /// Allow a non-loopback listen address without tokens.
    pub insecure: bool,
    /// TLS of the gRPC server; `None` serves plaintext HTTP/2.
    pub tls: Option<TlsConfig>,
}

/// A server certificate and key, PEM.
#[derive(Clone)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert_pem: String,
    /// Private key.
    pub key_pem: SecretString,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").field("cert_pem_bytes", &self.cert_pem.len()).finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Checks that `cert_pem` holds at least one certificate and `key_pem` a
    /// private key (whether they match is checked when the server starts).
    pub fn new(cert_pem: String, key_pem: SecretString) -> Result<Self, ConfigError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>();
        if !certs.is_ok_and(|c| !c.is_empty()) {
            return Err(ConfigError { setting: "AUTOSCALER_TLS_CERT", reason: "holds no PEM certificate".into() });
        }
        if PrivateKeyDer::from_pem_slice(key_pem.expose_secret().as_bytes()).is_err() {
            return Err(ConfigError { setting: "AUTOSCALER_TLS_KEY", reason: "holds no PEM private key".into() });
        }
        Ok(Self { cert_pem, key_pem })
    }
}

impl SecurityArgs {
    /// Reads and validates the token lists and the TLS files.
    pub fn into_config(self) -> Result<SecurityConfig, ConfigError> {
        let mut tokens = TokenTable::default();
        if let Some(path) = &self.auth_tokens_file {
            let setting = "AUTOSCALER_AUTH_TOKENS_FILE";
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError { setting, reason: format!("cannot read {}: {e}", path.display()) })?;
            let listed = TokenTable::parse(&text, '\n').map_err(|e| ConfigError {
                setting,
                reason: format!("{} line {}: {}", path.display(), e.line, e.reason),
            })?;
            tokens.merge(listed).map_err(|reason| ConfigError { setting, reason })?;
        }
        if let Some(list) = &self.auth_tokens {
            let setting = "AUTOSCALER_AUTH_TOKENS";
            let listed = TokenTable::parse(list, ';').map_err(|e| ConfigError { setting, reason: e.to_string() })?;
            tokens.merge(listed).map_err(|reason| ConfigError { setting, reason })?;
        }
        let tls = match (self.tls_cert, self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let read = |setting: &'static str, path: &PathBuf| {
                    std::fs::read_to_string(path)
                        .map_err(|e| ConfigError { setting, reason: format!("cannot read {}: {e}", path.display()) })
                };
                let cert_pem = read("AUTOSCALER_TLS_CERT", &cert)?;
                let key_pem = SecretString::from(read("AUTOSCALER_TLS_KEY", &key)?);
                Some(TlsConfig::new(cert_pem, key_pem)?)
            }
            (Some(_), None) => {
                return Err(ConfigError {
                    setting: "AUTOSCALER_TLS_KEY",
                    reason: "is required with --tls-cert".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    setting: "AUTOSCALER_TLS_CERT",
                    reason: "is required with --tls-key".into(),
                });
            }
        };
        Ok(SecurityConfig { tokens, insecure: self.insecure, tls })
    }
}

impl EngineArgs {
    /// Validates the engine flags.
    pub fn into_config(self) -> Result<EngineConfig, ConfigError> {
        if self.approval_ttl_hours == 0 || self.approval_ttl_hours > 24 * 30 {
            return Err(ConfigError { setting: "AUTOSCALER_APPROVAL_TTL_HOURS", reason: "must be 1 to 720".into() });
        }
        if let Some(url) = &self.webhook_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError { setting: "AUTOSCALER_WEBHOOK_URL", reason: "must be an http(s) URL".into() });
        }
        if self.alert_budget_change_minor < 0 {
            return Err(ConfigError {
                setting: "AUTOSCALER_ALERT_BUDGET_CHANGE_MINOR",
                reason: "must not be negative".into(),
            });
        }
        let bounds = crate::domain::time_profile::ScheduleBounds {
            min_multiplier: self.time_min_hourly_multiplier,
            max_multiplier: self.time_max_hourly_multiplier,
            min_confidence: self.time_min_confidence,
            full_confidence: self.time_full_confidence,
        };
        bounds.validate().map_err(|(field, reason)| ConfigError {
            setting: match field {
                "min_multiplier" => "AUTOSCALER_TIME_MIN_HOURLY_MULTIPLIER",
                "max_multiplier" => "AUTOSCALER_TIME_MAX_HOURLY_MULTIPLIER",
                "min_confidence" => "AUTOSCALER_TIME_MIN_CONFIDENCE",
                _ => "AUTOSCALER_TIME_FULL_CONFIDENCE",
            },
            reason,
        })?;
        if self.time_lookback_days == 0 || self.time_lookback_days > 366 {
            return Err(ConfigError { setting: "AUTOSCALER_TIME_LOOKBACK_DAYS", reason: "must be 1 to 366".into() });
        }
        if self.time_backfill_days > 366 {
            return Err(ConfigError { setting: "AUTOSCALER_TIME_BACKFILL_DAYS", reason: "must be 0 to 366".into() });
        }
        if !(3..=3600).contains(&self.lease_ttl_secs) {
            return Err(ConfigError { setting: "AUTOSCALER_LEASE_TTL_SECS", reason: "must be 3 to 3600".into() });
        }
        if self.lease_renew_secs == 0 || self.lease_renew_secs.saturating_mul(3) > self.lease_ttl_secs {
            return Err(ConfigError {
                setting: "AUTOSCALER_LEASE_RENEW_SECS",
                reason: "must be at least 1 and at most a third of AUTOSCALER_LEASE_TTL_SECS".into(),
            });
        }
        if self.retain_routine_days > 3660 {
            return Err(ConfigError { setting: "AUTOSCALER_RETAIN_ROUTINE_DAYS", reason: "must be 0 to 3660".into() });
        }
        if self.retain_snapshots_days != 0 && !(46..=3660).contains(&self.retain_snapshots_days) {
            return Err(ConfigError {
                setting: "AUTOSCALER_RETAIN_SNAPSHOTS_DAYS",
                reason: "must be 0 (keep) or 46 to 3660: replays and the lag curve read that far back".into(),
            });
        }
        if let Some(address) = &self.alert_server_address
            && !valid_host_port(address)
        {
            return Err(ConfigError {
                setting: "AUTOSCALER_ALERT_SERVER_ADDRESS",
                reason: format!("{address:?} is not a host:port like scaler.internal:50051"),
            });
        }
        let approval_digest = match self.approval_digest_hour.trim() {
            "off" | "" => None,
            raw => {
                let hour = raw.parse::<u32>().ok().filter(|h| *h < 24).ok_or_else(|| ConfigError {
                    setting: "AUTOSCALER_APPROVAL_DIGEST_HOUR",
                    reason: format!("{raw:?} is not an hour 0-23 or off"),
                })?;
                let zone = self.approval_digest_time_zone.trim();
                let time_zone = zone.parse::<chrono_tz::Tz>().map_err(|_| ConfigError {
                    setting: "AUTOSCALER_APPROVAL_DIGEST_TIME_ZONE",
                    reason: format!("{zone:?} is not an IANA time zone like Europe/Berlin"),
                })?;
                Some(crate::service::settings::DigestSchedule { hour, time_zone })
            }
        };
        let days = |n: u32| (n > 0).then(|| chrono::TimeDelta::days(i64::from(n)));
        let default_strategy = crate::domain::rule::Strategy::parse(self.default_strategy.trim()).ok_or_else(|| {
            ConfigError { setting: "AUTOSCALER_DEFAULT_STRATEGY", reason: "must be thresholds or marginal-roas".into() }
        })?;
        Ok(EngineConfig {
            default_strategy,
            approval_ttl: std::time::Duration::from_secs(u64::from(self.approval_ttl_hours) * 3600),
            webhook_url: self.webhook_url,
            alert_budget_change_minor: self.alert_budget_change_minor,
            alert_server_address: self.alert_server_address.map(|a| a.trim().to_owned()),
            approval_digest,
            time: TimeConfig { bounds, lookback_days: self.time_lookback_days, backfill_days: self.time_backfill_days },
            leases: LeaseConfig {
                ttl: std::time::Duration::from_secs(self.lease_ttl_secs),
                renew_every: std::time::Duration::from_secs(self.lease_renew_secs),
            },
            retention: crate::service::settings::RetentionConfig {
                routine: days(self.retain_routine_days),
                snapshots: days(self.retain_snapshots_days),
            },
        })
    }
}

/// Validated Meta settings.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// Live token; `None` means run against the local sandbox.
    pub access_token: Option<SecretString>,
    /// App secret for `appsecret_proof`.
    pub app_secret: Option<SecretString>,
    /// Configured accounts.
    pub account_ids: Vec<AccountId>,
    /// Graph API base URL.
    pub graph_url: String,
    /// Graph API version.
    pub api_version: String,
    /// Purchase action type.
    pub purchase_action_type: String,
    /// The sandbox's market, used when there is no token.
    pub sandbox: SandboxConfig,
    /// Timeout of one Graph API request.
    pub request_timeout: std::time::Duration,
    /// Retries of a transient or throttled Graph API request.
    pub max_retries: u32,
    /// First retry delay; doubles per retry.
    pub backoff_base: std::time::Duration,
}

/// Shape of the sandbox's simulated market.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Seed; the same seed gives the same market.
    pub seed: u64,
    /// Accounts.
    pub accounts: usize,
    /// Campaigns per account.
    pub campaigns_per_account: usize,
}

impl MetaArgs {
    /// Validates the Meta flags.
    pub fn into_config(self) -> Result<MetaConfig, ConfigError> {
        let mut account_ids = Vec::new();
        for raw in self.meta_ad_account_ids.iter().chain(self.meta_ad_account_id.iter()) {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let id = AccountId::parse(raw, "account").map_err(|_| ConfigError {
                setting: "META_AD_ACCOUNT_IDS",
                reason: format!("{raw:?} is not an ad account id (act_<digits>)"),
            })?;
            if !account_ids.contains(&id) {
                account_ids.push(id);
            }
        }
        let graph_url = self.meta_graph_url.trim_end_matches('/').to_owned();
        if !(graph_url.starts_with("https://") || graph_url.starts_with("http://")) {
            return Err(ConfigError { setting: "META_GRAPH_URL", reason: "must be an http(s) URL".into() });
        }
        let version_ok =
            self.meta_api_version.strip_prefix('v').and_then(|v| v.split_once('.')).is_some_and(|(a, b)| {
                !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
        if !version_ok {
            return Err(ConfigError { setting: "META_API_VERSION", reason: "must look like v26.0".into() });
        }
        if self.meta_purchase_action_type.trim().is_empty() {
            return Err(ConfigError { setting: "META_PURCHASE_ACTION_TYPE", reason: "must not be empty".into() });
        }
        if self.sandbox_accounts == 0 || self.sandbox_accounts > 1_000 {
            return Err(ConfigError { setting: "AUTOSCALER_SANDBOX_ACCOUNTS", reason: "must be 1 to 1000".into() });
        }
        if self.sandbox_campaigns == 0 || self.sandbox_campaigns > 10_000 {
            return Err(ConfigError { setting: "AUTOSCALER_SANDBOX_CAMPAIGNS", reason: "must be 1 to 10000".into() });
        }
        Ok(MetaConfig {
            access_token: self.meta_access_token,
            app_secret: self.meta_app_secret,
            account_ids,
            graph_url,
            api_version: self.meta_api_version,
            purchase_action_type: self.meta_purchase_action_type,
            sandbox: SandboxConfig {
                seed: self.sandbox_seed,
                accounts: self.sandbox_accounts,
                campaigns_per_account: self.sandbox_campaigns,
            },
            request_timeout: std::time::Duration::from_secs(self.meta_request_timeout_secs.clamp(1, 600)),
            max_retries: self.meta_max_retries.min(10),
            backoff_base: std::time::Duration::from_millis(500),
        })
    }
}

impl ServeArgs {
    /// Validates every flag into [`Settings`].
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        let database_url = self.database.into_url()?;
        Ok(Settings {
            listen: self.listen,
            database_url,
            meta: self.meta.into_config()?,
            engine: self.engine.into_config()?,
            security: self.security.into_config()?,
            limits: self.limits.into_config()?,
            metrics_listen: match self.metrics_listen.trim() {
                "off" | "" => None,
                raw => Some(raw.parse().map_err(|_| ConfigError {
                    setting: "AUTOSCALER_METRICS_LISTEN",
                    reason: format!("{raw:?} is not an address like 127.0.0.1:9464"),
                })?),
            },
            schedules: crate::service::scheduler::Schedules {
                optimize: schedule("AUTOSCALER_OPTIMIZE_SCHEDULE", &self.optimize_schedule)?,
                learn: schedule("AUTOSCALER_LEARN_SCHEDULE", &self.learn_schedule)?,
            },
        })
    }
}

impl DatabaseArgs {
    /// Validates the database URL.
    pub fn into_url(self) -> Result<String, ConfigError> {
        let url = self.database_url.trim().to_owned();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError {
                setting: "DATABASE_URL",
                reason: "must start with sqlite:, postgres:// or postgresql://".into(),
            });
        }
        Ok(url)
    }
}

/// `host:port` with a non-empty host and a port number (no scheme, no path).
fn valid_host_port(raw: &str) -> bool {
    raw.trim().rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains(['/', ' ', '@']) && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

fn schedule(setting: &'static str, raw: &str) -> Result<Option<String>, ConfigError> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("off") || raw.is_empty() {
        return Ok(None);
    }
    crate::service::scheduler::validate(raw).map_err(|e| ConfigError {
        setting,
        reason: format!("not a cron expression (sec min hour day month weekday): {e}"),
    })?;
    Ok(Some(raw.to_owned()))
}
