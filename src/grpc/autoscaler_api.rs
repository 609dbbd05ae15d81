//! `AutoScalerService`: evaluate campaigns, run cycles, dashboard, replay rules.
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::ids::{AccountId, CampaignId};
use crate::error::Error;
use crate::pb::{self, auto_scaler_service_server::AutoScalerService};
use crate::service::AppState;
use crate::service::cycle::{self, CycleMode, CycleReport};
use crate::service::engine::{self, EvaluateOptions, Evaluation, Failure, FailureKind, Selection};
use crate::service::replay;

/// Most campaigns one `EvaluateCampaigns` call may name.
pub const MAX_CAMPAIGNS_PER_CALL: usize = 10_000;

/// Implements `autoscaler.v1.AutoScalerService`.
#[derive(Clone)]
pub struct AutoScalerApi {
    state: AppState,
}

impl AutoScalerApi {
    /// A handler over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn evaluation_to_pb(evaluation: &Evaluation) -> pb::CampaignEvaluation {
    let action = match evaluation {
        Evaluation::Recorded(record) => convert::action_to_pb(record),
        Evaluation::DryRun(action) => convert::new_action_to_pb(action),
    };
    pb::CampaignEvaluation {
        account_id: action.account_id.clone(),
        campaign_id: action.campaign_id.clone(),
        campaign_name: action.campaign_name.clone(),
        action: Some(action),
    }
}

fn failure_to_pb(f: &Failure) -> pb::CampaignFailure {
    pb::CampaignFailure {
        account_id: f.account_id.clone(),
        campaign_id: f.campaign_id.clone().unwrap_or_default(),
        error: f.error.clone(),
    }
}

fn report_to_pb(report: &CycleReport) -> pb::RunCycleResponse {
    pb::RunCycleResponse {
        cycle_id: report.cycle_id,
        start_time: Some(convert::timestamp(report.started_at)),
        end_time: Some(convert::timestamp(report.finished_at)),
        accounts: report.accounts as i64,
        campaigns_evaluated: report.campaigns_evaluated as i64,
        actions_by_type: report
            .by_type
            .iter()
            .map(|(t, n)| pb::ActionTypeCount { action_type: convert::action_type_to_pb(*t) as i32, count: *n })
            .collect(),
        executed: report.executed,
        pending_approval: report.pending_approval,
        failed: report.failed,
        expired: report.expired,
        failures: report.failures.iter().map(failure_to_pb).collect(),
        profiles_learned: report.profiles_learned,
        evaluations: report.evaluations.iter().map(evaluation_to_pb).collect(),
        unconfirmed: report.unconfirmed,
        still_running: false,
    }
}

/// The caller's deadline from the `grpc-timeout` header, if it sent one.
fn caller_deadline<T>(request: &Request<T>) -> Option<Duration> {
    let raw = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How long before the caller's deadline the answer is sent: enough for it
/// to travel back.
fn answer_margin(deadline: Duration) -> Duration {
    (deadline / 10).clamp(Duration::from_millis(100), Duration::from_secs(2))
}

#[tonic::async_trait]
impl AutoScalerService for AutoScalerApi {
    #[tracing::instrument(skip_all, fields(account_id = %request.get_ref().account_id, campaign_id = %request.get_ref().campaign_id))]
    async fn evaluate_campaign(
        &self,
        request: Request<pb::EvaluateCampaignRequest>,
    ) -> Result<Response<pb::EvaluateCampaignResponse>, Status> {
        let req = request.into_inner();
        let account = AccountId::parse(&req.account_id, "account_id")?;
        let campaign = CampaignId::parse(&req.campaign_id, "campaign_id")?;
        let options = EvaluateOptions { dry_run: req.dry_run, cycle_id: None };
        let only = [campaign];
        let mut outcome = engine::evaluate_account(&self.state, &account, Selection::Only(&only), options).await?;
        if let Some(evaluation) = outcome.evaluations.pop() {
            return Ok(Response::new(pb::EvaluateCampaignResponse { evaluation: Some(evaluation_to_pb(&evaluation)) }));
        }
        let failure = outcome.failures.pop().ok_or_else(|| Error::Internal("evaluation produced nothing".into()))?;
        Err(match failure.kind {
            FailureKind::NotFound => Error::NotFound { kind: "campaign", id: req.campaign_id },
            FailureKind::NoRule => Error::FailedPrecondition(failure.error),
            FailureKind::Other => Error::Platform(crate::error::PlatformFailure::transient(failure.error)),
        }
        .into())
    }

    #[tracing::instrument(skip_all, fields(account_id = %request.get_ref().account_id))]
    async fn evaluate_campaigns(
        &self,
        request: Request<pb::EvaluateCampaignsRequest>,
    ) -> Result<Response<pb::EvaluateCampaignsResponse>, Status> {
        let req = request.into_inner();
        let account = AccountId::parse(&req.account_id, "account_id")?;
        if req.campaign_ids.len() > MAX_CAMPAIGNS_PER_CALL {
            return Err(Error::invalid("campaign_ids", format!("at most {MAX_CAMPAIGNS_PER_CALL} per call")).into());
        }
        let mut ids = Vec::with_capacity(req.campaign_ids.len());
        for (i, raw) in req.campaign_ids.iter().enumerate() {
            let id = CampaignId::parse(raw, &format!("campaign_ids[{i}]"))?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let selection = if ids.is_empty() { Selection::AllActive } else { Selection::Only(&ids) };
        let options = EvaluateOptions { dry_run: req.dry_run, cycle_id: None };
        let outcome = engine::evaluate_account(&self.state, &account, selection, options).await?;
        Ok(Response::new(pb::EvaluateCampaignsResponse {
            evaluations: outcome.evaluations.iter().map(evaluation_to_pb).collect(),
            failures: outcome.failures.iter().map(failure_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn run_cycle(&self, request: Request<pb::RunCycleRequest>) -> Result<Response<pb::RunCycleResponse>, Status> {
        let deadline = caller_deadline(&request);
        let started_at = chrono::Utc::now();
        let req = request.into_inner();
        let mode = match pb::CycleMode::try_from(req.mode).map_err(|_| Error::invalid("mode", "unknown cycle mode"))? {
            pb::CycleMode::Unspecified | pb::CycleMode::Optimize => CycleMode::Optimize,
            pb::CycleMode::Learn => CycleMode::Learn,
            pb::CycleMode::Both => CycleMode::Both,
        };
        let mut accounts = Vec::with_capacity(req.account_ids.len());
        for (i, raw) in req.account_ids.iter().enumerate() {
            accounts.push(AccountId::parse(raw, &format!("account_ids[{i}]"))?);
        }
        // The cycle runs in a task of its own: it finishes (and releases its
        // lease, and records its end) whatever the caller does.
        let state = self.state.clone();
        let dry_run = req.dry_run;
        let (started_tx, mut started_rx) = tokio::sync::oneshot::channel();
        let mut cycle = tokio::spawn(async move {
            cycle::run_cycle_reporting(&state, mode, dry_run, &accounts, Some(started_tx)).await
        });
        let wait = deadline.map(|d| d.saturating_sub(answer_margin(d)));
        let finished = match wait {
            None => Some((&mut cycle).await),
            Some(wait) => tokio::time::timeout(wait, &mut cycle).await.ok(),
        };
        match finished {
            Some(joined) => {
                let report = joined.map_err(|e| Error::Internal(format!("the cycle task failed: {e}")))??;
                Ok(Response::new(report_to_pb(&report)))
            }
            None => {
                let cycle_id = started_rx.try_recv().unwrap_or_default();
                tracing::info!(cycle_id, "the caller's deadline is near; the cycle goes on in the background");
                Ok(Response::new(pb::RunCycleResponse {
                    cycle_id,
                    start_time: Some(convert::timestamp(started_at)),
                    still_running: true,
                    ..Default::default()
                }))
            }
        }
    }

    #[tracing::instrument(skip_all)]
    async fn get_dashboard(
        &self,
        request: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::GetDashboardResponse>, Status> {
        let response = super::dashboard::get_dashboard(&self.state, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all, fields(account_id = %request.get_ref().account_id))]
    async fn replay_rules(
        &self,
        request: Request<pb::ReplayRulesRequest>,
    ) -> Result<Response<pb::ReplayRulesResponse>, Status> {
        let req = replay_request(request.into_inner())?;
        let report = replay::replay(&self.state, req).await?;
        Ok(Response::new(replay_to_pb(&report)))
    }
}

/// A `ReplayRulesRequest` as the use case's request; errors name the field.
fn replay_request(req: pb::ReplayRulesRequest) -> Result<replay::ReplayRequest, Error> {
    let account = AccountId::parse(&req.account_id, "account_id")?;
    let end = match &req.end_time {
        Some(t) => convert::from_timestamp(t, "end_time")?,
        None => chrono::Utc::now(),
    };
    let start = match &req.start_time {
        Some(t) => convert::from_timestamp(t, "start_time")?,
        None => end - chrono::TimeDelta::days(7),
    };
    let candidate = match &req.candidate_rule {
        None => None,
        Some(rule) => {
            if !rule.account_id.is_empty() && rule.account_id != req.account_id {
                return Err(Error::invalid("candidate_rule.account_id", "must be empty or the request's account"));
            }
            let campaign = match rule.campaign_id.as_str() {
                "" => None,
                raw => Some(CampaignId::parse(raw, "candidate_rule.campaign_id")?),
            };
            let mut settings = convert::rule_settings_for_create(rule).map_err(convert::within("candidate_rule"))?;
            if settings.name.trim().is_empty() {
                settings.name = "Candidate".into();
            }
            settings.validate().map_err(Error::from).map_err(convert::within("candidate_rule"))?;
            Some((settings, campaign))
        }
    };
    if req.campaign_ids.len() > MAX_CAMPAIGNS_PER_CALL {
        return Err(Error::invalid("campaign_ids", format!("at most {MAX_CAMPAIGNS_PER_CALL} per call")));
    }
    let campaigns = req
        .campaign_ids
        .iter()
        .enumerate()
        .map(|(i, raw)| CampaignId::parse(raw, &format!("campaign_ids[{i}]")).map_err(Error::from))
        .collect::<Result<Vec<_>, Error>>()?;
    let approval = match pb::ReplayApprovalMode::try_from(req.approval_mode)
        .map_err(|_| Error::invalid("approval_mode", "unknown value"))?
    {
        pb::ReplayApprovalMode::Unspecified | pb::ReplayApprovalMode::Approve => replay::ApprovalMode::Approve,
        pb::ReplayApprovalMode::Reject => replay::ApprovalMode::Reject,
    };
    Ok(replay::ReplayRequest { account, start, end, candidate, campaigns, approval })
}

fn replay_to_pb(r: &replay::ReplayReport) -> pb::ReplayRulesResponse {
    use replay::Stop;
    let s = &r.summary;
    let decisions = r
        .decisions
        .iter()
        .map(|d| pb::ReplayDecision {
            decide_time: Some(convert::timestamp(d.decided_at)),
            campaign_id: d.campaign_id.clone(),
            rule_id: d.rule_id.unwrap_or(0),
            action_type: convert::action_type_to_pb(d.decision.action_type) as i32,
            old_budget_minor: d.decision.old_budget_minor,
            new_budget_minor: d.decision.new_budget_minor,
            applied: d.applied,
            requires_approval: d.decision.outcome == crate::domain::decision::Outcome::NeedsApproval,
            stop: match d.stop {
                None => pb::ReplayStop::Unspecified,
                Some(Stop::Cooldown) => pb::ReplayStop::Cooldown,
                Some(Stop::BudgetLimit) => pb::ReplayStop::BudgetLimit,
                Some(Stop::AccountCap) => pb::ReplayStop::AccountCap,
                Some(Stop::SpendSoFar) => pb::ReplayStop::SpendSoFar,
                Some(Stop::Other) => pb::ReplayStop::Other,
                Some(Stop::Rejected) => pb::ReplayStop::Rejected,
            } as i32,
            limited: d.limited,
            reason: d.decision.reason.clone(),
            metrics: Some(convert::metrics_to_pb(&d.metrics, &r.currency)),
            metrics_recorded: d.metrics_recorded,
            recorded_action_id: d.recorded.map_or(0, |(id, _)| id),
            same_as_recorded: d.recorded.is_some_and(|(_, same)| same),
        })
        .collect();
    pb::ReplayRulesResponse {
        notice: replay::NOTICE.to_owned(),
        start_time: Some(convert::timestamp(r.start)),
        end_time: Some(convert::timestamp(r.end)),
        currency: r.currency.clone(),
        data_source: replay::DATA_SOURCE.to_owned(),
        decisions,
        summary: Some(pb::ReplaySummary {
            steps: s.steps,
            campaigns: s.campaigns,
            decisions: s.decisions,
            decisions_by_type: s
                .by_type
                .values()
                .map(|(t, n)| pb::ActionTypeCount { action_type: convert::action_type_to_pb(*t) as i32, count: *n })
                .collect(),
            applied: s.applied,
            needed_approval: s.needed_approval,
            stopped_by_cooldown: s.stopped_by_cooldown,
            stopped_by_limits: s.stopped_by_limits,
            limited: s.limited,
            stopped_other: s.stopped_other,
            total_increase_minor: s.total_increase_minor,
            total_decrease_minor: s.total_decrease_minor,
            compared_with_recorded: s.compared_with_recorded,
            same_as_recorded: s.same_as_recorded,
        }),
        truncated: r.truncated,
        notes: r.notes.clone(),
    }
}
