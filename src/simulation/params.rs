//! Simulation: every parameter of the market model, read from a TOML market
//! file (`autoscaler simulate --market-config FILE`). Three files ship in
//! `simulation/`: `market.toml` (the default market, equal to
//! [`MarketParams::realistic`]), `no-signal.toml` (identical flat campaigns)
//! and `harsh.toml` (every delivery cost switched on). Every key is optional
//! (a missing key keeps the default market's value), an unknown key is an
//! error that names it, and every value is range-checked by name, so a typo
//! cannot silently fall back to a default.
use meta_sandbox::market::{PACING_WEIGHTS, pacing_shares};
use serde::{Deserialize, Serialize};

/// The default market file, shipped in the repository.
pub const DEFAULT_FILE: &str = include_str!("../../simulation/market.toml");
/// The no-signal market file.
pub const NO_SIGNAL_FILE: &str = include_str!("../../simulation/no-signal.toml");
/// The harsh market file: learning phases, slow lag, overdispersion and
/// under-delivery all on.
pub const HARSH_FILE: &str = include_str!("../../simulation/harsh.toml");

/// A market file that cannot be used: unreadable TOML, an unknown key or a
/// value out of range. The message names the key or parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("market file: {0}")]
pub struct ParamsError(pub String);

/// Every parameter of the simulated market. Money in minor units (cents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketParams {
    /// A name for reports.
    pub name: String,
    /// Ad accounts.
    pub accounts: AccountParams,
    /// How campaigns differ.
    pub campaigns: CampaignParams,
    /// Hour of day: audience and conversion quality.
    pub hours: HourParams,
    /// Day to day: weekday demand and drift.
    pub days: DayParams,
    /// How budgets turn into spend.
    pub delivery: DeliveryParams,
    /// How spend turns into conversions.
    pub conversions: ConversionParams,
    /// The learning phase after a large budget edit.
    pub learning: LearningParams,
    /// When conversions are reported.
    pub lag: LagParams,
}

/// Ad accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountParams {
    /// Each account's starting budgets sum to at most this share of its cap
    /// (they are scaled down, in whole currency units, when they would not).
    pub start_share_of_cap: f64,
    /// Smallest starting budget after that scaling.
    pub min_start_budget_minor: i64,
}

/// How campaigns differ. Log-normal draws are `median * exp(sigma * z)`,
/// then clamped to `[min, max]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignParams {
    /// Median ROAS at the starting budget paced flat (`roas0`).
    pub roas_median: f64,
    /// Log-normal sigma of `roas0`.
    pub roas_sigma: f64,
    /// Lowest `roas0`.
    pub roas_min: f64,
    /// Highest `roas0`.
    pub roas_max: f64,
    /// Lowest returns exponent `b` (revenue = K * spend^b).
    pub exponent_min: f64,
    /// `b` is drawn uniformly in `[exponent_min, exponent_min + exponent_spread]`.
    pub exponent_spread: f64,
    /// Median starting daily budget (rounded to whole currency units).
    pub budget_median_minor: i64,
    /// Log-normal sigma of the starting budget.
    pub budget_sigma: f64,
    /// Smallest starting budget.
    pub budget_min_minor: i64,
    /// Largest starting budget.
    pub budget_max_minor: i64,
    /// Lowest cost per thousand impressions.
    pub cpm_min_minor: i64,
    /// The CPM is drawn uniformly in `[cpm_min_minor, cpm_min_minor + cpm_spread_minor]`.
    pub cpm_spread_minor: i64,
    /// Median click-through rate (a fraction) of a campaign at the median ROAS.
    pub ctr_median: f64,
    /// How the click-through rate follows ROAS: `(roas0 / roas_median)^x`.
    pub ctr_roas_elasticity: f64,
    /// Log-normal sigma of the click-through rate around that.
    pub ctr_sigma: f64,
    /// Lowest click-through rate.
    pub ctr_min: f64,
    /// Highest click-through rate.
    pub ctr_max: f64,
    /// Median of a campaign's mean order value.
    pub aov_median_minor: i64,
    /// Log-normal sigma of the mean order value across campaigns.
    pub aov_sigma: f64,
    /// Lowest mean order value.
    pub aov_min_minor: i64,
    /// Highest mean order value.
    pub aov_max_minor: i64,
}

/// Hour of day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HourParams {
    /// Relative audience of each hour, midnight first (24 values; normalised
    /// to shares). A flat-paced budget spends in these shares.
    pub pacing: Vec<f64>,
    /// Peak groups of conversion quality; each campaign joins one.
    pub peaks: Vec<PeakGroup>,
    /// Smallest strength `s` of the quality curve `1 + s cos(2 pi (h - peak) / 24)`.
    pub quality_strength_min: f64,
    /// `s` is drawn uniformly in `[quality_strength_min, quality_strength_min
    /// + quality_strength_spread]`. Both 0: every hour converts exactly alike.
    pub quality_strength_spread: f64,
}

/// Campaigns whose conversion quality peaks in the same window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeakGroup {
    /// Share of campaigns in the group (the groups' shares sum to 1).
    pub share: f64,
    /// Earliest peak hour.
    pub start_hour: f64,
    /// The peak is drawn uniformly in `[start_hour, start_hour + width_hours)`.
    pub width_hours: f64,
}

/// Day to day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DayParams {
    /// Demand of each weekday shared by every campaign, Monday first (7 values).
    pub weekday: Vec<f64>,
    /// Per-campaign variation of each weekday's demand (uniform +-).
    pub weekday_jitter: f64,
    /// Largest creative fatigue per day (each campaign draws 0 to this).
    pub fatigue_max_per_day: f64,
    /// Daily standard deviation of the random walk of a campaign's return (log scale).
    pub drift_sigma: f64,
}

/// How budgets turn into spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryParams {
    /// Relative noise of hourly spend around the paced budget (uniform +-).
    pub spend_noise: f64,
    /// Chance that a campaign-day under-delivers (Meta cannot find enough
    /// audience at the bid): the same days for every policy.
    pub under_delivery_chance: f64,
    /// On such a day, the share of the budget left unspent is uniform in
    /// `[0, under_delivery_max_share]`.
    pub under_delivery_max_share: f64,
}

/// How spend turns into conversions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversionParams {
    /// Spread of each conversion's value around the campaign's mean order
    /// value (log-normal sigma).
    pub order_value_sigma: f64,
    /// Overdispersion: conversions are Poisson around `mean * G` with `G`
    /// gamma-distributed, mean 1 and variance `dispersion` (negative
    /// binomial counts). 0: plain Poisson.
    pub dispersion: f64,
    /// How long one draw of `G` lasts: a whole campaign-day or one hour.
    pub dispersion_scope: DispersionScope,
}

/// How long one overdispersion shock lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispersionScope {
    /// One shock per campaign-day (auction conditions, a creative's day).
    Day,
    /// One shock per campaign-hour.
    Hour,
}

/// The learning phase: an edit that moves a budget by more than
/// `edit_threshold` relative to what it was `window_hours` earlier lowers the
/// campaign's revenue per unit of spend by `efficiency_loss` for
/// `duration_hours`. Several small edits inside the window add up, so
/// stepping around the threshold does not avoid it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningParams {
    /// Relative budget change that starts a learning phase (0.2: more than 20%).
    pub edit_threshold: f64,
    /// Hours over which edits add up.
    pub window_hours: usize,
    /// Share of revenue lost while learning (0: no learning phase).
    pub efficiency_loss: f64,
    /// Hours a learning phase lasts.
    pub duration_hours: usize,
}

/// When conversions are reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LagParams {
    /// The lag curves; each campaign follows one (by the curves' shares).
    pub curves: Vec<MarketLagCurve>,
    /// Per-campaign log-normal spread of every delay's mean: each campaign
    /// takes one of 16 quantiles of `exp(sigma z)` (0: campaigns of one
    /// curve share it exactly).
    pub campaign_scale_sigma: f64,
}

/// A reporting-lag curve: a share reported within the hour, the rest after
/// exponential delays (truncated at `max_hours` and renormalised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketLagCurve {
    /// A name for people.
    pub name: String,
    /// Share of campaigns on this curve (the curves' shares sum to 1).
    pub share: f64,
    /// Share of conversions reported within the hour.
    pub immediate: f64,
    /// Delayed parts; `immediate` plus their shares sums to 1.
    pub delays: Vec<LagDelay>,
    /// Longest lag in hours: nothing is reported later.
    pub max_hours: usize,
}

/// One exponential part of a lag curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagDelay {
    /// Share of conversions.
    pub share: f64,
    /// Mean delay in hours (before truncation).
    pub mean_hours: f64,
}

impl Default for MarketParams {
    fn default() -> Self {
        Self::realistic()
    }
}

macro_rules! default_from_realistic {
    ($($t:ident => $field:ident),*) => {
        $(impl Default for $t {
            fn default() -> Self {
                MarketParams::realistic().$field
            }
        })*
    };
}
default_from_realistic!(
    AccountParams => accounts,
    CampaignParams => campaigns,
    HourParams => hours,
    DayParams => days,
    DeliveryParams => delivery,
    ConversionParams => conversions,
    LearningParams => learning,
    LagParams => lag
);

impl MarketParams {
    /// The default market: campaigns that differ in ROAS, returns, hours,
    /// weekdays and drift; no learning phase, full delivery, Poisson
    /// conversions, one lag curve.
    pub fn realistic() -> Self {
        Self {
            name: "default".to_owned(),
            accounts: AccountParams { start_share_of_cap: 0.8, min_start_budget_minor: 2_000 },
            campaigns: CampaignParams {
                roas_median: 1.9,
                roas_sigma: 0.55,
                roas_min: 0.3,
                roas_max: 8.0,
                exponent_min: 0.55,
                exponent_spread: 0.30,
                budget_median_minor: 12_000,
                budget_sigma: 0.7,
                budget_min_minor: 2_000,
                budget_max_minor: 80_000,
                cpm_min_minor: 600,
                cpm_spread_minor: 1_200,
                ctr_median: 0.016,
                ctr_roas_elasticity: 0.3,
                ctr_sigma: 0.3,
                ctr_min: 0.003,
                ctr_max: 0.08,
                aov_median_minor: 5_500,
                aov_sigma: 0.5,
                aov_min_minor: 1_500,
                aov_max_minor: 30_000,
            },
            hours: HourParams {
                // The Meta sandbox's pacing curve.
                pacing: PACING_WEIGHTS.to_vec(),
                peaks: vec![
                    PeakGroup { share: 0.7, start_hour: 19.0, width_hours: 3.0 },
                    PeakGroup { share: 0.2, start_hour: 11.0, width_hours: 3.0 },
                    PeakGroup { share: 0.1, start_hour: 7.0, width_hours: 3.0 },
                ],
                quality_strength_min: 0.1,
                quality_strength_spread: 0.4,
            },
            days: DayParams {
                weekday: vec![1.04, 1.01, 0.99, 0.98, 0.95, 0.99, 1.04],
                weekday_jitter: 0.03,
                fatigue_max_per_day: 0.015,
                drift_sigma: 0.03,
            },
            delivery: DeliveryParams { spend_noise: 0.08, under_delivery_chance: 0.0, under_delivery_max_share: 0.3 },
            conversions: ConversionParams {
                order_value_sigma: 0.35,
                dispersion: 0.0,
                dispersion_scope: DispersionScope::Day,
            },
            learning: LearningParams {
                edit_threshold: 0.2,
                window_hours: 24,
                efficiency_loss: 0.0,
                duration_hours: 72,
            },
            lag: LagParams { curves: vec![Self::meta_lag()], campaign_scale_sigma: 0.0 },
        }
    }

    /// Meta-like reporting: 35% within the hour, 40% after a delay of mean
    /// 5 h, 25% of mean 30 h, at most 71 h.
    pub fn meta_lag() -> MarketLagCurve {
        MarketLagCurve {
            name: "meta".to_owned(),
            share: 1.0,
            immediate: 0.35,
            delays: vec![LagDelay { share: 0.40, mean_hours: 5.0 }, LagDelay { share: 0.25, mean_hours: 30.0 }],
            max_hours: 71,
        }
    }

    /// Slow, long-tailed reporting (Criteo-like): about half within 24 h,
    /// about a tenth after two weeks, at most 30 days.
    pub fn slow_lag() -> MarketLagCurve {
        MarketLagCurve {
            name: "slow".to_owned(),
            share: 1.0,
            immediate: 0.2,
            delays: vec![LagDelay { share: 0.3, mean_hours: 6.0 }, LagDelay { share: 0.5, mean_hours: 240.0 }],
            max_hours: 720,
        }
    }

    /// Identical, flat campaigns whose starting budget is already the
    /// profit-maximising one (marginal ROAS `b * roas0` = 1): nothing to
    /// find, only conversion and lag noise to chase.
    pub fn no_signal() -> Self {
        let mut p = Self::realistic();
        p.name = "no-signal".to_owned();
        let c = &mut p.campaigns;
        let b = 0.6;
        (c.roas_median, c.roas_sigma, c.roas_min, c.roas_max) = (1.0 / b, 0.0, 0.3, 8.0);
        (c.exponent_min, c.exponent_spread) = (b, 0.0);
        (c.budget_median_minor, c.budget_sigma) = (12_000, 0.0);
        (c.cpm_min_minor, c.cpm_spread_minor) = (1_000, 0);
        (c.ctr_median, c.ctr_sigma) = (0.015, 0.0);
        (c.aov_median_minor, c.aov_sigma) = (5_500, 0.0);
        (p.hours.quality_strength_min, p.hours.quality_strength_spread) = (0.0, 0.0);
        p.days = DayParams { weekday: vec![1.0; 7], weekday_jitter: 0.0, fatigue_max_per_day: 0.0, drift_sigma: 0.0 };
        p
    }

    /// The default market with every cost real delivery has: a learning
    /// phase (-20% revenue per unit of spend for 72 h after a change of more
    /// than 20% within 24 h), slow long-tailed reporting for every campaign,
    /// overdispersed daily conversions and under-delivery on one day in ten.
    pub fn harsh() -> Self {
        let mut p = Self::realistic();
        p.name = "harsh".to_owned();
        p.learning.efficiency_loss = 0.2;
        p.lag.curves = vec![Self::slow_lag()];
        p.lag.campaign_scale_sigma = 0.3;
        p.conversions.dispersion = 0.3;
        p.delivery.under_delivery_chance = 0.1;
        p
    }

    /// Parses and checks a market file.
    pub fn from_toml(text: &str) -> Result<Self, ParamsError> {
        let params: Self = toml::from_str(text).map_err(|e| ParamsError(e.to_string().trim_end().to_owned()))?;
        params.validate()?;
        Ok(params)
    }

    /// Checks every value against its range; the error names the parameter.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let a = &self.accounts;
        range("accounts.start_share_of_cap", a.start_share_of_cap, 0.01, 1.0)?;
        range("accounts.min_start_budget_minor", a.min_start_budget_minor as f64, 100.0, 1e9)?;
        let c = &self.campaigns;
        range("campaigns.roas_median", c.roas_median, 0.01, 100.0)?;
        range("campaigns.roas_sigma", c.roas_sigma, 0.0, 3.0)?;
        range("campaigns.roas_min", c.roas_min, 0.0, 100.0)?;
        range("campaigns.roas_max", c.roas_max, c.roas_min, 1_000.0)?;
        range("campaigns.exponent_min", c.exponent_min, 0.05, 0.99)?;
        range("campaigns.exponent_spread", c.exponent_spread, 0.0, 0.99 - c.exponent_min)?;
        range("campaigns.budget_median_minor", c.budget_median_minor as f64, 100.0, 1e9)?;
        range("campaigns.budget_sigma", c.budget_sigma, 0.0, 3.0)?;
        range("campaigns.budget_min_minor", c.budget_min_minor as f64, 100.0, 1e9)?;
        range("campaigns.budget_max_minor", c.budget_max_minor as f64, c.budget_min_minor as f64, 1e9)?;
        range("campaigns.cpm_min_minor", c.cpm_min_minor as f64, 1.0, 1e6)?;
        range("campaigns.cpm_spread_minor", c.cpm_spread_minor as f64, 0.0, 1e6)?;
        range("campaigns.ctr_median", c.ctr_median, 1e-6, 1.0)?;
        range("campaigns.ctr_roas_elasticity", c.ctr_roas_elasticity, -3.0, 3.0)?;
        range("campaigns.ctr_sigma", c.ctr_sigma, 0.0, 3.0)?;
        range("campaigns.ctr_min", c.ctr_min, 0.0, 1.0)?;
        range("campaigns.ctr_max", c.ctr_max, c.ctr_min, 1.0)?;
        range("campaigns.aov_median_minor", c.aov_median_minor as f64, 1.0, 1e9)?;
        range("campaigns.aov_sigma", c.aov_sigma, 0.0, 3.0)?;
        range("campaigns.aov_min_minor", c.aov_min_minor as f64, 1.0, 1e9)?;
        range("campaigns.aov_max_minor", c.aov_max_minor as f64, c.aov_min_minor as f64, 1e9)?;
        let h = &self.hours;
        if h.pacing.len() != 24 {
            return Err(ParamsError(format!("`hours.pacing` must have 24 values, got {}", h.pacing.len())));
        }
        for (i, w) in h.pacing.iter().enumerate() {
            range(&format!("hours.pacing[{i}]"), *w, 0.0, 1e6)?;
        }
        if h.pacing.iter().sum::<f64>() <= 0.0 {
            return Err(ParamsError("`hours.pacing` must not be all zero".to_owned()));
        }
        if h.peaks.is_empty() {
            return Err(ParamsError("`hours.peaks` needs at least one group".to_owned()));
        }
        for (i, g) in h.peaks.iter().enumerate() {
            range(&format!("hours.peaks[{i}].share"), g.share, 0.0, 1.0)?;
            range(&format!("hours.peaks[{i}].start_hour"), g.start_hour, 0.0, 24.0)?;
            range(&format!("hours.peaks[{i}].width_hours"), g.width_hours, 0.0, 24.0)?;
        }
        sums_to_one("hours.peaks[].share", h.peaks.iter().map(|g| g.share))?;
        range("hours.quality_strength_min", h.quality_strength_min, 0.0, 0.95)?;
        range("hours.quality_strength_spread", h.quality_strength_spread, 0.0, 0.95 - h.quality_strength_min)?;
        let d = &self.days;
        if d.weekday.len() != 7 {
            return Err(ParamsError(format!("`days.weekday` must have 7 values, got {}", d.weekday.len())));
        }
        for (i, w) in d.weekday.iter().enumerate() {
            range(&format!("days.weekday[{i}]"), *w, 0.01, 100.0)?;
        }
        range("days.weekday_jitter", d.weekday_jitter, 0.0, 0.9)?;
        range("days.fatigue_max_per_day", d.fatigue_max_per_day, 0.0, 0.5)?;
        range("days.drift_sigma", d.drift_sigma, 0.0, 1.0)?;
        let v = &self.delivery;
        range("delivery.spend_noise", v.spend_noise, 0.0, 0.9)?;
        range("delivery.under_delivery_chance", v.under_delivery_chance, 0.0, 1.0)?;
        range("delivery.under_delivery_max_share", v.under_delivery_max_share, 0.0, 1.0)?;
        let k = &self.conversions;
        range("conversions.order_value_sigma", k.order_value_sigma, 0.0, 3.0)?;
        range("conversions.dispersion", k.dispersion, 0.0, 20.0)?;
        let l = &self.learning;
        range("learning.edit_threshold", l.edit_threshold, 0.0, 10.0)?;
        range("learning.window_hours", l.window_hours as f64, 1.0, 24.0 * 60.0)?;
        range("learning.efficiency_loss", l.efficiency_loss, 0.0, 0.95)?;
        range("learning.duration_hours", l.duration_hours as f64, 0.0, 24.0 * 60.0)?;
        if self.lag.curves.is_empty() {
            return Err(ParamsError("`lag.curves` needs at least one curve".to_owned()));
        }
        range("lag.campaign_scale_sigma", self.lag.campaign_scale_sigma, 0.0, 2.0)?;
        for (i, curve) in self.lag.curves.iter().enumerate() {
            let at = |key: &str| format!("lag.curves[{i}].{key}");
            range(&at("share"), curve.share, 0.0, 1.0)?;
            range(&at("immediate"), curve.immediate, 0.0, 1.0)?;
            range(&at("max_hours"), curve.max_hours as f64, 1.0, MAX_LAG_LIMIT_HOURS as f64)?;
            for (j, delay) in curve.delays.iter().enumerate() {
                range(&at(&format!("delays[{j}].share")), delay.share, 0.0, 1.0)?;
                range(&at(&format!("delays[{j}].mean_hours")), delay.mean_hours, 0.01, 24.0 * 365.0)?;
            }
            sums_to_one(
                &at("immediate + delays[].share"),
                [curve.immediate].into_iter().chain(curve.delays.iter().map(|d| d.share)),
            )?;
        }
        sums_to_one("lag.curves[].share", self.lag.curves.iter().map(|c| c.share))?;
        Ok(())
    }

    /// The hours' shares of a flat-paced day (the pacing weights normalised
    /// as the sandbox normalises its own; a missing hour weighs 0).
    pub fn pacing_shares(&self) -> [f64; 24] {
        let weights = std::array::from_fn(|h| self.hours.pacing.get(h).copied().unwrap_or(0.0));
        pacing_shares(&weights)
    }
}

/// Longest reporting lag a market file may set: 90 days.
pub const MAX_LAG_LIMIT_HOURS: usize = 90 * 24;

fn range(name: &str, value: f64, lo: f64, hi: f64) -> Result<(), ParamsError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ParamsError(format!("`{name}` must be between {lo} and {hi}, got {value}")))
    }
}

fn sums_to_one(name: &str, shares: impl Iterator<Item = f64>) -> Result<(), ParamsError> {
    let total: f64 = shares.sum();
    if (total - 1.0).abs() <= 1e-6 { Ok(()) } else { Err(ParamsError(format!("`{name}` must sum to 1, got {total}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of `full` appears in `file`, table by table.
    fn same_keys(path: &str, full: &toml::Value, file: &toml::Value) -> Vec<String> {
        match (full, file) {
            (toml::Value::Table(a), toml::Value::Table(b)) => a
                .iter()
                .flat_map(|(k, v)| match b.get(k) {
                    Some(w) => same_keys(&format!("{path}.{k}"), v, w),
                    None => vec![format!("{path}.{k}")],
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn the_shipped_files_parse_to_exactly_the_built_in_markets() {
        for (text, preset) in [
            (DEFAULT_FILE, MarketParams::realistic()),
            (NO_SIGNAL_FILE, MarketParams::no_signal()),
            (HARSH_FILE, MarketParams::harsh()),
        ] {
            let parsed = MarketParams::from_toml(text);
            assert_eq!(parsed.as_ref(), Ok(&preset), "{}", preset.name);
        }
        // The default file spells out every parameter, so it documents them all.
        let full = toml::Value::try_from(MarketParams::realistic()).expect("serialises");
        let file: toml::Value = toml::from_str(DEFAULT_FILE).expect("parses");
        assert_eq!(same_keys("", &full, &file), Vec::<String>::new());
    }

    #[test]
    fn a_missing_key_keeps_the_default_and_a_round_trip_is_exact() {
        let p = MarketParams::from_toml("[learning]\nefficiency_loss = 0.25\n").expect("valid");
        assert_eq!(p.learning.efficiency_loss, 0.25);
        assert_eq!(p.campaigns, MarketParams::realistic().campaigns);
        for preset in [MarketParams::realistic(), MarketParams::no_signal(), MarketParams::harsh()] {
            let text = toml::to_string(&preset).expect("serialises");
            assert_eq!(MarketParams::from_toml(&text), Ok(preset));
        }
    }

    #[test]
    fn unknown_keys_and_out_of_range_values_are_named() {
        let err = |text: &str| MarketParams::from_toml(text).expect_err("invalid").to_string();
        assert!(err("[learning]\nefficency_loss = 0.2\n").contains("efficency_loss"));
        assert!(err("[campaign]\nroas_median = 2.0\n").contains("campaign"));
        assert!(err("[learning]\nefficiency_loss = 1.5\n").contains("learning.efficiency_loss"));
        assert!(err("[campaigns]\nexponent_spread = 0.5\n").contains("campaigns.exponent_spread"));
        assert!(err("[conversions]\ndispersion = -1.0\n").contains("conversions.dispersion"));
        assert!(err("[hours]\npacing = [1.0, 2.0]\n").contains("hours.pacing"));
        assert!(err("[conversions]\ndispersion_scope = \"week\"\n").contains("week"));
        assert!(
            err("[lag]\ncurves = [{ name = \"x\", share = 1.0, immediate = 0.5, delays = [], max_hours = 10 }]\n")
                .contains("lag.curves[0].immediate + delays[].share")
        );
        assert!(err("[delivery]\nunder_delivery_chance = nan\n").contains("delivery.under_delivery_chance"));
    }

    #[test]
    fn the_slow_curve_reports_about_half_within_a_day_and_has_a_month_long_tail() {
        let cdf = crate::simulation::market::lag_cdf(&MarketParams::slow_lag(), 1.0);
        let within_day = cdf[23];
        assert!((0.45..0.6).contains(&within_day), "{within_day}");
        let after_two_weeks = 1.0 - cdf[14 * 24];
        assert!((0.05..0.2).contains(&after_two_weeks), "{after_two_weeks}");
        assert_eq!(cdf.len(), 721);
    }
}
