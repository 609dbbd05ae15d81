//! Leases: a named lock with an expiry, taken by a conditional update so that
//! exactly one replica holds it; a crashed holder's lease simply expires.
use chrono::{TimeDelta, Utc};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::entity::lease::{Column, Entity as Leases};
use crate::error::Result;

/// Takes (or renews) lease `name` for `holder` for `ttl`; `false` if another
/// holder has it and it has not expired.
pub async fn acquire(db: &impl ConnectionTrait, name: &str, holder: &str, ttl: TimeDelta) -> Result<bool> {
    let now = Utc::now();
    let result = Leases::update_many()
        .col_expr(Column::Holder, Expr::value(holder))
        .col_expr(Column::ExpiresAt, Expr::value(now + ttl))
        .filter(Column::Name.eq(name))
        .filter(
            Condition::any()
                .add(Column::Holder.is_null())
                .add(Column::Holder.eq(holder))
                .add(Column::ExpiresAt.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives lease `name` up if `holder` has it.
pub async fn release(db: &impl ConnectionTrait, name: &str, holder: &str) -> Result<()> {
    Leases::update_many()
        .col_expr(Column::Holder, Expr::value(Option::<String>::None))
        .col_expr(Column::ExpiresAt, Expr::value(Option::<chrono::DateTime<Utc>>::None))
        .filter(Column::Name.eq(name))
        .filter(Column::Holder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}

/// Extends lease `name` only while `holder` still has it: a lease that was
/// released, or taken over after it expired, is never taken back by a late
/// renewal. `false` when the holder no longer has it.
pub async fn renew(db: &impl ConnectionTrait, name: &str, holder: &str, ttl: TimeDelta) -> Result<bool> {
    let result = Leases::update_many()
        .col_expr(Column::ExpiresAt, Expr::value(Utc::now() + ttl))
        .filter(Column::Name.eq(name))
        .filter(Column::Holder.eq(holder))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Name of the liveness mark of executor instance `instance`.
pub fn liveness_name(instance: &str) -> String {
    format!("instance:{instance}")
}

/// Marks `instance` alive for `ttl` (inserting its row the first time).
pub async fn mark_alive(db: &impl ConnectionTrait, instance: &str, ttl: TimeDelta) -> Result<()> {
    let now = Utc::now();
    let name = liveness_name(instance);
    let model = super::entity::lease::ActiveModel {
        name: sea_orm::ActiveValue::Set(name),
        holder: sea_orm::ActiveValue::Set(Some(instance.to_owned())),
        expires_at: sea_orm::ActiveValue::Set(Some(now + ttl)),
    };
    Leases::insert(model)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(Column::Name)
                .update_columns([Column::Holder, Column::ExpiresAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Removes the liveness marks of instances gone for a day.
pub async fn forget_lapsed_instances(db: &impl ConnectionTrait) -> Result<()> {
    Leases::delete_many()
        .filter(Column::Name.starts_with("instance:"))
        .filter(Column::ExpiresAt.lt(Utc::now() - TimeDelta::days(1)))
        .exec(db)
        .await?;
    Ok(())
}

/// Which of `instances` are marked alive now.
pub async fn alive(db: &impl ConnectionTrait, instances: &[String]) -> Result<std::collections::HashSet<String>> {
    if instances.is_empty() {
        return Ok(Default::default());
    }
    let names: Vec<String> = instances.iter().map(|i| liveness_name(i)).collect();
    let rows =
        Leases::find().filter(Column::Name.is_in(names)).filter(Column::ExpiresAt.gt(Utc::now())).all(db).await?;
    Ok(rows.into_iter().filter_map(|m| m.holder).collect())
}

/// Claims the one-off slot `name` (say, one day's approval digest) for
/// `holder`: `true` for exactly one caller across replicas, `false` for every
/// other. Slots of the same `family` prefix that ended a week ago are
/// removed on the way, so they do not pile up.
pub async fn claim_slot(
    db: &impl ConnectionTrait,
    family: &str,
    name: &str,
    holder: &str,
    ends_at: chrono::DateTime<Utc>,
) -> Result<bool> {
    Leases::delete_many()
        .filter(Column::Name.starts_with(family))
        .filter(Column::ExpiresAt.lt(Utc::now() - TimeDelta::days(7)))
        .exec(db)
        .await?;
    let model = super::entity::lease::ActiveModel {
        name: sea_orm::ActiveValue::Set(name.to_owned()),
        holder: sea_orm::ActiveValue::Set(Some(holder.to_owned())),
        expires_at: sea_orm::ActiveValue::Set(Some(ends_at)),
    };
    let inserted = Leases::insert(model)
        .on_conflict(sea_orm::sea_query::OnConflict::column(Column::Name).do_nothing().to_owned())
        .exec_without_returning(db)
        .await;
    match inserted {
        Ok(rows) => Ok(rows == 1),
        Err(sea_orm::DbErr::RecordNotInserted) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Who holds lease `name` and until when, if anyone does.
pub async fn holder(db: &impl ConnectionTrait, name: &str) -> Result<Option<(String, chrono::DateTime<Utc>)>> {
    let row = Leases::find_by_id(name.to_owned()).one(db).await?;
    Ok(row.and_then(|m| m.holder.zip(m.expires_at)))
}
