//! Transport: one module per gRPC service, plus the proto <-> domain
//! conversions they share. Handlers convert, call a use case, convert back.
pub mod approvals_api;
pub mod autoscaler_api;
pub mod convert;
pub mod dashboard;
pub mod page_token;
pub mod rules_api;
pub mod time_api;

pub use approvals_api::ApprovalsApi;
pub use autoscaler_api::AutoScalerApi;
pub use rules_api::RulesApi;
pub use time_api::TimeOptimizationApi;

/// Who is calling. Until authentication exists every caller is anonymous;
/// handlers take the principal from here so that credentials can replace it
/// without a contract change.
pub(crate) fn principal<T>(_request: &tonic::Request<T>) -> String {
    "anonymous".to_owned()
}
