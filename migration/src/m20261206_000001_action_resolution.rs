//! Unconfirmed executions: `scaling_actions.resolution` says how an action
//! whose outcome was unknown (a write whose answer was lost, a failed
//! read-back, an execution interrupted by a crash) was settled by reading the
//! platform, or which ad sets took a partly applied change. Event snapshots
//! record it too, so `WatchActions` replays it as it was.
use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScalingActions {
    Table,
    Resolution,
}

#[derive(DeriveIden)]
enum ActionEvents {
    Table,
    ActionResolution,
}

const SQLITE_TRIGGER: &str = "CREATE TRIGGER tr_action_events_snapshot_v2 AFTER INSERT ON action_events \
     BEGIN \
       UPDATE action_events SET \
         (action_decided_by, action_decision_comment, action_error, action_decided_at, action_executed_at, action_updated_at, action_resolution) = \
         (SELECT a.decided_by, a.decision_comment, a.error, a.decided_at, a.executed_at, a.updated_at, a.resolution \
            FROM scaling_actions a WHERE a.id = NEW.action_id) \
       WHERE seq = NEW.seq; \
     END";

/// The trigger as it was before this migration (for `down`).
const SQLITE_TRIGGER_BEFORE: &str = "CREATE TRIGGER tr_action_events_snapshot AFTER INSERT ON action_events \
     BEGIN \
       UPDATE action_events SET \
         (action_decided_by, action_decision_comment, action_error, action_decided_at, action_executed_at, action_updated_at) = \
         (SELECT a.decided_by, a.decision_comment, a.error, a.decided_at, a.executed_at, a.updated_at \
            FROM scaling_actions a WHERE a.id = NEW.action_id) \
       WHERE seq = NEW.seq; \
     END";

const POSTGRES_FUNCTION: &str = "CREATE OR REPLACE FUNCTION action_events_snapshot() RETURNS trigger \
     LANGUAGE plpgsql AS $$ \
     DECLARE a scaling_actions%ROWTYPE; \
     BEGIN \
       SELECT * INTO a FROM scaling_actions WHERE id = NEW.action_id; \
       NEW.action_decided_by := a.decided_by; \
       NEW.action_decision_comment := a.decision_comment; \
       NEW.action_error := a.error; \
       NEW.action_decided_at := a.decided_at; \
       NEW.action_executed_at := a.executed_at; \
       NEW.action_updated_at := a.updated_at; \
       NEW.action_resolution := a.resolution; \
       RETURN NEW; \
     END $$";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ScalingActions::Table)
                    .add_column(text_null(ScalingActions::Resolution))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ActionEvents::Table)
                    .add_column(text_null(ActionEvents::ActionResolution))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        match manager.get_database_backend() {
            // The trigger calls the function by name: replacing it is enough.
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_FUNCTION).await?;
            }
            _ => {
                // A new name: SQLite refuses to create a trigger under the
                // name of one dropped in the same transaction.
                db.execute_unprepared("DROP TRIGGER IF EXISTS tr_action_events_snapshot").await?;
                db.execute_unprepared(SQLITE_TRIGGER).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The earlier trigger reads no `resolution`: restore it first.
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(&POSTGRES_FUNCTION.replace("NEW.action_resolution := a.resolution; ", ""))
                    .await?;
            }
            _ => {
                db.execute_unprepared("DROP TRIGGER IF EXISTS tr_action_events_snapshot_v2").await?;
                db.execute_unprepared(SQLITE_TRIGGER_BEFORE).await?;
            }
        }
        manager
            .alter_table(
                Table::alter().table(ActionEvents::Table).drop_column(ActionEvents::ActionResolution).to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(ScalingActions::Table).drop_column(ScalingActions::Resolution).to_owned())
            .await?;
        Ok(())
    }
}
