//! `autoscaler actions watch`: prints every action event as it arrives (one
//! line each; one JSON object per line with `--json`) until Ctrl-C, resuming
//! the stream where the server says when it ends it early.
use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;

use super::actions::WatchArgs;
use super::format;
use super::{CliError, Ctx, json};
use crate::pb::{self, approvals_service_client::ApprovalsServiceClient};

/// Resumptions in a row (without an event in between) before giving up.
const MAX_RESUMES: u32 = 5;

/// Streams events until Ctrl-C (a success), stdout closes, or the stream fails.
pub(super) async fn run(
    ctx: &Ctx,
    client: &mut ApprovalsServiceClient<super::Connection>,
    args: WatchArgs,
) -> Result<(), CliError> {
    let filter = args.filter.to_pb();
    let mut after = args.after_sequence;
    let mut replay_from = args.replay_from.map(super::actions::timestamp);
    let mut resumes = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let req = pb::WatchActionsRequest { filter: Some(filter.clone()), after_sequence: after, replay_from };
        let opened = tokio::select! {
            opened = client.watch_actions(req) => opened,
            _ = &mut ctrl_c => return Ok(()),
        };
        let mut stream = opened.map_err(|s| with_hint(s.into(), after))?.into_inner();
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                _ = &mut ctrl_c => return Ok(()),
            };
            match next {
                Ok(Some(event)) => {
                    after = after.max(event.sequence);
                    resumes = 0;
                    let text = if ctx.json { format!("{}\n", json::watch_event(&event)) } else { line(&event) };
                    if !format::emit(&text) {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    return Err(with_hint(CliError::new(Code::Unavailable, "the server closed the stream"), after));
                }
                Err(status) => match resume_after(&status) {
                    Some(seq) if resumes < MAX_RESUMES => {
                        resumes += 1;
                        after = seq;
                        eprintln!("note: {}; resuming after sequence {seq}", status.message());
                        tokio::time::sleep(Duration::from_millis(500) * resumes).await;
                        break;
                    }
                    _ => return Err(with_hint(status.into(), after)),
                },
            }
        }
        // A resumed stream continues from `after`; a replay was already delivered.
        replay_from = None;
    }
}

/// Adds how to pick up where the stream stopped.
fn with_hint(mut err: CliError, after: i64) -> CliError {
    if after > 0 {
        err.message = format!("{} (resume with --after-sequence {after})", err.message);
    }
    err
}

/// The sequence a server said to resume after when it ended the stream early
/// (fell behind, event log unreadable), from its `ErrorInfo` metadata.
fn resume_after(status: &tonic::Status) -> Option<i64> {
    if !matches!(status.code(), Code::ResourceExhausted | Code::Unavailable) {
        return None;
    }
    status.get_details_error_info()?.metadata.get("resume_after_sequence")?.parse().ok()
}

/// One event as a line: time, sequence, what happened, and the action.
fn line(event: &pb::WatchActionsResponse) -> String {
    let kind = pb::ActionEventKind::try_from(event.kind)
        .map_or_else(|_| event.kind.to_string(), |k| format::label(k.as_str_name(), "ACTION_EVENT_KIND_"));
    let head = format!("{}  #{:<6} {kind:<14}", format::time(event.event_time.as_ref()), event.sequence);
    let Some(a) = &event.action else {
        return format!("{}\n", head.trim_end());
    };
    format!(
        "{head} action {:<6} {}/{:<18} {:<20} {:<16} {} -> {}  {}\n",
        a.id,
        a.account_id,
        a.campaign_id,
        format::action_type(a.action_type),
        format::action_status(a.status),
        format::money(a.old_budget_minor, &a.currency),
        format::money(a.new_budget_minor, &a.currency),
        format::truncate(&a.reason, 80),
    )
}
