//! `TimeOptimizationService`: learned hour-of-day profiles and budget schedules.
use tonic::{Request, Response, Status};

use crate::pb::{self, time_optimization_service_server::TimeOptimizationService};
use crate::service::AppState;

/// Implements `autoscaler.v1.TimeOptimizationService`.
#[derive(Clone)]
pub struct TimeOptimizationApi {
    #[allow(dead_code)]
    state: AppState,
}

impl TimeOptimizationApi {
    /// A handler over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl TimeOptimizationService for TimeOptimizationApi {
    async fn learn_optimal_hours(
        &self,
        _request: Request<pb::LearnOptimalHoursRequest>,
    ) -> Result<Response<pb::LearnOptimalHoursResponse>, Status> {
        Err(Status::unimplemented("LearnOptimalHours is not implemented yet"))
    }

    async fn get_time_report(
        &self,
        _request: Request<pb::GetTimeReportRequest>,
    ) -> Result<Response<pb::GetTimeReportResponse>, Status> {
        Err(Status::unimplemented("GetTimeReport is not implemented yet"))
    }

    async fn get_budget_schedule(
        &self,
        _request: Request<pb::GetBudgetScheduleRequest>,
    ) -> Result<Response<pb::GetBudgetScheduleResponse>, Status> {
        Err(Status::unimplemented("GetBudgetSchedule is not implemented yet"))
    }
}
