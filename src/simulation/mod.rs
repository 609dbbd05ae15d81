//! Decision quality on a simulated market (`autoscaler simulate`): policies
//! run over the same market, hour by hour, with common random numbers, and
//! are compared on profit, ROAS, wasted spend, changes, approvals and cap
//! breaches. Pure computation: no database, no platform, no network.
//!
//! Policies: static budgets (the baseline); the default rule (threshold table) with default
//! settings, decided by the live engine's own step; the rules plus hour-of-day
//! schedules learned by the service's own time optimizer
//! ([`crate::domain::time_profile`]); and two oracles that know the true
//! response curves (one setting spend hour by hour, one only a flat-paced
//! daily budget). The market is a parameter file ([`params`]).
mod learning;
pub mod market;
mod oracle;
pub mod params;
pub mod report;
mod rng;
mod sim;

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

pub use market::{Market, MarketConfig, MarketKind};
pub use params::{MarketParams, ParamsError};
pub use report::{PolicySummary, SimulationReport, Stat};
pub use sim::{CURRENCY, LEARN_AFTER_DAYS, PolicyRun, WARMUP_DAYS};

use crate::domain::rule::{RuleSettings, Strategy};

/// The policies compared, in report order. The names on the command line
/// (`--policies`) are the kebab-case variant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Policy {
    /// Every campaign keeps its starting budget, paced flat.
    Static,
    /// The rule (default settings) decides every campaign every hour.
    Rules,
    /// The rule, plus a learned hour-of-day schedule for each campaign.
    RulesWithSchedule,
    /// The same rule under the marginal-ROAS strategy.
    MarginalRoas,
    /// Knows the true curves; sets one flat-paced daily budget per
    /// campaign-day, spending the same total where it earns most.
    FlatOracle,
    /// Knows the true curves; sets spend hour by hour, spending the same
    /// total where it earns most.
    Oracle,
}

impl Policy {
    /// Every policy, in report order.
    pub const ALL: [Policy; 6] =
        [Self::Static, Self::Rules, Self::RulesWithSchedule, Self::MarginalRoas, Self::FlatOracle, Self::Oracle];

    /// The oracles (always run: the share columns are measured against them).
    pub fn is_oracle(self) -> bool {
        matches!(self, Self::FlatOracle | Self::Oracle)
    }

    /// Stable key (JSON).
    pub fn key(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Rules => "rules",
            Self::RulesWithSchedule => "rules_with_schedule",
            Self::MarginalRoas => "marginal_roas",
            Self::FlatOracle => "flat_oracle",
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
            Self::FlatOracle => "flat oracle",
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
    /// The rule of the rule policies (the default rule unless changed).
    pub rule: RuleSettings,
    /// The policies to run; static budgets and both oracles run whatever
    /// this says (they are the baseline and the ceilings of the shares).
    pub policies: Vec<Policy>,
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
            policies: Policy::ALL.to_vec(),
        }
    }
}

impl SimulationConfig {
    /// The policies that run, in report order: the selected ones plus static
    /// budgets and both oracles.
    pub fn running(&self) -> Vec<Policy> {
        Policy::ALL.into_iter().filter(|p| *p == Policy::Static || p.is_oracle() || self.policies.contains(p)).collect()
    }
}

/// Every policy's run on one market.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRun {
    /// The market's seed.
    pub seed: u64,
    /// One run per policy that ran, in [`Policy::ALL`] order.
    pub runs: Vec<(Policy, PolicyRun)>,
}

/// What [`SeedRun::get`] returns for a policy that did not run.
static NOT_RUN: LazyLock<PolicyRun> = LazyLock::new(PolicyRun::default);

impl SeedRun {
    /// The run of `policy`, if it ran.
    pub fn try_get(&self, policy: Policy) -> Option<&PolicyRun> {
        self.runs.iter().find(|(p, _)| *p == policy).map(|(_, r)| r)
    }

    /// The run of `policy` (all zeros when it did not run).
    pub fn get(&self, policy: Policy) -> &PolicyRun {
        self.try_get(policy).unwrap_or(&NOT_RUN)
    }
}

/// How `policy` sets budgets (the oracles' plans are made in [`run_seed`]).
fn driver<'a>(config: &'a SimulationConfig, marginal: &'a RuleSettings, policy: Policy) -> sim::Driver<'a> {
    let rules = |schedule| sim::Driver::Rules {
        rule: &config.rule,
        schedule,
        approval_delay_hours: config.approval_delay_hours,
    };
    match policy {
        Policy::Rules => rules(false),
        Policy::RulesWithSchedule => rules(true),
        Policy::MarginalRoas => {
            sim::Driver::Marginal { rule: marginal, approval_delay_hours: config.approval_delay_hours }
        }
        Policy::Static | Policy::FlatOracle | Policy::Oracle => sim::Driver::Static,
    }
}

/// Runs the policies on the market of `seed`: the selected ones in parallel
/// (each on its own thread), then both oracles with the largest of their
/// totals.
pub fn run_seed(config: &SimulationConfig, seed: u64) -> SeedRun {
    let market_config = MarketConfig {
        seed,
        campaigns: config.campaigns,
        days: config.days,
        campaigns_per_account: config.campaigns_per_account,
        params: config.kind.params(),
    };
    let cap = config.rule.max_daily_spend_limit_minor;
    let market = Market::generate(&market_config, cap);
    let marginal_rule = RuleSettings { strategy: Strategy::MarginalRoas, ..config.rule.clone() };
    let policies: Vec<Policy> = config.running().into_iter().filter(|p| !p.is_oracle()).collect();
    let join = |h: std::thread::Result<PolicyRun>| h.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let mut runs: Vec<(Policy, PolicyRun)> = std::thread::scope(|s| {
        let market = &market;
        let marginal = &marginal_rule;
        let handles: Vec<_> = policies
            .iter()
            .map(|&p| (p, s.spawn(move || sim::run(market, driver(config, marginal, p), cap))))
            .collect();
        handles.into_iter().map(|(p, h)| (p, join(h.join()))).collect()
    });
    let total = runs.iter().map(|(_, r)| r.spend_minor).max().unwrap_or(0) as f64;
    let max_daily = config.rule.max_daily_budget_minor as f64;
    let oracles = std::thread::scope(|s| {
        let market = &market;
        let handles: Vec<_> = [(Policy::FlatOracle, oracle::Pacing::Flat), (Policy::Oracle, oracle::Pacing::Hourly)]
            .into_iter()
            .map(|(p, pacing)| {
                (
                    p,
                    s.spawn(move || {
                        let plan = oracle::plan(market, pacing, total, max_daily, cap as f64);
                        sim::run(market, sim::Driver::Plan(&plan), cap)
                    }),
                )
            })
            .collect();
        handles.into_iter().map(|(p, h)| (p, join(h.join()))).collect::<Vec<_>>()
    });
    runs.extend(oracles);
    runs.sort_by_key(|(p, _)| Policy::ALL.iter().position(|q| q == p));
    SeedRun { seed, runs }
}

/// Runs every seed and summarises.
pub fn run(config: &SimulationConfig) -> SimulationReport {
    let seeds: Vec<SeedRun> =
        (0..config.seeds.max(1) as u64).map(|i| run_seed(config, config.first_seed.wrapping_add(i))).collect();
    SimulationReport::new(config.clone(), seeds)
}

/// `--market` values: the shipped market files.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MarketArg {
    /// `simulation/market.toml`: campaigns that differ in every way the
    /// model has; no delivery costs.
    #[value(alias = "default")]
    Realistic,
    /// `simulation/no-signal.toml`: identical, flat campaigns: nothing to find.
    NoSignal,
    /// `simulation/harsh.toml`: the default market with learning phases,
    /// slow long-tailed lag, overdispersion and under-delivery.
    Harsh,
}

impl MarketArg {
    fn kind(self) -> MarketKind {
        match self {
            Self::Realistic => MarketKind::Realistic,
            Self::NoSignal => MarketKind::NoSignal,
            Self::Harsh => MarketKind::Harsh,
        }
    }

    fn file(self) -> &'static str {
        match self {
            Self::Realistic => params::DEFAULT_FILE,
            Self::NoSignal => params::NO_SIGNAL_FILE,
            Self::Harsh => params::HARSH_FILE,
        }
    }
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
    /// Which shipped market.
    #[arg(long, value_enum, default_value = "realistic")]
    pub market: MarketArg,
    /// A market file (TOML; see `simulation/market.toml`): replaces `--market`.
    #[arg(long, value_name = "FILE", conflicts_with = "market")]
    pub market_config: Option<PathBuf>,
    /// Print the `--market` file (with its comments) and exit: a starting
    /// point for a market file of one's own.
    #[arg(long)]
    pub print_market: bool,
    /// Policies to run, comma-separated (static budgets and both oracles
    /// always run).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Policy::ALL.to_vec())]
    pub policies: Vec<Policy>,
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
    if args.print_market {
        print!("{}", args.market.file());
        return Ok(());
    }
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
        kind: match &args.market_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read the market file {}: {e}", path.display()))?;
                let params = MarketParams::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                MarketKind::File(Arc::new(params))
            }
            None => args.market.kind(),
        },
        approval_delay_hours: args.approval_delay_hours,
        policies: args.policies.clone(),
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
