//! Bench: `autoscaler simulate` at full size, 1,000 campaigns x 28 days x 24
//! hours, every policy (static, rules, rules + schedules, oracle) on one
//! seed. Run with `cargo bench --bench simulate`; prints the wall time of
//! each repetition and the best.
use std::time::Instant;

use autoscaler::simulation::{Policy, SimulationConfig, run_seed};

fn main() {
    let config = SimulationConfig::default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "simulate: {} campaigns x {} days x 24 hours, 4 policies, {threads} core(s)",
        config.campaigns, config.days
    );
    let mut best = f64::INFINITY;
    for seed in 1..=3 {
        let started = Instant::now();
        let run = run_seed(&config, seed);
        let secs = started.elapsed().as_secs_f64();
        best = best.min(secs);
        let profit = |p: Policy| run.get(p).profit_minor() as f64 / 100.0;
        println!(
            "  seed {seed}: {secs:.2} s (profit static {:.0}, rules {:.0}, rules+schedules {:.0}, oracle {:.0})",
            profit(Policy::Static),
            profit(Policy::Rules),
            profit(Policy::RulesWithSchedule),
            profit(Policy::Oracle)
        );
    }
    println!("best: {best:.2} s per seed (all four policies)");
}
