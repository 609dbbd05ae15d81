//! `reported_days`: an account's totals of one past day as reported at one
//! moment (the learning data of the reporting-lag curve).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reported_days")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: String,
    pub day: String,
    pub taken_at: DateTimeUtc,
    pub spend_minor: i64,
    pub revenue_minor: i64,
    pub conversions: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
