//! Transport: one module per gRPC service, plus the proto <-> domain
//! conversions they share. Handlers convert, call a use case, convert back.
pub mod approvals_api;
pub mod auth;
pub mod autoscaler_api;
pub mod call_layer;
pub mod convert;
pub mod dashboard;
pub mod limits;
pub mod metrics_layer;
pub mod page_token;
pub mod rules_api;
pub mod time_api;

pub use approvals_api::ApprovalsApi;
pub use autoscaler_api::AutoScalerApi;
pub use rules_api::RulesApi;
pub use time_api::TimeOptimizationApi;

/// Recorded as the caller when authentication is off (no tokens configured).
pub const ANONYMOUS: &str = "anonymous";

/// Who is calling: the principal the auth layer authenticated. With tokens
/// configured the layer refuses every call it cannot authenticate, so the
/// fallback to [`ANONYMOUS`] is only reached when authentication is off.
pub(crate) fn principal<T>(request: &tonic::Request<T>) -> String {
    authenticated(request).map_or_else(|| ANONYMOUS.to_owned(), |p| p.name.clone())
}

/// The authenticated principal; `None` when authentication is off.
pub(crate) fn authenticated<T>(request: &tonic::Request<T>) -> Option<&crate::auth::Principal> {
    request.extensions().get::<crate::auth::Principal>()
}
