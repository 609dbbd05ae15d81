//! Database migrations for the autoscaler: one module per schema step, applied
//! in order at start-up (`autoscaler migrate` applies them without serving).
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_schema;
mod m20261125_000010_cycle_slots_and_leases;
mod m20261201_000001_action_history_indexes;
mod m20261201_000002_action_event_snapshots;
mod m20261205_000001_time_of_day;
mod m20261205_000002_hourly_cell_index;
mod m20261206_000001_action_resolution;
mod m20261210_000001_rule_strategy;
mod m20261211_000001_action_belief;
mod m20261212_000001_reported_days;
mod m20261213_000001_event_snapshot_when_missing;
mod m20261213_000002_cycle_accounts;
mod m20261214_000001_action_rollups;
mod m20261215_000001_index_review;
mod m20261215_000002_response_rollups;

/// Every migration of the service, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_schema::Migration),
            Box::new(m20261125_000010_cycle_slots_and_leases::Migration),
            Box::new(m20261201_000001_action_history_indexes::Migration),
            Box::new(m20261201_000002_action_event_snapshots::Migration),
            Box::new(m20261205_000001_time_of_day::Migration),
            Box::new(m20261205_000002_hourly_cell_index::Migration),
            Box::new(m20261206_000001_action_resolution::Migration),
            Box::new(m20261210_000001_rule_strategy::Migration),
            Box::new(m20261211_000001_action_belief::Migration),
            Box::new(m20261212_000001_reported_days::Migration),
            Box::new(m20261213_000001_event_snapshot_when_missing::Migration),
            Box::new(m20261213_000002_cycle_accounts::Migration),
            Box::new(m20261214_000001_action_rollups::Migration),
            Box::new(m20261215_000001_index_review::Migration),
            Box::new(m20261215_000002_response_rollups::Migration),
        ]
    }
}
