//! `action_response_rollups`: per UTC day and account, how many executed
//! actions took how long from decision to confirmed execution, counted in
//! buckets 1/32 of their lower bound wide (with each bucket's exact sum), so
//! the dashboard's median response time reads a few hundred rows instead of
//! sorting every executed action of the period. Rolled up together with
//! `action_rollups`: the days already listed in `action_rollup_days` are
//! forgotten here and rolled up again, with their response times, by the
//! next cycles (the dashboard reads them raw meanwhile, exactly as before).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ActionResponseRollups {
    Table,
    Day,
    AccountId,
    BucketMs,
    Responses,
    ResponseMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ActionResponseRollups::Table)
                    // Days since 1970-01-01 (UTC), as in `action_rollups`.
                    .col(big_integer(ActionResponseRollups::Day))
                    .col(string_len(ActionResponseRollups::AccountId, 64))
                    // Lower bound of the bucket, milliseconds.
                    .col(big_integer(ActionResponseRollups::BucketMs))
                    .col(big_integer(ActionResponseRollups::Responses))
                    // Sum of the bucket's response times, milliseconds.
                    .col(big_integer(ActionResponseRollups::ResponseMs))
                    .primary_key(
                        Index::create()
                            .col(ActionResponseRollups::Day)
                            .col(ActionResponseRollups::AccountId)
                            .col(ActionResponseRollups::BucketMs),
                    )
                    .to_owned(),
            )
            .await?;
        // A sealed day must have both rollups: start over, day by day.
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM action_rollup_days").await?;
        db.execute_unprepared("DELETE FROM action_rollups").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The remaining rollups stay exact without the response times.
        manager.drop_table(Table::drop().table(ActionResponseRollups::Table).to_owned()).await
    }
}
