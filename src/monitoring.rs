//! Wiring of the Prometheus metrics to the rest of the service, beside
//! `startup`: what is read at scrape time (database aggregates, the Graph
//! client's counters, usage and latency, the webhook pipeline). `metrics`
//! itself stays a leaf that names no layer.
use std::sync::Arc;

use chrono::Utc;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::domain::ids::AccountId;
use crate::metrics::ModeLabels;
use crate::persistence::{actions, cycles};
use crate::platform::MetaClient;
use crate::service::AppState;

/// Registers the scrape-time collector and the database refresh on
/// `state.metrics`.
pub fn install(state: &AppState) {
    state.metrics.register_collector(Box::new(ScrapedMetrics {
        graph_seconds: state.platform.request_seconds(),
        platform: state.platform.clone(),
        accounts: state.accounts.clone(),
        alerts: state.alerts.clone(),
    }));
    let db = state.db.clone();
    let metrics = state.metrics.clone();
    state.metrics.set_refresh(Arc::new(move || {
        let (db, metrics) = (db.clone(), metrics.clone());
        Box::pin(async move { refresh_database_gauges(&db, &metrics).await })
    }));
}

/// Reads the pending approvals and the last successful cycles into their
/// gauges: two aggregate queries. On a database error the gauges keep their
/// previous values.
pub async fn refresh_database_gauges(db: &sea_orm::DatabaseConnection, metrics: &crate::metrics::Metrics) {
    match actions::pending_summary(db).await {
        Ok((waiting, oldest)) => {
            metrics.pending_approvals.set(waiting);
            let age = oldest.map_or(0.0, |t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
            metrics.oldest_pending_age_seconds.set(age);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read pending approvals for the metrics"),
    }
    match cycles::last_successes(db).await {
        Ok(rows) => {
            for (mode, end) in rows {
                let seconds = end.timestamp_millis() as f64 / 1000.0;
                metrics.cycle_last_success.get_or_create(&ModeLabels { mode }).set(seconds);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the last successful cycles for the metrics"),
    }
}

/// Figures kept elsewhere, read at each scrape: Graph API requests (per
/// configured account and in all), their latency, Meta's usage per account,
/// and webhook deliveries.
struct ScrapedMetrics {
    platform: MetaClient,
    graph_seconds: Histogram,
    accounts: Arc<Vec<AccountId>>,
    alerts: crate::alerts::Alerts,
}

impl std::fmt::Debug for ScrapedMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapedMetrics").finish_non_exhaustive()
    }
}

impl Collector for ScrapedMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let total = ConstCounter::new(self.platform.request_count());
        total.encode(encoder.encode_descriptor(
            "graph_requests",
            "Graph API requests sent, retries included",
            None,
            total.metric_type(),
        )?)?;
        self.graph_seconds.encode(encoder.encode_descriptor(
            "graph_request_duration_seconds",
            "Time of each Graph API request, retries included, throttle waits excluded",
            None,
            MetricType::Histogram,
        )?)?;
        let mut by_account = encoder.encode_descriptor(
            "graph_account_requests",
            "Graph API requests sent per ad account",
            None,
            MetricType::Counter,
        )?;
        for account in self.accounts.iter() {
            let counter = ConstCounter::new(self.platform.account_request_count(account));
            counter.encode(by_account.encode_family(&[("account", account.as_str())])?)?;
        }
        let mut usage = encoder.encode_descriptor(
            "meta_usage_ratio",
            "Highest share of a Meta rate limit used by the account, as of its last response with usage headers",
            None,
            MetricType::Gauge,
        )?;
        for (account, pct) in self.platform.account_usage() {
            ConstGauge::new(pct / 100.0).encode(usage.encode_family(&[("account", account.as_str())])?)?;
        }
        let stats = self.alerts.stats();
        let mut deliveries =
            encoder.encode_descriptor("webhook_alerts", "Webhook alerts by outcome", None, MetricType::Counter)?;
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
