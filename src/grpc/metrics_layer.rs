//! The gRPC side of the Prometheus metrics: a wrapper around each call that
//! counts and times every request by method (only methods the server serves become
//! labels) and status code name, into the shared
//! [`Metrics`](crate::metrics::Metrics).
use std::future::Future;

use super::call_layer::{AroundCall, CallFuture};
use crate::metrics::{GrpcLabels, Metrics};

/// Counts and times gRPC requests by method and status code; serve it with
/// [`CallLayer`](super::call_layer::CallLayer).
#[derive(Clone)]
pub struct GrpcMetrics {
    metrics: Metrics,
}

impl GrpcMetrics {
    /// Counts into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl AroundCall for GrpcMetrics {
    fn around<F, R, E>(&self, path: &str, call: F) -> CallFuture<R, E>
    where
        F: Future<Output = Result<http::Response<R>, E>> + Send + 'static,
        R: Default + Send + 'static,
        E: Send + 'static,
    {
        let method = method_label(path);
        let metrics = self.metrics.clone();
        let started = std::time::Instant::now();
        Box::pin(async move {
            let response = call.await;
            // Errors travel as "trailers-only" responses with grpc-status in
            // the headers; a success puts it in the trailers (OK).
            let code = match &response {
                Ok(r) => code_name(r.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0")),
                Err(_) => "UNKNOWN",
            };
            let labels = GrpcLabels { method: method.to_owned(), code: code.to_owned() };
            metrics.grpc_seconds.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
            metrics.grpc_requests.get_or_create(&labels).inc();
            response
        })
    }
}

/// The canonical name of a `grpc-status` value (`3` -> `INVALID_ARGUMENT`),
/// as grpcurl and the gRPC docs print it; a value outside the table is
/// `UNKNOWN`, as the gRPC spec says a client must read it.
pub fn code_name(status: &str) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    status.trim().parse::<usize>().ok().and_then(|n| NAMES.get(n)).copied().unwrap_or("UNKNOWN")
}

/// Methods served without authentication, besides our own services'.
const OPEN_METHODS: [&str; 4] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The `method` label of a request path: a method the server serves, or
/// `other`. Callers choose paths, so anything else sharing a label keeps the
/// label set (and the memory of `/metrics`) bounded.
pub fn method_label(path: &str) -> &'static str {
    super::auth::METHOD_ROLES
        .iter()
        .map(|(method, _)| *method)
        .chain(OPEN_METHODS)
        .find(|method| *method == path)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_become_labels() {
        assert_eq!(method_label("/autoscaler.v1.RulesService/ListRules"), "/autoscaler.v1.RulesService/ListRules");
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "/grpc.health.v1.Health/Check");
        assert_eq!(method_label("/autoscaler.v1.RulesService/Made1"), "other");
        assert_eq!(method_label("/autoscaler.v1.RulesService/ListRules/x"), "other");
        assert_eq!(method_label("/"), "other");
    }

    #[test]
    fn codes_are_named_as_grpc_names_them() {
        assert_eq!(code_name("0"), "OK");
        assert_eq!(code_name("3"), "INVALID_ARGUMENT");
        assert_eq!(code_name("16"), "UNAUTHENTICATED");
        for code in 0..17 {
            let name = code_name(&code.to_string());
            let tonic_name = format!("{:?}", tonic::Code::from_i32(code));
            assert_eq!(name.replace('_', ""), tonic_name.to_uppercase(), "code {code}");
        }
        assert_eq!(code_name("17"), "UNKNOWN");
        assert_eq!(code_name("x"), "UNKNOWN");
    }
}
