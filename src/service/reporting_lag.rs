//! Each account's reporting-lag curve: learned from the account's stored
//! readings of the same days ("today" snapshots and re-read past days) by
//! [`crate::domain::strategy::learn_lag_from`], blended with the prior until
//! enough days exist; refitted once per account-local day and kept in memory.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use super::AppState;
use crate::domain::ids::AccountId;
use crate::domain::strategy::{LagShape, LearnedLag, ObservedDay, lag_learn::DayReading, learn_lag_from};
use crate::error::{Error, Result};
use crate::persistence::lag_readings::{self, DayTotals};

/// Days of readings the curve is learned from.
pub const LEARNING_DAYS: i64 = 35;

/// What the marginal-ROAS strategy keeps per account for the local day,
/// from its first cycle of the day: the learned curve, the past week as
/// re-read then, and the last stored reading of each older day.
#[derive(Clone, Default)]
pub struct DayCache {
    learned: Arc<Mutex<ByAccount<Arc<LearnedLag>>>>,
    weeks: Arc<Mutex<ByAccount<WeekRead>>>,
    stored: Arc<Mutex<ByAccount<Arc<super::marginal::StoredDays>>>>,
}

/// Per account, the local day something was made for and the thing.
type ByAccount<T> = HashMap<String, (NaiveDate, T)>;

/// The rows each past day read for an account, and when.
type WeekRead = (Arc<Vec<super::marginal::DayRow>>, DateTime<Utc>);

impl DayCache {
    /// The week read for `account` on local day `today`, if any.
    pub(crate) fn week(&self, account: &str, today: NaiveDate) -> Option<WeekRead> {
        let weeks = self.weeks.lock().unwrap_or_else(|e| e.into_inner());
        weeks.get(account).filter(|(day, _)| *day == today).map(|(_, read)| read.clone())
    }

    /// The last stored reading of each past day, as read on local day `today`.
    pub(crate) fn stored_days(&self, account: &str, today: NaiveDate) -> Option<Arc<super::marginal::StoredDays>> {
        let stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        stored.get(account).filter(|(day, _)| *day == today).map(|(_, days)| days.clone())
    }

    /// Keeps the past days' stored readings read on `today`.
    pub(crate) fn keep_stored_days(&self, account: &str, today: NaiveDate, days: Arc<super::marginal::StoredDays>) {
        self.stored.lock().unwrap_or_else(|e| e.into_inner()).insert(account.to_owned(), (today, days));
    }

    /// Keeps the week read for `account` on `today` (replacing an older day's).
    pub(crate) fn keep_week(
        &self,
        account: &str,
        today: NaiveDate,
        rows: Arc<Vec<super::marginal::DayRow>>,
        at: DateTime<Utc>,
    ) {
        self.weeks.lock().unwrap_or_else(|e| e.into_inner()).insert(account.to_owned(), (today, (rows, at)));
    }
}

/// The account's curve for the cycle at `now`: learned at the first use of
/// each account-local day, then reused.
pub(crate) async fn for_account(
    state: &AppState,
    account: &str,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Arc<LearnedLag>> {
    let today = now.with_timezone(&tz).date_naive();
    // A poisoned lock only means another task panicked mid-insert: the map is still usable.
    let cached = state.day_cache.learned.lock().unwrap_or_else(|e| e.into_inner()).get(account).cloned();
    if let Some((day, learned)) = &cached
        && *day == today
    {
        return Ok(learned.clone());
    }
    // Start the search from the last fit of this account, if any.
    let previous = cached.filter(|(_, l)| l.days_observed > 0).map(|(_, l)| l.shape);
    let learned = Arc::new(learn_before(state, account, &|d| super::marginal::day_start(tz, d), now, previous).await?);
    state
        .day_cache
        .learned
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(account.to_owned(), (today, learned.clone()));
    Ok(learned)
}

/// Learns the account's curve from every reading taken before `now`.
pub(crate) async fn learn_now(state: &AppState, account: &str, tz: Tz, now: DateTime<Utc>) -> Result<LearnedLag> {
    learn_before(state, account, &|d| super::marginal::day_start(tz, d), now, None).await
}

/// [`learn_now`] with the days' starts given (replays infer them) and the
/// fit searched from `previous` when given.
pub(crate) async fn learn_before(
    state: &AppState,
    account: &str,
    day_start: &(dyn Fn(NaiveDate) -> Option<DateTime<Utc>> + Sync),
    now: DateTime<Utc>,
    previous: Option<LagShape>,
) -> Result<LearnedLag> {
    let rows = lag_readings::between(&state.db, account, now - TimeDelta::days(LEARNING_DAYS), now).await?;
    Ok(learn_lag_from(&observed_days(&rows, day_start), previous))
}

/// The readings grouped by day, each timed from its day's start; rows naming
/// no valid day are left out.
pub(crate) fn observed_days(
    rows: &[DayTotals],
    day_start: &dyn Fn(NaiveDate) -> Option<DateTime<Utc>>,
) -> Vec<ObservedDay> {
    let mut days: HashMap<&str, ObservedDay> = HashMap::new();
    let mut starts: HashMap<&str, Option<DateTime<Utc>>> = HashMap::new();
    for r in rows {
        let start = *starts
            .entry(r.day.as_str())
            .or_insert_with(|| NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").ok().and_then(day_start));
        let Some(start) = start else { continue };
        days.entry(r.day.as_str()).or_default().readings.push(DayReading {
            hours_since_start: (r.taken_at - start).num_seconds() as f64 / 3600.0,
            spend_minor: r.spend_minor,
            revenue_minor: r.revenue_minor,
        });
    }
    let mut out: Vec<(&str, ObservedDay)> = days.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(b.0));
    out.into_iter().map(|(_, d)| d).collect()
}

/// The curve an operator sees: learned now from every stored reading.
#[derive(Debug, Clone)]
pub struct LagReport {
    /// What was learned.
    pub learned: LearnedLag,
    /// When.
    pub computed_at: DateTime<Utc>,
}

/// Learns `account`'s curve now, in its time zone as the platform reports it.
pub async fn report(state: &AppState, account: &AccountId) -> Result<LagReport> {
    let info = match state.platform.account(account).await {
        Ok(info) => info,
        Err(e) if e.is_not_found() => return Err(Error::NotFound { kind: "account", id: account.to_string() }),
        Err(e) => return Err(super::platform_error(state, account, e)),
    };
    let tz = super::account_time_zone(account, &info)?;
    let now = Utc::now();
    Ok(LagReport { learned: learn_now(state, account.as_str(), tz, now).await?, computed_at: now })
}
