//! Simulation: the market. Per campaign, expected revenue in an hour is
//! `K(day, hour) * spend^b` (diminishing returns, `b` < 1), where `K` carries
//! the campaign's ROAS at its reference budget, the audience of the hour
//! (the pacing curve), an hour-of-day quality effect, a day-of-week effect and
//! a slow drift (creative fatigue plus a random walk). Conversions are Poisson
//! around that expectation (gamma-mixed when the market is overdispersed),
//! each with its own order value and reporting lag drawn from the campaign's
//! lag curve. Every parameter comes from a [`MarketParams`] (a market file);
//! every draw comes from [`super::rng`], so a seed fixes the whole market.
use std::sync::Arc;

use meta_sandbox::market::hour_of_day_factor;

use super::params::{DispersionScope, MarketLagCurve, MarketParams};
use super::rng::{Stream, normal_quantile, uniform};

/// Share of a day's traffic (and of a flat-paced budget) in each hour in the
/// default market: quiet nights, busy evenings. The Meta sandbox's pacing
/// curve, the one both markets share. Sums to 1. A market file may set
/// another shape ([`Market::pacing`]).
pub use meta_sandbox::market::PACING;

/// Which built-in market to simulate, or a market file's parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum MarketKind {
    /// The default market (`simulation/market.toml`): campaigns that differ in
    /// ROAS, returns, hours, weekdays and drift.
    Realistic,
    /// Identical, flat campaigns whose reference budget is already the
    /// profit-maximising one: nothing to find, only noise to chase
    /// (`simulation/no-signal.toml`).
    NoSignal,
    /// The default market with every delivery cost on (`simulation/harsh.toml`).
    Harsh,
    /// A market file's parameters.
    File(Arc<MarketParams>),
}

impl MarketKind {
    /// The parameters of this market.
    pub fn params(&self) -> Arc<MarketParams> {
        match self {
            Self::Realistic => Arc::new(MarketParams::realistic()),
            Self::NoSignal => Arc::new(MarketParams::no_signal()),
            Self::Harsh => Arc::new(MarketParams::harsh()),
            Self::File(p) => Arc::clone(p),
        }
    }

    /// The market's name for reports.
    pub fn name(&self) -> String {
        match self {
            Self::Realistic => "default".to_owned(),
            Self::NoSignal => "no-signal".to_owned(),
            Self::Harsh => "harsh".to_owned(),
            Self::File(p) => p.name.clone(),
        }
    }
}

/// Size and parameters of a simulated market.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketConfig {
    /// The seed of every draw.
    pub seed: u64,
    /// Campaigns in total.
    pub campaigns: usize,
    /// Days simulated, hour by hour.
    pub days: usize,
    /// Campaigns per ad account (each account has its own spend cap).
    pub campaigns_per_account: usize,
    /// The market model's parameters.
    pub params: Arc<MarketParams>,
}

/// One simulated campaign's true economics. Money in minor units (cents).
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Index of its ad account.
    pub account: usize,
    /// Daily budget it starts with, also its reference budget.
    pub budget0_minor: i64,
    /// ROAS at the reference budget with flat pacing, before hour, weekday and drift.
    pub roas0: f64,
    /// Returns exponent `b` of `revenue = K * spend^b` (0 < b < 1).
    pub exponent: f64,
    /// Cost per thousand impressions.
    pub cpm_minor: f64,
    /// Click-through rate, as a fraction.
    pub ctr: f64,
    /// Mean order value.
    pub aov_minor: f64,
    /// Hour-of-day quality (revenue per unit of audience), pacing-weighted mean 1.
    pub hour_quality: [f64; 24],
    /// Index of its reporting-lag curve in [`Market::lag_cdfs`].
    pub lag_curve: usize,
    hour_coef: [f64; 24],
    day_coef: Vec<f64>,
}

impl Campaign {
    /// `K(day, hour)`: expected revenue is `K * spend^b`.
    pub fn coef(&self, day: usize, hour: usize) -> f64 {
        self.hour_coef[hour] * self.day_coef.get(day).copied().unwrap_or(0.0)
    }

    /// Expected revenue of `spend_minor` spent in one hour.
    pub fn expected_revenue(&self, day: usize, hour: usize, spend_minor: f64) -> f64 {
        if spend_minor <= 0.0 { 0.0 } else { self.coef(day, hour) * spend_minor.powf(self.exponent) }
    }

    /// The combined weekday and drift factor of a day (1 = as at the start).
    pub fn day_factor(&self, day: usize) -> f64 {
        self.day_coef.get(day).copied().unwrap_or(0.0)
    }
}

/// A whole simulated market: campaigns, accounts and the reporting lag.
#[derive(Debug, Clone)]
pub struct Market {
    /// The configuration it was built from.
    pub config: MarketConfig,
    /// Every campaign, grouped by account (account `i` owns a contiguous run).
    pub campaigns: Vec<Campaign>,
    /// Number of ad accounts.
    pub accounts: usize,
    /// Share of a flat-paced day's budget spent in each hour (sums to 1).
    pub pacing: [f64; 24],
    /// Cumulative distributions of the reporting lag in hours (index = lag),
    /// one per curve (per campaign when campaigns scale their curve).
    pub lag_cdfs: Vec<Vec<f64>>,
}

impl Market {
    /// Builds the market of `config`; `account_cap_minor` bounds the sum of
    /// each account's starting budgets (they start at most at
    /// `accounts.start_share_of_cap` of it).
    pub fn generate(config: &MarketConfig, account_cap_minor: i64) -> Self {
        let params = &config.params;
        let pacing = params.pacing_shares();
        let per_account = config.campaigns_per_account.max(1);
        let accounts = config.campaigns.div_ceil(per_account);
        let mut campaigns: Vec<Campaign> =
            (0..config.campaigns).map(|i| campaign(config, &pacing, i, i / per_account)).collect();
        // Keep every account's starting budgets under its cap.
        for account in 0..accounts {
            let range = account * per_account..((account + 1) * per_account).min(campaigns.len());
            let total: i64 = campaigns[range.clone()].iter().map(|c| c.budget0_minor).sum();
            let room = account_cap_minor as f64 * params.accounts.start_share_of_cap;
            if total as f64 > room {
                let f = room / total as f64;
                let floor = params.accounts.min_start_budget_minor as f64;
                for c in &mut campaigns[range] {
                    c.budget0_minor = ((c.budget0_minor as f64 * f / 100.0).floor() * 100.0).max(floor) as i64;
                    c.hour_coef = hour_coef(&pacing, c.roas0, c.exponent, c.budget0_minor, &c.hour_quality);
                }
            }
        }
        // Lag curves: each campaign follows one, by the curves' shares; with a
        // per-campaign scale, at one of LAG_SCALES quantiles of its
        // log-normal (so memory stays bounded however many campaigns).
        let curves = &params.lag.curves;
        let sigma = params.lag.campaign_scale_sigma;
        let scales: Vec<f64> = if sigma > 0.0 {
            (0..LAG_SCALES).map(|k| (sigma * normal_quantile((k as f64 + 0.5) / LAG_SCALES as f64)).exp()).collect()
        } else {
            vec![1.0]
        };
        let mut lag_cdfs: Vec<Vec<f64>> = curves.iter().flat_map(|c| scales.iter().map(|s| lag_cdf(c, *s))).collect();
        if lag_cdfs.is_empty() {
            lag_cdfs.push(vec![1.0]);
        }
        for (i, c) in campaigns.iter_mut().enumerate() {
            let u = param(config, i, 30);
            let mut acc = 0.0;
            let mut chosen = curves.len().saturating_sub(1);
            for (k, curve) in curves.iter().enumerate() {
                acc += curve.share;
                if u < acc {
                    chosen = k;
                    break;
                }
            }
            let scale = ((param(config, i, 31) * scales.len() as f64) as usize).min(scales.len() - 1);
            c.lag_curve = chosen * scales.len() + scale;
        }
        Self { config: config.clone(), campaigns, accounts, pacing, lag_cdfs }
    }

    /// Hours simulated.
    pub fn hours(&self) -> usize {
        self.config.days * 24
    }

    /// The market's parameters.
    pub fn params(&self) -> &MarketParams {
        &self.config.params
    }

    /// The longest reporting lag of any campaign, in hours.
    pub fn max_lag_hours(&self) -> usize {
        self.lag_cdfs.iter().map(|c| c.len().saturating_sub(1)).max().unwrap_or(0)
    }

    /// The reporting-lag distribution of campaign `campaign` (index = hours).
    pub fn lag_cdf(&self, campaign: usize) -> &[f64] {
        let curve = self.campaigns.get(campaign).map_or(0, |c| c.lag_curve);
        self.lag_cdfs.get(curve).map_or(&[1.0], Vec::as_slice)
    }

    /// The reporting lag (hours) of a conversion of `campaign` with uniform
    /// draw `u`: monotone in `u`.
    pub fn lag(&self, campaign: usize, u: f64) -> usize {
        let cdf = self.lag_cdf(campaign);
        cdf.partition_point(|c| *c < u).min(cdf.len().saturating_sub(1))
    }

    /// Share of its planned spend that campaign `campaign` delivers on `day`:
    /// 1, except on the under-delivering days (the same for every policy).
    pub fn delivered_share(&self, campaign: usize, day: usize) -> f64 {
        let d = &self.params().delivery;
        if d.under_delivery_chance <= 0.0 {
            return 1.0;
        }
        let (seed, key) = (self.config.seed, campaign as u64);
        if uniform(seed, key, day as u64, Stream::UnderDelivery, 0) < d.under_delivery_chance {
            1.0 - d.under_delivery_max_share * uniform(seed, key, day as u64, Stream::UnderDelivery, 1)
        } else {
            1.0
        }
    }

    /// The overdispersion multiplier of campaign `campaign`'s conversion mean
    /// in hour `t`: gamma-distributed with mean 1 and variance
    /// `conversions.dispersion`, one draw per campaign-day or campaign-hour.
    /// Independent of spend, so more spend still never draws fewer
    /// conversions.
    pub fn demand_shock(&self, campaign: usize, t: usize) -> f64 {
        let k = &self.params().conversions;
        if k.dispersion <= 0.0 {
            return 1.0;
        }
        let period = match k.dispersion_scope {
            DispersionScope::Day => t / 24,
            DispersionScope::Hour => t,
        } as u64;
        let shape = 1.0 / k.dispersion;
        let (seed, key) = (self.config.seed, campaign as u64);
        gamma(shape, &|i| uniform(seed, key, period, Stream::Dispersion, i)) / shape
    }
}

/// How many paces a lag curve comes in when campaigns scale it.
const LAG_SCALES: usize = 16;

/// A gamma(shape, 1) draw from keyed uniforms (Marsaglia and Tsang's
/// method; below shape 1 boosted by `U^(1/shape)`). Deterministic for the
/// key; the draws are independent of anything a policy does.
pub(crate) fn gamma(shape: f64, draw: &dyn Fn(u64) -> f64) -> f64 {
    if shape < 1.0 {
        return gamma(shape + 1.0, draw) * draw(1_000).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    for i in 0..64 {
        let z = normal_quantile(draw(2 * i));
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        if draw(2 * i + 1).ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v;
        }
    }
    d
}

/// `K` per hour at the start: ROAS `roas0` at `budget0` paced flat.
fn hour_coef(pacing: &[f64; 24], roas0: f64, b: f64, budget0_minor: i64, quality: &[f64; 24]) -> [f64; 24] {
    let mut out = [0.0; 24];
    for h in 0..24 {
        let reference = budget0_minor as f64 * pacing[h];
        out[h] = roas0 * reference.powf(1.0 - b) * quality[h];
    }
    out
}

/// The cumulative distribution of a lag curve (index = hours of lag), its
/// delays' means multiplied by `scale`: the immediate share at lag 0, each
/// exponential delay over lags 1..=max (renormalised to its share).
pub(crate) fn lag_cdf(curve: &MarketLagCurve, scale: f64) -> Vec<f64> {
    let max = curve.max_hours.max(1);
    let mut pmf = vec![0.0; max + 1];
    pmf[0] = curve.immediate;
    for delay in &curve.delays {
        let mean = delay.mean_hours * scale;
        let shape: Vec<f64> = (1..=max).map(|lag| (-((lag - 1) as f64) / mean).exp()).collect();
        let total: f64 = shape.iter().sum();
        if total > 0.0 {
            for (lag, w) in (1..=max).zip(&shape) {
                pmf[lag] += delay.share * w / total;
            }
        }
    }
    let mut cdf = vec![0.0; max + 1];
    let mut acc = 0.0;
    for (i, p) in pmf.iter().enumerate() {
        acc += p;
        cdf[i] = acc;
    }
    cdf[max] = 1.0;
    cdf
}

/// A draw of campaign parameter `index`.
fn param(config: &MarketConfig, campaign: usize, index: u64) -> f64 {
    uniform(config.seed, campaign as u64, 0, Stream::Params, index)
}

fn log_normal(u: f64, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal_quantile(u)).exp()
}

fn campaign(config: &MarketConfig, pacing: &[f64; 24], i: usize, account: usize) -> Campaign {
    let params = &config.params;
    let m = &params.campaigns;
    let p = |index| param(config, i, index);
    let roas0 = log_normal(p(1), m.roas_median, m.roas_sigma).clamp(m.roas_min, m.roas_max);
    let exponent = m.exponent_min + m.exponent_spread * p(2);
    // Whole currency units.
    let budget0 = (log_normal(p(3), m.budget_median_minor as f64 / 100.0, m.budget_sigma)
        .clamp(m.budget_min_minor as f64 / 100.0, m.budget_max_minor as f64 / 100.0)
        .round()
        * 100.0) as i64;
    let cpm_minor = m.cpm_min_minor as f64 + m.cpm_spread_minor as f64 * p(4);
    let ctr = (m.ctr_median
        * (roas0 / m.roas_median).powf(m.ctr_roas_elasticity)
        * (m.ctr_sigma * normal_quantile(p(5))).exp())
    .clamp(m.ctr_min, m.ctr_max);
    let aov_minor =
        log_normal(p(6), m.aov_median_minor as f64, m.aov_sigma).clamp(m.aov_min_minor as f64, m.aov_max_minor as f64);
    // Each campaign's quality peaks in one of the groups' windows.
    let hours = &params.hours;
    let u = p(7);
    let mut acc = 0.0;
    let mut group = hours.peaks.last();
    for g in &hours.peaks {
        acc += g.share;
        if u < acc {
            group = Some(g);
            break;
        }
    }
    let peak = group.map_or(0.0, |g| g.start_hour + g.width_hours * p(8));
    let strength = hours.quality_strength_min + hours.quality_strength_spread * p(9);
    let mut quality = [1.0; 24];
    if strength > 0.0 {
        for (h, q) in quality.iter_mut().enumerate() {
            *q = hour_of_day_factor(h as f64, peak, strength);
        }
        let mean: f64 = (0..24).map(|h| pacing[h] * quality[h]).sum();
        quality.iter_mut().for_each(|q| *q /= mean);
    }
    // Weekday effect with a little per-campaign variation; creative fatigue
    // and a daily random walk.
    let days = &params.days;
    let fatigue = days.fatigue_max_per_day * p(10);
    let weekday_jitter: Vec<f64> = (0..7).map(|d| 1.0 + days.weekday_jitter * (2.0 * p(20 + d) - 1.0)).collect();
    let mut walk = 0.0;
    let day_coef = (0..config.days)
        .map(|d| {
            walk += days.drift_sigma * normal_quantile(uniform(config.seed, i as u64, d as u64, Stream::Drift, 0));
            days.weekday[d % 7] * weekday_jitter[d % 7] * (-fatigue * d as f64 + walk).exp()
        })
        .collect();
    Campaign {
        account,
        budget0_minor: budget0,
        roas0,
        exponent,
        cpm_minor,
        ctr,
        aov_minor,
        hour_quality: quality,
        lag_curve: 0,
        hour_coef: hour_coef(pacing, roas0, exponent, budget0, &quality),
        day_coef,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulation::params::LagDelay;
    use crate::simulation::rng::poisson;

    fn config(params: MarketParams) -> MarketConfig {
        MarketConfig { seed: 11, campaigns: 400, days: 7, campaigns_per_account: 25, params: Arc::new(params) }
    }

    #[test]
    fn the_reference_budget_paced_flat_earns_roas0() {
        let m = Market::generate(&config(MarketParams::realistic()), 500_000);
        assert_eq!(m.pacing, PACING);
        for c in m.campaigns.iter().take(20) {
            let revenue: f64 =
                (0..24).map(|h| c.expected_revenue(0, h, c.budget0_minor as f64 * PACING[h])).sum::<f64>()
                    / c.day_factor(0);
            assert!((revenue / c.budget0_minor as f64 / c.roas0 - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn returns_diminish_and_accounts_start_under_their_cap() {
        let m = Market::generate(&config(MarketParams::realistic()), 500_000);
        let c = &m.campaigns[0];
        let roas = |s: f64| c.expected_revenue(0, 12, s) / s;
        assert!(roas(10_000.0) < roas(1_000.0));
        for a in 0..m.accounts {
            let total: i64 = m.campaigns.iter().filter(|c| c.account == a).map(|c| c.budget0_minor).sum();
            assert!(total <= 400_000, "{a}: {total}");
        }
        let below_one = m.campaigns.iter().filter(|c| c.roas0 < 1.0).count();
        assert!((20..120).contains(&below_one), "{below_one}");
    }

    #[test]
    fn the_no_signal_market_is_identical_flat_campaigns() {
        let m = Market::generate(&config(MarketParams::no_signal()), 500_000);
        for c in &m.campaigns {
            assert_eq!(
                (c.budget0_minor, c.exponent, c.roas0, c.cpm_minor, c.ctr),
                (12_000, 0.6, 1.0 / 0.6, 1_000.0, 0.015)
            );
            assert_eq!(c.hour_quality, [1.0; 24]);
            assert!((0..7).all(|d| c.day_factor(d) == 1.0));
        }
    }

    #[test]
    fn lags_are_a_distribution_with_a_tail() {
        let m = Market::generate(&config(MarketParams::no_signal()), 500_000);
        assert_eq!(m.lag(0, 0.1), 0);
        assert!(m.lag(0, 0.95) > 24);
        assert_eq!(m.lag(0, 1.0), 71);
        assert_eq!(m.max_lag_hours(), 71);
        assert!((m.lag_cdf(0)[71] - 1.0).abs() < 1e-12);
        for i in 0..100 {
            let u = f64::from(i) / 100.0;
            assert!(m.lag(0, u) <= m.lag(0, u + 0.01), "monotone in the draw");
        }
    }

    #[test]
    fn campaigns_follow_their_own_day_cache() {
        let mut p = MarketParams::realistic();
        let mut slow = MarketParams::slow_lag();
        slow.share = 0.5;
        let mut fast = MarketParams::meta_lag();
        fast.share = 0.5;
        p.lag.curves = vec![fast, slow];
        let m = Market::generate(&config(p.clone()), 500_000);
        let on_slow = m.campaigns.iter().filter(|c| c.lag_curve == 1).count();
        assert!((150..250).contains(&on_slow), "{on_slow} of 400 on the slow curve");
        assert_eq!(m.max_lag_hours(), 720);
        let median = |c: usize| m.lag(c, 0.5);
        let slow_campaign = m.campaigns.iter().position(|c| c.lag_curve == 1).unwrap_or(0);
        let fast_campaign = m.campaigns.iter().position(|c| c.lag_curve == 0).unwrap_or(0);
        assert!(median(slow_campaign) > median(fast_campaign));
        // A per-campaign scale: slower and faster campaigns around each curve,
        // in a bounded number of paces.
        p.lag.campaign_scale_sigma = 0.5;
        let m = Market::generate(&config(p), 500_000);
        assert_eq!(m.lag_cdfs.len(), 2 * LAG_SCALES);
        let fast: Vec<f64> =
            (0..400).filter(|c| m.campaigns[*c].lag_curve < LAG_SCALES).map(|c| m.lag_cdf(c)[5]).collect();
        let (lo, hi) = fast.iter().fold((1.0_f64, 0.0_f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        assert!(hi - lo > 0.1, "{lo}..{hi}");
        let paces: std::collections::HashSet<usize> = m.campaigns.iter().map(|c| c.lag_curve).collect();
        assert!(paces.len() > 24, "{}", paces.len());
    }

    #[test]
    fn a_lag_curve_is_its_shares() {
        let curve = MarketLagCurve {
            name: "two".to_owned(),
            share: 1.0,
            immediate: 0.5,
            delays: vec![LagDelay { share: 0.5, mean_hours: 1e-3 }],
            max_hours: 5,
        };
        let cdf = lag_cdf(&curve, 1.0);
        assert_eq!(cdf.len(), 6);
        assert!((cdf[0] - 0.5).abs() < 1e-12 && (cdf[1] - 1.0).abs() < 1e-9, "{cdf:?}");
    }

    #[test]
    fn under_delivery_spends_less_on_some_days_the_same_for_everyone() {
        let m = Market::generate(&config(MarketParams::realistic()), 500_000);
        assert!((0..400).all(|c| (0..7).all(|d| m.delivered_share(c, d) == 1.0)), "off by default");
        let mut p = MarketParams::realistic();
        p.delivery.under_delivery_chance = 0.2;
        p.delivery.under_delivery_max_share = 0.5;
        let m = Market::generate(&config(p), 500_000);
        let shares: Vec<f64> =
            (0..400).flat_map(|c| (0..7).map(move |d| (c, d))).map(|(c, d)| m.delivered_share(c, d)).collect();
        let short = shares.iter().filter(|s| **s < 1.0).count() as f64 / shares.len() as f64;
        assert!((0.17..0.23).contains(&short), "{short}");
        assert!(shares.iter().all(|s| (0.5..=1.0).contains(s)));
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        assert!((mean - (1.0 - 0.2 * 0.25)).abs() < 0.01, "{mean}");
        assert_eq!(m.delivered_share(3, 4), m.delivered_share(3, 4));
    }

    #[test]
    fn overdispersion_raises_variance_at_equal_mean_and_keeps_counts_monotone() {
        let counts = |dispersion: f64| -> Vec<f64> {
            let mut p = MarketParams::realistic();
            p.conversions.dispersion = dispersion;
            p.conversions.dispersion_scope = DispersionScope::Hour;
            let m = Market::generate(&MarketConfig { campaigns: 10, days: 400, ..config(p) }, 500_000);
            (0..10)
                .flat_map(|c| (0..24 * 400).map(move |t| (c, t)))
                .map(|(c, t)| {
                    let u = uniform(11, c as u64, t as u64, Stream::Conversions, 0);
                    poisson(4.0 * m.demand_shock(c, t), u) as f64
                })
                .collect()
        };
        let moments = |x: &[f64]| {
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            (mean, x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0))
        };
        let (m0, v0) = moments(&counts(0.0));
        let (m1, v1) = moments(&counts(0.5));
        assert!((m0 - 4.0).abs() < 0.05 && (m1 - 4.0).abs() < 0.05, "{m0} {m1}");
        // Poisson: variance = mean; negative binomial: mean + dispersion * mean^2.
        assert!((v0 - 4.0).abs() < 0.15, "{v0}");
        assert!((v1 - (4.0 + 0.5 * 16.0)).abs() < 0.6, "{v1}");
        // The shock does not depend on spend: more spend never draws fewer.
        let mut p = MarketParams::realistic();
        p.conversions.dispersion = 2.0;
        let m = Market::generate(&config(p), 500_000);
        for t in 0..500 {
            let (shock, u) = (m.demand_shock(1, t), uniform(11, 1, t as u64, Stream::Conversions, 0));
            assert!(poisson(1.0 * shock, u) <= poisson(1.3 * shock, u));
            assert_eq!(m.demand_shock(1, t), m.demand_shock(1, t - t % 24), "one shock per campaign-day");
        }
    }

    #[test]
    fn gamma_draws_have_their_mean_and_variance() {
        for shape in [0.4, 1.0, 3.0, 20.0] {
            let n = 20_000;
            let x: Vec<f64> = (0..n).map(|i| gamma(shape, &|j| uniform(7, i, 0, Stream::Dispersion, j))).collect();
            let mean = x.iter().sum::<f64>() / n as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            assert!((mean / shape - 1.0).abs() < 0.03, "{shape}: {mean}");
            assert!((var / shape - 1.0).abs() < 0.08, "{shape}: {var}");
        }
    }
}
