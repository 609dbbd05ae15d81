//! Operator CLI: the client subcommands of the `autoscaler` binary, built on
//! the generated gRPC clients. Tables that fit the terminal for people by
//! default, protobuf JSON (`--json`) for scripts; errors print the gRPC
//! status code and message.
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
pub mod migrate;
mod progress;
pub mod replay;
pub mod rules;
pub mod time;
mod watch;

/// Server address used when neither `--server` nor `AUTOSCALER_SERVER` is set.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Log filter of client commands: silent unless `RUST_LOG` asks for more.
pub const LOG_FILTER: &str = "off";

/// What `autoscaler --version` prints after the name: the release, the
/// commit it was built from and the day it was built (UTC).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("AUTOSCALER_REVISION"),
    ", built ",
    env!("AUTOSCALER_BUILD_DATE"),
    ")"
);

/// How a client command reaches the server, and how it prints. Only client
/// commands take these flags; they may stand anywhere after the command name.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Server connection")]
pub struct ServerArgs {
    /// Server to talk to.
    #[arg(long, global = true, env = "AUTOSCALER_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Print each reply as protobuf JSON (as grpcurl prints it) instead of tables.
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

/// A client command group (`rules`, `actions`, `time`) with the server flags.
#[derive(Debug, clap::Args)]
pub struct Group<C: Subcommand> {
    /// Server connection and output.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: C,
}

/// A single client command (`evaluate`, `dashboard`, ...) with the server flags.
#[derive(Debug, clap::Args)]
pub struct Single<A: clap::Args> {
    /// Server connection and output.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The command's own flags.
    #[command(flatten)]
    pub args: A,
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
    Rules(Group<rules::RulesCommand>),
    /// Evaluate campaigns now: one (`--campaign ID`), several, or every active one.
    Evaluate(Single<evaluate::EvaluateArgs>),
    /// Pending approvals, decisions, one action, the history and the live stream.
    Actions(Group<actions::ActionsCommand>),
    /// What the auto-scaler did over the last days.
    Dashboard(Single<dashboard::DashboardArgs>),
    /// Hour-of-day optimization: profiles, budget schedules, learning.
    Time(Group<time::TimeCommand>),
    /// Run the hourly optimization cycle now, on the server. Exit code 2 when
    /// some accounts or campaigns failed.
    RunCycle(Single<cycle::RunCycleArgs>),
    /// Replay the stored rules, or a candidate rule, on an account's stored
    /// history: the decisions they would have made (read-only).
    Replay(Box<Single<replay::ReplayArgs>>),
}

/// Runs one client command and returns the process exit code: 0 on success,
/// 1 on an error (printed as `error: <code>: <message>`), 2 when a bulk
/// command succeeded only in part.
pub async fn run(command: ClientCommand) -> ExitCode {
    match dispatch(command).await {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: ClientCommand) -> Result<Outcome, CliError> {
    let server = match &command {
        ClientCommand::Rules(c) => &c.server,
        ClientCommand::Evaluate(c) => &c.server,
        ClientCommand::Actions(c) => &c.server,
        ClientCommand::Dashboard(c) => &c.server,
        ClientCommand::Time(c) => &c.server,
        ClientCommand::RunCycle(c) => &c.server,
        ClientCommand::Replay(c) => &c.server,
    };
    let channel = connect(&server.server, server.tls_ca.as_deref()).await?;
    let credentials = Credentials::new(server.token.as_ref())?;
    let ctx = Ctx { channel: InterceptedService::new(channel, credentials), json: server.json };
    match command {
        ClientCommand::Rules(c) => rules::run(&ctx, c.command).await,
        ClientCommand::Evaluate(c) => evaluate::run(&ctx, c.args).await,
        ClientCommand::Actions(c) => actions::run(&ctx, c.command).await,
        ClientCommand::Dashboard(c) => dashboard::run(&ctx, c.args).await,
        ClientCommand::Time(c) => time::run(&ctx, c.command).await,
        ClientCommand::RunCycle(c) => cycle::run(&ctx, c.args).await,
        ClientCommand::Replay(c) => replay::run(&ctx, c.args).await,
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
    /// Prints `reply` as protobuf JSON in `--json` mode, else the text
    /// `table()` builds for people.
    fn print<M: prost::Message + prost::Name>(
        &self,
        reply: &M,
        table: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        let text = if self.json { format!("{}\n", json::to_text(reply, true)?) } else { table() };
        format::emit(&text);
        Ok(())
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
