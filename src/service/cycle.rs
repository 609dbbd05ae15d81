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
use crate::persistence::{actions, cycle_accounts, cycles, leases, rules};

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

impl LeaseRenewal {
    /// Calls `renew` every `renew_every` until it answers `false` (the lease
    /// was released or taken over: never take it back); an error is logged
    /// and the next tick tries again.
    fn start<F, Fut>(state: &AppState, what: &'static str, renew: F) -> Self
    where
        F: Fn(sea_orm::DatabaseConnection) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<bool>> + Send,
    {
        let db = state.db.clone();
        let every = state.engine.leases.renew_every;
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match renew(db.clone()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(lease = what, "the lease was lost; not renewing it");
                        return;
                    }
                    Err(e) => tracing::warn!(lease = what, error = %e, "cannot renew the lease"),
                }
            }
        }))
    }
}

/// Renews the cycle lease while it lives (stops when dropped).
fn renew_lease(state: &AppState, holder: &str, ttl: chrono::TimeDelta) -> LeaseRenewal {
    let holder = holder.to_owned();
    LeaseRenewal::start(state, "cycle", move |db| {
        let holder = holder.clone();
        async move { leases::renew(&db, CYCLE_LEASE, &holder, ttl).await }
    })
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
    if dry_run {
        let options = EvaluateOptions { dry_run, cycle_id: None };
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
        while let Some((account, outcome)) = outcomes.next().await {
            if let Ok(outcome) = &outcome {
                report.evaluations.extend(outcome.evaluations.iter().cloned());
            }
            AccountShare::of(&account, outcome).add_to(&mut report);
        }
    } else {
        // The accounts become claimable units: this replica and any other
        // replica of the deployment (see `assist`) work them off together.
        let names: Vec<String> = accounts.iter().map(ToString::to_string).collect();
        cycle_accounts::enqueue(&state.db, cycle_id, &names).await?;
        work_on_cycle(state, cycle_id).await?;
        wait_for_the_others(state, cycle_id).await?;
        // For the alerts at the end: one message for all of the cycle's
        // approvals and one for its failed accounts, whichever replica
        // worked on them.
        let (mut waiting, mut failed_accounts, mut evaluated_accounts) = (Vec::new(), Vec::new(), Vec::new());
        for done in cycle_accounts::done(&state.db, cycle_id).await? {
            match serde_json::from_str::<AccountShare>(&done.outcome) {
                Ok(share) => {
                    waiting.extend(share.waiting.iter().copied());
                    match &share.account_failure {
                        Some(failure) => failed_accounts.push(failure.clone()),
                        None => evaluated_accounts.push(done.account_id.clone()),
                    }
                    share.add_to(&mut report);
                }
                Err(e) => report.failures.push(Failure {
                    account_id: done.account_id,
                    campaign_id: None,
                    error: format!("the outcome recorded by {} cannot be read: {e}", done.holder),
                    kind: FailureKind::Other,
                }),
            }
        }
        report.finished_at = Utc::now();
        waiting.sort_unstable();
        let still_waiting: Vec<_> = actions::get_many(&state.db, &waiting)
            .await?
            .into_iter()
            .filter(|r| r.status == ActionStatus::PendingApproval)
            .collect();
        state.alerts.observe(&still_waiting);
        let failed_accounts: Vec<crate::alerts::AccountFailure> = failed_accounts
            .into_iter()
            .map(|f| crate::alerts::AccountFailure { account: f.account, platform: f.platform, message: f.message })
            .collect();
        state.alerts.account_outcomes(cycle_id, &failed_accounts, &evaluated_accounts, report.finished_at);
    }
    report.finished_at = Utc::now();
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

/// What one account contributed to a cycle, as the replica that worked on it
/// records it for the replica that reports the cycle.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct AccountShare {
    campaigns_evaluated: usize,
    by_type: BTreeMap<String, i64>,
    executed: i64,
    pending_approval: i64,
    failed: i64,
    unconfirmed: i64,
    expired: i64,
    failures: Vec<Failure>,
    /// Actions of this account left waiting for approval.
    #[serde(default)]
    waiting: Vec<i64>,
    /// Why the whole account could not be evaluated, if it could not.
    #[serde(default)]
    account_failure: Option<SharedAccountFailure>,
}

/// An account that could not be evaluated, for the cycle's alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SharedAccountFailure {
    account: String,
    platform: Option<crate::error::PlatformFailure>,
    message: String,
}

impl AccountShare {
    fn of(account: &AccountId, outcome: Result<engine::AccountOutcome>) -> Self {
        let mut share = Self::default();
        let failures = match outcome {
            Ok(outcome) => {
                share.campaigns_evaluated = outcome.evaluations.len();
                share.waiting = outcome
                    .evaluations
                    .iter()
                    .filter_map(|e| match e {
                        Evaluation::Recorded(r) if r.status == ActionStatus::PendingApproval => Some(r.id),
                        _ => None,
                    })
                    .collect();
                for evaluation in &outcome.evaluations {
                    *share.by_type.entry(evaluation.action().action_type.as_str().to_owned()).or_default() += 1;
                    if let Some(count) = final_count(
                        evaluation.status(),
                        [
                            &mut share.executed,
                            &mut share.pending_approval,
                            &mut share.failed,
                            &mut share.unconfirmed,
                            &mut share.expired,
                        ],
                    ) {
                        *count += 1;
                    }
                }
                outcome.failures
            }
            Err(e) => {
                tracing::warn!(%account, error = %e, "account could not be evaluated");
                share.account_failure = Some(SharedAccountFailure {
                    account: account.to_string(),
                    platform: match &e {
                        Error::Platform(failure) => Some(failure.clone()),
                        _ => None,
                    },
                    message: e.to_string(),
                });
                vec![Failure {
                    account_id: account.to_string(),
                    campaign_id: None,
                    error: e.to_string(),
                    kind: FailureKind::Other,
                }]
            }
        };
        share.failures = failures;
        share
    }

    fn add_to(self, report: &mut CycleReport) {
        report.campaigns_evaluated += self.campaigns_evaluated;
        for (name, n) in self.by_type {
            if let Some(action_type) = ActionType::parse(&name) {
                *report.by_type.entry(action_type).or_default() += n;
            }
        }
        report.executed += self.executed;
        report.pending_approval += self.pending_approval;
        report.failed += self.failed;
        report.unconfirmed += self.unconfirmed;
        report.expired += self.expired;
        report.failures.extend(self.failures);
    }
}

/// Claims accounts of `cycle_id` and works on them, [`ACCOUNT_CONCURRENCY`]
/// at a time, until none is left to claim; returns how many it did.
async fn work_on_cycle(state: &AppState, cycle_id: i64) -> Result<usize> {
    let holder = replica_name();
    let ttl = lease_ttl(state);
    let worker = || async {
        let mut done = 0;
        while let Some(claim) = cycle_accounts::claim(&state.db, cycle_id, &holder, ttl, Utc::now()).await? {
            work_on_account(state, &claim, &holder, ttl).await?;
            done += 1;
        }
        Ok::<usize, Error>(done)
    };
    let counts = futures_util::future::try_join_all((0..ACCOUNT_CONCURRENCY).map(|_| worker())).await?;
    Ok(counts.into_iter().sum())
}

/// Evaluates one claimed account, keeping its lease alive meanwhile, and
/// records its share of the cycle.
async fn work_on_account(
    state: &AppState,
    claim: &cycle_accounts::Claim,
    holder: &str,
    ttl: chrono::TimeDelta,
) -> Result<()> {
    let span = tracing::info_span!("account", account_id = %claim.account_id, cycle_id = claim.cycle_id);
    let share = async {
        // The cycle's own list of covered accounts: valid ids.
        let account = AccountId::parse(&claim.account_id, "account_id")?;
        let _renewal = renew_claim(state, claim.id, holder, ttl);
        let options = EvaluateOptions { dry_run: false, cycle_id: Some(claim.cycle_id) };
        let outcome = engine::evaluate_account(state, &account, Selection::AllActive, options).await;
        Ok::<_, Error>(AccountShare::of(&account, outcome))
    }
    .instrument(span)
    .await?;
    count_failing_accounts(state, share.failures.iter().map(|f| f.account_id.as_str()));
    let outcome = serde_json::to_string(&share).map_err(|e| Error::Internal(format!("account share: {e}")))?;
    if !cycle_accounts::complete(&state.db, claim.id, holder, &outcome).await? {
        tracing::warn!(account_id = %claim.account_id, "the account's lease lapsed and another replica took it over");
    }
    Ok(())
}

/// Renews a claim's lease while it lives (stops when dropped).
fn renew_claim(state: &AppState, claim_id: i64, holder: &str, ttl: chrono::TimeDelta) -> LeaseRenewal {
    let holder = holder.to_owned();
    LeaseRenewal::start(state, "account claim", move |db| {
        let holder = holder.clone();
        async move { cycle_accounts::renew(&db, claim_id, &holder, Utc::now() + ttl).await }
    })
}

/// Waits until every account of `cycle_id` is done, taking over any whose
/// holder's lease lapses meanwhile (a replica that died mid-account).
async fn wait_for_the_others(state: &AppState, cycle_id: i64) -> Result<()> {
    // A short poll: the last accounts of other replicas end at any moment,
    // and each look is one small indexed query.
    let poll = state.engine.leases.renew_every.min(std::time::Duration::from_millis(200));
    while cycle_accounts::remaining(&state.db, cycle_id).await? > 0 {
        tokio::time::sleep(poll).await;
        work_on_cycle(state, cycle_id).await?;
    }
    Ok(())
}

/// Joins the running cycles of other replicas: claims and works on their
/// accounts that no live replica holds. Skipped while this process runs a
/// cycle of its own (it works on that one). Returns the accounts done.
pub async fn assist(state: &AppState) -> Result<usize> {
    let open = cycle_accounts::claimable_cycles(&state.db, CYCLE_LEASE, Utc::now()).await?;
    if open.is_empty() {
        return Ok(0);
    }
    let Ok(_local) = state.cycle_lock.try_lock() else {
        return Ok(0);
    };
    let mut done = 0;
    for cycle_id in open {
        done += work_on_cycle(state, cycle_id).await?;
    }
    Ok(done)
}

/// Every lease interval, joins the cycles of other replicas (see [`assist`]).
pub async fn assist_forever(state: AppState) {
    let mut tick = tokio::time::interval(state.engine.leases.renew_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match assist(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(accounts = n, "worked on another replica's cycle"),
            Err(e) => tracing::warn!(error = %e, "cannot join another replica's cycle"),
        }
    }
}

fn lease_ttl(state: &AppState) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(state.engine.leases.ttl).unwrap_or(chrono::TimeDelta::seconds(30))
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
/// cycle, and finished days are rolled up for the dashboard (a month per
/// cycle); a failure is logged and retried next cycle, never fails the cycle.
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
    // Then seal the days that can no longer change into the dashboard's rollups.
    if let Err(e) = crate::persistence::rollups::refresh(&state.db, now, routine, 31).await {
        tracing::warn!(error = %e, "rolling up the dashboard failed; retried next cycle");
    }
}

/// Counts each account that had a failure in this cycle once (failures not
/// tied to an account, such as the approved-actions queue, are left out).
fn count_failing_accounts<'a>(state: &AppState, failing: impl IntoIterator<Item = &'a str>) {
    let accounts: std::collections::BTreeSet<&str> = failing.into_iter().filter(|a| !a.is_empty()).collect();
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
        let counts = [
            &mut report.executed,
            &mut report.pending_approval,
            &mut report.failed,
            &mut report.unconfirmed,
            &mut report.expired,
        ];
        if let Some(count) = final_count(status, counts) {
            *count += 1;
        }
    }
}

/// Which of the counts (executed, pending approval, failed, unconfirmed,
/// expired) an action ending a cycle in `status` adds to, if any.
fn final_count(status: ActionStatus, counts: [&mut i64; 5]) -> Option<&mut i64> {
    let [executed, pending, failed, unconfirmed, expired] = counts;
    match status {
        ActionStatus::Executed => Some(executed),
        ActionStatus::PendingApproval => Some(pending),
        ActionStatus::Failed => Some(failed),
        ActionStatus::Unconfirmed => Some(unconfirmed),
        ActionStatus::Expired => Some(expired),
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_failure_keeps_its_kind_and_reads_an_unknown_one_as_other() {
        let failure = Failure {
            account_id: "act_1".into(),
            campaign_id: Some("7".into()),
            error: "campaign 7 was not found in account act_1".into(),
            kind: FailureKind::NotFound,
        };
        let json = serde_json::to_value(&failure).expect("serializes");
        assert_eq!(json["kind"], "not_found");
        assert_eq!(serde_json::from_value::<Failure>(json.clone()).expect("reads back"), failure);
        let mut newer = json;
        newer["kind"] = "quota_exceeded".into();
        let read: Failure = serde_json::from_value(newer).expect("an unknown kind still reads");
        assert_eq!(read.kind, FailureKind::Other);
    }
}
