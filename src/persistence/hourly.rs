//! Hourly performance repository: upserts of per-campaign local hours from
//! both sources, the cycle's "today" readings to derive them from, the
//! ingestion watermark, and the aggregate learning reads (sums per weekday
//! and hour computed by the database, never the rows themselves).
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryResult, StreamTrait};

use super::entity::{campaign_hourly_stat as hourly, time_ingest_mark as mark};
use super::history::RawSql;
use crate::domain::time_profile::{self, CellSums, HOURS, HourFigures, Reading, WEEKDAYS};
use crate::error::{Error, Result};

/// Where an hour's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Increments of the cycle's cumulative "today" snapshots (revenue included).
    Snapshot,
    /// Meta's hourly breakdown (on-Meta metrics only: no website purchases).
    Meta,
}

impl Source {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Meta => "meta",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "snapshot" => Some(Self::Snapshot),
            "meta" => Some(Self::Meta),
            _ => None,
        }
    }
}

/// One campaign's figures for one local hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyRow {
    /// Ad account.
    pub account_id: String,
    /// Campaign.
    pub campaign_id: String,
    /// Source.
    pub source: Source,
    /// When the local hour starts (UTC).
    pub hour_start: DateTime<Utc>,
    /// Account-local date.
    pub local_date: NaiveDate,
    /// Local hour of day, 0-23.
    pub hour: u32,
    /// The figures.
    pub figures: HourFigures,
    /// Whether the figures were revised while being derived.
    pub revised: bool,
}

const CHUNK: usize = 1_000;

/// Inserts rows, or updates the figures of rows already there (same
/// campaign, source and hour): a rerun revises instead of duplicating, and
/// each change of figures counts as a revision.
pub async fn upsert(db: &impl ConnectionTrait, rows: &[HourlyRow]) -> Result<()> {
    let now = Utc::now();
    let figures_changed = ["spend_minor", "revenue_minor", "conversions", "impressions", "clicks"]
        .map(|c| format!("campaign_hourly_stats.{c} <> excluded.{c}"))
        .join(" OR ");
    let revisions = format!(
        "CASE WHEN {figures_changed} THEN campaign_hourly_stats.revisions + 1 \
         WHEN excluded.revisions > campaign_hourly_stats.revisions THEN excluded.revisions \
         ELSE campaign_hourly_stats.revisions END"
    );
    // One statement may not touch a row twice (PostgreSQL refuses): the last
    // figures of a repeated key win.
    let mut last: HashMap<(&str, Source, DateTime<Utc>), usize> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        last.insert((r.campaign_id.as_str(), r.source, r.hour_start), i);
    }
    let unique: Vec<&HourlyRow> = rows
        .iter()
        .enumerate()
        .filter(|(i, r)| last.get(&(r.campaign_id.as_str(), r.source, r.hour_start)) == Some(i))
        .map(|(_, r)| r)
        .collect();
    for chunk in unique.chunks(CHUNK) {
        let models = chunk.iter().map(|r| hourly::ActiveModel {
            account_id: Set(r.account_id.clone()),
            campaign_id: Set(r.campaign_id.clone()),
            source: Set(r.source.as_str().to_owned()),
            hour_start: Set(r.hour_start),
            local_date: Set(r.local_date.to_string()),
            local_day: Set(time_profile::epoch_day(r.local_date)),
            day_of_week: Set(time_profile::weekday(r.local_date) as i16),
            hour: Set(r.hour.min(23) as i16),
            spend_minor: Set(r.figures.spend_minor),
            revenue_minor: Set(r.figures.revenue_minor),
            conversions: Set(r.figures.conversions),
            impressions: Set(r.figures.impressions),
            clicks: Set(r.figures.clicks),
            revisions: Set(i32::from(r.revised)),
            updated_at: Set(now),
            ..Default::default()
        });
        let mut on_conflict =
            OnConflict::columns([hourly::Column::CampaignId, hourly::Column::Source, hourly::Column::HourStart]);
        on_conflict
            .update_columns([
                hourly::Column::SpendMinor,
                hourly::Column::RevenueMinor,
                hourly::Column::Conversions,
                hourly::Column::Impressions,
                hourly::Column::Clicks,
                hourly::Column::UpdatedAt,
            ])
            .value(hourly::Column::Revisions, Expr::cust(revisions.clone()));
        hourly::Entity::insert_many(models).on_conflict(on_conflict).exec_without_returning(db).await?;
    }
    Ok(())
}

/// A cumulative "today" reading of one campaign, as the engine stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodayReading {
    /// Snapshot id (the paging key with the campaign).
    pub id: i64,
    /// Campaign.
    pub campaign_id: String,
    /// The account-local date the cumulative figures belong to.
    pub local_date: String,
    /// The reading.
    pub reading: Reading,
}

/// Up to `limit` "today" snapshots of `account` taken after `after`, ordered
/// by campaign and id, strictly after the `(campaign, id)` key `from`.
pub async fn today_readings(
    db: &impl ConnectionTrait,
    account: &str,
    after: Option<DateTime<Utc>>,
    from: Option<(&str, i64)>,
    limit: u64,
) -> Result<Vec<TodayReading>> {
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT id, campaign_id, window_start, taken_at, spend_minor, revenue_minor, conversions, impressions, clicks \
         FROM performance_snapshots WHERE metrics_window = 'today' AND account_id = ",
    );
    sql.bind(account.to_owned());
    if let Some(after) = after {
        sql.push(" AND taken_at > ").bind(after);
    }
    if let Some((campaign, id)) = from {
        sql.push(" AND (campaign_id > ").bind(campaign.to_owned());
        sql.push(" OR (campaign_id = ").bind(campaign.to_owned()).push(" AND id > ").bind(id).push("))");
    }
    sql.push(" ORDER BY campaign_id, id LIMIT ").bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = db.query_all_raw(sql.build()).await?;
    rows.iter()
        .map(|row| {
            Ok(TodayReading {
                id: row.try_get("", "id")?,
                campaign_id: row.try_get("", "campaign_id")?,
                local_date: row.try_get("", "window_start")?,
                reading: Reading {
                    taken_at: row.try_get("", "taken_at")?,
                    cumulative: HourFigures {
                        spend_minor: row.try_get("", "spend_minor")?,
                        revenue_minor: row.try_get("", "revenue_minor")?,
                        conversions: row.try_get("", "conversions")?,
                        impressions: row.try_get("", "impressions")?,
                        clicks: row.try_get("", "clicks")?,
                    },
                },
            })
        })
        .collect()
}

/// The newest snapshot time of `account` already turned into hourly rows.
pub async fn ingest_mark(db: &impl ConnectionTrait, account: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(mark::Entity::find_by_id(account.to_owned()).one(db).await?.map(|m| m.snapshots_through))
}

/// Records that snapshots of `account` up to `through` were ingested.
pub async fn set_ingest_mark(db: &impl ConnectionTrait, account: &str, through: DateTime<Utc>) -> Result<()> {
    let model = mark::ActiveModel {
        account_id: Set(account.to_owned()),
        snapshots_through: Set(through),
        updated_at: Set(Utc::now()),
    };
    let mut on_conflict = OnConflict::column(mark::Column::AccountId);
    on_conflict.update_columns([mark::Column::SnapshotsThrough, mark::Column::UpdatedAt]);
    mark::Entity::insert(model).on_conflict(on_conflict).exec_without_returning(db).await?;
    Ok(())
}

/// The local days (since 1970-01-01) from `since_day` on for which Meta's
/// hourly breakdown of `account` is stored.
pub async fn meta_days(db: &impl ConnectionTrait, account: &str, since_day: i32) -> Result<Vec<i32>> {
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT DISTINCT local_day FROM campaign_hourly_stats WHERE account_id = ",
    );
    sql.bind(account.to_owned())
        .push(" AND source = 'meta' AND local_day >= ")
        .bind(since_day)
        .push(" ORDER BY local_day");
    let rows = db.query_all_raw(sql.build()).await?;
    rows.iter().map(|r| Ok(r.try_get::<i32>("", "local_day")?)).collect()
}

/// Campaigns of `account` with hourly rows (all of them, or just `only`), in
/// the database's order.
pub async fn campaigns_with_data(db: &impl ConnectionTrait, account: &str, only: Option<&str>) -> Result<Vec<String>> {
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT DISTINCT campaign_id FROM campaign_hourly_stats WHERE account_id = ",
    );
    sql.bind(account.to_owned());
    if let Some(campaign) = only {
        sql.push(" AND campaign_id = ").bind(campaign.to_owned());
    }
    sql.push(" ORDER BY campaign_id");
    let rows = db.query_all_raw(sql.build()).await?;
    rows.iter().map(|r| Ok(r.try_get::<String>("", "campaign_id")?)).collect()
}

/// One campaign's sums from one source: 7 x 24 cells per numerator.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSums {
    /// Cells with revenue as the numerator (row-major by weekday).
    pub revenue: Vec<CellSums>,
    /// Cells with clicks as the numerator.
    pub clicks: Vec<CellSums>,
    /// Hourly rows.
    pub samples: i64,
    /// Total revenue.
    pub revenue_total: f64,
}

impl Default for SourceSums {
    fn default() -> Self {
        Self {
            revenue: vec![CellSums::default(); HOURS * WEEKDAYS],
            clicks: vec![CellSums::default(); HOURS * WEEKDAYS],
            samples: 0,
            revenue_total: 0.0,
        }
    }
}

/// The newest local day (since 1970-01-01) with hourly rows of `account`.
pub async fn last_day(db: &impl ConnectionTrait, account: &str) -> Result<Option<i32>> {
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT MAX(local_day) AS last_day FROM campaign_hourly_stats WHERE account_id = ",
    );
    sql.bind(account.to_owned());
    Ok(match db.query_one_raw(sql.build()).await? {
        Some(row) => row.try_get::<Option<i32>>("", "last_day")?,
        None => None,
    })
}

/// Per campaign and source, the sums of the hourly rows from local day
/// `since_day` on, for the campaigns of `account` from `first` to `last`
/// (inclusive, in the database's order): one aggregate query grouped by
/// campaign, source, weekday and hour (the order of the index it reads).
pub async fn weekly_sums(
    db: &(impl ConnectionTrait + StreamTrait),
    account: &str,
    first: &str,
    last: &str,
    since_day: i32,
) -> Result<HashMap<(String, Source), SourceSums>> {
    const D: &str = "DOUBLE PRECISION";
    let even = "h.local_day % 2 = 0";
    let text = format!(
        "SELECT h.campaign_id, h.source, h.day_of_week, h.hour, COUNT(*) AS n, \
         SUM(CAST(h.spend_minor AS {D})) AS s, SUM(CAST(h.revenue_minor AS {D})) AS r, SUM(CAST(h.clicks AS {D})) AS c, \
         SUM(CAST(h.spend_minor AS {D}) * h.spend_minor) AS ss, \
         SUM(CAST(h.revenue_minor AS {D}) * h.revenue_minor) AS rr, SUM(CAST(h.revenue_minor AS {D}) * h.spend_minor) AS rs, \
         SUM(CAST(h.clicks AS {D}) * h.clicks) AS cc, SUM(CAST(h.clicks AS {D}) * h.spend_minor) AS cs, \
         SUM(CASE WHEN {even} THEN 1 ELSE 0 END) AS en, \
         SUM(CASE WHEN {even} THEN CAST(h.spend_minor AS {D}) ELSE 0.0 END) AS es, \
         SUM(CASE WHEN {even} THEN CAST(h.revenue_minor AS {D}) ELSE 0.0 END) AS er, \
         SUM(CASE WHEN {even} THEN CAST(h.clicks AS {D}) ELSE 0.0 END) AS ec \
         FROM campaign_hourly_stats h WHERE h.account_id = "
    );
    let mut sql = RawSql::new(ConnectionTrait::get_database_backend(db), &text);
    sql.bind(account.to_owned());
    sql.push(" AND h.campaign_id >= ").bind(first.to_owned()).push(" AND h.campaign_id <= ").bind(last.to_owned());
    sql.push(" AND h.local_day >= ").bind(since_day);
    sql.push(" GROUP BY h.campaign_id, h.source, h.day_of_week, h.hour");
    // Streamed: 1,000 campaigns are up to 336,000 result rows of 17 values;
    // held at once (every learning account in parallel) they took hundreds of
    // MiB, which the allocator then kept.
    let mut rows = std::pin::pin!(db.stream_raw(sql.build()).await?);
    let mut out: HashMap<(String, Source), SourceSums> = HashMap::new();
    while let Some(row) = rows.try_next().await? {
        let row = &row;
        // By position (the SELECT's order): name lookups cost more than the
        // statistics on a million-row result.
        let campaign: String = row.try_get_by_index(0)?;
        let raw_source: String = row.try_get_by_index(1)?;
        let source = Source::parse(&raw_source)
            .ok_or_else(|| Error::Internal(format!("hourly row of {campaign} has an unknown source {raw_source:?}")))?;
        let (weekday, hour) = (cell_index(row, 2, "day_of_week", WEEKDAYS)?, cell_index(row, 3, "hour", HOURS)?);
        let f = |i: usize| -> Result<f64> { Ok(row.try_get_by_index::<Option<f64>>(i)?.unwrap_or(0.0)) };
        let samples: i64 = row.try_get_by_index(4)?;
        let even_samples: i64 = row.try_get_by_index::<Option<i64>>(13)?.unwrap_or(0);
        let (spend, spend_sq, even_spend) = (f(5)?, f(8)?, f(14)?);
        let sums = out.entry((campaign, source)).or_default();
        let i = weekday * HOURS + hour;
        sums.samples += samples;
        sums.revenue_total += f(6)?;
        let base = CellSums { samples, spend, spend_sq, even_samples, even_spend, ..CellSums::default() };
        sums.revenue[i].add(&CellSums {
            value: f(6)?,
            value_sq: f(9)?,
            value_spend: f(10)?,
            even_value: f(15)?,
            ..base
        });
        sums.clicks[i].add(&CellSums {
            value: f(7)?,
            value_sq: f(11)?,
            value_spend: f(12)?,
            even_value: f(16)?,
            ..base
        });
    }
    Ok(out)
}

/// A weekday or hour column (at `index`) as an index below `bound`.
fn cell_index(row: &QueryResult, index: usize, column: &str, bound: usize) -> Result<usize> {
    let value: i16 = row.try_get_by_index(index)?;
    usize::try_from(value)
        .ok()
        .filter(|v| *v < bound)
        .ok_or_else(|| Error::Internal(format!("hourly row has {column} {value} out of range")))
}
