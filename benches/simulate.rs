//! Bench: `autoscaler simulate` at full size, 1,000 campaigns x 28 days x 24
//! hours, every policy (static, rules, rules + schedules, both oracles) on
//! one seed of the default market. Run with `cargo bench --bench simulate`; prints the wall time of
//! each repetition and the best.
use std::time::Instant;

use autoscaler::simulation::{SimulationConfig, run_seed};

fn main() {
    let config = SimulationConfig::default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "simulate: {} campaigns x {} days x 24 hours, {} policies, {threads} core(s)",
        config.campaigns,
        config.days,
        config.running().len()
    );
    let mut best = f64::INFINITY;
    for seed in 1..=3 {
        let started = Instant::now();
        let run = run_seed(&config, seed);
        let secs = started.elapsed().as_secs_f64();
        best = best.min(secs);
        let profits: Vec<String> =
            run.runs.iter().map(|(p, r)| format!("{} {:.0}", p.key(), r.profit_minor() as f64 / 100.0)).collect();
        println!("  seed {seed}: {secs:.2} s (profit: {})", profits.join(", "));
    }
    println!("best: {best:.2} s per seed (every policy)");
}
