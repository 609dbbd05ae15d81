//! Cycle runs: one row per optimization cycle with its outcome.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};

use super::entity::cycle_run;
use crate::error::{Error, Result};

/// Records the start of a cycle; returns its id, or `None` when `slot` was
/// already taken (another replica runs that scheduled cycle).
pub async fn start(db: &impl ConnectionTrait, mode: &str, replica: &str, slot: Option<&str>) -> Result<Option<i64>> {
    let inserted = cycle_run::ActiveModel {
        mode: Set(mode.to_owned()),
        status: Set("running".to_owned()),
        replica: Set(replica.to_owned()),
        started_at: Set(Utc::now()),
        finished_at: Set(None),
        summary: Set(None),
        slot: Set(slot.map(str::to_owned)),
        ..Default::default()
    }
    .insert(db)
    .await;
    match inserted {
        Ok(row) => Ok(Some(row.id)),
        Err(e) if slot.is_some() && super::is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records the end of a cycle with its outcome and a JSON summary.
pub async fn finish(db: &impl ConnectionTrait, id: i64, status: &str, summary: &str) -> Result<()> {
    let row = cycle_run::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal(format!("cycle run {id} vanished")))?;
    let mut active: cycle_run::ActiveModel = row.into();
    active.status = Set(status.to_owned());
    active.finished_at = Set(Some(Utc::now()));
    active.summary = Set(Some(summary.to_owned()));
    active.update(db).await?;
    Ok(())
}

/// The recorded status of cycle `id` (`running`, `succeeded`, `failed`).
pub async fn status(db: &impl ConnectionTrait, id: i64) -> Result<Option<String>> {
    Ok(cycle_run::Entity::find_by_id(id).one(db).await?.map(|row| row.status))
}

/// When the last successful cycle of each mode ended (modes that never
/// succeeded are absent): one small aggregate, for the metrics scrape.
pub async fn last_successes(db: &impl ConnectionTrait) -> Result<Vec<(String, DateTime<Utc>)>> {
    let rows: Vec<(String, Option<DateTime<Utc>>)> = cycle_run::Entity::find()
        .select_only()
        .column(cycle_run::Column::Mode)
        .column_as(cycle_run::Column::FinishedAt.max(), "last_end")
        .filter(cycle_run::Column::Status.eq("succeeded"))
        .group_by(cycle_run::Column::Mode)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(|(mode, end)| Some((mode, end?))).collect())
}
