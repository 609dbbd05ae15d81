//! `AutoScalerService`: evaluate campaigns, run cycles, dashboard.
use tonic::{Request, Response, Status};

use crate::pb::{self, auto_scaler_service_server::AutoScalerService};
use crate::service::AppState;

/// Implements `autoscaler.v1.AutoScalerService`.
#[derive(Clone)]
pub struct AutoScalerApi {
    #[allow(dead_code)]
    state: AppState,
}

impl AutoScalerApi {
    /// A handler over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl AutoScalerService for AutoScalerApi {
    async fn evaluate_campaign(
        &self,
        _request: Request<pb::EvaluateCampaignRequest>,
    ) -> Result<Response<pb::EvaluateCampaignResponse>, Status> {
        Err(Status::unimplemented("EvaluateCampaign is not implemented yet"))
    }

    async fn evaluate_campaigns(
        &self,
        _request: Request<pb::EvaluateCampaignsRequest>,
    ) -> Result<Response<pb::EvaluateCampaignsResponse>, Status> {
        Err(Status::unimplemented("EvaluateCampaigns is not implemented yet"))
    }

    async fn run_cycle(
        &self,
        _request: Request<pb::RunCycleRequest>,
    ) -> Result<Response<pb::RunCycleResponse>, Status> {
        Err(Status::unimplemented("RunCycle is not implemented yet"))
    }

    async fn get_dashboard(
        &self,
        _request: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::GetDashboardResponse>, Status> {
        Err(Status::unimplemented("GetDashboard is not implemented yet"))
    }
}
