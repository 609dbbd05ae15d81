//! Scaling actions: what the decision table chose, and the states an action
//! moves through until it is applied or closed.

use crate::domain::performance::Performance;

/// What the decision table chose for a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionType {
    /// ROAS and CTR both above the aggressive thresholds.
    ScaleUpAggressive,
    /// ROAS above the scale-up threshold.
    ScaleUp,
    /// ROAS below the scale-down threshold.
    ScaleDown,
    /// ROAS below the pause threshold.
    Pause,
    /// Between the thresholds.
    Maintain,
    /// Too few impressions to decide.
    InsufficientData,
}

impl ActionType {
    /// Every type, in a fixed order.
    pub const ALL: [ActionType; 6] =
        [Self::ScaleUpAggressive, Self::ScaleUp, Self::ScaleDown, Self::Pause, Self::Maintain, Self::InsufficientData];

    /// Stable name used in storage (the decision table's names).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScaleUpAggressive => "scale_up_aggressive",
            Self::ScaleUp => "scale_up",
            Self::ScaleDown => "scale_down",
            Self::Pause => "pause",
            Self::Maintain => "maintain",
            Self::InsufficientData => "insufficient_data",
        }
    }

    /// Inverse of [`as_str`](Self::as_str).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// Whether this type changes the platform (a budget or a status).
    pub fn changes_budget(self) -> bool {
        !matches!(self, Self::Maintain | Self::InsufficientData)
    }
}

/// Where an action is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionStatus {
    /// Waiting for a human decision.
    PendingApproval,
    /// Approved and waiting for the executor.
    Approved,
    /// Claimed by one executor.
    Executing,
    /// Sent to the platform, but its outcome could not be confirmed (the
    /// answer timed out or the read-back failed). Never "failed": the write
    /// may have landed. The next cycle reads the platform and settles it
    /// before deciding the campaign again.
    Unconfirmed,
    /// Applied and confirmed.
    Executed,
    /// Could not be applied.
    Failed,
    /// Rejected by a person.
    Rejected,
    /// Waited too long for approval.
    Expired,
    /// Nothing to apply (no change, or held back by a limit).
    Skipped,
}

impl ActionStatus {
    /// Every status, in a fixed order.
    pub const ALL: [ActionStatus; 9] = [
        Self::PendingApproval,
        Self::Approved,
        Self::Executing,
        Self::Unconfirmed,
        Self::Executed,
        Self::Failed,
        Self::Rejected,
        Self::Expired,
        Self::Skipped,
    ];

    /// Stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Executing => "executing",
            Self::Unconfirmed => "unconfirmed",
            Self::Executed => "executed",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Skipped => "skipped",
        }
    }

    /// Inverse of [`as_str`](Self::as_str).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the action can never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Executed | Self::Failed | Self::Rejected | Self::Expired | Self::Skipped)
    }

    /// The state machine: which transitions are allowed. Storage applies each
    /// one as a conditional update on `from`, so only one caller can win it.
    pub fn can_move_to(self, to: ActionStatus) -> bool {
        use ActionStatus::*;
        matches!(
            (self, to),
            (PendingApproval, Approved | Rejected | Expired)
                | (Approved, Executing)
                | (Executing, Executed | Failed | Unconfirmed)
                | (Unconfirmed, Executed | Failed)
        )
    }
}

/// Which object holds a campaign's daily budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetLevel {
    /// Advantage campaign budget: on the campaign.
    Campaign,
    /// On the campaign's active ad sets.
    AdSet,
    /// No daily budget (lifetime budget or none).
    Unknown,
}

impl BudgetLevel {
    /// Stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Campaign => "campaign",
            Self::AdSet => "ad_set",
            Self::Unknown => "unknown",
        }
    }

    /// Inverse of [`as_str`](Self::as_str); unknown names map to `Unknown`.
    pub fn parse(raw: &str) -> Self {
        match raw {
            "campaign" => Self::Campaign,
            "ad_set" => Self::AdSet,
            _ => Self::Unknown,
        }
    }
}

/// A person's verdict on a pending action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Approve and execute at once.
    Approve,
    /// Close without any change.
    Reject,
}

/// The performance figures behind a decision, and the window they cover.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionMetrics {
    /// The figures over the window.
    pub figures: Performance,
    /// The window's name (see `MetricsWindow::as_str`).
    pub window: String,
    /// First day of the window, account time zone.
    pub window_start: String,
    /// Last day of the window (inclusive).
    pub window_end: String,
}

/// What the marginal-ROAS strategy believed of a campaign's ROAS at its
/// current budget when it decided: the history shows the estimate behind
/// each decision, not only the decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoasBelief {
    /// Posterior mean ROAS (lag-completed, pooled with the account).
    pub roas: f64,
    /// Lower bound of the credible interval.
    pub low: f64,
    /// Upper bound of the credible interval.
    pub high: f64,
    /// The interval's credible level (0.8 = 80%).
    pub credible_level: f64,
    /// Share of the spend's revenue not reported yet when it decided, 0-1.
    pub unreported_share: f64,
}

/// A decision about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    /// Ad account.
    pub account_id: String,
    /// Campaign.
    pub campaign_id: String,
    /// Campaign name at decision time.
    pub campaign_name: String,
    /// The rule that decided.
    pub rule_id: Option<i64>,
    /// The cycle that decided, if any.
    pub cycle_id: Option<i64>,
    /// What the table chose.
    pub action_type: ActionType,
    /// The first status: pending approval, approved or skipped.
    pub status: ActionStatus,
    /// Currency of the budgets.
    pub currency: String,
    /// Which object holds the budget.
    pub budget_level: BudgetLevel,
    /// Budget before, minor units.
    pub old_budget_minor: i64,
    /// Budget after, minor units.
    pub new_budget_minor: i64,
    /// The figures that triggered it.
    pub metrics: ActionMetrics,
    /// Why.
    pub reason: String,
    /// Whether a person must decide.
    pub requires_approval: bool,
    /// What the marginal-ROAS strategy believed (`None` for the threshold
    /// table, or without data).
    pub belief: Option<RoasBelief>,
}

/// A recorded action: the audit trail's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    /// Database id.
    pub id: i64,
    /// Everything decided.
    pub action: NewAction,
    /// Where it is now.
    pub status: ActionStatus,
    /// Who decided (approve/reject).
    pub decided_by: Option<String>,
    /// Their comment.
    pub decision_comment: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was recorded.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When a person or the expiry decided.
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the change was confirmed on the platform.
    pub executed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// How an unconfirmed or interrupted execution was settled (what the
    /// platform showed when it was read), or which ad sets took a partly
    /// applied change.
    pub resolution: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in ActionType::ALL {
            assert_eq!(ActionType::parse(t.as_str()), Some(t));
        }
        for s in ActionStatus::ALL {
            assert_eq!(ActionStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn final_states_have_no_way_out_and_only_forward_moves_exist() {
        for from in ActionStatus::ALL {
            for to in ActionStatus::ALL {
                if from.is_final() {
                    assert!(!from.can_move_to(to), "{from:?} -> {to:?}");
                }
                if from.can_move_to(to) {
                    assert!(!to.can_move_to(from), "cycle {from:?} <-> {to:?}");
                }
            }
        }
        assert!(ActionStatus::PendingApproval.can_move_to(ActionStatus::Approved));
        assert!(!ActionStatus::PendingApproval.can_move_to(ActionStatus::Executing));
        assert!(!ActionStatus::Approved.can_move_to(ActionStatus::Executed));
        // An unconfirmed write is settled by a read, never sent again.
        assert!(ActionStatus::Executing.can_move_to(ActionStatus::Unconfirmed));
        assert!(!ActionStatus::Unconfirmed.can_move_to(ActionStatus::Executing));
        assert!(!ActionStatus::Unconfirmed.is_final());
    }
}
