//! Use case: replay a rule set on an account's stored history. At every
//! stored reading (the hourly cycle's decision moments) each campaign is
//! decided with the live engine's own step ([`engine::decide_step`]), on the
//! figures the engine recorded (or rebuilt from its cumulative "today"
//! readings when the rule uses another window), with the replay's own budgets,
//! cooldowns and account total. Read-only: nothing is written anywhere.
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};

use super::AppState;
use super::engine::StepInputs;
use super::marginal::{self, Member};
use crate::domain::action::{ActionMetrics, ActionRecord, ActionStatus, ActionType};
use crate::domain::decision::{Decision, LimitKind, Outcome, Proposal};
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::money::minor_unit_offset;
use crate::domain::performance::Performance;
use crate::domain::rule::{self, MetricsWindow, RuleSettings, ScalingRule, Strategy};
use crate::domain::step::decide_proposed_step;
use crate::domain::strategy::LagCurve;
use crate::error::{Error, Result};
use crate::persistence::replay::{self as store, StoredReading};
use crate::persistence::rules;
use crate::persistence::snapshots::CampaignDayReading;

/// What every replay says about itself.
pub const NOTICE: &str = "A replay shows the decisions the rules would have made on the recorded figures. \
It does not show what the market would have done in response: the figures stay as recorded whatever budgets \
the replay sets, so spend, revenue and ROAS after a replayed change are not what that change would have produced.";
/// Where the figures come from.
pub const DATA_SOURCE: &str = "performance_snapshots: the engine's reading of each campaign at every cycle \
(the rule's window as decided on, plus cumulative figures of the account's day)";
/// Longest period one replay covers.
pub const MAX_PERIOD_DAYS: i64 = 31;
/// Most decisions listed in one response (the summary counts all).
pub const MAX_LISTED: usize = 10_000;
/// Days of readings loaded before the period for rebuilt windows.
const LOOKBACK_DAYS: u64 = 15;
/// How long after a reading the live engine's action for it may be recorded.
const MATCH_WINDOW: TimeDelta = TimeDelta::minutes(30);

/// What the replay assumes about changes that need approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalMode {
    /// Approved at once: applied when decided.
    #[default]
    Approve,
    /// Rejected at once: never applied.
    Reject,
}

/// A replay to run.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// The account.
    pub account: AccountId,
    /// Start of the period (inclusive).
    pub start: DateTime<Utc>,
    /// End of the period (exclusive).
    pub end: DateTime<Utc>,
    /// A candidate rule instead of the stored rules, and its campaign scope.
    pub candidate: Option<(RuleSettings, Option<CampaignId>)>,
    /// Only these campaigns (empty: all).
    pub campaigns: Vec<CampaignId>,
    /// Approvals assumption.
    pub approval: ApprovalMode,
}

/// What stopped or shortened a replayed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stop {
    /// The cooldown since the last budget change.
    Cooldown,
    /// The rule's min or max daily budget.
    BudgetLimit,
    /// The account-wide cap.
    AccountCap,
    /// Meta's floor at today's spend.
    SpendSoFar,
    /// Anything else; the reason says what.
    Other,
    /// Needed approval; the replay assumed a rejection.
    Rejected,
}

/// One replayed decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayedDecision {
    /// Decision time (the reading's).
    pub decided_at: DateTime<Utc>,
    /// Campaign.
    pub campaign_id: String,
    /// The stored rule that decided, `None` for a candidate or the defaults.
    pub rule_id: Option<i64>,
    /// The decision, exactly as the live step made it.
    pub decision: Decision,
    /// Whether it took effect in the replay.
    pub applied: bool,
    /// What stopped it, if anything did.
    pub stop: Option<Stop>,
    /// Whether a limit shortened it.
    pub limited: bool,
    /// The figures it decided on.
    pub metrics: ActionMetrics,
    /// Whether those figures were recorded as read (else rebuilt).
    pub metrics_recorded: bool,
    /// The live engine's action at the same reading, and whether it matches.
    pub recorded: Option<(i64, bool)>,
}

/// Counts over a replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplaySummary {
    /// Decision moments replayed.
    pub steps: i64,
    /// Campaigns replayed.
    pub campaigns: i64,
    /// Decisions.
    pub decisions: i64,
    /// Decisions by type.
    pub by_type: BTreeMap<&'static str, (ActionType, i64)>,
    /// Changes applied (budget changes and pauses).
    pub applied: i64,
    /// Changes that needed approval.
    pub needed_approval: i64,
    /// Held by the cooldown.
    pub stopped_by_cooldown: i64,
    /// Held by a min/max budget, the account cap or the spend floor.
    pub stopped_by_limits: i64,
    /// Shortened by a limit.
    pub limited: i64,
    /// Held for another reason.
    pub stopped_other: i64,
    /// Sum of applied increases.
    pub total_increase_minor: i64,
    /// Sum of applied decreases (pauses count their budget).
    pub total_decrease_minor: i64,
    /// Decisions with a live action at the same reading.
    pub compared_with_recorded: i64,
    /// Of those, decided the same.
    pub same_as_recorded: i64,
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    /// Period start.
    pub start: DateTime<Utc>,
    /// Period end.
    pub end: DateTime<Utc>,
    /// Currency of the amounts.
    pub currency: String,
    /// Decisions that wanted a change, in time order (at most [`MAX_LISTED`]).
    pub decisions: Vec<ReplayedDecision>,
    /// Whether `decisions` was cut.
    pub truncated: bool,
    /// Counts over every decision.
    pub summary: ReplaySummary,
    /// Assumptions and gaps.
    pub notes: Vec<String>,
}

/// A campaign as the replay has it.
#[derive(Debug, Clone, Default)]
struct Tracked {
    budget: Option<i64>,
    paused: bool,
    last_change: Option<DateTime<Utc>>,
}

/// Cumulative "today" readings: per campaign and local date, (time, figures).
type TodayIndex<'a> = HashMap<(&'a str, &'a str), Vec<&'a StoredReading>>;

/// Replays `req` on the stored history. Reads only.
pub async fn replay(state: &AppState, req: ReplayRequest) -> Result<ReplayReport> {
    if req.end <= req.start {
        return Err(Error::invalid("end_time", "must be after start_time"));
    }
    if req.end - req.start > TimeDelta::days(MAX_PERIOD_DAYS) {
        return Err(Error::invalid("end_time", format!("the period may cover at most {MAX_PERIOD_DAYS} days")));
    }
    let account = req.account.as_str();
    let mut only: Vec<String> = req.campaigns.iter().map(|c| c.to_string()).collect();
    if let Some((_, Some(campaign))) = &req.candidate {
        only = vec![campaign.to_string()];
    }
    let lookback = req.start.checked_sub_days(Days::new(LOOKBACK_DAYS)).unwrap_or(req.start);
    let readings = store::readings(&state.db, account, lookback, req.start, req.end, &only).await?;
    let in_period: Vec<&StoredReading> = readings.iter().filter(|r| r.taken_at >= req.start).collect();
    let Some(first) = in_period.first() else {
        return Err(Error::NotFound { kind: "stored readings of account", id: format!("{account} in the period") });
    };
    let currency = first.currency.clone();
    let mut notes = Vec::new();
    let rules = rules_for(state, &req, &currency, &mut notes).await?;
    let mut tracked: HashMap<String, Tracked> = HashMap::new();
    for (campaign, at) in crate::persistence::actions::last_budget_changes(&state.db, account, Some(req.start)).await? {
        tracked.entry(campaign).or_default().last_change = Some(at);
    }
    let recorded =
        recorded_by_campaign(store::recorded_actions(&state.db, account, req.start, req.end + MATCH_WINDOW).await?);

    let mut today: TodayIndex<'_> = HashMap::new();
    for r in readings.iter().filter(|r| r.metrics.window == MetricsWindow::Today.as_str()) {
        today.entry((r.campaign_id.as_str(), r.metrics.window_start.as_str())).or_default().push(r);
    }
    let any_marginal = rules.iter().any(|r| r.settings.enabled && r.settings.strategy == Strategy::MarginalRoas);
    let offset = if any_marginal { day_offset(&today) } else { TimeDelta::zero() };
    // The reporting-lag curve as the engine knew it when the period began.
    let lag = if any_marginal {
        let start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc() + offset);
        super::reporting_lag::learn_before(state, account, &start, req.start, None).await?.curve
    } else {
        LagCurve::prior()
    };
    // Decision moments: every distinct reading time in the period, in order;
    // within one, campaigns in the order the engine decided them (row id).
    let mut steps: BTreeMap<DateTime<Utc>, Vec<&StoredReading>> = BTreeMap::new();
    for r in &in_period {
        steps.entry(r.taken_at).or_default().push(r);
    }

    let out = ReplayReport {
        start: req.start,
        end: req.end,
        currency: currency.clone(),
        decisions: Vec::new(),
        truncated: false,
        summary: ReplaySummary { steps: steps.len() as i64, ..Default::default() },
        notes,
    };
    let replayer = Replayer {
        req: &req,
        currency: &currency,
        rules: &rules,
        recorded: &recorded,
        today: &today,
        any_marginal,
        offset,
        lag: &lag,
    };
    let mut progress = Progress { tracked, out, rebuilt: 0, without_rule: std::collections::BTreeSet::new() };
    for (&now, rows) in &steps {
        replayer.moment(now, rows, &mut progress);
    }
    let Progress { tracked, mut out, rebuilt, without_rule } = progress;
    out.summary.campaigns = tracked.values().filter(|t| t.budget.is_some()).count() as i64;
    finish_notes(&mut out, &req, rebuilt, &without_rule);
    Ok(out)
}

/// What every decision moment of one replay shares.
struct Replayer<'a> {
    req: &'a ReplayRequest,
    currency: &'a str,
    rules: &'a [ScalingRule],
    /// The live engine's actions, by campaign.
    recorded: &'a HashMap<String, Vec<ActionRecord>>,
    today: &'a TodayIndex<'a>,
    any_marginal: bool,
    /// The account's offset from UTC, as the readings show it.
    offset: TimeDelta,
    lag: &'a LagCurve,
}

/// What a replay has worked out so far.
struct Progress {
    tracked: HashMap<String, Tracked>,
    out: ReplayReport,
    /// Decisions whose window was rebuilt from "today" readings.
    rebuilt: i64,
    /// Campaigns no enabled rule covers.
    without_rule: std::collections::BTreeSet<String>,
}

impl Replayer<'_> {
    /// Decides every campaign read at `now`, in the order the engine would:
    /// the marginal plan's order, or the order of the readings.
    fn moment(&self, now: DateTime<Utc>, rows: &[&StoredReading], progress: &mut Progress) {
        // Group this moment's readings by campaign, in decision order.
        let mut order: Vec<&str> = Vec::new();
        let mut by_campaign: HashMap<&str, Vec<&StoredReading>> = HashMap::new();
        for r in rows {
            let entry = by_campaign.entry(r.campaign_id.as_str()).or_default();
            if entry.is_empty() {
                order.push(r.campaign_id.as_str());
            }
            entry.push(r);
        }
        let tracked = &progress.tracked;
        let mut active_total: Option<i64> = Some(
            order
                .iter()
                .filter_map(|c| {
                    let status_active = by_campaign[c].first().is_some_and(|r| r.status == "ACTIVE");
                    let t = tracked.get(*c);
                    let budget = t.and_then(|t| t.budget).unwrap_or_else(|| by_campaign[c][0].daily_budget_minor);
                    (status_active && !t.is_some_and(|t| t.paused)).then_some(budget)
                })
                .sum(),
        );
        // The marginal-ROAS strategy plans the account at this moment, as the engine does.
        let (proposals, plan_order) = if self.any_marginal {
            marginal_plan(&order, &by_campaign, self.rules, tracked, self.today, self.offset, now, self.lag)
        } else {
            (HashMap::new(), (0..order.len()).collect())
        };
        for index in plan_order {
            let campaign = order[index];
            let proposal = proposals.get(&index);
            if let Some(replayed) =
                self.campaign(now, campaign, &by_campaign[campaign], proposal, &mut active_total, progress)
            {
                count(&mut progress.out, replayed);
            }
        }
    }

    /// One campaign's decision at `now` through the engine's step, and its
    /// effect on the replayed budgets; `None` when nothing can be decided.
    fn campaign(
        &self,
        now: DateTime<Utc>,
        campaign: &str,
        readings_now: &[&StoredReading],
        proposal: Option<&Proposal>,
        active_total: &mut Option<i64>,
        progress: &mut Progress,
    ) -> Option<ReplayedDecision> {
        let campaign_id = CampaignId::parse(campaign, "campaign_id").ok()?;
        let Some(rule) = rule::applicable_rule(self.rules, &campaign_id) else {
            progress.without_rule.insert(campaign.to_owned());
            return None;
        };
        let window = rule.settings.metrics_window;
        let today_row = readings_now.iter().find(|r| r.metrics.window == MetricsWindow::Today.as_str())?;
        let (metrics, recorded_window) = match readings_now.iter().find(|r| r.metrics.window == window.as_str()) {
            Some(r) => (r.metrics.clone(), true),
            None => (rebuild(self.today, campaign, today_row, window)?, false),
        };
        progress.rebuilt += i64::from(!recorded_window);
        let t = progress.tracked.entry(campaign.to_owned()).or_default();
        if t.paused {
            return None;
        }
        let budget = *t.budget.get_or_insert(today_row.daily_budget_minor);
        let step = StepInputs {
            metrics: metrics.figures,
            daily_budget_minor: (budget > 0).then_some(budget),
            is_active: today_row.status == "ACTIVE",
            last_budget_change_at: t.last_change,
            spent_today_minor: today_row.metrics.figures.spend_minor,
            open_action: None,
        };
        let decision = decide_proposed_step(&rule.settings, &step, proposal, self.currency, now, active_total);
        let live = self
            .recorded
            .get(campaign)
            .and_then(|list| list.iter().find(|a| a.created_at >= now && a.created_at < now + MATCH_WINDOW));
        let applied = match decision.outcome {
            Outcome::Execute => true,
            Outcome::NeedsApproval => self.req.approval == ApprovalMode::Approve,
            Outcome::Hold => false,
        };
        if applied {
            if decision.action_type == ActionType::Pause {
                t.paused = true;
            } else {
                t.budget = Some(decision.new_budget_minor);
                // The live engine's execution time when it made the same change.
                let executed = live.filter(|a| same(a, &decision)).and_then(|a| a.executed_at);
                t.last_change = Some(executed.unwrap_or(now));
            }
        }
        Some(ReplayedDecision {
            decided_at: now,
            campaign_id: campaign.to_owned(),
            rule_id: (rule.id > 0).then_some(rule.id),
            stop: stop_of(&decision, applied),
            limited: decision.outcome != Outcome::Hold && !decision.limits_applied.is_empty(),
            applied,
            metrics,
            metrics_recorded: recorded_window,
            recorded: live.map(|a| (a.id, same(a, &decision))),
            decision,
        })
    }
}

/// The rules to replay: the candidate, or the stored enabled rules, or the
/// default rule's numbers in the account's currency when it has none.
async fn rules_for(
    state: &AppState,
    req: &ReplayRequest,
    currency: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<ScalingRule>> {
    let rule = |settings: RuleSettings, campaign_id: Option<CampaignId>| ScalingRule {
        id: 0,
        account_id: req.account.clone(),
        campaign_id,
        settings,
        created_by: String::new(),
        updated_by: String::new(),
        created_at: req.start,
        updated_at: req.start,
    };
    if let Some((settings, campaign)) = &req.candidate {
        notes.push("Replayed a candidate rule, not the stored rules.".into());
        return Ok(vec![rule(settings.clone(), campaign.clone())]);
    }
    let stored = rules::for_accounts(&state.db, std::slice::from_ref(&req.account)).await?;
    if stored.is_empty() {
        notes.push("The account has no stored rules: replayed the default rule, as the engine would create it.".into());
        let settings = RuleSettings::defaults("Default Auto-Scaling", currency, minor_unit_offset(currency));
        return Ok(vec![rule(settings, None)]);
    }
    notes.push("Replayed the account's rules as stored now (their settings during the period are not kept).".into());
    Ok(stored)
}

fn recorded_by_campaign(actions: Vec<ActionRecord>) -> HashMap<String, Vec<ActionRecord>> {
    let mut out: HashMap<String, Vec<ActionRecord>> = HashMap::new();
    for a in actions {
        out.entry(a.action.campaign_id.clone()).or_default().push(a);
    }
    out
}

/// Whether the live engine's recorded action is the same decision.
fn same(recorded: &ActionRecord, decision: &Decision) -> bool {
    let a = &recorded.action;
    let outcome = if a.requires_approval {
        Outcome::NeedsApproval
    } else if a.status == ActionStatus::Skipped {
        Outcome::Hold
    } else {
        Outcome::Execute
    };
    a.action_type == decision.action_type
        && a.old_budget_minor == decision.old_budget_minor
        && a.new_budget_minor == decision.new_budget_minor
        && outcome == decision.outcome
}

/// The figures of `window` at `today_row`'s moment, rebuilt from the
/// cumulative "today" readings: a past day counts as its last reading.
fn rebuild(
    today: &TodayIndex<'_>,
    campaign: &str,
    today_row: &StoredReading,
    window: MetricsWindow,
) -> Option<ActionMetrics> {
    let date = NaiveDate::parse_from_str(&today_row.metrics.window_start, "%Y-%m-%d").ok()?;
    let back = |n: u64| date.checked_sub_days(Days::new(n));
    let (days, with_today): (Vec<NaiveDate>, bool) = match window {
        MetricsWindow::Today => (Vec::new(), true),
        MetricsWindow::Yesterday => (back(1).into_iter().collect(), false),
        MetricsWindow::Last24Hours => (back(1).into_iter().collect(), true),
        MetricsWindow::Last3Days => ((1..=3).filter_map(back).collect(), false),
        MetricsWindow::Last7Days => ((1..=7).filter_map(back).collect(), false),
        MetricsWindow::Last14Days => ((1..=14).filter_map(back).collect(), false),
    };
    let mut figures = Performance::default();
    let mut add = |r: &StoredReading| figures = figures.plus(&r.metrics.figures);
    for day in &days {
        let key = day.to_string();
        let last = today.get(&(campaign, key.as_str())).and_then(|list| {
            list.iter().filter(|r| r.taken_at <= today_row.taken_at).max_by_key(|r| (r.taken_at, r.id))
        });
        if let Some(r) = last {
            add(r);
        }
    }
    if with_today {
        add(today_row);
    }
    let first = days.last().copied().unwrap_or(date);
    Some(ActionMetrics {
        figures,
        window: window.as_str().to_owned(),
        window_start: first.to_string(),
        window_end: if with_today { date.to_string() } else { days.first().copied().unwrap_or(date).to_string() },
    })
}

/// What stopped a decision that wanted a change.
fn stop_of(decision: &Decision, applied: bool) -> Option<Stop> {
    if !decision.action_type.changes_budget() {
        return None;
    }
    match decision.outcome {
        Outcome::NeedsApproval if !applied => return Some(Stop::Rejected),
        Outcome::Execute | Outcome::NeedsApproval => return None,
        Outcome::Hold => {}
    }
    let held_by = decision.limits_applied.last().filter(|l| l.after_minor == decision.old_budget_minor);
    Some(match held_by.map(|l| l.kind) {
        Some(LimitKind::MinDailyBudget | LimitKind::MaxDailyBudget) => Stop::BudgetLimit,
        Some(LimitKind::AccountSpendCap) => Stop::AccountCap,
        Some(LimitKind::SpendSoFar) => Stop::SpendSoFar,
        None if decision.reason.contains("; held: last budget change") => Stop::Cooldown,
        None => Stop::Other,
    })
}

/// Adds a decision to the counts, and to the list when it wanted a change.
fn count(out: &mut ReplayReport, d: ReplayedDecision) {
    let s = &mut out.summary;
    s.decisions += 1;
    s.by_type.entry(d.decision.action_type.as_str()).or_insert((d.decision.action_type, 0)).1 += 1;
    if let Some((_, same)) = d.recorded {
        s.compared_with_recorded += 1;
        s.same_as_recorded += i64::from(same);
    }
    if !d.decision.action_type.changes_budget() {
        return;
    }
    if d.applied {
        s.applied += 1;
        let change = d.decision.change_minor();
        if d.decision.action_type == ActionType::Pause {
            s.total_decrease_minor += d.decision.old_budget_minor;
        } else if change > 0 {
            s.total_increase_minor += change;
        } else {
            s.total_decrease_minor -= change;
        }
    }
    s.needed_approval += i64::from(d.decision.outcome == Outcome::NeedsApproval);
    s.limited += i64::from(d.limited);
    match d.stop {
        Some(Stop::Cooldown) => s.stopped_by_cooldown += 1,
        Some(Stop::BudgetLimit | Stop::AccountCap | Stop::SpendSoFar) => s.stopped_by_limits += 1,
        Some(Stop::Other) => s.stopped_other += 1,
        Some(Stop::Rejected) | None => {}
    }
    if out.decisions.len() < MAX_LISTED {
        out.decisions.push(d);
    } else {
        out.truncated = true;
    }
}

fn finish_notes(
    out: &mut ReplayReport,
    req: &ReplayRequest,
    rebuilt: i64,
    without_rule: &std::collections::BTreeSet<String>,
) {
    out.notes.push(match req.approval {
        ApprovalMode::Approve => "Changes that need approval are assumed approved at once.".into(),
        ApprovalMode::Reject => "Changes that need approval are assumed rejected at once.".into(),
    });
    if rebuilt > 0 {
        out.notes.push(format!(
            "{rebuilt} decisions used figures rebuilt from the cumulative \"today\" readings (the rule's window was not \
             recorded): a past day counts as its last reading of that day, so conversions reported later are missing."
        ));
    }
    if !without_rule.is_empty() {
        out.notes.push(format!("{} campaigns had readings but no enabled rule: not replayed.", without_rule.len()));
    }
    out.notes.push(
        "Budgets start at the recorded budget of each campaign's first reading and then follow the replay's own \
         decisions; the account total counts the campaigns read at each moment; actions open before the period \
         are not known."
            .into(),
    );
}

/// The account's offset from UTC as the readings show it: the first reading
/// of a local day is taken in its first hour when the hourly cycle ran then,
/// so the earliest (reading hour - date) over the days is local midnight.
fn day_offset(today: &TodayIndex<'_>) -> TimeDelta {
    today
        .iter()
        .filter_map(|((_, day), list)| {
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
            let first = list.iter().map(|r| r.taken_at).min()?;
            let midnight = date.and_hms_opt(0, 0, 0)?.and_utc();
            Some(TimeDelta::hours((first - midnight).num_hours()))
        })
        .filter(|o| o.num_hours().abs() <= 14)
        .min()
        .unwrap_or_else(TimeDelta::zero)
}

/// The marginal-ROAS plan of one decision moment: each campaign under such a
/// rule with the replay's own budget and pause state, its earlier days from
/// the stored readings up to this moment, today and yesterday as read now
/// (the re-read week before it is not stored per campaign).
#[allow(clippy::too_many_arguments)]
fn marginal_plan(
    order: &[&str],
    by_campaign: &HashMap<&str, Vec<&StoredReading>>,
    rules: &[ScalingRule],
    tracked: &HashMap<String, Tracked>,
    today: &TodayIndex<'_>,
    offset: TimeDelta,
    now: DateTime<Utc>,
    lag: &LagCurve,
) -> (HashMap<usize, Proposal>, Vec<usize>) {
    let mut groups: Vec<(&RuleSettings, Vec<Member>)> = Vec::new();
    let mut group_of: HashMap<i64, usize> = HashMap::new();
    let mut local_today = None;
    for (index, campaign) in order.iter().enumerate() {
        let Some(id) = CampaignId::parse(campaign, "campaign_id").ok() else { continue };
        let Some(rule) = rule::applicable_rule(rules, &id) else { continue };
        if rule.settings.strategy != Strategy::MarginalRoas {
            continue;
        }
        let rows = &by_campaign[campaign];
        let Some(today_row) = rows.iter().find(|r| r.metrics.window == MetricsWindow::Today.as_str()) else {
            continue;
        };
        let Ok(day) = NaiveDate::parse_from_str(&today_row.metrics.window_start, "%Y-%m-%d") else { continue };
        local_today = Some(day);
        let now_today = Some(today_row.metrics.figures);
        let window = rows.iter().find(|r| r.metrics.window == MetricsWindow::Last24Hours.as_str());
        let mut stored = HashMap::new();
        for back in 1..=28 {
            let Some(d) = day.checked_sub_days(Days::new(back)) else { continue };
            let key = d.to_string();
            let last = today
                .get(&(*campaign, key.as_str()))
                .and_then(|list| list.iter().filter(|r| r.taken_at < now).max_by_key(|r| (r.taken_at, r.id)));
            if let Some(r) = last {
                let f = r.metrics.figures;
                stored.insert(
                    key.clone(),
                    CampaignDayReading {
                        campaign_id: (*campaign).to_owned(),
                        day: d.to_string(),
                        taken_at: r.taken_at,
                        spend_minor: f.spend_minor,
                        revenue_minor: f.revenue_minor,
                        conversions: f.conversions,
                        impressions: f.impressions,
                        daily_budget_minor: r.daily_budget_minor,
                    },
                );
            }
        }
        let t = tracked.get(*campaign);
        let g = *group_of.entry(rule.id).or_insert_with(|| {
            groups.push((&rule.settings, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(Member {
            index,
            budget: t.and_then(|t| t.budget).unwrap_or(today_row.daily_budget_minor),
            active: today_row.status == "ACTIVE" && !t.is_some_and(|t| t.paused),
            stored: std::sync::Arc::new(stored),
            today: now_today,
            recent: window
                .zip(now_today)
                .map(|(w, today)| w.metrics.figures.minus(&today))
                .and_then(|f| Some((day.checked_sub_days(Days::new(1))?, (f, now))))
                .into_iter()
                .collect(),
        });
    }
    let Some(local_today) = local_today else { return (HashMap::new(), (0..order.len()).collect()) };
    let start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc() + offset);
    marginal::plan_members(&groups, order.len(), &start, local_today, now, lag)
}
