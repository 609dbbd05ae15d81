//! Dashboard repository: the dashboard's figures as aggregate queries (GROUP BY,
//! SUM, COUNT, window functions) over the actions recorded in a period. No
//! action row leaves the database; the same SQL runs on SQLite and PostgreSQL.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend};

use super::history::RawSql;
use crate::error::Result;

/// Aggregates of the actions of one (account, currency, type, status) group.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionGroup {
    /// Ad account.
    pub account_id: String,
    /// Currency of every money figure of the group.
    pub currency: String,
    /// Stored action type name.
    pub action_type: String,
    /// Stored current status name.
    pub status: String,
    /// Actions in the group.
    pub actions: i64,
    /// Of them, those that did not need a human decision.
    pub without_approval: i64,
    /// Sum of budget increases (new - old where new > old; pauses excluded).
    pub increase_minor: i64,
    /// Sum of budget decreases (old - new where new < old; a pause counts its
    /// whole old budget).
    pub decrease_minor: i64,
    /// Sum of ROAS over the actions whose metrics had spend.
    pub roas_sum: f64,
    /// Actions whose metrics had spend.
    pub roas_samples: i64,
    /// Sum of the revenue in the actions' metrics.
    pub revenue_minor: i64,
    /// Spend in the metrics of actions with ROAS below 1, recorded in the
    /// first half of the period.
    pub low_roas_spend_first_half_minor: i64,
    /// The same for the second half.
    pub low_roas_spend_second_half_minor: i64,
}

/// The period to aggregate: `[start, end)` on action creation time, split at
/// `middle` for the before/after figures; optionally one account.
#[derive(Debug, Clone, Copy)]
pub struct Period<'a> {
    /// First instant (inclusive).
    pub start: DateTime<Utc>,
    /// Split point between the halves.
    pub middle: DateTime<Utc>,
    /// Last instant (exclusive).
    pub end: DateTime<Utc>,
    /// Only this account.
    pub account_id: Option<&'a str>,
}

fn push_period(sql: &mut RawSql, period: &Period<'_>) {
    sql.push(" WHERE created_at >= ").bind(period.start).push(" AND created_at < ").bind(period.end);
    if let Some(account) = period.account_id {
        sql.push(" AND account_id = ").bind(account.to_owned());
    }
}

/// One row per (account, currency, action type, status) with actions in the
/// period, each with its counts and sums.
pub async fn action_groups(db: &impl ConnectionTrait, period: &Period<'_>) -> Result<Vec<ActionGroup>> {
    // Sums are cast to BIGINT / DOUBLE PRECISION because PostgreSQL widens
    // SUM(bigint) to numeric; SQLite reads both names as its own types.
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT account_id, currency, action_type, status, \
           COUNT(*) AS actions, \
           CAST(SUM(CASE WHEN NOT requires_approval THEN 1 ELSE 0 END) AS BIGINT) AS without_approval, \
           CAST(SUM(CASE WHEN action_type <> 'pause' AND new_budget_minor > old_budget_minor \
                         THEN new_budget_minor - old_budget_minor ELSE 0 END) AS BIGINT) AS increase_minor, \
           CAST(SUM(CASE WHEN action_type = 'pause' THEN old_budget_minor \
                         WHEN new_budget_minor < old_budget_minor THEN old_budget_minor - new_budget_minor \
                         ELSE 0 END) AS BIGINT) AS decrease_minor, \
           CAST(SUM(CASE WHEN spend_minor > 0 THEN roas ELSE 0.0 END) AS DOUBLE PRECISION) AS roas_sum, \
           CAST(SUM(CASE WHEN spend_minor > 0 THEN 1 ELSE 0 END) AS BIGINT) AS roas_samples, \
           CAST(SUM(revenue_minor) AS BIGINT) AS revenue_minor, \
           CAST(SUM(CASE WHEN spend_minor > 0 AND roas < 1.0 AND created_at < ",
    );
    sql.bind(period.middle);
    sql.push(
        " THEN spend_minor ELSE 0 END) AS BIGINT) AS low_first, \
           CAST(SUM(CASE WHEN spend_minor > 0 AND roas < 1.0 AND created_at >= ",
    );
    sql.bind(period.middle);
    sql.push(" THEN spend_minor ELSE 0 END) AS BIGINT) AS low_second FROM scaling_actions");
    push_period(&mut sql, period);
    sql.push(" GROUP BY account_id, currency, action_type, status");
    let rows = db.query_all_raw(sql.build()).await?;
    let mut groups = Vec::with_capacity(rows.len());
    for row in rows {
        groups.push(ActionGroup {
            account_id: row.try_get("", "account_id")?,
            currency: row.try_get("", "currency")?,
            action_type: row.try_get("", "action_type")?,
            status: row.try_get("", "status")?,
            actions: row.try_get("", "actions")?,
            without_approval: row.try_get("", "without_approval")?,
            increase_minor: row.try_get("", "increase_minor")?,
            decrease_minor: row.try_get("", "decrease_minor")?,
            roas_sum: row.try_get("", "roas_sum")?,
            roas_samples: row.try_get("", "roas_samples")?,
            revenue_minor: row.try_get("", "revenue_minor")?,
            low_roas_spend_first_half_minor: row.try_get("", "low_first")?,
            low_roas_spend_second_half_minor: row.try_get("", "low_second")?,
        });
    }
    Ok(groups)
}

/// Seconds between recording an action and confirming its execution, in the
/// dialect of `backend`.
fn response_seconds(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "CAST(EXTRACT(EPOCH FROM (executed_at - created_at)) AS DOUBLE PRECISION)",
        // Millisecond precision (SQLite 3.42+, bundled); julianday() loses
        // tens of microseconds to cancellation.
        _ => "(unixepoch(executed_at, 'subsec') - unixepoch(created_at, 'subsec'))",
    }
}

/// Median response times of the executed actions of the period: overall and
/// per account. The median is the middle row (or the mean of the two middle
/// rows) by `ROW_NUMBER()` over the sorted response times, which both
/// databases support (SQLite has no `percentile_cont`).
pub async fn median_response_seconds(
    db: &impl ConnectionTrait,
    period: &Period<'_>,
) -> Result<(Option<f64>, HashMap<String, f64>)> {
    let backend = db.get_database_backend();
    let query = |partition: &str, key: &str, group: &str| {
        let mut sql = RawSql::new(
            backend,
            &format!(
                "SELECT {key} AVG(response) AS median FROM ( \
                   SELECT account_id, response, \
                     ROW_NUMBER() OVER ({partition} ORDER BY response) AS position, \
                     COUNT(*) OVER ({partition}) AS total \
                   FROM (SELECT account_id, {} AS response FROM scaling_actions",
                response_seconds(backend)
            ),
        );
        push_period(&mut sql, period);
        sql.push(&format!(
            " AND status = 'executed' AND executed_at IS NOT NULL) responses \
             ) ranked WHERE position IN ((total + 1) / 2, (total + 2) / 2){group}"
        ));
        sql.build()
    };

    // Independent reads: on a pool they run on two connections at once.
    let (overall, per_account) = futures_util::future::try_join(
        db.query_one_raw(query("", "", "")),
        db.query_all_raw(query("PARTITION BY account_id", "account_id,", " GROUP BY account_id")),
    )
    .await?;
    let overall = match overall {
        Some(row) => row.try_get::<Option<f64>>("", "median")?,
        None => None,
    };
    let mut by_account = HashMap::new();
    for row in per_account {
        let account: String = row.try_get("", "account_id")?;
        if let Some(median) = row.try_get::<Option<f64>>("", "median")? {
            by_account.insert(account, median);
        }
    }
    Ok((overall, by_account))
}
