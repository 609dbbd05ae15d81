//! The gRPC side of the Prometheus metrics: a tower layer that counts every
//! request by method (only methods the server serves become labels) and
//! status code, into the shared [`Metrics`](crate::metrics::Metrics).
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::metrics::{GrpcLabels, Metrics};

/// A tower layer counting gRPC requests by method and status code.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    metrics: Metrics,
}

impl GrpcMetricsLayer {
    /// Counts into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService { inner, metrics: self.metrics.clone() }
    }
}

/// The service of [`GrpcMetricsLayer`].
#[derive(Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path()).to_owned();
        let metrics = self.metrics.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            // Errors travel as "trailers-only" responses with grpc-status in
            // the headers; a success puts it in the trailers (OK).
            let code = match &response {
                Ok(r) => r.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0").to_owned(),
                Err(_) => "2".to_owned(),
            };
            metrics.grpc_requests.get_or_create(&GrpcLabels { method, code }).inc();
            response
        })
    }
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
}
