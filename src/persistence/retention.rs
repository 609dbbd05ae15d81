//! Retention: routine decisions (recorded while nothing changed: maintain,
//! insufficient data, and proposals held by a limit, all `skipped`) with
//! their events, and performance snapshots (with the lag curve's re-read
//! days), are deleted once older than their retention, in bounded batches,
//! and so are the claim rows of finished cycles.
//! Every action that changed or was meant to change a budget, every approval
//! and every failure stays in the audit trail for good. The dashboard's
//! rollups of the days pruned are dropped with the rows (see `rollups`).
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};

use super::history::RawSql;
use super::rollups;
use crate::error::Result;

/// Rows deleted per statement: small enough that a batch never holds the
/// database long, large enough that a day's routine rows go in a few hundred.
const BATCH: u64 = 5_000;

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Routine decisions.
    pub actions: u64,
    /// Their events.
    pub events: u64,
    /// Performance snapshots and re-read days.
    pub snapshots: u64,
}

/// Deletes routine decisions created before `routine_before` and snapshots
/// taken before `snapshots_before` (`None` keeps them), at most about
/// `max_rows` of each kind per pass so that a backlog is spread over cycles.
pub async fn prune(
    db: &DatabaseConnection,
    routine_before: Option<DateTime<Utc>>,
    snapshots_before: Option<DateTime<Utc>>,
    max_rows: u64,
) -> Result<Pruned> {
    let backend = db.get_database_backend();
    let mut pruned = Pruned::default();
    if let Some(cutoff) = routine_before {
        // The oldest routine decisions first (index on status, created_at, id).
        let oldest = |sql: &mut RawSql| {
            sql.push("SELECT id FROM scaling_actions WHERE status = 'skipped' AND created_at < ").bind(cutoff);
            sql.push(&format!(" ORDER BY created_at, id LIMIT {BATCH})"));
        };
        while pruned.actions < max_rows {
            let txn: DatabaseTransaction = db.begin().await?;
            // The days this batch deletes from (the oldest routine row's day
            // to the cutoff's) lose their rollups in the same transaction:
            // the dashboard reads them raw until they are rolled up again.
            rollups::lock(&txn).await?;
            let mut first = RawSql::new(
                backend,
                "SELECT MIN(created_at) AS first FROM scaling_actions WHERE status = 'skipped' AND created_at < ",
            );
            first.bind(cutoff);
            let first = match txn.query_one_raw(first.build()).await? {
                Some(row) => row.try_get::<Option<DateTime<Utc>>>("", "first")?,
                None => None,
            };
            let Some(first) = first else {
                txn.rollback().await?;
                break;
            };
            rollups::invalidate(&txn, rollups::day_of(first), rollups::day_of(cutoff)).await?;
            let mut events = RawSql::new(backend, "DELETE FROM action_events WHERE action_id IN (");
            oldest(&mut events);
            pruned.events += txn.execute_raw(events.build()).await?.rows_affected();
            let mut actions = RawSql::new(backend, "DELETE FROM scaling_actions WHERE id IN (");
            oldest(&mut actions);
            let deleted = txn.execute_raw(actions.build()).await?.rows_affected();
            txn.commit().await?;
            pruned.actions += deleted;
            if deleted < BATCH {
                break;
            }
        }
        // The claim rows of finished cycles go with the routine rows.
        let mut claims = RawSql::new(backend, "DELETE FROM cycle_accounts WHERE done_at < ");
        claims.bind(cutoff);
        db.execute_raw(claims.build()).await?;
    }
    if let Some(cutoff) = snapshots_before {
        // Ids grow with time, so the oldest rows come first in id order.
        for table in ["performance_snapshots", "reported_days"] {
            let mut done = 0;
            while done < max_rows {
                let mut sql = RawSql::new(
                    backend,
                    &format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE taken_at < "),
                );
                sql.bind(cutoff).push(&format!(" ORDER BY id LIMIT {BATCH})"));
                let deleted = db.execute_raw(sql.build()).await?.rows_affected();
                done += deleted;
                if deleted < BATCH {
                    break;
                }
            }
            pruned.snapshots += done;
        }
    }
    Ok(pruned)
}
