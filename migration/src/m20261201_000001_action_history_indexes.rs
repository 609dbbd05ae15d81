//! Indexes for the action history, the pending-approval queue and the live
//! stream: every listing orders by id (newest or oldest first) after at most
//! a couple of equality filters, so each filter leads a composite index that
//! ends in the id and the database walks it in order, `LIMIT` rows at a time.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScalingActions {
    Table,
    Id,
    AccountId,
    CampaignId,
    ActionType,
    Status,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ActionEvents {
    Table,
    Seq,
    AccountId,
    CampaignId,
}

/// (name, columns) of the new indexes on `scaling_actions`.
fn action_indexes() -> Vec<(&'static str, Vec<ScalingActions>)> {
    use ScalingActions::*;
    vec![
        // One equality filter, then keyset by id.
        ("ix_actions_account_id", vec![AccountId, Id]),
        ("ix_actions_campaign_id", vec![CampaignId, Id]),
        ("ix_actions_type_id", vec![ActionType, Id]),
        // Also the pending queue (status = pending_approval, oldest first).
        ("ix_actions_status_id", vec![Status, Id]),
        // The operator's usual pairs: one account's pending / failed / paused.
        ("ix_actions_account_status_id", vec![AccountId, Status, Id]),
        ("ix_actions_account_type_id", vec![AccountId, ActionType, Id]),
        // Type within a time range (account, campaign and status already have
        // their `(x, created_at, id)` index from the first migration).
        ("ix_actions_type_created", vec![ActionType, CreatedAt, Id]),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, cols) in action_indexes() {
            let mut index = Index::create();
            index.name(name).table(ScalingActions::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        // A filtered watcher reads "events after seq N of this account /
        // campaign" without walking other accounts' events.
        for (name, col) in [
            ("ix_action_events_account_seq", ActionEvents::AccountId),
            ("ix_action_events_campaign_seq", ActionEvents::CampaignId),
        ] {
            manager
                .create_index(
                    Index::create().name(name).table(ActionEvents::Table).col(col).col(ActionEvents::Seq).to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["ix_action_events_account_seq", "ix_action_events_campaign_seq"] {
            manager.drop_index(Index::drop().name(name).table(ActionEvents::Table).to_owned()).await?;
        }
        for (name, _) in action_indexes() {
            manager.drop_index(Index::drop().name(name).table(ScalingActions::Table).to_owned()).await?;
        }
        Ok(())
    }
}
