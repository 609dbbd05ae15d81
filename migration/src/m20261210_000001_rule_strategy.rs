//! A strategy per rule: `strategy` (`thresholds`, the decision table, for
//! every existing rule; or `marginal_roas`) and the marginal-ROAS settings,
//! each with its documented default so existing rows stay valid.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScalingRules {
    Table,
    Strategy,
    MarginalMaxStepPercent,
    MarginalMinMovePercent,
    MarginalHalfLifeDays,
    MarginalCredibleLevel,
    MarginalElasticityLow,
    MarginalElasticityHigh,
    MarginalPauseEvidence,
}

fn doubles() -> [(ScalingRules, f64); 7] {
    [
        (ScalingRules::MarginalMaxStepPercent, 20.0),
        (ScalingRules::MarginalMinMovePercent, 3.0),
        (ScalingRules::MarginalHalfLifeDays, 7.0),
        (ScalingRules::MarginalCredibleLevel, 0.8),
        (ScalingRules::MarginalElasticityLow, 0.55),
        (ScalingRules::MarginalElasticityHigh, 0.85),
        (ScalingRules::MarginalPauseEvidence, 0.99),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column per ALTER TABLE.
        let mut strategy = ColumnDef::new(ScalingRules::Strategy);
        strategy.string().not_null().default("thresholds");
        manager.alter_table(Table::alter().table(ScalingRules::Table).add_column(&mut strategy).to_owned()).await?;
        for (column, default) in doubles() {
            let mut def = ColumnDef::new(column);
            def.double().not_null().default(default);
            manager.alter_table(Table::alter().table(ScalingRules::Table).add_column(&mut def).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (column, _) in doubles() {
            manager.alter_table(Table::alter().table(ScalingRules::Table).drop_column(column).to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(ScalingRules::Table).drop_column(ScalingRules::Strategy).to_owned())
            .await
    }
}
