//! Event snapshots: each `action_events` row also records the action's
//! mutable fields (decision, error, times) as they were right after the event,
//! so `WatchActions` can replay an action as it was then, not as it is now.
//!
//! The database fills them in a trigger, inside the transaction that writes
//! the event and right after the transition it records: every writer of the
//! log (today's repository and any later one) gets exact snapshots without
//! having to remember to copy them. The immutable part of an action (budgets,
//! metrics, reason) is read from `scaling_actions`; it never changes.
use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ActionEvents {
    Table,
    ActionDecidedBy,
    ActionDecisionComment,
    ActionError,
    ActionDecidedAt,
    ActionExecutedAt,
    ActionUpdatedAt,
}

/// Copies the action's mutable fields into an event row of the same
/// transaction (and, once, into the rows written before this migration).
const SNAPSHOT_COLUMNS: &str = "(action_decided_by, action_decision_comment, action_error, action_decided_at, action_executed_at, action_updated_at)";
const SNAPSHOT_SOURCE: &str = "(SELECT a.decided_by, a.decision_comment, a.error, a.decided_at, a.executed_at, a.updated_at \
     FROM scaling_actions a WHERE a.id = action_events.action_id)";

const SQLITE_TRIGGER: &str = "CREATE TRIGGER tr_action_events_snapshot AFTER INSERT ON action_events \
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
       RETURN NEW; \
     END $$";

const POSTGRES_TRIGGER: &str = "CREATE TRIGGER tr_action_events_snapshot BEFORE INSERT ON action_events \
     FOR EACH ROW EXECUTE FUNCTION action_events_snapshot()";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [
            string_len_null(ActionEvents::ActionDecidedBy, 200),
            text_null(ActionEvents::ActionDecisionComment),
            text_null(ActionEvents::ActionError),
            timestamp_with_time_zone_null(ActionEvents::ActionDecidedAt),
            timestamp_with_time_zone_null(ActionEvents::ActionExecutedAt),
            timestamp_with_time_zone_null(ActionEvents::ActionUpdatedAt),
        ] {
            let mut column = column;
            manager.alter_table(Table::alter().table(ActionEvents::Table).add_column(&mut column).to_owned()).await?;
        }
        let db = manager.get_connection();
        // Events recorded before this migration get the action's current
        // fields: the best that is known about them.
        db.execute_unprepared(&format!("UPDATE action_events SET {SNAPSHOT_COLUMNS} = {SNAPSHOT_SOURCE}")).await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_FUNCTION).await?;
                db.execute_unprepared(POSTGRES_TRIGGER).await?;
            }
            _ => {
                db.execute_unprepared(SQLITE_TRIGGER).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("DROP TRIGGER IF EXISTS tr_action_events_snapshot ON action_events").await?;
                db.execute_unprepared("DROP FUNCTION IF EXISTS action_events_snapshot()").await?;
            }
            _ => {
                db.execute_unprepared("DROP TRIGGER IF EXISTS tr_action_events_snapshot").await?;
            }
        }
        for column in [
            ActionEvents::ActionDecidedBy,
            ActionEvents::ActionDecisionComment,
            ActionEvents::ActionError,
            ActionEvents::ActionDecidedAt,
            ActionEvents::ActionExecutedAt,
            ActionEvents::ActionUpdatedAt,
        ] {
            manager.alter_table(Table::alter().table(ActionEvents::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
