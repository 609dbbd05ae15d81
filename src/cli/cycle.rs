//! `autoscaler run-cycle`: run the hourly optimization now on the server
//! (`RunCycle`), with a progress line while it runs.
use clap::{Args, ValueEnum};

use super::format::{self, Table};
use super::progress::Progress;
use super::{CliError, Ctx, Outcome};
use crate::pb::{self, auto_scaler_service_client::AutoScalerServiceClient};

/// Flags of `run-cycle`.
#[derive(Debug, Args)]
pub struct RunCycleArgs {
    /// What the cycle does.
    #[arg(long, value_enum, default_value = "optimize")]
    pub mode: ModeArg,
    /// Decide only: record nothing and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Limit the cycle to this account; repeatable. None: every account.
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub accounts: Vec<String>,
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Read performance, decide, execute, expire stale approvals.
    Optimize,
    /// Relearn the hour-of-day profiles.
    Learn,
    /// Both, optimize first.
    Both,
}

/// Runs `run-cycle`. Exit code 2 when some accounts or campaigns failed.
pub(super) async fn run(ctx: &Ctx, args: RunCycleArgs) -> Result<Outcome, CliError> {
    let mut client = AutoScalerServiceClient::new(ctx.channel.clone());
    let mode = match args.mode {
        ModeArg::Optimize => pb::CycleMode::Optimize,
        ModeArg::Learn => pb::CycleMode::Learn,
        ModeArg::Both => pb::CycleMode::Both,
    };
    let req = pb::RunCycleRequest { mode: mode as i32, dry_run: args.dry_run, account_ids: args.accounts };
    let progress = Progress::start("running the cycle");
    let resp = client.run_cycle(req).await;
    progress.finish();
    let resp = resp?.into_inner();
    ctx.print(&resp, || render(&resp, args.dry_run))?;
    Ok(if resp.failures.is_empty() { Outcome::Success } else { Outcome::Partial })
}

fn render(r: &pb::RunCycleResponse, dry_run: bool) -> String {
    let by_type = r
        .actions_by_type
        .iter()
        .map(|c| format!("{} {}", format::action_type(c.action_type), c.count))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format::key_values(&[
        ("cycle", if dry_run { "dry run (nothing recorded or changed)".into() } else { r.cycle_id.to_string() }),
        ("started", format::time(r.start_time.as_ref())),
        ("finished", format::time(r.end_time.as_ref())),
        ("accounts", r.accounts.to_string()),
        ("campaigns evaluated", r.campaigns_evaluated.to_string()),
        ("decisions", if by_type.is_empty() { "-".into() } else { by_type }),
        ("executed", r.executed.to_string()),
        ("pending approval", r.pending_approval.to_string()),
        ("failed", r.failed.to_string()),
        ("expired", r.expired.to_string()),
        ("profiles learned", r.profiles_learned.to_string()),
    ]);
    if !r.evaluations.is_empty() {
        let headers = ["ACCOUNT", "CAMPAIGN", "DECISION", "STATUS", "OLD", "NEW"];
        let mut t = Table::new(&headers).right(&[4, 5]).note("REASON");
        for e in &r.evaluations {
            let a = e.action.clone().unwrap_or_default();
            t.row_with_note(
                vec![
                    e.account_id.clone(),
                    e.campaign_id.clone(),
                    format::decision_short(a.action_type),
                    format::status_short(a.status),
                    format::money(a.old_budget_minor, &a.currency),
                    format::money(a.new_budget_minor, &a.currency),
                ],
                a.reason,
            );
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if !r.failures.is_empty() {
        out.push('\n');
        out.push_str(&super::evaluate::failures(&r.failures));
    }
    out
}
