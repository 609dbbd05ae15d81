//! `ApprovalsService`: pending actions, decisions, one action, history and the
//! live stream.
use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::convert::{self, action_to_pb, timestamp, within};
use super::page_token;
use crate::domain::action::Verdict;
use crate::domain::ids::{AccountId, CampaignId};
use crate::error::{Error, Result};
use crate::pb::{self, approvals_service_server::ApprovalsService};
use crate::persistence::history::{ActionEvent, ActionFilter, EventKind};
use crate::service::approvals::Review;
use crate::service::history::{WatchEnd, WatchSettings, WatchStart, Watchers};
use crate::service::{self, AppState};

/// Longest decision comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;
/// Longest decider name, in characters.
pub const MAX_DECIDED_BY_CHARS: usize = 200;

/// Implements `autoscaler.v1.ApprovalsService`.
#[derive(Clone)]
pub struct ApprovalsApi {
    state: AppState,
    watchers: Watchers,
    watch_quota: super::limits::StreamQuota,
}

impl ApprovalsApi {
    /// A handler over the shared state, with the default stream settings.
    pub fn new(state: AppState) -> Self {
        Self::with_watch_settings(state, WatchSettings::default())
    }

    /// A handler whose `WatchActions` streams use `settings`.
    pub fn with_watch_settings(state: AppState, settings: WatchSettings) -> Self {
        let watchers = Watchers::new(&state, settings);
        let watch_quota = super::limits::StreamQuota::new(super::limits::LimitsConfig::default().max_watch_streams);
        Self { state, watchers, watch_quota }
    }

    /// At most `limit` open `WatchActions` streams per principal.
    pub fn with_watch_limit(mut self, limit: usize) -> Self {
        self.watch_quota = super::limits::StreamQuota::new(limit);
        self
    }

    /// The live streams of this handler (their count is a health figure).
    pub fn watchers(&self) -> &Watchers {
        &self.watchers
    }
}

/// Who decides an action. With authentication on it is the authenticated
/// principal, and a `decided_by` in the request is ignored (the contract:
/// "once callers authenticate, the authenticated principal is recorded
/// instead"), so nobody can record a decision in someone else's name. With
/// authentication off (loopback only) the request's `decided_by` is required.
fn decider(request: &Request<pb::DecideActionRequest>) -> Result<String> {
    if let Some(principal) = super::authenticated(request) {
        if !request.get_ref().decided_by.trim().is_empty() {
            tracing::debug!(principal = %principal.name, "decided_by ignored: the authenticated principal is recorded");
        }
        return Ok(principal.name.clone());
    }
    let raw = request.get_ref().decided_by.trim();
    if raw.is_empty() {
        return Err(Error::invalid("decided_by", "is required when callers do not authenticate"));
    }
    if raw.chars().count() > MAX_DECIDED_BY_CHARS {
        return Err(Error::invalid("decided_by", format!("must be at most {MAX_DECIDED_BY_CHARS} characters")));
    }
    if raw.chars().any(char::is_control) {
        return Err(Error::invalid("decided_by", "must not contain control characters"));
    }
    Ok(raw.to_owned())
}

/// Validates a decision request (everything but the decider).
fn review_from_pb(req: &pb::DecideActionRequest, decided_by: String) -> Result<Review> {
    if req.action_id <= 0 {
        return Err(Error::invalid("action_id", "must be a positive action id"));
    }
    let verdict = match pb::Decision::try_from(req.decision) {
        Ok(pb::Decision::Approve) => Verdict::Approve,
        Ok(pb::Decision::Reject) => Verdict::Reject,
        Ok(pb::Decision::Unspecified) => return Err(Error::invalid("decision", "must be APPROVE or REJECT")),
        Err(_) => return Err(Error::invalid("decision", "unknown decision")),
    };
    if req.comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(Error::invalid("comment", format!("must be at most {MAX_COMMENT_CHARS} characters")));
    }
    // Line breaks and tabs are fine in a comment; NUL and the other control
    // characters are not (PostgreSQL cannot even store NUL in text).
    if req.comment.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Error::invalid("comment", "must not contain control characters other than line breaks and tabs"));
    }
    let comment = (!req.comment.trim().is_empty()).then(|| req.comment.clone());
    Ok(Review { action_id: req.action_id, verdict, decided_by, comment })
}

/// Validates a filter; errors name `filter.<field>`.
fn filter_from_pb(filter: Option<&pb::ActionFilter>) -> Result<ActionFilter> {
    let Some(f) = filter else { return Ok(ActionFilter::default()) };
    let parse = || -> Result<ActionFilter> {
        let filter = ActionFilter {
            account_id: match f.account_id.as_str() {
                "" => None,
                raw => Some(AccountId::parse(raw, "account_id")?.as_str().to_owned()),
            },
            campaign_id: match f.campaign_id.as_str() {
                "" => None,
                raw => Some(CampaignId::parse(raw, "campaign_id")?.as_str().to_owned()),
            },
            action_type: convert::action_type_from_pb(f.action_type, "action_type")?,
            status: convert::action_status_from_pb(f.status, "status")?,
            created_from: f.start_time.as_ref().map(|t| convert::from_timestamp(t, "start_time")).transpose()?,
            created_before: f.end_time.as_ref().map(|t| convert::from_timestamp(t, "end_time")).transpose()?,
        };
        if let (Some(from), Some(before)) = (filter.created_from, filter.created_before)
            && before <= from
        {
            return Err(Error::invalid("end_time", "must be after start_time"));
        }
        Ok(filter)
    };
    parse().map_err(within("filter"))
}

/// A stable fingerprint of a listing's parameters (FNV-1a), so a page token
/// only works with the filter it was issued for.
fn listing_scope(listing: &str, filter: &ActionFilter) -> String {
    let canonical = format!(
        "{}|{}|{}|{}|{}|{}",
        filter.account_id.as_deref().unwrap_or(""),
        filter.campaign_id.as_deref().unwrap_or(""),
        filter.action_type.map_or("", |t| t.as_str()),
        filter.status.map_or("", |s| s.as_str()),
        filter.created_from.map_or(String::new(), |t| t.timestamp_micros().to_string()),
        filter.created_before.map_or(String::new(), |t| t.timestamp_micros().to_string()),
    );
    let hash =
        canonical.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{listing}.{hash:016x}")
}

fn event_to_pb(event: &ActionEvent) -> pb::WatchActionsResponse {
    let kind = match event.kind {
        EventKind::Created => pb::ActionEventKind::Created,
        EventKind::StatusChanged => pb::ActionEventKind::StatusChanged,
    };
    pb::WatchActionsResponse {
        sequence: event.sequence,
        kind: kind as i32,
        event_time: Some(timestamp(event.event_time)),
        action: Some(action_to_pb(&event.action)),
    }
}

/// The status that ends a stream, with the sequence to resume after, also as
/// `ErrorInfo` metadata (`resume_after_sequence`) for clients.
fn end_status(end: WatchEnd) -> Status {
    let (code, reason, resume_after, message) = match end {
        WatchEnd::FellBehind { resume_after } => (
            tonic::Code::ResourceExhausted,
            "WATCH_FELL_BEHIND",
            resume_after,
            format!("fell too far behind; resume after sequence {resume_after}"),
        ),
        WatchEnd::Unavailable { resume_after } => (
            tonic::Code::Unavailable,
            "WATCH_UNAVAILABLE",
            resume_after,
            format!("the action event log cannot be read now; resume after sequence {resume_after}"),
        ),
    };
    let metadata: std::collections::HashMap<String, String> =
        [("resume_after_sequence".to_owned(), resume_after.to_string())].into();
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, "autoscaler.v1", metadata))
}

const PENDING_LISTING: &str = "pending";
const HISTORY_LISTING: &str = "history";

fn next_token(scope: &str, last_id: Option<i64>, more: bool) -> String {
    match last_id {
        Some(id) if more => page_token::encode(scope, &[id]),
        _ => String::new(),
    }
}

#[tonic::async_trait]
impl ApprovalsService for ApprovalsApi {
    /// The stream type of `WatchActions`.
    type WatchActionsStream = Pin<Box<dyn Stream<Item = Result<pb::WatchActionsResponse, Status>> + Send + 'static>>;

    #[tracing::instrument(skip_all)]
    async fn list_pending_actions(
        &self,
        request: Request<pb::ListPendingActionsRequest>,
    ) -> Result<Response<pb::ListPendingActionsResponse>, Status> {
        let req = request.into_inner();
        let account = match req.account_id.as_str() {
            "" => None,
            raw => Some(AccountId::parse(raw, "account_id")?),
        };
        let page_size = page_token::page_size(req.page_size)?;
        let scope_filter =
            ActionFilter { account_id: account.as_ref().map(|a| a.as_str().to_owned()), ..Default::default() };
        let scope = listing_scope(PENDING_LISTING, &scope_filter);
        let after_id = page_token::decode(&scope, 1, &req.page_token)?.map(|keys| keys[0]);
        let account_id = account.as_ref().map(AccountId::as_str);
        let (actions, more) = service::approvals::list_pending(&self.state, account_id, after_id, page_size).await?;
        Ok(Response::new(pb::ListPendingActionsResponse {
            next_page_token: next_token(&scope, actions.last().map(|a| a.id), more),
            actions: actions.iter().map(action_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(action_id = request.get_ref().action_id))]
    async fn decide_action(
        &self,
        request: Request<pb::DecideActionRequest>,
    ) -> Result<Response<pb::DecideActionResponse>, Status> {
        let decided_by = decider(&request)?;
        let decision = review_from_pb(request.get_ref(), decided_by)?;
        let action = service::approvals::decide(&self.state, decision).await?;
        Ok(Response::new(pb::DecideActionResponse { action: Some(action_to_pb(&action)) }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_action_history(
        &self,
        request: Request<pb::ListActionHistoryRequest>,
    ) -> Result<Response<pb::ListActionHistoryResponse>, Status> {
        let req = request.into_inner();
        let filter = filter_from_pb(req.filter.as_ref())?;
        let page_size = page_token::page_size(req.page_size)?;
        let scope = listing_scope(HISTORY_LISTING, &filter);
        let after_id = page_token::decode(&scope, 1, &req.page_token)?.map(|keys| keys[0]);
        let (actions, more) = service::history::list(&self.state, &filter, after_id, page_size).await?;
        Ok(Response::new(pb::ListActionHistoryResponse {
            next_page_token: next_token(&scope, actions.last().map(|a| a.id), more),
            actions: actions.iter().map(action_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(action_id = request.get_ref().action_id))]
    async fn get_action(
        &self,
        request: Request<pb::GetActionRequest>,
    ) -> Result<Response<pb::GetActionResponse>, Status> {
        let action_id = request.get_ref().action_id;
        if action_id <= 0 {
            return Err(Error::invalid("action_id", "must be a positive action id").into());
        }
        let action = service::history::get(&self.state, action_id).await?;
        Ok(Response::new(pb::GetActionResponse { action: Some(action_to_pb(&action)) }))
    }

    #[tracing::instrument(skip_all)]
    async fn watch_actions(
        &self,
        request: Request<pb::WatchActionsRequest>,
    ) -> Result<Response<Self::WatchActionsStream>, Status> {
        let principal = super::principal(&request);
        let req = request.into_inner();
        let filter = filter_from_pb(req.filter.as_ref())?;
        if req.after_sequence < 0 {
            return Err(Error::invalid("after_sequence", "must not be negative").into());
        }
        let replay_from = req.replay_from.as_ref().map(|t| convert::from_timestamp(t, "replay_from")).transpose()?;
        let start = WatchStart { after_sequence: req.after_sequence, replay_from };
        let permit = self.watch_quota.acquire(&principal)?;
        let events = self.watchers.watch(filter, start).await?;
        // The permit lives as long as the stream: the slot frees when the
        // stream ends or its client goes away.
        let stream = events.map(move |item| {
            let _open = &permit;
            match item {
                Ok(event) => Ok(event_to_pb(&event)),
                Err(end) => Err(end_status(end)),
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_differ_by_filter_and_listing() {
        let all = ActionFilter::default();
        let one = ActionFilter { account_id: Some("act_1".into()), ..Default::default() };
        assert_ne!(listing_scope(HISTORY_LISTING, &all), listing_scope(HISTORY_LISTING, &one));
        assert_ne!(listing_scope(HISTORY_LISTING, &all), listing_scope(PENDING_LISTING, &all));
        assert_eq!(listing_scope(HISTORY_LISTING, &one), listing_scope(HISTORY_LISTING, &one.clone()));
    }

    #[test]
    fn end_statuses_carry_the_resume_point() {
        let status = end_status(WatchEnd::FellBehind { resume_after: 42 });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("resume after sequence 42"));
        let info = status.get_details_error_info().map(|i| i.metadata.get("resume_after_sequence").cloned());
        assert_eq!(info, Some(Some("42".to_owned())));
    }
}
