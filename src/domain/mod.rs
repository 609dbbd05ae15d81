//! The pure domain: identifiers, rules, decisions and action states. No I/O,
//! no tonic, no sea_orm.
pub mod action;
pub mod decision;
pub mod ids;
pub mod invalid;
pub mod money;
pub mod performance;
pub mod rule;
pub mod step;
pub mod strategy;
pub mod time_profile;
