//! Several replicas on one database: a scheduled cycle's slot is unique (so
//! each scheduled cycle runs on exactly one replica), and a lease row keeps
//! cycles from overlapping across replicas.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CycleRuns {
    Table,
    Slot,
}

#[derive(DeriveIden)]
enum Leases {
    Table,
    Name,
    Holder,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(CycleRuns::Table).add_column(string_len_null(CycleRuns::Slot, 64)).to_owned(),
            )
            .await?;
        // NULL slots (on-demand cycles) never collide; scheduled ones do.
        manager
            .create_index(
                Index::create()
                    .name("ux_cycle_runs_slot")
                    .table(CycleRuns::Table)
                    .col(CycleRuns::Slot)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Leases::Table)
                    .col(string_len(Leases::Name, 64).primary_key())
                    .col(string_len_null(Leases::Holder, 200))
                    .col(timestamp_with_time_zone_null(Leases::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Leases::Table)
                    .columns([Leases::Name])
                    .values_panic(["cycle".into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Leases::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("ux_cycle_runs_slot").table(CycleRuns::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(CycleRuns::Table).drop_column(CycleRuns::Slot).to_owned()).await?;
        Ok(())
    }
}
