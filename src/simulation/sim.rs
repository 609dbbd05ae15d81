//! Simulation: one policy over the market, hour by hour. At the top of each
//! hour the policy sees what Meta would show (spend, impressions and clicks at
//! once; conversions only once their reporting lag has passed), the rule
//! policies decide every active campaign with the live engine's own step
//! ([`crate::service::engine::decide_step`]), and the market then plays the
//! hour out. All randomness is keyed by campaign and hour, so every policy
//! meets the same draws. The market's delivery costs apply to every policy
//! alike: under-delivered days, overdispersed conversions, and a learning
//! phase after any large budget edit, whichever driver made it (edits are
//! detected where budgets turn into spend).
use chrono::{DateTime, TimeDelta, Utc};

use super::learning::Learning;
use super::market::Market;
use super::rng::{Stream, normal_quantile, poisson, uniform};
use crate::domain::action::{ActionStatus, ActionType};
use crate::domain::decision::{Decision, Outcome, check_account_cap};
use crate::domain::performance::Performance;
use crate::domain::rule::{MetricsWindow, RuleSettings};
use crate::domain::step::{StepInputs, decide_proposed_step, decide_step};
use crate::domain::strategy::lag_learn::DayReading;
use crate::domain::strategy::{
    CampaignHistory, DayExposure, LagCurve, LagShape, ObservedDay, PlanInput, estimate_account, learn_lag_from,
    plan_account,
};
use crate::domain::time_profile::{self, CellSums, HOURS, Metric, ScheduleBounds, WEEKDAYS};

/// The simulated accounts' currency.
pub const CURRENCY: &str = "USD";
/// Days of history before the rules start deciding (they start on campaigns
/// that already have a complete yesterday, as a new install would).
pub const WARMUP_DAYS: usize = 1;
/// Days of history before the schedule policy starts leaning on its profile.
pub const LEARN_AFTER_DAYS: usize = 7;

/// How a simulated policy sets budgets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Driver<'a> {
    /// Budgets never change; spend follows flat pacing.
    Static,
    /// The rule decides every hour; with `schedule`, a learned hour-of-day
    /// profile reshapes each day's spend.
    Rules { rule: &'a RuleSettings, schedule: bool, approval_delay_hours: usize },
    /// Spend per campaign-hour is given (the oracle's plan, campaign-major).
    Plan(&'a [f64]),
    /// The marginal-ROAS strategy plans each account every hour
    /// ([`crate::domain::strategy`]) and the same step applies its proposals.
    Marginal { rule: &'a RuleSettings, approval_delay_hours: usize },
}

/// What one policy did and earned on one market. Money in minor units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyRun {
    /// Spend.
    pub spend_minor: i64,
    /// Revenue of every conversion the spend bought (reported or not yet).
    pub revenue_minor: i64,
    /// Expected revenue of the spend under the true curves (no conversion noise).
    pub expected_revenue_minor: f64,
    /// Spend on campaign-days whose true (expected) ROAS was below 1.
    pub low_roas_spend_minor: i64,
    /// Budget changes executed (increases and decreases).
    pub budget_changes: u64,
    /// Campaigns paused.
    pub pauses: u64,
    /// Decisions that needed a human approval.
    pub approvals_needed: u64,
    /// Approved increases refused by the executor's account-cap re-check.
    pub approvals_refused: u64,
    /// Account-hours whose active daily budgets summed above the account cap
    /// (for an oracle's plan: account-days planned above it).
    pub cap_breaches: u64,
    /// Profit (revenue - spend) of each day.
    pub daily_profit_minor: Vec<i64>,
    /// Daily budget of each campaign at the end (0 when paused).
    pub final_budgets_minor: Vec<i64>,
}

impl PolicyRun {
    /// Revenue - spend.
    pub fn profit_minor(&self) -> i64 {
        self.revenue_minor - self.spend_minor
    }

    /// Expected revenue - spend.
    pub fn expected_profit_minor(&self) -> f64 {
        self.expected_revenue_minor - self.spend_minor as f64
    }
}

/// A change waiting for approval.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: i64,
    old: i64,
    new: i64,
    due_hour: usize,
}

/// One campaign's state under a policy.
struct State {
    budget: i64,
    active: bool,
    last_change: Option<DateTime<Utc>>,
    pending: Option<Pending>,
    weights: [f64; 24],
    // Per day, what the platform reports so far.
    spend: Vec<i64>,
    impressions: Vec<i64>,
    clicks: Vec<i64>,
    revenue_seen: Vec<i64>,
    conversions_seen: Vec<i64>,
    expected_revenue: Vec<f64>,
    // Per day, the sum of the hourly budgets while active and their count.
    budget_sum: Vec<i64>,
    budget_hours: Vec<i64>,
    // Per hour, as the service's hourly table has it (increments of the
    // cumulative "today" readings): spend, and revenue reported during the
    // hour for the same local day.
    hour_spend: Vec<i64>,
    hour_revenue: Vec<i64>,
    // 7 x 24 learning sums of the complete days so far.
    cells: Vec<CellSums>,
    // The learning phase as delivery sees this campaign's budget edits.
    learning: Learning,
}

/// A conversion waiting to be reported: campaign, attribution hour and value.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    campaign: u32,
    hour: u32,
    revenue: i64,
}

/// The simulated clock: hour 0 is a Monday midnight.
pub(crate) fn clock(hour: usize) -> DateTime<Utc> {
    let start = DateTime::from_timestamp(1_767_571_200, 0).unwrap_or_default(); // 2026-01-05T00:00:00Z
    start + TimeDelta::hours(hour as i64)
}

/// Runs one policy over the whole market.
pub(crate) fn run(market: &Market, driver: Driver<'_>, cap_minor: i64) -> PolicyRun {
    let days = market.config.days;
    let hours = market.hours();
    let seed = market.config.seed;
    let params = market.params();
    let pacing = market.pacing;
    let mut states: Vec<State> = market
        .campaigns
        .iter()
        .map(|c| State {
            budget: c.budget0_minor,
            active: true,
            last_change: None,
            pending: None,
            weights: pacing,
            spend: vec![0; days],
            impressions: vec![0; days],
            clicks: vec![0; days],
            revenue_seen: vec![0; days],
            conversions_seen: vec![0; days],
            expected_revenue: vec![0.0; days],
            budget_sum: vec![0; days],
            budget_hours: vec![0; days],
            hour_spend: vec![0; hours],
            hour_revenue: vec![0; hours],
            cells: vec![CellSums::default(); HOURS * WEEKDAYS],
            learning: Learning::new(c.budget0_minor),
        })
        .collect();
    // Conversions by the hour they become visible.
    let mut arrivals: Vec<Vec<Arrival>> = (0..hours).map(|_| Vec::new()).collect();
    let mut out = PolicyRun { daily_profit_minor: vec![0; days], ..Default::default() };
    let mut next_action_id = 1_i64;
    let accounts = account_ranges(market);
    // The marginal strategy's readings of each account-day (today hourly,
    // the past week re-read every hour), and each account's learned curve.
    let mut observed: Vec<Vec<ObservedDay>> = vec![vec![ObservedDay::default(); days]; accounts.len()];
    let mut lags: Vec<LagCurve> = vec![LagCurve::prior(); accounts.len()];
    let mut shapes: Vec<Option<LagShape>> = vec![None; accounts.len()];

    for t in 0..hours {
        let (day, hour) = (t / 24, t % 24);
        let now = clock(t);
        for a in std::mem::take(&mut arrivals[t]) {
            if let Some(st) = states.get_mut(a.campaign as usize) {
                let d = a.hour as usize / 24;
                st.revenue_seen[d] += a.revenue;
                st.conversions_seen[d] += 1;
                // Reported during hour t - 1: that hour's increment, if same day.
                if let Some(prev) = t.checked_sub(1)
                    && d == prev / 24
                {
                    st.hour_revenue[prev] += a.revenue;
                }
            }
        }
        if let Driver::Rules { rule, schedule: with_schedule, approval_delay_hours } = driver
            && day >= WARMUP_DAYS
        {
            if with_schedule && hour == 0 {
                relearn(&mut states, day, &pacing);
            }
            for range in &accounts {
                settle_approvals(&mut states[range.clone()], rule, t, now, &mut out);
                let mut total: Option<i64> = Some(active_total(&states[range.clone()]));
                for st in &mut states[range.clone()] {
                    if !st.active {
                        continue;
                    }
                    let step = StepInputs {
                        metrics: window_metrics(st, rule.metrics_window, day),
                        daily_budget_minor: Some(st.budget),
                        is_active: true,
                        last_budget_change_at: st.last_change,
                        spent_today_minor: st.spend[day],
                        open_action: st.pending.map(|p| (p.id, ActionStatus::PendingApproval)),
                    };
                    let decision = decide_step(rule, &step, CURRENCY, now, &mut total);
                    apply(st, &decision, t, now, approval_delay_hours, &mut next_action_id, &mut out);
                }
            }
            for range in &accounts {
                if active_total(&states[range.clone()]) > cap_minor {
                    out.cap_breaches += 1;
                }
            }
        }
        if let Driver::Marginal { rule, approval_delay_hours } = driver
            && day >= WARMUP_DAYS
        {
            for (k, range) in accounts.iter().enumerate() {
                record_readings(&states[range.clone()], &mut observed[k], t);
                if hour == 0 {
                    // As the engine does at the first cycle of each local day.
                    let first = day.saturating_sub(LAG_LEARNING_DAYS);
                    let learned = learn_lag_from(&observed[k][first..day], shapes[k]);
                    shapes[k] = (learned.days_observed > 0).then_some(learned.shape);
                    lags[k] = learned.curve;
                }
                settle_approvals(&mut states[range.clone()], rule, t, now, &mut out);
                decide_marginal(
                    &mut states[range.clone()],
                    rule,
                    &lags[k],
                    t,
                    approval_delay_hours,
                    &mut next_action_id,
                    &mut out,
                );
            }
            for range in &accounts {
                if active_total(&states[range.clone()]) > cap_minor {
                    out.cap_breaches += 1;
                }
            }
        }

        if let Driver::Plan(plan) = driver
            && hour == 0
        {
            out.cap_breaches += plan_breaches(market, plan, day, cap_minor);
        }

        let value_sigma = params.conversions.order_value_sigma;
        for (c, (st, campaign)) in states.iter_mut().zip(&market.campaigns).enumerate() {
            let key = c as u64;
            let planned = match driver {
                Driver::Plan(plan) => plan[c * hours + t],
                _ if st.active => st.budget as f64 * st.weights[hour],
                _ => 0.0,
            };
            if planned <= 0.0 {
                continue;
            }
            let noise =
                1.0 + params.delivery.spend_noise * (2.0 * uniform(seed, key, t as u64, Stream::SpendNoise, 0) - 1.0);
            let spend = (planned * noise * market.delivered_share(c, day)).round().max(0.0);
            if spend <= 0.0 {
                continue;
            }
            let expected =
                campaign.expected_revenue(day, hour, spend) * st.learning.deliver(t, st.budget, &params.learning);
            let mean = expected / campaign.aov_minor * market.demand_shock(c, t);
            let conversions = poisson(mean, uniform(seed, key, t as u64, Stream::Conversions, 0));
            let impressions = (spend / campaign.cpm_minor * 1_000.0).round() as i64;
            let clicks =
                poisson(impressions as f64 * campaign.ctr, uniform(seed, key, t as u64, Stream::Clicks, 0)) as i64;
            let mut revenue = 0_i64;
            for k in 0..conversions {
                let z = normal_quantile(uniform(seed, key, t as u64, Stream::Value, k));
                let value =
                    (campaign.aov_minor * (value_sigma * z - value_sigma * value_sigma / 2.0).exp()).round() as i64;
                revenue += value;
                let visible = t + 1 + market.lag(c, uniform(seed, key, t as u64, Stream::Lag, k));
                if let Some(slot) = arrivals.get_mut(visible) {
                    slot.push(Arrival { campaign: c as u32, hour: t as u32, revenue: value });
                }
            }
            let spend = spend as i64;
            st.budget_sum[day] += st.budget;
            st.budget_hours[day] += 1;
            st.spend[day] += spend;
            st.impressions[day] += impressions;
            st.clicks[day] += clicks.min(impressions);
            st.expected_revenue[day] += expected;
            st.hour_spend[t] += spend;
            out.spend_minor += spend;
            out.revenue_minor += revenue;
            out.expected_revenue_minor += expected;
            out.daily_profit_minor[day] += revenue - spend;
        }
    }
    for st in &states {
        for d in 0..days {
            if st.spend[d] > 0 && st.expected_revenue[d] < st.spend[d] as f64 {
                out.low_roas_spend_minor += st.spend[d];
            }
        }
    }
    out.final_budgets_minor = states.iter().map(|s| if s.active { s.budget } else { 0 }).collect();
    out
}

/// The campaigns of each account, as index ranges.
pub(crate) fn account_ranges(market: &Market) -> Vec<std::ops::Range<usize>> {
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::with_capacity(market.accounts);
    for (i, c) in market.campaigns.iter().enumerate() {
        match ranges.get_mut(c.account) {
            Some(r) => r.end = i + 1,
            None => ranges.push(i..i + 1),
        }
    }
    ranges
}

/// Accounts whose planned spend on `day` exceeds the account cap (a plan
/// stands for the daily budgets an oracle would set).
fn plan_breaches(market: &Market, plan: &[f64], day: usize, cap_minor: i64) -> u64 {
    let hours = market.hours();
    let day_spend = |c: usize| -> f64 { plan[c * hours + day * 24..c * hours + day * 24 + 24].iter().sum() };
    account_ranges(market)
        .into_iter()
        .filter(|range| range.clone().map(day_spend).sum::<f64>() > cap_minor as f64 * (1.0 + 1e-9))
        .count() as u64
}

fn active_total(states: &[State]) -> i64 {
    states.iter().filter(|s| s.active).map(|s| s.budget).sum()
}

/// Approvals granted `approval_delay_hours` after the decision go through the
/// executor's re-check of the account cap with a fresh total.
fn settle_approvals(states: &mut [State], rule: &RuleSettings, t: usize, now: DateTime<Utc>, out: &mut PolicyRun) {
    for i in 0..states.len() {
        let Some(p) = states[i].pending.filter(|p| p.due_hour <= t) else { continue };
        states[i].pending = None;
        if !states[i].active || states[i].budget != p.old {
            continue;
        }
        let total = active_total(states);
        if check_account_cap(rule.max_daily_spend_limit_minor, Some(total), p.old, p.new).is_ok() {
            states[i].budget = p.new;
            states[i].last_change = Some(now);
            out.budget_changes += 1;
        } else {
            out.approvals_refused += 1;
        }
    }
}

/// The rule's window as the platform shows it at the top of hour `day`/now:
/// today so far plus whole earlier days, revenue only as reported.
fn window_metrics(st: &State, window: MetricsWindow, day: usize) -> Performance {
    let days = match window {
        MetricsWindow::Today => day..day + 1,
        MetricsWindow::Yesterday => day.saturating_sub(1)..day,
        MetricsWindow::Last24Hours => day.saturating_sub(1)..day + 1,
        MetricsWindow::Last3Days => day.saturating_sub(3)..day,
        MetricsWindow::Last7Days => day.saturating_sub(7)..day,
        MetricsWindow::Last14Days => day.saturating_sub(14)..day,
    };
    let sum = |v: &[i64]| v[days.clone()].iter().sum::<i64>();
    let (impressions, clicks) = (sum(&st.impressions), sum(&st.clicks));
    Performance {
        spend_minor: sum(&st.spend),
        revenue_minor: sum(&st.revenue_seen),
        impressions,
        clicks,
        conversions: sum(&st.conversions_seen),
        ctr_percent: if impressions > 0 { clicks as f64 * 100.0 / impressions as f64 } else { 0.0 },
    }
}

/// At the start of `day`: adds yesterday's hourly rows to each campaign's
/// learning sums and, from [`LEARN_AFTER_DAYS`] on, relearns its profile with
/// the service's own learner and schedule ([`time_profile::learn`],
/// [`time_profile::multipliers`] with the default bounds). The multipliers
/// scale each hour's share of flat pacing, as a Meta budget schedule raises
/// or lowers delivery within the day.
fn relearn(states: &mut [State], day: usize, pacing: &[f64; 24]) {
    let Some(yesterday) = day.checked_sub(1) else { return };
    let date = clock(yesterday * 24).date_naive();
    let (weekday, even) = (time_profile::weekday(date) as usize, time_profile::epoch_day(date) % 2 == 0);
    let bounds = ScheduleBounds::default();
    for st in states.iter_mut() {
        for h in 0..HOURS {
            let (s, v) = (st.hour_spend[yesterday * 24 + h] as f64, st.hour_revenue[yesterday * 24 + h] as f64);
            if s <= 0.0 {
                continue;
            }
            st.cells[weekday * HOURS + h].add(&CellSums {
                samples: 1,
                spend: s,
                value: v,
                spend_sq: s * s,
                value_sq: v * v,
                value_spend: v * s,
                even_samples: i64::from(even),
                even_spend: if even { s } else { 0.0 },
                even_value: if even { v } else { 0.0 },
            });
        }
        if day < LEARN_AFTER_DAYS || !st.active {
            continue;
        }
        let profile = time_profile::learn(Metric::Roas, &st.cells);
        let m = time_profile::multipliers(&profile.hourly_index, profile.confidence, &bounds);
        let total: f64 = (0..HOURS).map(|h| pacing[h] * m[h]).sum();
        if total > 0.0 {
            st.weights = std::array::from_fn(|h| pacing[h] * m[h] / total);
        }
    }
}

/// Days of history the marginal strategy reads (four half-lives).
const HISTORY_DAYS: usize = 28;
/// Past days the marginal strategy re-reads every hour (the engine's week).
const RECENT_DAYS: usize = 7;
/// Days of readings the lag curve is learned from (the engine's).
const LAG_LEARNING_DAYS: usize = 35;

/// One hour's readings of an account: today so far and each re-read day,
/// summed over its campaigns, as the engine stores them.
fn record_readings(states: &[State], observed: &mut [ObservedDay], t: usize) {
    let day = t / 24;
    for d in day.saturating_sub(RECENT_DAYS)..=day.min(observed.len().saturating_sub(1)) {
        let (spend, revenue) =
            states.iter().fold((0_i64, 0_i64), |(s, r), st| (s + st.spend[d], r + st.revenue_seen[d]));
        observed[d].readings.push(DayReading {
            hours_since_start: (t - d * 24) as f64,
            spend_minor: spend,
            revenue_minor: revenue,
        });
    }
}

/// One account's hour under the marginal-ROAS strategy: estimate every active
/// campaign from what the platform shows now, plan the account, and apply the
/// proposals through the live engine's step in the plan's order.
fn decide_marginal(
    states: &mut [State],
    rule: &RuleSettings,
    lag: &LagCurve,
    t: usize,
    approval_delay_hours: usize,
    next_action_id: &mut i64,
    out: &mut PolicyRun,
) {
    let day = t / 24;
    let first = (day + 1).saturating_sub(HISTORY_DAYS);
    let histories: Vec<CampaignHistory> = states
        .iter()
        .map(|st| {
            if !st.active {
                return CampaignHistory::default();
            }
            let days = (first..=day)
                .map(|d| {
                    let end = ((d + 1) * 24).min(t);
                    let hours = &st.hour_spend[d * 24..end.max(d * 24)];
                    DayExposure {
                        spend_minor: st.spend[d],
                        revenue_minor: st.revenue_seen[d],
                        conversions: st.conversions_seen[d],
                        reported_share: lag.share_of_hours(hours, (t - end.max(d * 24)) as f64),
                        age_days: (t as f64 - (d * 24) as f64 - hours.len() as f64 / 2.0) / 24.0,
                        budget_minor: if st.budget_hours[d] > 0 {
                            st.budget_sum[d] / st.budget_hours[d]
                        } else {
                            st.budget
                        },
                    }
                })
                .collect();
            CampaignHistory { current_budget_minor: st.budget, days }
        })
        .collect();
    let (_, beliefs) = estimate_account(&rule.marginal, &histories);
    let inputs: Vec<PlanInput> = states
        .iter()
        .zip(&beliefs)
        .map(|(st, belief)| PlanInput {
            budget_minor: st.budget,
            active: st.active,
            belief: *belief,
            impressions: st.impressions[first..=day].iter().sum(),
        })
        .collect();
    let plan = plan_account(rule, &inputs);
    let now = clock(t);
    let mut total: Option<i64> = Some(active_total(states));
    for &i in &plan.order {
        let st = &mut states[i];
        if !st.active {
            continue;
        }
        let step = StepInputs {
            metrics: window_metrics(st, rule.metrics_window, day),
            daily_budget_minor: Some(st.budget),
            is_active: true,
            last_budget_change_at: st.last_change,
            spent_today_minor: st.spend[day],
            open_action: st.pending.map(|p| (p.id, ActionStatus::PendingApproval)),
        };
        let decision = decide_proposed_step(rule, &step, Some(&plan.plans[i].proposal), CURRENCY, now, &mut total);
        apply(st, &decision, t, now, approval_delay_hours, next_action_id, out);
    }
}

/// Applies one decision to a campaign's simulated state.
fn apply(
    st: &mut State,
    decision: &Decision,
    t: usize,
    now: DateTime<Utc>,
    approval_delay_hours: usize,
    next_action_id: &mut i64,
    out: &mut PolicyRun,
) {
    match decision.outcome {
        Outcome::Hold => {}
        Outcome::Execute if decision.action_type == ActionType::Pause => {
            st.active = false;
            out.pauses += 1;
        }
        Outcome::Execute => {
            st.budget = decision.new_budget_minor;
            st.last_change = Some(now);
            out.budget_changes += 1;
        }
        Outcome::NeedsApproval => {
            out.approvals_needed += 1;
            st.pending = Some(Pending {
                id: *next_action_id,
                old: decision.old_budget_minor,
                new: decision.new_budget_minor,
                due_hour: t + approval_delay_hours,
            });
            *next_action_id += 1;
        }
    }
}
