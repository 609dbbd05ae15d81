//! Operator CLI: the client subcommands of the `autoscaler` binary, built on
//! the generated gRPC clients. Tables for people by default, `--json` for
//! scripts; errors print the gRPC status code and message.
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Code, Request, Status};

pub mod actions;
pub mod cycle;
pub mod dashboard;
pub mod evaluate;
mod format;
mod json;
mod progress;
pub mod replay;
pub mod rules;
pub mod time;
mod watch;

/// Server address used when neither `--server` nor `AUTOSCALER_SERVER` is set.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Log filter of client commands: silent unless `RUST_LOG` asks for more.
pub const LOG_FILTER: &str = "off";

/// Flags shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Server the client commands talk to.
    #[arg(long, global = true, env = "AUTOSCALER_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Print the response messages as JSON instead of tables (client commands).
    #[arg(long, global = true)]
    pub json: bool,
    /// CA certificate (PEM) that signed the server's TLS certificate; the
    /// connection then uses TLS (`https://`).
    #[arg(long, global = true, env = "AUTOSCALER_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// API token, sent as `authorization: Bearer <token>`. Prefer the
    /// environment variable: command lines are visible to other users.
    #[arg(long, global = true, env = "AUTOSCALER_TOKEN", hide_env_values = true)]
    pub token: Option<SecretString>,
}

/// The connection every client command uses: the channel, with the caller's
/// token added to each request.
pub(crate) type Connection = InterceptedService<Channel, Credentials>;

/// Adds `authorization: Bearer <token>` to every request when a token is set.
#[derive(Clone)]
pub(crate) struct Credentials {
    header: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert("authorization", header.clone());
        }
        Ok(request)
    }
}

impl Credentials {
    fn new(token: Option<&SecretString>) -> Result<Self, CliError> {
        let header = match token {
            None => None,
            Some(token) => {
                let mut value: MetadataValue<tonic::metadata::Ascii> =
                    format!("Bearer {}", token.expose_secret().trim())
                        .parse()
                        .map_err(|_| CliError::new(Code::InvalidArgument, "the API token must be printable ASCII"))?;
                // Kept out of HTTP/2 header compression tables.
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self { header })
    }
}

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List, show, create, update and delete scaling rules.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Evaluate campaigns now: one (`--campaign ID`), several, or every active one.
    Evaluate(evaluate::EvaluateArgs),
    /// Pending approvals, decisions, the action history and the live stream.
    #[command(subcommand)]
    Actions(actions::ActionsCommand),
    /// What the auto-scaler did over the last days.
    Dashboard(dashboard::DashboardArgs),
    /// Hour-of-day optimization: profiles, budget schedules, learning.
    #[command(subcommand)]
    Time(time::TimeCommand),
    /// Run the hourly optimization cycle now, on the server. Exit code 2 when
    /// some accounts or campaigns failed.
    RunCycle(cycle::RunCycleArgs),
    /// Replay the stored rules, or a candidate rule, on an account's stored
    /// history: the decisions they would have made (read-only).
    Replay(Box<replay::ReplayArgs>),
}

/// Runs one client command and returns the process exit code: 0 on success,
/// 1 on an error (printed as `error: <code>: <message>`), 2 when a bulk
/// command succeeded only in part.
pub async fn run(command: ClientCommand, global: GlobalArgs) -> ExitCode {
    match dispatch(command, &global).await {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: ClientCommand, global: &GlobalArgs) -> Result<Outcome, CliError> {
    let channel = connect(&global.server, global.tls_ca.as_deref()).await?;
    let credentials = Credentials::new(global.token.as_ref())?;
    let ctx = Ctx { channel: InterceptedService::new(channel, credentials), json: global.json };
    match command {
        ClientCommand::Rules(cmd) => rules::run(&ctx, cmd).await,
        ClientCommand::Evaluate(args) => evaluate::run(&ctx, args).await,
        ClientCommand::Actions(cmd) => actions::run(&ctx, cmd).await,
        ClientCommand::Dashboard(args) => dashboard::run(&ctx, args).await,
        ClientCommand::Time(cmd) => time::run(&ctx, cmd).await,
        ClientCommand::RunCycle(args) => cycle::run(&ctx, args).await,
        ClientCommand::Replay(args) => replay::run(&ctx, *args).await,
    }
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Everything asked for was done.
    Success,
    /// Some campaigns or accounts failed; they are listed in the output.
    Partial,
}

/// What every command needs: the connection to the server and the output mode.
struct Ctx {
    channel: Connection,
    json: bool,
}

impl Ctx {
    /// Prints `value` as pretty JSON in `--json` mode, else the text `table()` builds.
    fn print(&self, value: impl FnOnce() -> serde_json::Value, table: impl FnOnce() -> String) {
        let text = if self.json { format!("{:#}\n", value()) } else { table() };
        format::emit(&text);
    }
}

/// A failure of a client command: a gRPC status from the server, or one
/// built locally with the code that fits (e.g. UNAVAILABLE when the server
/// cannot be reached).
#[derive(Debug)]
struct CliError {
    code: Code,
    message: String,
}

impl CliError {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        Self { code: status.code(), message: status.message().to_owned() }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

async fn connect(server: &str, tls_ca: Option<&std::path::Path>) -> Result<Channel, CliError> {
    // `host:port` alone means plaintext HTTP/2, as the server speaks by
    // default, or TLS when a CA is given.
    let scheme = if tls_ca.is_some() { "https" } else { "http" };
    let server = if server.contains("://") { server.to_owned() } else { format!("{scheme}://{server}") };
    let mut endpoint = Channel::from_shared(server.clone())
        .map_err(|e| CliError::new(Code::InvalidArgument, format!("bad server address {server:?}: {e}")))?
        .connect_timeout(Duration::from_secs(5));
    match tls_ca {
        Some(path) => {
            if !server.starts_with("https://") {
                return Err(CliError::new(Code::InvalidArgument, "--tls-ca needs an https:// server address"));
            }
            let pem = std::fs::read(path).map_err(|e| {
                CliError::new(Code::InvalidArgument, format!("cannot read --tls-ca {}: {e}", path.display()))
            })?;
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| CliError::new(Code::InvalidArgument, format!("bad TLS settings: {e}")))?;
        }
        None if server.starts_with("https://") => {
            return Err(CliError::new(
                Code::InvalidArgument,
                "an https:// server needs --tls-ca (AUTOSCALER_TLS_CA): the CA that signed its certificate",
            ));
        }
        None => {}
    }
    endpoint.connect().await.map_err(|e| {
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            cause = format!("{cause}: {s}");
            source = s.source();
        }
        CliError::new(Code::Unavailable, format!("cannot connect to {server}: {cause}"))
    })
}
