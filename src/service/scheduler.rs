//! The hourly optimization as a background task of the server: cron
//! schedules (seconds first, UTC) run the same cycle code as `RunCycle`.
//! A failing cycle is logged and never takes the server down; overlapping
//! triggers are skipped; each scheduled slot runs on exactly one replica.
use chrono::{DateTime, TimeDelta, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use tokio_cron_scheduler::{Job, JobScheduler};

use super::AppState;
use super::cycle::{self, CycleMode};

/// When cycles run; `None` turns a schedule off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedules {
    /// Cron expression of the optimize cycle (default: top of every hour).
    pub optimize: Option<String>,
    /// Cron expression of the learn cycle (default: off).
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

/// Starts the scheduler with the enabled schedules, and the daily approval
/// digest when alerts go to a webhook; `None` when nothing is scheduled.
pub async fn start(state: AppState, schedules: &Schedules) -> Result<Option<JobScheduler>, ScheduleError> {
    let jobs = [("optimize", CycleMode::Optimize, &schedules.optimize), ("learn", CycleMode::Learn, &schedules.learn)];
    let digest = state.engine.approval_digest.filter(|_| state.alerts.is_enabled());
    if jobs.iter().all(|(_, _, expr)| expr.is_none()) && digest.is_none() {
        return Ok(None);
    }
    let fail = |which: &'static str| {
        move |e: tokio_cron_scheduler::JobSchedulerError| ScheduleError { which, reason: format!("{e:?}") }
    };
    let scheduler = JobScheduler::new().await.map_err(fail("scheduler"))?;
    for (which, mode, expr) in jobs {
        let Some(expr) = expr else { continue };
        let cron = parse(expr).map_err(|reason| ScheduleError { which, reason })?;
        let state = state.clone();
        let job = Job::new_async(expr.as_str(), move |_, _| {
            let state = state.clone();
            let cron = cron.clone();
            Box::pin(async move { run_slot(&state, mode, &cron).await })
        })
        .map_err(fail(which))?;
        scheduler.add(job).await.map_err(fail(which))?;
        tracing::info!(schedule = %expr, cycle = which, "cycle scheduled");
    }
    if let Some(digest) = digest {
        let state = state.clone();
        let job = Job::new_async_tz(digest.cron(), digest.time_zone, move |_, _| {
            let state = state.clone();
            Box::pin(async move { run_digest(&state).await })
        })
        .map_err(fail("approval digest"))?;
        scheduler.add(job).await.map_err(fail("approval digest"))?;
        tracing::info!(hour = digest.hour, time_zone = %digest.time_zone, "approval digest scheduled");
    }
    scheduler.start().await.map_err(fail("scheduler"))?;
    Ok(Some(scheduler))
}

/// Parses a cron expression (seconds first) as the scheduler does.
pub fn parse(expr: &str) -> Result<Cron, String> {
    CronParser::builder().seconds(Seconds::Required).dom_and_dow(true).build().parse(expr).map_err(|e| e.to_string())
}

/// How early a trigger may fire and still name the instant it was scheduled for.
const EARLY_FIRING: TimeDelta = TimeDelta::milliseconds(500);

/// The slot of a trigger that fires at `fired_at`: the cycle's mode and the
/// instant the cron schedule named, so every replica names the same slot
/// however late its trigger fires (up to the next scheduled instant).
pub fn slot(mode: CycleMode, cron: &Cron, fired_at: DateTime<Utc>) -> String {
    let instant = cron.find_previous_occurrence(&(fired_at + EARLY_FIRING), true).unwrap_or(fired_at);
    format!("{}@{}", mode.as_str(), instant.format("%Y-%m-%dT%H:%M:%SZ"))
}

/// Runs the cycle of the current slot, logging the outcome.
pub async fn run_slot(state: &AppState, mode: CycleMode, cron: &Cron) {
    let slot = slot(mode, cron, Utc::now());
    match cycle::run_scheduled(state, mode, &slot).await {
        Ok(Some(report)) => tracing::info!(%slot, cycle_id = report.cycle_id, "scheduled cycle done"),
        Ok(None) => tracing::info!(%slot, "scheduled cycle skipped: already running or run by another replica"),
        Err(e) => tracing::error!(%slot, error = %e, "scheduled cycle failed"),
    }
}

/// Sends the day's approval digest, logging the outcome.
async fn run_digest(state: &AppState) {
    match super::digest::send_approval_digest(state, Utc::now()).await {
        Ok(outcome) => tracing::info!(?outcome, "approval digest"),
        Err(e) => tracing::error!(error = %e, "approval digest failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_else(|_| unreachable!("literal"))
    }

    #[test]
    fn the_digest_fires_at_its_local_hour_through_daylight_saving() {
        let digest = crate::service::settings::DigestSchedule { hour: 9, time_zone: chrono_tz::Europe::Berlin };
        let cron = parse(&digest.cron()).expect("cron");
        // Berlin is UTC+1 in winter and UTC+2 in summer (from 2026-03-29).
        for (after, expected) in
            [("2026-03-28T12:00:00Z", "2026-03-29T07:00:00Z"), ("2026-01-10T09:00:00Z", "2026-01-11T08:00:00Z")]
        {
            let local = at(after).with_timezone(&digest.time_zone);
            let next = cron.find_next_occurrence(&local, false).expect("next");
            assert_eq!(next.with_timezone(&Utc), at(expected), "after {after}");
        }
        assert!(Job::new_async_tz(digest.cron(), digest.time_zone, |_, _| Box::pin(async {})).is_ok());
    }

    #[test]
    fn replicas_firing_late_or_slightly_early_name_the_scheduled_instant() {
        let hourly = parse("0 0 * * * *").expect("cron");
        let expected = "optimize@2026-11-25T15:00:00Z";
        for fired in
            ["2026-11-25T15:00:00.000Z", "2026-11-25T15:00:00.700Z", "2026-11-25T15:00:03Z", "2026-11-25T14:59:59.800Z"]
        {
            assert_eq!(slot(CycleMode::Optimize, &hourly, at(fired)), expected, "fired at {fired}");
        }
        assert_eq!(slot(CycleMode::Optimize, &hourly, at("2026-11-25T16:00:01Z")), "optimize@2026-11-25T16:00:00Z");
    }
}
