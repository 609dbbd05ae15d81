//! Applying learned schedules on Meta. A daily budget cannot be set per
//! hour, so the schedule's peak windows of the next local day become budget
//! schedules (high-demand periods, MULTIPLIER type): at least 3 hours each,
//! on hour boundaries of the account's time zone (15-minute aligned), at
//! most 50 per campaign or ad set, at most 8x, and never above the rule's
//! maximum daily budget. Meta's schedules only raise a budget: valleys are
//! not cut. A day that already has schedules is left alone, so reruns never
//! duplicate. Only campaigns whose rule sets `apply_hourly_schedule`.
use chrono::{DateTime, Days, NaiveDate, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

use super::AppState;
use crate::domain::ids::AccountId;
use crate::domain::rule;
use crate::domain::time_profile::{self, PeakWindow};
use crate::error::Result;
use crate::persistence::profiles::StoredProfile;
use crate::persistence::rules;
use crate::platform::meta::{BudgetValueType, NewBudgetSchedule};
use crate::platform::{BudgetHolder, CampaignState};
use crate::service::engine::{Failure, FailureKind};
use crate::service::platform_error;

/// Multiplier from which an hour counts toward a peak window.
pub const PEAK_WINDOW_THRESHOLD: f64 = 1.1;
/// Meta's shortest budget schedule, in hours.
pub const MIN_WINDOW_HOURS: u32 = 3;
/// Meta's limit of budget schedules per campaign or ad set.
pub const MAX_SCHEDULES_PER_OBJECT: usize = 50;
/// Windows created per object and day: a few, so 50 last for weeks.
const MAX_WINDOWS_PER_DAY: usize = 3;
/// Meta's largest multiplier, in percent.
const MAX_PERCENT: i64 = 800;

/// What applying did.
#[derive(Debug, Clone, Default)]
pub struct ApplyOutcome {
    /// Budget schedules created.
    pub created: usize,
    /// Campaigns whose schedules could not be applied.
    pub failures: Vec<Failure>,
}

/// Applies tomorrow's peak windows of `profiles` for the campaigns whose
/// rule asks for it. Failures are collected per campaign, never raised.
pub async fn apply_schedules(state: &AppState, account: &AccountId, profiles: &[StoredProfile]) -> ApplyOutcome {
    let mut outcome = ApplyOutcome::default();
    if profiles.is_empty() {
        return outcome;
    }
    if let Err(e) = apply(state, account, profiles, &mut outcome).await {
        outcome.failures.push(Failure {
            account_id: account.to_string(),
            campaign_id: None,
            error: format!("hourly schedules could not be applied: {e}"),
            kind: FailureKind::Other,
        });
    }
    outcome
}

async fn apply(
    state: &AppState,
    account: &AccountId,
    profiles: &[StoredProfile],
    outcome: &mut ApplyOutcome,
) -> Result<()> {
    let account_rules = rules::for_accounts(&state.db, std::slice::from_ref(account)).await?;
    if !account_rules.iter().any(|r| r.settings.enabled && r.settings.apply_hourly_schedule) {
        return Ok(());
    }
    let info = state.platform.account(account).await.map_err(|e| platform_error(state, account, e))?;
    let tz = crate::service::account_time_zone(account, &info)?;
    let campaigns = state.platform.campaigns(account).await.map_err(|e| platform_error(state, account, e))?;
    let now = Utc::now();
    let Some(tomorrow) = now.with_timezone(&tz).date_naive().checked_add_days(Days::new(1)) else { return Ok(()) };
    let bounds = state.engine.time.bounds;
    for stored in profiles {
        let Some(campaign) = campaigns.iter().find(|c| c.campaign_id.as_str() == stored.campaign_id) else { continue };
        let Some(r) = rule::applicable_rule(&account_rules, &campaign.campaign_id) else { continue };
        if !r.settings.apply_hourly_schedule || !campaign.is_active() {
            continue;
        }
        let Some(daily) = campaign.daily_budget_minor() else { continue };
        let p = &stored.profile;
        let multipliers = time_profile::multipliers(&p.hourly_index, p.confidence, &bounds);
        let windows =
            time_profile::peak_windows(&multipliers, PEAK_WINDOW_THRESHOLD, MIN_WINDOW_HOURS, MAX_WINDOWS_PER_DAY);
        if windows.is_empty() {
            continue;
        }
        if r.settings.currency != info.currency {
            outcome.failures.push(failure(
                account,
                campaign,
                "the rule's currency differs from the account's: its limits cannot be checked",
            ));
            continue;
        }
        // The raised budget stays within the rule's maximum daily budget.
        let cap = if daily > 0 { r.settings.max_daily_budget_minor.saturating_mul(100) / daily } else { 0 };
        for object in targets(campaign) {
            match apply_object(state, account, &object, tz, tomorrow, &windows, cap.min(MAX_PERCENT)).await {
                Ok(created) => outcome.created += created,
                Err(e) => outcome.failures.push(failure(account, campaign, &e.to_string())),
            }
        }
    }
    Ok(())
}

fn failure(account: &AccountId, campaign: &CampaignState, error: &str) -> Failure {
    Failure {
        account_id: account.to_string(),
        campaign_id: Some(campaign.campaign_id.to_string()),
        error: format!("hourly schedule not applied: {error}"),
        kind: FailureKind::Other,
    }
}

/// The objects holding the daily budget: the campaign, or its active ad sets.
fn targets(campaign: &CampaignState) -> Vec<String> {
    match &campaign.budget {
        BudgetHolder::Campaign { .. } => vec![campaign.campaign_id.to_string()],
        BudgetHolder::AdSets(sets) => sets.iter().filter(|s| s.active).map(|s| s.adset_id.clone()).collect(),
        BudgetHolder::NoDailyBudget => Vec::new(),
    }
}

async fn apply_object(
    state: &AppState,
    account: &AccountId,
    object: &str,
    tz: Tz,
    day: NaiveDate,
    windows: &[PeakWindow],
    max_percent: i64,
) -> Result<usize> {
    let slots = time_profile::day_hours(tz, day);
    let (Some(&day_start), Some(day_end)) =
        (slots.first(), day.succ_opt().and_then(|d| time_profile::day_hours(tz, d).first().copied()))
    else {
        return Ok(0);
    };
    let platform = |e| platform_error(state, account, e);
    let existing = state
        .platform
        .budget_schedules(account, object, day_start.timestamp(), day_end.timestamp())
        .await
        .map_err(platform)?;
    if !existing.is_empty() {
        return Ok(0);
    }
    // Schedules that have not ended count toward Meta's 50.
    let now = Utc::now();
    let open = state
        .platform
        .budget_schedules(account, object, now.timestamp(), (now + TimeDelta::days(400)).timestamp())
        .await
        .map_err(|e| platform_error(state, account, e))?
        .len();
    let mut created = 0;
    for window in windows.iter().take(MAX_SCHEDULES_PER_OBJECT.saturating_sub(open)) {
        let percent = ((window.multiplier * 100.0).round() as i64).min(max_percent);
        if percent <= 100 {
            continue;
        }
        let Some((start, end)) = window_instants(tz, &slots, day_end, window) else { continue };
        let schedule = NewBudgetSchedule {
            budget_value: percent,
            budget_value_type: BudgetValueType::Multiplier,
            time_start: start.timestamp(),
            time_end: end.timestamp(),
        };
        let id = state
            .platform
            .create_budget_schedule(account, object, &schedule)
            .await
            .map_err(|e| platform_error(state, account, e))?;
        tracing::info!(%account, object, schedule_id = %id, percent, %start, %end, "budget schedule created for a peak window");
        created += 1;
    }
    Ok(created)
}

/// The instants of a window of local hours `[start_hour, end_hour)` of the
/// day whose hour starts are `slots`: from the first hour at or after
/// `start_hour` to the first at or after `end_hour` (or the day's end),
/// widened by an hour when a skipped daylight-saving hour leaves it shorter
/// than Meta's 3 hours.
pub(crate) fn window_instants(
    tz: Tz,
    slots: &[DateTime<Utc>],
    day_end: DateTime<Utc>,
    window: &PeakWindow,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let first_at_or_after = |hour: u32| slots.iter().copied().find(|s| s.with_timezone(&tz).hour() >= hour);
    let start = first_at_or_after(window.start_hour)?;
    let mut end = if window.end_hour >= 24 { day_end } else { first_at_or_after(window.end_hour).unwrap_or(day_end) };
    let min = TimeDelta::hours(i64::from(MIN_WINDOW_HOURS));
    if end - start < min {
        end = start + min;
    }
    Some((start, end))
}
