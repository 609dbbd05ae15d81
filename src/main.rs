//! `autoscaler`: the server (`serve`), its maintenance commands and the
//! operator CLI (`rules`, `evaluate`, `actions`, ... in `autoscaler::cli`).
use std::process::ExitCode;

use autoscaler::cli;
use autoscaler::config::{DatabaseArgs, ServeArgs};
use autoscaler::service::cycle::{self, CycleMode};
use autoscaler::startup::{Application, build_state, shutdown_signal};
use autoscaler::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand};

/// Scales Meta ad campaign budgets inside hard safety limits.
#[derive(Debug, Parser)]
#[command(name = "autoscaler", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "AUTOSCALER_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Server address and output format of the client commands.
    #[command(flatten)]
    client: cli::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server (and the local Meta sandbox when no token is set).
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Run one optimization cycle and exit (for cron): exit code 0 when every
    /// account was evaluated, 2 when some accounts or campaigns failed, 1 when
    /// the cycle could not run.
    RunOnce(RunOnceArgs),
    /// Compare scaling policies on a simulated market (static budgets, the
    /// rules, rules + hour-of-day schedules, two oracles); runs locally.
    Simulate(autoscaler::simulation::SimulateArgs),
    /// Client commands: talk to a running server over gRPC.
    #[command(flatten)]
    Client(cli::ClientCommand),
}

/// Flags of `autoscaler run-once`.
#[derive(Debug, clap::Args)]
struct RunOnceArgs {
    /// What the cycle does.
    #[arg(long, value_enum, default_value = "optimize")]
    mode: ModeArg,
    /// Decide only: record nothing and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The same settings as `serve` (the listen address is not used).
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Optimize,
    Learn,
    Both,
}

/// Parses the command line; with `--config FILE` (or `AUTOSCALER_CONFIG`)
/// on a server command, again with the file's values as the defaults.
fn parse_cli() -> Result<Cli, autoscaler::config::ConfigError> {
    use clap::{CommandFactory, FromArgMatches};
    let cli = Cli::parse();
    let config = match &cli.command {
        Command::Serve(serve) | Command::RunOnce(RunOnceArgs { serve, .. }) => serve.config.clone(),
        _ => None,
    };
    let Some(path) = config else { return Ok(cli) };
    let matches = autoscaler::config_file::apply(Cli::command(), &path)?.get_matches();
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Client output is for people and scripts: no logs unless RUST_LOG asks.
    let filter = if matches!(cli.command, Command::Client(_)) { cli::LOG_FILTER } else { telemetry::DEFAULT_FILTER };
    telemetry::init(cli.log_format, filter);
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli.command, cli.client).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, client: cli::GlobalArgs) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => {
            let settings = args.into_settings()?;
            let app = Application::build(settings).await?;
            app.run_until(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(args) => {
            autoscaler::persistence::connect(&args.into_url()?).await?;
            tracing::info!("database schema is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::RunOnce(args) => run_once(args).await,
        Command::Simulate(args) => {
            tokio::task::spawn_blocking(move || autoscaler::simulation::run_command(args, client.json)).await??;
            Ok(ExitCode::SUCCESS)
        }
        Command::Client(command) => Ok(cli::run(command, client).await),
    }
}

async fn run_once(args: RunOnceArgs) -> anyhow::Result<ExitCode> {
    let mode = match args.mode {
        ModeArg::Optimize => CycleMode::Optimize,
        ModeArg::Learn => CycleMode::Learn,
        ModeArg::Both => CycleMode::Both,
    };
    let settings = args.serve.into_settings()?;
    let (state, _sandbox) = build_state(&settings).await?;
    let report = cycle::run_cycle(&state, mode, args.dry_run, &[]).await?;
    let summary = serde_json::json!({
        "cycle_id": report.cycle_id,
        "accounts": report.accounts,
        "campaigns_evaluated": report.campaigns_evaluated,
        "executed": report.executed,
        "pending_approval": report.pending_approval,
        "failed": report.failed,
        "failures": report.failures.iter().map(|f| serde_json::json!({
            "account_id": f.account_id,
            "campaign_id": f.campaign_id,
            "error": f.error,
        })).collect::<Vec<_>>(),
    });
    println!("{summary}");
    Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}
