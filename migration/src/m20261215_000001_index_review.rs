//! Index review: the indexes no query of the service uses are dropped, so
//! every action, event and snapshot written updates fewer of them. Which
//! query uses which index, on SQLite and PostgreSQL, is in `docs/indexes.md`.
//!
//! - `ix_actions_claim`: no query looks an action up by its claim token (a
//!   claim is checked together with the action's id, by primary key).
//! - `ix_actions_campaign_executed`: the cooldown asks per account, and reads
//!   `ix_actions_account_type_id`.
//! - `ix_actions_campaign_created`: a campaign's history within a time range
//!   pages by id on `ix_actions_campaign_id`, as without a range (a campaign
//!   has one decision per cycle: a page is a few dozen index entries away).
//! - `ix_snapshots_campaign_taken`: every read of the snapshots is per account.
//!
//! None of them is unique: the audit trail's guarantees (a status only moves
//! by a conditional update on the primary key, events keep their sequence)
//! do not depend on them. `down` creates them again.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScalingActions {
    Table,
    Id,
    CampaignId,
    ClaimToken,
    CreatedAt,
    ExecutedAt,
}

#[derive(DeriveIden)]
enum PerformanceSnapshots {
    Table,
    CampaignId,
    TakenAt,
}

/// (name, columns) of the dropped indexes on `scaling_actions`, as they were.
fn dropped() -> Vec<(&'static str, Vec<ScalingActions>)> {
    use ScalingActions::*;
    vec![
        ("ix_actions_claim", vec![ClaimToken]),
        ("ix_actions_campaign_executed", vec![CampaignId, ExecutedAt]),
        ("ix_actions_campaign_created", vec![CampaignId, CreatedAt, Id]),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in dropped() {
            manager.drop_index(Index::drop().name(name).table(ScalingActions::Table).to_owned()).await?;
        }
        manager
            .drop_index(Index::drop().name("ix_snapshots_campaign_taken").table(PerformanceSnapshots::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, cols) in dropped() {
            let mut index = Index::create();
            index.name(name).table(ScalingActions::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_snapshots_campaign_taken")
                    .table(PerformanceSnapshots::Table)
                    .col(PerformanceSnapshots::CampaignId)
                    .col(PerformanceSnapshots::TakenAt)
                    .to_owned(),
            )
            .await
    }
}
