//! `autoscaler`: the server (`serve`), its maintenance commands and the
//! operator CLI (`rules`, `evaluate`, `actions`, ... in `autoscaler::cli`).
use std::process::ExitCode;

use autoscaler::cli;
use autoscaler::cli::migrate::MigrateArgs;
use autoscaler::config::ServeArgs;
use autoscaler::service::cycle::{self, CycleMode};
use autoscaler::startup::{Application, build_state, shutdown_signal};
use autoscaler::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand};

/// Scales Meta ad campaign budgets inside hard safety limits.
#[derive(Debug, Parser)]
#[command(name = "autoscaler", version = cli::VERSION, about)]
struct Cli {
    /// Log format (client commands log only when `RUST_LOG` asks).
    #[arg(long, global = true, env = "AUTOSCALER_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server (and the local Meta sandbox when no token is set).
    Serve(ServeArgs),
    /// Create or upgrade the database schema, say which migrations were
    /// applied, then exit.
    Migrate(MigrateArgs),
    /// Run one optimization cycle and exit (for cron): exit code 0 when every
    /// account was evaluated, 2 when some accounts or campaigns failed, 1 when
    /// the cycle could not run.
    RunOnce(RunOnceArgs),
    /// Compare scaling policies on a simulated market (static budgets, the
    /// rules, rules + hour-of-day schedules, two oracles); runs locally.
    Simulate(SimulateCommand),
    /// Print the shell completion script: `source <(autoscaler completions bash)`.
    Completions {
        /// Shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Client commands: talk to a running server over gRPC.
    #[command(flatten)]
    Client(cli::ClientCommand),
}

/// Flags of `autoscaler simulate`.
#[derive(Debug, clap::Args)]
struct SimulateCommand {
    /// Print the results as JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    args: autoscaler::simulation::SimulateArgs,
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
        Command::Migrate(migrate) => migrate.config.clone(),
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
    // Client commands, completions and migrate print what they did themselves:
    // no logs unless RUST_LOG asks.
    let quiet = matches!(cli.command, Command::Client(_) | Command::Completions { .. } | Command::Migrate(_));
    let filter = if quiet { cli::LOG_FILTER } else { telemetry::DEFAULT_FILTER };
    telemetry::init(cli.log_format, filter);
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => {
            let settings = args.into_settings()?;
            let app = Application::build(settings).await?;
            app.run_until(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(args) => {
            let report = cli::migrate::run(&args.database.into_url()?).await?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::RunOnce(args) => run_once(args).await,
        Command::Simulate(SimulateCommand { json, args }) => {
            tokio::task::spawn_blocking(move || autoscaler::simulation::run_command(args, json)).await??;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "autoscaler", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Client(command) => Ok(cli::run(command).await),
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
