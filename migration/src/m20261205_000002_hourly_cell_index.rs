//! Learning groups an account's hourly rows by campaign, source, weekday and
//! hour: an index in that order lets the database aggregate rows as it reads
//! them (no sort of the whole range); it also serves the campaign ranges and
//! per-account lookups the previous index served.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CampaignHourlyStats {
    Table,
    AccountId,
    CampaignId,
    Source,
    DayOfWeek,
    Hour,
    LocalDay,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop().name("ix_hourly_account_campaign_day").table(CampaignHourlyStats::Table).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_hourly_account_campaign_cell")
                    .table(CampaignHourlyStats::Table)
                    .col(CampaignHourlyStats::AccountId)
                    .col(CampaignHourlyStats::CampaignId)
                    .col(CampaignHourlyStats::Source)
                    .col(CampaignHourlyStats::DayOfWeek)
                    .col(CampaignHourlyStats::Hour)
                    .col(CampaignHourlyStats::LocalDay)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop().name("ix_hourly_account_campaign_cell").table(CampaignHourlyStats::Table).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_hourly_account_campaign_day")
                    .table(CampaignHourlyStats::Table)
                    .col(CampaignHourlyStats::AccountId)
                    .col(CampaignHourlyStats::CampaignId)
                    .col(CampaignHourlyStats::LocalDay)
                    .to_owned(),
            )
            .await
    }
}
