//! Executor liveness: every process has an instance name, marked alive in the
//! `leases` table while it executes actions. An `executing` action whose
//! claim belongs to an instance that is no longer marked alive was abandoned
//! by a crash and is settled by reading the platform, within one lease TTL
//! of the crash instead of after a fixed wait.
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeDelta, Utc};

use super::AppState;
use crate::error::Result;
use crate::persistence::leases;

/// This process's instance name: host, pid and start time, so a restarted
/// process (even with the same pid, as in a container) is a new instance.
pub fn instance() -> &'static str {
    static INSTANCE: LazyLock<String> = LazyLock::new(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        let started = Utc::now().timestamp_micros();
        format!("{host}:{}:{started}", std::process::id())
    });
    &INSTANCE
}

/// A new claim token of this instance: `<instance>#<n>`.
pub fn claim_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{}#{}", instance(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The instance that made a claim token; `None` for a token of another form.
pub fn claimant(token: &str) -> Option<&str> {
    token.rsplit_once('#').map(|(instance, _)| instance)
}

/// Keeps this instance marked alive until dropped.
#[derive(Debug)]
pub struct Alive {
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Marks this instance alive now and keeps renewing the mark every renewal
/// interval until the returned guard is dropped.
pub async fn hold(state: &AppState) -> Result<Alive> {
    let config = state.engine.leases;
    let ttl = TimeDelta::from_std(config.ttl).unwrap_or(TimeDelta::seconds(30));
    leases::mark_alive(&state.db, instance(), ttl).await?;
    leases::forget_lapsed_instances(&state.db).await?;
    let db = state.db.clone();
    let renewer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.renew_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = leases::mark_alive(&db, instance(), ttl).await {
                tracing::warn!(error = %e, "cannot renew this instance's liveness mark");
            }
        }
    });
    Ok(Alive { renewer })
}
