//! Dashboard repository: the dashboard's figures as aggregate queries (GROUP BY,
//! SUM, COUNT) over the actions recorded in a period, whole sealed days read
//! from their daily rollups (see [`rollups`]); the median response time from
//! counts per time bucket. No action row leaves the database; the same SQL
//! runs on SQLite and PostgreSQL.
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, IsolationLevel, TransactionTrait,
};

use super::history::RawSql;
use super::rollups::{self, LOW_ROAS, SUMS};
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

/// The grouped sums of the actions created in `[from, to)`, with the
/// low-ROAS spend split at `period.middle`.
fn push_raw_groups(sql: &mut RawSql, period: &Period<'_>, from: DateTime<Utc>, to: DateTime<Utc>) {
    sql.push(&format!(
        "SELECT account_id, currency, action_type, status, {SUMS}, \
           CAST(SUM(CASE WHEN {LOW_ROAS} AND created_at < "
    ));
    sql.bind(period.middle);
    sql.push(&format!(
        " THEN spend_minor ELSE 0 END) AS BIGINT) AS low_first, CAST(SUM(CASE WHEN {LOW_ROAS} AND created_at >= "
    ));
    sql.bind(period.middle);
    sql.push(" THEN spend_minor ELSE 0 END) AS BIGINT) AS low_second FROM scaling_actions");
    push_period(sql, &Period { start: from, end: to, ..*period });
    sql.push(" GROUP BY account_id, currency, action_type, status");
}

fn to_groups(rows: Vec<sea_orm::QueryResult>) -> Result<Vec<ActionGroup>> {
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

/// One row per (account, currency, action type, status) with actions in the
/// period, each with its counts and sums, read from every action of the
/// period: the reference [`action_groups`] must always equal.
pub async fn raw_action_groups(db: &impl ConnectionTrait, period: &Period<'_>) -> Result<Vec<ActionGroup>> {
    let mut sql = RawSql::new(db.get_database_backend(), "");
    push_raw_groups(&mut sql, period, period.start, period.end);
    to_groups(db.query_all_raw(sql.build()).await?)
}

/// How the period is read: whole sealed days from the rollups, the rest
/// (the partial days at the edges, for the sums the day holding `middle`,
/// and any day not sealed yet) from the actions.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    /// Ranges of rolled-up days, `[first, last)`.
    rolled: Vec<(i64, i64)>,
    /// Ranges of creation time read raw, `[from, to)`.
    raw: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// With `halves`, the day holding `middle` is read raw (its actions fall in
/// both halves of the period).
fn plan(period: &Period<'_>, sealed: &[i64], halves: bool) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut raw_from = period.start;
    let middle_day = halves.then(|| rollups::day_of(period.middle));
    for &day in sealed {
        let start = rollups::day_start(day)?;
        let end = rollups::day_start(day + 1)?;
        if Some(day) == middle_day || start < period.start || end > period.end {
            continue;
        }
        if raw_from < start {
            plan.raw.push((raw_from, start));
        }
        raw_from = end;
        match plan.rolled.last_mut() {
            Some((_, last)) if *last == day => *last = day + 1,
            _ => plan.rolled.push((day, day + 1)),
        }
    }
    if raw_from < period.end {
        plan.raw.push((raw_from, period.end));
    }
    Ok(plan)
}

/// A read transaction: the list of sealed days and the statement that reads
/// them share one snapshot (PostgreSQL's default gives each statement its
/// own; SQLite's read transaction keeps one).
async fn snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction> {
    Ok(match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await?;
            // Over a long raw range the planner's estimate passes the JIT
            // threshold, and compiling the expressions costs more (about
            // 100 ms) than summing a few days of actions takes.
            txn.execute_unprepared("SET LOCAL jit = off").await?;
            txn
        }
        _ => db.begin().await?,
    })
}

/// `(day >= a AND day < b) OR ...)` over the ranges of rolled-up days (the
/// opening parenthesis is the caller's).
fn push_days(sql: &mut RawSql, rolled: &[(i64, i64)]) {
    for (i, (first, last)) in rolled.iter().enumerate() {
        sql.push(if i == 0 { "(day >= " } else { " OR (day >= " });
        sql.bind(*first).push(" AND day < ").bind(*last).push(")");
    }
    sql.push(")");
}

/// One row per (account, currency, action type, status) with actions in the
/// period, each with its counts and sums: the sealed whole days from their
/// rollups, the rest from the actions, in one statement. The list of sealed
/// days and the statement share one snapshot (a read transaction), so a day
/// sealed or invalidated meanwhile is counted exactly once. Money and counts
/// equal [`raw_action_groups`] exactly; `roas_sum` up to float rounding.
pub async fn action_groups(db: &DatabaseConnection, period: &Period<'_>) -> Result<Vec<ActionGroup>> {
    let select = "SELECT account_id, currency, action_type, status, CAST(SUM(actions) AS BIGINT) AS actions, \
           CAST(SUM(without_approval) AS BIGINT) AS without_approval, \
           CAST(SUM(increase_minor) AS BIGINT) AS increase_minor, \
           CAST(SUM(decrease_minor) AS BIGINT) AS decrease_minor, \
           CAST(SUM(roas_sum) AS DOUBLE PRECISION) AS roas_sum, \
           CAST(SUM(roas_samples) AS BIGINT) AS roas_samples, \
           CAST(SUM(revenue_minor) AS BIGINT) AS revenue_minor, \
           CAST(SUM(low_first) AS BIGINT) AS low_first, CAST(SUM(low_second) AS BIGINT) AS low_second FROM (";
    let rolled = |sql: &mut RawSql| {
        // A whole day before the middle's day lies in the first half, one
        // after it in the second.
        let middle_day = rollups::day_of(period.middle);
        sql.push(
            "SELECT account_id, currency, action_type, status, actions, without_approval, increase_minor, \
               decrease_minor, roas_sum, roas_samples, revenue_minor, \
               CASE WHEN day < ",
        );
        sql.bind(middle_day).push(" THEN low_roas_spend_minor ELSE 0 END AS low_first, CASE WHEN day > ");
        sql.bind(middle_day).push(" THEN low_roas_spend_minor ELSE 0 END AS low_second FROM action_rollups");
    };
    let raw = |sql: &mut RawSql, from, to| push_raw_groups(sql, period, from, to);
    let group_by = " GROUP BY account_id, currency, action_type, status";
    match read_through_rollups(db, period, true, select, rolled, raw, group_by).await? {
        Some(rows) => to_groups(rows),
        None => raw_action_groups(db, period).await,
    }
}

/// Reads a period as one statement, `select` over the `UNION ALL` of the
/// rolled-up days (`rolled` pushes their `SELECT ... FROM table`) and of the
/// other ranges (`raw` pushes one range's `SELECT`), then `group_by`. The
/// list of sealed days and the statement share one snapshot (a read
/// transaction), so a day sealed or invalidated meanwhile is counted
/// exactly once. `None` when the period holds no whole day: then there is
/// nothing to roll up and the caller reads the actions alone.
async fn read_through_rollups(
    db: &DatabaseConnection,
    period: &Period<'_>,
    halves: bool,
    select: &str,
    rolled: impl Fn(&mut RawSql),
    raw: impl Fn(&mut RawSql, DateTime<Utc>, DateTime<Utc>),
    group_by: &str,
) -> Result<Option<Vec<sea_orm::QueryResult>>> {
    let first_whole = rollups::day_of(period.start - TimeDelta::microseconds(1)) + 1;
    let last_whole = rollups::day_of(period.end);
    if first_whole >= last_whole {
        return Ok(None);
    }
    let txn = snapshot(db).await?;
    let sealed = rollups::sealed_days(&txn, first_whole, last_whole).await?;
    let plan = plan(period, &sealed, halves)?;
    let mut sql = RawSql::new(db.get_database_backend(), select);
    let mut parts = 0;
    if !plan.rolled.is_empty() {
        rolled(&mut sql);
        sql.push(" WHERE (");
        push_days(&mut sql, &plan.rolled);
        if let Some(account) = period.account_id {
            sql.push(" AND account_id = ").bind(account.to_owned());
        }
        parts += 1;
    }
    for (from, to) in &plan.raw {
        if parts > 0 {
            sql.push(" UNION ALL ");
        }
        raw(&mut sql, *from, *to);
        parts += 1;
    }
    sql.push(") parts").push(group_by);
    let rows = txn.query_all_raw(sql.build()).await?;
    txn.commit().await?;
    Ok(Some(rows))
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

/// Median response times (overall, per account) of the executed actions of
/// the period, exactly: the middle row (or the mean of the two middle rows)
/// by `ROW_NUMBER()` over every sorted response time of the period, which
/// both databases support (SQLite has no `percentile_cont`). The reference
/// [`median_response_seconds`] stays within [`MEDIAN_ERROR`] of; it sorts
/// every executed action of the period, so the dashboard does not use it.
pub async fn exact_median_response_seconds(
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

/// How far [`median_response_seconds`] may be from the exact median, as a
/// share of it (plus a millisecond of rounding): each middle response time
/// is stood for by the mean of its bucket, and a bucket is at most 1/32 of
/// its lower bound wide (see [`rollups::response_bucket`]).
pub const MEDIAN_ERROR: f64 = 1.0 / 32.0;

/// Response times per bucket lower bound (ms): (count, sum in ms).
type Histogram = BTreeMap<i64, (i64, i64)>;

/// The median of a histogram: the bucket of the middle response time (or of
/// each of the two middle ones) stands for it with the mean of its times.
/// Exact when those buckets hold only equal times (whole seconds, say, up
/// to 32 s); otherwise within [`MEDIAN_ERROR`].
fn median_of(histogram: &Histogram) -> Option<f64> {
    let total: i64 = histogram.values().map(|(n, _)| n).sum();
    if total == 0 {
        return None;
    }
    let middle = |rank: i64| {
        let mut seen = 0;
        for (count, sum_ms) in histogram.values() {
            seen += count;
            if seen >= rank {
                return *sum_ms as f64 / *count as f64;
            }
        }
        0.0
    };
    Some((middle((total + 1) / 2) + middle((total + 2) / 2)) / 2.0 / 1_000.0)
}

/// Overall and per-account medians of `account_id, bucket_ms, responses,
/// response_ms` rows.
fn medians(rows: Vec<sea_orm::QueryResult>) -> Result<(Option<f64>, HashMap<String, f64>)> {
    let mut overall = Histogram::new();
    let mut accounts: HashMap<String, Histogram> = HashMap::new();
    for row in rows {
        let account: String = row.try_get("", "account_id")?;
        let bucket: i64 = row.try_get("", "bucket_ms")?;
        let (count, sum_ms): (i64, i64) = (row.try_get("", "responses")?, row.try_get("", "response_ms")?);
        let all = overall.entry(bucket).or_default();
        (all.0, all.1) = (all.0 + count, all.1 + sum_ms);
        let mine = accounts.entry(account).or_default().entry(bucket).or_default();
        (mine.0, mine.1) = (mine.0 + count, mine.1 + sum_ms);
    }
    let by_account = accounts.into_iter().filter_map(|(a, h)| median_of(&h).map(|m| (a, m))).collect();
    Ok((median_of(&overall), by_account))
}

/// [`median_response_seconds`] read from every executed action of the
/// period, no rollups: the reference it must always equal.
pub async fn raw_median_response_seconds(
    db: &impl ConnectionTrait,
    period: &Period<'_>,
) -> Result<(Option<f64>, HashMap<String, f64>)> {
    let mut sql = RawSql::new(db.get_database_backend(), "");
    rollups::push_raw_responses(&mut sql, period.start, period.end, period.account_id);
    medians(db.query_all_raw(sql.build()).await?)
}

/// Median response times (seconds from recording an action to confirming
/// its execution) of the executed actions of the period: overall and per
/// account, within [`MEDIAN_ERROR`] of the exact ones. Counts per time
/// bucket come from the response rollups for whole sealed days (the day
/// holding the middle included: the median has no halves) and from the
/// actions for the rest, in one statement and one snapshot like
/// [`action_groups`]; they equal [`raw_median_response_seconds`] exactly.
pub async fn median_response_seconds(
    db: &DatabaseConnection,
    period: &Period<'_>,
) -> Result<(Option<f64>, HashMap<String, f64>)> {
    let select = "SELECT account_id, bucket_ms, CAST(SUM(responses) AS BIGINT) AS responses, \
           CAST(SUM(response_ms) AS BIGINT) AS response_ms FROM (";
    let rolled = |sql: &mut RawSql| {
        sql.push("SELECT account_id, bucket_ms, responses, response_ms FROM action_response_rollups");
    };
    let raw = |sql: &mut RawSql, from, to| rollups::push_raw_responses(sql, from, to, period.account_id);
    match read_through_rollups(db, period, false, select, rolled, raw, " GROUP BY account_id, bucket_ms").await? {
        Some(rows) => medians(rows),
        None => raw_median_response_seconds(db, period).await,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).single().unwrap_or_default()
    }

    #[test]
    fn sealed_whole_days_are_rolled_up_and_the_edges_and_middle_day_read_raw() {
        // 1 Dec 12:00 to 11 Dec 12:00; the middle (6 Dec 12:00) splits its day.
        let period = Period { start: at(1, 12), middle: at(6, 12), end: at(11, 12), account_id: None };
        let day = |d: u32| rollups::day_of(at(d, 0));
        // 3 Dec is not sealed; 6 Dec holds the middle.
        let sealed: Vec<i64> = [2, 4, 5, 6, 7, 8, 9, 10].into_iter().map(day).collect();
        let plan = plan_of(&period, &sealed, true);
        assert_eq!(plan.rolled, vec![(day(2), day(3)), (day(4), day(6)), (day(7), day(11))]);
        assert_eq!(
            plan.raw,
            vec![(at(1, 12), at(2, 0)), (at(3, 0), at(4, 0)), (at(6, 0), at(7, 0)), (at(11, 0), at(11, 12))]
        );
        // Nothing sealed: one raw range, the whole period.
        assert_eq!(plan_of(&period, &[], true), Plan { rolled: vec![], raw: vec![(period.start, period.end)] });
        // Without halves (the median) the middle's day is rolled up too.
        let whole = plan_of(&period, &sealed, false);
        assert_eq!(whole.rolled, vec![(day(2), day(3)), (day(4), day(11))]);
        assert_eq!(whole.raw, vec![(at(1, 12), at(2, 0)), (at(3, 0), at(4, 0)), (at(11, 0), at(11, 12))]);
    }

    #[test]
    fn the_median_is_the_middle_buckets_mean_and_exact_for_lone_values() {
        // 30, 60, 90, 120 and 300 s, one bucket each: exact.
        let lone: Histogram =
            [30_000, 60_000, 90_000, 120_000, 300_000].map(|ms| (rollups::response_bucket(ms), (1, ms))).into();
        assert_eq!(median_of(&lone), Some(90.0));
        // Two middle values: the mean of their buckets' means.
        let even: Histogram = [(992, (2, 2_000)), (3_968, (1, 4_000)), (7_936, (1, 8_000))].into();
        assert_eq!(median_of(&even), Some(2.5));
        // 100.4 s and 101.5 s share the bucket from 100,352 ms: its mean
        // (100.95 s) stands for the middle one (101.5 s), 0.55 s off, less
        // than a 32nd of it.
        let shared: Histogram = [(100_352, (2, 100_400 + 101_500)), (200_704, (1, 201_000))].into();
        assert_eq!(median_of(&shared), Some(100.95));
        assert_eq!(median_of(&Histogram::new()), None);
    }

    fn plan_of(period: &Period<'_>, sealed: &[i64], halves: bool) -> Plan {
        plan(period, sealed, halves).unwrap_or_default()
    }
}
