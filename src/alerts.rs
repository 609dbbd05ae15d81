//! Alerts: Slack-compatible webhook notifications for a pause, a large budget
//! change, an action waiting for approval and an execution failure.
//!
//! [`Alerts::observe`] only decides and enqueues (a bounded queue, never
//! waiting: when full, the alert is dropped and counted), so a cycle or a
//! request is never slowed down or failed by the webhook. One background task
//! delivers in order, with bounded retries and exponential backoff, and counts
//! what was delivered, failed and dropped.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::domain::action::{ActionRecord, ActionStatus, ActionType};
use crate::domain::money::format_minor;

/// How alerts are delivered.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// The webhook (Slack incoming-webhook compatible).
    pub webhook_url: String,
    /// An executed budget change of at least this many minor units alerts.
    pub budget_change_threshold_minor: i64,
    /// Alerts waiting for delivery before new ones are dropped.
    pub queue_capacity: usize,
    /// Delivery attempts per alert (the first one included).
    pub max_attempts: u32,
    /// Wait before the first retry; doubles per retry.
    pub first_backoff: Duration,
    /// Timeout of one delivery attempt.
    pub request_timeout: Duration,
}

impl AlertSettings {
    /// Production defaults for `webhook_url`.
    pub fn new(webhook_url: impl Into<String>, budget_change_threshold_minor: i64) -> Self {
        Self {
            webhook_url: webhook_url.into(),
            budget_change_threshold_minor,
            queue_capacity: 1_000,
            max_attempts: 4,
            first_backoff: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a record alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A campaign was paused.
    Paused,
    /// A budget changed by at least the threshold.
    BudgetChanged,
    /// An action waits for a human decision.
    AwaitingApproval,
    /// An action could not be applied.
    ExecutionFailed,
}

/// Counts of the alert pipeline since start, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Accepted into the queue.
    pub queued: u64,
    /// Accepted by the webhook (2xx).
    pub delivered: u64,
    /// Given up after the last attempt, or refused permanently (4xx).
    pub failed: u64,
    /// Not queued because the queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

struct Pipeline {
    queue: mpsc::Sender<Alert>,
    threshold_minor: i64,
}

/// One alert ready to send.
#[derive(Debug, Clone)]
struct Alert {
    action_id: i64,
    kind: AlertKind,
    body: serde_json::Value,
}

/// The alert pipeline; cheap to clone. Without a webhook it does nothing.
#[derive(Clone, Default)]
pub struct Alerts {
    pipeline: Option<Arc<Pipeline>>,
    counters: Arc<Counters>,
}

impl Alerts {
    /// Alerts that are never sent (no webhook configured).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Alerts per the engine settings: a no-op without a webhook URL. Must be
    /// called inside a Tokio runtime (it starts the delivery task).
    pub fn from_webhook(webhook_url: Option<&str>, alert_budget_change_minor: i64) -> Self {
        match webhook_url {
            Some(url) => Self::start(AlertSettings::new(url.to_owned(), alert_budget_change_minor)),
            None => Self::disabled(),
        }
    }

    /// Starts the delivery task. Must be called inside a Tokio runtime. If the
    /// HTTP client cannot be built the alerts are disabled (and logged), since
    /// alerting must never stop the service.
    pub fn start(settings: AlertSettings) -> Self {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // reqwest is built without a default TLS provider; the rest of the
            // binary uses ring. Losing a race to another installer is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = match reqwest::Client::builder().timeout(settings.request_timeout).build() {
            Ok(http) => http,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the alert webhook client; alerts are disabled");
                return Self::disabled();
            }
        };
        let (queue, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let threshold_minor = settings.budget_change_threshold_minor;
        tokio::spawn(deliver_all(receiver, http, settings, counters.clone()));
        Self { pipeline: Some(Arc::new(Pipeline { queue, threshold_minor })), counters }
    }

    /// Whether alerts go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.pipeline.is_some()
    }

    /// Decides which of `records` alert and queues them, without waiting:
    /// when the queue is full the alert is dropped and counted. Call it once
    /// per record when the record reaches its state (recorded pending, or
    /// executed / failed).
    pub fn observe(&self, records: &[ActionRecord]) {
        let Some(pipeline) = &self.pipeline else { return };
        for record in records {
            let Some(kind) = alert_kind(record, pipeline.threshold_minor) else { continue };
            let alert = Alert { action_id: record.id, kind, body: webhook_body(record, kind) };
            match pipeline.queue.try_send(alert) {
                Ok(()) => {
                    self.counters.queued.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(action_id = record.id, ?kind, "alert queue full; alert dropped");
                }
            }
        }
    }

    /// Waits until every queued alert was delivered or given up, at most
    /// `timeout`; whether the queue is settled. For short-lived processes
    /// (a one-off cycle) that would otherwise exit with alerts in flight.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if stats.delivered + stats.failed >= stats.queued {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(in_flight = stats.queued - stats.delivered - stats.failed, "alerts still in flight");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> AlertStats {
        AlertStats {
            queued: self.counters.queued.load(Ordering::Relaxed),
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Which alert, if any, a record in its current state raises.
pub fn alert_kind(record: &ActionRecord, budget_change_threshold_minor: i64) -> Option<AlertKind> {
    let change = record.action.new_budget_minor.saturating_sub(record.action.old_budget_minor);
    match record.status {
        ActionStatus::PendingApproval => Some(AlertKind::AwaitingApproval),
        ActionStatus::Failed => Some(AlertKind::ExecutionFailed),
        ActionStatus::Executed if record.action.action_type == ActionType::Pause => Some(AlertKind::Paused),
        ActionStatus::Executed
            if record.action.action_type.changes_budget()
                && change.saturating_abs() >= budget_change_threshold_minor =>
        {
            Some(AlertKind::BudgetChanged)
        }
        _ => None,
    }
}

fn percent(record: &ActionRecord) -> String {
    let a = &record.action;
    if a.old_budget_minor > 0 {
        let change = a.new_budget_minor.saturating_sub(a.old_budget_minor) as f64;
        format!("{:+.1}%", change * 100.0 / a.old_budget_minor as f64)
    } else {
        "n/a".to_owned()
    }
}

/// The text of an alert, in Slack mrkdwn.
pub fn alert_text(record: &ActionRecord, kind: AlertKind) -> String {
    let a = &record.action;
    let campaign = format!("*{}* ({}) in {}", a.campaign_name, a.campaign_id, a.account_id);
    let old = format_minor(a.old_budget_minor, &a.currency);
    let new = format_minor(a.new_budget_minor, &a.currency);
    match kind {
        AlertKind::Paused => {
            format!(
                ":double_vertical_bar: Auto-scaler paused campaign {campaign}: ROAS {:.2}x. Daily budget was {old}.",
                a.metrics.roas
            )
        }
        AlertKind::BudgetChanged => {
            let verb = if a.new_budget_minor >= a.old_budget_minor { "increased" } else { "decreased" };
            let change =
                format_minor(a.new_budget_minor.saturating_sub(a.old_budget_minor).saturating_abs(), &a.currency);
            format!(
                ":chart_with_upwards_trend: Auto-scaler {verb} the daily budget of campaign {campaign} by {change} ({}): {old} -> {new}. ROAS {:.2}x.",
                percent(record),
                a.metrics.roas
            )
        }
        AlertKind::AwaitingApproval => format!(
            ":raised_hand: Action {} waits for approval: {} campaign {campaign}, {old} -> {new} ({}). {}",
            record.id,
            a.action_type.as_str(),
            percent(record),
            a.reason
        ),
        AlertKind::ExecutionFailed => format!(
            ":x: Action {} ({} campaign {campaign}, {old} -> {new}) failed: {}",
            record.id,
            a.action_type.as_str(),
            record.error.as_deref().unwrap_or("no reason recorded")
        ),
    }
}

/// The webhook's JSON body: Slack's `text` (also the notification fallback)
/// and the same text as a block with a context line.
pub fn webhook_body(record: &ActionRecord, kind: AlertKind) -> serde_json::Value {
    let text = alert_text(record, kind);
    let context = format!(
        "action {} · {} · {} · {}",
        record.id,
        record.action.action_type.as_str(),
        record.status.as_str(),
        record.updated_at.to_rfc3339()
    );
    json!({
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] }
        ]
    })
}

/// Delivers queued alerts one by one until every [`Alerts`] clone is gone.
async fn deliver_all(
    mut receiver: mpsc::Receiver<Alert>,
    http: reqwest::Client,
    settings: AlertSettings,
    counters: Arc<Counters>,
) {
    while let Some(alert) = receiver.recv().await {
        if deliver(&http, &settings, &alert).await {
            counters.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One alert with bounded retries; whether the webhook accepted it.
async fn deliver(http: &reqwest::Client, settings: &AlertSettings, alert: &Alert) -> bool {
    let attempts = settings.max_attempts.max(1);
    let mut backoff = settings.first_backoff;
    for attempt in 1..=attempts {
        let outcome = http.post(&settings.webhook_url).json(&alert.body).send().await;
        let retryable = match outcome {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(action_id = alert.action_id, kind = ?alert.kind, attempt, "alert delivered");
                return true;
            }
            Ok(response) => {
                let status = response.status();
                // 4xx other than 429 will not get better by retrying.
                let retryable = status.is_server_error() || status.as_u16() == 429;
                tracing::warn!(action_id = alert.action_id, kind = ?alert.kind, attempt, %status, "alert webhook refused the alert");
                retryable
            }
            Err(e) => {
                tracing::warn!(action_id = alert.action_id, kind = ?alert.kind, attempt, error = %e.without_url(), "alert webhook unreachable");
                true
            }
        };
        if !retryable || attempt == attempts {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
    tracing::error!(action_id = alert.action_id, kind = ?alert.kind, attempts, "alert not delivered; giving up");
    false
}
