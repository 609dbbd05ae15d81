//! Rollups of the dashboard's sums per UTC day (`action_rollups`) and of its
//! response times (`action_response_rollups`: counts per time bucket), so
//! that a month's dashboard adds up a few hundred rows instead of reading
//! every action of the month. A day is rolled up once it is *sealed*: over for an
//! hour, none of its actions still open (pending approval, approved,
//! executing, unconfirmed: those are the only statuses that ever change),
//! and none of its routine rows due for deletion. Nothing can then change
//! its sums but retention, which invalidates the days it deletes from in
//! the same transaction. `action_rollup_days` lists the sealed days; every
//! other day is read from `scaling_actions`, so the dashboard is exact at
//! any moment, rollups or not (a fresh install simply has none yet).
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QuerySelect, Statement, TransactionTrait,
};

use super::entity::scaling_action::{Column, Entity as Actions};
use super::history::RawSql;
use crate::domain::action::ActionStatus;
use crate::error::{Error, Result};

/// How long after a day ends its rollup waits: longer than any transaction
/// that stamped an action with that day can take to commit.
pub const SETTLE: TimeDelta = TimeDelta::hours(1);

/// Seconds per UTC day.
const DAY_SECONDS: i64 = 86_400;

/// The UTC day (days since 1970-01-01) of `at`.
pub fn day_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(DAY_SECONDS)
}

/// The first instant of `day`.
pub fn day_start(day: i64) -> Result<DateTime<Utc>> {
    day.checked_mul(DAY_SECONDS)
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| Error::Internal(format!("day {day} is out of range")))
}

/// The per-group sums of the dashboard over rows of `scaling_actions`, shared
/// by the raw aggregate and the rollups so that both count alike. Sums are
/// cast to BIGINT / DOUBLE PRECISION because PostgreSQL widens SUM(bigint)
/// to numeric; SQLite reads both names as its own types.
pub(crate) const SUMS: &str = "COUNT(*) AS actions, \
   CAST(SUM(CASE WHEN NOT requires_approval THEN 1 ELSE 0 END) AS BIGINT) AS without_approval, \
   CAST(SUM(CASE WHEN action_type <> 'pause' AND new_budget_minor > old_budget_minor \
                 THEN new_budget_minor - old_budget_minor ELSE 0 END) AS BIGINT) AS increase_minor, \
   CAST(SUM(CASE WHEN action_type = 'pause' THEN old_budget_minor \
                 WHEN new_budget_minor < old_budget_minor THEN old_budget_minor - new_budget_minor \
                 ELSE 0 END) AS BIGINT) AS decrease_minor, \
   CAST(SUM(CASE WHEN spend_minor > 0 THEN roas ELSE 0.0 END) AS DOUBLE PRECISION) AS roas_sum, \
   CAST(SUM(CASE WHEN spend_minor > 0 THEN 1 ELSE 0 END) AS BIGINT) AS roas_samples, \
   CAST(SUM(revenue_minor) AS BIGINT) AS revenue_minor";

/// Which actions count toward the low-ROAS spend.
pub(crate) const LOW_ROAS: &str = "spend_minor > 0 AND roas < 1.0";

/// Response times below this many milliseconds have a bucket each.
const EXACT_BELOW_MS: i64 = 64;

/// Above [`EXACT_BELOW_MS`], each doubling of the response time is split
/// into `2^BUCKET_BITS` buckets: a bucket is at most 1/32 of its lower
/// bound wide.
const BUCKET_BITS: u32 = 5;

/// Response times from `2^LAST_DOUBLING` ms (139 years) on have a bucket each.
const LAST_DOUBLING: u32 = 42;

/// The lower bound of the bucket of a response time of `ms` milliseconds:
/// `ms` itself below 64 ms, otherwise `ms` rounded down to a multiple of
/// 1/32 of the power of two at or below it. What [`bucket_sql`] computes.
pub fn response_bucket(ms: i64) -> i64 {
    if ms < EXACT_BELOW_MS {
        return ms;
    }
    let doubling = 63 - ms.leading_zeros();
    if doubling >= LAST_DOUBLING {
        return ms;
    }
    let width = 1_i64 << (doubling - BUCKET_BITS);
    ms / width * width
}

/// [`response_bucket`] of the integer column or expression `ms`, in SQL
/// both backends read alike (integer division truncates on both): a binary
/// search over the doublings, so each row takes about six comparisons.
fn bucket_sql(ms: &str) -> String {
    fn doublings(ms: &str, first: u32, end: u32) -> String {
        if end - first == 1 {
            let width = 1_i64 << (first - BUCKET_BITS);
            return format!("{ms} / {width} * {width}");
        }
        let middle = (first + end) / 2;
        format!(
            "CASE WHEN {ms} < {} THEN {} ELSE {} END",
            1_i64 << middle,
            doublings(ms, first, middle),
            doublings(ms, middle, end)
        )
    }
    format!(
        "CASE WHEN {ms} < {EXACT_BELOW_MS} OR {ms} >= {} THEN {ms} ELSE {} END",
        1_i64 << LAST_DOUBLING,
        doublings(ms, EXACT_BELOW_MS.trailing_zeros(), LAST_DOUBLING)
    )
}

/// Milliseconds from recording an action to confirming its execution,
/// rounded, in the dialect of `backend`.
fn response_ms(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "CAST(ROUND(EXTRACT(EPOCH FROM (executed_at - created_at)) * 1000) AS BIGINT)",
        // Millisecond precision (SQLite 3.42+, bundled).
        _ => "CAST(ROUND((unixepoch(executed_at, 'subsec') - unixepoch(created_at, 'subsec')) * 1000) AS INTEGER)",
    }
}

/// Appends a query of the response times of the actions created in
/// `[from, to)` (of `account`, if given) and executed, per account and
/// bucket: `account_id, bucket_ms, responses, response_ms` (the count and
/// the exact sum in milliseconds). Shared by the rollups and the raw reads
/// of the dashboard, so both bucket alike.
pub(crate) fn push_raw_responses(sql: &mut RawSql, from: DateTime<Utc>, to: DateTime<Utc>, account: Option<&str>) {
    let backend = sql.backend();
    sql.push(&format!(
        "SELECT account_id, bucket_ms, COUNT(*) AS responses, CAST(SUM(ms) AS BIGINT) AS response_ms FROM ( \
           SELECT account_id, ms, {} AS bucket_ms FROM ( \
             SELECT account_id, {} AS ms FROM scaling_actions \
             WHERE status = 'executed' AND executed_at IS NOT NULL AND created_at >= ",
        bucket_sql("ms"),
        response_ms(backend)
    ));
    sql.bind(from).push(" AND created_at < ").bind(to);
    if let Some(account) = account {
        sql.push(" AND account_id = ").bind(account.to_owned());
    }
    // A no-op OFFSET keeps both databases from merging `timed` into the
    // query above it, which would work out `ms` once per use in the bucket
    // expression instead of once per row.
    sql.push(match backend {
        DbBackend::Postgres => " OFFSET 0",
        _ => " LIMIT -1 OFFSET 0",
    });
    sql.push(") timed) bucketed GROUP BY account_id, bucket_ms");
}

/// Serialises rollup writers with retention on PostgreSQL, so a day is never
/// sealed from rows a concurrent prune is deleting. SQLite serialises
/// writers anyway.
pub(crate) async fn lock(txn: &impl ConnectionTrait) -> Result<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_string(DbBackend::Postgres, "SELECT pg_advisory_xact_lock(4242002)")).await?;
    }
    Ok(())
}

/// Forgets the rollups of the days `first..=last` (retention deleted rows
/// there): until they are rolled up again, the dashboard reads them raw.
pub(crate) async fn invalidate(txn: &impl ConnectionTrait, first: i64, last: i64) -> Result<()> {
    let backend = txn.get_database_backend();
    for table in ["action_rollup_days", "action_rollups", "action_response_rollups"] {
        let mut sql = RawSql::new(backend, &format!("DELETE FROM {table} WHERE day >= "));
        sql.bind(first).push(" AND day <= ").bind(last);
        txn.execute_raw(sql.build()).await?;
    }
    Ok(())
}

/// The sealed days in `first..last`, ascending.
pub(crate) async fn sealed_days(db: &impl ConnectionTrait, first: i64, last: i64) -> Result<Vec<i64>> {
    let mut sql = RawSql::new(db.get_database_backend(), "SELECT day FROM action_rollup_days WHERE day >= ");
    sql.bind(first).push(" AND day < ").bind(last).push(" ORDER BY day");
    let mut days = Vec::new();
    for row in db.query_all_raw(sql.build()).await? {
        days.push(row.try_get::<i64>("", "day")?);
    }
    Ok(days)
}

/// Rolls up the days that are over, not rolled up yet and sealed, oldest
/// first, at most `max_days` of them; `routine_before` is retention's cutoff
/// (routine rows older than it are about to go, so their days wait).
/// Returns the days rolled up. Each day is one transaction: a marker, then
/// one `INSERT ... SELECT ... GROUP BY` over the day's actions for the sums
/// and one over its executed actions for the response times.
pub async fn refresh(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    routine_before: Option<DateTime<Utc>>,
    max_days: usize,
) -> Result<usize> {
    let first: Option<Option<DateTime<Utc>>> =
        Actions::find().select_only().column_as(Column::CreatedAt.min(), "first").into_tuple().one(db).await?;
    let Some(first) = first.flatten() else { return Ok(0) };
    // Days that ended at least SETTLE ago.
    let (first, until) = (day_of(first), day_of(now - SETTLE));
    if first >= until {
        return Ok(0);
    }
    let sealed = sealed_days(db, first, until).await?;
    let backend = db.get_database_backend();
    let open: Vec<String> =
        ActionStatus::ALL.iter().filter(|s| !s.is_final()).map(|s| format!("'{}'", s.as_str())).collect();
    let open = open.join(", ");
    let mut rolled = 0;
    for day in (first..until).filter(|d| sealed.binary_search(d).is_err()) {
        if rolled >= max_days {
            break;
        }
        let (start, end) = (day_start(day)?, day_start(day + 1)?);
        let txn = db.begin().await?;
        lock(&txn).await?;
        // The marker first: on SQLite it takes the write lock before the
        // day is read; on either backend a concurrent refresh of the same
        // day finds it and leaves the day alone.
        let mut mark = RawSql::new(backend, "INSERT INTO action_rollup_days (day, rolled_at) VALUES (");
        mark.bind(day).push(", ").bind(now).push(") ON CONFLICT (day) DO NOTHING");
        if txn.execute_raw(mark.build()).await?.rows_affected() == 0 {
            txn.rollback().await?;
            continue;
        }
        let mut busy = RawSql::new(
            backend,
            &format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 FROM scaling_actions WHERE status IN ({open}) AND created_at >= "
            ),
        );
        busy.bind(start).push(" AND created_at < ").bind(end).push(" LIMIT 1) open_actions");
        let mut waiting = count(&txn, busy.build()).await? > 0;
        if let Some(cutoff) = routine_before.filter(|c| *c > start)
            && !waiting
        {
            let mut due = RawSql::new(
                backend,
                "SELECT COUNT(*) AS n FROM (SELECT 1 FROM scaling_actions WHERE status = 'skipped' AND created_at >= ",
            );
            due.bind(start).push(" AND created_at < ").bind(cutoff.min(end)).push(" LIMIT 1) due");
            waiting = count(&txn, due.build()).await? > 0;
        }
        if waiting {
            txn.rollback().await?;
            continue;
        }
        let mut insert = RawSql::new(
            backend,
            "INSERT INTO action_rollups (day, account_id, currency, action_type, status, actions, \
             without_approval, increase_minor, decrease_minor, roas_sum, roas_samples, revenue_minor, \
             low_roas_spend_minor) SELECT ",
        );
        insert.bind(day).push(&format!(
            ", account_id, currency, action_type, status, {SUMS}, \
             CAST(SUM(CASE WHEN {LOW_ROAS} THEN spend_minor ELSE 0 END) AS BIGINT) \
             FROM scaling_actions WHERE created_at >= "
        ));
        insert.bind(start).push(" AND created_at < ").bind(end);
        insert.push(" GROUP BY account_id, currency, action_type, status");
        txn.execute_raw(insert.build()).await?;
        let mut responses = RawSql::new(
            backend,
            "INSERT INTO action_response_rollups (day, account_id, bucket_ms, responses, response_ms) SELECT ",
        );
        responses.bind(day).push(", account_id, bucket_ms, responses, response_ms FROM (");
        push_raw_responses(&mut responses, start, end, None);
        responses.push(") day_responses");
        txn.execute_raw(responses.build()).await?;
        txn.commit().await?;
        rolled += 1;
    }
    Ok(rolled)
}

async fn count(db: &impl ConnectionTrait, statement: Statement) -> Result<i64> {
    match db.query_one_raw(statement).await? {
        Some(row) => Ok(row.try_get::<i64>("", "n")?),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_buckets_are_exact_below_64_ms_and_at_most_a_32nd_of_their_bound_wide() {
        for ms in [-5, 0, 1, 63] {
            assert_eq!(response_bucket(ms), ms);
        }
        assert_eq!(response_bucket(64), 64);
        assert_eq!((response_bucket(65), response_bucket(66)), (64, 66));
        assert_eq!(response_bucket(120_000), 118_784);
        let mut ms = 64;
        while ms < 1 << 41 {
            let bucket = response_bucket(ms);
            let next = response_bucket(ms + 1);
            assert!(bucket <= ms && (ms - bucket) * 32 < bucket, "{ms} in {bucket}");
            assert!(next == bucket || next == ms + 1, "buckets are contiguous at {ms}");
            ms = ms * 21 / 20 + 1;
        }
        // The SQL has one division per doubling from 64 ms to the last.
        let sql = bucket_sql("ms");
        assert_eq!(sql.matches(" * ").count(), (LAST_DOUBLING - 6) as usize);
        assert!(sql.contains("ms / 2 * 2") && sql.contains(&format!("ms / {} * {}", 1_i64 << 36, 1_i64 << 36)));
    }
}
