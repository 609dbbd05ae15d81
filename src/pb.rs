//! Code generated from `proto/autoscaler/v1`: messages, servers and the typed
//! clients other Rust services use (`autoscaler::pb::rules_service_client::...`).
#![allow(clippy::all, unreachable_pub, missing_docs)]

tonic::include_proto!("autoscaler.v1");

/// Encoded descriptor set of the contract, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("autoscaler_descriptor");
