//! The decision: per account, budgets move toward equal marginal return
//! inside the account cap (water-filling), in small steps, only when the
//! evidence says the move pays under every plausible elasticity.
//!
//! Revenue is taken as concave in budget, `revenue ~ budget^b`, so marginal
//! ROAS is `b x ROAS`. The profit-maximising budget for a campaign is
//! `D x (b x ROAS / lambda)^(1 / (1 - b))`, where `lambda` is 1 unless the
//! account cap binds, then the return at which the targets sum to the cap.
//! The elasticity `b` is not known: targets use the middle of the rule's band,
//! and a **no-change band** holds a campaign unless even the low elasticity on
//! the lower credible bound pays (grow) or even the high elasticity on the
//! upper bound does not (cut).
use crate::domain::action::ActionType;
use crate::domain::decision::Proposal;
use crate::domain::money::{format_minor, minor_unit_offset};
use crate::domain::rule::RuleSettings;

use super::estimate::Belief;

/// One campaign as the allocation sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanInput {
    /// Daily budget now, minor units.
    pub budget_minor: i64,
    /// Whether it delivers (only active budgets count toward the cap).
    pub active: bool,
    /// What the estimator believes; `None` without data.
    pub belief: Option<Belief>,
    /// Impressions over the days the estimator used (the rule's
    /// `min_impressions` applies to them).
    pub impressions: i64,
}

/// The strategy's verdict for one campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignPlan {
    /// What to propose to the safety step.
    pub proposal: Proposal,
    /// Marginal ROAS at the middle elasticity (0 without data).
    pub marginal_roas: f64,
}

/// The plan for every campaign of an account and the order to apply it in.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountPlan {
    /// One per input, same order.
    pub plans: Vec<CampaignPlan>,
    /// Input indices in the order to apply: decreases and pauses first (they
    /// free room under the cap), then increases from the highest marginal
    /// return down, then the rest.
    pub order: Vec<usize>,
    /// The return every campaign is levelled to (1 unless the cap binds).
    pub lambda: f64,
}

/// Profit-maximising budget at `lambda` (unclamped), minor units as f64.
fn target(budget: f64, marginal: f64, lambda: f64, b: f64) -> f64 {
    if marginal <= 0.0 {
        return 0.0;
    }
    budget * (marginal / lambda).powf(1.0 / (1.0 - b))
}

/// Plans one account under `rule` (its `marginal` settings, min/max budget,
/// account cap and pause threshold).
pub fn plan_account(rule: &RuleSettings, campaigns: &[PlanInput]) -> AccountPlan {
    let s = &rule.marginal;
    let b = s.elasticity_mid();
    let (min, max) = (rule.min_daily_budget_minor as f64, rule.max_daily_budget_minor as f64);
    let usable = |c: &PlanInput| c.active && c.budget_minor > 0 && c.impressions >= rule.min_impressions;
    let clamp = |v: f64| v.clamp(min, max.max(min));

    // Water-filling: the lambda at which the targets fit the cap.
    let total_at = |lambda: f64| -> f64 {
        campaigns
            .iter()
            .filter(|c| c.active)
            .map(|c| match (usable(c), c.belief) {
                (true, Some(belief)) => clamp(target(c.budget_minor as f64, b * belief.roas, lambda, b)),
                _ => c.budget_minor.max(0) as f64,
            })
            .sum()
    };
    let cap = rule.max_daily_spend_limit_minor as f64;
    let mut lambda = 1.0;
    if total_at(1.0) > cap {
        let (mut lo, mut hi) = (1.0_f64, 2.0_f64);
        while total_at(hi) > cap && hi < 1e6 {
            lo = hi;
            hi *= 2.0;
        }
        for _ in 0..50 {
            let mid = (lo + hi) / 2.0;
            if total_at(mid) > cap { lo = mid } else { hi = mid }
        }
        lambda = hi;
    }

    let plans: Vec<CampaignPlan> =
        campaigns.iter().map(|c| plan_campaign(rule, c, lambda, usable(c), &clamp)).collect();
    let mut order: Vec<usize> = (0..plans.len()).collect();
    let rank = |p: &CampaignPlan| match p.proposal.action {
        ActionType::Pause | ActionType::ScaleDown => 0,
        ActionType::ScaleUp | ActionType::ScaleUpAggressive => 1,
        _ => 2,
    };
    order.sort_by(|&i, &j| {
        let (a, c) = (&plans[i], &plans[j]);
        rank(a).cmp(&rank(c)).then(c.marginal_roas.total_cmp(&a.marginal_roas)).then(i.cmp(&j))
    });
    AccountPlan { plans, order, lambda }
}

fn plan_campaign(
    rule: &RuleSettings,
    c: &PlanInput,
    lambda: f64,
    usable: bool,
    clamp: &dyn Fn(f64) -> f64,
) -> CampaignPlan {
    let s = &rule.marginal;
    let (b_lo, b_hi, b) = (s.elasticity_low, s.elasticity_high, s.elasticity_mid());
    let money = |v: i64| format_minor(v, &rule.currency);
    let d = c.budget_minor;
    let hold = |action: ActionType, reason: String, marginal: f64| CampaignPlan {
        proposal: Proposal { action, target_budget_minor: d, reason },
        marginal_roas: marginal,
    };
    let Some(belief) = c.belief.filter(|_| usable) else {
        let reason = if c.belief.is_none() {
            "Insufficient data: no spend reported in the estimator's days".to_owned()
        } else if c.impressions < rule.min_impressions {
            format!("Insufficient data: {} impressions (<{} needed)", c.impressions, rule.min_impressions)
        } else {
            "Insufficient data: no daily budget to scale".to_owned()
        };
        return hold(ActionType::InsufficientData, reason, 0.0);
    };
    let marginal = b * belief.roas;
    let figures = format!(
        "ROAS {:.2}x at {}/day, {} purchases in {} days, +{:.0}% still expected from reporting lag, {:.0}% interval {:.2}-{:.2}x",
        belief.roas,
        money(d),
        belief.purchases,
        belief.days,
        100.0 * belief.lag_uplift(),
        100.0 * belief.level,
        belief.low,
        belief.high
    );

    // Pause only when even the best budget the rule allows loses: ROAS is
    // highest at the minimum budget, by (D / min)^(1 - b), largest for the
    // low elasticity; the upper bound at the pause evidence level must stay
    // below the pause threshold there.
    let min = rule.min_daily_budget_minor.max(1) as f64;
    let best_case = belief.pause_high * (d as f64 / min).max(1.0).powf(1.0 - b_lo);
    if best_case < rule.roas_pause {
        let reason = format!(
            "Strong evidence of loss: ROAS at most {:.2}x even at the min daily budget {} ({:.0}% upper bound; {figures}) - pausing",
            best_case,
            money(rule.min_daily_budget_minor),
            100.0 * s.pause_evidence
        );
        return CampaignPlan {
            proposal: Proposal { action: ActionType::Pause, target_budget_minor: 0, reason },
            marginal_roas: marginal,
        };
    }

    // The band on marginal ROAS: grow above `upper`, cut below `lower`.
    let upper = if belief.low > 0.0 { lambda * marginal / (b_lo * belief.low) } else { f64::INFINITY };
    let lower = if belief.high > 0.0 { lambda * marginal / (b_hi * belief.high) } else { 0.0 };
    let goal = clamp(target(d as f64, marginal, lambda, b));
    let step = s.max_step_percent / 100.0;
    let unit = minor_unit_offset(&rule.currency) as f64;
    let (action, new) = if marginal > upper && goal > d as f64 {
        // Whole currency units, rounded toward the old budget: never more than the step.
        let wanted = goal.min(d as f64 * (1.0 + step));
        (ActionType::ScaleUp, ((wanted / unit).floor() * unit) as i64)
    } else if marginal < lower && goal < d as f64 {
        let wanted = goal.max(d as f64 * (1.0 - step));
        (ActionType::ScaleDown, ((wanted / unit).ceil() * unit) as i64)
    } else {
        let why = if lambda > 1.0 {
            format!("account cap binds, every campaign levelled to marginal {lambda:.2}x")
        } else {
            "no move pays under every plausible elasticity".to_owned()
        };
        let reason = format!(
            "Hold: marginal ROAS {marginal:.2}x inside the no-change band {lower:.2}-{upper:.2}x ({figures}); {why}"
        );
        return hold(ActionType::Maintain, reason, marginal);
    };
    let change = (new - d) as f64 / d as f64;
    if change.abs() * 100.0 < s.min_move_percent || new == d {
        let reason = format!(
            "Hold: marginal ROAS {marginal:.2}x wants {}{:.1}%, below the minimum move of {}% ({figures})",
            if change >= 0.0 { "+" } else { "" },
            100.0 * change,
            s.min_move_percent
        );
        return hold(ActionType::Maintain, reason, marginal);
    }
    let verb = if action == ActionType::ScaleUp { "above" } else { "below" };
    let edge = if action == ActionType::ScaleUp { upper } else { lower };
    let reason = format!(
        "Marginal ROAS {marginal:.2}x ({verb} the no-change band edge {edge:.2}x; {figures}) -> {}{:.0}% to {}",
        if change >= 0.0 { "+" } else { "" },
        100.0 * change,
        money(new)
    );
    CampaignPlan { proposal: Proposal { action, target_budget_minor: new, reason }, marginal_roas: marginal }
}
