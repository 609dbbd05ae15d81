//! `autoscaler replay`: replay the stored rules, or a candidate rule given
//! with the `rules create` flags, on an account's stored history through
//! `ReplayRules`. Read-only on the server; shows decisions, not outcomes.
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use clap::Args;
use tonic::Code;

use super::format::{self, Table};
use super::rules::RuleFields;
use super::{CliError, Ctx, Outcome};
use crate::pb::{self, auto_scaler_service_client::AutoScalerServiceClient};

/// Flags of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Ad account (`act_...`).
    #[arg(long)]
    pub account: String,
    /// Start of the period: RFC 3339 or a date (UTC midnight). Default: `--days` before the end.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the period (exclusive): RFC 3339 or a date. Default: now.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Length of the period when `--from` is not given.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Only this campaign; repeatable.
    #[arg(long = "campaign", value_name = "ID")]
    pub campaigns: Vec<String>,
    /// Replay a candidate rule (the rule flags below over the defaults)
    /// instead of the stored rules; implied by any rule flag.
    #[arg(long)]
    pub candidate: bool,
    /// Limit the candidate rule to one campaign.
    #[arg(long, value_name = "ID")]
    pub candidate_campaign: Option<String>,
    /// Assume changes that need approval are rejected (default: approved at once).
    #[arg(long)]
    pub reject_approvals: bool,
    /// Candidate rule fields.
    #[command(flatten)]
    pub fields: RuleFields,
}

/// Runs `replay`.
pub(super) async fn run(ctx: &Ctx, args: ReplayArgs) -> Result<Outcome, CliError> {
    let end = args.to.as_deref().map(|t| parse_time(t, "--to")).transpose()?.unwrap_or_else(Utc::now);
    let start = match args.from.as_deref() {
        Some(t) => parse_time(t, "--from")?,
        None => end - TimeDelta::days(i64::from(args.days)),
    };
    let candidate = candidate_rule(&args);
    let req = pb::ReplayRulesRequest {
        account_id: args.account.clone(),
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(end)),
        candidate_rule: candidate,
        campaign_ids: args.campaigns.clone(),
        approval_mode: if args.reject_approvals {
            pb::ReplayApprovalMode::Reject
        } else {
            pb::ReplayApprovalMode::Approve
        } as i32,
    };
    let mut client = AutoScalerServiceClient::new(ctx.channel.clone());
    let resp = client.replay_rules(req).await?.into_inner();
    ctx.print(&resp, || table(&resp))?;
    Ok(Outcome::Success)
}

/// `2026-11-01T10:00:00Z` or `2026-11-01` (UTC midnight).
fn parse_time(raw: &str, flag: &str) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            CliError::new(Code::InvalidArgument, format!("{flag}: expected RFC 3339 or YYYY-MM-DD, got {raw:?}"))
        })
}

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// The candidate rule when asked for (or when any rule flag is given).
fn candidate_rule(args: &ReplayArgs) -> Option<pb::ScalingRule> {
    let f = &args.fields;
    let mut rule = pb::ScalingRule {
        account_id: args.account.clone(),
        campaign_id: args.candidate_campaign.clone().unwrap_or_default(),
        name: "Candidate".into(),
        enabled: f.enabled,
        roas_scale_up_aggressive: f.roas_scale_up_aggressive,
        ctr_scale_up_aggressive_percent: f.ctr_scale_up_aggressive_percent,
        roas_scale_up: f.roas_scale_up,
        roas_scale_down: f.roas_scale_down,
        roas_pause: f.roas_pause,
        multiplier_aggressive_up: f.multiplier_aggressive_up,
        multiplier_up: f.multiplier_up,
        multiplier_down: f.multiplier_down,
        min_impressions: f.min_impressions,
        currency: f.currency.clone().unwrap_or_default(),
        min_daily_budget_minor: f.min_daily_budget_minor,
        max_daily_budget_minor: f.max_daily_budget_minor,
        max_daily_spend_limit_minor: f.max_daily_spend_limit_minor,
        require_approval_threshold_minor: f.require_approval_threshold_minor,
        auto_approve_up_to_minor: f.auto_approve_up_to_minor,
        cooldown: f.cooldown_hours.map(|h| prost_types::Duration { seconds: i64::from(h) * 3600, nanos: 0 }),
        apply_hourly_schedule: f.apply_hourly_schedule,
        ..Default::default()
    };
    if let Some(window) = f.window {
        rule.metrics_window = pb::MetricsWindow::from(window) as i32;
    }
    f.apply_strategy(&mut rule, &mut Vec::new());
    let any_field =
        rule != pb::ScalingRule { account_id: rule.account_id.clone(), name: rule.name.clone(), ..Default::default() };
    (args.candidate || any_field).then_some(rule)
}

/// `text` wrapped to the terminal, each line ended.
fn paragraph(text: &str, width: Option<usize>) -> String {
    let lines = match width {
        Some(w) => format::wrap_words(text, w),
        None => vec![text.to_owned()],
    };
    lines.into_iter().map(|l| format!("{l}\n")).collect()
}

fn stop_label(value: i32) -> String {
    pb::ReplayStop::try_from(value)
        .map_or_else(|_| value.to_string(), |s| format::label(s.as_str_name(), "REPLAY_STOP_"))
}

fn outcome(d: &pb::ReplayDecision) -> String {
    let approval = if d.requires_approval { " (approval)" } else { "" };
    match (d.applied, d.stop) {
        (true, _) if d.limited => format!("applied, limited{approval}"),
        (true, _) => format!("applied{approval}"),
        (false, 0) => "held".to_owned(),
        (false, stop) => format!("held: {}", stop_label(stop)),
    }
}

fn table(r: &pb::ReplayRulesResponse) -> String {
    let c = r.currency.as_str();
    let width = format::terminal_width();
    let mut out = paragraph(&r.notice, width);
    out.push('\n');
    if let Some(s) = &r.summary {
        let by_type = s
            .decisions_by_type
            .iter()
            .map(|t| format!("{} {}", format::action_type(t.action_type), t.count))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format::key_values(&[
            ("period", format!("{} to {}", format::time(r.start_time.as_ref()), format::time(r.end_time.as_ref()))),
            ("readings replayed", s.steps.to_string()),
            ("campaigns", s.campaigns.to_string()),
            ("decisions", format!("{} ({by_type})", s.decisions)),
            ("changes applied", s.applied.to_string()),
            ("needed approval", s.needed_approval.to_string()),
            ("held by cooldown", s.stopped_by_cooldown.to_string()),
            ("held by limits", s.stopped_by_limits.to_string()),
            ("shortened by limits", s.limited.to_string()),
            ("held otherwise", s.stopped_other.to_string()),
            ("budget increases", format::money(s.total_increase_minor, c)),
            ("budget decreases", format::money(s.total_decrease_minor, c)),
            (
                "same as recorded",
                format!("{} of {} with a recorded action", s.same_as_recorded, s.compared_with_recorded),
            ),
        ]));
    }
    if !r.decisions.is_empty() {
        out.push('\n');
        let headers = ["TIME (UTC)", "CAMPAIGN", "DECISION", "OLD", "NEW", "OUTCOME", "ROAS"];
        let mut t = Table::new(&headers).right(&[3, 4, 6]).note("REASON");
        for d in &r.decisions {
            let roas = d.metrics.as_ref().map_or(0.0, |m| m.roas);
            t.row_with_note(
                vec![
                    format::short_time(d.decide_time.as_ref()),
                    d.campaign_id.clone(),
                    format::decision_short(d.action_type),
                    format::money(d.old_budget_minor, c),
                    format::money(d.new_budget_minor, c),
                    outcome(d),
                    format!("{roas:.2}"),
                ],
                d.reason.clone(),
            );
        }
        out.push_str(&t.render());
    }
    if r.truncated {
        out.push_str("(list cut at 10,000 decisions; the counts cover all)\n");
    }
    for note in &r.notes {
        out.push_str(&paragraph(&format!("note: {note}"), width));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_dates() {
        assert_eq!(parse_time("2026-11-01", "--from").ok().map(|t| t.timestamp()), Some(1_793_491_200));
        assert!(parse_time("2026-11-01T10:00:00+01:00", "--to").is_ok());
        assert!(parse_time("yesterday", "--to").is_err());
    }
}
