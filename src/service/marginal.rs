//! The marginal-ROAS strategy in the live engine: each campaign's daily
//! history rebuilt from yesterday as reported now and the rest of the past
//! week as re-read at the account's first cycle of the day (daily-breakdown
//! reads), older days from the cycle's stored `today` readings (the last
//! reading of each day), counted by the account's learned reporting-lag
//! curve; then the pure estimate and plan of [`crate::domain::strategy`]. The
//! engine applies the proposals through the same step as the threshold table.
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use super::AppState;
use crate::domain::action::ActionType;
use crate::domain::decision::Proposal;
use crate::domain::ids::CampaignId;
use crate::domain::performance::Performance;
use crate::domain::rule::{RuleSettings, ScalingRule, Strategy};
use crate::domain::strategy::{
    Belief, CampaignHistory, DayExposure, LagCurve, LearnedLag, PlanInput, estimate_account, lag::LAG_HORIZON_HOURS,
    plan_account,
};
use crate::error::Result;
use crate::persistence::lag_readings::DayTotals;
use crate::persistence::snapshots::{self, CampaignDayReading};
use crate::platform::{CampaignPerformance, CampaignState, InsightsWindow};

/// Days of history the estimator reads (four half-lives at the default).
const HISTORY_DAYS: u64 = 28;
/// Past days re-read every cycle, as reported now: Meta's 7-day click window,
/// after which a day's revenue is complete.
pub(crate) const RECENT_DAYS: u64 = 7;

/// The marginal strategy's proposals for an account and the order in which
/// the engine should decide its campaigns.
#[derive(Debug, Default)]
pub(crate) struct MarginalPlan {
    /// Proposal per campaign under a marginal-ROAS rule.
    pub proposals: HashMap<CampaignId, Proposal>,
    /// What the estimator believed of each campaign it had data for.
    pub beliefs: HashMap<CampaignId, Belief>,
    /// Indices into the engine's planned campaigns: the plan's decreases
    /// first (they free room under the cap), then the threshold table's
    /// campaigns in their order, then the plan's increases from the highest
    /// marginal return down, then its holds.
    pub order: Vec<usize>,
    /// The re-read past days' totals over the planned campaigns, to store as
    /// the lag curve's learning data.
    pub reported_days: Vec<DayTotals>,
    /// The reporting-lag curve the plan used.
    pub lag: Option<Arc<LearnedLag>>,
}

/// One campaign's last stored reading of each past day, by `YYYY-MM-DD`
/// (shared, not copied, by every cycle of the day).
pub(crate) type CampaignDays = Arc<HashMap<String, CampaignDayReading>>;

/// Per campaign, the last stored reading of each past day.
pub(crate) type StoredDays = HashMap<String, CampaignDays>;

/// One campaign under a marginal-ROAS rule, as the planner needs it.
pub(crate) struct Member {
    /// Its index in the caller's list.
    pub index: usize,
    /// Daily budget now.
    pub budget: i64,
    /// Whether it delivers.
    pub active: bool,
    /// The last stored reading of each earlier day, by `YYYY-MM-DD`.
    pub stored: CampaignDays,
    /// Today as read now.
    pub today: Option<Performance>,
    /// Past days as re-read and when (they replace the stored readings of
    /// the same days).
    pub recent: HashMap<NaiveDate, (Performance, DateTime<Utc>)>,
}

/// Plans each group of members under its rule (pure): the proposals and
/// the order among `n` campaigns (the others keep rank "threshold table").
pub(crate) fn plan_members(
    groups: &[(&RuleSettings, Vec<Member>)],
    n: usize,
    day_start: &dyn Fn(NaiveDate) -> Option<DateTime<Utc>>,
    today: NaiveDate,
    now: DateTime<Utc>,
    lag: &LagCurve,
) -> (HashMap<usize, Proposal>, Vec<usize>) {
    let (proposals, order, _) = plan_members_with_beliefs(groups, n, day_start, today, now, lag);
    (proposals, order)
}

/// [`plan_members`], with what the estimator believed of each member
/// (recorded with the engine's decisions).
#[allow(clippy::type_complexity)]
pub(crate) fn plan_members_with_beliefs(
    groups: &[(&RuleSettings, Vec<Member>)],
    n: usize,
    day_start: &dyn Fn(NaiveDate) -> Option<DateTime<Utc>>,
    today: NaiveDate,
    now: DateTime<Utc>,
    lag: &LagCurve,
) -> (HashMap<usize, Proposal>, Vec<usize>, HashMap<usize, Belief>) {
    let mut believed = HashMap::new();
    let mut proposals = HashMap::new();
    let mut rank: HashMap<usize, (u8, f64)> = HashMap::new();
    let calendar = Calendar::new(day_start, today);
    let mut shares = ReportedShares { lag, by_minutes: HashMap::new() };
    for (rule, members) in groups {
        let (histories, impressions): (Vec<CampaignHistory>, Vec<i64>) =
            members.iter().map(|m| history(&mut shares, &calendar, now, m)).unzip();
        let (_, beliefs) = estimate_account(&rule.marginal, &histories);
        let inputs: Vec<PlanInput> = members
            .iter()
            .zip(&beliefs)
            .zip(histories.iter().zip(&impressions))
            .map(|((m, belief), (h, impressions))| PlanInput {
                budget_minor: h.current_budget_minor,
                active: m.active,
                belief: *belief,
                impressions: *impressions,
            })
            .collect();
        let account_plan = plan_account(rule, &inputs);
        for (k, p) in account_plan.plans.into_iter().enumerate() {
            let i = members[k].index;
            if let Some(belief) = inputs[k].belief {
                believed.insert(i, belief);
            }
            let class = match p.proposal.action {
                ActionType::Pause | ActionType::ScaleDown => 0,
                ActionType::ScaleUp | ActionType::ScaleUpAggressive => 2,
                _ => 3,
            };
            rank.insert(i, (class, p.marginal_roas));
            proposals.insert(i, p.proposal);
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (rank.get(&a).copied().unwrap_or((1, 0.0)), rank.get(&b).copied().unwrap_or((1, 0.0)));
        ra.0.cmp(&rb.0).then(rb.1.total_cmp(&ra.1)).then(a.cmp(&b))
    });
    (proposals, order, believed)
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
    recent: Option<&RecentDays>,
) -> Result<MarginalPlan> {
    let mut out = MarginalPlan {
        proposals: HashMap::new(),
        beliefs: HashMap::new(),
        order: (0..planned.len()).collect(),
        reported_days: Vec::new(),
        lag: None,
    };
    let marginal: Vec<usize> =
        (0..planned.len()).filter(|&i| planned[i].1.settings.strategy == Strategy::MarginalRoas).collect();
    let Some(&first) = marginal.first() else { return Ok(out) };
    let account = planned[first].1.account_id.as_str();
    let today = now.with_timezone(&tz).date_naive();
    // Past days as re-read, by campaign; the totals of the days read in this
    // cycle over the planned campaigns (the same campaigns as the cycle's
    // "today" snapshots) are the lag curve's learning data.
    let mut by_day: HashMap<&str, HashMap<NaiveDate, (Performance, DateTime<Utc>)>> = HashMap::new();
    let planned_ids: std::collections::HashSet<&str> = planned.iter().map(|(c, _)| c.campaign_id.as_str()).collect();
    let mut totals: std::collections::BTreeMap<NaiveDate, DayTotals> = std::collections::BTreeMap::new();
    let reads = recent.map(|r| [(&r.week[..], r.week_read_at), (&r.yesterday[..], now)]).unwrap_or_default();
    for (rows, read_at) in reads {
        for &DayRow { ref campaign_id, day, figures } in rows {
            if day >= today || !planned_ids.contains(campaign_id.as_str()) {
                continue;
            }
            by_day.entry(campaign_id.as_str()).or_default().insert(day, (figures, read_at));
            if read_at != now {
                continue;
            }
            let t = totals.entry(day).or_insert_with(|| DayTotals {
                day: day.to_string(),
                taken_at: now,
                spend_minor: 0,
                revenue_minor: 0,
                conversions: 0,
            });
            t.spend_minor = t.spend_minor.saturating_add(figures.spend_minor);
            t.revenue_minor = t.revenue_minor.saturating_add(figures.revenue_minor);
            t.conversions = t.conversions.saturating_add(figures.conversions);
        }
    }
    out.reported_days = totals.into_values().collect();
    let lag = super::reporting_lag::for_account(state, account, tz, now).await?;
    // The last stored reading of each past day does not change once the day
    // has ended: read once per account-local day (the query scans the
    // account's snapshots of four weeks), then kept in memory.
    let by_campaign = match state.day_cache.stored_days(account, today) {
        Some(kept) => kept,
        None => {
            let since = now - TimeDelta::days(HISTORY_DAYS as i64 + 1);
            let mut by_campaign: HashMap<String, HashMap<String, CampaignDayReading>> = HashMap::new();
            let today_key = today.to_string();
            for r in snapshots::last_day_readings(&state.db, account, since).await? {
                if r.day < today_key {
                    by_campaign.entry(r.campaign_id.clone()).or_default().insert(r.day.clone(), r);
                }
            }
            let kept: Arc<StoredDays> =
                Arc::new(by_campaign.into_iter().map(|(c, days)| (c, Arc::new(days))).collect());
            state.day_cache.keep_stored_days(account, today, kept.clone());
            kept
        }
    };
    // One plan per marginal rule (an account rule and campaign rules may differ).
    let mut groups: Vec<(&RuleSettings, Vec<Member>)> = Vec::new();
    let mut group_of: HashMap<i64, usize> = HashMap::new();
    for &i in &marginal {
        let (campaign, rule) = planned[i];
        let g = *group_of.entry(rule.id).or_insert_with(|| {
            groups.push((&rule.settings, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(Member {
            index: i,
            budget: campaign.daily_budget_minor().unwrap_or(0),
            active: campaign.is_active(),
            stored: by_campaign.get(campaign.campaign_id.as_str()).cloned().unwrap_or_default(),
            today: today_rows.get(&campaign.campaign_id).map(|p| p.figures),
            recent: by_day.remove(campaign.campaign_id.as_str()).unwrap_or_default(),
        });
    }
    let (proposals, order, beliefs) =
        plan_members_with_beliefs(&groups, planned.len(), &|d| day_start(tz, d), today, now, &lag.curve);
    out.lag = Some(lag);
    out.proposals = proposals.into_iter().map(|(i, p)| (planned[i].0.campaign_id.clone(), p)).collect();
    out.beliefs = beliefs.into_iter().map(|(i, b)| (planned[i].0.campaign_id.clone(), b)).collect();
    out.order = order;
    Ok(out)
}

/// A window's figures by campaign.
pub(crate) type Rows = HashMap<CampaignId, CampaignPerformance>;

/// One campaign's figures of one past day, its date parsed once when read
/// (a week is thousands of rows per account, planned every cycle).
#[derive(Debug, Clone)]
pub(crate) struct DayRow {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// The account-local day.
    pub day: NaiveDate,
    /// The campaign's figures of that day.
    pub figures: Performance,
}

/// The rows of a day-by-day read as days; a row that does not cover
/// exactly one day is not a day's figures and is left out.
fn dated(rows: Vec<CampaignPerformance>) -> Vec<DayRow> {
    rows.into_iter()
        .filter(|row| row.date_stop == row.date_start)
        .filter_map(|row| {
            let day = NaiveDate::parse_from_str(&row.date_start, "%Y-%m-%d").ok()?;
            Some(DayRow { campaign_id: row.campaign_id, day, figures: row.figures })
        })
        .collect()
}

/// Yesterday per campaign as the 24-hour window (yesterday and today) minus
/// today, both read in the same cycle.
fn yesterday_from(
    last_24_hours: &HashMap<CampaignId, CampaignPerformance>,
    today_rows: &HashMap<CampaignId, CampaignPerformance>,
    yesterday: NaiveDate,
) -> Vec<DayRow> {
    last_24_hours
        .values()
        .map(|w| {
            let today = today_rows.get(&w.campaign_id).map_or_else(Performance::default, |t| t.figures);
            DayRow { campaign_id: w.campaign_id.clone(), day: yesterday, figures: w.figures.minus(&today) }
        })
        .collect()
}

/// Start of an account-local day in UTC (the earliest instant of that date).
pub(crate) fn day_start(tz: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
    day.and_hms_opt(0, 0, 0)?.and_local_timezone(tz).earliest().map(|t| t.with_timezone(&Utc))
}

/// The days of the history window, oldest first: how many days back, the
/// date, its `YYYY-MM-DD` key and its start. Worked out once per plan, not
/// once per campaign.
struct Calendar {
    days: Vec<(u64, NaiveDate, String, DateTime<Utc>)>,
}

impl Calendar {
    fn new(day_start: &dyn Fn(NaiveDate) -> Option<DateTime<Utc>>, today: NaiveDate) -> Self {
        let days = (0..HISTORY_DAYS)
            .rev()
            .filter_map(|back| {
                let day = today.checked_sub_days(Days::new(back))?;
                Some((back, day, day.to_string(), day_start(day)?))
            })
            .collect();
        Self { days }
    }
}

/// Spend taken as even over the hours of a day elapsed when it was read.
const EVEN_HOURS: [i64; 24] = [1; 24];

/// The reported share of a day read some minutes after it started, worked
/// out once per distinct reading time: an account's campaigns are read
/// together, so their days share a few dozen reading times.
struct ReportedShares<'a> {
    lag: &'a LagCurve,
    by_minutes: HashMap<i64, f64>,
}

impl ReportedShares<'_> {
    /// Share of a day's eventual revenue reported `minutes` after its start,
    /// its spend taken as even over the hours elapsed then.
    fn after(&mut self, minutes: i64) -> f64 {
        let lag = self.lag;
        *self.by_minutes.entry(minutes).or_insert_with(|| {
            let since_start = minutes as f64 / 60.0;
            let elapsed = hours_elapsed(minutes);
            if elapsed == 0 || since_start >= (24 + LAG_HORIZON_HOURS) as f64 {
                1.0
            } else {
                lag.share_of_hours(&EVEN_HOURS[..elapsed.min(24)], (since_start - 24.0).max(0.0))
            }
        })
    }
}

/// Whole hours of a day elapsed (0-24) `minutes` after it started, the
/// last one counted even when it has only begun.
fn hours_elapsed(minutes: i64) -> usize {
    (minutes as f64 / 60.0).clamp(0.0, 24.0).ceil() as usize
}

/// One campaign's days, oldest first, and its impressions over them.
fn history(
    shares: &mut ReportedShares<'_>,
    calendar: &Calendar,
    now: DateTime<Utc>,
    m: &Member,
) -> (CampaignHistory, i64) {
    let budget = m.budget;
    let mut days = Vec::with_capacity(calendar.days.len());
    let mut impressions = 0_i64;
    for (back, day, key, start) in &calendar.days {
        let (back, day, start) = (*back, *day, *start);
        let reading = m.stored.get(key);
        let stored_budget = reading.map_or(budget, |r| r.daily_budget_minor);
        let figures = match (back, m.today, m.recent.get(&day)) {
            (0, Some(f), _) => Some((f, now, budget)),
            (1.., _, Some((f, read_at))) => Some((*f, *read_at, stored_budget)),
            _ => reading.map(|r| {
                let f = Performance {
                    spend_minor: r.spend_minor,
                    revenue_minor: r.revenue_minor,
                    conversions: r.conversions,
                    impressions: r.impressions,
                    ..Performance::default()
                };
                (f, r.taken_at, r.daily_budget_minor)
            }),
        };
        let Some((f, read_at, day_budget)) = figures else { continue };
        if f.spend_minor <= 0 {
            continue;
        }
        let minutes = (read_at - start).num_minutes();
        let elapsed = hours_elapsed(minutes);
        let share = shares.after(minutes);
        impressions = impressions.saturating_add(f.impressions.max(0));
        days.push(DayExposure {
            spend_minor: f.spend_minor,
            revenue_minor: f.revenue_minor.max(0),
            conversions: f.conversions.max(0),
            reported_share: share,
            age_days: ((now - start).num_minutes() as f64 / 60.0 - elapsed as f64 / 2.0).max(0.0) / 24.0,
            budget_minor: if day_budget > 0 { day_budget } else { budget },
        });
    }
    (CampaignHistory { current_budget_minor: budget, days }, impressions)
}

/// The past week as the strategy re-reads it, campaign by campaign and day
/// by day.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecentDays {
    /// Yesterday, read in this cycle.
    pub yesterday: Vec<DayRow>,
    /// The [`RECENT_DAYS`] days before today except yesterday, read at the
    /// account's first cycle of the local day.
    pub week: Arc<Vec<DayRow>>,
    /// When the week was read.
    pub week_read_at: DateTime<Utc>,
}

/// Reads what the strategy needs of the past week when any rule of `rules`
/// uses it: yesterday every cycle (its revenue is still arriving fast; taken
/// from the 24-hour window minus today when the cycle read both anyway), the
/// days before it once per account-local day (one more paged read; they
/// change slowly), kept in memory until the day ends.
pub(crate) async fn read_recent(
    state: &AppState,
    account: &crate::domain::ids::AccountId,
    rules: &[&ScalingRule],
    today: NaiveDate,
    now: DateTime<Utc>,
    windows: Option<(&Rows, &Rows)>,
) -> Result<Option<RecentDays>> {
    if !rules.iter().any(|r| r.settings.strategy == Strategy::MarginalRoas) {
        return Ok(None);
    }
    let back = |n: u64| today.checked_sub_days(Days::new(n)).unwrap_or(today);
    let read = |window: InsightsWindow| async move {
        state.platform.insights(account, &window).await.map_err(|e| super::platform_error(state, account, e))
    };
    let yesterday = match windows {
        Some((last_24_hours, today_rows)) => yesterday_from(last_24_hours, today_rows, back(1)),
        None => dated(read(InsightsWindow::Daily { since: back(1), until: back(1) }).await?),
    };
    let (week, week_read_at) = match state.day_cache.week(account.as_str(), today) {
        Some(cached) => cached,
        None => {
            let rows = Arc::new(dated(read(InsightsWindow::Daily { since: back(RECENT_DAYS), until: back(2) }).await?));
            state.day_cache.keep_week(account.as_str(), today, rows.clone(), now);
            (rows, now)
        }
    };
    Ok(Some(RecentDays { yesterday, week, week_read_at }))
}
