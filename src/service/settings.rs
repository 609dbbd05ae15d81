//! The validated settings the use cases run with (approvals, alerts,
//! time-of-day learning, leases, the default strategy). The service layer
//! owns them; `config` parses flags and environment into them.

/// Validated engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a pending action may wait before it expires.
    pub approval_ttl: std::time::Duration,
    /// Where alerts go.
    pub webhook_url: Option<String>,
    /// Budget change (minor units) from which an alert is raised.
    pub alert_budget_change_minor: i64,
    /// `host:port` operators reach the server at, for the commands alerts
    /// carry; the listen address when `None`.
    pub alert_server_address: Option<String>,
    /// When the daily digest of pending approvals goes to the webhook;
    /// `None` sends none.
    pub approval_digest: Option<DigestSchedule>,
    /// Time-of-day optimization.
    pub time: TimeConfig,
    /// Cycle leases and executor liveness marks.
    pub leases: LeaseConfig,
    /// Strategy of the rule created for an account without one.
    pub default_strategy: crate::domain::rule::Strategy,
    /// How long routine decisions and snapshots are kept.
    pub retention: RetentionConfig,
}

/// How long routine rows are kept; `None` keeps them for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Routine decisions (skipped: maintain, insufficient data, held) and their events.
    pub routine: Option<chrono::TimeDelta>,
    /// Performance snapshots and the lag curve's re-read days.
    pub snapshots: Option<chrono::TimeDelta>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { routine: Some(chrono::TimeDelta::days(30)), snapshots: Some(chrono::TimeDelta::days(90)) }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            approval_ttl: std::time::Duration::from_secs(24 * 3600),
            webhook_url: None,
            alert_budget_change_minor: 10_000,
            alert_server_address: None,
            approval_digest: Some(DigestSchedule::default()),
            time: TimeConfig::default(),
            leases: LeaseConfig::default(),
            default_strategy: crate::domain::rule::Strategy::Thresholds,
            retention: RetentionConfig::default(),
        }
    }
}

/// The local hour the daily approval digest is sent at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestSchedule {
    /// Hour of the day, 0-23, in `time_zone`.
    pub hour: u32,
    /// The time zone of `hour` (daylight saving included).
    pub time_zone: chrono_tz::Tz,
}

impl Default for DigestSchedule {
    fn default() -> Self {
        Self { hour: 9, time_zone: chrono_tz::UTC }
    }
}

impl DigestSchedule {
    /// The cron expression (seconds first) of the digest, read in `time_zone`.
    pub fn cron(&self) -> String {
        format!("0 0 {} * * *", self.hour)
    }
}

/// How long leases last and how often their holder renews them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Lifetime without renewal.
    pub ttl: std::time::Duration,
    /// Renewal interval.
    pub renew_every: std::time::Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self { ttl: std::time::Duration::from_secs(30), renew_every: std::time::Duration::from_secs(10) }
    }
}

/// Validated time-of-day settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeConfig {
    /// Bounds and confidence thresholds of budget schedules.
    pub bounds: crate::domain::time_profile::ScheduleBounds,
    /// Days of hourly data learning uses.
    pub lookback_days: u32,
    /// Past days fetched from Meta's hourly breakdown; 0 = no backfill.
    pub backfill_days: u32,
}

impl Default for TimeConfig {
    fn default() -> Self {
        Self { bounds: Default::default(), lookback_days: 28, backfill_days: 28 }
    }
}
