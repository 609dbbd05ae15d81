//! `autoscaler dashboard`: what the auto-scaler did over the last days,
//! overall and per account (`GetDashboard`).
use clap::Args;

use super::format::{self, Table};
use super::{CliError, Ctx, Outcome};
use crate::pb::{self, auto_scaler_service_client::AutoScalerServiceClient};

/// Flags of `dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Length of the period ending now, in days (server default 7).
    #[arg(long, default_value_t = 0)]
    pub days: i32,
    /// Only this ad account.
    #[arg(long)]
    pub account: Option<String>,
}

/// Runs `dashboard`.
pub(super) async fn run(ctx: &Ctx, args: DashboardArgs) -> Result<Outcome, CliError> {
    let mut client = AutoScalerServiceClient::new(ctx.channel.clone());
    let req = pb::GetDashboardRequest { days: args.days, account_id: args.account.unwrap_or_default() };
    let resp = client.get_dashboard(req).await?.into_inner();
    ctx.print(&resp, || render(&resp))?;
    Ok(Outcome::Success)
}

/// Amounts of several currencies as `$12.00, 300 JPY`, or "-".
fn amounts(list: &[pb::CurrencyAmount]) -> String {
    if list.is_empty() {
        return "-".to_owned();
    }
    list.iter().map(|a| format::money(a.amount_minor, &a.currency)).collect::<Vec<_>>().join(", ")
}

fn by_type(counts: &[pb::ActionTypeCount]) -> String {
    if counts.is_empty() {
        return "-".to_owned();
    }
    counts.iter().map(|c| format!("{} {}", format::action_type(c.action_type), c.count)).collect::<Vec<_>>().join(", ")
}

/// Map entries ordered by key.
fn sorted<V>(map: &std::collections::HashMap<String, V>) -> Vec<(&String, &V)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn render(d: &pb::GetDashboardResponse) -> String {
    let mut out =
        format!("period {} .. {}\n\n", format::time(d.start_time.as_ref()), format::time(d.end_time.as_ref()));
    let f = d.overall.clone().unwrap_or_default();
    out.push_str(&format::key_values(&[
        ("total actions", f.total_actions.to_string()),
        ("executed", f.executed.to_string()),
        ("pending", f.pending.to_string()),
        ("rejected", f.rejected.to_string()),
        ("failed", f.failed.to_string()),
        ("execution rate", format!("{:.1}%", f.execution_rate_percent)),
        ("automation rate", format!("{:.1}%", f.automation_rate_percent)),
        ("by type", by_type(&f.actions_by_type)),
        ("budget increase", amounts(&f.total_increase)),
        ("budget decrease", amounts(&f.total_decrease)),
        ("net change", amounts(&f.net_change)),
        ("average roas", format!("{:.2}", f.average_roas)),
        ("revenue tracked", amounts(&f.revenue_tracked)),
        ("low-roas spend, 1st half", amounts(&f.low_roas_spend_before)),
        ("low-roas spend, 2nd half", amounts(&f.low_roas_spend_after)),
        ("median response", format!("{:.0}s", f.median_response_seconds)),
    ]));
    if d.by_account.is_empty() {
        return out;
    }
    // The execution rate is in the overall figures above; without it the
    // table fits 80 columns.
    let headers = ["ACCOUNT", "ACTIONS", "EXECUTED", "PENDING", "REJECTED", "FAILED", "AVG ROAS", "NET CHANGE"];
    let mut t = Table::new(&headers).right(&[1, 2, 3, 4, 5, 6]).wrap(&[7]);
    for (account, f) in sorted(&d.by_account) {
        t.row(vec![
            account.clone(),
            f.total_actions.to_string(),
            f.executed.to_string(),
            f.pending.to_string(),
            f.rejected.to_string(),
            f.failed.to_string(),
            format!("{:.2}", f.average_roas),
            amounts(&f.net_change),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}
