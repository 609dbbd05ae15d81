//! Prometheus metrics: what operators graph and alert on. Counters live in
//! one [`Metrics`] value shared by the server; `/metrics` on a separate HTTP
//! port renders them in the OpenMetrics text format.
use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::action::ActionRecord;

/// Labels of a finished cycle.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CycleLabels {
    /// `succeeded`, `failed` or `skipped`.
    pub outcome: String,
}

/// Labels of an action count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The action type (`scale_up`, ...).
    pub action_type: String,
    /// The status it reached (`executed`, ...).
    pub status: String,
}

/// Labels of an ad-platform failure.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    /// Ad account.
    pub account: String,
    /// `throttled`, `transient`, `permanent` or `not_found`.
    pub kind: String,
}

/// Labels of a gRPC request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    /// Full method path, `/autoscaler.v1.RulesService/CreateRule`, or
    /// `other` for any path the server does not serve.
    pub method: String,
    /// gRPC status code number as text (`0` = OK).
    pub code: String,
}

/// Every metric of the service.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<std::sync::RwLock<Registry>>,
    /// Cycles by outcome.
    pub cycles: Family<CycleLabels, Counter>,
    /// Cycle wall time.
    pub cycle_seconds: Histogram,
    /// Campaigns evaluated (every recorded decision).
    pub campaigns_evaluated: Counter,
    /// Actions by type and the status they reached.
    pub actions: Family<ActionLabels, Counter>,
    /// Ad-platform failures by account and kind.
    pub platform_errors: Family<PlatformLabels, Counter>,
    /// gRPC requests by method and status code.
    pub grpc_requests: Family<GrpcLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("autoscaler");
        let cycles = Family::<CycleLabels, Counter>::default();
        let cycle_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        let campaigns_evaluated = Counter::default();
        let actions = Family::<ActionLabels, Counter>::default();
        let platform_errors = Family::<PlatformLabels, Counter>::default();
        let grpc_requests = Family::<GrpcLabels, Counter>::default();
        registry.register("cycles", "Optimization cycles by outcome", cycles.clone());
        registry.register("cycle_duration_seconds", "Wall time of optimization cycles", cycle_seconds.clone());
        registry.register("campaigns_evaluated", "Campaign decisions recorded", campaigns_evaluated.clone());
        registry.register("actions", "Scaling actions by type and the status they reached", actions.clone());
        registry.register("platform_errors", "Ad-platform failures by account and kind", platform_errors.clone());
        registry.register("grpc_requests", "gRPC requests by method and status code", grpc_requests.clone());
        Self {
            registry: Arc::new(std::sync::RwLock::new(registry)),
            cycles,
            cycle_seconds,
            campaigns_evaluated,
            actions,
            platform_errors,
            grpc_requests,
        }
    }

    /// Adds metrics read at scrape time (e.g. counters kept by the ad-platform
    /// client or the alert sender).
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        let mut registry = self.registry.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        registry.register_collector(collector);
    }

    /// Counts actions at the status each has now.
    pub fn observe_actions(&self, records: &[ActionRecord]) {
        for r in records {
            self.actions
                .get_or_create(&ActionLabels {
                    action_type: r.action.action_type.as_str().to_owned(),
                    status: r.status.as_str().to_owned(),
                })
                .inc();
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let registry = self.registry.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                    metrics.render(),
                )
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics_with_the_prefix() {
        let metrics = Metrics::new();
        metrics.campaigns_evaluated.inc_by(3);
        metrics.cycles.get_or_create(&CycleLabels { outcome: "succeeded".into() }).inc();
        let text = metrics.render();
        assert!(text.contains("autoscaler_campaigns_evaluated_total 3"), "{text}");
        assert!(text.contains("autoscaler_cycles_total{outcome=\"succeeded\"} 1"), "{text}");
    }
}
