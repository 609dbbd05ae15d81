//! Domain: the per-campaign decision step shared by the live engine, the
//! replay and the simulation, so that there is one implementation. Pure.
use chrono::{DateTime, Utc};

use crate::domain::action::ActionStatus;
use crate::domain::decision::{self, AccountContext, CampaignInputs, Decision, Outcome, Proposal};
use crate::domain::performance::Performance;
use crate::domain::rule::RuleSettings;

/// Everything the per-campaign decision step needs besides the rule: what the
/// engine reads from the platform and the database about one campaign at one
/// moment (or what a replay or a simulation knows at that moment).
#[derive(Debug, Clone, PartialEq)]
pub struct StepInputs {
    /// Performance over the rule's metrics window.
    pub metrics: Performance,
    /// The campaign's daily budget; `None` when it has none (lifetime budget).
    pub daily_budget_minor: Option<i64>,
    /// Whether the campaign is delivering.
    pub is_active: bool,
    /// When its last budget change was executed (the cooldown's input).
    pub last_budget_change_at: Option<DateTime<Utc>>,
    /// What it spent so far today (account time zone): the floor of a scale-down.
    pub spent_today_minor: i64,
    /// An open action (id, status) of the campaign, which holds any change.
    pub open_action: Option<(i64, ActionStatus)>,
}

/// The per-campaign decision step of the threshold strategy: the pure
/// decision table ([`decision::decide`]) and the guards of
/// [`decide_proposed_step`].
pub fn decide_step(
    rule: &RuleSettings,
    step: &StepInputs,
    currency: &str,
    now: DateTime<Utc>,
    active_total: &mut Option<i64>,
) -> Decision {
    decide_proposed_step(rule, step, None, currency, now, active_total)
}

/// The per-campaign decision step: the decision table's verdict, or another
/// strategy's `proposal` when given, through the rule's safety limits
/// ([`decision::decide_with`]), then Meta's spend-so-far floor, the holds for
/// campaigns without a daily budget or with an open action, and the
/// reservation of the change in the account's running total of active budgets
/// (`active_total`), so that later campaigns of the same pass see it (pending
/// approvals reserve too). Pure: no I/O.
pub fn decide_proposed_step(
    rule: &RuleSettings,
    step: &StepInputs,
    proposal: Option<&Proposal>,
    currency: &str,
    now: DateTime<Utc>,
    active_total: &mut Option<i64>,
) -> Decision {
    let inputs = CampaignInputs {
        metrics: step.metrics,
        current_budget_minor: step.daily_budget_minor.unwrap_or(0),
        is_active: step.is_active,
        last_budget_change_at: step.last_budget_change_at,
    };
    let context = AccountContext { currency: currency.to_owned(), active_budget_total_minor: *active_total, now };
    let mut decision = decision::decide_with(rule, &inputs, &context, proposal);
    // Meta refuses a budget below what was spent today.
    decision = decision::floor_at_spend_so_far(decision, step.spent_today_minor, currency);
    if step.daily_budget_minor.is_none() && decision.outcome != Outcome::Hold {
        hold(&mut decision, "the campaign has no daily budget (lifetime budget); it is not scaled");
    }
    if let Some((open_id, open_status)) = step.open_action
        && decision.outcome != Outcome::Hold
    {
        hold(&mut decision, &format!("action #{open_id} for this campaign is still {}", open_status.as_str()));
    }
    if decision.outcome != Outcome::Hold && step.is_active {
        *active_total = active_total.and_then(|t| t.checked_add(decision.change_minor()));
    }
    decision
}

fn hold(decision: &mut Decision, why: &str) {
    decision.outcome = Outcome::Hold;
    decision.new_budget_minor = decision.old_budget_minor;
    decision.reason = format!("{}; held: {why}", decision.reason);
}
