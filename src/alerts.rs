//! Alerts: Slack-compatible webhook notifications for a pause, a large budget
//! change, actions waiting for approval (one message per cycle or request,
//! each action with the CLI and grpcurl commands that approve or reject it), a
//! daily digest of what still waits, an execution failure, a failed cycle, a
//! failing account (with Meta's error code) and a rejected Meta token or a
//! lost permission (saying which account and what to do).
//!
//! Every method only decides and enqueues (a bounded queue, never waiting:
//! when full, the alert is dropped and counted), so a cycle or a request is
//! never slowed down or failed by the webhook. One background task delivers
//! in order, with bounded retries and exponential backoff, and counts what was
//! delivered, failed and dropped. Messages carry no secret: commands name the
//! `$AUTOSCALER_TOKEN` variable, never a token, and the webhook URL is never
//! logged.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use tokio::sync::mpsc;

use crate::domain::action::{ActionRecord, ActionStatus, ActionType, Verdict};
use crate::domain::money::format_minor;
use crate::error::{PlatformErrorClass, PlatformFailure};

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
    /// How the commands in approval messages reach the server.
    pub commands: CommandTarget,
}

/// Where and how an operator reaches the server, for the exact commands that
/// approval messages carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTarget {
    /// `host:port` of the gRPC server as operators reach it.
    pub address: String,
    /// The server speaks TLS.
    pub tls: bool,
    /// The server requires an API token (the commands then send
    /// `$AUTOSCALER_TOKEN`, which the CLI also reads by itself).
    pub token: bool,
}

impl Default for CommandTarget {
    fn default() -> Self {
        Self { address: DEFAULT_SERVER_ADDRESS.to_owned(), tls: false, token: false }
    }
}

/// The address the CLI uses when neither `--server` nor `AUTOSCALER_SERVER`
/// is given: commands for it need no `--server`.
const DEFAULT_SERVER_ADDRESS: &str = "127.0.0.1:50051";

impl CommandTarget {
    /// The CLI command that approves or rejects action `id`.
    pub fn cli(&self, verdict: Verdict, id: i64) -> String {
        let verb = match verdict {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        };
        let mut command = format!("autoscaler actions {verb} {id}");
        if self.address != DEFAULT_SERVER_ADDRESS || self.tls {
            let scheme = if self.tls { "https" } else { "http" };
            command.push_str(&format!(" --server {scheme}://{}", self.address));
        }
        command
    }

    /// The grpcurl command that approves or rejects action `id`. Without API
    /// tokens the server records `decided_by`, so the command sends the
    /// shell's `$USER`; with tokens it records the token's principal.
    pub fn grpcurl(&self, verdict: Verdict, id: i64) -> String {
        let decision = match verdict {
            Verdict::Approve => "DECISION_APPROVE",
            Verdict::Reject => "DECISION_REJECT",
        };
        let mut command = String::from("grpcurl");
        if !self.tls {
            command.push_str(" -plaintext");
        }
        let body = if self.token {
            command.push_str(" -H \"authorization: Bearer $AUTOSCALER_TOKEN\"");
            format!("'{{\"action_id\":{id},\"decision\":\"{decision}\"}}'")
        } else {
            format!("'{{\"action_id\":{id},\"decision\":\"{decision}\",\"decided_by\":\"'\"$USER\"'\"}}'")
        };
        command.push_str(&format!(" -d {body} {} autoscaler.v1.ApprovalsService/DecideAction", self.address));
        command
    }
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
            commands: CommandTarget::default(),
        }
    }
}

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A campaign was paused.
    Paused,
    /// A budget changed by at least the threshold.
    BudgetChanged,
    /// Actions wait for a human decision (one message for a cycle's or a
    /// request's actions).
    AwaitingApproval,
    /// An action could not be applied.
    ExecutionFailed,
    /// The daily digest of the actions still waiting for a decision.
    ApprovalDigest,
    /// A cycle failed as a whole.
    CycleFailed,
    /// Accounts could not be evaluated in a cycle.
    AccountFailed,
    /// Meta refused the access token (invalid or expired).
    TokenRejected,
    /// The token lacks a permission on an account.
    PermissionLost,
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
    commands: CommandTarget,
    /// The failure each failing account was last alerted for, and when: the
    /// same failure is not repeated every cycle, only once a day.
    failing: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

/// One alert ready to send.
#[derive(Debug, Clone)]
struct Alert {
    /// What it is about, for logs ("action 5", "cycle 12").
    subject: String,
    kind: AlertKind,
    body: serde_json::Value,
}

/// An account a cycle could not evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFailure {
    /// The ad account.
    pub account: String,
    /// Meta's failure, when the platform failed (class, code, subcode).
    pub platform: Option<PlatformFailure>,
    /// What went wrong (token-free).
    pub message: String,
}

/// A failing account is alerted again after this long while it keeps failing
/// the same way.
const REPEAT_FAILURE_AFTER: TimeDelta = TimeDelta::hours(24);

/// Actions listed one by one in an approval message; the rest are counted.
const LISTED_ACTIONS: usize = 20;

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
        Self::from_webhook_with(webhook_url, alert_budget_change_minor, CommandTarget::default())
    }

    /// [`Alerts::from_webhook`], with the server the commands in messages reach.
    pub fn from_webhook_with(
        webhook_url: Option<&str>,
        alert_budget_change_minor: i64,
        commands: CommandTarget,
    ) -> Self {
        match webhook_url {
            Some(url) => {
                Self::start(AlertSettings { commands, ..AlertSettings::new(url.to_owned(), alert_budget_change_minor) })
            }
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
        let commands = settings.commands.clone();
        tokio::spawn(deliver_all(receiver, http, settings, counters.clone()));
        let pipeline = Pipeline { queue, threshold_minor, commands, failing: Mutex::default() };
        Self { pipeline: Some(Arc::new(pipeline)), counters }
    }

    /// Whether alerts go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.pipeline.is_some()
    }

    /// Decides which of `records` alert and queues them, without waiting:
    /// when the queue is full the alert is dropped and counted. Call it once
    /// per record when the record reaches its state (recorded pending, or
    /// executed / failed). The pending approvals among `records` become one
    /// message (a cycle passes all of its approvals at once).
    pub fn observe(&self, records: &[ActionRecord]) {
        let Some(pipeline) = &self.pipeline else { return };
        let mut waiting = Vec::new();
        for record in records {
            match alert_kind(record, pipeline.threshold_minor) {
                Some(AlertKind::AwaitingApproval) => waiting.push(record),
                Some(kind) => self.enqueue(Alert {
                    subject: format!("action {}", record.id),
                    kind,
                    body: webhook_body(record, kind),
                }),
                None => {}
            }
        }
        if !waiting.is_empty() {
            let text = approvals_text(&waiting, &pipeline.commands, None);
            let subject = match waiting.first().and_then(|r| r.action.cycle_id) {
                Some(cycle) => format!("approvals of cycle {cycle}"),
                None => format!("approval of action {}", waiting[0].id),
            };
            let context = format!("{} waiting for approval", waiting.len());
            self.enqueue(Alert { subject, kind: AlertKind::AwaitingApproval, body: text_body(&text, &context) });
        }
    }

    /// The daily digest: `pending` (the oldest first, at most a page of them)
    /// of `total` actions waiting for a decision, which expire `ttl` after
    /// they were recorded. Nothing is sent when none waits.
    pub fn approval_digest(&self, pending: &[ActionRecord], total: usize, ttl: Duration, now: DateTime<Utc>) {
        let Some(pipeline) = &self.pipeline else { return };
        if pending.is_empty() {
            return;
        }
        let waiting: Vec<&ActionRecord> = pending.iter().collect();
        let oldest = pending.iter().map(|r| r.created_at).min().unwrap_or(now);
        let header = format!(
            ":calendar: Daily digest: {total} action{} still wait{} for approval, the oldest for {}. \
             Each expires {} after it was recorded.",
            if total == 1 { "" } else { "s" },
            if total == 1 { "s" } else { "" },
            hours(now - oldest),
            hours(TimeDelta::from_std(ttl).unwrap_or(TimeDelta::zero())),
        );
        let text = approvals_text(&waiting, &pipeline.commands, Some((header, total)));
        self.enqueue(Alert {
            subject: "approval digest".into(),
            kind: AlertKind::ApprovalDigest,
            body: text_body(&text, &format!("approval digest · {}", now.to_rfc3339())),
        });
    }

    /// A cycle that failed as a whole (`error` is the token-free failure).
    pub fn cycle_failed(&self, cycle_id: i64, mode: &str, error: &str) {
        if self.pipeline.is_none() {
            return;
        }
        let text = format!(
            ":rotating_light: Cycle {cycle_id} ({mode}) failed: {error}. The next scheduled cycle tries again; \
             `autoscaler run-cycle --mode {mode}` runs one now."
        );
        self.enqueue(Alert {
            subject: format!("cycle {cycle_id}"),
            kind: AlertKind::CycleFailed,
            body: text_body(&text, &format!("cycle {cycle_id} · {mode} · failed")),
        });
    }

    /// The accounts cycle `cycle_id` could not evaluate, and those it did
    /// (which clears their failure, so a new failure alerts at once). A rejected
    /// token and lost permissions get messages of their own, saying what to do;
    /// an account failing the same way as last time is alerted again only
    /// after a day.
    pub fn account_outcomes(
        &self,
        cycle_id: i64,
        failures: &[AccountFailure],
        succeeded: &[String],
        now: DateTime<Utc>,
    ) {
        let Some(pipeline) = &self.pipeline else { return };
        let fresh: Vec<&AccountFailure> = {
            let mut failing = pipeline.failing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for account in succeeded {
                failing.remove(account);
            }
            failures
                .iter()
                .filter(|f| {
                    let key = failure_key(f);
                    let repeat = failing
                        .get(&f.account)
                        .is_some_and(|(last, at)| *last == key && now - *at < REPEAT_FAILURE_AFTER);
                    if !repeat {
                        failing.insert(f.account.clone(), (key, now));
                    }
                    !repeat
                })
                .collect()
        };
        let class_of = |f: &AccountFailure| f.platform.as_ref().map(|p| p.class);
        let token: Vec<&AccountFailure> =
            fresh.iter().copied().filter(|f| class_of(f) == Some(PlatformErrorClass::Auth)).collect();
        let permission: Vec<&AccountFailure> =
            fresh.iter().copied().filter(|f| class_of(f) == Some(PlatformErrorClass::Permission)).collect();
        let other: Vec<&AccountFailure> = fresh
            .iter()
            .copied()
            .filter(|f| !matches!(class_of(f), Some(PlatformErrorClass::Auth | PlatformErrorClass::Permission)))
            .collect();
        let context = format!("cycle {cycle_id}");
        if !token.is_empty() {
            let text = format!(
                ":key: Meta refused the access token for {}. The token is invalid or has expired (or its user \
                 changed their password or logged out); nothing is read or changed on {} until it is replaced. \
                 Generate a new system-user token in Meta Business Settings, set it as META_ACCESS_TOKEN (or \
                 `meta_access_token` in the configuration file) and restart the server.",
                list_with_codes(&token),
                if token.len() == 1 { "this account" } else { "these accounts" },
            );
            self.enqueue(Alert {
                subject: context.clone(),
                kind: AlertKind::TokenRejected,
                body: text_body(&text, &context),
            });
        }
        if !permission.is_empty() {
            let text = format!(
                ":lock: The access token lost a permission on {}: nothing is read or changed there until it is \
                 granted again. In Meta Business Settings, assign the ad account to the token's system user with \
                 the Manage campaigns (ads_management) permission; the next cycle picks it up.",
                list_with_codes(&permission),
            );
            self.enqueue(Alert {
                subject: context.clone(),
                kind: AlertKind::PermissionLost,
                body: text_body(&text, &context),
            });
        }
        if !other.is_empty() {
            let lines: Vec<String> = other
                .iter()
                .map(|f| format!("• {}{}: {}", f.account, meta_code(f.platform.as_ref()), f.message))
                .collect();
            let text = format!(
                ":warning: Cycle {cycle_id} could not evaluate {} account{}; the other accounts went on and the \
                 next cycle tries again.\n{}",
                other.len(),
                if other.len() == 1 { "" } else { "s" },
                lines.join("\n")
            );
            self.enqueue(Alert {
                subject: context.clone(),
                kind: AlertKind::AccountFailed,
                body: text_body(&text, &context),
            });
        }
    }

    /// Queues `alert` without waiting; a full queue drops and counts it.
    fn enqueue(&self, alert: Alert) {
        let Some(pipeline) = &self.pipeline else { return };
        let (subject, kind) = (alert.subject.clone(), alert.kind);
        match pipeline.queue.try_send(alert) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%subject, ?kind, "alert queue full; alert dropped");
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
                a.metrics.figures.roas()
            )
        }
        AlertKind::BudgetChanged => {
            let verb = if a.new_budget_minor >= a.old_budget_minor { "increased" } else { "decreased" };
            let change =
                format_minor(a.new_budget_minor.saturating_sub(a.old_budget_minor).saturating_abs(), &a.currency);
            format!(
                ":chart_with_upwards_trend: Auto-scaler {verb} the daily budget of campaign {campaign} by {change} ({}): {old} -> {new}. ROAS {:.2}x.",
                percent(record),
                a.metrics.figures.roas()
            )
        }
        AlertKind::AwaitingApproval | AlertKind::ApprovalDigest => format!(
            ":raised_hand: Action {} waits for approval: {} campaign {campaign}, {old} -> {new} ({}). {}",
            record.id,
            a.action_type.as_str(),
            percent(record),
            a.reason
        ),
        _ => format!(
            ":x: Action {} ({} campaign {campaign}, {old} -> {new}) failed: {}",
            record.id,
            a.action_type.as_str(),
            record.error.as_deref().unwrap_or("no reason recorded")
        ),
    }
}

/// Actions waiting for approval, each with the commands that decide it:
/// the first [`LISTED_ACTIONS`] in full, then a count. `digest` replaces the
/// header (and gives the total) for the daily digest.
fn approvals_text(waiting: &[&ActionRecord], commands: &CommandTarget, digest: Option<(String, usize)>) -> String {
    let (header, total) = match digest {
        Some(digest) => digest,
        None if waiting.len() == 1 => (String::new(), 1),
        None => {
            let from = match waiting[0].action.cycle_id {
                Some(cycle) => format!("cycle {cycle}"),
                None => "one evaluation".to_owned(),
            };
            (format!(":raised_hand: {} actions of {from} wait for approval:", waiting.len()), waiting.len())
        }
    };
    let mut parts: Vec<String> = Vec::new();
    if !header.is_empty() {
        parts.push(header);
    }
    let listed = !parts.is_empty();
    for record in waiting.iter().take(LISTED_ACTIONS) {
        let id = record.id;
        let text = alert_text(record, AlertKind::AwaitingApproval);
        // Under a header the emoji would repeat on every action.
        let text = if listed { text.trim_start_matches(":raised_hand: ").to_owned() } else { text };
        parts.push(format!(
            "{text}\nApprove: `{}`\nReject: `{}`\nApprove with grpcurl: `{}`\nReject with grpcurl: `{}`",
            commands.cli(Verdict::Approve, id),
            commands.cli(Verdict::Reject, id),
            commands.grpcurl(Verdict::Approve, id),
            commands.grpcurl(Verdict::Reject, id),
        ));
    }
    if total > LISTED_ACTIONS.min(waiting.len()) {
        let more = total - LISTED_ACTIONS.min(waiting.len());
        let list = if commands.address == DEFAULT_SERVER_ADDRESS && !commands.tls {
            "autoscaler actions pending".to_owned()
        } else {
            format!(
                "autoscaler actions pending --server {}://{}",
                if commands.tls { "https" } else { "http" },
                commands.address
            )
        };
        parts.push(format!("…and {more} more: `{list}` lists them all."));
    }
    if commands.token {
        parts.push("(The commands read your API token from AUTOSCALER_TOKEN.)".to_owned());
    }
    parts.join("\n\n")
}

/// What identifies a failure for the repeat check: class and Meta's codes,
/// or the message when the platform did not fail.
fn failure_key(failure: &AccountFailure) -> String {
    match &failure.platform {
        Some(p) => format!("{}/{:?}/{:?}", p.class.as_str(), p.code, p.subcode),
        None => failure.message.clone(),
    }
}

/// ` (Meta code 190, subcode 463)`, or nothing without a code.
fn meta_code(platform: Option<&PlatformFailure>) -> String {
    match platform {
        Some(PlatformFailure { code: Some(code), subcode: Some(subcode), .. }) => {
            format!(" (Meta code {code}, subcode {subcode})")
        }
        Some(PlatformFailure { code: Some(code), .. }) => format!(" (Meta code {code})"),
        _ => String::new(),
    }
}

/// `act_1 (Meta code 190) and act_2 (Meta code 190)`.
fn list_with_codes(failures: &[&AccountFailure]) -> String {
    let names: Vec<String> =
        failures.iter().map(|f| format!("{}{}", f.account, meta_code(f.platform.as_ref()))).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// `3 h`, `2 d 4 h`.
fn hours(span: TimeDelta) -> String {
    let hours = span.num_hours().max(0);
    if hours >= 48 { format!("{} d {} h", hours / 24, hours % 24) } else { format!("{hours} h") }
}

/// A body with `text` and `context` (Slack: the text as a block, then a
/// context line). Long texts are split into sections at blank lines, since a
/// Slack section holds at most 3,000 characters.
fn text_body(text: &str, context: &str) -> serde_json::Value {
    let mut blocks: Vec<serde_json::Value> = Vec::new();
    let mut section = String::new();
    for part in text.split("\n\n") {
        if !section.is_empty() && section.len() + part.len() + 2 > 2_900 {
            blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": section } }));
            section = String::new();
        }
        if !section.is_empty() {
            section.push_str("\n\n");
        }
        section.push_str(part);
    }
    if !section.is_empty() {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": section } }));
    }
    blocks.push(json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] }));
    json!({ "text": text, "blocks": blocks })
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
    text_body(&text, &context)
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
                tracing::debug!(subject = %alert.subject, kind = ?alert.kind, attempt, "alert delivered");
                return true;
            }
            Ok(response) => {
                let status = response.status();
                // 4xx other than 429 will not get better by retrying.
                let retryable = status.is_server_error() || status.as_u16() == 429;
                tracing::warn!(subject = %alert.subject, kind = ?alert.kind, attempt, %status, "alert webhook refused the alert");
                retryable
            }
            Err(e) => {
                tracing::warn!(subject = %alert.subject, kind = ?alert.kind, attempt, error = %e.without_url(), "alert webhook unreachable");
                true
            }
        };
        if !retryable || attempt == attempts {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
    tracing::error!(subject = %alert.subject, kind = ?alert.kind, attempts, "alert not delivered; giving up");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_server_only_when_the_cli_would_not_find_it() {
        let local = CommandTarget::default();
        assert_eq!(local.cli(Verdict::Approve, 7), "autoscaler actions approve 7");
        assert_eq!(
            local.grpcurl(Verdict::Reject, 7),
            r#"grpcurl -plaintext -d '{"action_id":7,"decision":"DECISION_REJECT","decided_by":"'"$USER"'"}' 127.0.0.1:50051 autoscaler.v1.ApprovalsService/DecideAction"#
        );
        let remote = CommandTarget { address: "scaler.internal:50051".into(), tls: true, token: true };
        assert_eq!(
            remote.cli(Verdict::Reject, 7),
            "autoscaler actions reject 7 --server https://scaler.internal:50051"
        );
        // With tokens the server records the token's principal: no decided_by,
        // and the token comes from the environment, never the message.
        assert_eq!(
            remote.grpcurl(Verdict::Approve, 7),
            r#"grpcurl -H "authorization: Bearer $AUTOSCALER_TOKEN" -d '{"action_id":7,"decision":"DECISION_APPROVE"}' scaler.internal:50051 autoscaler.v1.ApprovalsService/DecideAction"#
        );
    }

    #[test]
    fn long_messages_are_split_into_sections_slack_accepts() {
        let text = (0..40).map(|i| format!("{i}: {}", "x".repeat(300))).collect::<Vec<_>>().join("\n\n");
        let body = text_body(&text, "context");
        let blocks = body["blocks"].as_array().cloned().unwrap_or_default();
        assert!(blocks.len() > 3, "{}", blocks.len());
        for block in &blocks[..blocks.len() - 1] {
            let section = block["text"]["text"].as_str().unwrap_or_default();
            assert!(!section.is_empty() && section.len() <= 3_000, "{}", section.len());
        }
        assert_eq!(body["text"], text.as_str());
    }
}
