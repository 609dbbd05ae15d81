//! `campaign_hourly_stats`: one campaign's figures for one local hour of its
//! ad account's day, from one source (the cycle's snapshots or Meta).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaign_hourly_stats")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: String,
    pub campaign_id: String,
    /// `snapshot` or `meta`.
    pub source: String,
    /// UTC instant the local hour starts.
    pub hour_start: DateTimeUtc,
    /// Local date, `YYYY-MM-DD`.
    pub local_date: String,
    /// Days since 1970-01-01 of the local date.
    pub local_day: i32,
    /// 0 = Sunday.
    pub day_of_week: i16,
    /// Local hour of day, 0-23.
    pub hour: i16,
    pub spend_minor: i64,
    pub revenue_minor: i64,
    pub conversions: i64,
    pub impressions: i64,
    pub clicks: i64,
    /// Times the figures were revised.
    pub revisions: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
