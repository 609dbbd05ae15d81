//! Actions repository: the audit trail. Actions are inserted once and then
//! only advanced by conditional updates (`WHERE status = <from>`), each
//! together with an event row in the same transaction, so a retry, a race or
//! a crash can never apply a transition twice and the event log never misses
//! one.
use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait, Value,
};

use super::bulk::MultiRowInsert;
use super::entity::scaling_action::{self, Column, Entity as Actions};
use super::history::RawSql;
use crate::domain::action::{ActionRecord, ActionStatus, ActionType, BudgetLevel, NewAction, RoasBelief};
use crate::error::{Error, Result};

/// Ids per `IN (...)` list.
const ID_CHUNK: usize = 500;

/// Kind of an event in the log.
pub const EVENT_CREATED: &str = "created";
/// Kind of an event in the log.
pub const EVENT_STATUS_CHANGED: &str = "status_changed";

pub(crate) fn to_domain(m: scaling_action::Model) -> Result<ActionRecord> {
    let corrupt = |what: &str| Error::Internal(format!("stored action {} has a bad {what}", m.id));
    let action_type = ActionType::parse(&m.action_type).ok_or_else(|| corrupt("action_type"))?;
    let status = ActionStatus::parse(&m.status).ok_or_else(|| corrupt("status"))?;
    Ok(ActionRecord {
        id: m.id,
        status,
        decided_by: m.decided_by,
        decision_comment: m.decision_comment,
        error: m.error,
        created_at: m.created_at,
        decided_at: m.decided_at,
        executed_at: m.executed_at,
        updated_at: m.updated_at,
        resolution: m.resolution,
        action: NewAction {
            account_id: m.account_id,
            campaign_id: m.campaign_id,
            campaign_name: m.campaign_name,
            rule_id: m.rule_id,
            cycle_id: m.cycle_id,
            action_type,
            status,
            currency: m.currency,
            budget_level: BudgetLevel::parse(&m.budget_level),
            old_budget_minor: m.old_budget_minor,
            new_budget_minor: m.new_budget_minor,
            metrics: super::stored_metrics!(m),
            reason: m.reason,
            requires_approval: m.requires_approval,
            belief: match (m.belief_roas, m.belief_low, m.belief_high) {
                (Some(roas), Some(low), Some(high)) => Some(RoasBelief {
                    roas,
                    low,
                    high,
                    credible_level: m.belief_credible_level.unwrap_or(0.0),
                    unreported_share: m.belief_unreported_share.unwrap_or(0.0),
                }),
                _ => None,
            },
        },
    })
}

/// The columns an action is recorded with; the rest start out empty.
const RECORD: MultiRowInsert = MultiRowInsert {
    table: "scaling_actions",
    columns: &[
        "account_id",
        "campaign_id",
        "campaign_name",
        "rule_id",
        "cycle_id",
        "action_type",
        "status",
        "currency",
        "budget_level",
        "old_budget_minor",
        "new_budget_minor",
        "spend_minor",
        "revenue_minor",
        "impressions",
        "clicks",
        "conversions",
        "roas",
        "ctr_percent",
        "metrics_window",
        "window_start",
        "window_end",
        "reason",
        "requires_approval",
        "created_at",
        "updated_at",
        "belief_roas",
        "belief_low",
        "belief_high",
        "belief_credible_level",
        "belief_unreported_share",
    ],
    returning: Some("id"),
};

/// Pushes one action's row, in [`RECORD`]'s column order, as it is stored
/// (figures made finite).
fn push_values(values: &mut Vec<Value>, a: &NewAction, now: DateTime<Utc>) {
    let belief = a.belief.as_ref();
    values.extend([
        Value::from(a.account_id.as_str()),
        Value::from(a.campaign_id.as_str()),
        Value::from(a.campaign_name.as_str()),
        Value::from(a.rule_id),
        Value::from(a.cycle_id),
        Value::from(a.action_type.as_str()),
        Value::from(a.status.as_str()),
        Value::from(a.currency.as_str()),
        Value::from(a.budget_level.as_str()),
        Value::from(a.old_budget_minor),
        Value::from(a.new_budget_minor),
    ]);
    values.extend(super::figure_values(&a.metrics.figures));
    values.extend([
        Value::from(a.metrics.window.as_str()),
        Value::from(a.metrics.window_start.as_str()),
        Value::from(a.metrics.window_end.as_str()),
        Value::from(a.reason.as_str()),
        Value::from(a.requires_approval),
        Value::from(now),
        Value::from(now),
        Value::from(belief.map(|b| super::finite(b.roas))),
        Value::from(belief.map(|b| super::finite(b.low))),
        Value::from(belief.map(|b| super::finite(b.high))),
        Value::from(belief.map(|b| super::finite(b.credible_level))),
        Value::from(belief.map(|b| super::finite(b.unreported_share))),
    ]);
}

/// The record a freshly inserted action reads back as: the decision with its
/// figures as stored, nothing decided or executed yet.
fn as_recorded(id: i64, a: &NewAction, now: DateTime<Utc>) -> ActionRecord {
    let mut action = a.clone();
    action.metrics.figures.ctr_percent = super::finite(action.metrics.figures.ctr_percent);
    if let Some(b) = action.belief.as_mut() {
        *b = RoasBelief {
            roas: super::finite(b.roas),
            low: super::finite(b.low),
            high: super::finite(b.high),
            credible_level: super::finite(b.credible_level),
            unreported_share: super::finite(b.unreported_share),
        };
    }
    ActionRecord {
        id,
        status: a.status,
        decided_by: None,
        decision_comment: None,
        error: None,
        created_at: now,
        decided_at: None,
        executed_at: None,
        updated_at: now,
        resolution: None,
        action,
    }
}

/// Serialises writers of the event log on PostgreSQL until commit, so event
/// sequence numbers become visible in order and a watcher reading "after
/// seq N" can never skip a row that commits late. SQLite serialises writers
/// anyway.
async fn lock_event_log(txn: &impl ConnectionTrait) -> Result<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_string(DbBackend::Postgres, "SELECT pg_advisory_xact_lock(4242001)")).await?;
    }
    Ok(())
}

/// Appends one event of `kind` per action in `ids`, in id order, each with
/// the action's status and mutable fields as they are now in this
/// transaction (the snapshot `WatchActions` replays): one `INSERT ... SELECT`
/// per chunk, so the rows are copied by the database, not sent back to it.
async fn append_events(txn: &impl ConnectionTrait, ids: &[i64], kind: &str, at: DateTime<Utc>) -> Result<()> {
    let backend = txn.get_database_backend();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut sql = RawSql::new(
            backend,
            "INSERT INTO action_events (action_id, kind, status, account_id, campaign_id, action_type, created_at, \
             action_decided_by, action_decision_comment, action_error, action_decided_at, action_executed_at, \
             action_updated_at, action_resolution) SELECT id, ",
        );
        sql.bind(kind).push(", status, account_id, campaign_id, action_type, ").bind(at);
        // Ids come from the database, never from a caller: safe as literals.
        let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        sql.push(&format!(
            ", decided_by, decision_comment, error, decided_at, executed_at, updated_at, resolution \
             FROM scaling_actions WHERE id IN ({list}) ORDER BY id"
        ));
        txn.execute_raw(sql.build()).await?;
    }
    Ok(())
}

/// Records decisions (and their `created` events) in batches, in one
/// transaction: all or nothing.
pub async fn insert_many(db: &DatabaseConnection, actions: &[NewAction]) -> Result<Vec<ActionRecord>> {
    if actions.is_empty() {
        return Ok(Vec::new());
    }
    let txn = db.begin().await?;
    let stored = record_in(&txn, actions).await?;
    txn.commit().await?;
    Ok(stored)
}

/// Records decisions and their `created` events inside the caller's
/// transaction (which must not have written events yet): prepared multi-row
/// inserts returning only the new ids, then the events copied by the
/// database. Returns the records in id order.
pub(crate) async fn record_in(txn: &DatabaseTransaction, actions: &[NewAction]) -> Result<Vec<ActionRecord>> {
    if actions.is_empty() {
        return Ok(Vec::new());
    }
    // Both backends keep microseconds: the records returned match what a
    // later read shows.
    let now = Utc::now().trunc_subsecs(6);
    let backend = txn.get_database_backend();
    lock_event_log(txn).await?;
    let mut stored = Vec::with_capacity(actions.len());
    for chunk in actions.chunks(RECORD.chunk_rows()) {
        let mut values = Vec::with_capacity(chunk.len() * RECORD.columns.len());
        for a in chunk {
            push_values(&mut values, a, now);
        }
        let mut ids = Vec::with_capacity(chunk.len());
        for row in txn.query_all_raw(RECORD.statement(backend, values)).await? {
            ids.push(row.try_get_by_index::<i64>(0)?);
        }
        if ids.len() != chunk.len() {
            return Err(Error::Internal(format!("{} actions inserted, {} ids returned", chunk.len(), ids.len())));
        }
        // One statement's rows take increasing ids in VALUES order on both
        // backends; RETURNING itself promises no order.
        ids.sort_unstable();
        stored.extend(ids.into_iter().zip(chunk).map(|(id, a)| as_recorded(id, a, now)));
    }
    let ids: Vec<i64> = stored.iter().map(|r| r.id).collect();
    append_events(txn, &ids, EVENT_CREATED, now).await?;
    Ok(stored)
}

/// What a transition writes besides the status.
#[derive(Debug, Clone, Default)]
pub struct TransitionFields {
    /// Who decided.
    pub decided_by: Option<String>,
    /// Their comment.
    pub decision_comment: Option<String>,
    /// Set `decided_at` to now.
    pub decided: bool,
    /// Set `executed_at` to now.
    pub executed: bool,
    /// Set `executed_at` to this time (the best knowledge of when a change
    /// reached the platform); wins over `executed`.
    pub executed_at: Option<DateTime<Utc>>,
    /// Clear `executed_at`: a change thought possibly applied was not.
    pub clear_executed_at: bool,
    /// How an unconfirmed or interrupted execution was settled.
    pub resolution: Option<String>,
    /// The failure, for `failed`.
    pub error: Option<String>,
    /// Claim token of the executor that owns the action.
    pub claim_token: Option<String>,
}

/// Moves every action in `ids` that is still in `from` to `to`, atomically per
/// action; returns the actions this call moved (others were not in `from`).
/// With `require_claim`, only actions carrying that claim token move.
pub async fn transition_many(
    db: &DatabaseConnection,
    ids: &[i64],
    from: ActionStatus,
    to: ActionStatus,
    fields: &TransitionFields,
    require_claim: Option<&str>,
) -> Result<Vec<ActionRecord>> {
    if !from.can_move_to(to) {
        return Err(Error::Internal(format!("illegal transition {} -> {}", from.as_str(), to.as_str())));
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let now = Utc::now().trunc_subsecs(6);
    let txn = db.begin().await?;
    lock_event_log(&txn).await?;
    let mut moved = Vec::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut update = Actions::update_many()
            .col_expr(Column::Status, Expr::value(to.as_str()))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.is_in(chunk.iter().copied()))
            .filter(Column::Status.eq(from.as_str()));
        if let Some(token) = require_claim {
            update = update.filter(Column::ClaimToken.eq(token));
        }
        if let Some(by) = &fields.decided_by {
            update = update.col_expr(Column::DecidedBy, Expr::value(by.clone()));
        }
        if let Some(comment) = &fields.decision_comment {
            update = update.col_expr(Column::DecisionComment, Expr::value(comment.clone()));
        }
        if fields.decided {
            update = update.col_expr(Column::DecidedAt, Expr::value(now));
        }
        if let Some(at) = fields.executed_at {
            update = update.col_expr(Column::ExecutedAt, Expr::value(at));
        } else if fields.executed {
            update = update.col_expr(Column::ExecutedAt, Expr::value(now));
        } else if fields.clear_executed_at {
            update = update.col_expr(Column::ExecutedAt, Expr::value(Option::<DateTime<Utc>>::None));
        }
        if let Some(resolution) = &fields.resolution {
            update = update.col_expr(Column::Resolution, Expr::value(resolution.clone()));
        }
        if let Some(error) = &fields.error {
            update = update.col_expr(Column::Error, Expr::value(error.clone()));
        }
        if let Some(token) = &fields.claim_token {
            update = update.col_expr(Column::ClaimToken, Expr::value(token.clone()));
        }
        for m in update.exec_with_returning(&txn).await? {
            moved.push(to_domain(m)?);
        }
    }
    moved.sort_by_key(|r| r.id);
    let ids: Vec<i64> = moved.iter().map(|r| r.id).collect();
    append_events(&txn, &ids, EVENT_STATUS_CHANGED, now).await?;
    txn.commit().await?;
    Ok(moved)
}

/// Loads one action; `NotFound` if there is none.
pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<ActionRecord> {
    let model =
        Actions::find_by_id(id).one(db).await?.ok_or_else(|| Error::NotFound { kind: "action", id: id.to_string() })?;
    to_domain(model)
}

/// Loads actions by id, in id order.
pub async fn get_many(db: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<ActionRecord>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let rows =
            Actions::find().filter(Column::Id.is_in(chunk.iter().copied())).order_by_asc(Column::Id).all(db).await?;
        for m in rows {
            out.push(to_domain(m)?);
        }
    }
    Ok(out)
}

/// Actions in `status`, oldest first, optionally of one account and created
/// before `created_before`; at most `limit`.
pub async fn in_status(
    db: &impl ConnectionTrait,
    status: ActionStatus,
    account_id: Option<&str>,
    created_before: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<ActionRecord>> {
    let mut query = Actions::find().filter(Column::Status.eq(status.as_str()));
    if let Some(account) = account_id {
        query = query.filter(Column::AccountId.eq(account));
    }
    if let Some(before) = created_before {
        query = query.filter(Column::CreatedAt.lt(before));
    }
    query.order_by_asc(Column::Id).limit(limit).all(db).await?.into_iter().map(to_domain).collect()
}

/// For each campaign of `account_id`, when its budget was last changed (the
/// cooldown's input): every budget action that reached the platform counts,
/// whatever its recorded outcome (executed, partly applied, or unconfirmed
/// and possibly applied). With `before`, only changes before it count (the
/// cooldown at the start of a replay). One aggregate query.
pub async fn last_budget_changes(
    db: &impl ConnectionTrait,
    account_id: &str,
    before: Option<DateTime<Utc>>,
) -> Result<HashMap<String, DateTime<Utc>>> {
    let budget_types =
        [ActionType::ScaleUpAggressive, ActionType::ScaleUp, ActionType::ScaleDown].map(|t| t.as_str().to_owned());
    let mut query = Actions::find()
        .select_only()
        .column(Column::CampaignId)
        .column_as(Column::ExecutedAt.max(), "last_change")
        .filter(Column::AccountId.eq(account_id))
        .filter(Column::ExecutedAt.is_not_null())
        .filter(Column::ActionType.is_in(budget_types));
    if let Some(before) = before {
        query = query.filter(Column::ExecutedAt.lt(before));
    }
    let rows: Vec<(String, Option<DateTime<Utc>>)> = query.group_by(Column::CampaignId).into_tuple().all(db).await?;
    Ok(rows.into_iter().filter_map(|(campaign, at)| at.map(|at| (campaign, at))).collect())
}

/// Open actions (pending approval, approved, executing or unconfirmed) of an
/// account by campaign: a campaign with one is not decided again until it
/// closes.
pub async fn open_by_campaign(
    db: &impl ConnectionTrait,
    account_id: &str,
) -> Result<HashMap<String, (i64, ActionStatus)>> {
    let open =
        [ActionStatus::PendingApproval, ActionStatus::Approved, ActionStatus::Executing, ActionStatus::Unconfirmed]
            .map(|s| s.as_str());
    let rows: Vec<(i64, String, String)> = Actions::find()
        .select_only()
        .column(Column::Id)
        .column(Column::CampaignId)
        .column(Column::Status)
        .filter(Column::AccountId.eq(account_id))
        .filter(Column::Status.is_in(open))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, campaign, status)| ActionStatus::parse(&status).map(|s| (campaign, (id, s))))
        .collect())
}

/// Actions whose outcome is not settled, with their claim tokens:
/// `unconfirmed` ones, and `executing` ones (the caller tells abandoned claims
/// from live ones), oldest first.
pub async fn unsettled(db: &impl ConnectionTrait) -> Result<Vec<(ActionRecord, Option<String>)>> {
    Actions::find()
        .filter(Column::Status.is_in([ActionStatus::Executing.as_str(), ActionStatus::Unconfirmed.as_str()]))
        .order_by_asc(Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            let token = m.claim_token.clone();
            to_domain(m).map(|r| (r, token))
        })
        .collect()
}

/// Executing actions whose claim is older than `stale_before`: left behind by
/// a crash, to be resolved by reading the platform.
pub async fn stale_executing(db: &impl ConnectionTrait, stale_before: DateTime<Utc>) -> Result<Vec<ActionRecord>> {
    Actions::find()
        .filter(Column::Status.eq(ActionStatus::Executing.as_str()))
        .filter(Column::UpdatedAt.lt(stale_before))
        .order_by_asc(Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}

/// How many actions wait for a decision, and when the oldest was created:
/// one aggregate over the `(status, created_at)` index, cheap enough for
/// every metrics scrape.
pub async fn pending_summary(db: &impl ConnectionTrait) -> Result<(i64, Option<DateTime<Utc>>)> {
    let row: Option<(i64, Option<DateTime<Utc>>)> = Actions::find()
        .select_only()
        .column_as(Column::Id.count(), "waiting")
        .column_as(Column::CreatedAt.min(), "oldest")
        .filter(Column::Status.eq(ActionStatus::PendingApproval.as_str()))
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.unwrap_or((0, None)))
}
