//! `cycle_runs`: one row per optimization cycle, with its outcome.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cycle_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub mode: String,
    pub status: String,
    pub replica: String,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub summary: Option<String>,
    /// The scheduled slot (e.g. `optimize@2026-11-25T14:00Z`); unique, so one
    /// replica runs each scheduled cycle. `None` for on-demand cycles.
    pub slot: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
