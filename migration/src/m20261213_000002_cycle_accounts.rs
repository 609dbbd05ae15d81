//! `cycle_accounts`: the accounts of one optimization cycle as claimable
//! units. Every replica of a deployment works on the same cycle: each claims
//! an account with a lease (a conditional update; `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL so replicas never wait on each other's claims), renews it while
//! it works, and marks the account done with its outcome. A replica that dies
//! mid-account lets its lease lapse and another takes the account over.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CycleAccounts {
    Table,
    Id,
    CycleId,
    AccountId,
    Holder,
    LeaseExpiresAt,
    DoneAt,
    Outcome,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CycleAccounts::Table)
                    .col(big_pk_auto(CycleAccounts::Id))
                    .col(big_integer(CycleAccounts::CycleId))
                    .col(string_len(CycleAccounts::AccountId, 64))
                    .col(string_len_null(CycleAccounts::Holder, 200))
                    .col(timestamp_with_time_zone_null(CycleAccounts::LeaseExpiresAt))
                    .col(timestamp_with_time_zone_null(CycleAccounts::DoneAt))
                    .col(text_null(CycleAccounts::Outcome))
                    .to_owned(),
            )
            .await?;
        // One row per account and cycle; claims scan a cycle's rows by id.
        manager
            .create_index(
                Index::create()
                    .name("ux_cycle_accounts_cycle_account")
                    .table(CycleAccounts::Table)
                    .col(CycleAccounts::CycleId)
                    .col(CycleAccounts::AccountId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Idle replicas look for open accounts (`done_at IS NULL`) every few
        // seconds; retention deletes finished ones by age.
        manager
            .create_index(
                Index::create()
                    .name("ix_cycle_accounts_done")
                    .table(CycleAccounts::Table)
                    .col(CycleAccounts::DoneAt)
                    .col(CycleAccounts::CycleId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CycleAccounts::Table).to_owned()).await
    }
}
