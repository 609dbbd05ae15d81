//! The scaling engine's use case: read an account's performance in one paged
//! call, decide for each campaign with the pure decision table, record every
//! decision (and a snapshot) in batches, then execute what needs no approval.
use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{AppState, executor, marginal, platform_error};
use crate::domain::action::{ActionMetrics, ActionRecord, ActionStatus, BudgetLevel, NewAction, RoasBelief};
use crate::domain::decision::{Decision, Outcome};
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::performance::Performance;
use crate::domain::rule::{self, MetricsWindow, NewRule, RuleSettings, ScalingRule};
use crate::domain::step::decide_proposed_step;
pub use crate::domain::step::{StepInputs, decide_step};
use crate::error::{Error, Result};
use crate::persistence::lag_readings::DayTotals;
use crate::persistence::snapshots::NewSnapshot;
use crate::persistence::{actions, decisions, rules};
use crate::platform::{AccountInfo, BudgetHolder, CampaignPerformance, CampaignState, InsightsWindow};

/// How an evaluation runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvaluateOptions {
    /// Decide only: record nothing, change nothing.
    pub dry_run: bool,
    /// The cycle this evaluation belongs to.
    pub cycle_id: Option<i64>,
}

/// One campaign's outcome.
#[derive(Debug, Clone)]
pub enum Evaluation {
    /// Recorded (and executed or queued).
    Recorded(ActionRecord),
    /// A dry run's decision: nothing was recorded.
    DryRun(NewAction),
}

impl Evaluation {
    /// The decision, recorded or not.
    pub fn action(&self) -> &NewAction {
        match self {
            Self::Recorded(record) => &record.action,
            Self::DryRun(action) => action,
        }
    }

    /// The action's status now (for a dry run: what it would have been).
    pub fn status(&self) -> ActionStatus {
        match self {
            Self::Recorded(record) => record.status,
            Self::DryRun(action) => action.status,
        }
    }
}

/// A campaign (or a whole account) that could not be evaluated. Serialized
/// with a replica's share of a cycle, for the cycle's starter to report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// Ad account.
    pub account_id: String,
    /// Campaign; `None` when the whole account failed.
    pub campaign_id: Option<String>,
    /// What went wrong.
    pub error: String,
    /// Why, for callers that map it to a status.
    pub kind: FailureKind,
}

/// Why a campaign could not be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The campaign does not exist in the account.
    NotFound,
    /// No enabled rule covers it.
    NoRule,
    /// Anything else (platform or database); also a kind a newer replica
    /// names that this one does not know.
    #[serde(other)]
    Other,
}

/// The outcome of evaluating (part of) one account.
#[derive(Debug, Clone, Default)]
pub struct AccountOutcome {
    /// One per evaluated campaign, in campaign order.
    pub evaluations: Vec<Evaluation>,
    /// Campaigns that could not be evaluated.
    pub failures: Vec<Failure>,
}

/// Which campaigns of an account to evaluate.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every active campaign.
    AllActive,
    /// Exactly these; an unknown one is a failure (or `NotFound` alone).
    Only(&'a [CampaignId]),
}

/// The insights of every metrics window in use, with the days each covers.
type Insights = HashMap<MetricsWindow, (WindowDays, HashMap<CampaignId, CampaignPerformance>)>;

/// A campaign to decide and the rule that applies to it.
type Planned<'a> = (&'a CampaignState, &'a ScalingRule);

/// Evaluates campaigns of one account: one account read, one paged campaign
/// read, one paged insights read per metrics window in use, batched writes.
/// It gathers, decides, records, then executes; a dry run stops after
/// deciding.
#[tracing::instrument(skip_all, fields(account_id = %account))]
pub async fn evaluate_account(
    state: &AppState,
    account: &AccountId,
    selection: Selection<'_>,
    options: EvaluateOptions,
) -> Result<AccountOutcome> {
    let info = state.platform.account(account).await.map_err(|e| platform_error(state, account, e))?;
    let tz = super::account_time_zone(account, &info)?;
    let now = Utc::now();
    let account_rules = rules_for(state, &info, options.dry_run).await?;
    let campaigns = state.platform.campaigns(account).await.map_err(|e| platform_error(state, account, e))?;

    let mut outcome = AccountOutcome::default();
    let planned = plan_campaigns(account, &campaigns, &account_rules, selection, &mut outcome.failures);
    if planned.is_empty() {
        return Ok(outcome);
    }
    let today = now.with_timezone(&tz).date_naive();
    let insights = read_insights(state, account, &planned, today).await?;
    let context = Context { account, info: &info, tz, now, today, cycle_id: options.cycle_id };
    let decided = decide_all(state, &context, &planned, &campaigns, &insights).await?;
    if options.dry_run {
        outcome.evaluations.extend(decided.actions.into_iter().map(Evaluation::DryRun));
        return Ok(outcome);
    }
    let recorded = record(state, account, &decided, options).await?;
    outcome.evaluations = execute_approved(state, account, recorded, &campaigns).await?;
    Ok(outcome)
}

/// The campaigns `selection` names, each with the rule that applies to it;
/// an unknown campaign or one without an enabled rule becomes a failure.
fn plan_campaigns<'a>(
    account: &AccountId,
    campaigns: &'a [CampaignState],
    account_rules: &'a [ScalingRule],
    selection: Selection<'_>,
    failures: &mut Vec<Failure>,
) -> Vec<Planned<'a>> {
    let failure = |campaign: &CampaignId, error: String, kind| Failure {
        account_id: account.to_string(),
        campaign_id: Some(campaign.to_string()),
        error,
        kind,
    };
    let targets: Vec<&CampaignState> = match selection {
        Selection::AllActive => campaigns.iter().filter(|c| c.is_active()).collect(),
        Selection::Only(ids) => {
            let by_id: HashMap<&CampaignId, &CampaignState> = campaigns.iter().map(|c| (&c.campaign_id, c)).collect();
            let mut found = Vec::new();
            for id in ids {
                match by_id.get(id) {
                    Some(c) => found.push(*c),
                    None => failures.push(failure(
                        id,
                        format!("campaign {id} was not found in account {account}"),
                        FailureKind::NotFound,
                    )),
                }
            }
            found
        }
    };
    let mut planned = Vec::with_capacity(targets.len());
    for campaign in targets {
        match rule::applicable_rule(account_rules, &campaign.campaign_id) {
            Some(r) => planned.push((campaign, r)),
            None => failures.push(failure(
                &campaign.campaign_id,
                "no enabled rule applies to this campaign".into(),
                FailureKind::NoRule,
            )),
        }
    }
    planned
}

/// One paged insights read per window in use (normally just one), plus the
/// cumulative figures of today: the hourly snapshots the time optimizer
/// learns from, and the spend that floors a scale-down.
async fn read_insights(
    state: &AppState,
    account: &AccountId,
    planned: &[Planned<'_>],
    today: NaiveDate,
) -> Result<Insights> {
    let mut insights = Insights::new();
    let windows = planned.iter().map(|(_, r)| r.settings.metrics_window).chain([MetricsWindow::Today]);
    for window in windows {
        if insights.contains_key(&window) {
            continue;
        }
        let days = window_days(window, today);
        let rows =
            state.platform.insights(account, &days.query).await.map_err(|e| platform_error(state, account, e))?;
        insights.insert(window, (days, rows.into_iter().map(|p| (p.campaign_id.clone(), p)).collect()));
    }
    Ok(insights)
}

/// Where and when an evaluation decides.
struct Context<'a> {
    account: &'a AccountId,
    info: &'a AccountInfo,
    tz: Tz,
    now: DateTime<Utc>,
    today: NaiveDate,
    cycle_id: Option<i64>,
}

/// An evaluation's decisions and what goes into the audit trail with them.
struct Decided {
    /// One per planned campaign, in campaign order.
    actions: Vec<NewAction>,
    /// The figures each decision saw, and today's.
    snapshots: Vec<NewSnapshot>,
    /// The account's day totals the marginal strategy re-read.
    reported_days: Vec<DayTotals>,
}

/// Decides every planned campaign through the pure step, in the order the
/// strategy gives (decreases free room under the cap before increases use
/// it), against the account's cooldowns, open actions and cap.
async fn decide_all(
    state: &AppState,
    context: &Context<'_>,
    planned: &[Planned<'_>],
    campaigns: &[CampaignState],
    insights: &Insights,
) -> Result<Decided> {
    let account = context.account.as_str();
    let last_changes = actions::last_budget_changes(&state.db, account, None).await?;
    let open = actions::open_by_campaign(&state.db, account).await?;
    // The cap bounds the daily budgets of active campaigns; campaigns without a
    // daily budget (lifetime budgets) add nothing to it.
    let mut active_total: Option<i64> = campaigns
        .iter()
        .filter(|c| c.is_active())
        .try_fold(0_i64, |sum, c| sum.checked_add(c.daily_budget_minor().unwrap_or(0)));

    // The marginal-ROAS strategy also re-reads the past week day by day.
    let rules_in_use: Vec<&ScalingRule> = planned.iter().map(|(_, r)| *r).collect();
    let (today_days, today_rows) = &insights[&MetricsWindow::Today];
    let windows = insights.get(&MetricsWindow::Last24Hours).map(|(_, rows)| (rows, today_rows));
    let recent =
        marginal::read_recent(state, context.account, &rules_in_use, context.today, context.now, windows).await?;
    let strategy = marginal::plan(state, planned, context.tz, context.now, today_rows, recent.as_ref()).await?;
    let mut decided: Vec<Option<NewAction>> = vec![None; planned.len()];
    let mut snapshots = Vec::with_capacity(planned.len() * 2);
    for &index in &strategy.order {
        let (campaign, r) = planned[index];
        let id = campaign.campaign_id.as_str();
        let (days, rows) = &insights[&r.settings.metrics_window];
        let perf = rows.get(&campaign.campaign_id);
        let today_perf = today_rows.get(&campaign.campaign_id);
        let step = StepInputs {
            metrics: metrics_of(perf),
            daily_budget_minor: campaign.daily_budget_minor(),
            is_active: campaign.is_active(),
            last_budget_change_at: last_changes.get(id).copied(),
            spent_today_minor: today_perf.map_or(0, |p| p.figures.spend_minor),
            open_action: open.get(id).copied(),
        };
        let proposal = strategy.proposals.get(&campaign.campaign_id);
        let decision =
            decide_proposed_step(&r.settings, &step, proposal, &context.info.currency, context.now, &mut active_total);
        let metrics = action_metrics(r.settings.metrics_window, days, perf);
        snapshots.push(snapshot(context, campaign, metrics.clone()));
        if r.settings.metrics_window != MetricsWindow::Today {
            snapshots.push(snapshot(context, campaign, action_metrics(MetricsWindow::Today, today_days, today_perf)));
        }
        let belief = strategy.beliefs.get(&campaign.campaign_id).map(|b| RoasBelief {
            roas: b.roas,
            low: b.low,
            high: b.high,
            credible_level: b.level,
            unreported_share: b.unreported_share,
        });
        decided[index] = Some(new_action(context, campaign, r, decision, metrics, belief));
    }
    Ok(Decided { actions: decided.into_iter().flatten().collect(), snapshots, reported_days: strategy.reported_days })
}

/// The figures a decision saw, as the snapshot the time optimizer and the
/// reporting-lag curve learn from.
fn snapshot(context: &Context<'_>, campaign: &CampaignState, metrics: ActionMetrics) -> NewSnapshot {
    NewSnapshot {
        account_id: context.account.to_string(),
        campaign_id: campaign.campaign_id.to_string(),
        cycle_id: context.cycle_id,
        taken_at: context.now,
        currency: context.info.currency.clone(),
        metrics,
        daily_budget_minor: campaign.daily_budget_minor().unwrap_or(0),
        status: campaign.effective_status.clone(),
    }
}

/// The action a decision becomes: approved to execute now, pending a
/// person, or skipped.
fn new_action(
    context: &Context<'_>,
    campaign: &CampaignState,
    rule: &ScalingRule,
    decision: Decision,
    metrics: ActionMetrics,
    belief: Option<RoasBelief>,
) -> NewAction {
    NewAction {
        account_id: context.account.to_string(),
        campaign_id: campaign.campaign_id.to_string(),
        campaign_name: campaign.name.clone(),
        rule_id: (rule.id > 0).then_some(rule.id),
        cycle_id: context.cycle_id,
        action_type: decision.action_type,
        status: match decision.outcome {
            Outcome::Execute => ActionStatus::Approved,
            Outcome::NeedsApproval => ActionStatus::PendingApproval,
            Outcome::Hold => ActionStatus::Skipped,
        },
        currency: context.info.currency.clone(),
        budget_level: budget_level(&campaign.budget),
        old_budget_minor: decision.old_budget_minor,
        new_budget_minor: decision.new_budget_minor,
        metrics,
        reason: decision.reason,
        requires_approval: decision.outcome == Outcome::NeedsApproval,
        belief,
    }
}

/// Records an evaluation's decisions, snapshots and re-read days in one
/// transaction, then tells watchers, metrics and (outside a cycle) alerts.
async fn record(
    state: &AppState,
    account: &AccountId,
    decided: &Decided,
    options: EvaluateOptions,
) -> Result<Vec<ActionRecord>> {
    let recorded = decisions::record(
        &state.db,
        decisions::Evaluated {
            account_id: account.as_str(),
            actions: &decided.actions,
            snapshots: &decided.snapshots,
            reported_days: &decided.reported_days,
        },
    )
    .await?;
    state.events.published();
    state.metrics.campaigns_evaluated.inc_by(recorded.len() as u64);
    state.metrics.observe_actions(&recorded);
    // Pending approvals alert now, in one message (a cycle sends all of its
    // accounts' approvals in one message at its end); executions alert from
    // the executor.
    if options.cycle_id.is_none() {
        state.alerts.observe(&recorded);
    }
    Ok(recorded)
}

/// Executes the approved decisions and returns every evaluation with its
/// final record.
async fn execute_approved(
    state: &AppState,
    account: &AccountId,
    recorded: Vec<ActionRecord>,
    campaigns: &[CampaignState],
) -> Result<Vec<Evaluation>> {
    let to_execute: Vec<ActionRecord> =
        recorded.iter().filter(|r| r.status == ActionStatus::Approved).cloned().collect();
    let executed = if to_execute.is_empty() {
        Vec::new()
    } else {
        // The campaigns were read moments ago: they are the pre-check.
        executor::execute_for_account(state, account, to_execute, campaigns, false).await?
    };
    let mut finals: HashMap<i64, ActionRecord> = executed.into_iter().map(|r| (r.id, r)).collect();
    Ok(recorded.into_iter().map(|r| Evaluation::Recorded(finals.remove(&r.id).unwrap_or(r))).collect())
}

fn non_empty(raw: &str, fallback: NaiveDate) -> String {
    if raw.is_empty() { fallback.to_string() } else { raw.to_owned() }
}

/// The figures of `perf` over `window` as recorded on actions and snapshots.
fn action_metrics(window: MetricsWindow, days: &WindowDays, perf: Option<&CampaignPerformance>) -> ActionMetrics {
    ActionMetrics {
        figures: metrics_of(perf),
        window: window.as_str().to_owned(),
        window_start: perf.map_or_else(|| days.since.to_string(), |p| non_empty(&p.date_start, days.since)),
        window_end: perf.map_or_else(|| days.until.to_string(), |p| non_empty(&p.date_stop, days.until)),
    }
}

/// The figures the decision sees: none read counts as nothing spent.
fn metrics_of(perf: Option<&CampaignPerformance>) -> Performance {
    perf.map_or_else(Performance::default, |p| p.figures.with_trusted_ctr())
}

fn budget_level(holder: &BudgetHolder) -> BudgetLevel {
    match holder {
        BudgetHolder::Campaign { .. } => BudgetLevel::Campaign,
        BudgetHolder::AdSets(_) => BudgetLevel::AdSet,
        BudgetHolder::NoDailyBudget => BudgetLevel::Unknown,
    }
}

/// The days a window covers and how to ask Meta for them.
#[derive(Debug, Clone)]
pub struct WindowDays {
    /// First day (account time zone).
    pub since: NaiveDate,
    /// Last day, inclusive.
    pub until: NaiveDate,
    /// The insights query.
    pub query: InsightsWindow,
}

/// The account-local days of `window` when the account's date is `today`.
/// Meta has no rolling 24-hour preset: "last 24 hours" is yesterday + today.
pub fn window_days(window: MetricsWindow, today: NaiveDate) -> WindowDays {
    let back = |n: u64| today.checked_sub_days(Days::new(n)).unwrap_or(today);
    let preset = |name: &str, since, until| WindowDays { since, until, query: InsightsWindow::Preset(name.into()) };
    match window {
        MetricsWindow::Last24Hours => {
            WindowDays { since: back(1), until: today, query: InsightsWindow::Range { since: back(1), until: today } }
        }
        MetricsWindow::Today => preset("today", today, today),
        MetricsWindow::Yesterday => preset("yesterday", back(1), back(1)),
        MetricsWindow::Last3Days => preset("last_3d", back(3), back(1)),
        MetricsWindow::Last7Days => preset("last_7d", back(7), back(1)),
        MetricsWindow::Last14Days => preset("last_14d", back(14), back(1)),
    }
}

/// The account's rules; an account without any gets the default rule (the
/// default rule's numbers in the account's currency), stored like any rule so
/// operators can see and change it. A dry run uses it without storing it.
async fn rules_for(state: &AppState, info: &AccountInfo, dry_run: bool) -> Result<Vec<ScalingRule>> {
    let existing = rules::for_accounts(&state.db, std::slice::from_ref(&info.account_id)).await?;
    if !existing.is_empty() {
        return Ok(existing);
    }
    let mut settings = RuleSettings::defaults("Default Auto-Scaling", info.currency.clone(), info.currency_offset);
    settings.strategy = state.engine.default_strategy;
    let new_rule =
        NewRule { account_id: info.account_id.clone(), campaign_id: None, settings, created_by: "autoscaler".into() };
    if dry_run {
        let now = Utc::now();
        return Ok(vec![ScalingRule {
            id: 0,
            account_id: new_rule.account_id,
            campaign_id: None,
            settings: new_rule.settings,
            created_by: new_rule.created_by.clone(),
            updated_by: new_rule.created_by,
            created_at: now,
            updated_at: now,
        }]);
    }
    match rules::create(&state.db, new_rule).await {
        Ok(created) => {
            tracing::info!(account_id = %info.account_id, rule_id = created.id, "created the default rule");
            Ok(vec![created])
        }
        // Another evaluation created it first: use theirs.
        Err(Error::AlreadyExists { .. }) => {
            rules::for_accounts(&state.db, std::slice::from_ref(&info.account_id)).await
        }
        Err(e) => Err(e),
    }
}
