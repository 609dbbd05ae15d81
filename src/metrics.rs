//! Prometheus metrics: what operators graph and alert on. Counters, gauges
//! and histograms live in one [`Metrics`] value shared by the server;
//! `/metrics` on a separate HTTP port renders them in the Prometheus text
//! format, or OpenMetrics for a scraper that asks for it.
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::action::ActionRecord;

/// Labels of a finished cycle.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CycleLabels {
    /// `succeeded`, `failed` or `skipped`.
    pub outcome: String,
}

/// Labels of a cycle mode (`optimize`, `learn`, `both`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    /// The cycle's mode.
    pub mode: String,
}

/// Labels of a per-account series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabels {
    /// Ad account, `act_...`.
    pub account: String,
}

/// Labels of an action count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The action type (`scale_up`, ...).
    pub action_type: String,
    /// The final status it reached (`executed`, ...).
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
    /// gRPC status code name (`OK`, `INVALID_ARGUMENT`, ...).
    pub code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
}

/// Work done before each scrape: reads database aggregates into gauges, so
/// they cost one cheap query per scrape rather than any work per request.
pub type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Longest a scrape waits for [`Refresh`]; the gauges keep their previous
/// values when it takes longer (the health service reports a dead database).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// Buckets of request latencies: 1 ms to about 1 minute.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.5, 13))
}

/// Every metric of the service.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<std::sync::RwLock<Registry>>,
    refresh: Arc<std::sync::RwLock<Option<Refresh>>>,
    /// Cycles by outcome.
    pub cycles: Family<CycleLabels, Counter>,
    /// Cycle wall time.
    pub cycle_seconds: Histogram,
    /// Campaigns evaluated (every recorded decision).
    pub campaigns_evaluated: Counter,
    /// Actions by type and the final status they reached: each action once.
    pub actions: Family<ActionLabels, Counter>,
    /// Ad-platform failures by account and kind.
    pub platform_errors: Family<PlatformLabels, Counter>,
    /// Cycles in which an account (or some of its campaigns) could not be
    /// evaluated.
    pub account_cycle_failures: Family<AccountLabels, Counter>,
    /// gRPC requests by method and status code.
    pub grpc_requests: Family<GrpcLabels, Counter>,
    /// gRPC handling time by method and status code.
    pub grpc_seconds: Family<GrpcLabels, Histogram, fn() -> Histogram>,
    /// Actions waiting for a human decision (read from the database).
    pub pending_approvals: Gauge,
    /// Age of the oldest action waiting for a decision; 0 when none waits.
    pub oldest_pending_age_seconds: Gauge<f64, AtomicU64>,
    /// End of the last successful cycle per mode, unix seconds (read from the
    /// database, so every replica reports the same value).
    pub cycle_last_success: Family<ModeLabels, Gauge<f64, AtomicU64>>,
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
        let metrics = Self {
            registry: Arc::default(),
            refresh: Arc::default(),
            cycles: Family::default(),
            cycle_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            campaigns_evaluated: Counter::default(),
            actions: Family::default(),
            platform_errors: Family::default(),
            account_cycle_failures: Family::default(),
            grpc_requests: Family::default(),
            grpc_seconds: Family::new_with_constructor(latency_histogram),
            pending_approvals: Gauge::default(),
            oldest_pending_age_seconds: Gauge::default(),
            cycle_last_success: Family::default(),
        };
        let m = &metrics;
        registry.register("cycles", "Optimization cycles by outcome", m.cycles.clone());
        registry.register("cycle_duration_seconds", "Wall time of optimization cycles", m.cycle_seconds.clone());
        registry.register(
            "cycle_last_success_timestamp_seconds",
            "End of the last successful cycle of each mode (unix seconds)",
            m.cycle_last_success.clone(),
        );
        registry.register("campaigns_evaluated", "Campaign decisions recorded", m.campaigns_evaluated.clone());
        registry.register("actions", "Actions by type, counted once when they reach a final status", m.actions.clone());
        registry.register("pending_approvals", "Actions waiting for a human decision", m.pending_approvals.clone());
        registry.register(
            "oldest_pending_approval_age_seconds",
            "Age of the oldest action waiting for a decision (0 when none waits)",
            m.oldest_pending_age_seconds.clone(),
        );
        registry.register("platform_errors", "Ad-platform failures by account and kind", m.platform_errors.clone());
        registry.register(
            "account_cycle_failures",
            "Cycles in which an account or some of its campaigns could not be evaluated",
            m.account_cycle_failures.clone(),
        );
        registry.register("grpc_requests", "gRPC requests by method and status code", m.grpc_requests.clone());
        registry.register(
            "grpc_request_duration_seconds",
            "gRPC handling time by method and status code (streams: until the response starts)",
            m.grpc_seconds.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                revision: option_env!("AUTOSCALER_REVISION").unwrap_or("unknown").to_owned(),
            })
            .set(1);
        registry.register("build_info", "The running build: always 1, labelled by version and revision", build);
        *metrics.registry.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = registry;
        metrics
    }

    /// Adds metrics read at scrape time (e.g. counters kept by the ad-platform
    /// client or the alert sender).
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        let mut registry = self.registry.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        registry.register_collector(collector);
    }

    /// Sets the work done before each scrape (replaces any earlier one).
    pub fn set_refresh(&self, refresh: Refresh) {
        *self.refresh.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(refresh);
    }

    /// Runs the scrape-time refresh, if any, for at most [`REFRESH_TIMEOUT`].
    pub async fn refresh(&self) {
        let refresh = self.refresh.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(refresh) = refresh
            && tokio::time::timeout(REFRESH_TIMEOUT, refresh()).await.is_err()
        {
            tracing::warn!("metrics refresh timed out; database gauges keep their previous values");
        }
    }

    /// Counts the actions that reached a final status (executed, failed,
    /// rejected, expired, skipped). Each action reaches exactly one, once, so
    /// each is counted once: an auto-executed action is `executed`, never
    /// also `approved`. Waiting actions are the `pending_approvals` gauge.
    pub fn observe_actions(&self, records: &[ActionRecord]) {
        for r in records.iter().filter(|r| r.status.is_final()) {
            self.actions
                .get_or_create(&ActionLabels {
                    action_type: r.action.action_type.as_str().to_owned(),
                    status: r.status.as_str().to_owned(),
                })
                .inc();
        }
    }

    /// The Prometheus text (version 0.0.4) of every metric: what
    /// `promtool check metrics` and most tools read.
    pub fn render(&self) -> String {
        self.render_as(Format::Prometheus)
    }

    fn render_as(&self, format: Format) -> String {
        let registry = self.registry.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        let encoded = match format {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
        };
        if let Err(e) = encoded {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics only for a scraper that asks for it (Prometheus does);
    /// curl, promtool and older tools get the classic text format.
    fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
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
        axum::routing::get(move |headers: http::HeaderMap| {
            let metrics = metrics.clone();
            async move {
                let accept = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok());
                let format = Format::negotiate(accept);
                metrics.refresh().await;
                ([(http::header::CONTENT_TYPE, format.content_type())], metrics.render_as(format))
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
        // The classic format names the counter family with its `_total`, as
        // promtool expects, and has no OpenMetrics trailer.
        assert!(text.contains("# HELP autoscaler_cycles_total "), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(text.contains("autoscaler_build_info{version=\""), "{text}");
    }

    #[test]
    fn openmetrics_only_for_scrapers_that_ask_for_it() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        let prometheus = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        let text = Metrics::new().render_as(Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
