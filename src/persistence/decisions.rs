//! One account's evaluation recorded in one transaction: the decisions with
//! their `created` events, the performance snapshots read for them and the
//! re-read days of the lag curve. A crash leaves all of it or none of it.
use sea_orm::{DatabaseConnection, TransactionTrait};

use super::actions;
use super::lag_readings::{self, DayTotals};
use super::snapshots::{self, NewSnapshot};
use crate::domain::action::{ActionRecord, NewAction};
use crate::error::Result;

/// What one account's evaluation writes.
#[derive(Debug, Clone, Copy)]
pub struct Evaluated<'a> {
    /// The account.
    pub account_id: &'a str,
    /// One decision per evaluated campaign.
    pub actions: &'a [NewAction],
    /// The figures read for them.
    pub snapshots: &'a [NewSnapshot],
    /// Past days re-read for the lag curve.
    pub reported_days: &'a [DayTotals],
}

/// Records `evaluated`; returns the recorded actions in id order.
pub async fn record(db: &DatabaseConnection, evaluated: Evaluated<'_>) -> Result<Vec<ActionRecord>> {
    let txn = db.begin().await?;
    // Snapshots first: the event log's lock (PostgreSQL) is then held only
    // for the actions and their events.
    snapshots::insert_many(&txn, evaluated.snapshots).await?;
    lag_readings::insert(&txn, evaluated.account_id, evaluated.reported_days).await?;
    let recorded = actions::record_in(&txn, evaluated.actions).await?;
    txn.commit().await?;
    Ok(recorded)
}
