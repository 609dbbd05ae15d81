//! The daily digest of actions waiting for approval: at the configured local
//! hour the webhook gets one message listing them (oldest first), each with
//! the commands that approve or reject it. With several replicas exactly one
//! sends it: the day's digest is a slot claimed in the `leases` table.
use chrono::{DateTime, TimeDelta, Utc};

use super::AppState;
use crate::domain::action::ActionStatus;
use crate::error::Result;
use crate::persistence::{actions, leases};

/// Name prefix of the digest slots in the `leases` table.
const DIGEST_SLOT: &str = "approval-digest@";

/// Actions listed in one digest (the message counts the rest).
const DIGEST_PAGE: u64 = 500;

/// What one digest run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestOutcome {
    /// Sent, listing this many waiting actions.
    Sent(usize),
    /// Nothing waits for approval: nothing sent.
    NothingWaiting,
    /// This slot's digest was already claimed (by this or another replica).
    AlreadySent,
    /// No webhook is configured.
    Disabled,
}

/// Sends the digest for the day `now` falls on in the digest's time zone
/// (or UTC without a schedule), at most once per day across replicas.
pub async fn send_approval_digest(state: &AppState, now: DateTime<Utc>) -> Result<DigestOutcome> {
    if !state.alerts.is_enabled() {
        return Ok(DigestOutcome::Disabled);
    }
    let zone = state.engine.approval_digest.map(|d| d.time_zone).unwrap_or(chrono_tz::UTC);
    let day = now.with_timezone(&zone).date_naive();
    let slot = format!("{DIGEST_SLOT}{day}");
    let claimed =
        leases::claim_slot(&state.db, DIGEST_SLOT, &slot, &super::cycle::replica_name(), now + TimeDelta::days(1))
            .await?;
    if !claimed {
        return Ok(DigestOutcome::AlreadySent);
    }
    let pending = actions::in_status(&state.db, ActionStatus::PendingApproval, None, None, DIGEST_PAGE).await?;
    if pending.is_empty() {
        return Ok(DigestOutcome::NothingWaiting);
    }
    // The total beyond the page is worth a count query only when the page is full.
    let total = if pending.len() as u64 == DIGEST_PAGE {
        let (count, _oldest) = actions::pending_summary(&state.db).await?;
        usize::try_from(count).unwrap_or(pending.len()).max(pending.len())
    } else {
        pending.len()
    };
    state.alerts.approval_digest(&pending, total, state.engine.approval_ttl, now);
    Ok(DigestOutcome::Sent(pending.len()))
}
