//! Use cases of time-of-day optimization: turn the cycle's snapshots (and
//! Meta's hourly breakdown) into hourly rows, learn each campaign's profile
//! from sums the database computes, and turn a profile into a budget
//! schedule or into Meta budget schedules for the next day's peak windows.
mod apply;
mod ingest;

use std::collections::HashMap;

use chrono::Utc;
use chrono_tz::Tz;
use sea_orm::DatabaseConnection;

pub use apply::{ApplyOutcome, MAX_SCHEDULES_PER_OBJECT, MIN_WINDOW_HOURS, PEAK_WINDOW_THRESHOLD, apply_schedules};
pub use ingest::{BackfillReport, IngestReport};

use super::AppState;
use super::platform_error;
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::time_profile::{self, HourBudget, Metric};
use crate::error::{Error, Result};
use crate::persistence::hourly::{self, Source, SourceSums};
use crate::persistence::profiles::{self, StoredProfile};
use crate::platform::AccountInfo;

/// Most `min_samples` a caller may ask for (a year of hours).
pub const MAX_MIN_SAMPLES: i64 = 24 * 366;
/// Campaigns summed by one aggregate query: bounds the rows held at once.
const CAMPAIGNS_PER_QUERY: usize = 1_000;

/// What one learning pass did.
#[derive(Debug, Clone, Default)]
pub struct LearnOutcome {
    /// Profiles learned and stored, in campaign order.
    pub profiles: Vec<StoredProfile>,
    /// Campaigns with data but fewer than `min_samples` hourly samples.
    pub skipped: Vec<String>,
    /// Snapshot ingestion.
    pub ingest: IngestReport,
    /// Meta backfill.
    pub backfill: BackfillReport,
}

/// The account as the platform reports it and its time zone; `Ok(None)`
/// when the platform cannot be read (learning then uses what is stored).
async fn account_info(state: &AppState, account: &AccountId) -> Result<Option<(AccountInfo, Tz)>> {
    match state.platform.account(account).await {
        Ok(info) => {
            let tz = super::account_time_zone(account, &info)?;
            Ok(Some((info, tz)))
        }
        Err(e) if e.is_not_found() => Err(Error::NotFound { kind: "account", id: account.to_string() }),
        Err(e) => {
            let e = platform_error(state, account, e);
            tracing::warn!(%account, error = %e, "account unreadable: learning from the hourly data already stored");
            Ok(None)
        }
    }
}

/// Learns the profile of one campaign, or of every campaign of `account`
/// with hourly data, in one pass: new snapshots become hourly rows, missing
/// past days come from Meta's hourly breakdown, then one aggregate query per
/// 1,000 campaigns feeds the statistics and the profiles are upserted.
#[tracing::instrument(skip_all, fields(account_id = %account))]
pub async fn learn(
    state: &AppState,
    account: &AccountId,
    campaign: Option<&CampaignId>,
    min_samples: i64,
) -> Result<LearnOutcome> {
    let mut outcome = LearnOutcome::default();
    if let Some((_, tz)) = account_info(state, account).await? {
        outcome.ingest = ingest::snapshots(state, account, tz).await?;
        outcome.backfill = ingest::backfill(state, account, tz, Utc::now()).await;
    }
    let lookback = state.engine.time.lookback_days;
    let (learned, skipped) = learn_stored(&state.db, account, campaign, min_samples, lookback).await?;
    outcome.profiles = learned;
    outcome.skipped = skipped;
    tracing::info!(
        profiles = outcome.profiles.len(),
        skipped = outcome.skipped.len(),
        snapshot_hours = outcome.ingest.hours,
        backfilled_hours = outcome.backfill.rows,
        "hour-of-day profiles learned"
    );
    Ok(outcome)
}

/// The database part of a learning pass: the campaigns of `account` with
/// hourly rows (or just `campaign`), one aggregate query per 1,000 of them
/// over the account's last `lookback_days` days of data, the statistics, and an
/// upsert of the profiles. Returns the profiles and the campaigns skipped for
/// having fewer than `min_samples` rows.
pub async fn learn_stored(
    db: &DatabaseConnection,
    account: &AccountId,
    campaign: Option<&CampaignId>,
    min_samples: i64,
    lookback_days: u32,
) -> Result<(Vec<StoredProfile>, Vec<String>)> {
    let lookback = i32::try_from(lookback_days.max(1)).unwrap_or(i32::MAX);
    let campaigns = hourly::campaigns_with_data(db, account.as_str(), campaign.map(CampaignId::as_str)).await?;
    if let Some(id) = campaign
        && campaigns.is_empty()
    {
        return Err(Error::NotFound { kind: "campaign with hourly data", id: id.to_string() });
    }
    // The window ends with the account's newest day of data.
    let since_day = hourly::last_day(db, account.as_str()).await?.unwrap_or(0).saturating_sub(lookback - 1);
    let learned_at = Utc::now();
    let (mut profiles_out, mut skipped) = (Vec::with_capacity(campaigns.len()), Vec::new());
    for chunk in campaigns.chunks(CAMPAIGNS_PER_QUERY) {
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else { continue };
        let sums = hourly::weekly_sums(db, account.as_str(), first, last, since_day).await?;
        let mut learned = Vec::with_capacity(chunk.len());
        for id in chunk {
            match choose_metric(&sums, id, min_samples) {
                Some((metric, cells)) => learned.push(StoredProfile {
                    account_id: account.to_string(),
                    campaign_id: id.clone(),
                    profile: time_profile::learn(metric, cells),
                    learned_at,
                }),
                None => skipped.push(id.clone()),
            }
        }
        profiles::upsert_many(db, &learned).await?;
        profiles_out.extend(learned);
    }
    Ok((profiles_out, skipped))
}

/// ROAS from the snapshot rows when they are enough and carry revenue;
/// otherwise clicks per spend (the declared proxy) from whichever source has
/// more rows; `None` when no source has `min_samples` rows.
fn choose_metric<'a>(
    sums: &'a HashMap<(String, Source), SourceSums>,
    campaign: &str,
    min_samples: i64,
) -> Option<(Metric, &'a [time_profile::CellSums])> {
    let get = |source| sums.get(&(campaign.to_owned(), source)).filter(|s| s.samples >= min_samples.max(1));
    let (snapshot, meta) = (get(Source::Snapshot), get(Source::Meta));
    if let Some(s) = snapshot
        && s.revenue_total > 0.0
    {
        return Some((Metric::Roas, &s.revenue));
    }
    let best = match (snapshot, meta) {
        (Some(s), Some(m)) => Some(if m.samples >= s.samples { m } else { s }),
        (s, m) => s.or(m),
    }?;
    Some((Metric::ClicksPerSpend, &best.clicks))
}

/// A campaign's stored profile; `NotFound` until it was learned.
pub async fn profile(state: &AppState, account: &AccountId, campaign: &CampaignId) -> Result<StoredProfile> {
    profiles::get(&state.db, account.as_str(), campaign.as_str())
        .await?
        .ok_or_else(|| Error::NotFound { kind: "hour-of-day profile of campaign", id: campaign.to_string() })
}

/// A schedule and what it was computed for.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The 24 hours.
    pub hours: Vec<HourBudget>,
    /// The daily budget spread.
    pub daily_budget_minor: i64,
    /// Its currency.
    pub currency: String,
    /// The profile's confidence.
    pub confidence: f64,
    /// The account's time zone, in which the hours are counted; `None` when
    /// the platform reports a zone the time-zone database does not know.
    pub time_zone: Option<Tz>,
}

/// 24 hourly budgets of `daily_minor` (the campaign's current daily budget
/// when 0) for the campaign's learned profile.
pub async fn schedule(
    state: &AppState,
    account: &AccountId,
    campaign: &CampaignId,
    daily_minor: i64,
) -> Result<Schedule> {
    if daily_minor < 0 {
        return Err(Error::invalid("daily_budget_minor", "must not be negative"));
    }
    if daily_minor > crate::domain::rule::MAX_AMOUNT_MINOR {
        return Err(Error::invalid(
            "daily_budget_minor",
            format!("must be at most {}", crate::domain::rule::MAX_AMOUNT_MINOR),
        ));
    }
    let stored = profile(state, account, campaign).await?;
    let info = state.platform.account(account).await.map_err(|e| platform_error(state, account, e))?;
    let daily = if daily_minor > 0 { daily_minor } else { current_daily_budget(state, account, campaign).await? };
    Ok(schedule_for(&stored, daily, &info, &state.engine.time.bounds))
}

/// The schedule of a stored profile for `daily` minor units of the account
/// `info` describes.
fn schedule_for(
    stored: &StoredProfile,
    daily: i64,
    info: &AccountInfo,
    bounds: &time_profile::ScheduleBounds,
) -> Schedule {
    let p = &stored.profile;
    Schedule {
        hours: time_profile::budget_schedule(daily, &p.hourly_index, p.confidence, bounds),
        daily_budget_minor: daily,
        currency: info.currency.clone(),
        confidence: p.confidence,
        time_zone: known_time_zone(info),
    }
}

/// The account's time zone, when the time-zone database knows the name the
/// platform reports. An unknown name is logged and left out rather than
/// failing the call: a profile or a schedule read without its zone's name is
/// still right, only less well labelled.
fn known_time_zone(info: &AccountInfo) -> Option<Tz> {
    match super::account_time_zone(&info.account_id, info) {
        Ok(tz) => Some(tz),
        Err(e) => {
            tracing::warn!(account = %info.account_id, error = %e, "time zone left out of the answer");
            None
        }
    }
}

/// The campaign's current daily budget, read from the platform.
async fn current_daily_budget(state: &AppState, account: &AccountId, campaign: &CampaignId) -> Result<i64> {
    let campaigns = state.platform.campaigns(account).await.map_err(|e| platform_error(state, account, e))?;
    let found = campaigns
        .iter()
        .find(|c| &c.campaign_id == campaign)
        .ok_or_else(|| Error::NotFound { kind: "campaign", id: campaign.to_string() })?;
    found.daily_budget_minor().filter(|b| *b > 0).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "campaign {campaign} has no daily budget (lifetime budget or no active ad set): pass daily_budget_minor"
        ))
    })
}

/// A profile with the schedule of the campaign's current budget.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeReport {
    /// The stored profile.
    pub stored: StoredProfile,
    /// Its schedule; `None` when the campaign has no daily budget or the
    /// platform could not be read.
    pub schedule: Option<Schedule>,
    /// The account's time zone, in which the profile's hours are counted;
    /// `None` when the platform could not be read or reports a zone the
    /// time-zone database does not know.
    pub time_zone: Option<Tz>,
}

/// The profile of a campaign and the schedule of its current daily budget.
/// The account is read once, for both the schedule's currency and the time
/// zone; when it cannot be read the profile is still answered, without them.
pub async fn report(state: &AppState, account: &AccountId, campaign: &CampaignId) -> Result<TimeReport> {
    let stored = profile(state, account, campaign).await?;
    let info = match state.platform.account(account).await {
        Ok(info) => info,
        Err(e) => {
            let e = platform_error(state, account, e);
            tracing::warn!(%account, %campaign, error = %e, "time report without a schedule or time zone");
            return Ok(TimeReport { stored, schedule: None, time_zone: None });
        }
    };
    let time_zone = known_time_zone(&info);
    let schedule = match current_daily_budget(state, account, campaign).await {
        Ok(daily) => Some(schedule_for(&stored, daily, &info, &state.engine.time.bounds)),
        Err(e) => {
            tracing::warn!(%account, %campaign, error = %e, "time report without a schedule");
            None
        }
    };
    Ok(TimeReport { stored, schedule, time_zone })
}
