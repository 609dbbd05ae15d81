//! Where a database URL points, described without its credentials, and a
//! quick check that its host answers: `serve`, `run-once` and `migrate` fail
//! within seconds, naming the setting and the host (never the password),
//! instead of waiting out the pool's acquire timeout with a message that
//! names neither.
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// The setting that names the database, as operators know it.
pub const DATABASE_SETTING: &str = "DATABASE_URL (--database-url)";

/// How long reaching the database's host may take before a command gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database that could not be reached, opened or migrated; the message
/// names the setting and the host, and never holds the password.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DatabaseError(String);

/// The database a URL names, described without its credentials.
#[derive(Debug)]
pub struct DatabaseTarget {
    /// For messages: `PostgreSQL at db.internal:5432` or `SQLite file app.db`.
    describe: String,
    /// Host and port to try first (PostgreSQL over TCP).
    tcp: Option<(String, u16)>,
    /// The password in the URL, kept only to scrub it from error messages.
    password: Option<String>,
}

impl DatabaseTarget {
    /// Reads `url` (never fails: what it cannot read is left to the driver).
    pub fn of(url: &str) -> Self {
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

    /// `PostgreSQL at host:port`, `PostgreSQL (local socket)` or `SQLite file PATH`.
    pub fn description(&self) -> &str {
        &self.describe
    }

    /// Opens and closes a TCP connection to the database's host, within
    /// [`CONNECT_TIMEOUT`]. A closed port answers at once, but the pool
    /// retries a refused connection until its acquire timeout, and a dropped
    /// packet holds it just as long, without saying why. Nothing to check for
    /// SQLite or a local socket.
    pub async fn probe(&self) -> Result<(), DatabaseError> {
        let Some((host, port)) = &self.tcp else { return Ok(()) };
        let reached = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), *port)));
        match reached.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.unreachable(&e.to_string())),
            Err(_) => Err(self.unreachable(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
    }

    /// [`probe`](Self::probe), then one connection to the database at `url`
    /// (which this target describes) on [`CONNECT_TIMEOUT`]: a host that
    /// accepts but never answers, a refused login or a missing database is
    /// reported in seconds, not after the pool's acquire timeout.
    pub async fn reach(&self, url: &str) -> Result<DatabaseConnection, DatabaseError> {
        self.probe().await?;
        let mut once = ConnectOptions::new(url.to_owned());
        once.sqlx_logging(false).max_connections(1).connect_timeout(CONNECT_TIMEOUT).acquire_timeout(CONNECT_TIMEOUT);
        Database::connect(once).await.map_err(|e| self.refused(&e.to_string()))
    }

    /// `cause` without the password, however the driver quoted it.
    pub fn scrub(&self, cause: &str) -> String {
        match &self.password {
            Some(password) => cause.replace(password.as_str(), "***"),
            None => cause.to_owned(),
        }
    }

    /// The host did not answer.
    pub fn unreachable(&self, cause: &str) -> DatabaseError {
        DatabaseError(format!(
            "cannot reach the database of {DATABASE_SETTING}, {}: {}",
            self.describe,
            self.scrub(cause)
        ))
    }

    /// The host answered but the database refused the connection.
    pub fn refused(&self, cause: &str) -> DatabaseError {
        DatabaseError(format!(
            "cannot open the database of {DATABASE_SETTING}, {}: {}",
            self.describe,
            self.scrub(cause)
        ))
    }

    /// `doing` (e.g. "migrating") failed on a database that was reached.
    pub fn failed(&self, doing: &str, cause: &str) -> DatabaseError {
        DatabaseError(format!(
            "{doing} the database of {DATABASE_SETTING}, {} failed: {}",
            self.describe,
            self.scrub(cause)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_described_without_credentials() {
        let t = DatabaseTarget::of("postgres://app:s3cret@db.internal:6543/autoscaler?sslmode=require");
        assert_eq!(t.description(), "PostgreSQL at db.internal:6543");
        assert_eq!(t.tcp, Some(("db.internal".to_owned(), 6543)));
        assert_eq!(t.scrub("auth failed for s3cret"), "auth failed for ***");
        let message = t.refused("password authentication failed (s3cret)").to_string();
        assert_eq!(
            message,
            "cannot open the database of DATABASE_URL (--database-url), PostgreSQL at db.internal:6543: \
             password authentication failed (***)"
        );
        let t = DatabaseTarget::of("postgresql://app@[::1]/db");
        assert_eq!(t.tcp, Some(("::1".to_owned(), 5432)));
        let t = DatabaseTarget::of("postgres:///db?host=/run/postgresql");
        assert_eq!(t.tcp, None);
        assert_eq!(DatabaseTarget::of("sqlite://data/app.db?mode=rwc").description(), "SQLite file data/app.db");
    }
}
