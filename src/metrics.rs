//! Prometheus metrics: what operators graph and alert on. Counters live in
//! one [`Metrics`] value shared by the server; `/metrics` on a separate HTTP
//! port renders them in the OpenMetrics text format.
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
    crate::grpc::auth::METHOD_ROLES
        .iter()
        .map(|(method, _)| *method)
        .chain(OPEN_METHODS)
        .find(|method| *method == path)
        .unwrap_or("other")
}

/// Counters kept elsewhere, read at each scrape: Graph API requests (per
/// configured account and in all) and webhook deliveries.
pub struct ScrapedCounters {
    /// The Graph API client.
    pub platform: crate::platform::MetaClient,
    /// Accounts to report requests for.
    pub accounts: Arc<Vec<crate::domain::ids::AccountId>>,
    /// The alert pipeline.
    pub alerts: crate::alerts::Alerts,
}

impl std::fmt::Debug for ScrapedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapedCounters").finish_non_exhaustive()
    }
}

impl prometheus_client::collector::Collector for ScrapedCounters {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        let total = ConstCounter::new(self.platform.request_count());
        total.encode(encoder.encode_descriptor(
            "graph_requests",
            "Graph API requests sent, retries included",
            None,
            total.metric_type(),
        )?)?;
        let mut by_account = encoder.encode_descriptor(
            "graph_account_requests",
            "Graph API requests sent per ad account",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for account in self.accounts.iter() {
            let counter = ConstCounter::new(self.platform.account_request_count(account));
            let labels = [("account", account.as_str())];
            counter.encode(by_account.encode_family(&labels)?)?;
        }
        let stats = self.alerts.stats();
        let mut deliveries = encoder.encode_descriptor(
            "webhook_alerts",
            "Webhook alerts by outcome",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (outcome, value) in [
            ("queued", stats.queued),
            ("delivered", stats.delivered),
            ("failed", stats.failed),
            ("dropped", stats.dropped),
        ] {
            ConstCounter::new(value).encode(deliveries.encode_family(&[("outcome", outcome)])?)?;
        }
        Ok(())
    }
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

    #[test]
    fn only_served_methods_become_labels() {
        assert_eq!(method_label("/autoscaler.v1.RulesService/ListRules"), "/autoscaler.v1.RulesService/ListRules");
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "/grpc.health.v1.Health/Check");
        assert_eq!(method_label("/autoscaler.v1.RulesService/Made1"), "other");
        assert_eq!(method_label("/autoscaler.v1.RulesService/ListRules/x"), "other");
        assert_eq!(method_label("/"), "other");
    }
}
