//! Simulation: the learning phase as delivery sees it. Delivery compares each
//! hour's budget with the last one it delivered, so an edit counts whichever
//! policy made it; an edit that moves the budget more than the threshold
//! from where it stood at the start of the window (edits inside the window
//! add up) starts a learning phase, during which revenue per unit of spend
//! is lower by the market's efficiency loss.
use std::collections::VecDeque;

use super::params::LearningParams;

/// One campaign's learning state under one policy.
#[derive(Debug, Clone)]
pub(crate) struct Learning {
    // The budget of the last hour delivered.
    delivered_budget: i64,
    // Edits inside the window: hour and the budget before the edit.
    edits: VecDeque<(usize, i64)>,
    // The first hour after the current learning phase.
    until: usize,
}

impl Learning {
    /// A campaign that starts, settled, at `budget_minor`.
    pub(crate) fn new(budget_minor: i64) -> Self {
        Self { delivered_budget: budget_minor, edits: VecDeque::new(), until: 0 }
    }

    /// Delivery at hour `t` with daily budget `budget_minor`: registers an
    /// edit when the budget differs from the last hour's, and returns the
    /// share of revenue per unit of spend the campaign keeps this hour.
    pub(crate) fn deliver(&mut self, t: usize, budget_minor: i64, params: &LearningParams) -> f64 {
        if params.efficiency_loss <= 0.0 {
            return 1.0;
        }
        if budget_minor != self.delivered_budget {
            let old = std::mem::replace(&mut self.delivered_budget, budget_minor);
            while self.edits.front().is_some_and(|(hour, _)| hour + params.window_hours <= t) {
                self.edits.pop_front();
            }
            self.edits.push_back((t, old));
            let reference = self.edits.front().map_or(old, |(_, b)| *b);
            if reference <= 0 || (budget_minor - reference).abs() as f64 > params.edit_threshold * reference as f64 {
                self.until = t + params.duration_hours;
                self.edits.clear();
            }
        }
        if t < self.until { 1.0 - params.efficiency_loss } else { 1.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulation::params::MarketParams;

    fn params() -> LearningParams {
        LearningParams { efficiency_loss: 0.2, ..MarketParams::harsh().learning }
    }

    #[test]
    fn a_large_edit_lowers_the_next_hours_efficiency_for_the_duration() {
        let p = params();
        let mut l = Learning::new(10_000);
        assert_eq!(l.deliver(0, 10_000, &p), 1.0);
        // +50%: learning for 72 hours from the edit.
        assert_eq!(l.deliver(5, 15_000, &p), 0.8);
        assert!((6..77).all(|t| l.deliver(t, 15_000, &p) == 0.8));
        assert_eq!(l.deliver(77, 15_000, &p), 1.0);
    }

    #[test]
    fn small_edits_cost_nothing_unless_they_add_up_inside_the_window() {
        let p = params();
        let mut l = Learning::new(10_000);
        assert_eq!(l.deliver(1, 11_000, &p), 1.0, "+10%");
        assert_eq!(l.deliver(30, 12_000, &p), 1.0, "+9% a day later");
        // Two more small steps inside 24 hours: +10% then +10% = +21%.
        assert_eq!(l.deliver(40, 13_200, &p), 1.0);
        assert_eq!(l.deliver(48, 14_520, &p), 0.8, "{l:?}");
        // A cut counts as much as a raise.
        let mut l = Learning::new(10_000);
        assert_eq!(l.deliver(3, 7_000, &p), 0.8);
    }

    #[test]
    fn without_an_efficiency_loss_there_is_no_learning_phase() {
        let p = MarketParams::realistic().learning;
        let mut l = Learning::new(10_000);
        assert!((0..100).all(|t| l.deliver(t, 10_000 * (1 + t as i64 % 3), &p) == 1.0));
    }
}
