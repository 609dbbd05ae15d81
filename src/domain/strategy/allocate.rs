//! The decision: per account, budgets move toward equal marginal return
//! inside the account cap (water-filling), in small steps, only when the
//! evidence says the move pays.
//!
//! Revenue is taken as concave in budget, `revenue ~ budget^b`, so marginal
//! ROAS is `b x ROAS`. The profit-maximising budget for a campaign is
//! `D x (b x ROAS / lambda)^(1 / (1 - b))`, where `lambda` is 1 unless the
//! account cap binds, then the return at which the targets sum to the cap.
//! The elasticity `b` is not known: targets use the middle of the rule's band,
//! and a **no-change band** holds a campaign unless the evidence clears it.
//! While the account has room under its cap, a move changes what the account
//! spends, so it must pay under every plausible elasticity: grow when even
//! the low elasticity on the lower credible bound pays, cut when even the high
//! elasticity on the upper bound does not. Once the account's budgets fill the
//! cap, budget one campaign gains another loses: the choice is between
//! campaigns, and an elasticity common to them cancels, so a campaign gives
//! way when its upper bound is below the ROAS level at which the targets fill
//! the cap. Growth always needs the low elasticity to pay as well.
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

/// The budget at which a campaign with `roas` now reaches `level` under
/// elasticity `b` (unclamped), minor units as f64: profit-maximising when
/// `level` is 1 / b, the water level when the cap binds.
fn target(budget: f64, roas: f64, level: f64, b: f64) -> f64 {
    if roas <= 0.0 || level <= 0.0 {
        return 0.0;
    }
    budget * (roas / level).powf(1.0 / (1.0 - b))
}

/// The band's edges in ROAS units for one account: grow a campaign when its
/// lower bound is above `grow`, cut it when its upper bound is below `cut`;
/// `goal` is the ROAS the targets level every campaign to.
#[derive(Debug, Clone, Copy)]
struct Levels {
    grow: f64,
    cut: f64,
    goal: f64,
    /// Whether the account's active budgets already fill the cap.
    at_cap: bool,
}

/// Plans one account under `rule` (its `marginal` settings, min/max budget,
/// account cap and pause threshold).
pub fn plan_account(rule: &RuleSettings, campaigns: &[PlanInput]) -> AccountPlan {
    let s = &rule.marginal;
    let b = s.elasticity_mid();
    let (b_lo, b_hi) = (s.elasticity_low, s.elasticity_high);
    let (min, max) = (rule.min_daily_budget_minor as f64, rule.max_daily_budget_minor as f64);
    let usable = |c: &PlanInput| c.active && c.budget_minor > 0 && c.impressions >= rule.min_impressions;
    let clamp = |v: f64| v.clamp(min, max.max(min));

    // Water-filling on ROAS: the active total if every usable campaign moved
    // to the budget where its ROAS is `level` (marginal b x level).
    let total_at = |level: f64| -> f64 {
        campaigns
            .iter()
            .filter(|c| c.active)
            .map(|c| match (usable(c), c.belief) {
                (true, Some(belief)) => clamp(target(c.budget_minor as f64, belief.roas, level, b)),
                _ => c.budget_minor.max(0) as f64,
            })
            .sum()
    };
    let active: f64 = campaigns.iter().filter(|c| c.active).map(|c| c.budget_minor.max(0) as f64).sum();
    // The cap limits what the strategy adds, as it does for the threshold
    // table: an account whose budgets are already above it (set by hand, or a
    // cap lowered since) is not cut down to it. It is levelled within its
    // current total, and only a campaign that loses money at the margin is
    // cut, since the step refuses every increase there and money taken from
    // a weaker campaign could go nowhere.
    let over_cap = active > rule.max_daily_spend_limit_minor as f64;
    let cap = (rule.max_daily_spend_limit_minor as f64).max(active);
    // The level at which the targets fill the cap, searched from the lowest
    // level any decision uses (below it the cap cannot change a decision).
    let floor = 1.0 / b_hi.max(b);
    let mut cap_level = 0.0;
    if total_at(floor) > cap {
        let (mut lo, mut hi) = (floor, 2.0 * floor);
        while total_at(hi) > cap && hi < 1e6 {
            lo = hi;
            hi *= 2.0;
        }
        for _ in 0..50 {
            let mid = (lo + hi) / 2.0;
            if total_at(mid) > cap { lo = mid } else { hi = mid }
        }
        cap_level = hi;
    }
    // At the cap when less room is left than a minimum move of the whole
    // account: a campaign's growth must then be paid for by another's cut.
    let at_cap = !over_cap && cap_level > 0.0 && active >= cap * (1.0 - s.min_move_percent / 100.0);
    let levels = Levels {
        grow: cap_level.max(1.0 / b_lo),
        cut: if at_cap { cap_level.max(1.0 / b_hi) } else { 1.0 / b_hi },
        goal: cap_level.max(1.0 / b),
        at_cap,
    };
    let lambda = (b * cap_level).max(1.0);

    let plans: Vec<CampaignPlan> =
        campaigns.iter().map(|c| plan_campaign(rule, c, &levels, usable(c), &clamp)).collect();
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
    levels: &Levels,
    usable: bool,
    clamp: &dyn Fn(f64) -> f64,
) -> CampaignPlan {
    let s = &rule.marginal;
    let (b_lo, b) = (s.elasticity_low, s.elasticity_mid());
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
    let upper = if belief.low > 0.0 { marginal * levels.grow / belief.low } else { f64::INFINITY };
    let lower = if belief.high > 0.0 { marginal * levels.cut / belief.high } else { 0.0 };
    let goal = clamp(target(d as f64, belief.roas, levels.goal, b));
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
        let why = if levels.at_cap {
            format!(
                "account budgets fill the cap: a campaign grows above ROAS {:.2}x and gives way below {:.2}x",
                levels.grow, levels.cut
            )
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
