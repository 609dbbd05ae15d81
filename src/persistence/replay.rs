//! Replay reads (read-only): the engine's stored per-cycle readings of an
//! account over a period, the last executed budget change of each campaign
//! before it, and the actions the live engine recorded in it.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect};

use super::actions::to_domain;
use super::entity::performance_snapshot::{self, Column as Snap, Entity as Snapshots};
use super::entity::scaling_action::{Column, Entity as Actions};
use crate::domain::action::{ActionMetrics, ActionRecord};
use crate::error::{Error, Result};

/// Most readings one replay may load: about a month of 1,000 campaigns.
pub const MAX_READINGS: u64 = 2_000_000;

/// One stored reading of one campaign: the figures of one window at one cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReading {
    /// Row id: the engine inserts a cycle's readings in decision order.
    pub id: i64,
    /// Campaign.
    pub campaign_id: String,
    /// When the engine read it (its decision time).
    pub taken_at: DateTime<Utc>,
    /// Currency of the money fields.
    pub currency: String,
    /// The figures, their window and its days.
    pub metrics: ActionMetrics,
    /// The campaign's daily budget when read (0: none).
    pub daily_budget_minor: i64,
    /// The campaign's effective status when read.
    pub status: String,
}

fn reading(m: performance_snapshot::Model) -> StoredReading {
    StoredReading {
        id: m.id,
        campaign_id: m.campaign_id,
        taken_at: m.taken_at,
        currency: m.currency,
        metrics: super::stored_metrics!(m),
        daily_budget_minor: m.daily_budget_minor,
        status: m.status,
    }
}

/// The readings of `account` taken in `[from, to)`, of any window from
/// `window_from` on and of the "today" window from `from` on, optionally of
/// some campaigns only; ordered by time, then id. Refuses more than
/// [`MAX_READINGS`] rows.
pub async fn readings(
    db: &impl ConnectionTrait,
    account: &str,
    from: DateTime<Utc>,
    window_from: DateTime<Utc>,
    to: DateTime<Utc>,
    campaigns: &[String],
) -> Result<Vec<StoredReading>> {
    let mut query = Snapshots::find()
        .filter(Snap::AccountId.eq(account))
        .filter(Snap::TakenAt.gte(from))
        .filter(Snap::TakenAt.lt(to))
        .filter(Snap::MetricsWindow.eq("today").or(Snap::TakenAt.gte(window_from)));
    if !campaigns.is_empty() {
        query = query.filter(Snap::CampaignId.is_in(campaigns.iter().cloned()));
    }
    let rows = query.order_by_asc(Snap::TakenAt).order_by_asc(Snap::Id).limit(MAX_READINGS + 1).all(db).await?;
    if rows.len() as u64 > MAX_READINGS {
        return Err(Error::invalid(
            "start_time",
            format!("the period holds more than {MAX_READINGS} readings; shorten it"),
        ));
    }
    Ok(rows.into_iter().map(reading).collect())
}

/// The actions the live engine recorded for `account` in `[from, to)`, oldest first.
pub async fn recorded_actions(
    db: &impl ConnectionTrait,
    account: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ActionRecord>> {
    Actions::find()
        .filter(Column::AccountId.eq(account))
        .filter(Column::CreatedAt.gte(from))
        .filter(Column::CreatedAt.lt(to))
        .order_by_asc(Column::Id)
        .limit(MAX_READINGS)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}
