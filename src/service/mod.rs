//! Use cases: combine the repositories, the ad platform and the clock. No
//! tonic here; handlers call these and map their errors.
pub mod approvals;
pub mod cycle;
pub mod dashboard;
pub mod digest;
pub mod engine;
pub mod events;
pub mod executor;
pub mod history;
pub mod liveness;
mod marginal;
pub mod replay;
pub mod reporting_lag;
pub mod rules;
pub mod scheduler;
pub mod settings;
pub mod time_optimization;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::domain::ids::AccountId;
use crate::platform::MetaClient;

/// Everything a use case needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database (SQLite or PostgreSQL).
    pub db: DatabaseConnection,
    /// Wakes local `WatchActions` streams when action events are committed.
    pub events: events::ActionEvents,
    /// Approval and alert settings.
    pub engine: Arc<settings::EngineConfig>,
    /// The Meta Graph API client (pointed at the local sandbox when no token
    /// is configured).
    pub platform: MetaClient,
    /// Accounts configured for the hourly cycle (besides those with rules).
    pub accounts: Arc<Vec<AccountId>>,
    /// Held while a cycle runs in this process: cycles never overlap.
    pub cycle_lock: Arc<tokio::sync::Mutex<()>>,
    /// Webhook alerts (a no-op without a webhook URL); `observe` never blocks.
    pub alerts: crate::alerts::Alerts,
    /// Prometheus counters.
    pub metrics: crate::metrics::Metrics,
    /// What the marginal-ROAS strategy keeps per account for its local day:
    /// the learned lag curve, the re-read week and the stored day readings.
    pub day_cache: reporting_lag::DayCache,
}

/// The time zone an account reports, or a permanent platform failure naming
/// it (the service cannot place the account's days without it).
pub fn account_time_zone(
    account: &AccountId,
    info: &crate::platform::AccountInfo,
) -> crate::error::Result<chrono_tz::Tz> {
    info.timezone_name.parse().map_err(|_| {
        crate::error::Error::Platform(crate::error::PlatformFailure::permanent(format!(
            "account {account} reports an unknown time zone {:?}",
            info.timezone_name
        )))
    })
}

/// Counts a failed platform call by account and kind, and converts it.
pub(crate) fn platform_error(
    state: &AppState,
    account: &AccountId,
    e: crate::platform::PlatformError,
) -> crate::error::Error {
    let kind = if e.is_throttle() {
        "throttled"
    } else if e.is_not_found() {
        "not_found"
    } else if e.is_transient() {
        "transient"
    } else {
        "permanent"
    };
    state
        .metrics
        .platform_errors
        .get_or_create(&crate::metrics::PlatformLabels { account: account.to_string(), kind: kind.to_owned() })
        .inc();
    e.into()
}
