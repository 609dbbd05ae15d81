//! `autoscaler actions watch`: a banner saying what it waits for, a header,
//! then every action event as it arrives, one line each cut to the terminal
//! (one protobuf JSON object per line with `--json`), until Ctrl-C; resumes
//! the stream where the server says when it ends it early. Maintain and
//! insufficient-data decisions are left out unless `--all` (or `--type`).
use std::io::IsTerminal;
use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;

use super::actions::WatchArgs;
use super::format;
use super::{CliError, Ctx, json};
use crate::pb::{self, approvals_service_client::ApprovalsServiceClient};

/// Columns of an event line before the reason: time, action id, campaign,
/// decision, status, budget change.
const TIME_WIDTH: usize = 5;
const ID_WIDTH: usize = 5;
const CAMPAIGN_WIDTH: usize = 15;
const DECISION_WIDTH: usize = 8;
const STATUS_WIDTH: usize = 8;
const BUDGET_WIDTH: usize = 9;

/// Least cells worth giving the reason on an event line.
const MIN_REASON_WIDTH: usize = 8;

/// Resumptions in a row (without an event in between) before giving up.
const MAX_RESUMES: u32 = 5;

/// Streams events until Ctrl-C (a success), stdout closes, or the stream fails.
pub(super) async fn run(
    ctx: &Ctx,
    client: &mut ApprovalsServiceClient<super::Connection>,
    args: WatchArgs,
) -> Result<(), CliError> {
    let filter = args.filter.to_pb();
    // Routine decisions drown the changes; asking for a type shows that type.
    let show_routine = args.all || args.filter.action_type.is_some();
    let width = format::terminal_width();
    let banner = banner(&args, show_routine, width);
    if ctx.json {
        // Stdout holds only the events; a person at a terminal still sees what it waits for.
        if std::io::stderr().is_terminal() {
            eprint!("{banner}");
        }
    } else if !format::emit(&format!("{banner}{}", header(width))) {
        return Ok(());
    }
    let mut after = args.after_sequence;
    let mut replay_from = args.replay_from.map(super::actions::timestamp);
    let mut resumes = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let req = pb::WatchActionsRequest { filter: Some(filter.clone()), after_sequence: after, replay_from };
        let opened = tokio::select! {
            opened = client.watch_actions(req) => opened,
            _ = &mut ctrl_c => return stopped(after),
        };
        let mut stream = opened.map_err(|s| with_hint(s.into(), after))?.into_inner();
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                _ = &mut ctrl_c => return stopped(after),
            };
            match next {
                Ok(Some(event)) => {
                    after = after.max(event.sequence);
                    resumes = 0;
                    if !show_routine && is_routine(&event) {
                        continue;
                    }
                    let text =
                        if ctx.json { format!("{}\n", json::to_text(&event, false)?) } else { line(&event, width) };
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

/// Ctrl-C: a success, saying where to pick up again (on stderr: stdout is
/// the events).
fn stopped(after: i64) -> Result<(), CliError> {
    if after > 0 {
        eprintln!("stopped; resume with --after-sequence {after}");
    }
    Ok(())
}

/// A maintain or insufficient-data decision: nothing changed.
fn is_routine(event: &pb::WatchActionsResponse) -> bool {
    event.action.as_ref().is_some_and(|a| {
        matches!(
            pb::ActionType::try_from(a.action_type),
            Ok(pb::ActionType::Maintain | pb::ActionType::InsufficientData)
        )
    })
}

/// What the watch waits for, wrapped to the terminal.
fn banner(args: &WatchArgs, show_routine: bool, width: Option<usize>) -> String {
    let f = &args.filter;
    let mut what = match (&f.account, &f.campaign) {
        (Some(account), Some(campaign)) => format!("campaign {campaign} of {account}"),
        (Some(account), None) => format!("every campaign of {account}"),
        (None, Some(campaign)) => format!("campaign {campaign}"),
        (None, None) => "every account".to_owned(),
    };
    if let Some(status) = f.status {
        what.push_str(&format!(", status {}", format!("{status:?}").to_ascii_lowercase()));
    }
    let from = match (args.replay_from, args.after_sequence) {
        (Some(t), _) => format!("replaying from {}, then live", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        (None, 0) => "new events from now on".to_owned(),
        (None, seq) => format!("events after sequence {seq} (those recorded since, then live)"),
    };
    let routine =
        if show_routine { "" } else { " Maintain and insufficient-data decisions are hidden (--all shows them)." };
    let text = format!("Watching actions of {what}: {from}.{routine} Waiting for events; Ctrl-C stops.");
    let lines = match width {
        Some(w) => format::wrap_words(&text, w),
        None => vec![text],
    };
    lines.into_iter().map(|l| format!("{l}\n")).collect()
}

/// The column header of the event lines.
fn header(width: Option<usize>) -> String {
    let cells = ["UTC", "ID", "CAMPAIGN", "DECISION", "STATUS", "BUDGET", "REASON"];
    fit(&cells.map(str::to_owned), width)
}

/// One event as a line: time, the action, its status after the event and
/// its budget change, and as much of the reason as fits (`actions show ID`
/// prints it whole).
fn line(event: &pb::WatchActionsResponse, width: Option<usize>) -> String {
    let time =
        format::datetime(event.event_time.as_ref()).map_or_else(|| "-".to_owned(), |t| t.format("%H:%M").to_string());
    let Some(a) = &event.action else {
        let kind = pb::ActionEventKind::try_from(event.kind)
            .map_or_else(|_| event.kind.to_string(), |k| format::label(k.as_str_name(), "ACTION_EVENT_KIND_"));
        return format!("{time}  {kind}\n");
    };
    let budget = if a.old_budget_minor == a.new_budget_minor {
        format::money(a.new_budget_minor, &a.currency)
    } else {
        format!("{}→{}", format::money(a.old_budget_minor, &a.currency), format::money(a.new_budget_minor, &a.currency))
    };
    let cells = [
        time,
        a.id.to_string(),
        a.campaign_id.clone(),
        format::decision_short(a.action_type),
        format::status_short(a.status),
        budget,
        brief_reason(&a.reason).to_owned(),
    ];
    fit(&cells, width)
}

/// The part of a reason that matters most on one line: why a decision was
/// held back (`held: cooldown ...`) when it was, else the whole reason.
fn brief_reason(reason: &str) -> &str {
    reason.find("held: ").map_or(reason, |at| &reason[at..])
}

/// Lays out the seven cells at the fixed column widths (a longer cell pushes
/// the rest right) and cuts the last to the terminal width.
fn fit(cells: &[String; 7], width: Option<usize>) -> String {
    let widths = [TIME_WIDTH, ID_WIDTH, CAMPAIGN_WIDTH, DECISION_WIDTH, STATUS_WIDTH, BUDGET_WIDTH];
    let mut out = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        let pad = w.saturating_sub(format::display_width(cell));
        // The id and the budget are numbers: right-aligned.
        if i == 1 || i == 5 {
            out.push_str(&" ".repeat(pad));
            out.push_str(cell);
        } else {
            out.push_str(cell);
            out.push_str(&" ".repeat(pad));
        }
        out.push_str("  ");
    }
    let reason = &cells[6];
    match width {
        None => out.push_str(reason),
        Some(w) => {
            let room = w.saturating_sub(format::display_width(&out));
            if room >= MIN_REASON_WIDTH {
                out.push_str(&format::cut(reason, room));
            }
        }
    }
    format!("{}\n", out.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line_within_80_columns() {
        let action = pb::ScalingAction {
            id: 4321,
            campaign_id: "120000100000001".into(),
            action_type: pb::ActionType::ScaleUpAggressive as i32,
            status: pb::ActionStatus::PendingApproval as i32,
            currency: "USD".into(),
            old_budget_minor: 123_456,
            new_budget_minor: 160_493,
            reason: "ROAS 4.20 >= 4.00 and CTR 2.3% >= 2.0%: aggressive scale-up by 30%, needs approval".into(),
            ..Default::default()
        };
        let event = pb::WatchActionsResponse {
            sequence: 7,
            kind: pb::ActionEventKind::Created as i32,
            event_time: Some(prost_types::Timestamp { seconds: 3_600 * 5 + 7, nanos: 0 }),
            action: Some(action),
        };
        let text = line(&event, Some(80));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.chars().count() <= 81, "{text}");
        assert!(
            text.starts_with("05:00   4321  120000100000001  up fast   pending   $1,234.56→$1,604.93  ROAS…"),
            "{text}"
        );
        let header = header(Some(80));
        assert_eq!(header.find("CAMPAIGN"), text.find("120000100000001"), "{header}{text}");
        assert_eq!(brief_reason("ROAS 3.4x (>3.0x); held: cooldown 8h"), "held: cooldown 8h");
        assert!(is_routine(&pb::WatchActionsResponse {
            action: Some(pb::ScalingAction { action_type: pb::ActionType::Maintain as i32, ..Default::default() }),
            ..Default::default()
        }));
    }
}
