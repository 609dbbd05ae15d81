//! `AutoScalerService`: evaluate campaigns, run cycles, dashboard.
use tonic::{Request, Response, Status};

use super::convert;
use crate::domain::ids::{AccountId, CampaignId};
use crate::error::Error;
use crate::pb::{self, auto_scaler_service_server::AutoScalerService};
use crate::service::AppState;
use crate::service::cycle::{self, CycleMode, CycleReport};
use crate::service::engine::{self, EvaluateOptions, Evaluation, Failure, FailureKind, Selection};

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
    }
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
            FailureKind::Other => Error::Platform(failure.error),
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
        let report = cycle::run_cycle(&self.state, mode, req.dry_run, &accounts).await?;
        Ok(Response::new(report_to_pb(&report)))
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
        let _ = request;
        Err(Status::unimplemented("ReplayRules is not implemented yet"))
    }
}
