//! `action_rollups`: the dashboard's sums per UTC day, account, currency,
//! action type and status, so a 30-day dashboard adds up a few hundred rows
//! instead of reading hundreds of thousands of actions. `action_rollup_days`
//! lists the days whose rollups are complete; a day without a row there is
//! read from `scaling_actions` as before. A narrow partial index serves the
//! median response time (executed actions by creation time).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ActionRollups {
    Table,
    Day,
    AccountId,
    Currency,
    ActionType,
    Status,
    Actions,
    WithoutApproval,
    IncreaseMinor,
    DecreaseMinor,
    RoasSum,
    RoasSamples,
    RevenueMinor,
    LowRoasSpendMinor,
}

#[derive(DeriveIden)]
enum ActionRollupDays {
    Table,
    Day,
    RolledAt,
}

/// The median reads `executed_at - created_at` of executed actions created in
/// the period; with this index it never touches the table's rows.
const EXECUTED_INDEX: &str = "CREATE INDEX ix_actions_executed_created ON scaling_actions \
     (created_at, account_id, executed_at) WHERE status = 'executed'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ActionRollups::Table)
                    // Days since 1970-01-01 (UTC): the same integer on every
                    // backend, no date arithmetic in SQL.
                    .col(big_integer(ActionRollups::Day))
                    .col(string_len(ActionRollups::AccountId, 64))
                    .col(string_len(ActionRollups::Currency, 3))
                    .col(string_len(ActionRollups::ActionType, 32))
                    .col(string_len(ActionRollups::Status, 32))
                    .col(big_integer(ActionRollups::Actions))
                    .col(big_integer(ActionRollups::WithoutApproval))
                    .col(big_integer(ActionRollups::IncreaseMinor))
                    .col(big_integer(ActionRollups::DecreaseMinor))
                    .col(double(ActionRollups::RoasSum))
                    .col(big_integer(ActionRollups::RoasSamples))
                    .col(big_integer(ActionRollups::RevenueMinor))
                    .col(big_integer(ActionRollups::LowRoasSpendMinor))
                    .primary_key(
                        Index::create()
                            .col(ActionRollups::Day)
                            .col(ActionRollups::AccountId)
                            .col(ActionRollups::Currency)
                            .col(ActionRollups::ActionType)
                            .col(ActionRollups::Status),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ActionRollupDays::Table)
                    .col(big_integer(ActionRollupDays::Day).primary_key())
                    .col(timestamp_with_time_zone(ActionRollupDays::RolledAt))
                    .to_owned(),
            )
            .await?;
        manager.get_connection().execute_unprepared(EXECUTED_INDEX).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX ix_actions_executed_created").await?;
        manager.drop_table(Table::drop().table(ActionRollupDays::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ActionRollups::Table).to_owned()).await
    }
}
