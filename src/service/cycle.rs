//! The optimization cycle: every covered account is read, decided and
//! executed; approved actions left from before are executed; actions
//! abandoned by a crash are resolved. One account's failure never stops the
//! others, and cycles never overlap.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tracing::Instrument;

use super::AppState;
use super::engine::{self, EvaluateOptions, Evaluation, Failure, FailureKind, Selection};
use super::executor;
use super::time_optimization;
use crate::domain::action::{ActionStatus, ActionType};
use crate::domain::ids::AccountId;
use crate::domain::time_profile::DEFAULT_MIN_SAMPLES;
use crate::error::{Error, Result};
use crate::metrics::{AccountLabels, CycleLabels};
use crate::persistence::{actions, cycles, leases, rules};

/// Accounts evaluated at once: enough to overlap Meta's latency, few enough
/// to stay polite to its rate limits and the database.
const ACCOUNT_CONCURRENCY: usize = 4;

/// What a cycle does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleMode {
    /// Decide and execute.
    Optimize,
    /// Relearn hour-of-day profiles.
    Learn,
    /// Both.
    Both,
}

impl CycleMode {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optimize => "optimize",
            Self::Learn => "learn",
            Self::Both => "both",
        }
    }
}

/// What a cycle did.
#[derive(Debug, Clone)]
pub struct CycleReport {
    /// Recorded cycle id (0 for a dry run).
    pub cycle_id: i64,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: DateTime<Utc>,
    /// Accounts covered.
    pub accounts: usize,
    /// Campaigns evaluated.
    pub campaigns_evaluated: usize,
    /// Decisions by type.
    pub by_type: BTreeMap<ActionType, i64>,
    /// Executed (including approved actions from before).
    pub executed: i64,
    /// Waiting for approval.
    pub pending_approval: i64,
    /// Failed executions.
    pub failed: i64,
    /// Executions whose outcome could not be confirmed (settled next cycle).
    pub unconfirmed: i64,
    /// Pending actions expired.
    pub expired: i64,
    /// What could not be evaluated.
    pub failures: Vec<Failure>,
    /// Dry run only: the decisions.
    pub evaluations: Vec<Evaluation>,
    /// Hour-of-day profiles learned (modes learn and both).
    pub profiles_learned: i64,
    /// Meta budget schedules created for peak windows (rules with
    /// `apply_hourly_schedule`).
    pub schedules_applied: i64,
}

/// The accounts a cycle covers: the configured ones plus every account with an
/// enabled rule, optionally narrowed to `only`.
pub async fn covered_accounts(state: &AppState, only: &[AccountId]) -> Result<Vec<AccountId>> {
    let mut accounts: Vec<AccountId> = state.accounts.iter().cloned().collect();
    for account in rules::accounts_with_enabled_rules(&state.db).await? {
        if !accounts.contains(&account) {
            accounts.push(account);
        }
    }
    if !only.is_empty() {
        accounts.retain(|a| only.contains(a));
        for wanted in only {
            if !accounts.contains(wanted) {
                // Explicitly asked for: evaluate it even if not configured.
                accounts.push(wanted.clone());
            }
        }
    }
    accounts.sort();
    Ok(accounts)
}

/// Name of the lease that keeps cycles of all replicas from overlapping.
const CYCLE_LEASE: &str = "cycle";

/// Runs one cycle now (on demand). `Err(FailedPrecondition)` if a cycle is
/// already running here or on another replica. A dry run reads only, so it
/// neither waits for nor blocks real cycles.
#[tracing::instrument(skip_all, fields(mode = mode.as_str(), dry_run))]
pub async fn run_cycle(state: &AppState, mode: CycleMode, dry_run: bool, only: &[AccountId]) -> Result<CycleReport> {
    run_cycle_reporting(state, mode, dry_run, only, None).await
}

/// [`run_cycle`], telling `started` the cycle's id as soon as it is recorded
/// (so a caller that cannot wait for the end can say which cycle to look up).
pub async fn run_cycle_reporting(
    state: &AppState,
    mode: CycleMode,
    dry_run: bool,
    only: &[AccountId],
    started: Option<tokio::sync::oneshot::Sender<i64>>,
) -> Result<CycleReport> {
    if dry_run {
        if mode != CycleMode::Optimize {
            return Err(Error::invalid("dry_run", "learning stores profiles: a dry run covers mode optimize only"));
        }
        return optimize(state, 0, true, only, Utc::now()).await;
    }
    match run_exclusive(state, mode, only, None, started).await? {
        Some(report) => Ok(report),
        None => Err(Error::FailedPrecondition(busy_message(state).await)),
    }
}

/// Why a cycle cannot start now: who holds the cycle lease and until when.
async fn busy_message(state: &AppState) -> String {
    match leases::holder(&state.db, CYCLE_LEASE).await {
        Ok(Some((holder, until))) if until > Utc::now() => format!(
            "a cycle is already running (held by {holder} until {}; a crashed holder's lease lapses by then)",
            until.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        _ => "a cycle is already running in this process".to_owned(),
    }
}

/// Runs the scheduled cycle of `slot` unless a cycle is running or another
/// replica already ran (or runs) this slot: then `Ok(None)`.
pub async fn run_scheduled(state: &AppState, mode: CycleMode, slot: &str) -> Result<Option<CycleReport>> {
    run_exclusive(state, mode, &[], Some(slot), None).await
}

/// Renews the cycle lease while it lives; stops when dropped, so a cycle
/// that ends (or is dropped) never leaves a renewal behind.
struct LeaseRenewal(tokio::task::JoinHandle<()>);

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn renew_lease(state: &AppState, holder: &str, ttl: chrono::TimeDelta) -> LeaseRenewal {
    let db = state.db.clone();
    let holder = holder.to_owned();
    let every = state.engine.leases.renew_every;
    LeaseRenewal(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match leases::renew(&db, CYCLE_LEASE, &holder, ttl).await {
                Ok(true) => {}
                // Released or taken over: never take it back.
                Ok(false) => {
                    tracing::warn!("the cycle lease was lost; not renewing it");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the cycle lease"),
            }
        }
    }))
}

async fn run_exclusive(
    state: &AppState,
    mode: CycleMode,
    only: &[AccountId],
    slot: Option<&str>,
    started: Option<tokio::sync::oneshot::Sender<i64>>,
) -> Result<Option<CycleReport>> {
    let Ok(_local) = state.cycle_lock.try_lock() else {
        return Ok(None);
    };
    let holder = replica_name();
    let ttl = chrono::TimeDelta::from_std(state.engine.leases.ttl).unwrap_or(chrono::TimeDelta::seconds(30));
    if !leases::acquire(&state.db, CYCLE_LEASE, &holder, ttl).await? {
        return Ok(None);
    }
    // Keep the lease while the cycle runs; it lapses by itself if we crash.
    let renewal = renew_lease(state, &holder, ttl);
    let result = async {
        let started_at = Utc::now();
        let Some(cycle_id) = cycles::start(&state.db, mode.as_str(), &holder, slot).await? else {
            tracing::info!(slot, "another replica already ran this scheduled cycle");
            return Ok(None);
        };
        if let Some(started) = started {
            let _ = started.send(cycle_id);
        }
        let result = run_mode(state, mode, cycle_id, only, started_at).await;
        let seconds = (Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
        state.metrics.cycle_seconds.observe(seconds);
        let (status, summary) = match &result {
            Ok(report) => ("succeeded", summary_json(report)),
            Err(e) => {
                state.alerts.cycle_failed(cycle_id, mode.as_str(), &e.to_string());
                ("failed", serde_json::json!({ "error": e.to_string() }).to_string())
            }
        };
        state.metrics.cycles.get_or_create(&CycleLabels { outcome: status.to_owned() }).inc();
        if let Err(e) = cycles::finish(&state.db, cycle_id, status, &summary).await {
            tracing::error!(cycle_id, error = %e, "cannot record the end of the cycle");
        }
        result.map(Some)
    }
    .await;
    drop(renewal);
    if let Err(e) = leases::release(&state.db, CYCLE_LEASE, &holder).await {
        tracing::warn!(error = %e, "cannot release the cycle lease; it expires by itself");
    }
    result
}

async fn optimize(
    state: &AppState,
    cycle_id: i64,
    dry_run: bool,
    only: &[AccountId],
    started_at: DateTime<Utc>,
) -> Result<CycleReport> {
    let mut report = optimize_report(cycle_id, started_at);
    if !dry_run {
        // Settle what earlier cycles (or a crash) left unconfirmed first, by
        // reading the platform: their campaigns are decided again only then.
        for record in executor::settle_unsettled(state).await? {
            tracing::info!(action_id = record.id, status = record.status.as_str(), "settled an unconfirmed action");
        }
        // Pending approvals older than the TTL are stale: expire them first.
        report.expired += super::approvals::expire_stale(state).await?.len() as i64;
        prune(state, started_at).await;
        let waiting = actions::in_status(&state.db, ActionStatus::Approved, None, None, 10_000).await?;
        if !waiting.is_empty() {
            let ids: Vec<i64> = waiting.iter().map(|r| r.id).collect();
            match executor::execute_approved(state, &ids).await {
                Ok(done) => count_final(&mut report, done.iter().map(|r| r.status)),
                Err(e) => report.failures.push(Failure {
                    account_id: String::new(),
                    campaign_id: None,
                    error: format!("approved actions could not be executed yet: {e}"),
                    kind: FailureKind::Other,
                }),
            }
        }
    }

    let accounts = covered_accounts(state, only).await?;
    report.accounts = accounts.len();
    if !dry_run {
        // Every covered account gets its failure series (at 0) before any
        // failure, so the first failure shows as an increase.
        for account in &accounts {
            drop(state.metrics.account_cycle_failures.get_or_create(&AccountLabels { account: account.to_string() }));
        }
    }
    let options = EvaluateOptions { dry_run, cycle_id: (cycle_id > 0).then_some(cycle_id) };
    let mut outcomes = futures_util::stream::iter(accounts.into_iter().map(|account| {
        let state = state.clone();
        let span = tracing::info_span!("account", account_id = %account);
        async move {
            let outcome = engine::evaluate_account(&state, &account, Selection::AllActive, options).await;
            (account, outcome)
        }
        .instrument(span)
    }))
    .buffer_unordered(ACCOUNT_CONCURRENCY);
    // For the alerts at the end: one message for all of the cycle's approvals.
    let mut waiting = Vec::new();
    let (mut failed_accounts, mut evaluated_accounts) = (Vec::new(), Vec::new());
    while let Some((account, outcome)) = outcomes.next().await {
        match outcome {
            Ok(outcome) => {
                evaluated_accounts.push(account.to_string());
                waiting.extend(outcome.evaluations.iter().filter_map(|e| match e {
                    Evaluation::Recorded(r) if r.status == ActionStatus::PendingApproval => Some(r.clone()),
                    _ => None,
                }));
                report.campaigns_evaluated += outcome.evaluations.len();
                for evaluation in &outcome.evaluations {
                    *report.by_type.entry(evaluation.action().action_type).or_default() += 1;
                }
                count_final(&mut report, outcome.evaluations.iter().map(Evaluation::status));
                report.failures.extend(outcome.failures);
                if dry_run {
                    report.evaluations.extend(outcome.evaluations);
                }
            }
            Err(e) => {
                tracing::warn!(%account, error = %e, "account could not be evaluated");
                failed_accounts.push(crate::alerts::AccountFailure {
                    account: account.to_string(),
                    platform: match &e {
                        Error::Platform(failure) => Some(failure.clone()),
                        _ => None,
                    },
                    message: e.to_string(),
                });
                report.failures.push(Failure {
                    account_id: account.to_string(),
                    campaign_id: None,
                    error: e.to_string(),
                    kind: FailureKind::Other,
                });
            }
        }
    }
    report.finished_at = Utc::now();
    if !dry_run {
        count_failing_accounts(state, &report.failures);
        waiting.sort_by_key(|r| r.id);
        state.alerts.observe(&waiting);
        state.alerts.account_outcomes(cycle_id, &failed_accounts, &evaluated_accounts, report.finished_at);
    }
    tracing::info!(
        accounts = report.accounts,
        campaigns = report.campaigns_evaluated,
        executed = report.executed,
        pending = report.pending_approval,
        failed = report.failed,
        failures = report.failures.len(),
        "cycle finished"
    );
    Ok(report)
}

/// Runs what `mode` asks for: optimize, learn, or both (optimize first, so
/// learning sees the snapshots the optimization just took).
async fn run_mode(
    state: &AppState,
    mode: CycleMode,
    cycle_id: i64,
    only: &[AccountId],
    started_at: DateTime<Utc>,
) -> Result<CycleReport> {
    match mode {
        CycleMode::Optimize => optimize(state, cycle_id, false, only, started_at).await,
        CycleMode::Learn => {
            let mut report = optimize_report(cycle_id, started_at);
            learn(state, only, &mut report).await?;
            Ok(report)
        }
        CycleMode::Both => {
            let mut report = optimize(state, cycle_id, false, only, started_at).await?;
            learn(state, only, &mut report).await?;
            report.finished_at = Utc::now();
            Ok(report)
        }
    }
}

/// Routine rows older than their retention go, at most a bounded number per
/// cycle; a failure is logged and retried next cycle, never fails the cycle.
async fn prune(state: &AppState, now: DateTime<Utc>) {
    const MAX_ROWS_PER_CYCLE: u64 = 500_000;
    let retention = state.engine.retention;
    let (routine, snapshots) = (retention.routine.map(|d| now - d), retention.snapshots.map(|d| now - d));
    match crate::persistence::retention::prune(&state.db, routine, snapshots, MAX_ROWS_PER_CYCLE).await {
        Ok(p) if p != Default::default() => {
            tracing::info!(actions = p.actions, events = p.events, snapshots = p.snapshots, "pruned routine rows");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pruning routine rows failed; retried next cycle"),
    }
}

/// Counts each account that had a failure in this cycle once (failures not
/// tied to an account, such as the approved-actions queue, are left out).
fn count_failing_accounts(state: &AppState, failures: &[Failure]) {
    let accounts: std::collections::BTreeSet<&str> =
        failures.iter().map(|f| f.account_id.as_str()).filter(|a| !a.is_empty()).collect();
    for account in accounts {
        state.metrics.account_cycle_failures.get_or_create(&AccountLabels { account: account.to_owned() }).inc();
    }
}

fn optimize_report(cycle_id: i64, started_at: DateTime<Utc>) -> CycleReport {
    CycleReport {
        cycle_id,
        started_at,
        finished_at: started_at,
        accounts: 0,
        campaigns_evaluated: 0,
        by_type: BTreeMap::new(),
        executed: 0,
        pending_approval: 0,
        failed: 0,
        unconfirmed: 0,
        expired: 0,
        failures: Vec::new(),
        evaluations: Vec::new(),
        profiles_learned: 0,
        schedules_applied: 0,
    }
}

/// The learn step: every covered account's profiles in one pass each, then
/// the next day's peak windows applied for campaigns whose rule asks for it.
/// One account's failure is recorded and the others go on.
async fn learn(state: &AppState, only: &[AccountId], report: &mut CycleReport) -> Result<()> {
    let accounts = covered_accounts(state, only).await?;
    report.accounts = report.accounts.max(accounts.len());
    let mut outcomes = futures_util::stream::iter(accounts.into_iter().map(|account| {
        let state = state.clone();
        let span = tracing::info_span!("learn", account_id = %account);
        async move {
            let learned = time_optimization::learn(&state, &account, None, DEFAULT_MIN_SAMPLES).await;
            let applied = match &learned {
                Ok(outcome) => Some(time_optimization::apply_schedules(&state, &account, &outcome.profiles).await),
                Err(_) => None,
            };
            (account, learned, applied)
        }
        .instrument(span)
    }))
    .buffer_unordered(ACCOUNT_CONCURRENCY);
    while let Some((account, learned, applied)) = outcomes.next().await {
        match learned {
            Ok(outcome) => report.profiles_learned += outcome.profiles.len() as i64,
            Err(e) => {
                tracing::warn!(%account, error = %e, "hour-of-day profiles could not be learned");
                report.failures.push(Failure {
                    account_id: account.to_string(),
                    campaign_id: None,
                    error: format!("learning failed: {e}"),
                    kind: FailureKind::Other,
                });
            }
        }
        if let Some(applied) = applied {
            report.schedules_applied += applied.created as i64;
            report.failures.extend(applied.failures);
        }
    }
    report.finished_at = Utc::now();
    tracing::info!(profiles = report.profiles_learned, schedules = report.schedules_applied, "learning finished");
    Ok(())
}

fn count_final(report: &mut CycleReport, statuses: impl Iterator<Item = ActionStatus>) {
    for status in statuses {
        match status {
            ActionStatus::Executed => report.executed += 1,
            ActionStatus::PendingApproval => report.pending_approval += 1,
            ActionStatus::Failed => report.failed += 1,
            ActionStatus::Unconfirmed => report.unconfirmed += 1,
            ActionStatus::Expired => report.expired += 1,
            _ => {}
        }
    }
}

fn summary_json(report: &CycleReport) -> String {
    serde_json::json!({
        "accounts": report.accounts,
        "campaigns_evaluated": report.campaigns_evaluated,
        "executed": report.executed,
        "pending_approval": report.pending_approval,
        "failed": report.failed,
        "unconfirmed": report.unconfirmed,
        "expired": report.expired,
        "failures": report.failures.len(),
        "profiles_learned": report.profiles_learned,
        "schedules_applied": report.schedules_applied,
        "by_type": report.by_type.iter().map(|(t, n)| (t.as_str(), *n)).collect::<BTreeMap<_, _>>(),
    })
    .to_string()
}

/// This process's name in cycle records and leases: host, pid and start time.
pub fn replica_name() -> String {
    super::liveness::instance().to_owned()
}
