//! Simulation: the oracle. It knows every campaign's true response curve
//! (`K * s^b` per campaign-hour) and spends a given total where it earns most,
//! under the same caps as the rules: a campaign's daily spend at most the
//! rule's max daily budget, an account's daily spend at most its cap. This is
//! greedy marginal allocation over campaign-hours carried to its limit: every
//! campaign-hour ends with the same marginal return `theta` (raised where a
//! cap binds), computed exactly by nested bisection instead of cent by cent.
//! It never spends where the next unit returns less than itself.
use super::market::Market;
use super::sim::account_ranges;

/// Bisection steps on log(theta): far below f64 resolution of the totals.
const STEPS: usize = 100;

/// Per campaign-day, `A = sum_h (K_h b)^(1/(1-b))`: spend at marginal
/// return `theta` is `A * theta^(-1/(1-b))`.
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

/// The oracle's spend per campaign-hour (campaign-major, `hours` per
/// campaign), spending at most `total_minor` and within the caps.
pub(crate) fn plan(market: &Market, total_minor: f64, max_daily_minor: f64, cap_minor: f64) -> Vec<f64> {
    let (days, hours) = (market.config.days, market.hours());
    let curves: Vec<Vec<DayCurve>> = market
        .campaigns
        .iter()
        .map(|c| {
            let e = 1.0 / (1.0 - c.exponent);
            (0..days).map(|d| DayCurve { a: (0..24).map(|h| (c.coef(d, h) * c.exponent).powf(e)).sum(), e }).collect()
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
                for h in 0..24 {
                    out[c * hours + d * 24 + h] = (campaign.coef(d, h) * b / theta).powf(curve.e);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulation::market::{MarketConfig, MarketKind};

    fn market() -> Market {
        let config =
            MarketConfig { seed: 5, campaigns: 60, days: 3, campaigns_per_account: 20, kind: MarketKind::Realistic };
        Market::generate(&config, 500_000)
    }

    #[test]
    fn the_plan_respects_the_total_and_every_cap() {
        let m = market();
        let total: f64 = m.campaigns.iter().map(|c| c.budget0_minor as f64).sum::<f64>() * 3.0;
        let plan = plan(&m, total, 100_000.0, 150_000.0);
        let spent: f64 = plan.iter().sum();
        assert!(spent <= total * (1.0 + 1e-6), "{spent} > {total}");
        for (c, campaign) in m.campaigns.iter().enumerate() {
            for d in 0..3 {
                let day: f64 = plan[c * 72 + d * 24..c * 72 + d * 24 + 24].iter().sum();
                assert!(day <= 100_000.0 * (1.0 + 1e-6));
                // Where it spends, the marginal return is at least 1.
                let s = plan[c * 72 + d * 24 + 20];
                let marginal = campaign.coef(d, 20) * campaign.exponent * s.powf(campaign.exponent - 1.0);
                assert!(marginal >= 1.0 - 1e-6, "{marginal}");
            }
        }
        for a in 0..m.accounts {
            for d in 0..3 {
                let day: f64 = (a * 20..a * 20 + 20)
                    .map(|c| plan[c * 72 + d * 24..c * 72 + d * 24 + 24].iter().sum::<f64>())
                    .sum();
                assert!(day <= 150_000.0 * (1.0 + 1e-6), "{a}/{d}: {day}");
            }
        }
    }

    #[test]
    fn the_plan_beats_flat_budgets_in_expectation() {
        let m = market();
        let flat: f64 = m.campaigns.iter().map(|c| c.budget0_minor as f64).sum::<f64>() * 3.0;
        let plan = plan(&m, flat, 100_000.0, 500_000.0);
        let expected = |spend: &dyn Fn(usize, usize, usize) -> f64| -> f64 {
            let mut profit = 0.0;
            for (c, campaign) in m.campaigns.iter().enumerate() {
                for t in 0..72 {
                    let s = spend(c, t / 24, t % 24);
                    profit += campaign.expected_revenue(t / 24, t % 24, s) - s;
                }
            }
            profit
        };
        let oracle = expected(&|c, d, h| plan[c * 72 + d * 24 + h]);
        let flat = expected(&|c, _, h| m.campaigns[c].budget0_minor as f64 * crate::simulation::market::PACING[h]);
        assert!(oracle > flat, "{oracle} <= {flat}");
    }
}
