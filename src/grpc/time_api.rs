//! `TimeOptimizationService`: learned hour-of-day profiles and budget schedules.
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::ids::{AccountId, CampaignId};
use crate::domain::strategy::LagCurve;
use crate::domain::time_profile::{DEFAULT_MIN_SAMPLES, HourBudget};
use crate::error::Error;
use crate::pb::{self, time_optimization_service_server::TimeOptimizationService};
use crate::persistence::profiles::StoredProfile;
use crate::service::time_optimization::{self as time, MAX_MIN_SAMPLES};
use crate::service::{AppState, reporting_lag};

/// Implements `autoscaler.v1.TimeOptimizationService`.
#[derive(Clone)]
pub struct TimeOptimizationApi {
    state: AppState,
}

impl TimeOptimizationApi {
    /// A handler over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A stored profile as the API shows it.
pub(crate) fn profile_to_pb(s: &StoredProfile) -> pb::HourProfile {
    let p = &s.profile;
    pb::HourProfile {
        account_id: s.account_id.clone(),
        campaign_id: s.campaign_id.clone(),
        peak_hours: p.peak_hours.iter().map(|h| *h as i32).collect(),
        valley_hours: p.valley_hours.iter().map(|h| *h as i32).collect(),
        hourly_index: p.hourly_index.clone(),
        confidence: p.confidence,
        samples: p.samples,
        day_of_week_index: p.day_of_week_index.clone(),
        metric: p.metric.as_str().to_owned(),
        learn_time: Some(convert::timestamp(s.learned_at)),
        hourly_samples: p.hourly_samples.clone(),
        days: p.days,
        reliability: p.reliability,
        consistency: p.consistency,
    }
}

fn hours_to_pb(hours: &[HourBudget]) -> Vec<pb::HourlyBudget> {
    hours
        .iter()
        .map(|h| pb::HourlyBudget { hour: h.hour as i32, budget_minor: h.budget_minor, multiplier: h.multiplier })
        .collect()
}

/// A time zone as the API names it: its IANA name, or empty when unknown.
fn time_zone_name(zone: Option<chrono_tz::Tz>) -> String {
    zone.map(|tz| tz.name().to_owned()).unwrap_or_default()
}

fn ids(account: &str, campaign: &str) -> Result<(AccountId, CampaignId), Error> {
    Ok((AccountId::parse(account, "account_id")?, CampaignId::parse(campaign, "campaign_id")?))
}

#[tonic::async_trait]
impl TimeOptimizationService for TimeOptimizationApi {
    #[tracing::instrument(skip_all, fields(account_id = %request.get_ref().account_id, campaign_id = %request.get_ref().campaign_id))]
    async fn learn_optimal_hours(
        &self,
        request: Request<pb::LearnOptimalHoursRequest>,
    ) -> Result<Response<pb::LearnOptimalHoursResponse>, Status> {
        let req = request.into_inner();
        let account = AccountId::parse(&req.account_id, "account_id")?;
        let campaign =
            if req.campaign_id.is_empty() { None } else { Some(CampaignId::parse(&req.campaign_id, "campaign_id")?) };
        let min_samples = match i64::from(req.min_samples) {
            0 => DEFAULT_MIN_SAMPLES,
            n if n < 0 => return Err(Error::invalid("min_samples", "must not be negative").into()),
            n if n > MAX_MIN_SAMPLES => {
                return Err(Error::invalid("min_samples", format!("must be at most {MAX_MIN_SAMPLES}")).into());
            }
            n => n,
        };
        let outcome = time::learn(&self.state, &account, campaign.as_ref(), min_samples).await?;
        Ok(Response::new(pb::LearnOptimalHoursResponse {
            profiles: outcome.profiles.iter().map(profile_to_pb).collect(),
            skipped_campaign_ids: outcome.skipped,
            snapshot_hours: outcome.ingest.hours as i64,
            skipped_hours: outcome.ingest.skipped as i64,
            revised_hours: outcome.ingest.revisions as i64,
            backfilled_hours: outcome.backfill.rows as i64,
        }))
    }

    #[tracing::instrument(skip_all, fields(account_id = %request.get_ref().account_id, campaign_id = %request.get_ref().campaign_id))]
    async fn get_time_report(
        &self,
        request: Request<pb::GetTimeReportRequest>,
    ) -> Result<Response<pb::GetTimeReportResponse>, Status> {
        let req = request.into_inner();
        let (account, campaign) = ids(&req.account_id, &req.campaign_id)?;
        let report = time::report(&self.state, &account, &campaign).await?;
        let (schedule, currency) =
            report.schedule.map_or((Vec::new(), String::new()), |s| (hours_to_pb(&s.hours), s.currency));
        Ok(Response::new(pb::GetTimeReportResponse {
            profile: Some(profile_to_pb(&report.stored)),
            schedule,
            currency,
            time_zone: time_zone_name(report.time_zone),
        }))
    }

    #[tracing::instrument(skip_all, fields(account_id = %request.get_ref().account_id, campaign_id = %request.get_ref().campaign_id))]
    async fn get_budget_schedule(
        &self,
        request: Request<pb::GetBudgetScheduleRequest>,
    ) -> Result<Response<pb::GetBudgetScheduleResponse>, Status> {
        let req = request.into_inner();
        let (account, campaign) = ids(&req.account_id, &req.campaign_id)?;
        let schedule = time::schedule(&self.state, &account, &campaign, req.daily_budget_minor).await?;
        Ok(Response::new(pb::GetBudgetScheduleResponse {
            hours: hours_to_pb(&schedule.hours),
            daily_budget_minor: schedule.daily_budget_minor,
            currency: schedule.currency,
            confidence: schedule.confidence,
            time_zone: time_zone_name(schedule.time_zone),
        }))
    }

    #[tracing::instrument(skip_all, fields(account_id = %request.get_ref().account_id))]
    async fn get_reporting_lag(
        &self,
        request: Request<pb::GetReportingLagRequest>,
    ) -> Result<Response<pb::GetReportingLagResponse>, Status> {
        let account = AccountId::parse(&request.get_ref().account_id, "account_id")?;
        let report = reporting_lag::report(&self.state, &account).await?;
        let learned = &report.learned;
        let prior = LagCurve::prior();
        let shape = &learned.shape;
        Ok(Response::new(pb::GetReportingLagResponse {
            account_id: account.to_string(),
            points: LAG_POINTS
                .iter()
                .map(|&h| pb::LagPoint {
                    hours_after: h,
                    reported_share: learned.curve.share(f64::from(h)),
                    prior_share: prior.share(f64::from(h)),
                })
                .collect(),
            fitted: Some(pb::LagShape {
                immediate_share: shape.immediate,
                fast_split: shape.fast_split,
                fast_mean_hours: shape.fast_mean_hours,
                slow_mean_hours: shape.slow_mean_hours,
            }),
            days_observed: learned.days_observed as i64,
            readings_used: learned.readings_used as i64,
            prior_weight: learned.prior_weight,
            oldest_reading_hours: learned.oldest_reading_hours,
            computed_time: Some(convert::timestamp(report.computed_at)),
        }))
    }
}

/// Ages at which the reporting-lag curve is shown, hours.
const LAG_POINTS: [i32; 12] = [0, 1, 2, 3, 6, 12, 24, 48, 72, 96, 120, 168];
