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
