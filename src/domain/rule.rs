//! Scaling rules: thresholds, multipliers and safety limits, their defaults
//! (the default rule's numbers) and their validation.
use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::invalid::{Invalid, Result};

/// Longest rule name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Largest amount a rule may hold, in minor units (10^15, far above any real
/// daily budget, far below i64 overflow when budgets are summed).
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;
/// Longest cooldown: 30 days.
pub const MAX_COOLDOWN_SECONDS: i64 = 30 * 24 * 3600;

/// The period of performance data a rule decides on (account time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricsWindow {
    /// Yesterday and today so far.
    Last24Hours,
    /// Today so far.
    Today,
    /// Yesterday.
    Yesterday,
    /// The last 3 complete days.
    Last3Days,
    /// The last 7 complete days.
    Last7Days,
    /// The last 14 complete days.
    Last14Days,
}

impl MetricsWindow {
    /// Stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Last24Hours => "last_24_hours",
            Self::Today => "today",
            Self::Yesterday => "yesterday",
            Self::Last3Days => "last_3_days",
            Self::Last7Days => "last_7_days",
            Self::Last14Days => "last_14_days",
        }
    }

    /// Inverse of [`as_str`](Self::as_str).
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "last_24_hours" => Self::Last24Hours,
            "today" => Self::Today,
            "yesterday" => Self::Yesterday,
            "last_3_days" => Self::Last3Days,
            "last_7_days" => Self::Last7Days,
            "last_14_days" => Self::Last14Days,
            _ => return None,
        })
    }
}

/// Everything about a rule that an operator may change.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSettings {
    /// Human-readable name.
    pub name: String,
    /// Disabled rules are never applied.
    pub enabled: bool,
    /// ROAS that, with the CTR threshold, triggers an aggressive scale-up.
    pub roas_scale_up_aggressive: f64,
    /// CTR in percent that, with the ROAS threshold, triggers an aggressive scale-up.
    pub ctr_scale_up_aggressive_percent: f64,
    /// ROAS above which the budget grows.
    pub roas_scale_up: f64,
    /// ROAS below which the budget shrinks.
    pub roas_scale_down: f64,
    /// ROAS below which the campaign is paused.
    pub roas_pause: f64,
    /// Aggressive scale-up multiplier (> 1).
    pub multiplier_aggressive_up: f64,
    /// Scale-up multiplier (> 1).
    pub multiplier_up: f64,
    /// Scale-down multiplier (0 < m < 1).
    pub multiplier_down: f64,
    /// Impressions needed before any decision.
    pub min_impressions: i64,
    /// ISO 4217 currency of every amount.
    pub currency: String,
    /// Lowest daily budget the engine sets, minor units.
    pub min_daily_budget_minor: i64,
    /// Highest daily budget the engine sets, minor units.
    pub max_daily_budget_minor: i64,
    /// Cap on the sum of the account's active daily budgets, minor units.
    pub max_daily_spend_limit_minor: i64,
    /// A new budget above this needs approval, minor units.
    pub require_approval_threshold_minor: i64,
    /// An increase above this needs approval, minor units.
    pub auto_approve_up_to_minor: i64,
    /// Least time between two budget changes of one campaign.
    pub cooldown: TimeDelta,
    /// Which performance window decisions use.
    pub metrics_window: MetricsWindow,
    /// Whether learned hour-of-day schedules are applied.
    pub apply_hourly_schedule: bool,
    /// How budgets are decided: the threshold table or marginal ROAS.
    pub strategy: Strategy,
    /// The marginal-ROAS strategy's settings (kept, unused, under the table).
    pub marginal: MarginalSettings,
}

/// How a rule decides budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// The decision table on the window's ROAS and CTR (the seed examples).
    #[default]
    Thresholds,
    /// Lag-completed, pooled posterior of each campaign's ROAS; budgets moved
    /// toward equal marginal return inside the account cap
    /// ([`crate::domain::strategy`]).
    MarginalRoas,
}

impl Strategy {
    /// Stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Thresholds => "thresholds",
            Self::MarginalRoas => "marginal_roas",
        }
    }

    /// Inverse of [`as_str`](Self::as_str); also takes `marginal-roas`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "thresholds" => Some(Self::Thresholds),
            "marginal_roas" | "marginal-roas" => Some(Self::MarginalRoas),
            _ => None,
        }
    }
}

/// Settings of the marginal-ROAS strategy. Defaults: see [`Default`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarginalSettings {
    /// Largest change of one budget move, percent of the budget (20).
    pub max_step_percent: f64,
    /// Smallest change worth making, percent of the budget (3).
    pub min_move_percent: f64,
    /// Half-life of the recency weighting of past days, days (7).
    pub half_life_days: f64,
    /// Two-sided credible level of the interval that sets the no-change band (0.8).
    pub credible_level: f64,
    /// Lowest plausible elasticity of revenue to budget (0.55).
    pub elasticity_low: f64,
    /// Highest plausible elasticity of revenue to budget (0.85).
    pub elasticity_high: f64,
    /// One-sided credible level needed to pause: the upper bound of ROAS at
    /// the minimum budget must be below `roas_pause` at this level (0.99).
    pub pause_evidence: f64,
}

impl Default for MarginalSettings {
    fn default() -> Self {
        Self {
            max_step_percent: 20.0,
            min_move_percent: 3.0,
            half_life_days: 7.0,
            credible_level: 0.8,
            elasticity_low: 0.55,
            elasticity_high: 0.85,
            pause_evidence: 0.99,
        }
    }
}

impl MarginalSettings {
    /// The middle elasticity, used for targets.
    pub fn elasticity_mid(&self) -> f64 {
        (self.elasticity_low + self.elasticity_high) / 2.0
    }

    /// Checks every invariant; the error names the rule field (`marginal_*`).
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("marginal_max_step_percent", self.max_step_percent),
            ("marginal_min_move_percent", self.min_move_percent),
            ("marginal_half_life_days", self.half_life_days),
            ("marginal_credible_level", self.credible_level),
            ("marginal_elasticity_low", self.elasticity_low),
            ("marginal_elasticity_high", self.elasticity_high),
            ("marginal_pause_evidence", self.pause_evidence),
        ] {
            if !value.is_finite() {
                return Err(Invalid::new(field, "must be a finite number"));
            }
        }
        if !(self.max_step_percent > 0.0 && self.max_step_percent <= 100.0) {
            return Err(Invalid::new("marginal_max_step_percent", "must be above 0 and at most 100"));
        }
        if !(self.min_move_percent >= 0.0 && self.min_move_percent < self.max_step_percent) {
            return Err(Invalid::new("marginal_min_move_percent", "must be at least 0 and below the max step"));
        }
        if !(0.5..=90.0).contains(&self.half_life_days) {
            return Err(Invalid::new("marginal_half_life_days", "must be between 0.5 and 90 days"));
        }
        if !(0.5..=0.999).contains(&self.credible_level) {
            return Err(Invalid::new("marginal_credible_level", "must be between 0.5 and 0.999"));
        }
        if !(self.elasticity_low > 0.0 && self.elasticity_low < 1.0) {
            return Err(Invalid::new("marginal_elasticity_low", "must be above 0 and below 1"));
        }
        if !(self.elasticity_high >= self.elasticity_low && self.elasticity_high < 1.0) {
            return Err(Invalid::new(
                "marginal_elasticity_high",
                "must be at least marginal_elasticity_low and below 1",
            ));
        }
        if !(0.5..=0.9999).contains(&self.pause_evidence) {
            return Err(Invalid::new("marginal_pause_evidence", "must be between 0.5 and 0.9999"));
        }
        Ok(())
    }
}

/// Default cooldown: Meta advises at most 2-3 budget changes a day.
pub const DEFAULT_COOLDOWN_HOURS: i64 = 8;

impl RuleSettings {
    /// The default rule's numbers, in `currency` with Meta's minor-unit `offset`
    /// (100 for USD: $10 is 1000; 1 for JPY).
    pub fn defaults(name: impl Into<String>, currency: impl Into<String>, offset: i64) -> Self {
        Self {
            name: name.into(),
            enabled: true,
            roas_scale_up_aggressive: 4.0,
            ctr_scale_up_aggressive_percent: 3.0,
            roas_scale_up: 3.0,
            roas_scale_down: 1.5,
            roas_pause: 1.0,
            multiplier_aggressive_up: 1.5,
            multiplier_up: 1.2,
            multiplier_down: 0.7,
            min_impressions: 1000,
            currency: currency.into(),
            min_daily_budget_minor: 10 * offset,
            max_daily_budget_minor: 1_000 * offset,
            max_daily_spend_limit_minor: 5_000 * offset,
            require_approval_threshold_minor: 500 * offset,
            auto_approve_up_to_minor: 100 * offset,
            cooldown: TimeDelta::hours(DEFAULT_COOLDOWN_HOURS),
            metrics_window: MetricsWindow::Last24Hours,
            apply_hourly_schedule: false,
            strategy: Strategy::Thresholds,
            marginal: MarginalSettings::default(),
        }
    }

    /// Checks every invariant; the error names the first offending field.
    pub fn validate(&self) -> Result<()> {
        let name_chars = self.name.trim().chars().count();
        if name_chars == 0 {
            return Err(Invalid::new("name", "must not be empty"));
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new("name", format!("must be at most {MAX_NAME_CHARS} characters")));
        }
        if self.name.chars().any(char::is_control) {
            return Err(Invalid::new("name", "must not contain control characters"));
        }
        for (field, value) in [
            ("roas_scale_up_aggressive", self.roas_scale_up_aggressive),
            ("ctr_scale_up_aggressive_percent", self.ctr_scale_up_aggressive_percent),
            ("roas_scale_up", self.roas_scale_up),
            ("roas_scale_down", self.roas_scale_down),
            ("roas_pause", self.roas_pause),
            ("multiplier_aggressive_up", self.multiplier_aggressive_up),
            ("multiplier_up", self.multiplier_up),
            ("multiplier_down", self.multiplier_down),
        ] {
            if !value.is_finite() {
                return Err(Invalid::new(field, "must be a finite number"));
            }
            if value < 0.0 {
                return Err(Invalid::new(field, "must not be negative"));
            }
        }
        if self.ctr_scale_up_aggressive_percent > 100.0 {
            return Err(Invalid::new("ctr_scale_up_aggressive_percent", "is a percentage: at most 100"));
        }
        if self.roas_pause >= self.roas_scale_down {
            return Err(Invalid::new("roas_pause", "must be below roas_scale_down"));
        }
        if self.roas_scale_down > self.roas_scale_up {
            return Err(Invalid::new("roas_scale_down", "must be at most roas_scale_up"));
        }
        if self.roas_scale_up > self.roas_scale_up_aggressive {
            return Err(Invalid::new("roas_scale_up", "must be at most roas_scale_up_aggressive"));
        }
        // Multipliers above 10 are never intended and would defeat the limits' purpose.
        for (field, value) in
            [("multiplier_aggressive_up", self.multiplier_aggressive_up), ("multiplier_up", self.multiplier_up)]
        {
            if value <= 1.0 || value > 10.0 {
                return Err(Invalid::new(field, "must be above 1 (a scale-up) and at most 10"));
            }
        }
        if self.multiplier_down <= 0.0 || self.multiplier_down >= 1.0 {
            return Err(Invalid::new("multiplier_down", "must be between 0 and 1 (a scale-down)"));
        }
        if self.min_impressions < 0 {
            return Err(Invalid::new("min_impressions", "must not be negative"));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Invalid::new("currency", "must be a 3-letter ISO 4217 code such as \"USD\""));
        }
        // Three capitals are not enough: a made-up code (`USS`) would never
        // match an account's currency and would silently hold every change.
        if !crate::domain::money::is_known_currency(&self.currency) {
            return Err(Invalid::new("currency", "is not an ISO 4217 currency an ad account can use"));
        }
        for (field, value) in [
            ("min_daily_budget_minor", self.min_daily_budget_minor),
            ("max_daily_budget_minor", self.max_daily_budget_minor),
            ("max_daily_spend_limit_minor", self.max_daily_spend_limit_minor),
            ("require_approval_threshold_minor", self.require_approval_threshold_minor),
            ("auto_approve_up_to_minor", self.auto_approve_up_to_minor),
        ] {
            if value < 0 {
                return Err(Invalid::new(field, "must not be negative"));
            }
            if value > MAX_AMOUNT_MINOR {
                return Err(Invalid::new(field, format!("must be at most {MAX_AMOUNT_MINOR}")));
            }
        }
        if self.min_daily_budget_minor > self.max_daily_budget_minor {
            return Err(Invalid::new("min_daily_budget_minor", "must not exceed max_daily_budget_minor"));
        }
        if self.max_daily_budget_minor == 0 {
            return Err(Invalid::new("max_daily_budget_minor", "must be above 0"));
        }
        let cooldown = self.cooldown.num_seconds();
        if self.cooldown < TimeDelta::zero() || cooldown > MAX_COOLDOWN_SECONDS {
            return Err(Invalid::new("cooldown", "must be between 0 and 30 days"));
        }
        self.marginal.validate()
    }
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRule {
    /// Database id.
    pub id: i64,
    /// The account it covers.
    pub account_id: AccountId,
    /// The campaign it covers; `None` for the account-wide rule.
    pub campaign_id: Option<CampaignId>,
    /// The changeable part.
    pub settings: RuleSettings,
    /// Who created it.
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A rule about to be created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRule {
    /// The account it covers.
    pub account_id: AccountId,
    /// The campaign it covers; `None` for the account-wide rule.
    pub campaign_id: Option<CampaignId>,
    /// Validated settings.
    pub settings: RuleSettings,
    /// Who creates it.
    pub created_by: String,
}

/// Picks the rule that applies to a campaign: its own rule over the account's.
/// Disabled rules never apply.
pub fn applicable_rule<'a>(rules: &'a [ScalingRule], campaign: &CampaignId) -> Option<&'a ScalingRule> {
    let enabled = || rules.iter().filter(|r| r.settings.enabled);
    enabled().find(|r| r.campaign_id.as_ref() == Some(campaign)).or_else(|| enabled().find(|r| r.campaign_id.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> RuleSettings {
        RuleSettings::defaults("Default", "USD", 100)
    }

    #[test]
    fn defaults_are_valid_and_hold_the_default_rules_numbers() {
        let s = valid();
        s.validate().expect("defaults validate");
        assert_eq!(s.min_daily_budget_minor, 1_000);
        assert_eq!(s.max_daily_budget_minor, 100_000);
        assert_eq!(s.max_daily_spend_limit_minor, 500_000);
        assert_eq!(s.require_approval_threshold_minor, 50_000);
        assert_eq!(s.auto_approve_up_to_minor, 10_000);
        assert_eq!(RuleSettings::defaults("x", "JPY", 1).min_daily_budget_minor, 10);
    }

    fn field_of(s: &RuleSettings) -> String {
        match s.validate() {
            Err(Invalid { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    type Mutation = Box<dyn Fn(&mut RuleSettings)>;

    #[test]
    fn each_broken_invariant_names_its_field() {
        let cases: Vec<(&str, Mutation)> = vec![
            ("name", Box::new(|s| s.name = "  ".into())),
            ("name", Box::new(|s| s.name = "x".repeat(201))),
            ("roas_pause", Box::new(|s| s.roas_pause = f64::NAN)),
            ("roas_scale_up", Box::new(|s| s.roas_scale_up = f64::INFINITY)),
            ("roas_pause", Box::new(|s| s.roas_pause = -1.0)),
            ("roas_pause", Box::new(|s| s.roas_pause = 1.5)),
            ("roas_scale_down", Box::new(|s| s.roas_scale_down = 3.5)),
            ("roas_scale_up", Box::new(|s| s.roas_scale_up = 4.5)),
            ("multiplier_up", Box::new(|s| s.multiplier_up = 1.0)),
            ("multiplier_aggressive_up", Box::new(|s| s.multiplier_aggressive_up = 0.5)),
            ("multiplier_down", Box::new(|s| s.multiplier_down = 1.0)),
            ("multiplier_down", Box::new(|s| s.multiplier_down = 0.0)),
            ("min_impressions", Box::new(|s| s.min_impressions = -1)),
            ("currency", Box::new(|s| s.currency = "usd".into())),
            ("min_daily_budget_minor", Box::new(|s| s.min_daily_budget_minor = 200_000)),
            ("max_daily_spend_limit_minor", Box::new(|s| s.max_daily_spend_limit_minor = -5)),
            ("auto_approve_up_to_minor", Box::new(|s| s.auto_approve_up_to_minor = i64::MAX)),
            ("cooldown", Box::new(|s| s.cooldown = TimeDelta::seconds(-1))),
            ("ctr_scale_up_aggressive_percent", Box::new(|s| s.ctr_scale_up_aggressive_percent = 101.0)),
        ];
        for (field, mutate) in cases {
            let mut s = valid();
            mutate(&mut s);
            assert_eq!(field_of(&s), field);
        }
    }

    #[test]
    fn equal_scale_thresholds_are_allowed() {
        let mut s = valid();
        s.roas_scale_down = 3.0;
        s.roas_scale_up = 3.0;
        s.roas_scale_up_aggressive = 3.0;
        assert!(s.validate().is_ok());
    }
}
