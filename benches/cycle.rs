//! Benchmark: one optimization cycle over 100,000 campaigns in 100 sandbox
//! accounts on SQLite. Prints wall time, Graph API requests and peak memory.
//! Run: `cargo bench --bench cycle` (env BENCH_ACCOUNTS / BENCH_CAMPAIGNS to resize;
//! BENCH_STRATEGY=marginal-roas gives every account the marginal-ROAS rule).
use std::time::Instant;

use autoscaler::config::{EngineConfig, MetaConfig, SandboxConfig, Settings};
use autoscaler::domain::rule::Strategy;
use autoscaler::service::cycle::{self, CycleMode};
use autoscaler::startup::build_state;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    autoscaler::telemetry::init(autoscaler::telemetry::LogFormat::Text, "error");
    let accounts = env_usize("BENCH_ACCOUNTS", 100);
    let campaigns = env_usize("BENCH_CAMPAIGNS", 1_000);
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()),
        meta: MetaConfig {
            access_token: None,
            app_secret: None,
            account_ids: Vec::new(),
            graph_url: String::new(),
            api_version: "v26.0".into(),
            purchase_action_type: "omni_purchase".into(),
            sandbox: SandboxConfig { seed: 42, accounts, campaigns_per_account: campaigns },
            request_timeout: std::time::Duration::from_secs(60),
            max_retries: 3,
            backoff_base: std::time::Duration::from_millis(50),
        },
        engine: EngineConfig {
            default_strategy: std::env::var("BENCH_STRATEGY")
                .ok()
                .and_then(|s| Strategy::parse(&s))
                .unwrap_or(Strategy::Thresholds),
            ..EngineConfig::default()
        },
        schedules: Default::default(),
        metrics_listen: None,
        limits: Default::default(),
        security: Default::default(),
    };
    let (state, _sandbox) = build_state(&settings).await?;
    println!(
        "cycle benchmark: {accounts} accounts x {campaigns} campaigns = {} campaigns, SQLite, strategy {}",
        accounts * campaigns,
        settings.engine.default_strategy.as_str()
    );
    for round in 1..=2 {
        let requests_before = state.platform.request_count();
        let started = Instant::now();
        let report = cycle::run_cycle(&state, CycleMode::Optimize, false, &[]).await?;
        let elapsed = started.elapsed();
        let requests = state.platform.request_count() - requests_before;
        println!(
            "cycle {round}: {:.2} s, {} campaigns evaluated, {} executed, {} pending approval, {} failed, {} account failures, \
             {requests} Graph requests ({:.1} per account), peak RSS {:.0} MiB",
            elapsed.as_secs_f64(),
            report.campaigns_evaluated,
            report.executed,
            report.pending_approval,
            report.failed,
            report.failures.len(),
            requests as f64 / accounts.max(1) as f64,
            peak_rss_mib().unwrap_or(f64::NAN),
        );
    }
    Ok(())
}
