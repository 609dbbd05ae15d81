//! SeaORM entities, one per table of the migration crate.
pub mod action_event;
pub mod campaign_hourly_stat;
pub mod cycle_run;
pub mod lease;
pub mod optimal_hour_profile;
pub mod performance_snapshot;
pub mod reported_day;
pub mod scaling_action;
pub mod scaling_rule;
pub mod time_ingest_mark;
