//! The simulated market and the policies compared on it: determinism, common
//! random numbers, the oracles as upper bounds, the caps, a market with
//! nothing to find, market files and the delivery costs, the policy
//! selector. Small markets, so the suite stays fast on 2 cores.
use std::sync::Arc;

use autoscaler::simulation::{MarketKind, MarketParams, Policy, PolicyRun, SeedRun, SimulationConfig, run, run_seed};

fn config(kind: MarketKind) -> SimulationConfig {
    SimulationConfig {
        campaigns: 80,
        days: 10,
        seeds: 2,
        campaigns_per_account: 20,
        kind,
        ..SimulationConfig::default()
    }
}

/// A tolerance for "beyond noise": a share of what the baseline spent.
fn noise(run: &SeedRun, share: f64) -> f64 {
    run.get(Policy::Static).spend_minor as f64 * share
}

#[test]
fn a_seed_gives_the_same_market_and_results_every_time() {
    let c = config(MarketKind::Realistic);
    let a = run_seed(&c, 7);
    assert_eq!(a, run_seed(&c, 7));
    let b = run_seed(&c, 8);
    assert_ne!(a.get(Policy::Static).revenue_minor, b.get(Policy::Static).revenue_minor);
    let report = run(&c);
    assert_eq!(report.json(), run(&c).json());
    assert_eq!(report.svg(), run(&c).svg());
}

#[test]
fn static_budgets_change_nothing() {
    let c = config(MarketKind::Realistic);
    let r = run_seed(&c, 3);
    let fixed = r.get(Policy::Static);
    assert_eq!((fixed.budget_changes, fixed.pauses, fixed.approvals_needed, fixed.cap_breaches), (0, 0, 0, 0));
    let market = autoscaler::simulation::Market::generate(
        &autoscaler::simulation::MarketConfig {
            seed: 3,
            campaigns: c.campaigns,
            days: c.days,
            campaigns_per_account: c.campaigns_per_account,
            params: c.kind.params(),
        },
        c.rule.max_daily_spend_limit_minor,
    );
    let starting: Vec<i64> = market.campaigns.iter().map(|m| m.budget0_minor).collect();
    assert_eq!(fixed.final_budgets_minor, starting);
    // Spend follows the budgets: each day within the pacing noise (+-8%).
    let budget_total: i64 = starting.iter().sum();
    let per_day = fixed.spend_minor as f64 / c.days as f64;
    assert!((per_day / budget_total as f64 - 1.0).abs() < 0.02, "{per_day} vs {budget_total}");
}

#[test]
fn a_rule_that_never_acts_meets_exactly_the_static_outcome() {
    // Common random numbers: the same budgets meet the same draws.
    let mut c = config(MarketKind::Realistic);
    c.rule.min_impressions = i64::MAX;
    let r = run_seed(&c, 5);
    let (fixed, ruled) = (r.get(Policy::Static), r.get(Policy::Rules));
    assert_eq!(ruled.budget_changes + ruled.pauses + ruled.approvals_needed, 0);
    assert_eq!(ruled, fixed);
    // With a schedule the hours move but the daily budgets do not.
    assert_eq!(r.get(Policy::RulesWithSchedule).final_budgets_minor, fixed.final_budgets_minor);
    // The marginal strategy honours min_impressions too: it never acts.
    assert_eq!(r.get(Policy::MarginalRoas), fixed);
}

#[test]
fn the_oracle_is_never_beaten_by_more_than_noise() {
    let c = config(MarketKind::Realistic);
    for seed in [1, 2, 3] {
        let r = run_seed(&c, seed);
        let best = r.get(Policy::Oracle);
        for policy in
            [Policy::Static, Policy::Rules, Policy::RulesWithSchedule, Policy::MarginalRoas, Policy::FlatOracle]
        {
            let p = r.get(policy);
            // In expectation (no conversion noise) only pacing noise separates them.
            assert!(
                best.expected_profit_minor() >= p.expected_profit_minor() - noise(&r, 0.005),
                "seed {seed} {policy:?}: {} > oracle {}",
                p.expected_profit_minor(),
                best.expected_profit_minor()
            );
            assert!(
                best.profit_minor() as f64 >= p.profit_minor() as f64 - noise(&r, 0.05),
                "seed {seed} {policy:?}: {} > oracle {}",
                p.profit_minor(),
                best.profit_minor()
            );
        }
        assert!(best.spend_minor as f64 <= max_spend(&r) as f64 * 1.01, "the oracle spends no more than the others");
    }
}

fn max_spend(r: &SeedRun) -> i64 {
    [Policy::Static, Policy::Rules, Policy::RulesWithSchedule, Policy::MarginalRoas]
        .iter()
        .map(|p| r.get(*p).spend_minor)
        .max()
        .unwrap_or(0)
}

#[test]
fn the_marginal_strategy_earns_more_than_static_budgets_without_pausing_on_noise() {
    let c = config(MarketKind::Realistic);
    for seed in [1, 2] {
        let r = run_seed(&c, seed);
        let (fixed, marginal) = (r.get(Policy::Static), r.get(Policy::MarginalRoas));
        assert!(marginal.profit_minor() > fixed.profit_minor(), "seed {seed}: {marginal:?}");
        assert!(marginal.expected_profit_minor() > fixed.expected_profit_minor() + noise(&r, 0.02));
        assert!(marginal.pauses <= r.get(Policy::Rules).pauses / 4, "pauses only on strong evidence");
        assert_eq!(marginal.cap_breaches, 0);
    }
}

#[test]
fn caps_are_never_breached_even_when_tight() {
    let mut c = config(MarketKind::Realistic);
    for cap in [c.rule.max_daily_spend_limit_minor, 250_000] {
        c.rule.max_daily_spend_limit_minor = cap;
        // Generous approvals so increases reach the cap.
        c.rule.require_approval_threshold_minor = c.rule.max_daily_budget_minor;
        c.rule.auto_approve_up_to_minor = c.rule.max_daily_budget_minor;
        let r = run_seed(&c, 11);
        for policy in Policy::ALL {
            let p: &PolicyRun = r.get(policy);
            assert_eq!(p.cap_breaches, 0, "{policy:?} with cap {cap}");
            assert!(p.final_budgets_minor.iter().all(|b| *b <= c.rule.max_daily_budget_minor));
        }
        assert!(r.get(Policy::Rules).budget_changes > 0, "the rules did act");
    }
}

#[test]
fn a_market_with_no_signal_gives_no_policy_an_uplift_beyond_noise() {
    let c = config(MarketKind::NoSignal);
    let report = run(&c);
    for r in &report.seeds {
        let base = r.get(Policy::Static);
        for policy in
            [Policy::Rules, Policy::RulesWithSchedule, Policy::MarginalRoas, Policy::FlatOracle, Policy::Oracle]
        {
            let p = r.get(policy);
            let uplift = p.profit_minor() - base.profit_minor();
            assert!((uplift as f64) <= noise(r, 0.01), "{policy:?}: uplift {uplift}");
            assert!(p.expected_profit_minor() <= base.expected_profit_minor() + noise(r, 0.002), "{policy:?}");
        }
        // The marginal strategy sees that there is nothing to find: no pauses,
        // profit within 1% of the static budgets.
        let marginal = r.get(Policy::MarginalRoas);
        assert_eq!(marginal.pauses, 0);
        let gap = (marginal.profit_minor() - base.profit_minor()).abs() as f64;
        assert!(gap <= 0.01 * base.profit_minor() as f64, "marginal ROAS {gap} away from static");
        // Nothing to find: the oracle spends as the static budgets do.
        let oracle = r.get(Policy::Oracle);
        assert!((oracle.spend_minor - base.spend_minor).abs() as f64 <= noise(r, 0.001));
    }
    let share = report.summary(Policy::Oracle).and_then(|s| s.uplift_share);
    assert!(share.is_none(), "no oracle uplift to share: {share:?}");
}

#[test]
fn the_report_has_every_policy_in_the_table_json_and_chart() {
    let mut c = config(MarketKind::Realistic);
    c.seeds = 1;
    c.days = 3;
    let report = run(&c);
    let table = report.table();
    let json = report.json();
    let svg = report.svg();
    for policy in Policy::ALL {
        assert!(table.contains(policy.label()), "{table}");
        assert!(svg.contains(policy.label()));
        assert!(json["policies"].as_array().is_some_and(|a| a.iter().any(|p| p["policy"] == policy.key())));
    }
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), Policy::ALL.len());
    assert_eq!(json["seeds"][0]["policies"]["static"]["daily_profit_minor"].as_array().map(Vec::len), Some(3));
}

fn with(params: MarketParams) -> SimulationConfig {
    SimulationConfig { kind: MarketKind::File(Arc::new(params)), ..config(MarketKind::Realistic) }
}

#[test]
fn the_default_market_file_is_the_default_market() {
    let c = config(MarketKind::Realistic);
    let from_file = MarketParams::from_toml(autoscaler::simulation::params::DEFAULT_FILE).expect("the shipped file");
    assert_eq!(run_seed(&with(from_file), 4), run_seed(&c, 4));
}

#[test]
fn the_flat_oracle_ranks_between_static_budgets_and_the_hourly_oracle() {
    let c = config(MarketKind::Realistic);
    let report = run(&c);
    for r in &report.seeds {
        let (flat, hourly, fixed) = (r.get(Policy::FlatOracle), r.get(Policy::Oracle), r.get(Policy::Static));
        assert!(flat.expected_profit_minor() <= hourly.expected_profit_minor() + noise(r, 0.002));
        assert!(flat.expected_profit_minor() > fixed.expected_profit_minor());
        assert_eq!((flat.cap_breaches, hourly.cap_breaches), (0, 0));
    }
    let flat = report.summary(Policy::FlatOracle).and_then(|s| s.uplift_share).expect("a share of the oracle");
    assert!(flat.mean > 0.5 && flat.mean < 1.0, "{flat:?}");
    let own = report.summary(Policy::FlatOracle).and_then(|s| s.flat_uplift_share).expect("its own share");
    assert!((own.mean - 1.0).abs() < 1e-9);
    let table = report.table();
    assert!(table.contains("SHARE OF FLAT ORACLE UPLIFT") && table.contains("flat oracle"), "{table}");
    let json = report.json();
    let rules = json["policies"].as_array().and_then(|a| a.iter().find(|p| p["policy"] == "rules")).cloned();
    assert!(rules.is_some_and(|p| p["flat_oracle_uplift_share"]["mean"].is_f64()));
}

#[test]
fn policies_can_be_selected_and_the_baseline_and_oracles_always_run() {
    let mut c = config(MarketKind::Realistic);
    c.seeds = 1;
    c.days = 3;
    c.policies = vec![Policy::RulesWithSchedule];
    let report = run(&c);
    let ran: Vec<Policy> = report.summaries.iter().map(|s| s.policy).collect();
    assert_eq!(ran, [Policy::Static, Policy::RulesWithSchedule, Policy::FlatOracle, Policy::Oracle]);
    assert!(report.seeds[0].try_get(Policy::Rules).is_none());
    assert!(!report.table().contains("rules (defaults)"));
    assert_eq!(report.svg().matches("<polyline").count(), 4);
    assert!(report.json()["seeds"][0]["policies"].get("rules").is_none());
    // The selected policy meets the same market as when everything runs.
    let all = run_seed(&SimulationConfig { policies: Policy::ALL.to_vec(), ..c.clone() }, c.first_seed);
    assert_eq!(report.seeds[0].get(Policy::RulesWithSchedule), all.get(Policy::RulesWithSchedule));
}

#[test]
fn delivery_costs_fall_on_the_policies_that_cause_them() {
    // A learning phase costs nothing to budgets that never change. (The
    // oracles spend the largest total among the policies run: the threshold
    // rules spend less than static budgets, so static's total sets it.)
    let mut learning = MarketParams::realistic();
    learning.learning.efficiency_loss = 0.5;
    let only_rules = |c: SimulationConfig| SimulationConfig { policies: vec![Policy::Rules], ..c };
    let plain = run_seed(&only_rules(config(MarketKind::Realistic)), 6);
    let costly = run_seed(&only_rules(with(learning)), 6);
    assert_eq!(plain.get(Policy::Static), costly.get(Policy::Static));
    assert_eq!(plain.get(Policy::Oracle), costly.get(Policy::Oracle));
    assert_ne!(plain.get(Policy::Rules), costly.get(Policy::Rules), "the rules edit budgets and pay for it");
    // Under-delivery: static budgets spend less, by about chance x mean shortfall.
    let mut short = MarketParams::realistic();
    short.delivery.under_delivery_chance = 0.5;
    short.delivery.under_delivery_max_share = 0.4;
    let under = run_seed(&with(short), 6);
    let ratio = under.get(Policy::Static).spend_minor as f64 / plain.get(Policy::Static).spend_minor as f64;
    assert!((ratio - 0.9).abs() < 0.02, "{ratio}");
    // Overdispersion: the same expected revenue, noisier realised revenue.
    let mut wild = MarketParams::realistic();
    wild.conversions.dispersion = 1.0;
    let (a, b) = (plain.get(Policy::Static), run_seed(&with(wild), 6));
    assert_eq!(a.expected_revenue_minor, b.get(Policy::Static).expected_revenue_minor);
    let spread = |r: &PolicyRun| {
        let d = &r.daily_profit_minor;
        let mean = d.iter().sum::<i64>() as f64 / d.len() as f64;
        d.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>()
    };
    assert!(spread(b.get(Policy::Static)) > spread(a), "daily profit varies more");
}

#[test]
fn the_harsh_market_runs_every_policy_within_the_caps() {
    let mut c = config(MarketKind::Harsh);
    c.seeds = 1;
    let report = run(&c);
    for s in &report.summaries {
        assert_eq!(s.cap_breaches, 0, "{:?}", s.policy);
    }
    let r = &report.seeds[0];
    assert!(
        r.get(Policy::Static).spend_minor
            < run_seed(&config(MarketKind::Realistic), c.first_seed).get(Policy::Static).spend_minor
    );
    assert_eq!(report.json()["config"]["market"], "harsh");
}
