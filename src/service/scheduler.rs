//! The hourly optimization as a background task of the server: cron
//! schedules (seconds first, UTC) run the same cycle code as `RunCycle`.
//! A failing cycle is logged and never takes the server down; overlapping
//! triggers are skipped; each scheduled slot runs on exactly one replica.
use chrono::Utc;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::AppState;
use super::cycle::{self, CycleMode};

/// When cycles run; `None` turns a schedule off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedules {
    /// Cron expression of the optimize cycle (default: top of every hour).
    pub optimize: Option<String>,
    /// Cron expression of the learn cycle (default: off until learning lands).
    pub learn: Option<String>,
}

/// Error starting the scheduler, naming the schedule at fault.
#[derive(Debug, thiserror::Error)]
#[error("cannot schedule {which}: {reason}")]
pub struct ScheduleError {
    /// `optimize` or `learn`.
    pub which: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// Checks that `expr` is a cron expression the scheduler accepts.
pub fn validate(expr: &str) -> Result<(), String> {
    Job::new_async(expr, |_, _| Box::pin(async {})).map(|_| ()).map_err(|e| format!("{e:?}"))
}

/// Starts the scheduler with the enabled schedules; `None` when both are off.
pub async fn start(state: AppState, schedules: &Schedules) -> Result<Option<JobScheduler>, ScheduleError> {
    let jobs = [("optimize", CycleMode::Optimize, &schedules.optimize), ("learn", CycleMode::Learn, &schedules.learn)];
    if jobs.iter().all(|(_, _, expr)| expr.is_none()) {
        return Ok(None);
    }
    let fail = |which: &'static str| {
        move |e: tokio_cron_scheduler::JobSchedulerError| ScheduleError { which, reason: format!("{e:?}") }
    };
    let scheduler = JobScheduler::new().await.map_err(fail("scheduler"))?;
    for (which, mode, expr) in jobs {
        let Some(expr) = expr else { continue };
        let state = state.clone();
        let job = Job::new_async(expr.as_str(), move |_, _| {
            let state = state.clone();
            Box::pin(async move { run_slot(&state, mode).await })
        })
        .map_err(fail(which))?;
        scheduler.add(job).await.map_err(fail(which))?;
        tracing::info!(schedule = %expr, cycle = which, "cycle scheduled");
    }
    scheduler.start().await.map_err(fail("scheduler"))?;
    Ok(Some(scheduler))
}

/// Runs the cycle of the current slot, logging the outcome. The slot is the
/// firing time rounded to the nearest second, so replicas whose clocks agree
/// within half a second (NTP does far better) name the same slot.
pub async fn run_slot(state: &AppState, mode: CycleMode) {
    let now = Utc::now() + chrono::TimeDelta::milliseconds(500);
    let slot = format!("{}@{}", mode.as_str(), now.format("%Y-%m-%dT%H:%M:%SZ"));
    match cycle::run_scheduled(state, mode, &slot).await {
        Ok(Some(report)) => tracing::info!(%slot, cycle_id = report.cycle_id, "scheduled cycle done"),
        Ok(None) => tracing::info!(%slot, "scheduled cycle skipped: already running or run by another replica"),
        Err(e) => tracing::error!(%slot, error = %e, "scheduled cycle failed"),
    }
}
