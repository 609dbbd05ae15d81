//! Filling the hourly table: increments of the cycle's cumulative "today"
//! snapshots (revenue included), and Meta's hourly breakdown for past days
//! (on-Meta metrics only), both upserted so reruns revise, never duplicate.
use std::collections::HashSet;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::AppState;
use crate::domain::ids::AccountId;
use crate::domain::time_profile::{self, HourFigures, Reading};
use crate::error::Result;
use crate::persistence::hourly::{self, HourlyRow, Source, TodayReading};
use crate::service::platform_error;

/// Snapshot rows read per query.
const PAGE: u64 = 20_000;
/// Hourly rows written per flush.
const FLUSH: usize = 10_000;

/// What snapshot ingestion did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Local hours measured (the day in progress is measured again).
    pub hours: usize,
    /// Hours that ended between readings but could not be measured.
    pub skipped: usize,
    /// Measured hours whose cumulative figures went down.
    pub revisions: usize,
}

/// What the Meta backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillReport {
    /// Hourly rows read and upserted.
    pub rows: usize,
    /// Why it did not run or failed, if so.
    pub error: Option<String>,
}

/// Turns the account's new "today" snapshots into hourly rows. Each pass
/// re-reads whole local days from the one of the last ingested snapshot on,
/// so the day in progress is measured again with its newer readings.
pub(super) async fn snapshots(state: &AppState, account: &AccountId, tz: Tz) -> Result<IngestReport> {
    let mark = hourly::ingest_mark(&state.db, account.as_str()).await?;
    // From the start of the mark's local day (with an hour of slack).
    let after = mark.and_then(|m| {
        let date = m.with_timezone(&tz).date_naive();
        time_profile::day_hours(tz, date).first().map(|start| *start - TimeDelta::hours(1))
    });
    let mut report = IngestReport::default();
    let mut newest = mark;
    let mut key: Option<(String, i64)> = None;
    let mut campaign: Vec<TodayReading> = Vec::new();
    let mut rows: Vec<HourlyRow> = Vec::new();
    loop {
        let from = key.as_ref().map(|(c, id)| (c.as_str(), *id));
        let page = hourly::today_readings(&state.db, account.as_str(), after, from, PAGE).await?;
        let done = (page.len() as u64) < PAGE;
        if let Some(last) = page.last() {
            key = Some((last.campaign_id.clone(), last.id));
        }
        for reading in page {
            newest = newest.max(Some(reading.reading.taken_at));
            if campaign.last().is_some_and(|r| r.campaign_id != reading.campaign_id) {
                measure(account, tz, &std::mem::take(&mut campaign), &mut rows, &mut report);
            }
            campaign.push(reading);
        }
        if done {
            measure(account, tz, &std::mem::take(&mut campaign), &mut rows, &mut report);
        }
        if rows.len() >= FLUSH || done {
            hourly::upsert(&state.db, &rows).await?;
            rows.clear();
        }
        if done {
            break;
        }
    }
    if let Some(through) = newest
        && newest != mark
    {
        hourly::set_ingest_mark(&state.db, account.as_str(), through).await?;
    }
    if report.revisions > 0 || report.skipped > 0 {
        tracing::info!(%account, revised = report.revisions, skipped = report.skipped, "snapshot hours revised or missing");
    }
    Ok(report)
}

/// Measures one campaign's readings, day by day.
fn measure(
    account: &AccountId,
    tz: Tz,
    readings: &[TodayReading],
    rows: &mut Vec<HourlyRow>,
    report: &mut IngestReport,
) {
    let Some(campaign) = readings.first().map(|r| r.campaign_id.clone()) else { return };
    let mut by_day: std::collections::BTreeMap<&str, Vec<Reading>> = std::collections::BTreeMap::new();
    for r in readings {
        by_day.entry(r.local_date.as_str()).or_default().push(r.reading);
    }
    for (raw, day_readings) in by_day {
        let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") else {
            tracing::warn!(%account, %campaign, date = raw, "snapshot with an unreadable window start skipped");
            continue;
        };
        let day = time_profile::increments(tz, date, &day_readings);
        report.hours += day.hours.len();
        report.skipped += day.skipped;
        report.revisions += day.revisions;
        rows.extend(day.hours.into_iter().map(|h| HourlyRow {
            account_id: account.to_string(),
            campaign_id: campaign.clone(),
            source: Source::Snapshot,
            hour_start: h.hour_start,
            local_date: h.local_date,
            hour: h.hour,
            figures: h.figures,
            revised: h.revised,
        }));
    }
}

/// Days at the end of the backfill window fetched again on every pass: Meta
/// still revises recent figures, and an upsert turns that into a revision.
const REFETCH_DAYS: i64 = 3;

/// Fetches the past days (up to yesterday, account time) of the backfill
/// window that Meta's hourly breakdown has not given yet, and always the last
/// few, in one paged request. Never fails the learning pass: a failure is
/// logged and reported.
pub(super) async fn backfill(state: &AppState, account: &AccountId, tz: Tz, now: DateTime<Utc>) -> BackfillReport {
    let days = i64::from(state.engine.time.backfill_days);
    if days == 0 {
        return BackfillReport::default();
    }
    match fetch(state, account, tz, now, days).await {
        Ok(rows) => BackfillReport { rows, error: None },
        Err(e) => {
            tracing::warn!(%account, error = %e, "hourly backfill from Meta failed; learning from what is stored");
            BackfillReport { rows: 0, error: Some(e.to_string()) }
        }
    }
}

/// Fetches and stores the backfill one local day at a time: an account's
/// month of hours (200 campaigns: 134,400 rows) held at once took hundreds of
/// MiB, which the allocator then kept; a day is 24 rows per campaign.
async fn fetch(state: &AppState, account: &AccountId, tz: Tz, now: DateTime<Utc>, days: i64) -> Result<usize> {
    let today = now.with_timezone(&tz).date_naive();
    let (Some(first), Some(yesterday)) = (today.checked_sub_days(Days::new(days as u64)), today.pred_opt()) else {
        return Ok(0);
    };
    let have: HashSet<i32> =
        hourly::meta_days(&state.db, account.as_str(), time_profile::epoch_day(first)).await?.into_iter().collect();
    let refetch_from = yesterday - TimeDelta::days(REFETCH_DAYS - 1);
    let mut stored = 0;
    for day in first.iter_days().take_while(|d| *d <= yesterday) {
        if day < refetch_from && have.contains(&time_profile::epoch_day(day)) {
            continue;
        }
        let rows =
            state.platform.hourly_insights(account, day, day).await.map_err(|e| platform_error(state, account, e))?;
        let out = hourly_rows(account, tz, &rows);
        drop(rows);
        for chunk in out.chunks(FLUSH) {
            hourly::upsert(&state.db, chunk).await?;
        }
        stored += out.len();
    }
    Ok(stored)
}

/// Meta's hourly rows as rows of the hourly table.
fn hourly_rows(account: &AccountId, tz: Tz, rows: &[crate::platform::meta::HourlyPerformance]) -> Vec<HourlyRow> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        // The bucket's first instant: the repeated hour of the day daylight
        // saving ends is one bucket; a bucket in the skipped hour cannot exist.
        let Some(start) = row.date.and_hms_opt(row.hour, 0, 0).and_then(|t| tz.from_local_datetime(&t).earliest())
        else {
            continue;
        };
        out.push(HourlyRow {
            account_id: account.to_string(),
            campaign_id: row.campaign_id.clone(),
            source: Source::Meta,
            hour_start: start.with_timezone(&Utc),
            local_date: row.date,
            hour: row.hour,
            figures: HourFigures {
                spend_minor: row.spend_minor,
                revenue_minor: 0,
                conversions: 0,
                impressions: row.impressions,
                clicks: row.clicks,
            },
            revised: false,
        });
    }
    out
}
