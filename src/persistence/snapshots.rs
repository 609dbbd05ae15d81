//! Performance snapshots: the metrics read for every evaluated campaign,
//! written in batches (the learning data of the time optimizer).
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

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

const CHUNK: usize = 1_000;

/// Inserts snapshots in multi-row statements.
pub async fn insert_many(db: &impl ConnectionTrait, snapshots: &[NewSnapshot]) -> Result<()> {
    for chunk in snapshots.chunks(CHUNK) {
        let rows = chunk.iter().map(|s| performance_snapshot::ActiveModel {
            account_id: Set(s.account_id.clone()),
            campaign_id: Set(s.campaign_id.clone()),
            cycle_id: Set(s.cycle_id),
            taken_at: Set(s.taken_at),
            currency: Set(s.currency.clone()),
            metrics_window: Set(s.metrics.window.clone()),
            window_start: Set(s.metrics.window_start.clone()),
            window_end: Set(s.metrics.window_end.clone()),
            spend_minor: Set(s.metrics.spend_minor),
            revenue_minor: Set(s.metrics.revenue_minor),
            impressions: Set(s.metrics.impressions),
            clicks: Set(s.metrics.clicks),
            conversions: Set(s.metrics.conversions),
            roas: Set(if s.metrics.roas.is_finite() { s.metrics.roas } else { 0.0 }),
            ctr_percent: Set(if s.metrics.ctr_percent.is_finite() { s.metrics.ctr_percent } else { 0.0 }),
            daily_budget_minor: Set(s.daily_budget_minor),
            status: Set(s.status.clone()),
            ..Default::default()
        });
        performance_snapshot::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(())
}

/// The last stored reading of one campaign's cumulative figures for one day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayReading {
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
) -> Result<Vec<DayReading>> {
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
        .map(|m| DayReading {
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
