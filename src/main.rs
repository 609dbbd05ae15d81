//! `autoscaler`: the server (`serve`) and its operator commands.
use std::process::ExitCode;

use autoscaler::config::{DatabaseArgs, ServeArgs};
use autoscaler::startup::{Application, shutdown_signal};
use autoscaler::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand};

/// Scales Meta ad campaign budgets inside hard safety limits.
#[derive(Debug, Parser)]
#[command(name = "autoscaler", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "AUTOSCALER_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server (and the local Meta sandbox when no token is set).
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format, telemetry::DEFAULT_FILTER);
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let settings = args.into_settings()?;
            let app = Application::build(settings).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate(args) => {
            autoscaler::persistence::connect(&args.into_url()?).await?;
            tracing::info!("database schema is up to date");
            Ok(())
        }
    }
}
