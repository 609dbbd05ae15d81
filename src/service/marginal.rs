//! The marginal-ROAS strategy in the live engine: each campaign's daily
//! history rebuilt from the cycle's stored `today` readings (the last reading
//! of each day) plus the figures just read, then the pure estimate and plan of
//! [`crate::domain::strategy`]. The engine applies the proposals through the
//! same step as the threshold table.
use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use super::AppState;
use crate::domain::decision::Proposal;
use crate::domain::ids::CampaignId;
use crate::domain::rule::{MetricsWindow, ScalingRule, Strategy};
use crate::domain::strategy::{
    CampaignHistory, DayExposure, LagCurve, PlanInput, estimate_account, lag::LAG_HORIZON_HOURS, plan_account,
};
use crate::error::Result;
use crate::persistence::snapshots::{self, DayReading};
use crate::platform::{CampaignPerformance, CampaignState};

/// Days of history the estimator reads (four half-lives at the default).
const HISTORY_DAYS: u64 = 28;

/// The marginal strategy's proposals for an account and the order in which
/// the engine should decide its campaigns.
#[derive(Debug, Default)]
pub(crate) struct MarginalPlan {
    /// Proposal per campaign under a marginal-ROAS rule.
    pub proposals: HashMap<CampaignId, Proposal>,
    /// Indices into the engine's planned campaigns: the plan's decreases
    /// first (they free room under the cap), then the threshold table's
    /// campaigns in their order, then the plan's increases from the highest
    /// marginal return down, then its holds.
    pub order: Vec<usize>,
}

/// Plans every campaign of `planned` whose rule uses the marginal-ROAS
/// strategy; the others keep their order. Reads stored snapshots only when
/// such a rule exists.
pub(crate) async fn plan(
    state: &AppState,
    planned: &[(&CampaignState, &ScalingRule)],
    tz: Tz,
    now: DateTime<Utc>,
    today_rows: &HashMap<CampaignId, CampaignPerformance>,
    last_24_hours: Option<&HashMap<CampaignId, CampaignPerformance>>,
) -> Result<MarginalPlan> {
    let mut out = MarginalPlan { proposals: HashMap::new(), order: (0..planned.len()).collect() };
    let marginal: Vec<usize> =
        (0..planned.len()).filter(|&i| planned[i].1.settings.strategy == Strategy::MarginalRoas).collect();
    let Some(&first) = marginal.first() else { return Ok(out) };
    let account = planned[first].1.account_id.as_str();
    let readings =
        snapshots::last_day_readings(&state.db, account, now - TimeDelta::days(HISTORY_DAYS as i64 + 1)).await?;
    let mut by_campaign: HashMap<&str, HashMap<&str, &DayReading>> = HashMap::new();
    for r in &readings {
        by_campaign.entry(r.campaign_id.as_str()).or_default().insert(r.day.as_str(), r);
    }
    let today = now.with_timezone(&tz).date_naive();
    let lag = LagCurve::prior();

    // One plan per marginal rule (an account rule and campaign rules may differ).
    let mut groups: HashMap<i64, Vec<usize>> = HashMap::new();
    for &i in &marginal {
        groups.entry(planned[i].1.id).or_default().push(i);
    }
    let mut rank: HashMap<usize, (u8, f64)> = HashMap::new();
    for members in groups.values() {
        let rule = &planned[members[0]].1.settings;
        let histories: Vec<(CampaignHistory, i64)> = members
            .iter()
            .map(|&i| {
                let campaign = planned[i].0;
                let id = campaign.campaign_id.as_str();
                let stored = by_campaign.get(id);
                let budget = campaign.daily_budget_minor().unwrap_or(0);
                history(
                    &lag,
                    tz,
                    now,
                    today,
                    budget,
                    stored,
                    today_rows.get(&campaign.campaign_id),
                    last_24_hours.and_then(|w| w.get(&campaign.campaign_id)),
                )
            })
            .collect();
        let (_, beliefs) =
            estimate_account(&rule.marginal, &histories.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>());
        let inputs: Vec<PlanInput> = members
            .iter()
            .zip(&beliefs)
            .zip(&histories)
            .map(|((&i, belief), (h, impressions))| PlanInput {
                budget_minor: h.current_budget_minor,
                active: planned[i].0.is_active(),
                belief: *belief,
                impressions: *impressions,
            })
            .collect();
        let account_plan = plan_account(rule, &inputs);
        for (k, p) in account_plan.plans.into_iter().enumerate() {
            let i = members[k];
            let class = match p.proposal.action {
                crate::domain::action::ActionType::Pause | crate::domain::action::ActionType::ScaleDown => 0,
                crate::domain::action::ActionType::ScaleUp => 2,
                _ => 3,
            };
            rank.insert(i, (class, p.marginal_roas));
            out.proposals.insert(planned[i].0.campaign_id.clone(), p.proposal);
        }
    }
    out.order.sort_by(|&a, &b| {
        let (ra, rb) = (rank.get(&a).copied().unwrap_or((1, 0.0)), rank.get(&b).copied().unwrap_or((1, 0.0)));
        ra.0.cmp(&rb.0).then(rb.1.total_cmp(&ra.1)).then(a.cmp(&b))
    });
    Ok(out)
}

/// Start of an account-local day in UTC (the earliest instant of that date).
fn day_start(tz: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
    day.and_hms_opt(0, 0, 0)?.and_local_timezone(tz).earliest().map(|t| t.with_timezone(&Utc))
}

/// One campaign's days, oldest first, and its impressions over them.
#[allow(clippy::too_many_arguments)]
fn history(
    lag: &LagCurve,
    tz: Tz,
    now: DateTime<Utc>,
    today: NaiveDate,
    budget: i64,
    stored: Option<&HashMap<&str, &DayReading>>,
    today_row: Option<&CampaignPerformance>,
    window_row: Option<&CampaignPerformance>,
) -> (CampaignHistory, i64) {
    let mut days = Vec::new();
    let mut impressions = 0_i64;
    for back in (0..HISTORY_DAYS).rev() {
        let Some(day) = today.checked_sub_days(Days::new(back)) else { continue };
        let Some(start) = day_start(tz, day) else { continue };
        let key = day.to_string();
        let reading = stored.and_then(|m| m.get(key.as_str())).copied();
        // (spend, revenue, purchases, impressions, read at, budget)
        let figures = if back == 0 {
            today_row.map(|p| (p.spend_minor, p.revenue_minor, p.conversions, p.impressions, now, budget))
        } else if back == 1
            && let (Some(w), Some(t)) = (window_row, today_row)
        {
            // Yesterday as reported now: the 24-hour window minus today.
            let b = reading.map_or(budget, |r| r.daily_budget_minor);
            Some((
                w.spend_minor - t.spend_minor,
                w.revenue_minor - t.revenue_minor,
                w.conversions - t.conversions,
                w.impressions - t.impressions,
                now,
                b,
            ))
        } else {
            reading.map(|r| {
                (r.spend_minor, r.revenue_minor, r.conversions, r.impressions, r.taken_at, r.daily_budget_minor)
            })
        };
        let Some((spend, revenue, conversions, shown, read_at, day_budget)) = figures else { continue };
        if spend <= 0 {
            continue;
        }
        let since_start = (read_at - start).num_minutes() as f64 / 60.0;
        let elapsed = since_start.clamp(0.0, 24.0).ceil() as usize;
        let share = if elapsed == 0 || since_start >= (24 + LAG_HORIZON_HOURS) as f64 {
            1.0
        } else {
            // Spend taken as even over the hours elapsed when it was read.
            lag.share_of_hours(&vec![1; elapsed], (since_start - 24.0).max(0.0))
        };
        impressions = impressions.saturating_add(shown.max(0));
        days.push(DayExposure {
            spend_minor: spend,
            revenue_minor: revenue.max(0),
            conversions: conversions.max(0),
            reported_share: share,
            age_days: ((now - start).num_minutes() as f64 / 60.0 - elapsed as f64 / 2.0).max(0.0) / 24.0,
            budget_minor: if day_budget > 0 { day_budget } else { budget },
        });
    }
    (CampaignHistory { current_budget_minor: budget, days }, impressions)
}

/// Whether any rule of `rules` needs the 24-hour window read for yesterday.
pub(crate) fn wants_last_24_hours(rules: &[&ScalingRule]) -> bool {
    rules.iter().any(|r| r.settings.strategy == Strategy::MarginalRoas)
}

/// The window the strategy reads yesterday from.
pub(crate) const YESTERDAY_WINDOW: MetricsWindow = MetricsWindow::Last24Hours;
