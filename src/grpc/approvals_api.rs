//! `ApprovalsService`: pending actions, decisions, history and the live stream.
use std::pin::Pin;

use futures_util::Stream;
use tonic::{Request, Response, Status};

use crate::pb::{self, approvals_service_server::ApprovalsService};
use crate::service::AppState;

/// Implements `autoscaler.v1.ApprovalsService`.
#[derive(Clone)]
pub struct ApprovalsApi {
    #[allow(dead_code)]
    state: AppState,
}

impl ApprovalsApi {
    /// A handler over the shared state.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The stream type of `WatchActions`.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchActionsResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ApprovalsService for ApprovalsApi {
    type WatchActionsStream = WatchStream;

    async fn list_pending_actions(
        &self,
        _request: Request<pb::ListPendingActionsRequest>,
    ) -> Result<Response<pb::ListPendingActionsResponse>, Status> {
        Err(Status::unimplemented("ListPendingActions is not implemented yet"))
    }

    async fn decide_action(
        &self,
        _request: Request<pb::DecideActionRequest>,
    ) -> Result<Response<pb::DecideActionResponse>, Status> {
        Err(Status::unimplemented("DecideAction is not implemented yet"))
    }

    async fn list_action_history(
        &self,
        _request: Request<pb::ListActionHistoryRequest>,
    ) -> Result<Response<pb::ListActionHistoryResponse>, Status> {
        Err(Status::unimplemented("ListActionHistory is not implemented yet"))
    }

    async fn watch_actions(
        &self,
        _request: Request<pb::WatchActionsRequest>,
    ) -> Result<Response<Self::WatchActionsStream>, Status> {
        Err(Status::unimplemented("WatchActions is not implemented yet"))
    }
}
