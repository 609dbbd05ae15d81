//! Simulation: summaries over seeds (mean and standard deviation), the
//! terminal table, the JSON document and a hand-written SVG chart of
//! cumulative profit per policy.
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Policy, SeedRun, SimulationConfig};

/// A figure over seeds: mean and sample standard deviation (0 for one seed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub sd: f64,
}

impl Stat {
    /// Mean and spread of `values` (empty: zeros).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        if values.is_empty() {
            return Self::default();
        }
        let mean = values.iter().sum::<f64>() / n;
        let var =
            if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        Self { mean, sd: var.sqrt() }
    }

    fn json(self) -> Value {
        json!({ "mean": self.mean, "sd": self.sd })
    }
}

/// One policy over every seed. Money in minor units of [`super::CURRENCY`].
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySummary {
    /// The policy.
    pub policy: Policy,
    /// Profit: revenue - spend.
    pub profit_minor: Stat,
    /// Expected profit under the true curves (no conversion noise).
    pub expected_profit_minor: Stat,
    /// Revenue / spend.
    pub roas: Stat,
    /// Spend.
    pub spend_minor: Stat,
    /// Spend on campaign-days whose true ROAS was below 1.
    pub low_roas_spend_minor: Stat,
    /// Budget changes executed.
    pub budget_changes: Stat,
    /// Campaigns paused.
    pub pauses: Stat,
    /// Decisions that needed approval.
    pub approvals_needed: Stat,
    /// Account-hours over the cap, summed over seeds (must be 0).
    pub cap_breaches: u64,
    /// Share of the (hourly) oracle's profit uplift over static budgets that
    /// this policy captured, over the seeds where the oracle had an uplift.
    pub uplift_share: Option<Stat>,
    /// The same against the flat oracle (one flat-paced daily budget per
    /// campaign-day).
    pub flat_uplift_share: Option<Stat>,
}

/// Shares of `ceiling`'s profit uplift over static budgets that `policy`
/// captured, one per seed where the ceiling had an uplift worth sharing.
fn shares(seeds: &[SeedRun], policy: Policy, ceiling: Policy) -> Option<Stat> {
    let shares: Vec<f64> = seeds
        .iter()
        .filter_map(|s| {
            let base = s.try_get(Policy::Static)?;
            let (best, run) = (s.try_get(ceiling)?, s.try_get(policy)?);
            let uplift = (best.profit_minor() - base.profit_minor()) as f64;
            // An uplift within 0.1% of spend is no uplift to share.
            let meaningful = uplift > 0.001 * base.spend_minor as f64;
            meaningful.then(|| (run.profit_minor() - base.profit_minor()) as f64 / uplift)
        })
        .collect();
    (!shares.is_empty()).then(|| Stat::of(&shares))
}

/// The outcome of `autoscaler simulate`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationReport {
    /// What was run.
    pub config: SimulationConfig,
    /// Every seed's raw runs.
    pub seeds: Vec<SeedRun>,
    /// One summary per policy that ran, in [`Policy::ALL`] order.
    pub summaries: Vec<PolicySummary>,
}

impl SimulationReport {
    /// Summarises the runs of every seed.
    pub fn new(config: SimulationConfig, seeds: Vec<SeedRun>) -> Self {
        let summaries = config
            .running()
            .into_iter()
            .map(|policy| {
                let over = |f: &dyn Fn(&SeedRun) -> f64| Stat::of(&seeds.iter().map(f).collect::<Vec<_>>());
                PolicySummary {
                    policy,
                    profit_minor: over(&|s| s.get(policy).profit_minor() as f64),
                    expected_profit_minor: over(&|s| s.get(policy).expected_profit_minor()),
                    roas: over(&|s| {
                        let r = s.get(policy);
                        if r.spend_minor > 0 { r.revenue_minor as f64 / r.spend_minor as f64 } else { 0.0 }
                    }),
                    spend_minor: over(&|s| s.get(policy).spend_minor as f64),
                    low_roas_spend_minor: over(&|s| s.get(policy).low_roas_spend_minor as f64),
                    budget_changes: over(&|s| s.get(policy).budget_changes as f64),
                    pauses: over(&|s| s.get(policy).pauses as f64),
                    approvals_needed: over(&|s| s.get(policy).approvals_needed as f64),
                    cap_breaches: seeds.iter().map(|s| s.get(policy).cap_breaches).sum(),
                    uplift_share: shares(&seeds, policy, Policy::Oracle),
                    flat_uplift_share: shares(&seeds, policy, Policy::FlatOracle),
                }
            })
            .collect();
        Self { config, seeds, summaries }
    }

    /// The summary of `policy`.
    pub fn summary(&self, policy: Policy) -> Option<&PolicySummary> {
        self.summaries.iter().find(|s| s.policy == policy)
    }

    /// Mean cumulative profit per policy at the end of each day.
    pub fn cumulative_profit(&self) -> Vec<(Policy, Vec<f64>)> {
        let days = self.config.days;
        self.summaries
            .iter()
            .map(|s| s.policy)
            .map(|policy| {
                let mut out = vec![0.0; days];
                for s in &self.seeds {
                    let mut acc = 0.0;
                    for (d, p) in s.get(policy).daily_profit_minor.iter().enumerate().take(days) {
                        acc += *p as f64;
                        out[d] += acc / self.seeds.len() as f64;
                    }
                }
                (policy, out)
            })
            .collect()
    }

    /// The table for the terminal.
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = format!(
            "{} market, {} campaigns in accounts of {}, {} days hour by hour, {} seed(s) from {}; mean ± sd over seeds, {}\n\n",
            c.kind.name(),
            c.campaigns,
            c.campaigns_per_account,
            c.days,
            self.seeds.len(),
            c.first_seed,
            super::CURRENCY
        );
        let headers = [
            "POLICY",
            "PROFIT",
            "ROAS",
            "SPEND",
            "SPEND AT TRUE ROAS<1",
            "CHANGES",
            "PAUSED",
            "APPROVALS",
            "CAP BREACHES",
            "SHARE OF ORACLE UPLIFT",
            "SHARE OF FLAT ORACLE UPLIFT",
        ];
        let rows: Vec<Vec<String>> = self
            .summaries
            .iter()
            .map(|s| {
                let oracle = s.policy.is_oracle();
                let share = |x: Option<Stat>| {
                    x.map_or_else(|| "n/a".to_owned(), |u| format!("{:.0}% ± {:.0}%", u.mean * 100.0, u.sd * 100.0))
                };
                let counts = |x: Stat| if oracle { "-".to_owned() } else { format!("{:.0} ± {:.0}", x.mean, x.sd) };
                vec![
                    s.policy.label().to_owned(),
                    money(s.profit_minor),
                    format!("{:.3} ± {:.3}", s.roas.mean, s.roas.sd),
                    money(s.spend_minor),
                    money(s.low_roas_spend_minor),
                    counts(s.budget_changes),
                    counts(s.pauses),
                    counts(s.approvals_needed),
                    s.cap_breaches.to_string(),
                    share(s.uplift_share),
                    share(s.flat_uplift_share),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..headers.len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([headers[i].len()]).max().unwrap_or(0))
            .collect();
        let line = |cells: &[String]| {
            let mut l = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                if i == 0 {
                    let _ = write!(l, "{cell}{}", " ".repeat(pad));
                } else {
                    let _ = write!(l, "  {}{cell}", " ".repeat(pad));
                }
            }
            l.trim_end().to_owned() + "\n"
        };
        out.push_str(&line(&headers.map(str::to_owned)));
        rows.iter().for_each(|r| out.push_str(&line(r)));
        out.push_str(
            "\nOracles: know the true curves; spend at most the largest total of the other policies, \
             under the same caps, never at a marginal ROAS below 1; the oracle sets spend hour by hour, \
             the flat oracle one flat-paced daily budget per campaign-day. Neither pays a learning phase.\n",
        );
        out
    }

    /// The whole report as JSON (money in minor units).
    pub fn json(&self) -> Value {
        let c = &self.config;
        let policies: Vec<Value> = self
            .summaries
            .iter()
            .map(|s| {
                json!({
                    "policy": s.policy.key(),
                    "label": s.policy.label(),
                    "profit_minor": s.profit_minor.json(),
                    "expected_profit_minor": s.expected_profit_minor.json(),
                    "roas": s.roas.json(),
                    "spend_minor": s.spend_minor.json(),
                    "low_roas_spend_minor": s.low_roas_spend_minor.json(),
                    "budget_changes": s.budget_changes.json(),
                    "pauses": s.pauses.json(),
                    "approvals_needed": s.approvals_needed.json(),
                    "cap_breaches": s.cap_breaches,
                    "oracle_uplift_share": s.uplift_share.map(Stat::json),
                    "flat_oracle_uplift_share": s.flat_uplift_share.map(Stat::json),
                })
            })
            .collect();
        let seeds: Vec<Value> = self
            .seeds
            .iter()
            .map(|s| {
                let runs: serde_json::Map<String, Value> = s
                    .runs
                    .iter()
                    .map(|(p, r)| {
                        (
                            p.key().to_owned(),
                            json!({
                                "spend_minor": r.spend_minor,
                                "revenue_minor": r.revenue_minor,
                                "profit_minor": r.profit_minor(),
                                "expected_revenue_minor": r.expected_revenue_minor,
                                "low_roas_spend_minor": r.low_roas_spend_minor,
                                "budget_changes": r.budget_changes,
                                "pauses": r.pauses,
                                "approvals_needed": r.approvals_needed,
                                "approvals_refused": r.approvals_refused,
                                "cap_breaches": r.cap_breaches,
                                "daily_profit_minor": r.daily_profit_minor,
                            }),
                        )
                    })
                    .collect();
                json!({ "seed": s.seed, "policies": runs })
            })
            .collect();
        json!({
            "currency": super::CURRENCY,
            "config": {
                "campaigns": c.campaigns,
                "days": c.days,
                "seeds": c.seeds,
                "first_seed": c.first_seed,
                "campaigns_per_account": c.campaigns_per_account,
                "market": c.kind.name(),
                "market_params": serde_json::to_value(&*c.kind.params()).unwrap_or(Value::Null),
                "policies": c.running().iter().map(|p| p.key()).collect::<Vec<_>>(),
                "approval_delay_hours": c.approval_delay_hours,
                "account_cap_minor": c.rule.max_daily_spend_limit_minor,
                "max_daily_budget_minor": c.rule.max_daily_budget_minor,
            },
            "policies": policies,
            "seeds": seeds,
        })
    }

    /// An SVG line chart of mean cumulative profit per policy by day.
    pub fn svg(&self) -> String {
        const W: f64 = 900.0;
        const H: f64 = 520.0;
        const COLORS: [&str; 6] = ["#6b7280", "#2563eb", "#059669", "#d97706", "#7c3aed", "#dc2626"];
        let (left, right, top, bottom) = (100.0, 200.0, 50.0, 60.0);
        let series = self.cumulative_profit();
        let days = self.config.days.max(1);
        let values = series.iter().flat_map(|(_, v)| v.iter().copied());
        let (mut lo, mut hi) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if hi - lo < 1.0 {
            hi = lo + 1.0;
        }
        let pad = (hi - lo) * 0.05;
        (lo, hi) = (lo - pad, hi + pad);
        let x = |day: f64| left + (W - left - right) * day / days as f64;
        let y = |v: f64| top + (H - top - bottom) * (hi - v) / (hi - lo);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        let _ = writeln!(
            s,
            "<text x=\"{left}\" y=\"28\" font-size=\"16\">Cumulative profit per policy ({} campaigns, mean of {} seed(s), {})</text>",
            self.config.campaigns,
            self.seeds.len(),
            super::CURRENCY
        );
        for i in 0..=5 {
            let v = lo + (hi - lo) * f64::from(i) / 5.0;
            let _ = writeln!(
                s,
                "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e5e7eb\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                W - right,
                y(v),
                y(v),
                left - 8.0,
                y(v) + 4.0,
                short_money(v)
            );
        }
        let step = (days / 7).max(1);
        for d in (0..=days).step_by(step) {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{d}</text>",
                x(d as f64),
                H - bottom + 18.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">day</text>",
            x(days as f64 / 2.0),
            H - 18.0
        );
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#111827\"/>",
            W - right,
            y(0.0),
            y(0.0)
        );
        for (i, (policy, values)) in series.iter().enumerate() {
            let color = match policy {
                Policy::Oracle => COLORS[5],
                Policy::FlatOracle => COLORS[4],
                _ => COLORS[i % 4],
            };
            let mut points = format!("{:.1},{:.1}", x(0.0), y(0.0));
            for (d, v) in values.iter().enumerate() {
                let _ = write!(points, " {:.1},{:.1}", x(d as f64 + 1.0), y(*v));
            }
            let dash = if policy.is_oracle() { " stroke-dasharray=\"6 4\"" } else { "" };
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{points}\"/>"
            );
            let ly = top + 20.0 + 22.0 * i as f64;
            let _ = writeln!(
                s,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"3\"{dash}/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                W - right + 15.0,
                W - right + 40.0,
                W - right + 46.0,
                ly + 4.0,
                policy.label()
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A mean ± sd of minor units as whole currency units: `$12,345 ± $678`.
fn money(x: Stat) -> String {
    format!("{} ± {}", whole(x.mean), whole(x.sd))
}

fn whole(minor: f64) -> String {
    let s = crate::domain::money::format_minor((minor / 100.0).round() as i64 * 100, super::CURRENCY);
    s.strip_suffix(".00").map(str::to_owned).unwrap_or(s)
}

/// An axis label: `$1.2M`, `$350k`, `-$40k`.
fn short_money(minor: f64) -> String {
    let major = minor / 100.0;
    let sign = if major < 0.0 { "-" } else { "" };
    let a = major.abs();
    if a >= 1e6 {
        format!("{sign}${:.2}M", a / 1e6)
    } else if a >= 1e3 {
        format!("{sign}${:.0}k", a / 1e3)
    } else {
        format!("{sign}${a:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_money_labels() {
        let s = Stat::of(&[1.0, 3.0]);
        assert_eq!(s.mean, 2.0);
        assert!((s.sd - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of(&[5.0]).sd, 0.0);
        assert_eq!(whole(123_456_789.0), "$1,234,568");
        assert_eq!(short_money(-4_000_000.0), "-$40k");
        assert_eq!(short_money(250_000_000.0), "$2.50M");
    }
}
