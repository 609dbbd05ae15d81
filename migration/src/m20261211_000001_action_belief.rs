//! What the marginal-ROAS strategy believed when it decided: its ROAS
//! estimate, the credible interval and the share of revenue still unreported,
//! stored with each decision (all null for the threshold table).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScalingActions {
    Table,
    BeliefRoas,
    BeliefLow,
    BeliefHigh,
    BeliefCredibleLevel,
    BeliefUnreportedShare,
}

const COLUMNS: [ScalingActions; 5] = [
    ScalingActions::BeliefRoas,
    ScalingActions::BeliefLow,
    ScalingActions::BeliefHigh,
    ScalingActions::BeliefCredibleLevel,
    ScalingActions::BeliefUnreportedShare,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in COLUMNS {
            manager
                .alter_table(Table::alter().table(ScalingActions::Table).add_column(double_null(column)).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
            manager.alter_table(Table::alter().table(ScalingActions::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
