//! Transport: one module per gRPC service.
