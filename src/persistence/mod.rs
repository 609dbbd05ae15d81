//! Persistence: SeaORM entities and repository functions that return domain
//! types. The only layer that speaks SQL; works on SQLite and PostgreSQL alike.
pub mod actions;
mod bulk;
pub mod cycle_accounts;
pub mod cycles;
pub mod dashboard;
pub mod decisions;
pub mod entity;
pub mod history;
pub mod hourly;
pub mod lag_readings;
pub mod leases;
pub mod profiles;
pub mod replay;
pub mod retention;
pub mod rollups;
pub mod rules;
pub mod snapshots;
pub mod target;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

/// Default database: a SQLite file in the working directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://autoscaler.db?mode=rwc";

/// [`connect`] for a server or a one-off cycle: reaches the database with
/// one connection first, so a database that cannot be reached or opened
/// fails within seconds, and every failure names the setting and the host
/// (never the password).
pub async fn open(url: &str) -> Result<DatabaseConnection, target::DatabaseError> {
    let target = target::DatabaseTarget::of(url);
    target.reach(url).await?.close().await.ok();
    connect(url).await.map_err(|e| target.failed("opening", &e.to_string()))
}

/// Opens the database and brings its schema up to date.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        // SQLite serialises writers; a small pool with WAL keeps readers free
        // while one writer works, and the busy timeout queues the rest. Set
        // on every connection the pool opens, not just the first.
        options.max_connections(4).min_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
        });
    } else {
        options.max_connections(16);
    }
    if url.starts_with("sqlite:") {
        // Migrate on a connection of its own, closed before the pool opens: a
        // pooled connection that last saw the schema halfway through the
        // migrations would describe later statements by that old schema
        // (sqlx keeps a statement's column list from when it was prepared),
        // and a `SELECT a.*` would then return more columns than described.
        let mut once = ConnectOptions::new(url.to_owned());
        once.sqlx_logging(false).max_connections(1).min_connections(1).connect_timeout(Duration::from_secs(10));
        let migrator = Database::connect(once).await?;
        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA busy_timeout = 10000"] {
            migrator.execute_unprepared(pragma).await?;
        }
        let migrated = Migrator::up(&migrator, None).await;
        migrator.close().await.ok();
        migrated?;
    }
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        migrate(&db, url).await?;
    }
    Ok(db)
}

/// Applies pending migrations on PostgreSQL, where several replicas may start at
/// once: a session advisory lock, held on a connection of its own, lets one
/// migrate while the others wait (and then find nothing to do).
async fn migrate(db: &DatabaseConnection, url: &str) -> Result<(), DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).min_connections(1).sqlx_logging(false);
    let lock = Database::connect(options).await?;
    lock.execute_unprepared("SELECT pg_advisory_lock(4242000)").await?;
    let result = Migrator::up(db, None).await;
    let unlocked = lock.execute_unprepared("SELECT pg_advisory_unlock(4242000)").await;
    lock.close().await.ok();
    result.and(unlocked.map(|_| ()))
}

/// Whether an error is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// The stored columns of a campaign's figures, in the order both the
/// actions and the snapshots tables keep them: spend, revenue, impressions,
/// clicks, conversions, ROAS, CTR.
fn figure_values(f: &crate::domain::performance::Performance) -> [sea_orm::Value; 7] {
    use sea_orm::Value;
    [
        Value::from(f.spend_minor),
        Value::from(f.revenue_minor),
        Value::from(f.impressions),
        Value::from(f.clicks),
        Value::from(f.conversions),
        Value::from(finite(f.roas())),
        Value::from(finite(f.ctr_percent)),
    ]
}

/// Stored figures must be finite on every backend.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The figures behind an action or a snapshot, read from its stored row: both
/// tables keep them in columns of the same names (the stored `roas` is
/// revenue / spend of the same figures, so it is not read back).
macro_rules! stored_metrics {
    ($row:ident) => {
        crate::domain::action::ActionMetrics {
            figures: crate::domain::performance::Performance {
                spend_minor: $row.spend_minor,
                revenue_minor: $row.revenue_minor,
                impressions: $row.impressions,
                clicks: $row.clicks,
                conversions: $row.conversions,
                ctr_percent: $row.ctr_percent,
            },
            window: $row.metrics_window,
            window_start: $row.window_start,
            window_end: $row.window_end,
        }
    };
}
pub(crate) use stored_metrics;
