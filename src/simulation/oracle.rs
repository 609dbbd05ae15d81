//! Simulation: the oracles. Both know every campaign's true response curve
//! (`K * s^b` per campaign-hour) and spend a given total where it earns most,
//! under the same caps as the rules: a campaign's daily spend at most the
//! rule's max daily budget, an account's daily spend at most its cap. This is
//! greedy marginal allocation carried to its limit: every unit ends with the
//! same marginal return `theta` (raised where a cap binds), computed exactly
//! by nested bisection instead of cent by cent. Neither spends where the next
//! unit returns less than itself.
//!
//! The hourly oracle sets the spend of every campaign-hour. The flat oracle
//! may only set one daily budget per campaign-day, spent in the market's
//! pacing shares as the policies' budgets are: its plan is one of the hourly
//! oracle's choices, so it never earns more in expectation, and it is the
//! fairer ceiling for a policy that sets daily budgets.
use super::market::Market;
use super::sim::account_ranges;

/// How an oracle may shape a day's spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// Any spend in any hour.
    Hourly,
    /// One daily budget, spent in the market's pacing shares.
    Flat,
}

/// Bisection steps on log(theta): far below f64 resolution of the totals.
const STEPS: usize = 100;

/// Per campaign-day, spend at marginal return `theta` is `A * theta^(-e)`
/// with `e = 1/(1-b)`: hourly, `A = sum_h (K_h b)^e`; flat, the day earns
/// `C * B^b` with `C = sum_h K_h p_h^b` and `A = (C b)^e`.
struct DayCurve {
    a: f64,
    e: f64,
}

impl DayCurve {
    fn spend(&self, theta: f64, max: f64) -> f64 {
        (self.a * theta.powf(-self.e)).min(max)
    }
}

/// Smallest theta in [lo, hi] with `f(theta) <= target` for a decreasing `f`.
fn solve(f: impl Fn(f64) -> f64, target: f64, lo: f64, hi: f64) -> f64 {
    let (mut lo, mut hi) = (lo.ln(), hi.ln());
    for _ in 0..STEPS {
        let mid = 0.5 * (lo + hi);
        if f(mid.exp()) > target { lo = mid } else { hi = mid }
    }
    hi.exp()
}

/// `C = sum_h K_h p_h^b`: a flat-paced daily budget `B` earns `C * B^b`.
fn flat_coef(market: &Market, c: usize, d: usize) -> f64 {
    let campaign = &market.campaigns[c];
    (0..24).map(|h| campaign.coef(d, h) * market.pacing[h].powf(campaign.exponent)).sum()
}

/// An oracle's spend per campaign-hour (campaign-major, `hours` per
/// campaign), spending at most `total_minor` and within the caps.
pub(crate) fn plan(
    market: &Market,
    pacing: Pacing,
    total_minor: f64,
    max_daily_minor: f64,
    cap_minor: f64,
) -> Vec<f64> {
    let (days, hours) = (market.config.days, market.hours());
    let curves: Vec<Vec<DayCurve>> = market
        .campaigns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let e = 1.0 / (1.0 - c.exponent);
            (0..days)
                .map(|d| {
                    let a = match pacing {
                        Pacing::Hourly => (0..24).map(|h| (c.coef(d, h) * c.exponent).powf(e)).sum(),
                        Pacing::Flat => (flat_coef(market, i, d) * c.exponent).powf(e),
                    };
                    DayCurve { a, e }
                })
                .collect()
        })
        .collect();
    let accounts = account_ranges(market);
    let (lo, hi) = (1e-9, 1e9);
    // Per account-day, the marginal return at which its cap binds (0: never).
    let account_theta: Vec<Vec<f64>> = accounts
        .iter()
        .map(|range| {
            (0..days)
                .map(|d| {
                    let spend =
                        |theta: f64| -> f64 { range.clone().map(|c| curves[c][d].spend(theta, max_daily_minor)).sum() };
                    if spend(lo) <= cap_minor { 0.0 } else { solve(spend, cap_minor, lo, hi) }
                })
                .collect()
        })
        .collect();
    let total_at = |lambda: f64| -> f64 {
        accounts
            .iter()
            .zip(&account_theta)
            .map(|(range, thetas)| {
                (0..days)
                    .map(|d| {
                        let theta = lambda.max(thetas[d]);
                        range.clone().map(|c| curves[c][d].spend(theta, max_daily_minor)).sum::<f64>()
                    })
                    .sum::<f64>()
            })
            .sum()
    };
    // Never below a marginal return of 1: that spend would lose money.
    let lambda = if total_at(1.0) <= total_minor { 1.0 } else { solve(total_at, total_minor, 1.0, hi) };
    let mut out = vec![0.0; market.campaigns.len() * hours];
    for (range, thetas) in accounts.iter().zip(&account_theta) {
        for c in range.clone() {
            let campaign = &market.campaigns[c];
            let b = campaign.exponent;
            for d in 0..days {
                let curve = &curves[c][d];
                let mut theta = lambda.max(thetas[d]);
                if curve.spend(theta, f64::INFINITY) > max_daily_minor {
                    theta = (curve.a / max_daily_minor).powf(1.0 / curve.e);
                }
                match pacing {
                    Pacing::Hourly => {
                        for h in 0..24 {
                            out[c * hours + d * 24 + h] = (campaign.coef(d, h) * b / theta).powf(curve.e);
                        }
                    }
                    Pacing::Flat => {
                        let budget = (flat_coef(market, c, d) * b / theta).powf(curve.e);
                        for h in 0..24 {
                            out[c * hours + d * 24 + h] = budget * market.pacing[h];
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::simulation::market::{MarketConfig, PACING};
    use crate::simulation::params::MarketParams;

    fn market() -> Market {
        let config = MarketConfig {
            seed: 5,
            campaigns: 60,
            days: 3,
            campaigns_per_account: 20,
            params: Arc::new(MarketParams::realistic()),
        };
        Market::generate(&config, 500_000)
    }

    /// Expected profit of a plan under the true curves (no noise).
    fn expected_profit(m: &Market, plan: &[f64]) -> f64 {
        let hours = m.hours();
        let mut profit = 0.0;
        for (c, campaign) in m.campaigns.iter().enumerate() {
            for t in 0..hours {
                let s = plan[c * hours + t];
                profit += campaign.expected_revenue(t / 24, t % 24, s) - s;
            }
        }
        profit
    }

    fn assert_within_caps(m: &Market, plan: &[f64], total: f64, max_daily: f64, cap: f64) {
        let spent: f64 = plan.iter().sum();
        assert!(spent <= total * (1.0 + 1e-6), "{spent} > {total}");
        for c in 0..m.campaigns.len() {
            for d in 0..3 {
                let day: f64 = plan[c * 72 + d * 24..c * 72 + d * 24 + 24].iter().sum();
                assert!(day <= max_daily * (1.0 + 1e-6), "{c}/{d}: {day}");
            }
        }
        for a in 0..m.accounts {
            for d in 0..3 {
                let day: f64 = (a * 20..a * 20 + 20)
                    .map(|c| plan[c * 72 + d * 24..c * 72 + d * 24 + 24].iter().sum::<f64>())
                    .sum();
                assert!(day <= cap * (1.0 + 1e-6), "{a}/{d}: {day}");
            }
        }
    }

    #[test]
    fn the_plan_respects_the_total_and_every_cap() {
        let m = market();
        let total: f64 = m.campaigns.iter().map(|c| c.budget0_minor as f64).sum::<f64>() * 3.0;
        for pacing in [Pacing::Hourly, Pacing::Flat] {
            let plan = plan(&m, pacing, total, 100_000.0, 150_000.0);
            assert_within_caps(&m, &plan, total, 100_000.0, 150_000.0);
        }
        let plan = plan(&m, Pacing::Hourly, total, 100_000.0, 150_000.0);
        for (c, campaign) in m.campaigns.iter().enumerate() {
            for d in 0..3 {
                // Where it spends, the marginal return is at least 1.
                let s = plan[c * 72 + d * 24 + 20];
                let marginal = campaign.coef(d, 20) * campaign.exponent * s.powf(campaign.exponent - 1.0);
                assert!(marginal >= 1.0 - 1e-6, "{marginal}");
            }
        }
    }

    #[test]
    fn the_flat_plan_sets_one_paced_budget_a_day_and_never_beats_the_hourly_one() {
        let m = market();
        let flat_total: f64 = m.campaigns.iter().map(|c| c.budget0_minor as f64).sum::<f64>() * 3.0;
        for (total, max_daily, cap) in [
            (flat_total, 100_000.0, 500_000.0),
            (flat_total, 100_000.0, 150_000.0),
            (flat_total * 0.5, 20_000.0, 500_000.0),
        ] {
            let flat = plan(&m, Pacing::Flat, total, max_daily, cap);
            let hourly = plan(&m, Pacing::Hourly, total, max_daily, cap);
            assert_within_caps(&m, &flat, total, max_daily, cap);
            for c in 0..m.campaigns.len() {
                for d in 0..3 {
                    let day = &flat[c * 72 + d * 24..c * 72 + d * 24 + 24];
                    let budget: f64 = day.iter().sum();
                    for (spend, share) in day.iter().zip(m.pacing) {
                        assert!((spend - budget * share).abs() <= 1e-9 * budget.max(1.0), "paced flat");
                    }
                }
            }
            let (f, h) = (expected_profit(&m, &flat), expected_profit(&m, &hourly));
            assert!(f <= h * (1.0 + 1e-9), "flat {f} > hourly {h}");
            assert!(f > 0.0);
        }
    }

    #[test]
    fn the_plans_beat_flat_budgets_in_expectation() {
        let m = market();
        let flat: f64 = m.campaigns.iter().map(|c| c.budget0_minor as f64).sum::<f64>() * 3.0;
        let fixed: Vec<f64> =
            m.campaigns.iter().flat_map(|c| (0..72).map(move |t| c.budget0_minor as f64 * PACING[t % 24])).collect();
        let fixed = expected_profit(&m, &fixed);
        for pacing in [Pacing::Hourly, Pacing::Flat] {
            let oracle = expected_profit(&m, &plan(&m, pacing, flat, 100_000.0, 500_000.0));
            assert!(oracle > fixed, "{pacing:?}: {oracle} <= {fixed}");
        }
    }
}
