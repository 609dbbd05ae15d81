//! Scaling actions: what the decision table chose, and the states an action
//! moves through until it is applied or closed.

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

    /// Stable name used in storage (the brief's names).
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
    pub const ALL: [ActionStatus; 8] = [
        Self::PendingApproval,
        Self::Approved,
        Self::Executing,
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
            (PendingApproval, Approved | Rejected | Expired) | (Approved, Executing) | (Executing, Executed | Failed)
        )
    }
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
    }
}
