//! Simulation: the market. Per campaign, expected revenue in an hour is
//! `K(day, hour) * spend^b` (diminishing returns, `b` < 1), where `K` carries
//! the campaign's ROAS at its reference budget, the audience of the hour
//! (the pacing curve), an hour-of-day quality effect, a day-of-week effect and
//! a slow drift (creative fatigue plus a random walk). Conversions are Poisson
//! around that expectation, each with its own order value and reporting lag.
//! Every draw comes from [`super::rng`], so a seed fixes the whole market.
use super::rng::{Stream, normal_quantile, uniform};

/// Share of a day's traffic (and of a flat-paced budget) in each hour: quiet
/// nights, busy evenings (the sandbox's pacing shape). Sums to 1.
pub const PACING: [f64; 24] = {
    const W: [f64; 24] = [
        1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.7, 1.0, 1.3, 1.5, 1.6, 1.6, 1.6, 1.6, 1.5, 1.5, 1.5, 1.6, 1.7, 1.8, 1.8, 1.6,
        1.3, 1.0,
    ];
    let mut total = 0.0;
    let mut i = 0;
    while i < 24 {
        total += W[i];
        i += 1;
    }
    let mut out = [0.0; 24];
    let mut i = 0;
    while i < 24 {
        out[i] = W[i] / total;
        i += 1;
    }
    out
};

/// Day-of-week demand shared by every campaign, Monday first (mean 1).
const WEEKDAY: [f64; 7] = [1.04, 1.01, 0.99, 0.98, 0.95, 0.99, 1.04];

/// Longest reporting lag, in hours: a conversion is visible at most this
/// many hours after the hour it is attributed to.
pub const MAX_LAG_HOURS: usize = 71;

/// Which market to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketKind {
    /// Campaigns that differ in ROAS, returns, hours, weekdays and drift.
    Realistic,
    /// Identical, flat campaigns whose reference budget is already the
    /// profit-maximising one: nothing to find, only noise to chase.
    NoSignal,
}

/// Size and kind of a simulated market.
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
    /// Which market.
    pub kind: MarketKind,
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
    /// Cumulative distribution of the reporting lag in hours (index = lag).
    pub lag_cdf: [f64; MAX_LAG_HOURS + 1],
}

/// Relative spread of each conversion's order value (log-normal sigma).
pub const VALUE_SIGMA: f64 = 0.35;
/// Relative noise of hourly spend around the paced budget (uniform +-).
pub const SPEND_NOISE: f64 = 0.08;

impl Market {
    /// Builds the market of `config`; `account_cap_minor` bounds the sum of
    /// each account's starting budgets (they start at most at 80% of it).
    pub fn generate(config: &MarketConfig, account_cap_minor: i64) -> Self {
        let per_account = config.campaigns_per_account.max(1);
        let accounts = config.campaigns.div_ceil(per_account);
        let mut campaigns: Vec<Campaign> =
            (0..config.campaigns).map(|i| campaign(config, i, i / per_account)).collect();
        // Keep every account's starting budgets under its cap.
        for account in 0..accounts {
            let range = account * per_account..((account + 1) * per_account).min(campaigns.len());
            let total: i64 = campaigns[range.clone()].iter().map(|c| c.budget0_minor).sum();
            let room = account_cap_minor as f64 * 0.8;
            if total as f64 > room {
                let f = room / total as f64;
                for c in &mut campaigns[range] {
                    c.budget0_minor = ((c.budget0_minor as f64 * f / 100.0).floor() * 100.0).max(2_000.0) as i64;
                    c.hour_coef = hour_coef(c.roas0, c.exponent, c.budget0_minor, &c.hour_quality);
                }
            }
        }
        Self { config: config.clone(), campaigns, accounts, lag_cdf: lag_cdf() }
    }

    /// Hours simulated.
    pub fn hours(&self) -> usize {
        self.config.days * 24
    }

    /// The reporting lag (hours) of a conversion with uniform draw `u`.
    pub fn lag(&self, u: f64) -> usize {
        self.lag_cdf.iter().position(|c| u <= *c).unwrap_or(MAX_LAG_HOURS)
    }
}

/// `K` per hour at the start: ROAS `roas0` at `budget0` paced flat.
fn hour_coef(roas0: f64, b: f64, budget0_minor: i64, quality: &[f64; 24]) -> [f64; 24] {
    let mut out = [0.0; 24];
    for h in 0..24 {
        let reference = budget0_minor as f64 * PACING[h];
        out[h] = roas0 * reference.powf(1.0 - b) * quality[h];
    }
    out
}

/// The reporting lag: 35% of conversions show within the hour, 40% with a
/// short delay (mean 5 h), 25% late (mean 30 h), at most 71 h.
fn lag_cdf() -> [f64; MAX_LAG_HOURS + 1] {
    let mut pmf = [0.0; MAX_LAG_HOURS + 1];
    pmf[0] = 0.35;
    let (mut short, mut long) = ([0.0; MAX_LAG_HOURS + 1], [0.0; MAX_LAG_HOURS + 1]);
    for lag in 1..=MAX_LAG_HOURS {
        let x = (lag - 1) as f64;
        short[lag] = (-x / 5.0).exp();
        long[lag] = (-x / 30.0).exp();
    }
    let (s, l): (f64, f64) = (short.iter().sum(), long.iter().sum());
    for lag in 1..=MAX_LAG_HOURS {
        pmf[lag] = 0.40 * short[lag] / s + 0.25 * long[lag] / l;
    }
    let mut cdf = [0.0; MAX_LAG_HOURS + 1];
    let mut acc = 0.0;
    for (i, p) in pmf.iter().enumerate() {
        acc += p;
        cdf[i] = acc;
    }
    cdf[MAX_LAG_HOURS] = 1.0;
    cdf
}

/// A draw of campaign parameter `index`.
fn param(config: &MarketConfig, campaign: usize, index: u64) -> f64 {
    uniform(config.seed, campaign as u64, 0, Stream::Params, index)
}

fn log_normal(u: f64, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal_quantile(u)).exp()
}

fn campaign(config: &MarketConfig, i: usize, account: usize) -> Campaign {
    if config.kind == MarketKind::NoSignal {
        // The reference budget is the profit-maximising one: marginal ROAS
        // b * roas0 = 1 there, and every hour and day looks the same.
        let (b, budget0) = (0.6, 12_000);
        let quality = [1.0; 24];
        return Campaign {
            account,
            budget0_minor: budget0,
            roas0: 1.0 / b,
            exponent: b,
            cpm_minor: 1_000.0,
            ctr: 0.015,
            aov_minor: 5_500.0,
            hour_quality: quality,
            hour_coef: hour_coef(1.0 / b, b, budget0, &quality),
            day_coef: vec![1.0; config.days],
        };
    }
    let p = |index| param(config, i, index);
    let roas0 = log_normal(p(1), 1.9, 0.55).clamp(0.3, 8.0);
    let exponent = 0.55 + 0.30 * p(2);
    let budget0 = (log_normal(p(3), 120.0, 0.7).clamp(20.0, 800.0).round() * 100.0) as i64;
    let cpm_minor = 600.0 + 1_200.0 * p(4);
    let ctr = (0.016 * (roas0 / 1.9).powf(0.3) * (0.3 * normal_quantile(p(5))).exp()).clamp(0.003, 0.08);
    let aov_minor = log_normal(p(6), 5_500.0, 0.5).clamp(1_500.0, 30_000.0);
    // Most campaigns peak in the evening, some at lunch, a few in the morning.
    let peak = match p(7) {
        u if u < 0.7 => 19.0 + 3.0 * p(8),
        u if u < 0.9 => 11.0 + 3.0 * p(8),
        _ => 7.0 + 3.0 * p(8),
    };
    let strength = 0.1 + 0.4 * p(9);
    let mut quality = [0.0; 24];
    for (h, q) in quality.iter_mut().enumerate() {
        *q = 1.0 + strength * ((h as f64 - peak) * std::f64::consts::TAU / 24.0).cos();
    }
    let mean: f64 = (0..24).map(|h| PACING[h] * quality[h]).sum();
    quality.iter_mut().for_each(|q| *q /= mean);
    // Weekday effect with a little per-campaign variation; creative fatigue
    // of 0-1.5% a day and a daily random walk of 3%.
    let fatigue = 0.015 * p(10);
    let weekday_jitter: Vec<f64> = (0..7).map(|d| 1.0 + 0.03 * (2.0 * p(20 + d) - 1.0)).collect();
    let mut walk = 0.0;
    let day_coef = (0..config.days)
        .map(|d| {
            walk += 0.03 * normal_quantile(uniform(config.seed, i as u64, d as u64, Stream::Drift, 0));
            WEEKDAY[d % 7] * weekday_jitter[d % 7] * (-fatigue * d as f64 + walk).exp()
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
        hour_coef: hour_coef(roas0, exponent, budget0, &quality),
        day_coef,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: MarketKind) -> MarketConfig {
        MarketConfig { seed: 11, campaigns: 400, days: 7, campaigns_per_account: 25, kind }
    }

    #[test]
    fn the_reference_budget_paced_flat_earns_roas0() {
        let m = Market::generate(&config(MarketKind::Realistic), 500_000);
        for c in m.campaigns.iter().take(20) {
            let revenue: f64 =
                (0..24).map(|h| c.expected_revenue(0, h, c.budget0_minor as f64 * PACING[h])).sum::<f64>()
                    / c.day_factor(0);
            assert!((revenue / c.budget0_minor as f64 / c.roas0 - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn returns_diminish_and_accounts_start_under_their_cap() {
        let m = Market::generate(&config(MarketKind::Realistic), 500_000);
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
    fn lags_are_a_distribution_with_a_tail() {
        let m = Market::generate(&config(MarketKind::NoSignal), 500_000);
        assert_eq!(m.lag(0.1), 0);
        assert!(m.lag(0.95) > 24);
        assert_eq!(m.lag(1.0), MAX_LAG_HOURS);
        assert!((m.lag_cdf[MAX_LAG_HOURS] - 1.0).abs() < 1e-12);
    }
}
