//! Domain: the scaling decision. The decision table, exact budget arithmetic
//! and the safety limits, applied in one fixed, fail-closed order. No I/O.
//!
//! Order of [`decide`]: inactive campaign -> decision table -> invalid rule,
//! negative budget, currency mismatch -> (pause: done) -> cooldown ->
//! multiplier -> min/max clamp -> account-wide cap -> approval routing.
use std::cmp::Ordering;
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::action::ActionType;
use crate::domain::money::format_minor;
use crate::domain::performance::Performance;
use crate::domain::rule::RuleSettings;

/// What [`decide`] needs to know about one campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignInputs {
    /// Performance over the rule's window.
    pub metrics: Performance,
    /// The campaign's daily budget now, minor units.
    pub current_budget_minor: i64,
    /// Whether the campaign is delivering (status ACTIVE).
    pub is_active: bool,
    /// When the last *executed* budget change of this campaign happened.
    pub last_budget_change_at: Option<DateTime<Utc>>,
}

/// What [`decide`] needs to know about the campaign's ad account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountContext {
    /// The ad account's currency (ISO 4217).
    pub currency: String,
    /// Sum of the daily budgets of the account's active campaigns now,
    /// including this one; `None` when it could not be read.
    pub active_budget_total_minor: Option<i64>,
    /// The decision time.
    pub now: DateTime<Utc>,
}

/// What happens to a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Apply it now.
    Execute,
    /// Queue it for a human.
    NeedsApproval,
    /// Nothing to apply (recorded as skipped); the reason says why.
    Hold,
}

/// A safety limit that changed the amount of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The rule's lowest daily budget.
    MinDailyBudget,
    /// The rule's highest daily budget.
    MaxDailyBudget,
    /// The rule's cap on the sum of the account's active daily budgets.
    AccountSpendCap,
    /// Meta's floor: today's spend so far plus a 15-minute buffer.
    SpendSoFar,
}

impl LimitKind {
    /// Stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MinDailyBudget => "min_daily_budget",
            Self::MaxDailyBudget => "max_daily_budget",
            Self::AccountSpendCap => "account_spend_cap",
            Self::SpendSoFar => "spend_so_far",
        }
    }
}

/// One limit applied to a decision, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitApplied {
    /// Which limit.
    pub kind: LimitKind,
    /// The limit's value, minor units.
    pub limit_minor: i64,
    /// The new budget before the limit, minor units.
    pub before_minor: i64,
    /// The new budget after it (the old budget when the limit held the change).
    pub after_minor: i64,
}

/// The engine's verdict for one campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What the decision table chose (kept even when a guard holds it).
    pub action_type: ActionType,
    /// Daily budget now, minor units.
    pub old_budget_minor: i64,
    /// Daily budget after the change: 0 for a pause, `old` for a hold.
    pub new_budget_minor: i64,
    /// Execute, queue for approval, or hold.
    pub outcome: Outcome,
    /// Why, in the decision table's words, with every limit or hold appended.
    pub reason: String,
    /// The clamps and caps that changed the amount, in the order applied.
    pub limits_applied: Vec<LimitApplied>,
}

impl Decision {
    /// new - old, minor units (saturating).
    pub fn change_minor(&self) -> i64 {
        self.new_budget_minor.saturating_sub(self.old_budget_minor)
    }
}

/// Why the account-wide cap refuses an increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapViolation {
    /// The active budget total could not be read.
    TotalUnknown,
    /// The total is negative, or below this campaign's own budget (so it
    /// cannot include it), or the budget is negative: the check is meaningless.
    Inconsistent { total_minor: i64, old_budget_minor: i64 },
    /// The increase does not fit. `headroom_minor` (cap - total) is how much
    /// the campaign may still grow; at most 0 means nothing fits.
    Exceeds { cap_minor: i64, total_minor: i64, headroom_minor: i64 },
}

impl CapViolation {
    /// The sentence recorded in a reason; amounts in `currency`.
    pub fn describe(&self, currency: &str) -> String {
        let money = |v| format_minor(v, currency);
        match *self {
            Self::TotalUnknown => "account budget total could not be read; refusing unchecked increase".to_owned(),
            Self::Inconsistent { total_minor, old_budget_minor } => format!(
                "account budget total {} does not include this campaign's budget {}; \
                 refusing unchecked increase",
                money(total_minor),
                money(old_budget_minor)
            ),
            Self::Exceeds { cap_minor, total_minor, .. } => format!(
                "account daily spend limit {} leaves no room (active budgets now {})",
                money(cap_minor),
                money(total_minor)
            ),
        }
    }
}

/// How much the account's active daily budgets may still grow: cap - total
/// (saturating; at most 0 when the account is at or over its cap).
pub fn account_cap_headroom(cap_minor: i64, active_total_minor: i64) -> i64 {
    cap_minor.saturating_sub(active_total_minor)
}

/// Checks that moving one *active* campaign's daily budget from `old` to
/// `new` keeps the sum of active budgets (`active_total`, which includes
/// `old`) within `cap`: total - old + new <= cap.
///
/// A change that does not increase the budget always passes: it can only
/// lower the total. The executor calls this again, with a fresh total and
/// the campaign's budget read at that moment as `old`, before it applies an
/// approved increase.
pub fn check_account_cap(
    cap_minor: i64,
    active_total_minor: Option<i64>,
    old_budget_minor: i64,
    new_budget_minor: i64,
) -> Result<(), CapViolation> {
    if new_budget_minor <= old_budget_minor {
        return Ok(());
    }
    let total_minor = active_total_minor.ok_or(CapViolation::TotalUnknown)?;
    if old_budget_minor < 0 || total_minor < old_budget_minor {
        return Err(CapViolation::Inconsistent { total_minor, old_budget_minor });
    }
    let after = i128::from(total_minor) - i128::from(old_budget_minor) + i128::from(new_budget_minor);
    if after <= i128::from(cap_minor) {
        Ok(())
    } else {
        let headroom_minor = account_cap_headroom(cap_minor, total_minor);
        Err(CapViolation::Exceeds { cap_minor, total_minor, headroom_minor })
    }
}

/// Whether an increase from `old` to `new` needs a human: the new budget is
/// above the approval threshold, or the increase above the auto-approve
/// limit. Non-increases never do.
pub fn requires_approval(rule: &RuleSettings, old_budget_minor: i64, new_budget_minor: i64) -> bool {
    let increase = i128::from(new_budget_minor) - i128::from(old_budget_minor);
    increase > 0
        && (new_budget_minor > rule.require_approval_threshold_minor
            || increase > i128::from(rule.auto_approve_up_to_minor))
}

/// How long a campaign must still wait before its next budget change, or
/// `None` when it may change now. A cooldown of 0 (or less) disables it; a
/// change exactly `cooldown` ago is allowed; a change recorded in the future
/// (clock skew) waits.
pub fn cooldown_remaining(
    cooldown: TimeDelta,
    last_change_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<TimeDelta> {
    let last = last_change_at?;
    if cooldown <= TimeDelta::zero() {
        return None;
    }
    let elapsed = now.signed_duration_since(last);
    (elapsed < cooldown).then(|| cooldown.checked_sub(&elapsed).unwrap_or(TimeDelta::MAX))
}

/// Multiplies a budget without float drift: the multiplier is quantised to
/// millionths, budget x ppm / 10^6 is computed in i128 and rounded half to
/// even, and the result saturates to i64. A NaN multiplier counts as 0.
pub fn scale_budget(budget_minor: i64, multiplier: f64) -> i64 {
    const ONE: i128 = 1_000_000;
    // `as` saturates for out-of-range floats and maps NaN to 0.
    let ppm = (multiplier * 1e6).round() as i128;
    let Some(product) = i128::from(budget_minor).checked_mul(ppm) else {
        // Beyond i128 the quotient is far beyond i64 either way.
        let negative = (budget_minor < 0) != (ppm < 0);
        return if negative { i64::MIN } else { i64::MAX };
    };
    saturate_i64(div_round_half_even(product, ONE))
}

/// n / d rounded half to even, for d > 0.
fn div_round_half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n.div_euclid(d), n.rem_euclid(d));
    match (2 * r).cmp(&d) {
        Ordering::Less => q,
        Ordering::Greater => q + 1,
        Ordering::Equal => q + (q & 1),
    }
}

fn saturate_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// A ROAS threshold with at least one decimal: 4.0, 1.5, 3.25.
fn fmt_ratio(x: f64) -> String {
    let s = x.to_string();
    if x.is_finite() && !s.contains('.') { s + ".0" } else { s }
}

/// A metric with 2 decimals, or up to 6 when 2 would make the comparison it
/// is shown against read false (ROAS 0.999 is "0.999x (<1.0x)", not "1.00x").
fn fmt_metric(value: f64, threshold: f64, expected: Ordering) -> String {
    let mut shown = format!("{value:.2}");
    for decimals in 3..=6 {
        let agrees = shown.parse::<f64>().ok().and_then(|v| v.partial_cmp(&threshold)) == Some(expected);
        if agrees {
            break;
        }
        shown = format!("{value:.decimals$}");
    }
    shown
}

/// The decision table, first matching row wins, comparisons strict.
/// Returns the action type and the decision table's reason sentence.
pub fn classify(rule: &RuleSettings, metrics: &Performance) -> (ActionType, String) {
    use ActionType::*;
    let m = metrics;
    // Broken platform data must not move money in either direction.
    if [m.spend_minor, m.revenue_minor, m.impressions, m.clicks, m.conversions].iter().any(|v| *v < 0) {
        let why = "Insufficient data: metrics contain negative values; refusing to act on them";
        return (InsufficientData, why.to_owned());
    }
    if m.impressions < rule.min_impressions {
        let why = format!("Insufficient data: {} impressions (<{} needed)", m.impressions, rule.min_impressions);
        return (InsufficientData, why);
    }
    // ROAS 0 from 0 spend is not a loss: nothing was spent, so no pause.
    if m.spend_minor == 0 {
        return (InsufficientData, "Insufficient data: no spend in window".to_owned());
    }
    let roas = m.roas();
    let ctr = m.usable_ctr();
    let r = |t: f64, o: Ordering| fmt_metric(roas, t, o);
    if roas < rule.roas_pause {
        let t = rule.roas_pause;
        let why = format!(
            "Critical underperformance: ROAS {}x (<{}x) - pausing to stop losses",
            r(t, Ordering::Less),
            fmt_ratio(t)
        );
        return (Pause, why);
    }
    if roas < rule.roas_scale_down {
        let t = rule.roas_scale_down;
        let why = format!("Underperformance: ROAS {}x (<{}x) - reducing budget", r(t, Ordering::Less), fmt_ratio(t));
        return (ScaleDown, why);
    }
    if roas > rule.roas_scale_up_aggressive && ctr > rule.ctr_scale_up_aggressive_percent {
        let (t, ct) = (rule.roas_scale_up_aggressive, rule.ctr_scale_up_aggressive_percent);
        let why = format!(
            "Exceptional performance: ROAS {}x (>{}x) and CTR {}% (>{ct}%)",
            r(t, Ordering::Greater),
            fmt_ratio(t),
            fmt_metric(ctr, ct, Ordering::Greater)
        );
        return (ScaleUpAggressive, why);
    }
    if roas > rule.roas_scale_up {
        let t = rule.roas_scale_up;
        return (ScaleUp, format!("Strong performance: ROAS {}x (>{}x)", r(t, Ordering::Greater), fmt_ratio(t)));
    }
    let why = format!(
        "Performance within range: ROAS {roas:.2}x ({}x-{}x)",
        fmt_ratio(rule.roas_scale_down),
        fmt_ratio(rule.roas_scale_up)
    );
    (Maintain, why)
}

/// A decision being built: the table's verdict plus what the limits did.
struct Draft {
    action: ActionType,
    old: i64,
    reason: String,
    limits: Vec<LimitApplied>,
}

impl Draft {
    fn note(&mut self, sentence: &str) {
        let _ = write!(self.reason, "; {sentence}");
    }

    fn limit(&mut self, kind: LimitKind, limit_minor: i64, before_minor: i64, after_minor: i64) {
        self.limits.push(LimitApplied { kind, limit_minor, before_minor, after_minor });
    }

    fn finish(self, new_budget_minor: i64, outcome: Outcome) -> Decision {
        Decision {
            action_type: self.action,
            old_budget_minor: self.old,
            new_budget_minor,
            outcome,
            reason: self.reason,
            limits_applied: self.limits,
        }
    }

    /// Nothing is applied: the budget stays as it is.
    fn hold(mut self, why: Option<&str>) -> Decision {
        if let Some(why) = why {
            self.note(&format!("held: {why}"));
        }
        let old = self.old;
        self.finish(old, Outcome::Hold)
    }
}

/// Decides what to do with one campaign under `rule`. Pure and total: never
/// panics, and every doubt (unreadable or inconsistent inputs, an invalid
/// rule, a currency mismatch) holds the change instead of skipping a check.
pub fn decide(rule: &RuleSettings, campaign: &CampaignInputs, account: &AccountContext) -> Decision {
    decide_with(rule, campaign, account, None)
}

/// What a strategy other than the decision table proposes for one campaign:
/// an action, the budget it wants and why. The safety limits are applied to it
/// exactly as to the table's verdict (see [`decide_with`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Pause, scale up, scale down, maintain or insufficient data.
    pub action: ActionType,
    /// The daily budget wanted (ignored unless the action changes the budget).
    pub target_budget_minor: i64,
    /// The strategy's reason; limits and holds are appended to it.
    pub reason: String,
}

/// [`decide`] with the verdict of another strategy in place of the decision
/// table when `proposal` is given: the same guards (inactive campaign, invalid
/// rule, negative budget, currency mismatch), cooldown, min/max clamp, account
/// cap and approval routing, in the same order, so every limit holds whatever
/// strategy proposed the change.
pub fn decide_with(
    rule: &RuleSettings,
    campaign: &CampaignInputs,
    account: &AccountContext,
    proposal: Option<&Proposal>,
) -> Decision {
    let old = campaign.current_budget_minor;
    if !campaign.is_active {
        let reason = "Campaign is not active; nothing to scale".to_owned();
        return Draft { action: ActionType::Maintain, old, reason, limits: Vec::new() }.hold(None);
    }
    let (action, reason) = match proposal {
        Some(p) => (p.action, p.reason.clone()),
        None => classify(rule, &campaign.metrics),
    };
    let draft = Draft { action, old, reason, limits: Vec::new() };
    if !action.changes_budget() {
        return draft.hold(None);
    }
    if let Err(err) = rule.validate() {
        return draft.hold(Some(&format!("rule is invalid ({err})")));
    }
    if old < 0 {
        return draft.hold(Some(&format!("current budget {old} is negative; refusing to act")));
    }
    // A pause changes the campaign too, so it is held like any other change:
    // the rule was written for a different account setup.
    if rule.currency != account.currency {
        let why = format!(
            "rule currency {} does not match account currency {}; limits cannot be checked",
            rule.currency, account.currency
        );
        return draft.hold(Some(&why));
    }
    match action {
        // A pause stops losses at once: it is not clamped to the minimum, needs
        // no account cap (it only lowers spend), ignores the cooldown (a pause
        // cannot compound) and needs no approval (waiting would keep losing).
        // The budget is left as it is; only the status becomes PAUSED.
        ActionType::Pause => draft.finish(0, Outcome::Execute),
        ActionType::ScaleUpAggressive | ActionType::ScaleUp | ActionType::ScaleDown => {
            let target = match proposal {
                Some(p) => p.target_budget_minor,
                None => scale_budget(old, multiplier_of(rule, action)),
            };
            scale(rule, campaign, account, draft, target)
        }
        ActionType::Maintain | ActionType::InsufficientData => draft.hold(None),
    }
}

/// The table's multiplier for a budget-changing action (1 for the others).
fn multiplier_of(rule: &RuleSettings, action: ActionType) -> f64 {
    match action {
        ActionType::ScaleUpAggressive => rule.multiplier_aggressive_up,
        ActionType::ScaleUp => rule.multiplier_up,
        ActionType::ScaleDown => rule.multiplier_down,
        _ => 1.0,
    }
}

/// The budget-change path: cooldown, clamp, cap, approval; `scaled` is the
/// budget the table's multiplier (or a strategy) asks for. Each step either
/// passes the new budget on or says why the change is held.
fn scale(
    rule: &RuleSettings,
    campaign: &CampaignInputs,
    account: &AccountContext,
    mut draft: Draft,
    scaled: i64,
) -> Decision {
    if draft.old == 0 {
        // No campaign-level budget to scale (the budget may live elsewhere);
        // clamping 0 up to the minimum would invent one.
        return draft.hold(Some("current budget is 0; nothing to scale"));
    }
    if let Some(why) = cooldown_hold(rule, campaign, account) {
        return draft.hold(Some(&why));
    }
    let new = match clamp(rule, &mut draft, scaled) {
        Ok(new) => new,
        Err(why) => return draft.hold(Some(&why)),
    };
    // Only increases can break the account-wide cap. Decreases (and pauses)
    // only lower the sum of active budgets, so they never need it, and an
    // unreadable total must not stop them from cutting spend.
    let new = if draft.action == ActionType::ScaleDown {
        new
    } else {
        match fit_account_cap(rule, account, &mut draft, new) {
            Ok(new) => new,
            Err(why) => return draft.hold(Some(&why)),
        }
    };
    route_approval(rule, draft, new)
}

/// Why the cooldown holds a change, if it does: without one an hourly cycle
/// compounds (+20% an hour is x79 a day).
fn cooldown_hold(rule: &RuleSettings, campaign: &CampaignInputs, account: &AccountContext) -> Option<String> {
    let last = campaign.last_budget_change_at?;
    cooldown_remaining(rule.cooldown, Some(last), account.now)?;
    let elapsed = account.now.signed_duration_since(last);
    Some(if elapsed < TimeDelta::zero() {
        format!("last budget change is recorded in the future, cooldown {}", fmt_span(rule.cooldown))
    } else {
        format!("last budget change {} ago, cooldown {}", fmt_hours_minutes(elapsed), fmt_span(rule.cooldown))
    })
}

/// `scaled` clamped to the rule's min and max daily budget. A clamp may
/// shorten a change but never reverse it: a change that clamps to nothing
/// is held.
fn clamp(rule: &RuleSettings, draft: &mut Draft, scaled: i64) -> Result<i64, String> {
    let (old, min, max) = (draft.old, rule.min_daily_budget_minor, rule.max_daily_budget_minor);
    let money = |v| format_minor(v, &rule.currency);
    let increase = draft.action != ActionType::ScaleDown;
    if increase && old >= max {
        draft.limit(LimitKind::MaxDailyBudget, max, scaled, old);
        return Err(format!("budget already at max daily budget {}", money(max)));
    }
    if !increase && old <= min {
        draft.limit(LimitKind::MinDailyBudget, min, scaled, old);
        return Err(format!("budget already at min daily budget {}", money(min)));
    }
    let mut new = scaled;
    if new > max {
        draft.limit(LimitKind::MaxDailyBudget, max, new, max);
        draft.note(&format!("capped at max daily budget {}", money(max)));
        new = max;
    }
    if new < min {
        draft.limit(LimitKind::MinDailyBudget, min, new, min);
        draft.note(&format!("floored at min daily budget {}", money(min)));
        new = min;
    }
    if (increase && new <= old) || (!increase && new >= old) {
        return Err("the change rounds to nothing".into());
    }
    Ok(new)
}

/// An increase to `new` fitted under the account-wide cap: shortened to the
/// headroom left, or held when there is none (or too little to stay above
/// the min daily budget), or when the total cannot be read (fail closed).
fn fit_account_cap(rule: &RuleSettings, account: &AccountContext, draft: &mut Draft, new: i64) -> Result<i64, String> {
    let (old, min, cap) = (draft.old, rule.min_daily_budget_minor, rule.max_daily_spend_limit_minor);
    let money = |v| format_minor(v, &rule.currency);
    match check_account_cap(cap, account.active_budget_total_minor, old, new) {
        Ok(()) => Ok(new),
        Err(CapViolation::Exceeds { headroom_minor, total_minor, .. }) if headroom_minor > 0 => {
            // headroom < new - old here, so old + headroom cannot overflow.
            let fitted = old.saturating_add(headroom_minor);
            if fitted < min {
                draft.limit(LimitKind::AccountSpendCap, cap, new, old);
                return Err(format!(
                    "account daily spend limit {} leaves room only for {}, below min daily budget {}",
                    money(cap),
                    money(fitted),
                    money(min)
                ));
            }
            draft.limit(LimitKind::AccountSpendCap, cap, new, fitted);
            draft.note(&format!(
                "reduced to fit account daily spend limit {} (active budgets now {})",
                money(cap),
                money(total_minor)
            ));
            Ok(fitted)
        }
        Err(violation) => {
            if matches!(violation, CapViolation::Exceeds { .. }) {
                draft.limit(LimitKind::AccountSpendCap, cap, new, old);
            }
            Err(violation.describe(&rule.currency))
        }
    }
}

/// Executes the change or queues it for a person. Only increases wait for a
/// human: a decrease only lowers spend, and holding it would keep an
/// underperformer spending.
fn route_approval(rule: &RuleSettings, mut draft: Draft, new: i64) -> Decision {
    let old = draft.old;
    if !requires_approval(rule, old, new) {
        return draft.finish(new, Outcome::Execute);
    }
    let money = |v| format_minor(v, &rule.currency);
    let mut why = Vec::new();
    if new > rule.require_approval_threshold_minor {
        why.push(format!(
            "new budget {} above approval threshold {}",
            money(new),
            money(rule.require_approval_threshold_minor)
        ));
    }
    let change = new.saturating_sub(old);
    if change > rule.auto_approve_up_to_minor {
        why.push(format!(
            "increase {} above auto-approve limit {}",
            money(change),
            money(rule.auto_approve_up_to_minor)
        ));
    }
    draft.note(&format!("needs approval: {}", why.join(" and ")));
    draft.finish(new, Outcome::NeedsApproval)
}

/// Elapsed time as `2h 0m`.
fn fmt_hours_minutes(d: TimeDelta) -> String {
    let minutes = d.num_minutes();
    format!("{}h {}m", minutes / 60, minutes % 60)
}

/// A rule duration without zero parts: `8h`, `1h 30m`, `45m`, `30s`.
fn fmt_span(d: TimeDelta) -> String {
    let secs = d.num_seconds();
    let parts = [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
    let shown: Vec<String> = parts.iter().filter(|(v, _)| *v != 0).map(|(v, u)| format!("{v}{u}")).collect();
    if shown.is_empty() { "0s".to_owned() } else { shown.join(" ") }
}

/// Meta refuses a daily budget below what the campaign already spent today
/// plus what it may spend during the ~15 minutes an update takes (error
/// 1885650). Raises a scale-down to that floor (today's spend plus 1/96 of the
/// old budget, a quarter hour at even pacing), or holds it when the floor
/// leaves no decrease. Other decisions pass through unchanged.
pub fn floor_at_spend_so_far(mut decision: Decision, spent_today_minor: i64, currency: &str) -> Decision {
    if decision.action_type != ActionType::ScaleDown || decision.outcome == Outcome::Hold {
        return decision;
    }
    let old = decision.old_budget_minor;
    let budget = old.max(0);
    let buffer = budget / 96 + i64::from(budget % 96 != 0);
    let floor = spent_today_minor.max(0).saturating_add(buffer);
    if decision.new_budget_minor >= floor {
        return decision;
    }
    let before = decision.new_budget_minor;
    let money = |v| format_minor(v, currency);
    if floor >= old {
        decision.new_budget_minor = old;
        decision.outcome = Outcome::Hold;
        let _ = write!(
            decision.reason,
            "; held: {} already spent today; Meta refuses a budget below today's spend plus a 15-minute buffer",
            money(spent_today_minor)
        );
        decision.limits_applied.push(LimitApplied {
            kind: LimitKind::SpendSoFar,
            limit_minor: floor,
            before_minor: before,
            after_minor: old,
        });
    } else {
        decision.new_budget_minor = floor;
        let _ = write!(
            decision.reason,
            "; raised to {}: today's spend {} plus a 15-minute buffer (Meta refuses less)",
            money(floor),
            money(spent_today_minor)
        );
        decision.limits_applied.push(LimitApplied {
            kind: LimitKind::SpendSoFar,
            limit_minor: floor,
            before_minor: before,
            after_minor: floor,
        });
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rule::{MAX_AMOUNT_MINOR, MAX_COOLDOWN_SECONDS};
    use ActionType::*;

    fn rule() -> RuleSettings {
        RuleSettings::defaults("Default", "USD", 100)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).expect("valid timestamp")
    }

    /// 50,000 impressions; ROAS = revenue / spend.
    fn metrics(spend_minor: i64, revenue_minor: i64, ctr_percent: f64) -> Performance {
        Performance { spend_minor, revenue_minor, impressions: 50_000, clicks: 1_600, conversions: 40, ctr_percent }
    }

    fn campaign(metrics: Performance, budget: i64) -> CampaignInputs {
        CampaignInputs { metrics, current_budget_minor: budget, is_active: true, last_budget_change_at: None }
    }

    fn account(total: Option<i64>) -> AccountContext {
        AccountContext { currency: "USD".into(), active_budget_total_minor: total, now: now() }
    }

    /// ROAS of `revenue / 10000` with a CTR of 1%.
    fn roas(revenue_per_10000: i64) -> Performance {
        metrics(10_000, revenue_per_10000, 1.0)
    }

    /// Decides with the default rule and an account whose other campaigns
    /// spend $100/day.
    fn run(m: Performance, budget: i64) -> Decision {
        decide(&rule(), &campaign(m, budget), &account(Some(budget + 10_000)))
    }

    fn assert_hold(d: &Decision, reason_suffix: &str) {
        assert_eq!(d.outcome, Outcome::Hold, "{d:?}");
        assert_eq!(d.new_budget_minor, d.old_budget_minor);
        assert!(d.reason.ends_with(reason_suffix), "reason {:?} should end with {reason_suffix:?}", d.reason);
    }

    #[test]
    fn example_1_scales_up_aggressively_and_executes() {
        let m = Performance { impressions: 50_000, ..metrics(10_000, 45_000, 3.2) };
        let d = decide(&rule(), &campaign(m, 20_000), &account(Some(20_000)));
        assert_eq!(d.action_type, ScaleUpAggressive);
        assert_eq!((d.old_budget_minor, d.new_budget_minor), (20_000, 30_000));
        assert_eq!(d.outcome, Outcome::Execute);
        assert_eq!(d.reason, "Exceptional performance: ROAS 4.50x (>4.0x) and CTR 3.20% (>3%)");
        assert!(d.limits_applied.is_empty());
    }

    #[test]
    fn example_2_pauses_and_executes() {
        let d = run(metrics(15_000, 12_000, 1.1), 15_000);
        assert_eq!(d.action_type, Pause);
        assert_eq!((d.old_budget_minor, d.new_budget_minor), (15_000, 0));
        assert_eq!(d.outcome, Outcome::Execute);
        assert_eq!(d.reason, "Critical underperformance: ROAS 0.80x (<1.0x) - pausing to stop losses");
    }

    #[test]
    fn the_table_rows_and_their_boundaries() {
        let cases = [
            (roas(9_999), Pause),
            (roas(10_000), ScaleDown), // ROAS exactly 1.0 is not a pause
            (roas(10_001), ScaleDown),
            (roas(14_999), ScaleDown),
            (roas(15_000), Maintain),
            (roas(15_001), Maintain),
            (roas(29_999), Maintain),
            (roas(30_000), Maintain), // exactly 3.0 is maintain
            (roas(30_001), ScaleUp),
            (metrics(10_000, 40_000, 5.0), ScaleUp), // ROAS exactly 4.0 is not aggressive
            (metrics(10_000, 40_001, 5.0), ScaleUpAggressive),
            (metrics(10_000, 40_001, 3.0), ScaleUp), // CTR exactly 3% is not aggressive
            (metrics(10_000, 40_001, 3.01), ScaleUpAggressive),
            (metrics(10_000, 90_000, 2.99), ScaleUp),
            (metrics(10_000, 90_000, f64::NAN), ScaleUp),
            (metrics(10_000, 90_000, f64::INFINITY), ScaleUp),
            (metrics(10_000, 90_000, -1.0), ScaleUp),
        ];
        for (m, expected) in cases {
            assert_eq!(classify(&rule(), &m).0, expected, "{m:?}");
        }
    }

    #[test]
    fn too_few_impressions_no_spend_or_negative_figures_are_insufficient_data() {
        let r = rule();
        let at = |impressions| Performance { impressions, ..roas(5_000) };
        assert_eq!(
            classify(&r, &at(999)),
            (InsufficientData, "Insufficient data: 999 impressions (<1000 needed)".into())
        );
        assert_eq!(classify(&r, &at(1_000)).0, Pause);
        let none = metrics(0, 0, 0.0);
        assert_eq!(classify(&r, &none), (InsufficientData, "Insufficient data: no spend in window".into()));
        assert_eq!(none.roas(), 0.0);
        for m in [metrics(-1, 0, 1.0), metrics(100, -5, 1.0), Performance { clicks: -1, ..roas(50_000) }] {
            assert_eq!(classify(&r, &m).0, InsufficientData, "{m:?}");
        }
    }

    #[test]
    fn reasons_use_the_tables_words_and_number_formats() {
        let r = rule();
        let reason = |m: Performance| classify(&r, &m).1;
        assert_eq!(reason(roas(32_000)), "Strong performance: ROAS 3.20x (>3.0x)");
        assert_eq!(reason(roas(12_000)), "Underperformance: ROAS 1.20x (<1.5x) - reducing budget");
        assert_eq!(reason(roas(20_000)), "Performance within range: ROAS 2.00x (1.5x-3.0x)");
        let few = Performance { impressions: 500, ..roas(20_000) };
        assert_eq!(reason(few), "Insufficient data: 500 impressions (<1000 needed)");

        let mut odd = rule();
        odd.roas_scale_up = 3.25;
        odd.ctr_scale_up_aggressive_percent = 2.5;
        assert_eq!(classify(&odd, &roas(33_000)).1, "Strong performance: ROAS 3.30x (>3.25x)");
        let best = metrics(10_000, 50_000, 2.75);
        assert_eq!(classify(&odd, &best).1, "Exceptional performance: ROAS 5.00x (>4.0x) and CTR 2.75% (>2.5%)");
    }

    #[test]
    fn a_value_that_rounds_onto_its_threshold_gets_more_decimals() {
        assert_eq!(
            classify(&rule(), &roas(9_990)).1,
            "Critical underperformance: ROAS 0.999x (<1.0x) - pausing to stop losses"
        );
        assert_eq!(classify(&rule(), &roas(30_001)).1, "Strong performance: ROAS 3.0001x (>3.0x)");
    }

    #[test]
    fn scale_budget_is_exact_and_rounds_half_to_even() {
        assert_eq!(scale_budget(20_000, 1.5), 30_000);
        assert_eq!(scale_budget(20_000, 1.2), 24_000);
        assert_eq!(scale_budget(1_001, 1.5), 1_502); // 1501.5 -> even
        assert_eq!(scale_budget(1_003, 1.5), 1_504); // 1504.5 -> even
        assert_eq!(scale_budget(15_000, 0.7), 10_500);
        assert_eq!(scale_budget(-1_001, 1.5), -1_502);
        assert_eq!(scale_budget(7, 1.0), 7);
        assert_eq!(scale_budget(1_000_000_000_000_000, 1.2), 1_200_000_000_000_000);
    }

    #[test]
    fn scale_budget_saturates_instead_of_overflowing() {
        assert_eq!(scale_budget(i64::MAX, 1.5), i64::MAX);
        assert_eq!(scale_budget(i64::MIN, 1.5), i64::MIN);
        assert_eq!(scale_budget(2, f64::INFINITY), i64::MAX);
        assert_eq!(scale_budget(2, f64::NEG_INFINITY), i64::MIN);
        assert_eq!(scale_budget(i64::MAX, 1e300), i64::MAX);
        assert_eq!(scale_budget(1_000, f64::NAN), 0);
    }

    #[test]
    fn scale_down_and_plain_scale_up_execute_within_limits() {
        let d = run(roas(12_000), 15_000);
        assert_eq!((d.action_type, d.new_budget_minor, d.outcome), (ScaleDown, 10_500, Outcome::Execute));
        let d = run(roas(32_000), 20_000);
        assert_eq!((d.action_type, d.new_budget_minor, d.outcome), (ScaleUp, 24_000, Outcome::Execute));
        assert_eq!(d.change_minor(), 4_000);
    }

    #[test]
    fn max_daily_budget_caps_an_increase() {
        // 90000 x 1.2 = 108000 -> $1,000.00; 100000 > $500 needs approval.
        let d = run(roas(32_000), 90_000);
        assert_eq!(d.new_budget_minor, 100_000);
        assert_eq!(
            d.limits_applied,
            [LimitApplied {
                kind: LimitKind::MaxDailyBudget,
                limit_minor: 100_000,
                before_minor: 108_000,
                after_minor: 100_000
            }]
        );
        assert_eq!(d.outcome, Outcome::NeedsApproval);
        assert!(
            d.reason.starts_with(
                "Strong performance: ROAS 3.20x (>3.0x); capped at max daily budget $1,000.00; needs approval"
            ),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_clamp_never_reverses_a_change() {
        for budget in [100_000, 150_000] {
            let d = run(roas(32_000), budget);
            assert_hold(&d, "; held: budget already at max daily budget $1,000.00");
            assert_eq!(d.action_type, ScaleUp);
            assert_eq!(d.limits_applied[0].kind, LimitKind::MaxDailyBudget);
        }
        for budget in [1_000, 500] {
            let d = run(roas(12_000), budget);
            assert_hold(&d, "; held: budget already at min daily budget $10.00");
            assert_eq!(d.action_type, ScaleDown);
        }
    }

    #[test]
    fn min_daily_budget_floors_a_decrease_and_raises_a_small_increase() {
        let d = run(roas(12_000), 1_200); // 840 -> 1000
        assert_eq!((d.new_budget_minor, d.outcome), (1_000, Outcome::Execute));
        assert!(d.reason.ends_with("; floored at min daily budget $10.00"));
        let d = run(roas(32_000), 500); // 600 -> 1000, an increase either way
        assert_eq!((d.new_budget_minor, d.outcome), (1_000, Outcome::Execute));
        assert_eq!(d.limits_applied[0].kind, LimitKind::MinDailyBudget);
        let d = run(roas(12_000), 200_000); // 140000 -> 100000, still a decrease
        assert_eq!((d.new_budget_minor, d.outcome), (100_000, Outcome::Execute));
    }

    #[test]
    fn a_change_that_rounds_to_nothing_is_held() {
        let mut r = rule();
        r.min_daily_budget_minor = 0;
        let d = decide(&r, &campaign(roas(32_000), 1), &account(Some(1)));
        assert_hold(&d, "; held: the change rounds to nothing");
    }

    #[test]
    fn a_pause_is_not_clamped_capped_or_approved() {
        let mut r = rule();
        r.require_approval_threshold_minor = 0;
        r.auto_approve_up_to_minor = 0;
        let d = decide(&r, &campaign(roas(5_000), 50_000), &account(None));
        assert_eq!((d.action_type, d.new_budget_minor, d.outcome), (Pause, 0, Outcome::Execute));
        assert!(d.limits_applied.is_empty());
    }

    #[test]
    fn clamp_then_account_cap_shrink_further() {
        // 90000 x 1.5 = 135000 -> max 100000 -> cap leaves 5000 of room -> 95000.
        let m = metrics(10_000, 45_000, 3.2);
        let d = decide(&rule(), &campaign(m, 90_000), &account(Some(495_000)));
        assert_eq!(d.new_budget_minor, 95_000);
        let kinds: Vec<_> = d.limits_applied.iter().map(|l| (l.kind, l.before_minor, l.after_minor)).collect();
        assert_eq!(
            kinds,
            [(LimitKind::MaxDailyBudget, 135_000, 100_000), (LimitKind::AccountSpendCap, 100_000, 95_000)]
        );
        assert_eq!(d.outcome, Outcome::NeedsApproval);
        assert!(d.reason.contains(
            "; capped at max daily budget $1,000.00; reduced to fit account daily spend limit $5,000.00 (active budgets now $4,950.00)"
        ));
    }

    #[test]
    fn account_cap_shrinks_an_increase_to_fit() {
        let m = metrics(10_000, 45_000, 3.2);
        let d = decide(&rule(), &campaign(m, 20_000), &account(Some(495_000)));
        assert_eq!((d.new_budget_minor, d.outcome), (25_000, Outcome::Execute));
        assert_eq!(d.limits_applied[0].kind, LimitKind::AccountSpendCap);
        // Exactly at the cap after the change: no limit applied.
        let d = decide(&rule(), &campaign(m, 20_000), &account(Some(490_000)));
        assert_eq!((d.new_budget_minor, d.outcome), (30_000, Outcome::Execute));
        assert!(d.limits_applied.is_empty());
    }

    #[test]
    fn account_cap_refuses_an_increase_when_nothing_fits() {
        for total in [500_000, 600_000] {
            let d = decide(&rule(), &campaign(roas(32_000), 20_000), &account(Some(total)));
            assert_eq!(d.outcome, Outcome::Hold);
            assert_eq!(d.new_budget_minor, 20_000);
            assert!(d.reason.contains("; held: account daily spend limit $5,000.00 leaves no room"), "{}", d.reason);
            assert_eq!(d.limits_applied[0].kind, LimitKind::AccountSpendCap);
        }
    }

    #[test]
    fn account_cap_room_below_the_minimum_holds() {
        // 500 x 1.2 = 600 -> floored to 1000; the cap leaves room for 800 only.
        let d = decide(&rule(), &campaign(roas(32_000), 500), &account(Some(499_700)));
        assert_hold(&d, "leaves room only for $8.00, below min daily budget $10.00");
    }

    #[test]
    fn an_unreadable_or_inconsistent_total_refuses_increases_only() {
        let d = decide(&rule(), &campaign(roas(32_000), 20_000), &account(None));
        assert_hold(&d, "; held: account budget total could not be read; refusing unchecked increase");
        let d = decide(&rule(), &campaign(roas(32_000), 20_000), &account(Some(10_000)));
        assert_hold(&d, "refusing unchecked increase");
        // Decreases only lower spend: they need no total.
        let d = decide(&rule(), &campaign(roas(12_000), 20_000), &account(None));
        assert_eq!((d.new_budget_minor, d.outcome), (14_000, Outcome::Execute));
    }

    #[test]
    fn check_account_cap_for_the_executor() {
        assert_eq!(check_account_cap(100, Some(90), 50, 60), Ok(()));
        assert_eq!(check_account_cap(100, Some(90), 50, 30), Ok(()));
        assert_eq!(check_account_cap(100, None, 50, 50), Ok(()));
        assert_eq!(check_account_cap(100, None, 50, 51), Err(CapViolation::TotalUnknown));
        assert_eq!(
            check_account_cap(100, Some(90), 50, 61),
            Err(CapViolation::Exceeds { cap_minor: 100, total_minor: 90, headroom_minor: 10 })
        );
        assert!(matches!(check_account_cap(100, Some(40), 50, 60), Err(CapViolation::Inconsistent { .. })));
        assert!(matches!(check_account_cap(100, Some(-1), 0, 60), Err(CapViolation::Inconsistent { .. })));
        assert!(check_account_cap(i64::MAX, Some(i64::MAX - 1), i64::MAX - 2, i64::MAX - 1).is_ok());
        assert_eq!(account_cap_headroom(100, 90), 10);
        assert_eq!(account_cap_headroom(100, 120), -20);
        assert_eq!(account_cap_headroom(i64::MAX, i64::MIN), i64::MAX);
    }

    #[test]
    fn cooldown_holds_scaling_inside_it_and_allows_at_and_after() {
        let at = |ago: TimeDelta, m: Performance| {
            let c = CampaignInputs { last_budget_change_at: Some(now() - ago), ..campaign(m, 20_000) };
            decide(&rule(), &c, &account(Some(30_000)))
        };
        let d = at(TimeDelta::hours(2), roas(32_000));
        assert_hold(&d, "; held: last budget change 2h 0m ago, cooldown 8h");
        assert_eq!(d.action_type, ScaleUp);
        assert_hold(&at(TimeDelta::hours(8) - TimeDelta::seconds(1), roas(12_000)), "7h 59m ago, cooldown 8h");
        assert_eq!(at(TimeDelta::hours(8), roas(32_000)).outcome, Outcome::Execute);
        assert_eq!(at(TimeDelta::hours(9), roas(32_000)).outcome, Outcome::Execute);
        // A pause stops losses and cannot compound: the cooldown does not hold it.
        assert_eq!(at(TimeDelta::minutes(5), roas(5_000)).outcome, Outcome::Execute);
        assert_hold(&at(TimeDelta::hours(-1), roas(32_000)), "recorded in the future, cooldown 8h");
    }

    #[test]
    fn a_zero_cooldown_is_disabled() {
        let mut r = rule();
        r.cooldown = TimeDelta::zero();
        let c = CampaignInputs { last_budget_change_at: Some(now()), ..campaign(roas(32_000), 20_000) };
        assert_eq!(decide(&r, &c, &account(Some(20_000))).outcome, Outcome::Execute);
        assert_eq!(cooldown_remaining(TimeDelta::zero(), Some(now()), now()), None);
        assert_eq!(cooldown_remaining(TimeDelta::hours(8), None, now()), None);
        let two_ago = Some(now() - TimeDelta::hours(2));
        assert_eq!(cooldown_remaining(TimeDelta::hours(8), two_ago, now()), Some(TimeDelta::hours(6)));
        assert_eq!(fmt_span(TimeDelta::minutes(90)), "1h 30m");
        assert_eq!(fmt_span(TimeDelta::seconds(45)), "45s");
    }

    #[test]
    fn approval_by_new_budget_above_the_threshold() {
        // 40000 x 1.2 = 48000, increase $80 (auto-approved).
        let mut r = rule();
        let run_with = |r: &RuleSettings| decide(r, &campaign(roas(32_000), 40_000), &account(Some(40_000)));
        r.require_approval_threshold_minor = 48_000;
        assert_eq!(run_with(&r).outcome, Outcome::Execute);
        r.require_approval_threshold_minor = 47_999;
        let d = run_with(&r);
        assert_eq!((d.new_budget_minor, d.outcome), (48_000, Outcome::NeedsApproval));
        assert!(
            d.reason.ends_with("; needs approval: new budget $480.00 above approval threshold $479.99"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn approval_by_increase_above_the_auto_approve_limit() {
        // Example 1: +$100 with auto-approve $100 executes; $99.99 does not.
        let mut r = rule();
        let m = metrics(10_000, 45_000, 3.2);
        r.auto_approve_up_to_minor = 9_999;
        let d = decide(&r, &campaign(m, 20_000), &account(Some(20_000)));
        assert_eq!(d.outcome, Outcome::NeedsApproval);
        assert!(d.reason.ends_with("; needs approval: increase $100.00 above auto-approve limit $99.99"));
        r.require_approval_threshold_minor = 29_999;
        let d = decide(&r, &campaign(m, 20_000), &account(Some(20_000)));
        assert!(d.reason.ends_with(
            "; needs approval: new budget $300.00 above approval threshold $299.99 and increase $100.00 above auto-approve limit $99.99"
        ));
    }

    #[test]
    fn decreases_never_wait_for_approval() {
        let mut r = rule();
        r.require_approval_threshold_minor = 0;
        r.auto_approve_up_to_minor = 0;
        let d = decide(&r, &campaign(roas(12_000), 90_000), &account(None));
        assert_eq!((d.new_budget_minor, d.outcome), (63_000, Outcome::Execute));
        assert!(!requires_approval(&r, 90_000, 63_000));
    }

    #[test]
    fn a_currency_mismatch_holds_every_change_but_keeps_the_intent() {
        let jpy = AccountContext { currency: "JPY".into(), ..account(Some(20_000)) };
        for (m, action) in [(roas(32_000), ScaleUp), (roas(12_000), ScaleDown), (roas(5_000), Pause)] {
            let d = decide(&rule(), &campaign(m, 20_000), &jpy);
            assert_eq!(d.action_type, action);
            assert_hold(&d, "; held: rule currency USD does not match account currency JPY; limits cannot be checked");
        }
        let d = decide(&rule(), &campaign(roas(20_000), 20_000), &jpy);
        assert_eq!((d.action_type, d.reason.as_str()), (Maintain, "Performance within range: ROAS 2.00x (1.5x-3.0x)"));
    }

    #[test]
    fn amounts_use_the_rule_currency_format() {
        let r = RuleSettings::defaults("Yen", "JPY", 1);
        let a = AccountContext { currency: "JPY".into(), ..account(Some(5_000)) };
        let d = decide(&r, &campaign(roas(32_000), 500), &a);
        assert_hold(&d, "account daily spend limit 5,000 JPY leaves no room (active budgets now 5,000 JPY)");
    }

    #[test]
    fn an_inactive_campaign_is_maintained() {
        let c = CampaignInputs { is_active: false, ..campaign(roas(5_000), 20_000) };
        let d = decide(&rule(), &c, &account(Some(0)));
        assert_eq!(d.action_type, Maintain);
        assert_eq!(d.reason, "Campaign is not active; nothing to scale");
        assert_hold(&d, "");
    }

    #[test]
    fn maintain_zero_spend_and_few_impressions_hold_without_change() {
        let d = run(roas(20_000), 20_000);
        assert_eq!((d.action_type, d.reason.as_str()), (Maintain, "Performance within range: ROAS 2.00x (1.5x-3.0x)"));
        assert_hold(&d, "");
        let d = run(metrics(0, 0, 0.0), 20_000);
        assert_eq!((d.action_type, d.reason.as_str()), (InsufficientData, "Insufficient data: no spend in window"));
        assert_hold(&d, "");
        let d = run(Performance { impressions: 10, ..roas(5_000) }, 20_000);
        assert_eq!(d.action_type, InsufficientData);
        assert_hold(&d, "");
    }

    #[test]
    fn bad_inputs_hold() {
        let d = run(roas(5_000), -5);
        assert_hold(&d, "; held: current budget -5 is negative; refusing to act");
        assert_hold(&run(roas(32_000), 0), "; held: current budget is 0; nothing to scale");
        // A pause needs no budget: it only changes the status.
        assert_eq!(run(roas(5_000), 0).outcome, Outcome::Execute);
        let mut broken = rule();
        broken.multiplier_up = f64::NAN;
        let d = decide(&broken, &campaign(roas(32_000), 20_000), &account(Some(20_000)));
        assert_eq!(d.action_type, ScaleUp);
        assert_hold(&d, "; held: rule is invalid (invalid multiplier_up: must be a finite number)");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn amount() -> impl Strategy<Value = i64> {
            prop_oneof![6 => 0i64..=200_000, 2 => 0i64..=100_000_000, 1 => 0i64..=MAX_AMOUNT_MINOR]
        }

        fn valid_rule() -> impl Strategy<Value = RuleSettings> {
            let thresholds = (0.0f64..3.0, 0.01f64..3.0, 0.0f64..3.0, 0.0f64..3.0, 0.0f64..=100.0);
            let multipliers = (1.0001f64..=10.0, 1.0001f64..=10.0, 0.01f64..0.99, 0i64..5_000);
            let limits = (prop::sample::select(vec!["USD", "JPY", "EUR"]), 0i64..=1_000_000, 1i64..=MAX_AMOUNT_MINOR);
            let money = (amount(), amount(), amount(), 0i64..=MAX_COOLDOWN_SECONDS);
            (thresholds, multipliers, limits, money).prop_map(|(t, m, l, a)| {
                let mut r = RuleSettings::defaults("prop", l.0, 100);
                r.roas_pause = t.0;
                r.roas_scale_down = t.0 + t.1;
                r.roas_scale_up = r.roas_scale_down + t.2;
                r.roas_scale_up_aggressive = r.roas_scale_up + t.3;
                r.ctr_scale_up_aggressive_percent = t.4;
                (r.multiplier_aggressive_up, r.multiplier_up, r.multiplier_down, r.min_impressions) = m;
                r.min_daily_budget_minor = l.1;
                r.max_daily_budget_minor = l.1.saturating_add(l.2).min(MAX_AMOUNT_MINOR);
                r.max_daily_spend_limit_minor = a.0;
                r.require_approval_threshold_minor = a.1;
                r.auto_approve_up_to_minor = a.2;
                r.cooldown = TimeDelta::seconds(a.3);
                r
            })
        }

        fn any_metrics() -> impl Strategy<Value = Performance> {
            let count = || prop_oneof![40 => 0i64..200_000, 1 => any::<i64>()];
            let ctr = prop_oneof![6 => 0.0f64..10.0, 1 => any::<f64>(), 1 => Just(f64::NAN), 1 => Just(f64::INFINITY)];
            (count(), count(), count(), count(), count(), ctr).prop_map(|(s, r, i, c, v, ctr)| Performance {
                spend_minor: s,
                revenue_minor: r.saturating_mul(3),
                impressions: i,
                clicks: c,
                conversions: v,
                ctr_percent: ctr,
            })
        }

        fn any_inputs() -> impl Strategy<Value = (CampaignInputs, AccountContext, bool)> {
            let budget = prop_oneof![8 => amount(), 1 => any::<i64>()];
            let others = prop::option::weighted(0.9, prop_oneof![8 => amount(), 1 => any::<i64>()]);
            let last = prop::option::weighted(0.4, -30 * 24 * 3600i64..24 * 3600);
            (any_metrics(), budget, prop::bool::weighted(0.9), last, others, prop::bool::weighted(0.85)).prop_map(
                |(metrics, budget, is_active, last, others, same_currency)| {
                    let at = |secs: i64| now() + TimeDelta::seconds(secs);
                    let campaign = CampaignInputs {
                        metrics,
                        current_budget_minor: budget,
                        is_active,
                        last_budget_change_at: last.map(at),
                    };
                    let total = others.map(|o| if o >= 0 { budget.saturating_add(o) } else { o });
                    let account =
                        AccountContext { currency: String::new(), active_budget_total_minor: total, now: now() };
                    (campaign, account, same_currency)
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn decisions_respect_every_limit(
                rule in valid_rule(),
                (c, mut a, same) in any_inputs(),
                cap_slack in prop::option::weighted(0.3, 0i64..50_000),
            ) {
                prop_assume!(rule.validate().is_ok());
                a.currency = if same { rule.currency.clone() } else { "CHF".into() };
                // Often put the account near its cap, where shrinking happens.
                if let (Some(slack), Some(_)) = (cap_slack, a.active_budget_total_minor) {
                    let near = rule.max_daily_spend_limit_minor.saturating_sub(slack).max(c.current_budget_minor);
                    a.active_budget_total_minor = Some(near);
                }
                let d = decide(&rule, &c, &a);
                let (old, new) = (d.old_budget_minor, d.new_budget_minor);
                prop_assert_eq!(old, c.current_budget_minor);
                let in_range = (rule.min_daily_budget_minor..=rule.max_daily_budget_minor).contains(&new);
                let paused = d.action_type == Pause && new == 0;
                prop_assert!(in_range || new == old || paused, "{:?}", d);
                if d.outcome == Outcome::Hold {
                    prop_assert_eq!(new, old);
                }
                if new > old {
                    let total = a.active_budget_total_minor.expect("an increase needs a readable total");
                    let after = i128::from(total) - i128::from(old) + i128::from(new);
                    prop_assert!(after <= i128::from(rule.max_daily_spend_limit_minor), "{:?}", d);
                    prop_assert!(matches!(d.action_type, ScaleUp | ScaleUpAggressive));
                    prop_assert!(a.currency == rule.currency && c.is_active);
                }
                if d.outcome == Outcome::Execute && new > old {
                    prop_assert!(new <= rule.require_approval_threshold_minor);
                    prop_assert!(new - old <= rule.auto_approve_up_to_minor);
                }
                if d.action_type == ScaleDown {
                    prop_assert!(new <= old);
                }
                if d.outcome != Outcome::Hold && d.action_type != Pause {
                    prop_assert_ne!(new, old);
                }
            }

            #[test]
            fn decide_never_panics_even_for_invalid_rules(
                floats in prop::collection::vec(any::<f64>(), 9),
                ints in prop::collection::vec(any::<i64>(), 7),
                (c, a, _) in any_inputs(),
            ) {
                let mut r = rule();
                (r.roas_scale_up_aggressive, r.ctr_scale_up_aggressive_percent, r.roas_scale_up) = (floats[0], floats[1], floats[2]);
                (r.roas_scale_down, r.roas_pause, r.multiplier_aggressive_up) = (floats[3], floats[4], floats[5]);
                (r.multiplier_up, r.multiplier_down) = (floats[6], floats[7]);
                r.min_impressions = ints[0];
                (r.min_daily_budget_minor, r.max_daily_budget_minor, r.max_daily_spend_limit_minor) = (ints[1], ints[2], ints[3]);
                (r.require_approval_threshold_minor, r.auto_approve_up_to_minor) = (ints[4], ints[5]);
                r.cooldown = TimeDelta::seconds(ints[6] / 1_000_000);
                let a = AccountContext { currency: "USD".into(), ..a };
                let d = decide(&r, &c, &a);
                if d.outcome == Outcome::Hold {
                    prop_assert_eq!(d.new_budget_minor, d.old_budget_minor);
                }
                if r.validate().is_err() && d.action_type != Pause {
                    prop_assert_eq!(d.new_budget_minor, d.old_budget_minor);
                }
                let _ = (floats[8], scale_budget(ints[0], floats[8]));
            }

            #[test]
            fn scale_budget_matches_exact_rounding(budget in -1_000_000_000_000_000i64..=1_000_000_000_000_000, ppm in 0i64..=10_000_000) {
                let got = scale_budget(budget, ppm as f64 / 1e6);
                let exact = i128::from(budget) * i128::from(ppm);
                // |got * 10^6 - exact| <= 10^6 / 2, ties going to even.
                let diff = i128::from(got) * 1_000_000 - exact;
                prop_assert!(diff.abs() <= 500_000);
                if diff.abs() == 500_000 {
                    prop_assert_eq!(got % 2, 0);
                }
            }
        }
    }

    fn scale_down(old: i64, new: i64) -> Decision {
        Decision {
            action_type: ActionType::ScaleDown,
            old_budget_minor: old,
            new_budget_minor: new,
            outcome: Outcome::Execute,
            reason: "Underperformance".into(),
            limits_applied: Vec::new(),
        }
    }

    #[test]
    fn a_scale_down_is_raised_to_todays_spend_plus_a_quarter_hour() {
        // $150 -> $105, but $120 is already spent: floor $120 + $1.57 (150/96, rounded up).
        let d = floor_at_spend_so_far(scale_down(15_000, 10_500), 12_000, "USD");
        assert_eq!(d.new_budget_minor, 12_157);
        assert_eq!(d.outcome, Outcome::Execute);
        assert!(d.reason.contains("raised to $121.57"), "{}", d.reason);
        let untouched = floor_at_spend_so_far(scale_down(15_000, 10_500), 1_000, "USD");
        assert_eq!(untouched.new_budget_minor, 10_500);
        assert!(untouched.limits_applied.is_empty());
    }

    #[test]
    fn a_scale_down_with_no_room_above_todays_spend_is_held() {
        let d = floor_at_spend_so_far(scale_down(15_000, 10_500), 14_900, "USD");
        assert_eq!((d.new_budget_minor, d.outcome), (15_000, Outcome::Hold));
        let mut up = scale_down(10_000, 12_000);
        up.action_type = ActionType::ScaleUp;
        assert_eq!(floor_at_spend_so_far(up.clone(), 50_000, "USD"), up, "only scale-downs are floored");
    }
}
