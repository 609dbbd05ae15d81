//! The reporting-lag curve's learning data: an account's totals of each day
//! as read at each moment, from the cycle's "today" snapshots (summed over
//! the account's campaigns by the database) and from the days re-read after
//! they ended (`reported_days`).
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::entity::reported_day;
use super::history::RawSql;
use crate::error::Result;

/// An account's totals of one day as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotals {
    /// The account-local day, `YYYY-MM-DD`.
    pub day: String,
    /// When it was read.
    pub taken_at: DateTime<Utc>,
    /// Spend of the day so far, minor units.
    pub spend_minor: i64,
    /// Revenue of the day reported by then, minor units.
    pub revenue_minor: i64,
    /// Purchases of the day reported by then.
    pub conversions: i64,
}

/// Records the re-read days of one reading (one row per day).
pub async fn insert(db: &impl ConnectionTrait, account: &str, rows: &[DayTotals]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.iter().map(|r| reported_day::ActiveModel {
        account_id: Set(account.to_owned()),
        day: Set(r.day.clone()),
        taken_at: Set(r.taken_at),
        spend_minor: Set(r.spend_minor),
        revenue_minor: Set(r.revenue_minor),
        conversions: Set(r.conversions),
        ..Default::default()
    });
    reported_day::Entity::insert_many(models).exec_without_returning(db).await?;
    Ok(())
}

/// Every reading of `account` taken from `since` to `until`: the "today" snapshots
/// summed per day and moment (PostgreSQL widens `SUM(bigint)` to numeric,
/// hence the casts), then the re-read days.
pub async fn between(
    db: &impl ConnectionTrait,
    account: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<DayTotals>> {
    let backend = db.get_database_backend();
    let mut today = RawSql::new(
        backend,
        "SELECT window_start AS day, taken_at, CAST(SUM(spend_minor) AS BIGINT) AS spend_minor, \
         CAST(SUM(revenue_minor) AS BIGINT) AS revenue_minor, CAST(SUM(conversions) AS BIGINT) AS conversions \
         FROM performance_snapshots WHERE metrics_window = 'today' AND account_id = ",
    );
    today.bind(account.to_owned()).push(" AND taken_at >= ").bind(since).push(" AND taken_at <= ").bind(until);
    today.push(" GROUP BY window_start, taken_at");
    let mut reread = RawSql::new(
        backend,
        "SELECT day, taken_at, spend_minor, revenue_minor, conversions FROM reported_days WHERE account_id = ",
    );
    reread.bind(account.to_owned()).push(" AND taken_at >= ").bind(since).push(" AND taken_at <= ").bind(until);
    let mut out = Vec::new();
    for sql in [today, reread] {
        for row in db.query_all_raw(sql.build()).await? {
            out.push(DayTotals {
                day: row.try_get("", "day")?,
                taken_at: row.try_get("", "taken_at")?,
                spend_minor: row.try_get("", "spend_minor")?,
                revenue_minor: row.try_get("", "revenue_minor")?,
                conversions: row.try_get("", "conversions")?,
            });
        }
    }
    Ok(out)
}
