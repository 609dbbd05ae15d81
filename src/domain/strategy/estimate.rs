//! The estimator: a recency-weighted, lag-completed Gamma-Poisson posterior
//! of each campaign's ROAS at its current budget, with the Gamma prior fitted
//! to the account's campaigns by empirical Bayes (method of moments).
//!
//! Revenue measured in units of the campaign's (shrunk) order value, widened
//! by [`VALUE_DISPERSION`], is close to a Poisson count whose mean is ROAS x
//! the lag-completed spend; a Gamma prior on ROAS then gives a Gamma
//! posterior in closed form. The dispersion is measured per account (Pearson's
//! statistic of the daily figures around each campaign's mean), so that
//! overdispersed purchases widen the intervals instead of moving budgets.
use crate::domain::rule::MarginalSettings;

use super::stats::gamma_quantile;

/// Variance of revenue over (mean x order value) assumed while an account has
/// too few campaign-days to measure it: Poisson purchases whose values vary
/// (a log-normal spread of about 0.35 adds 13%) plus day-to-day swings.
pub const VALUE_DISPERSION: f64 = 1.5;
/// Distinct day ages whose recency weights are kept while estimating an
/// account (its campaigns' days share a few dozen).
const MAX_KEPT_WEIGHTS: usize = 64;
/// Campaign-days (beyond one per campaign) needed to measure the dispersion.
const MIN_DISPERSION_DF: f64 = 20.0;
/// Purchases of prior weight when a campaign's order value is shrunk toward
/// the account's.
const AOV_PRIOR_PURCHASES: f64 = 5.0;
/// Least prior spread, relative to the prior mean: campaigns never count as
/// more alike than this.
const MIN_PRIOR_CV: f64 = 0.02;
/// Prior spread, relative to the mean, when the account has too few
/// campaigns with data to measure it.
const FALLBACK_PRIOR_CV: f64 = 0.5;

/// One account-local day of a campaign's history, as reported now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayExposure {
    /// Spend, minor units.
    pub spend_minor: i64,
    /// Purchase revenue reported so far, minor units.
    pub revenue_minor: i64,
    /// Purchases reported so far.
    pub conversions: i64,
    /// Share of the day's eventual revenue already reported, from the lag
    /// curve and the day's spend by hour (1 for old days).
    pub reported_share: f64,
    /// Age of the day's spend, days (0 for today): its recency weight.
    pub age_days: f64,
    /// The daily budget the day ran on (its mean over the day), minor units:
    /// translates the day's ROAS to the current budget.
    pub budget_minor: i64,
}

/// Everything the estimator reads about one campaign.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CampaignHistory {
    /// The daily budget now, minor units.
    pub current_budget_minor: i64,
    /// Its days, any order.
    pub days: Vec<DayExposure>,
}

/// The account's prior on ROAS at current budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccountPrior {
    /// Prior mean ROAS.
    pub mean: f64,
    /// Prior standard deviation of ROAS between campaigns.
    pub sd: f64,
    /// Campaigns with data it was fitted on.
    pub campaigns: usize,
}

/// What the engine believes about one campaign's ROAS at its current budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Belief {
    /// Posterior mean ROAS.
    pub roas: f64,
    /// Lower bound of the credible interval.
    pub low: f64,
    /// Upper bound of the credible interval.
    pub high: f64,
    /// The credible level of `low`..`high`.
    pub level: f64,
    /// One-sided upper bound at the pause evidence level.
    pub pause_high: f64,
    /// ROAS as reported (revenue seen / spend), unweighted.
    pub reported_roas: f64,
    /// Purchases reported over the days used.
    pub purchases: i64,
    /// Days with spend.
    pub days: usize,
    /// Share of the spend's revenue not reported yet (expected), 0-1.
    pub unreported_share: f64,
    /// Spend over the days used, minor units.
    pub spend_minor: i64,
}

impl Belief {
    /// Revenue still expected from the reporting lag, relative to what is
    /// reported (0.12 = +12%).
    pub fn lag_uplift(&self) -> f64 {
        if self.unreported_share >= 1.0 { 0.0 } else { self.unreported_share / (1.0 - self.unreported_share) }
    }
}

/// Sufficient statistics of one campaign, in count units.
#[derive(Debug, Clone, Copy)]
struct Stats {
    /// Effective (Kish) count: revenue / unit.
    n: f64,
    /// Effective exposure: lag-completed, budget-adjusted spend / unit.
    x: f64,
    /// Pearson's statistic of its days, and how many days entered it.
    chi2: f64,
    cells: f64,
    spend: i64,
    revenue: i64,
    purchases: i64,
    days: usize,
    unreported: f64,
}

/// Estimates every campaign of one account. `None` for a campaign without
/// spend; the prior is `None` (and so is every belief) while the account has
/// reported no purchase at all, since there is nothing to learn from yet.
pub fn estimate_account(
    settings: &MarginalSettings,
    histories: &[CampaignHistory],
) -> (Option<AccountPrior>, Vec<Option<Belief>>) {
    let b = settings.elasticity_mid();
    let half_life = settings.half_life_days.max(0.01);
    // The account's order value, for campaigns with few purchases of their own.
    let (rev, conv, spend_all, days_all) =
        histories.iter().flat_map(|h| &h.days).fold((0.0_f64, 0.0_f64, 0.0_f64, 0.0_f64), |(r, c, s, d), day| {
            (
                r + day.revenue_minor.max(0) as f64,
                c + day.conversions.max(0) as f64,
                s + day.spend_minor.max(0) as f64,
                d + 1.0,
            )
        });
    let account_aov = if conv > 0.0 {
        rev / conv
    } else {
        // No purchase anywhere: any unit will do, nothing is estimated.
        (spend_all / days_all.max(1.0) / 4.0).max(1.0)
    };

    // Recency weights by age: the days of an account's campaigns share a
    // handful of ages, so each weight is computed once, not once per day.
    let mut weights: Vec<(u64, f64)> = Vec::new();
    let stats: Vec<Option<Stats>> = histories
        .iter()
        .map(|h| {
            let current = h.current_budget_minor.max(0) as f64;
            let (mut ew, mut ew2, mut rw) = (0.0, 0.0, 0.0);
            let mut exposures: Vec<(f64, f64)> = Vec::with_capacity(h.days.len());
            let (mut spend, mut revenue, mut purchases, mut days, mut spend_f) = (0_i64, 0_i64, 0_i64, 0, 0.0);
            for d in &h.days {
                if d.spend_minor <= 0 {
                    continue;
                }
                let s = d.spend_minor as f64;
                let f = if d.reported_share.is_finite() { d.reported_share.clamp(0.01, 1.0) } else { 1.0 };
                let age = d.age_days.max(0.0);
                let w = match weights.iter().find(|(bits, _)| *bits == age.to_bits()) {
                    Some((_, w)) => *w,
                    None => {
                        let w = 0.5_f64.powf(age / half_life);
                        // Bounded, so that ages that never repeat cost one
                        // short scan and not a growing one.
                        if weights.len() < MAX_KEPT_WEIGHTS {
                            weights.push((age.to_bits(), w));
                        }
                        w
                    }
                };
                // ROAS at budget B is ROAS(current) x (B / current)^(b - 1);
                // a day on the current budget needs no power (it is 1).
                let g = if d.budget_minor > 0 && current > 0.0 && d.budget_minor as f64 != current {
                    (d.budget_minor as f64 / current).powf(b - 1.0)
                } else {
                    1.0
                };
                let e = s * f * g;
                exposures.push((e, d.revenue_minor.max(0) as f64));
                ew += w * e;
                ew2 += w * w * e;
                rw += w * d.revenue_minor.max(0) as f64;
                spend = spend.saturating_add(d.spend_minor);
                revenue = revenue.saturating_add(d.revenue_minor.max(0));
                purchases = purchases.saturating_add(d.conversions.max(0));
                spend_f += s * f;
                days += 1;
            }
            if ew <= 0.0 || ew2 <= 0.0 {
                return None;
            }
            let aov = (revenue as f64 + AOV_PRIOR_PURCHASES * account_aov) / (purchases as f64 + AOV_PRIOR_PURCHASES);
            let unit = aov.max(1.0);
            // Pearson's statistic of the days around the campaign's own mean, in purchase units.
            let (mut chi2, mut cells) = (0.0, 0.0);
            let rate = rw / ew;
            if rate > 0.0 {
                for (e, r) in &exposures {
                    let expected = rate * e;
                    if expected > 0.0 {
                        chi2 += (r - expected).powi(2) / (expected * unit);
                        cells += 1.0;
                    }
                }
            }
            // Kish: weights make the data worth (sum w e)^2 / sum w^2 e.
            let kish = ew / ew2;
            Some(Stats {
                n: rw * kish / unit,
                x: ew * kish / unit,
                chi2,
                cells,
                spend,
                revenue,
                purchases,
                days,
                unreported: 1.0 - spend_f / spend.max(1) as f64,
            })
        })
        .collect();

    // Overdispersion: Pearson's statistic over its degrees of freedom, never
    // below Poisson; the default until enough campaign-days exist.
    let (chi2, cells, fitted) =
        stats.iter().flatten().fold((0.0, 0.0, 0.0), |(c, n, k), s| (c + s.chi2, n + s.cells, k + 1.0));
    let dispersion =
        if cells - fitted >= MIN_DISPERSION_DF { (chi2 / (cells - fitted)).clamp(1.0, 20.0) } else { VALUE_DISPERSION };
    let stats: Vec<Option<Stats>> =
        stats.into_iter().map(|s| s.map(|s| Stats { n: s.n / dispersion, x: s.x / dispersion, ..s })).collect();
    let with_data: Vec<&Stats> = stats.iter().flatten().collect();
    let (sum_n, sum_x): (f64, f64) = with_data.iter().fold((0.0, 0.0), |(n, x), s| (n + s.n, x + s.x));
    if sum_n <= 0.0 || sum_x <= 0.0 {
        return (None, vec![None; histories.len()]);
    }
    let mean = sum_n / sum_x;
    let k = with_data.len();
    let tau2 = if k >= 3 {
        // Method of moments for Poisson rates: E[sum x (r - m)^2] = (k - 1) m + tau^2 (sum x - sum x^2 / sum x).
        let spread: f64 = with_data.iter().map(|s| s.x * (s.n / s.x - mean).powi(2)).sum();
        let sum_x2: f64 = with_data.iter().map(|s| s.x * s.x).sum();
        let denominator = sum_x - sum_x2 / sum_x;
        if denominator > 0.0 { (spread - (k as f64 - 1.0) * mean) / denominator } else { 0.0 }
    } else {
        (FALLBACK_PRIOR_CV * mean).powi(2)
    };
    let tau2 = tau2.max((MIN_PRIOR_CV * mean).powi(2));
    // The prior's mean is estimated from these same campaigns: its own
    // uncertainty (the exposure-weighted mean's variance) widens the prior, or
    // every campaign's interval would take an account-wide swing of the
    // reported figures (noise, lag) for evidence, since with alike campaigns
    // the prior alone sets their intervals.
    let sum_x2: f64 = with_data.iter().map(|s| s.x * s.x).sum();
    let var_mean = tau2 * sum_x2 / (sum_x * sum_x) + mean / sum_x;
    let prior_var = tau2 + var_mean;
    let (shape0, rate0) = (mean * mean / prior_var, mean / prior_var);
    let prior = AccountPrior { mean, sd: tau2.sqrt(), campaigns: k };

    let level = settings.credible_level;
    let beliefs = stats
        .iter()
        .map(|s| {
            let s = s.as_ref()?;
            let (shape, rate) = (shape0 + s.n, rate0 + s.x);
            Some(Belief {
                roas: shape / rate,
                low: gamma_quantile(shape, rate, (1.0 - level) / 2.0),
                high: gamma_quantile(shape, rate, (1.0 + level) / 2.0),
                level,
                pause_high: gamma_quantile(shape, rate, settings.pause_evidence),
                reported_roas: if s.spend > 0 { s.revenue as f64 / s.spend as f64 } else { 0.0 },
                purchases: s.purchases,
                days: s.days,
                unreported_share: s.unreported.clamp(0.0, 1.0),
                spend_minor: s.spend,
            })
        })
        .collect();
    (Some(prior), beliefs)
}
