//! `autoscaler migrate`: creates or upgrades the database schema, says which
//! migrations it applied, and fails within seconds, naming the setting and
//! the host (never the password), when the database cannot be reached.
use std::path::PathBuf;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database};

use crate::config::DatabaseArgs;

/// How long reaching the database may take before `migrate` gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The setting that names the database.
const SETTING: &str = "DATABASE_URL (--database-url)";

/// Flags of `autoscaler migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// TOML file of settings, the same as `serve --config` (only
    /// `database_url` and `log_format` matter here); flags and environment
    /// variables override it.
    #[arg(long, env = "AUTOSCALER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the data lives.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// What a migration run did.
#[derive(Debug)]
pub struct MigrateReport {
    /// Where the schema lives: `PostgreSQL at host:port` or `SQLite file ...`.
    pub database: String,
    /// Migrations applied by this run, oldest first.
    pub applied: Vec<String>,
    /// Migrations that were already applied before.
    pub already_applied: usize,
}

impl std::fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.applied.is_empty() {
            return writeln!(
                f,
                "schema of {} is up to date: nothing to apply ({} migrations applied before)",
                self.database, self.already_applied
            );
        }
        writeln!(f, "applied {} migrations to {}:", self.applied.len(), self.database)?;
        for name in &self.applied {
            writeln!(f, "  {name}")?;
        }
        if self.already_applied > 0 {
            writeln!(f, "({} applied before)", self.already_applied)?;
        }
        Ok(())
    }
}

/// Applies the pending migrations of the database at `url`.
pub async fn run(url: &str) -> anyhow::Result<MigrateReport> {
    let target = Target::of(url);
    // A closed port answers at once; a dropped packet would otherwise hold the
    // pool for its whole acquire timeout without saying why.
    if let Some((host, port)) = &target.tcp {
        let reached = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), *port)));
        match reached.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(target.unreachable(&e.to_string())),
            Err(_) => {
                return Err(target.unreachable(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())));
            }
        }
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).max_connections(1).connect_timeout(CONNECT_TIMEOUT).acquire_timeout(CONNECT_TIMEOUT);
    let probe = Database::connect(options).await.map_err(|e| target.refused(&e.to_string()))?;
    let before = Migrator::get_pending_migrations(&probe).await.map_err(|e| target.failed(&e.to_string()))?;
    let before: Vec<String> = before.iter().map(|m| m.name().to_owned()).collect();
    let total = Migrator::migrations().len();
    probe.close().await.ok();
    // The server's own path: SQLite pragmas, PostgreSQL's advisory lock
    // against replicas migrating at once.
    let db = crate::persistence::connect(url).await.map_err(|e| target.failed(&e.to_string()))?;
    let after = Migrator::get_pending_migrations(&db).await.map_err(|e| target.failed(&e.to_string()))?;
    let after: Vec<String> = after.iter().map(|m| m.name().to_owned()).collect();
    db.close().await.ok();
    let applied: Vec<String> = before.iter().filter(|name| !after.contains(name)).cloned().collect();
    Ok(MigrateReport { database: target.describe, applied, already_applied: total - before.len() })
}

/// The database a URL names, described without its credentials.
struct Target {
    /// For messages: `PostgreSQL at db.internal:5432` or `SQLite file app.db`.
    describe: String,
    /// Host and port to try first (PostgreSQL over TCP).
    tcp: Option<(String, u16)>,
    /// The password in the URL, kept only to scrub it from error messages.
    password: Option<String>,
}

impl Target {
    fn of(url: &str) -> Self {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//").split('?').next().unwrap_or_default();
            return Self { describe: format!("SQLite file {path}"), tcp: None, password: None };
        }
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (userinfo, host_port) = authority.rsplit_once('@').map_or(("", authority), |(u, h)| (u, h));
        let password = userinfo.split_once(':').map(|(_, p)| p.to_owned()).filter(|p| !p.is_empty());
        // `[::1]:5432`, `host:5432`, `host`; several hosts or a socket
        // directory are left to the driver.
        let (host, port) = match host_port.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
                (host, after.strip_prefix(':').map_or(Some(5432), |p| p.parse().ok()))
            }
            None => match host_port.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().ok()),
                None => (host_port, Some(5432)),
            },
        };
        let host = host.to_owned();
        let describe =
            if host.is_empty() { "PostgreSQL (local socket)".to_owned() } else { format!("PostgreSQL at {host_port}") };
        let tcp = match port {
            Some(port) if !host.is_empty() && !host.contains(',') => Some((host, port)),
            _ => None,
        };
        Self { describe, tcp, password }
    }

    /// `cause` without the password, however the driver quoted it.
    fn scrub(&self, cause: &str) -> String {
        match &self.password {
            Some(password) => cause.replace(password.as_str(), "***"),
            None => cause.to_owned(),
        }
    }

    fn unreachable(&self, cause: &str) -> anyhow::Error {
        anyhow::anyhow!("cannot reach the database of {SETTING}, {}: {}", self.describe, self.scrub(cause))
    }

    fn refused(&self, cause: &str) -> anyhow::Error {
        anyhow::anyhow!("cannot open the database of {SETTING}, {}: {}", self.describe, self.scrub(cause))
    }

    fn failed(&self, cause: &str) -> anyhow::Error {
        anyhow::anyhow!("migrating the database of {SETTING}, {} failed: {}", self.describe, self.scrub(cause))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_described_without_credentials() {
        let t = Target::of("postgres://app:s3cret@db.internal:6543/autoscaler?sslmode=require");
        assert_eq!(t.describe, "PostgreSQL at db.internal:6543");
        assert_eq!(t.tcp, Some(("db.internal".to_owned(), 6543)));
        assert_eq!(t.scrub("auth failed for s3cret"), "auth failed for ***");
        let t = Target::of("postgresql://app@[::1]/db");
        assert_eq!(t.tcp, Some(("::1".to_owned(), 5432)));
        let t = Target::of("postgres:///db?host=/run/postgresql");
        assert_eq!(t.tcp, None);
        assert_eq!(Target::of("sqlite://data/app.db?mode=rwc").describe, "SQLite file data/app.db");
    }
}
