//! The initial schema: rules, the action audit trail and its event log,
//! performance snapshots, learned hour profiles and cycle runs.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScalingRules {
    Table,
    Id,
    AccountId,
    CampaignId,
    Name,
    Enabled,
    RoasScaleUpAggressive,
    CtrScaleUpAggressivePercent,
    RoasScaleUp,
    RoasScaleDown,
    RoasPause,
    MultiplierAggressiveUp,
    MultiplierUp,
    MultiplierDown,
    MinImpressions,
    Currency,
    MinDailyBudgetMinor,
    MaxDailyBudgetMinor,
    MaxDailySpendLimitMinor,
    RequireApprovalThresholdMinor,
    AutoApproveUpToMinor,
    CooldownSeconds,
    MetricsWindow,
    ApplyHourlySchedule,
    CreatedBy,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ScalingActions {
    Table,
    Id,
    AccountId,
    CampaignId,
    CampaignName,
    RuleId,
    CycleId,
    ActionType,
    Status,
    Currency,
    BudgetLevel,
    OldBudgetMinor,
    NewBudgetMinor,
    SpendMinor,
    RevenueMinor,
    Impressions,
    Clicks,
    Conversions,
    Roas,
    CtrPercent,
    MetricsWindow,
    WindowStart,
    WindowEnd,
    Reason,
    RequiresApproval,
    DecidedBy,
    DecisionComment,
    Error,
    ClaimToken,
    CreatedAt,
    DecidedAt,
    ExecutedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ActionEvents {
    Table,
    Seq,
    ActionId,
    Kind,
    Status,
    AccountId,
    CampaignId,
    ActionType,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PerformanceSnapshots {
    Table,
    Id,
    AccountId,
    CampaignId,
    CycleId,
    TakenAt,
    Currency,
    MetricsWindow,
    WindowStart,
    WindowEnd,
    SpendMinor,
    RevenueMinor,
    Impressions,
    Clicks,
    Conversions,
    Roas,
    CtrPercent,
    DailyBudgetMinor,
    Status,
}

#[derive(DeriveIden)]
enum OptimalHourProfiles {
    Table,
    Id,
    AccountId,
    CampaignId,
    Metric,
    HourlyIndex,
    DayOfWeekIndex,
    PeakHours,
    ValleyHours,
    Confidence,
    Samples,
    LearnedAt,
}

#[derive(DeriveIden)]
enum CycleRuns {
    Table,
    Id,
    Mode,
    Status,
    Replica,
    StartedAt,
    FinishedAt,
    Summary,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ScalingRules::Table)
                    .col(big_pk_auto(ScalingRules::Id))
                    .col(string_len(ScalingRules::AccountId, 64))
                    // '' for the account-wide rule, so the unique index covers it.
                    .col(string_len(ScalingRules::CampaignId, 64))
                    .col(string_len(ScalingRules::Name, 200))
                    .col(boolean(ScalingRules::Enabled))
                    .col(double(ScalingRules::RoasScaleUpAggressive))
                    .col(double(ScalingRules::CtrScaleUpAggressivePercent))
                    .col(double(ScalingRules::RoasScaleUp))
                    .col(double(ScalingRules::RoasScaleDown))
                    .col(double(ScalingRules::RoasPause))
                    .col(double(ScalingRules::MultiplierAggressiveUp))
                    .col(double(ScalingRules::MultiplierUp))
                    .col(double(ScalingRules::MultiplierDown))
                    .col(big_integer(ScalingRules::MinImpressions))
                    .col(string_len(ScalingRules::Currency, 3))
                    .col(big_integer(ScalingRules::MinDailyBudgetMinor))
                    .col(big_integer(ScalingRules::MaxDailyBudgetMinor))
                    .col(big_integer(ScalingRules::MaxDailySpendLimitMinor))
                    .col(big_integer(ScalingRules::RequireApprovalThresholdMinor))
                    .col(big_integer(ScalingRules::AutoApproveUpToMinor))
                    .col(big_integer(ScalingRules::CooldownSeconds))
                    .col(string_len(ScalingRules::MetricsWindow, 32))
                    .col(boolean(ScalingRules::ApplyHourlySchedule))
                    .col(string_len(ScalingRules::CreatedBy, 200))
                    .col(string_len(ScalingRules::UpdatedBy, 200))
                    .col(timestamp_with_time_zone(ScalingRules::CreatedAt))
                    .col(timestamp_with_time_zone(ScalingRules::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_scaling_rules_scope")
                    .table(ScalingRules::Table)
                    .col(ScalingRules::AccountId)
                    .col(ScalingRules::CampaignId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ScalingActions::Table)
                    .col(big_pk_auto(ScalingActions::Id))
                    .col(string_len(ScalingActions::AccountId, 64))
                    .col(string_len(ScalingActions::CampaignId, 64))
                    .col(string(ScalingActions::CampaignName))
                    // No foreign key: deleting a rule must not touch the audit trail.
                    .col(big_integer_null(ScalingActions::RuleId))
                    .col(big_integer_null(ScalingActions::CycleId))
                    .col(string_len(ScalingActions::ActionType, 32))
                    .col(string_len(ScalingActions::Status, 32))
                    .col(string_len(ScalingActions::Currency, 3))
                    .col(string_len(ScalingActions::BudgetLevel, 16))
                    .col(big_integer(ScalingActions::OldBudgetMinor))
                    .col(big_integer(ScalingActions::NewBudgetMinor))
                    .col(big_integer(ScalingActions::SpendMinor))
                    .col(big_integer(ScalingActions::RevenueMinor))
                    .col(big_integer(ScalingActions::Impressions))
                    .col(big_integer(ScalingActions::Clicks))
                    .col(big_integer(ScalingActions::Conversions))
                    .col(double(ScalingActions::Roas))
                    .col(double(ScalingActions::CtrPercent))
                    .col(string_len(ScalingActions::MetricsWindow, 32))
                    .col(string_len(ScalingActions::WindowStart, 10))
                    .col(string_len(ScalingActions::WindowEnd, 10))
                    .col(text(ScalingActions::Reason))
                    .col(boolean(ScalingActions::RequiresApproval))
                    .col(string_len_null(ScalingActions::DecidedBy, 200))
                    .col(text_null(ScalingActions::DecisionComment))
                    .col(text_null(ScalingActions::Error))
                    .col(string_len_null(ScalingActions::ClaimToken, 64))
                    .col(timestamp_with_time_zone(ScalingActions::CreatedAt))
                    .col(timestamp_with_time_zone_null(ScalingActions::DecidedAt))
                    .col(timestamp_with_time_zone_null(ScalingActions::ExecutedAt))
                    .col(timestamp_with_time_zone(ScalingActions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            // History: newest first, overall and per account / campaign.
            ("ix_actions_created", vec![ScalingActions::CreatedAt, ScalingActions::Id]),
            (
                "ix_actions_account_created",
                vec![ScalingActions::AccountId, ScalingActions::CreatedAt, ScalingActions::Id],
            ),
            (
                "ix_actions_campaign_created",
                vec![ScalingActions::CampaignId, ScalingActions::CreatedAt, ScalingActions::Id],
            ),
            // Pending approvals (oldest first), the executor's queue and expiry.
            ("ix_actions_status_created", vec![ScalingActions::Status, ScalingActions::CreatedAt, ScalingActions::Id]),
            // Cooldown: the last executed change of a campaign.
            ("ix_actions_campaign_executed", vec![ScalingActions::CampaignId, ScalingActions::ExecutedAt]),
            ("ix_actions_claim", vec![ScalingActions::ClaimToken]),
        ] {
            let mut index = Index::create();
            index.name(name).table(ScalingActions::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ActionEvents::Table)
                    .col(big_pk_auto(ActionEvents::Seq))
                    .col(big_integer(ActionEvents::ActionId))
                    .col(string_len(ActionEvents::Kind, 32))
                    .col(string_len(ActionEvents::Status, 32))
                    .col(string_len(ActionEvents::AccountId, 64))
                    .col(string_len(ActionEvents::CampaignId, 64))
                    .col(string_len(ActionEvents::ActionType, 32))
                    .col(timestamp_with_time_zone(ActionEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_action_events_created")
                    .table(ActionEvents::Table)
                    .col(ActionEvents::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_action_events_action")
                    .table(ActionEvents::Table)
                    .col(ActionEvents::ActionId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PerformanceSnapshots::Table)
                    .col(big_pk_auto(PerformanceSnapshots::Id))
                    .col(string_len(PerformanceSnapshots::AccountId, 64))
                    .col(string_len(PerformanceSnapshots::CampaignId, 64))
                    .col(big_integer_null(PerformanceSnapshots::CycleId))
                    .col(timestamp_with_time_zone(PerformanceSnapshots::TakenAt))
                    .col(string_len(PerformanceSnapshots::Currency, 3))
                    .col(string_len(PerformanceSnapshots::MetricsWindow, 32))
                    .col(string_len(PerformanceSnapshots::WindowStart, 10))
                    .col(string_len(PerformanceSnapshots::WindowEnd, 10))
                    .col(big_integer(PerformanceSnapshots::SpendMinor))
                    .col(big_integer(PerformanceSnapshots::RevenueMinor))
                    .col(big_integer(PerformanceSnapshots::Impressions))
                    .col(big_integer(PerformanceSnapshots::Clicks))
                    .col(big_integer(PerformanceSnapshots::Conversions))
                    .col(double(PerformanceSnapshots::Roas))
                    .col(double(PerformanceSnapshots::CtrPercent))
                    .col(big_integer(PerformanceSnapshots::DailyBudgetMinor))
                    .col(string_len(PerformanceSnapshots::Status, 32))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_snapshots_campaign_taken")
                    .table(PerformanceSnapshots::Table)
                    .col(PerformanceSnapshots::CampaignId)
                    .col(PerformanceSnapshots::TakenAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_snapshots_account_taken")
                    .table(PerformanceSnapshots::Table)
                    .col(PerformanceSnapshots::AccountId)
                    .col(PerformanceSnapshots::TakenAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OptimalHourProfiles::Table)
                    .col(big_pk_auto(OptimalHourProfiles::Id))
                    .col(string_len(OptimalHourProfiles::AccountId, 64))
                    .col(string_len(OptimalHourProfiles::CampaignId, 64))
                    .col(string_len(OptimalHourProfiles::Metric, 32))
                    // JSON arrays: 24 and 7 x 24 doubles, and hour lists.
                    .col(text(OptimalHourProfiles::HourlyIndex))
                    .col(text(OptimalHourProfiles::DayOfWeekIndex))
                    .col(text(OptimalHourProfiles::PeakHours))
                    .col(text(OptimalHourProfiles::ValleyHours))
                    .col(double(OptimalHourProfiles::Confidence))
                    .col(big_integer(OptimalHourProfiles::Samples))
                    .col(timestamp_with_time_zone(OptimalHourProfiles::LearnedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_profiles_campaign")
                    .table(OptimalHourProfiles::Table)
                    .col(OptimalHourProfiles::AccountId)
                    .col(OptimalHourProfiles::CampaignId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CycleRuns::Table)
                    .col(big_pk_auto(CycleRuns::Id))
                    .col(string_len(CycleRuns::Mode, 16))
                    .col(string_len(CycleRuns::Status, 16))
                    .col(string_len(CycleRuns::Replica, 200))
                    .col(timestamp_with_time_zone(CycleRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(CycleRuns::FinishedAt))
                    .col(text_null(CycleRuns::Summary))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CycleRuns::Table.into_iden(),
            OptimalHourProfiles::Table.into_iden(),
            PerformanceSnapshots::Table.into_iden(),
            ActionEvents::Table.into_iden(),
            ScalingActions::Table.into_iden(),
            ScalingRules::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
