//! The event-snapshot trigger fires only for an event written without its
//! snapshot. The service's own writers copy the action's fields into the
//! event in the same `INSERT ... SELECT` that writes it (no second write per
//! row); the trigger stays as the safety net for any other writer, which
//! still gets exact snapshots without having to remember them.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_TRIGGER: &str = "CREATE TRIGGER tr_action_events_snapshot_v3 AFTER INSERT ON action_events \
     WHEN NEW.action_updated_at IS NULL \
     BEGIN \
       UPDATE action_events SET \
         (action_decided_by, action_decision_comment, action_error, action_decided_at, action_executed_at, action_updated_at, action_resolution) = \
         (SELECT a.decided_by, a.decision_comment, a.error, a.decided_at, a.executed_at, a.updated_at, a.resolution \
            FROM scaling_actions a WHERE a.id = NEW.action_id) \
       WHERE seq = NEW.seq; \
     END";

/// The trigger as it was before this migration (for `down`).
const SQLITE_TRIGGER_BEFORE: &str = "CREATE TRIGGER tr_action_events_snapshot_v2 AFTER INSERT ON action_events \
     BEGIN \
       UPDATE action_events SET \
         (action_decided_by, action_decision_comment, action_error, action_decided_at, action_executed_at, action_updated_at, action_resolution) = \
         (SELECT a.decided_by, a.decision_comment, a.error, a.decided_at, a.executed_at, a.updated_at, a.resolution \
            FROM scaling_actions a WHERE a.id = NEW.action_id) \
       WHERE seq = NEW.seq; \
     END";

const POSTGRES_TRIGGER: &str = "CREATE TRIGGER tr_action_events_snapshot BEFORE INSERT ON action_events \
     FOR EACH ROW WHEN (NEW.action_updated_at IS NULL) EXECUTE FUNCTION action_events_snapshot()";

const POSTGRES_TRIGGER_BEFORE: &str = "CREATE TRIGGER tr_action_events_snapshot BEFORE INSERT ON action_events \
     FOR EACH ROW EXECUTE FUNCTION action_events_snapshot()";

async fn replace_trigger(manager: &SchemaManager<'_>, sqlite: &str, postgres: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    match manager.get_database_backend() {
        DbBackend::Postgres => {
            db.execute_unprepared("DROP TRIGGER IF EXISTS tr_action_events_snapshot ON action_events").await?;
            db.execute_unprepared(postgres).await?;
        }
        _ => {
            for name in ["tr_action_events_snapshot_v2", "tr_action_events_snapshot_v3"] {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name}")).await?;
            }
            db.execute_unprepared(sqlite).await?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_trigger(manager, SQLITE_TRIGGER, POSTGRES_TRIGGER).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_trigger(manager, SQLITE_TRIGGER_BEFORE, POSTGRES_TRIGGER_BEFORE).await
    }
}
