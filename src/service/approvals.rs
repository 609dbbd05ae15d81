//! Approval use cases: the queue of pending actions, a person's decision on
//! one of them, and the expiry of those nobody decided in time. Every change
//! is a conditional transition out of `pending_approval`, so of two racing
//! decisions (or a decision racing the expiry) exactly one wins.
use chrono::{TimeDelta, Utc};

use super::{AppState, executor};
use crate::domain::action::{ActionRecord, ActionStatus, Verdict};
use crate::error::{Error, Result};
use crate::persistence::actions::{self, TransitionFields};
use crate::persistence::history::{self, ActionFilter, Order};

/// Pending actions expired per transaction.
const EXPIRY_BATCH: u64 = 500;

/// A person's validated review of a pending action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The pending action.
    pub action_id: i64,
    /// Approve or reject.
    pub verdict: Verdict,
    /// Who decides.
    pub decided_by: String,
    /// Their comment, if any.
    pub comment: Option<String>,
}

/// A page of pending actions (oldest first) after `after_id`, optionally of
/// one account, and whether more remain.
pub async fn list_pending(
    state: &AppState,
    account_id: Option<&str>,
    after_id: Option<i64>,
    page_size: u64,
) -> Result<(Vec<ActionRecord>, bool)> {
    let filter = ActionFilter {
        account_id: account_id.map(str::to_owned),
        status: Some(ActionStatus::PendingApproval),
        ..Default::default()
    };
    let mut page = history::list_actions(&state.db, &filter, after_id, Order::OldestFirst, page_size + 1).await?;
    let more = page.len() as u64 > page_size;
    page.truncate(page_size as usize);
    Ok((page, more))
}

/// Applies a decision: `NotFound` for an unknown action, `FailedPrecondition`
/// when it is no longer pending. An approval executes the action at once and
/// returns its final record; if the executor cannot run now (the platform is
/// unreachable), the approval stands and the action is returned `approved`,
/// for the next cycle to execute.
pub async fn decide(state: &AppState, review: Review) -> Result<ActionRecord> {
    let id = review.action_id;
    let to = match review.verdict {
        Verdict::Approve => ActionStatus::Approved,
        Verdict::Reject => ActionStatus::Rejected,
    };
    let fields = TransitionFields {
        decided_by: Some(review.decided_by.clone()),
        decision_comment: review.comment.clone(),
        decided: true,
        ..Default::default()
    };
    let moved = actions::transition_many(&state.db, &[id], ActionStatus::PendingApproval, to, &fields, None).await?;
    let Some(decided) = moved.into_iter().next() else {
        let current = actions::get(&state.db, id).await?;
        return Err(Error::FailedPrecondition(format!(
            "action {id} is {}, not pending approval",
            current.status.as_str()
        )));
    };
    state.events.published();
    state.metrics.observe_actions(std::slice::from_ref(&decided));
    tracing::info!(action_id = id, status = to.as_str(), decided_by = %review.decided_by, "action decided");
    if review.verdict == Verdict::Reject {
        return Ok(decided);
    }

    // The executor reports its outcomes (executed or failed) to the alerts
    // and the metrics itself.
    match executor::execute_approved(state, &[id]).await {
        Ok(finals) => match finals.into_iter().find(|r| r.id == id) {
            Some(record) => Ok(record),
            None => actions::get(&state.db, id).await,
        },
        Err(e) => {
            tracing::warn!(action_id = id, error = %e, "approved action not executed now; the next cycle executes it");
            actions::get(&state.db, id).await
        }
    }
}

/// Expires every pending action older than the approval TTL (its metrics are
/// stale by then): conditional, in batches, never executed. Returns the
/// actions it expired.
pub async fn expire_stale(state: &AppState) -> Result<Vec<ActionRecord>> {
    let ttl = TimeDelta::from_std(state.engine.approval_ttl)
        .map_err(|_| Error::Internal("approval TTL out of range".into()))?;
    let cutoff = Utc::now() - ttl;
    let fields = TransitionFields {
        decision_comment: Some(format!(
            "Expired: no decision within {} hours; the metrics behind it are stale.",
            ttl.num_hours()
        )),
        decided: true,
        ..Default::default()
    };
    let mut expired = Vec::new();
    loop {
        let stale =
            actions::in_status(&state.db, ActionStatus::PendingApproval, None, Some(cutoff), EXPIRY_BATCH).await?;
        if stale.is_empty() {
            break;
        }
        let ids: Vec<i64> = stale.iter().map(|r| r.id).collect();
        // Actions decided meanwhile are simply not moved.
        let moved = actions::transition_many(
            &state.db,
            &ids,
            ActionStatus::PendingApproval,
            ActionStatus::Expired,
            &fields,
            None,
        )
        .await?;
        if !moved.is_empty() {
            state.events.published();
            state.metrics.observe_actions(&moved);
        }
        expired.extend(moved);
        if (stale.len() as u64) < EXPIRY_BATCH {
            break;
        }
    }
    if !expired.is_empty() {
        tracing::info!(expired = expired.len(), "stale pending actions expired");
    }
    Ok(expired)
}
