//! `optimal_hour_profiles`: the learned hour-of-day profile of each campaign.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "optimal_hour_profiles")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: String,
    pub campaign_id: String,
    pub metric: String,
    /// JSON array of 24 doubles.
    pub hourly_index: String,
    /// JSON array of 7 x 24 doubles, row-major by day (0 = Sunday).
    pub day_of_week_index: String,
    /// JSON array of hours.
    pub peak_hours: String,
    /// JSON array of hours.
    pub valley_hours: String,
    pub confidence: f64,
    pub samples: i64,
    pub learned_at: DateTimeUtc,
    /// JSON array of 24 sample counts (hourly rows per hour of day).
    pub hourly_samples: Option<String>,
    /// Days of data behind the profile (hourly samples / 24).
    pub days: Option<f64>,
    /// Share of the hour-to-hour variation that is not sampling noise (I²).
    pub reliability: Option<f64>,
    /// Split-half (alternate days) consistency of the hourly pattern.
    pub consistency: Option<f64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
