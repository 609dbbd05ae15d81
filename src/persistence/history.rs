//! History repository: filtered, keyset-paged reads of the action audit trail
//! and of its event log (the source of `WatchActions`). Read-only; every
//! query is served by an index that ends in the key it pages by.
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Statement, Value,
};

use super::actions::{EVENT_CREATED, EVENT_STATUS_CHANGED, to_domain};
use super::entity::scaling_action::{self, Column, Entity as Actions};
use crate::domain::action::{ActionRecord, ActionStatus, ActionType};
use crate::error::{Error, Result};

/// Which actions a listing or a stream covers; `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionFilter {
    /// Only this ad account.
    pub account_id: Option<String>,
    /// Only this campaign.
    pub campaign_id: Option<String>,
    /// Only this action type.
    pub action_type: Option<ActionType>,
    /// Only this status (the current one in the history; the one right after
    /// the event in the stream).
    pub status: Option<ActionStatus>,
    /// Only actions created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only actions created before this time.
    pub created_before: Option<DateTime<Utc>>,
}

/// Order of a listing by id (ids grow with creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending ids: the approval queue.
    OldestFirst,
    /// Descending ids: the history.
    NewestFirst,
}

/// At most `limit` actions matching `filter` in `order`, strictly after the
/// action `after_id` in that order (the keyset cursor of the previous page).
pub async fn list_actions(
    db: &impl ConnectionTrait,
    filter: &ActionFilter,
    after_id: Option<i64>,
    order: Order,
    limit: u64,
) -> Result<Vec<ActionRecord>> {
    // Deferred join: choose the page's ids first (index-only where the
    // filter's index covers it, so a time range sorts ids, not rows), then
    // load just those rows.
    let mut query = Actions::find().select_only().column(Column::Id);
    if let Some(account) = &filter.account_id {
        query = query.filter(Column::AccountId.eq(account.as_str()));
    }
    if let Some(campaign) = &filter.campaign_id {
        query = query.filter(Column::CampaignId.eq(campaign.as_str()));
    }
    if let Some(action_type) = filter.action_type {
        query = query.filter(Column::ActionType.eq(action_type.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(from) = filter.created_from {
        query = query.filter(Column::CreatedAt.gte(from));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(Column::CreatedAt.lt(before));
    }
    query = match (order, after_id) {
        (Order::OldestFirst, Some(after)) => query.filter(Column::Id.gt(after)),
        (Order::NewestFirst, Some(after)) => query.filter(Column::Id.lt(after)),
        (_, None) => query,
    };
    let (page_ids, rows) = match order {
        Order::OldestFirst => (query.order_by_asc(Column::Id), Actions::find().order_by_asc(Column::Id)),
        Order::NewestFirst => (query.order_by_desc(Column::Id), Actions::find().order_by_desc(Column::Id)),
    };
    let page_ids = page_ids.limit(limit).into_query();
    rows.filter(Column::Id.in_subquery(page_ids)).all(db).await?.into_iter().map(to_domain).collect()
}

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The action was recorded.
    Created,
    /// The action moved to a new status.
    StatusChanged,
}

/// One row of the event log with the action as it was right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionEvent {
    /// Position in the log; strictly increasing, visible in order.
    pub sequence: i64,
    /// What happened.
    pub kind: EventKind,
    /// When it happened.
    pub event_time: DateTime<Utc>,
    /// The action right after the event.
    pub action: ActionRecord,
}

/// A SQL text with positional parameters in the backend's own syntax (`?` on
/// SQLite, `$n` on PostgreSQL), for the few queries the query builder cannot
/// express readably (joins with snapshots, window functions).
pub(crate) struct RawSql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl RawSql {
    pub(crate) fn new(backend: DbBackend, text: &str) -> Self {
        Self { backend, text: text.to_owned(), values: Vec::new() }
    }

    /// The backend whose dialect this is.
    pub(crate) fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Appends literal SQL.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }

    pub(crate) fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// The sequence of the newest event, or 0 when the log is empty.
pub async fn latest_event_sequence(db: &impl ConnectionTrait) -> Result<i64> {
    let stmt = RawSql::new(db.get_database_backend(), "SELECT MAX(seq) AS seq FROM action_events").build();
    let row = db.query_one_raw(stmt).await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<i64>>("", "seq")?.unwrap_or(0),
        None => 0,
    })
}

/// The sequence of the first event recorded at or after `at`, if any.
pub async fn first_event_sequence_since(db: &impl ConnectionTrait, at: DateTime<Utc>) -> Result<Option<i64>> {
    // The events since `at` come from the creation-time index. A plain
    // `MIN(seq) ... WHERE created_at >= at` lets both databases walk the
    // log from its first event instead (a second for a day-old `at` over a
    // million events); a subquery they keep as it is (a no-op LIMIT or
    // OFFSET) takes the index.
    let backend = db.get_database_backend();
    let mut sql =
        RawSql::new(backend, "SELECT MIN(seq) AS seq FROM (SELECT seq FROM action_events WHERE created_at >= ");
    sql.bind(at).push(match backend {
        DbBackend::Postgres => " OFFSET 0) since",
        _ => " LIMIT -1) since",
    });
    let row = db.query_one_raw(sql.build()).await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<i64>>("", "seq")?,
        None => None,
    })
}

/// Events with `after < seq <= up_to` whose action matches `filter`, in
/// sequence order, at most `limit`. The action comes from `scaling_actions`
/// (its immutable part) overlaid with the event's snapshot of status,
/// decision, error and times.
pub async fn events_between(
    db: &impl ConnectionTrait,
    filter: &ActionFilter,
    after: i64,
    up_to: i64,
    limit: u64,
) -> Result<Vec<ActionEvent>> {
    let mut sql = RawSql::new(
        db.get_database_backend(),
        "SELECT a.*, e.seq AS ev_seq, e.kind AS ev_kind, e.status AS ev_status, e.created_at AS ev_time, \
         e.action_decided_by AS ev_decided_by, e.action_decision_comment AS ev_decision_comment, \
         e.action_error AS ev_error, e.action_decided_at AS ev_decided_at, \
         e.action_executed_at AS ev_executed_at, e.action_updated_at AS ev_updated_at, \
         e.action_resolution AS ev_resolution \
         FROM action_events e JOIN scaling_actions a ON a.id = e.action_id WHERE e.seq > ",
    );
    sql.bind(after).push(" AND e.seq <= ").bind(up_to);
    if let Some(account) = &filter.account_id {
        sql.push(" AND e.account_id = ").bind(account.clone());
    }
    if let Some(campaign) = &filter.campaign_id {
        sql.push(" AND e.campaign_id = ").bind(campaign.clone());
    }
    if let Some(action_type) = filter.action_type {
        sql.push(" AND e.action_type = ").bind(action_type.as_str());
    }
    if let Some(status) = filter.status {
        sql.push(" AND e.status = ").bind(status.as_str());
    }
    if let Some(from) = filter.created_from {
        sql.push(" AND a.created_at >= ").bind(from);
    }
    if let Some(before) = filter.created_before {
        sql.push(" AND a.created_at < ").bind(before);
    }
    sql.push(" ORDER BY e.seq LIMIT ").bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = db.query_all_raw(sql.build()).await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let model = scaling_action::Model::from_query_result(&row, "")?;
        let sequence: i64 = row.try_get("", "ev_seq")?;
        let corrupt = |what: &str| Error::Internal(format!("event {sequence} has a bad {what}"));
        let kind = match row.try_get::<String>("", "ev_kind")?.as_str() {
            EVENT_CREATED => EventKind::Created,
            EVENT_STATUS_CHANGED => EventKind::StatusChanged,
            _ => return Err(corrupt("kind")),
        };
        let status_after = row.try_get::<String>("", "ev_status")?;
        let status = ActionStatus::parse(&status_after).ok_or_else(|| corrupt("status"))?;
        let event_time: DateTime<Utc> = row.try_get("", "ev_time")?;
        let mut action = to_domain(model)?;
        action.status = status;
        action.action.status = status;
        action.decided_by = row.try_get("", "ev_decided_by")?;
        action.decision_comment = row.try_get("", "ev_decision_comment")?;
        action.error = row.try_get("", "ev_error")?;
        action.decided_at = row.try_get("", "ev_decided_at")?;
        action.executed_at = row.try_get("", "ev_executed_at")?;
        action.resolution = row.try_get("", "ev_resolution")?;
        action.updated_at = row.try_get::<Option<DateTime<Utc>>>("", "ev_updated_at")?.unwrap_or(event_time);
        events.push(ActionEvent { sequence, kind, event_time, action });
    }
    Ok(events)
}
