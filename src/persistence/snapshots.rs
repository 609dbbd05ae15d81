//! Performance snapshots: the metrics read for every evaluated campaign,
//! written in batches (the learning data of the time optimizer).
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, Value};

use super::bulk::MultiRowInsert;
use super::entity::performance_snapshot;
use crate::domain::action::ActionMetrics;
use crate::error::Result;

/// One campaign's figures at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSnapshot {
    /// Ad account.
    pub account_id: String,
    /// Campaign.
    pub campaign_id: String,
    /// The cycle that read it.
    pub cycle_id: Option<i64>,
    /// When it was read.
    pub taken_at: DateTime<Utc>,
    /// Currency of the money fields.
    pub currency: String,
    /// The figures and their window.
    pub metrics: ActionMetrics,
    /// The campaign's daily budget when read, minor units.
    pub daily_budget_minor: i64,
    /// The campaign's effective status when read.
    pub status: String,
}

/// A snapshot's columns, in the order [`insert_many`] pushes them.
const INSERT: MultiRowInsert = MultiRowInsert {
    table: "performance_snapshots",
    columns: &[
        "account_id",
        "campaign_id",
        "cycle_id",
        "taken_at",
        "currency",
        "metrics_window",
        "window_start",
        "window_end",
        "spend_minor",
        "revenue_minor",
        "impressions",
        "clicks",
        "conversions",
        "roas",
        "ctr_percent",
        "daily_budget_minor",
        "status",
    ],
    returning: None,
};

/// Inserts snapshots in prepared multi-row statements.
pub async fn insert_many(db: &impl ConnectionTrait, snapshots: &[NewSnapshot]) -> Result<()> {
    let backend = db.get_database_backend();
    for chunk in snapshots.chunks(INSERT.chunk_rows()) {
        let mut values = Vec::with_capacity(chunk.len() * INSERT.columns.len());
        for s in chunk {
            values.extend([
                Value::from(s.account_id.as_str()),
                Value::from(s.campaign_id.as_str()),
                Value::from(s.cycle_id),
                Value::from(s.taken_at),
                Value::from(s.currency.as_str()),
                Value::from(s.metrics.window.as_str()),
                Value::from(s.metrics.window_start.as_str()),
                Value::from(s.metrics.window_end.as_str()),
            ]);
            values.extend(super::figure_values(&s.metrics.figures));
            values.extend([Value::from(s.daily_budget_minor), Value::from(s.status.as_str())]);
        }
        db.execute_raw(INSERT.statement(backend, values)).await?;
    }
    Ok(())
}

/// The last stored reading of one campaign's cumulative figures for one day.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignDayReading {
    /// Campaign.
    pub campaign_id: String,
    /// The account-local day, `YYYY-MM-DD`.
    pub day: String,
    /// When it was read.
    pub taken_at: DateTime<Utc>,
    /// Spend so far that day, minor units.
    pub spend_minor: i64,
    /// Revenue reported by then, minor units.
    pub revenue_minor: i64,
    /// Purchases reported by then.
    pub conversions: i64,
    /// Impressions so far.
    pub impressions: i64,
    /// The daily budget when read, minor units.
    pub daily_budget_minor: i64,
}

/// For each campaign of `account` and each day read since `since`, the last
/// cumulative `today` reading of that day: one grouped query for the newest
/// row ids, then the rows themselves.
pub async fn last_day_readings(
    db: &impl ConnectionTrait,
    account: &str,
    since: DateTime<Utc>,
) -> Result<Vec<CampaignDayReading>> {
    use performance_snapshot::Column;
    use sea_orm::sea_query::{Expr, Func, Query};
    use sea_orm::{ColumnTrait, QueryFilter};
    let newest = Query::select()
        .expr(Func::max(Expr::col(Column::Id)))
        .from(performance_snapshot::Entity)
        .and_where(Column::AccountId.eq(account))
        .and_where(Column::TakenAt.gte(since))
        .and_where(Column::MetricsWindow.eq("today"))
        .group_by_columns([Column::CampaignId, Column::WindowStart])
        .to_owned();
    let rows = performance_snapshot::Entity::find().filter(Column::Id.in_subquery(newest)).all(db).await?;
    Ok(rows
        .into_iter()
        .map(|m| CampaignDayReading {
            campaign_id: m.campaign_id,
            day: m.window_start,
            taken_at: m.taken_at,
            spend_minor: m.spend_minor,
            revenue_minor: m.revenue_minor,
            conversions: m.conversions,
            impressions: m.impressions,
            daily_budget_minor: m.daily_budget_minor,
        })
        .collect())
}
