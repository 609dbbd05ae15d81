//! A cycle's accounts as claimable units shared by every replica: claimed
//! with a lease by a conditional update (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so replicas never queue behind each other's claims), renewed
//! while the account is worked on, and marked done with its outcome. An
//! account whose holder died is claimable again once its lease has lapsed.
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DbBackend};

use super::history::RawSql;
use crate::error::Result;

/// One claimed account of a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Row id (what renewals and completion name).
    pub id: i64,
    /// The cycle.
    pub cycle_id: i64,
    /// The account to work on.
    pub account_id: String,
}

/// Adds the accounts of `cycle_id` (once each; adding again is a no-op).
pub async fn enqueue(db: &impl ConnectionTrait, cycle_id: i64, accounts: &[String]) -> Result<()> {
    let backend = db.get_database_backend();
    for chunk in accounts.chunks(500) {
        let mut sql = RawSql::new(backend, "INSERT INTO cycle_accounts (cycle_id, account_id) VALUES ");
        for (i, account) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" }).bind(cycle_id).push(", ").bind(account.as_str()).push(")");
        }
        sql.push(" ON CONFLICT (cycle_id, account_id) DO NOTHING");
        db.execute_raw(sql.build()).await?;
    }
    Ok(())
}

/// Claims one account of `cycle_id` that is not done and not held (or whose
/// holder's lease lapsed) for `holder` until `now + ttl`; `None` when there
/// is none to take.
pub async fn claim(
    db: &impl ConnectionTrait,
    cycle_id: i64,
    holder: &str,
    ttl: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Option<Claim>> {
    let backend = db.get_database_backend();
    let mut sql = RawSql::new(backend, "UPDATE cycle_accounts SET holder = ");
    sql.bind(holder).push(", lease_expires_at = ").bind(now + ttl);
    sql.push(" WHERE id = (SELECT id FROM cycle_accounts WHERE cycle_id = ").bind(cycle_id);
    sql.push(" AND done_at IS NULL AND (holder IS NULL OR lease_expires_at < ").bind(now);
    sql.push(") ORDER BY id LIMIT 1");
    if backend == DbBackend::Postgres {
        sql.push(" FOR UPDATE SKIP LOCKED");
    }
    // Re-checked outside the subquery: on PostgreSQL a row another replica
    // claimed between the scan and the lock is not taken twice.
    sql.push(") AND done_at IS NULL AND (holder IS NULL OR lease_expires_at < ").bind(now);
    sql.push(") RETURNING id, cycle_id, account_id");
    Ok(match db.query_one_raw(sql.build()).await? {
        Some(row) => Some(Claim {
            id: row.try_get("", "id")?,
            cycle_id: row.try_get("", "cycle_id")?,
            account_id: row.try_get("", "account_id")?,
        }),
        None => None,
    })
}

/// Extends `holder`'s lease on a claim; `false` if it is no longer theirs.
pub async fn renew(db: &impl ConnectionTrait, claim_id: i64, holder: &str, until: DateTime<Utc>) -> Result<bool> {
    let mut sql = RawSql::new(db.get_database_backend(), "UPDATE cycle_accounts SET lease_expires_at = ");
    sql.bind(until).push(" WHERE id = ").bind(claim_id).push(" AND holder = ").bind(holder);
    sql.push(" AND done_at IS NULL");
    Ok(db.execute_raw(sql.build()).await?.rows_affected() == 1)
}

/// Marks a claim done with its outcome; `false` if `holder` had lost it (the
/// account was taken over after the lease lapsed).
pub async fn complete(db: &impl ConnectionTrait, claim_id: i64, holder: &str, outcome: &str) -> Result<bool> {
    let mut sql = RawSql::new(db.get_database_backend(), "UPDATE cycle_accounts SET done_at = ");
    sql.bind(Utc::now()).push(", outcome = ").bind(outcome).push(" WHERE id = ").bind(claim_id);
    sql.push(" AND holder = ").bind(holder).push(" AND done_at IS NULL");
    Ok(db.execute_raw(sql.build()).await?.rows_affected() == 1)
}

/// How many accounts of `cycle_id` are not done yet.
pub async fn remaining(db: &impl ConnectionTrait, cycle_id: i64) -> Result<i64> {
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT COUNT(*) AS n FROM cycle_accounts WHERE done_at IS NULL AND cycle_id = ",
    );
    sql.bind(cycle_id);
    Ok(match db.query_one_raw(sql.build()).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    })
}

/// One finished account of a cycle: who did it and what came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The account.
    pub account_id: String,
    /// The replica that finished it.
    pub holder: String,
    /// Its outcome as recorded by that replica.
    pub outcome: String,
}

/// The finished accounts of `cycle_id`, in claim order.
pub async fn done(db: &impl ConnectionTrait, cycle_id: i64) -> Result<Vec<Done>> {
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT account_id, holder, outcome FROM cycle_accounts WHERE done_at IS NOT NULL AND cycle_id = ",
    );
    sql.bind(cycle_id).push(" ORDER BY id");
    let mut out = Vec::new();
    for row in db.query_all_raw(sql.build()).await? {
        out.push(Done {
            account_id: row.try_get("", "account_id")?,
            holder: row.try_get::<Option<String>>("", "holder")?.unwrap_or_default(),
            outcome: row.try_get::<Option<String>>("", "outcome")?.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Running cycles with an account another replica could take now. Only a
/// cycle whose starter still holds the cycle lease `lease` counts: the
/// accounts of a cycle cut off by a crash are left to the next cycle, not
/// worked on hours late.
pub async fn claimable_cycles(db: &impl ConnectionTrait, lease: &str, now: DateTime<Utc>) -> Result<Vec<i64>> {
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT DISTINCT c.cycle_id FROM cycle_accounts c JOIN cycle_runs r ON r.id = c.cycle_id \
         JOIN leases l ON l.holder = r.replica AND l.name = ",
    );
    sql.bind(lease).push(" AND l.expires_at > ").bind(now);
    sql.push(" WHERE r.status = 'running' AND c.done_at IS NULL AND (c.holder IS NULL OR c.lease_expires_at < ");
    sql.bind(now).push(") ORDER BY c.cycle_id");
    let mut out = Vec::new();
    for row in db.query_all_raw(sql.build()).await? {
        out.push(row.try_get("", "cycle_id")?);
    }
    Ok(out)
}
