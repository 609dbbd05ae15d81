//! Use cases: combine the repositories, the ad platform and the clock. No
//! tonic here; handlers call these and map their errors.
pub mod events;
pub mod executor;
pub mod rules;

use sea_orm::DatabaseConnection;

/// Everything a use case needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database (SQLite or PostgreSQL).
    pub db: DatabaseConnection,
    /// Wakes local `WatchActions` streams when action events are committed.
    pub events: events::ActionEvents,
    /// Approval and alert settings.
    pub engine: std::sync::Arc<crate::config::EngineConfig>,
}
