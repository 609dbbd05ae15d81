//! `autoscaler actions ...`: pending approvals, approve/reject, the action
//! history and the live stream, through `ApprovalsService`.
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use tonic::Code;

use super::format::{self, Table};
use super::{CliError, Ctx, Outcome};
use crate::pb::{self, approvals_service_client::ApprovalsServiceClient};

/// Largest page the server returns.
const MAX_PAGE: usize = 500;

/// `actions` subcommands.
#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// Actions waiting for approval, oldest first.
    Pending {
        /// Only this ad account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Approve a pending action; it is executed at once.
    Approve(DecideArgs),
    /// Reject a pending action; nothing changes on the platform.
    Reject(DecideArgs),
    /// One recorded action with every field: its metrics, reason, decision
    /// and outcome.
    Show(ShowArgs),
    /// Recorded actions, newest first.
    History(HistoryArgs),
    /// Print every new action and status change as it happens, one line
    /// each, until Ctrl-C (maintain and insufficient-data hidden unless `--all`).
    Watch(WatchArgs),
}

/// Flags of `actions show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Action id.
    pub id: i64,
    /// Only if the action belongs to this ad account (NotFound otherwise).
    #[arg(long)]
    pub account: Option<String>,
}

/// Flags of `actions approve` and `actions reject`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// Action id.
    pub id: i64,
    /// Comment stored with the decision.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Who decides, recorded when the server runs without API tokens (with
    /// tokens the authenticated principal is recorded); default: the login
    /// name (`$USER`).
    #[arg(long = "by", value_name = "NAME")]
    pub by: Option<String>,
}

/// Filters of `history` and `watch`.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only this ad account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only this campaign.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Only this action type.
    #[arg(long = "type", value_enum)]
    pub action_type: Option<TypeArg>,
    /// Only this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only actions created at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only actions created before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
}

/// Flags of `actions history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Which actions.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Most actions to print (pages are followed up to it); 0 for all.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// Flags of `actions watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Which actions.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Resume after this event sequence (the last one seen).
    #[arg(long, default_value_t = 0)]
    pub after_sequence: i64,
    /// Replay the events recorded at or after this time first (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub replay_from: Option<DateTime<Utc>>,
    /// Also print maintain and insufficient-data decisions (hidden by
    /// default unless `--type` asks for one: most cycles make many).
    #[arg(long)]
    pub all: bool,
}

/// `--type` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TypeArg {
    /// Aggressive scale-up.
    ScaleUpAggressive,
    /// Scale-up.
    ScaleUp,
    /// Scale-down.
    ScaleDown,
    /// Pause.
    Pause,
    /// No change.
    Maintain,
    /// Too little data to decide.
    InsufficientData,
}

/// `--status` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    /// Waiting for a human decision.
    PendingApproval,
    /// Approved, waiting for the executor.
    Approved,
    /// Being written to the platform.
    Executing,
    /// Sent, outcome not confirmed yet; the next cycle reads the platform.
    Unconfirmed,
    /// Written and read back.
    Executed,
    /// Could not be applied.
    Failed,
    /// Rejected by a person.
    Rejected,
    /// Waited too long for approval.
    Expired,
    /// Nothing to apply.
    Skipped,
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time like 2026-12-01T00:00:00Z: {e}"))
}

/// A time as a protobuf timestamp.
pub(super) fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    // `timestamp_subsec_nanos` is below 2e9 (leap seconds), so it fits an i32.
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

impl FilterArgs {
    /// The filter message these flags describe.
    pub(super) fn to_pb(&self) -> pb::ActionFilter {
        let action_type = self.action_type.map_or(pb::ActionType::Unspecified, |t| match t {
            TypeArg::ScaleUpAggressive => pb::ActionType::ScaleUpAggressive,
            TypeArg::ScaleUp => pb::ActionType::ScaleUp,
            TypeArg::ScaleDown => pb::ActionType::ScaleDown,
            TypeArg::Pause => pb::ActionType::Pause,
            TypeArg::Maintain => pb::ActionType::Maintain,
            TypeArg::InsufficientData => pb::ActionType::InsufficientData,
        });
        let status = self.status.map_or(pb::ActionStatus::Unspecified, |s| match s {
            StatusArg::PendingApproval => pb::ActionStatus::PendingApproval,
            StatusArg::Approved => pb::ActionStatus::Approved,
            StatusArg::Executing => pb::ActionStatus::Executing,
            StatusArg::Unconfirmed => pb::ActionStatus::Unconfirmed,
            StatusArg::Executed => pb::ActionStatus::Executed,
            StatusArg::Failed => pb::ActionStatus::Failed,
            StatusArg::Rejected => pb::ActionStatus::Rejected,
            StatusArg::Expired => pb::ActionStatus::Expired,
            StatusArg::Skipped => pb::ActionStatus::Skipped,
        });
        pb::ActionFilter {
            account_id: self.account.clone().unwrap_or_default(),
            campaign_id: self.campaign.clone().unwrap_or_default(),
            action_type: action_type as i32,
            status: status as i32,
            start_time: self.since.map(timestamp),
            end_time: self.until.map(timestamp),
        }
    }
}

/// Runs an `actions` subcommand.
pub(super) async fn run(ctx: &Ctx, command: ActionsCommand) -> Result<Outcome, CliError> {
    let mut client = ApprovalsServiceClient::new(ctx.channel.clone());
    match command {
        ActionsCommand::Pending { account } => {
            let mut actions = Vec::new();
            let mut page_token = String::new();
            loop {
                let account_id = account.clone().unwrap_or_default();
                let req = pb::ListPendingActionsRequest { account_id, page_size: MAX_PAGE as i32, page_token };
                let resp = client.list_pending_actions(req).await?.into_inner();
                actions.extend(resp.actions);
                if resp.next_page_token.is_empty() {
                    break;
                }
                page_token = resp.next_page_token;
            }
            let reply = pb::ListPendingActionsResponse { actions, next_page_token: String::new() };
            ctx.print(&reply, || table(&reply.actions, "no pending actions"))?;
        }
        ActionsCommand::Show(args) => show(ctx, &mut client, args).await?,
        ActionsCommand::Approve(args) => decide(ctx, &mut client, args, pb::Decision::Approve).await?,
        ActionsCommand::Reject(args) => decide(ctx, &mut client, args, pb::Decision::Reject).await?,
        ActionsCommand::History(args) => history(ctx, &mut client, args).await?,
        ActionsCommand::Watch(args) => super::watch::run(ctx, &mut client, args).await?,
    }
    Ok(Outcome::Success)
}

type Client = ApprovalsServiceClient<super::Connection>;

async fn decide(ctx: &Ctx, client: &mut Client, args: DecideArgs, decision: pb::Decision) -> Result<(), CliError> {
    let req = pb::DecideActionRequest {
        action_id: args.id,
        decision: decision as i32,
        comment: args.comment,
        decided_by: args.by.unwrap_or_else(login_name),
    };
    let resp = client.decide_action(req).await?.into_inner();
    ctx.print(&resp, || resp.action.as_ref().map(|a| format::key_values(&action_pairs(a))).unwrap_or_default())
}

/// Reads one action (`GetAction`) and prints it in full.
async fn show(ctx: &Ctx, client: &mut Client, args: ShowArgs) -> Result<(), CliError> {
    let resp = client.get_action(pb::GetActionRequest { action_id: args.id }).await?.into_inner();
    let Some(action) = resp.action else {
        return Err(CliError::new(Code::Internal, format!("the server answered without action {}", args.id)));
    };
    // An action of another account is, for this question, not there.
    if let Some(account) = args.account.as_deref()
        && action.account_id != account
    {
        return Err(CliError::new(
            Code::NotFound,
            format!("action {} belongs to {}, not to {account}", args.id, action.account_id),
        ));
    }
    ctx.print(&action, || format::key_values(&action_pairs(&action)))
}

/// The operator's login name, or empty (the server then asks for `--by`).
fn login_name() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_default()
}

async fn history(ctx: &Ctx, client: &mut Client, args: HistoryArgs) -> Result<(), CliError> {
    let filter = args.filter.to_pb();
    let limit = if args.limit == 0 { usize::MAX } else { args.limit };
    let mut actions = Vec::new();
    let mut page_token = String::new();
    let next_page_token = loop {
        let page_size = (limit - actions.len()).min(MAX_PAGE) as i32;
        let req = pb::ListActionHistoryRequest { filter: Some(filter.clone()), page_size, page_token };
        let resp = client.list_action_history(req).await?.into_inner();
        actions.extend(resp.actions);
        // A server may return more than asked: never print past the limit.
        actions.truncate(limit);
        if resp.next_page_token.is_empty() || actions.len() >= limit {
            break resp.next_page_token;
        }
        page_token = resp.next_page_token;
    };
    let reply = pb::ListActionHistoryResponse { actions, next_page_token };
    ctx.print(&reply, || table(&reply.actions, "no actions"))
}

/// The table of a list of actions: the reason wraps (under the row on a
/// narrow terminal); the account is a column only when the list holds
/// several.
pub(super) fn table(actions: &[pb::ScalingAction], empty: &str) -> String {
    if actions.is_empty() {
        return format!("{empty}\n");
    }
    let several_accounts = actions.iter().any(|a| a.account_id != actions[0].account_id);
    let mut headers = vec!["ID", "CREATED (UTC)"];
    if several_accounts {
        headers.push("ACCOUNT");
    }
    headers.extend(["CAMPAIGN", "DECISION", "STATUS", "OLD", "NEW"]);
    let money_columns: Vec<usize> = (headers.len() - 2..headers.len()).collect();
    let mut t = Table::new(&headers).right(&[0]).right(&money_columns).note("REASON");
    for a in actions {
        let mut cells = vec![a.id.to_string(), format::short_time(a.create_time.as_ref())];
        if several_accounts {
            cells.push(a.account_id.clone());
        }
        cells.extend([
            a.campaign_id.clone(),
            format::decision_short(a.action_type),
            format::status_short(a.status),
            format::money(a.old_budget_minor, &a.currency),
            format::money(a.new_budget_minor, &a.currency),
        ]);
        t.row_with_note(cells, a.reason.clone());
    }
    let mut out = String::new();
    if !several_accounts {
        out.push_str(&format!("account {}\n", actions[0].account_id));
    }
    out.push_str(&t.render());
    out
}

/// Every field of an action as label/value pairs, for detail views.
pub(super) fn action_pairs(a: &pb::ScalingAction) -> Vec<(&'static str, String)> {
    let c = a.currency.as_str();
    let m = a.metrics.clone().unwrap_or_default();
    let window = pb::MetricsWindow::try_from(m.window)
        .map_or_else(|_| m.window.to_string(), |w| format::label(w.as_str_name(), "METRICS_WINDOW_"));
    let level = pb::BudgetLevel::try_from(a.budget_level)
        .map_or_else(|_| a.budget_level.to_string(), |l| format::label(l.as_str_name(), "BUDGET_LEVEL_"));
    let mut pairs = vec![
        ("account", a.account_id.clone()),
        ("campaign", format!("{} {}", a.campaign_id, a.campaign_name).trim_end().to_owned()),
        ("action id", if a.id == 0 { "- (not recorded)".into() } else { a.id.to_string() }),
        ("decision", format::action_type(a.action_type)),
        ("status", format::action_status(a.status)),
        ("old budget", format::money(a.old_budget_minor, c)),
        ("new budget", format::money(a.new_budget_minor, c)),
        ("change", format!("{} ({:+.1}%)", format::money_change(a.change_minor, c), a.change_percent)),
        ("budget level", level),
        ("reason", a.reason.clone()),
        ("requires approval", a.requires_approval.to_string()),
        ("roas", format!("{:.2}", m.roas)),
        ("ctr %", format!("{:.2}", m.ctr_percent)),
        ("spend", format::money(m.spend_minor, &m.currency)),
        ("revenue", format::money(m.revenue_minor, &m.currency)),
        ("impressions / clicks / conversions", format!("{} / {} / {}", m.impressions, m.clicks, m.conversions)),
        ("window", format!("{window} ({} .. {})", m.window_start_date, m.window_end_date)),
        ("rule", if a.rule_id == 0 { "-".into() } else { a.rule_id.to_string() }),
        ("cycle", if a.cycle_id == 0 { "-".into() } else { a.cycle_id.to_string() }),
        ("created", format::time(a.create_time.as_ref())),
    ];
    if !a.decided_by.is_empty() || a.decide_time.is_some() {
        pairs.push(("decided", format!("{} by {}", format::time(a.decide_time.as_ref()), a.decided_by)));
    }
    if !a.decision_comment.is_empty() {
        pairs.push(("comment", a.decision_comment.clone()));
    }
    if a.execute_time.is_some() {
        pairs.push(("executed", format::time(a.execute_time.as_ref())));
    }
    if !a.error.is_empty() {
        pairs.push(("error", a.error.clone()));
    }
    if !a.resolution.is_empty() {
        pairs.push(("resolution", a.resolution.clone()));
    }
    if let Some(b) = &a.belief {
        let belief = format!(
            "ROAS {:.2}x ({:.0}% interval {:.2}-{:.2}x), {:.0}% of revenue still unreported",
            b.roas,
            b.credible_level * 100.0,
            b.low,
            b.high,
            b.unreported_share * 100.0
        );
        pairs.push(("estimate", belief));
    }
    pairs
}
