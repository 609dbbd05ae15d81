//! `performance_snapshots`: the metrics read for each evaluated campaign.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "performance_snapshots")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: String,
    pub campaign_id: String,
    pub cycle_id: Option<i64>,
    pub taken_at: DateTimeUtc,
    pub currency: String,
    pub metrics_window: String,
    pub window_start: String,
    pub window_end: String,
    pub spend_minor: i64,
    pub revenue_minor: i64,
    pub impressions: i64,
    pub clicks: i64,
    pub conversions: i64,
    pub roas: f64,
    pub ctr_percent: f64,
    pub daily_budget_minor: i64,
    pub status: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
