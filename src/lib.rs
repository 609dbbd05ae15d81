//! autoscaler: a gRPC service that scales Meta ad campaign budgets inside hard
//! safety limits. Layers: `grpc` (transport) -> `service` (use cases) ->
//! `persistence` and `platform` (the ad platform) -> `domain` (pure).
pub mod alerts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod monitoring;
pub mod pb;
pub mod persistence;
pub mod platform;
pub mod service;
pub mod simulation;
pub mod startup;
pub mod telemetry;

pub use error::{Error, Result};
