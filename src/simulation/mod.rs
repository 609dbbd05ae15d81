//! Decision quality on a simulated market (`autoscaler simulate`): policies
//! run over the same market, hour by hour, with common random numbers, and
//! are compared on profit, ROAS, wasted spend, changes, approvals and cap
//! breaches. Pure computation: no database, no platform, no network.
//!
//! Policies: static budgets (the baseline); the brief's rules with default
//! settings, decided by the live engine's own step; the rules plus hour-of-day
//! schedules learned by the service's own time optimizer
//! ([`crate::domain::time_profile`]); and an oracle that knows the true
//! response curves.
pub mod market;
mod oracle;
pub mod report;
mod rng;
mod sim;

use std::path::PathBuf;

pub use market::{Market, MarketConfig, MarketKind};
pub use report::{PolicySummary, SimulationReport, Stat};
pub use sim::{CURRENCY, LEARN_AFTER_DAYS, PolicyRun, WARMUP_DAYS};

use crate::domain::rule::{RuleSettings, Strategy};

/// The policies compared, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Every campaign keeps its starting budget, paced flat.
    Static,
    /// The rule (default settings) decides every campaign every hour.
    Rules,
    /// The rule, plus a learned hour-of-day schedule for each campaign.
    RulesWithSchedule,
    /// The same rule under the marginal-ROAS strategy.
    MarginalRoas,
    /// Knows the true curves; spends the same total where it earns most.
    Oracle,
}

impl Policy {
    /// Every policy, in report order.
    pub const ALL: [Policy; 5] = [Self::Static, Self::Rules, Self::RulesWithSchedule, Self::MarginalRoas, Self::Oracle];

    /// Stable key (JSON).
    pub fn key(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Rules => "rules",
            Self::RulesWithSchedule => "rules_with_schedule",
            Self::MarginalRoas => "marginal_roas",
            Self::Oracle => "oracle",
        }
    }

    /// Name for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Static => "static budgets",
            Self::Rules => "rules (defaults)",
            Self::RulesWithSchedule => "rules + schedules",
            Self::MarginalRoas => "marginal ROAS",
            Self::Oracle => "oracle",
        }
    }
}

/// Everything a simulation run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationConfig {
    /// Campaigns in the market.
    pub campaigns: usize,
    /// Days, simulated hour by hour.
    pub days: usize,
    /// Number of seeds (markets) to average over.
    pub seeds: usize,
    /// The first seed; the others follow it.
    pub first_seed: u64,
    /// Campaigns per ad account (each account has the rule's spend cap).
    pub campaigns_per_account: usize,
    /// Which market.
    pub kind: MarketKind,
    /// Hours until a change that needs approval is approved.
    pub approval_delay_hours: usize,
    /// The rule of the rule policies (the brief's defaults unless changed).
    pub rule: RuleSettings,
}

impl Default for SimulationConfig {
    /// 1,000 campaigns in accounts of 25, 28 days, 5 seeds, the default rule,
    /// approvals granted 4 hours after the decision.
    fn default() -> Self {
        Self {
            campaigns: 1_000,
            days: 28,
            seeds: 5,
            first_seed: 1,
            campaigns_per_account: 25,
            kind: MarketKind::Realistic,
            approval_delay_hours: 4,
            rule: RuleSettings::defaults("Default Auto-Scaling", CURRENCY, 100),
        }
    }
}

/// Every policy's run on one market.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRun {
    /// The market's seed.
    pub seed: u64,
    /// One run per policy, in [`Policy::ALL`] order.
    pub runs: Vec<PolicyRun>,
}

impl SeedRun {
    /// The run of `policy`.
    pub fn get(&self, policy: Policy) -> &PolicyRun {
        let i = Policy::ALL.iter().position(|p| *p == policy).unwrap_or(0);
        &self.runs[i]
    }
}

/// Runs every policy on the market of `seed`: the three policies in parallel
/// (each on its own thread), then the oracle with the largest of their totals.
pub fn run_seed(config: &SimulationConfig, seed: u64) -> SeedRun {
    let market_config = MarketConfig {
        seed,
        campaigns: config.campaigns,
        days: config.days,
        campaigns_per_account: config.campaigns_per_account,
        kind: config.kind,
    };
    let cap = config.rule.max_daily_spend_limit_minor;
    let market = Market::generate(&market_config, cap);
    let rules = |schedule| sim::Driver::Rules {
        rule: &config.rule,
        schedule,
        approval_delay_hours: config.approval_delay_hours,
    };
    let marginal_rule = RuleSettings { strategy: Strategy::MarginalRoas, ..config.rule.clone() };
    let marginal = sim::Driver::Marginal { rule: &marginal_rule, approval_delay_hours: config.approval_delay_hours };
    let (fixed, ruled, scheduled, planned) = std::thread::scope(|s| {
        let a = s.spawn(|| sim::run(&market, sim::Driver::Static, cap));
        let b = s.spawn(|| sim::run(&market, rules(false), cap));
        let d = s.spawn(|| sim::run(&market, marginal, cap));
        let c = sim::run(&market, rules(true), cap);
        (a.join(), b.join(), c, d.join())
    });
    let (fixed, ruled, planned) = match (fixed, ruled, planned) {
        (Ok(a), Ok(b), Ok(d)) => (a, b, d),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => std::panic::resume_unwind(e),
    };
    let total = [&fixed, &ruled, &scheduled, &planned].iter().map(|r| r.spend_minor).max().unwrap_or(0) as f64;
    let plan = oracle::plan(&market, total, config.rule.max_daily_budget_minor as f64, cap as f64);
    let best = sim::run(&market, sim::Driver::Plan(&plan), cap);
    SeedRun { seed, runs: vec![fixed, ruled, scheduled, planned, best] }
}

/// Runs every seed and summarises.
pub fn run(config: &SimulationConfig) -> SimulationReport {
    let seeds: Vec<SeedRun> =
        (0..config.seeds.max(1) as u64).map(|i| run_seed(config, config.first_seed.wrapping_add(i))).collect();
    SimulationReport::new(config.clone(), seeds)
}

/// `--market` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MarketArg {
    /// Campaigns that differ in every way the model has.
    Realistic,
    /// Identical, flat campaigns: nothing to find.
    NoSignal,
}

/// Flags of `autoscaler simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Campaigns in the market.
    #[arg(long, default_value_t = 1_000)]
    pub campaigns: usize,
    /// Days to simulate, hour by hour.
    #[arg(long, default_value_t = 28)]
    pub days: usize,
    /// Markets (seeds) to average over.
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Campaigns per ad account; each account has the rule's spend cap.
    #[arg(long, default_value_t = 25)]
    pub campaigns_per_account: usize,
    /// Which market.
    #[arg(long, value_enum, default_value = "realistic")]
    pub market: MarketArg,
    /// Hours until a change that needs approval is approved.
    #[arg(long, default_value_t = 4)]
    pub approval_delay_hours: usize,
    /// The marginal-ROAS policy's elasticity band, low end (the rule's default unless set).
    #[arg(long)]
    pub elasticity_low: Option<f64>,
    /// The marginal-ROAS policy's elasticity band, high end.
    #[arg(long)]
    pub elasticity_high: Option<f64>,
    /// The marginal-ROAS policy's credible level.
    #[arg(long)]
    pub credible_level: Option<f64>,
    /// The marginal-ROAS policy's largest step, percent.
    #[arg(long)]
    pub max_step_percent: Option<f64>,
    /// Write an SVG chart of cumulative profit per policy to this file.
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
}

/// Runs `autoscaler simulate`: prints the table (or JSON with `json`) and
/// writes the chart when asked.
pub fn run_command(args: SimulateArgs, json: bool) -> anyhow::Result<()> {
    if args.campaigns == 0 || args.days == 0 || args.campaigns_per_account == 0 {
        anyhow::bail!("--campaigns, --days and --campaigns-per-account must be at least 1");
    }
    if args.days > 3_660 || args.campaigns > 1_000_000 || args.seeds > 1_000 {
        anyhow::bail!("at most 3660 days, 1000000 campaigns and 1000 seeds");
    }
    let mut rule = SimulationConfig::default().rule;
    let m = &mut rule.marginal;
    m.elasticity_low = args.elasticity_low.unwrap_or(m.elasticity_low);
    m.elasticity_high = args.elasticity_high.unwrap_or(m.elasticity_high);
    m.credible_level = args.credible_level.unwrap_or(m.credible_level);
    m.max_step_percent = args.max_step_percent.unwrap_or(m.max_step_percent);
    rule.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = SimulationConfig {
        rule,
        campaigns: args.campaigns,
        days: args.days,
        seeds: args.seeds.max(1),
        first_seed: args.seed,
        campaigns_per_account: args.campaigns_per_account,
        kind: match args.market {
            MarketArg::Realistic => MarketKind::Realistic,
            MarketArg::NoSignal => MarketKind::NoSignal,
        },
        approval_delay_hours: args.approval_delay_hours,
    };
    let started = std::time::Instant::now();
    let report = run(&config);
    let elapsed = started.elapsed();
    if let Some(path) = &args.chart {
        std::fs::write(path, report.svg())
            .map_err(|e| anyhow::anyhow!("cannot write the chart to {}: {e}", path.display()))?;
    }
    if json {
        println!("{:#}", report.json());
    } else {
        print!("{}", report.table());
        println!("simulated in {:.1}s", elapsed.as_secs_f64());
        if let Some(path) = &args.chart {
            println!("chart: {}", path.display());
        }
    }
    Ok(())
}
