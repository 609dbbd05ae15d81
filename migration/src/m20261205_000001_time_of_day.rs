//! Time-of-day optimization: the hourly performance table (one row per
//! campaign, source and local hour, in the ad account's time zone), the
//! snapshot-ingestion watermark per account, and the statistics a learned
//! profile keeps beside its index (per-hour samples, days, reliability).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CampaignHourlyStats {
    Table,
    Id,
    AccountId,
    CampaignId,
    Source,
    HourStart,
    LocalDate,
    LocalDay,
    DayOfWeek,
    Hour,
    SpendMinor,
    RevenueMinor,
    Conversions,
    Impressions,
    Clicks,
    Revisions,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TimeIngestMarks {
    Table,
    AccountId,
    SnapshotsThrough,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OptimalHourProfiles {
    Table,
    HourlySamples,
    Days,
    Reliability,
    Consistency,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CampaignHourlyStats::Table)
                    .col(big_pk_auto(CampaignHourlyStats::Id))
                    .col(string_len(CampaignHourlyStats::AccountId, 64))
                    .col(string_len(CampaignHourlyStats::CampaignId, 64))
                    // "snapshot" (increments of the cycle's cumulative readings)
                    // or "meta" (Meta's hourly breakdown).
                    .col(string_len(CampaignHourlyStats::Source, 16))
                    // The UTC instant the local hour starts: unique even on the
                    // 25-hour day, whose 01:00 hour happens twice.
                    .col(timestamp_with_time_zone(CampaignHourlyStats::HourStart))
                    .col(string_len(CampaignHourlyStats::LocalDate, 10))
                    // Days since 1970-01-01 of the local date, and its weekday
                    // (0 = Sunday): what learning groups and splits by.
                    .col(integer(CampaignHourlyStats::LocalDay))
                    .col(small_integer(CampaignHourlyStats::DayOfWeek))
                    .col(small_integer(CampaignHourlyStats::Hour))
                    .col(big_integer(CampaignHourlyStats::SpendMinor))
                    .col(big_integer(CampaignHourlyStats::RevenueMinor))
                    .col(big_integer(CampaignHourlyStats::Conversions))
                    .col(big_integer(CampaignHourlyStats::Impressions))
                    .col(big_integer(CampaignHourlyStats::Clicks))
                    // How often the hour's figures were revised: a cumulative
                    // reading that went down, or a rerun that changed them.
                    .col(integer(CampaignHourlyStats::Revisions))
                    .col(timestamp_with_time_zone(CampaignHourlyStats::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_hourly_campaign_source_hour")
                    .table(CampaignHourlyStats::Table)
                    .col(CampaignHourlyStats::CampaignId)
                    .col(CampaignHourlyStats::Source)
                    .col(CampaignHourlyStats::HourStart)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Learning reads an account's campaigns in id ranges over recent days.
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
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TimeIngestMarks::Table)
                    .col(string_len(TimeIngestMarks::AccountId, 64).primary_key())
                    .col(timestamp_with_time_zone(TimeIngestMarks::SnapshotsThrough))
                    .col(timestamp_with_time_zone(TimeIngestMarks::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // One column per statement: SQLite alters one column at a time.
        for column in [
            text_null(OptimalHourProfiles::HourlySamples),
            double_null(OptimalHourProfiles::Days),
            double_null(OptimalHourProfiles::Reliability),
            double_null(OptimalHourProfiles::Consistency),
        ] {
            let mut column = column;
            manager
                .alter_table(Table::alter().table(OptimalHourProfiles::Table).add_column(&mut column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            OptimalHourProfiles::HourlySamples,
            OptimalHourProfiles::Days,
            OptimalHourProfiles::Reliability,
            OptimalHourProfiles::Consistency,
        ] {
            manager
                .alter_table(Table::alter().table(OptimalHourProfiles::Table).drop_column(column).to_owned())
                .await?;
        }
        manager.drop_table(Table::drop().table(TimeIngestMarks::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(CampaignHourlyStats::Table).to_owned()).await?;
        Ok(())
    }
}
