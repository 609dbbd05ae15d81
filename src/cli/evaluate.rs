//! `autoscaler evaluate`: evaluate one campaign, a list of campaigns (sent in
//! chunks, with "n/total" progress) or every active campaign of an account.
use clap::Args;

use super::format::{self, Table};
use super::progress::Progress;
use super::{CliError, Ctx, Outcome};
use crate::pb::{self, auto_scaler_service_client::AutoScalerServiceClient};

/// Campaigns per `EvaluateCampaigns` call when a list is given.
const CHUNK: usize = 200;

/// Flags of `evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Ad account (`act_...`).
    #[arg(long)]
    pub account: String,
    /// Campaign to evaluate; repeatable. None: every active campaign.
    #[arg(long = "campaign", value_name = "ID")]
    pub campaigns: Vec<String>,
    /// Decide only: record nothing and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `evaluate`. Exit code 2 when some campaigns could not be evaluated.
pub(super) async fn run(ctx: &Ctx, args: EvaluateArgs) -> Result<Outcome, CliError> {
    let mut client = AutoScalerServiceClient::new(ctx.channel.clone());
    let mut campaigns = args.campaigns;
    let mut seen = std::collections::HashSet::new();
    campaigns.retain(|c| seen.insert(c.clone()));
    if let [campaign] = campaigns.as_slice() {
        let req = pb::EvaluateCampaignRequest {
            account_id: args.account.clone(),
            campaign_id: campaign.clone(),
            dry_run: args.dry_run,
        };
        let resp = client.evaluate_campaign(req).await?.into_inner();
        ctx.print(&resp, || resp.evaluation.as_ref().map(|e| details(e, args.dry_run)).unwrap_or_default())?;
        return Ok(Outcome::Success);
    }
    let merged = if campaigns.is_empty() {
        let progress = Progress::start(format!("evaluating every active campaign of {}", args.account));
        let req = pb::EvaluateCampaignsRequest {
            account_id: args.account.clone(),
            campaign_ids: Vec::new(),
            dry_run: args.dry_run,
        };
        let resp = client.evaluate_campaigns(req).await;
        progress.finish();
        resp?.into_inner()
    } else {
        evaluate_chunks(&mut client, &args.account, &campaigns, args.dry_run).await?
    };
    ctx.print(&merged, || table(&merged, args.dry_run))?;
    Ok(if merged.failures.is_empty() { Outcome::Success } else { Outcome::Partial })
}

/// Evaluates `campaigns` in chunks of [`CHUNK`], merging the answers. If the
/// first call fails nothing was done and its status is the error; a later
/// failing chunk lists its campaigns as failures and the rest still run, since
/// the earlier chunks were already applied and must be reported.
async fn evaluate_chunks(
    client: &mut AutoScalerServiceClient<super::Connection>,
    account: &str,
    campaigns: &[String],
    dry_run: bool,
) -> Result<pb::EvaluateCampaignsResponse, CliError> {
    let total = campaigns.len();
    let progress = Progress::start(format!("evaluating 0/{total} campaigns"));
    let mut merged = pb::EvaluateCampaignsResponse::default();
    let mut done = 0;
    for chunk in campaigns.chunks(CHUNK) {
        let req =
            pb::EvaluateCampaignsRequest { account_id: account.to_owned(), campaign_ids: chunk.to_vec(), dry_run };
        match client.evaluate_campaigns(req).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                merged.evaluations.extend(resp.evaluations);
                merged.failures.extend(resp.failures);
            }
            Err(status) if done == 0 => return Err(status.into()),
            Err(status) => {
                merged.failures.extend(chunk.iter().map(|c| pb::CampaignFailure {
                    account_id: account.to_owned(),
                    campaign_id: c.clone(),
                    error: format!("{:?}: {}", status.code(), status.message()),
                }));
            }
        }
        done += chunk.len();
        progress.set(format!("evaluating {done}/{total} campaigns"));
    }
    progress.finish();
    Ok(merged)
}

fn table(resp: &pb::EvaluateCampaignsResponse, dry_run: bool) -> String {
    let mut out = String::new();
    if !resp.evaluations.is_empty() {
        let headers = ["CAMPAIGN", "DECISION", "STATUS", "OLD", "NEW", "ROAS", "SPEND"];
        let mut t = Table::new(&headers).right(&[3, 4, 5, 6]).note("NAME: REASON");
        for e in &resp.evaluations {
            let Some(a) = e.action.as_ref() else {
                t.row_with_note(vec![e.campaign_id.clone()], e.campaign_name.clone());
                continue;
            };
            let m = a.metrics.clone().unwrap_or_default();
            t.row_with_note(
                vec![
                    e.campaign_id.clone(),
                    format::decision_short(a.action_type),
                    format::status_short(a.status),
                    format::money(a.old_budget_minor, &a.currency),
                    format::money(a.new_budget_minor, &a.currency),
                    format!("{:.2}", m.roas),
                    format::money(m.spend_minor, &m.currency),
                ],
                format!("{}: {}", e.campaign_name, a.reason),
            );
        }
        out.push_str(&t.render());
    }
    if !resp.failures.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&failures(&resp.failures));
    }
    let mode = if dry_run { " (dry run: nothing recorded or changed)" } else { "" };
    out.push_str(&format!("{} evaluated, {} failed{mode}\n", resp.evaluations.len(), resp.failures.len()));
    out
}

/// The failures block shared with `run-cycle`.
pub(super) fn failures(list: &[pb::CampaignFailure]) -> String {
    let mut t = Table::new(&["FAILED ACCOUNT", "CAMPAIGN", "ERROR"]).wrap(&[2]);
    for f in list {
        let campaign = if f.campaign_id.is_empty() { "(whole account)".into() } else { f.campaign_id.clone() };
        t.row(vec![f.account_id.clone(), campaign, f.error.clone()]);
    }
    t.render()
}

/// One evaluation in full.
fn details(e: &pb::CampaignEvaluation, dry_run: bool) -> String {
    let pairs = match &e.action {
        Some(a) => super::actions::action_pairs(a),
        None => vec![("account", e.account_id.clone()), ("campaign", format!("{} {}", e.campaign_id, e.campaign_name))],
    };
    let mut out = format::key_values(&pairs);
    if dry_run {
        out.push_str("(dry run: nothing recorded or changed)\n");
    }
    out
}
