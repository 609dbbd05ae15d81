//! `reported_days`: an account's totals of one past day as Meta reported them
//! at one moment (the marginal-ROAS strategy re-reads the last week every
//! cycle). Successive readings of the same day show how its revenue keeps
//! arriving after the day ended: the reporting-lag curve is learned from them
//! and from the cycle's "today" snapshots. One row per account, day and
//! reading, so a few hundred rows per account a day.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReportedDays {
    Table,
    Id,
    AccountId,
    Day,
    TakenAt,
    SpendMinor,
    RevenueMinor,
    Conversions,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReportedDays::Table)
                    .col(big_pk_auto(ReportedDays::Id))
                    .col(string_len(ReportedDays::AccountId, 64))
                    .col(string_len(ReportedDays::Day, 10))
                    .col(timestamp_with_time_zone(ReportedDays::TakenAt))
                    .col(big_integer(ReportedDays::SpendMinor))
                    .col(big_integer(ReportedDays::RevenueMinor))
                    .col(big_integer(ReportedDays::Conversions))
                    .to_owned(),
            )
            .await?;
        // The learner reads an account's readings since a moment.
        manager
            .create_index(
                Index::create()
                    .name("ix_reported_days_account_taken")
                    .table(ReportedDays::Table)
                    .col(ReportedDays::AccountId)
                    .col(ReportedDays::TakenAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ReportedDays::Table).to_owned()).await
    }
}
