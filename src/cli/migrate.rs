//! `autoscaler migrate`: creates or upgrades the database schema, says which
//! migrations it applied, and fails within seconds, naming the setting and
//! the host (never the password), when the database cannot be reached.
use std::path::PathBuf;

use migration::{Migrator, MigratorTrait};

use crate::config::DatabaseArgs;
use crate::persistence::target::DatabaseTarget;

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
    let target = DatabaseTarget::of(url);
    let probe = target.reach(url).await?;
    let migrating = |e: sea_orm::DbErr| target.failed("migrating", &e.to_string());
    let before = Migrator::get_pending_migrations(&probe).await.map_err(migrating)?;
    let before: Vec<String> = before.iter().map(|m| m.name().to_owned()).collect();
    let total = Migrator::migrations().len();
    probe.close().await.ok();
    // The server's own path: SQLite pragmas, PostgreSQL's advisory lock
    // against replicas migrating at once.
    let db = crate::persistence::connect(url).await.map_err(migrating)?;
    let after = Migrator::get_pending_migrations(&db).await.map_err(migrating)?;
    let after: Vec<String> = after.iter().map(|m| m.name().to_owned()).collect();
    db.close().await.ok();
    let applied: Vec<String> = before.iter().filter(|name| !after.contains(name)).cloned().collect();
    Ok(MigrateReport { database: target.description().to_owned(), applied, already_applied: total - before.len() })
}
