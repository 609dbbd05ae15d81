//! `autoscaler time ...`: hour-of-day profiles drawn as bar charts, budget
//! schedules and learning, through `TimeOptimizationService`.
use clap::{Args, Subcommand};

use super::format::{self, ChartRow, Table};
use super::{CliError, Ctx, Outcome, json};
use crate::pb::{self, time_optimization_service_client::TimeOptimizationServiceClient};

/// Width of the bars, in terminal cells.
const BAR_WIDTH: usize = 40;

/// `time` subcommands.
#[derive(Debug, Subcommand)]
pub enum TimeCommand {
    /// A campaign's learned 24-hour profile as a bar chart, and its schedule.
    Report(CampaignArgs),
    /// 24 hourly budgets for a campaign, summing to its daily budget.
    Schedule {
        /// Which campaign.
        #[command(flatten)]
        campaign: CampaignArgs,
        /// Daily budget to spread, minor units; the campaign's current one when omitted.
        #[arg(long)]
        daily_budget_minor: Option<i64>,
    },
    /// Learn the hour-of-day profile of one campaign or of a whole account.
    Learn {
        /// Ad account (`act_...`).
        #[arg(long)]
        account: String,
        /// One campaign; every campaign of the account when omitted.
        #[arg(long)]
        campaign: Option<String>,
        /// Hourly samples needed before a profile is learned (server default 24).
        #[arg(long)]
        min_samples: Option<i32>,
    },
    /// How an account's purchase revenue arrives after the spend: the
    /// reporting-lag curve the marginal-ROAS strategy uses.
    Lag {
        /// Ad account (`act_...`).
        #[arg(long)]
        account: String,
    },
}

/// An account and one of its campaigns.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// Ad account (`act_...`).
    #[arg(long)]
    pub account: String,
    /// Campaign id.
    #[arg(long)]
    pub campaign: String,
}

/// Runs a `time` subcommand.
pub(super) async fn run(ctx: &Ctx, command: TimeCommand) -> Result<Outcome, CliError> {
    let mut client = TimeOptimizationServiceClient::new(ctx.channel.clone());
    match command {
        TimeCommand::Report(c) => {
            let req = pb::GetTimeReportRequest { account_id: c.account, campaign_id: c.campaign };
            let resp = client.get_time_report(req).await?.into_inner();
            ctx.print(|| json::time_report(&resp), || report(&resp));
        }
        TimeCommand::Schedule { campaign: c, daily_budget_minor } => {
            let req = pb::GetBudgetScheduleRequest {
                account_id: c.account,
                campaign_id: c.campaign,
                daily_budget_minor: daily_budget_minor.unwrap_or(0),
            };
            let resp = client.get_budget_schedule(req).await?.into_inner();
            ctx.print(|| json::budget_schedule(&resp), || schedule(&resp));
        }
        TimeCommand::Learn { account, campaign, min_samples } => {
            let req = pb::LearnOptimalHoursRequest {
                account_id: account,
                campaign_id: campaign.unwrap_or_default(),
                min_samples: min_samples.unwrap_or(0),
            };
            let resp = client.learn_optimal_hours(req).await?.into_inner();
            ctx.print(|| json::learned(&resp), || learned(&resp));
        }
        TimeCommand::Lag { account } => {
            let resp = client.get_reporting_lag(pb::GetReportingLagRequest { account_id: account }).await?.into_inner();
            ctx.print(|| json::reporting_lag(&resp), || lag(&resp));
        }
    }
    Ok(Outcome::Success)
}

/// The rows of the 24-hour chart: index per hour, peak/valley marks and,
/// when a schedule is given, each hour's budget.
fn profile_rows(p: &pb::HourProfile, schedule: &[pb::HourlyBudget], currency: &str) -> Vec<ChartRow> {
    p.hourly_index
        .iter()
        .enumerate()
        .map(|(hour, &value)| {
            let h = hour as i32;
            let mut notes = Vec::new();
            if let Some(b) = schedule.iter().find(|b| b.hour == h) {
                notes.push(format::money(b.budget_minor, currency));
            }
            if p.peak_hours.contains(&h) {
                notes.push("peak".to_owned());
            } else if p.valley_hours.contains(&h) {
                notes.push("valley".to_owned());
            }
            ChartRow { label: format!("{hour:02}"), value, note: notes.join("  ") }
        })
        .collect()
}

fn report(r: &pb::GetTimeReportResponse) -> String {
    let Some(p) = &r.profile else {
        return "no profile learned for this campaign yet\n".to_owned();
    };
    let mut out = format!(
        "campaign {} ({}): {} index by hour of day (1.00 = the campaign's average)\n\n",
        p.campaign_id,
        p.account_id,
        if p.metric.is_empty() { "performance" } else { p.metric.as_str() }
    );
    out.push_str(&format::bar_chart(&profile_rows(p, &r.schedule, &r.currency), BAR_WIDTH));
    out.push('\n');
    out.push_str(&format::key_values(&[
        ("peak hours", format::hours(&p.peak_hours)),
        ("valley hours", format::hours(&p.valley_hours)),
        ("confidence", format!("{:.2}", p.confidence)),
        ("samples", p.samples.to_string()),
        ("learned", format::time(p.learn_time.as_ref())),
    ]));
    out
}

fn schedule(r: &pb::GetBudgetScheduleResponse) -> String {
    let rows: Vec<ChartRow> = r
        .hours
        .iter()
        .map(|h| ChartRow {
            label: format!("{:02}", h.hour),
            value: h.multiplier,
            note: format::money(h.budget_minor, &r.currency),
        })
        .collect();
    let mut out = format!(
        "daily budget {} spread over 24 hours (multiplier 1.00 = a flat hour), confidence {:.2}\n\n",
        format::money(r.daily_budget_minor, &r.currency),
        r.confidence
    );
    out.push_str(&format::bar_chart(&rows, BAR_WIDTH));
    out
}

fn learned(r: &pb::LearnOptimalHoursResponse) -> String {
    let mut out = String::new();
    if !r.profiles.is_empty() {
        let headers = ["ACCOUNT", "CAMPAIGN", "SAMPLES", "CONFIDENCE", "METRIC", "PEAK HOURS", "VALLEY HOURS"];
        let mut t = Table::new(&headers).right(&[2, 3]);
        for p in &r.profiles {
            t.row(vec![
                p.account_id.clone(),
                p.campaign_id.clone(),
                p.samples.to_string(),
                format!("{:.2}", p.confidence),
                p.metric.clone(),
                format::hours(&p.peak_hours),
                format::hours(&p.valley_hours),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push_str(&format!("{} profiles learned", r.profiles.len()));
    if !r.skipped_campaign_ids.is_empty() {
        out.push_str(&format!("; skipped for lack of samples: {}", r.skipped_campaign_ids.join(", ")));
    }
    out.push('\n');
    out
}

/// The curve as a chart of the share reported by each age, the prior beside it.
fn lag(r: &pb::GetReportingLagResponse) -> String {
    let rows: Vec<ChartRow> = r
        .points
        .iter()
        .map(|p| ChartRow {
            label: format!("{:>3} h", p.hours_after),
            value: p.reported_share,
            note: format!("{:>3.0}%  (prior {:>3.0}%)", 100.0 * p.reported_share, 100.0 * p.prior_share),
        })
        .collect();
    let source = if r.days_observed == 0 {
        "no day of readings yet: the prior".to_owned()
    } else {
        format!(
            "learned from {} days ({} readings, the oldest {:.0} h after its day began)\nprior weight {:.0}%",
            r.days_observed,
            r.readings_used,
            r.oldest_reading_hours,
            100.0 * r.prior_weight
        )
    };
    let mut out =
        format!("{}: share of purchase revenue reported by hours after the hour of spend\n{source}\n\n", r.account_id);
    out.push_str(&format::bar_chart(&rows, BAR_WIDTH));
    if let Some(f) = &r.fitted {
        out.push_str(&format!(
            "\nfit: {:.0}% within the hour; of the rest {:.0}% over ~{:.0} h, {:.0}% over ~{:.0} h\n",
            100.0 * f.immediate_share,
            100.0 * f.fast_split,
            f.fast_mean_hours,
            100.0 * (1.0 - f.fast_split),
            f.slow_mean_hours
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_draws_the_day_with_peaks_valleys_and_budgets() {
        let mut index = vec![1.0; 24];
        index[3] = 0.25;
        index[19] = 2.0;
        let profile = pb::HourProfile {
            account_id: "act_1".into(),
            campaign_id: "7".into(),
            peak_hours: vec![19],
            valley_hours: vec![3],
            hourly_index: index,
            confidence: 0.8,
            samples: 336,
            metric: "roas".into(),
            ..Default::default()
        };
        let schedule: Vec<pb::HourlyBudget> =
            (0..24).map(|hour| pb::HourlyBudget { hour, budget_minor: 100, multiplier: 1.0 }).collect();
        let text = report(&pb::GetTimeReportResponse { profile: Some(profile), schedule, currency: "USD".into() });
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("campaign 7 (act_1): roas index"), "{text}");
        let bar = |cells: usize| "█".repeat(cells);
        assert_eq!(lines[2], format!("00  1.00  {}{}  $1.00", bar(20), " ".repeat(20)));
        assert_eq!(lines[5], format!("03  0.25  {}{}  $1.00  valley", bar(5), " ".repeat(35)));
        assert_eq!(lines[21], format!("19  2.00  {}  $1.00  peak", bar(40)));
        assert!(text.contains("peak hours    19\n"), "{text}");
        assert!(text.contains("confidence    0.80\n"), "{text}");
    }

    #[test]
    fn report_without_profile_says_so() {
        assert_eq!(report(&pb::GetTimeReportResponse::default()), "no profile learned for this campaign yet\n");
    }

    #[test]
    fn lag_names_its_source_and_fits_a_terminal() {
        let point =
            |h: i32, share: f64, prior: f64| pb::LagPoint { hours_after: h, reported_share: share, prior_share: prior };
        let r = pb::GetReportingLagResponse {
            account_id: "act_1".into(),
            points: vec![point(0, 0.2, 0.35), point(24, 0.7, 0.88), point(168, 1.0, 1.0)],
            fitted: Some(pb::LagShape {
                immediate_share: 0.2,
                fast_split: 0.4,
                fast_mean_hours: 5.0,
                slow_mean_hours: 120.0,
            }),
            days_observed: 21,
            readings_used: 252,
            prior_weight: 0.25,
            oldest_reading_hours: 191.0,
            computed_time: None,
        };
        let text = lag(&r);
        assert!(
            text.contains(
                "learned from 21 days (252 readings, the oldest 191 h after its day began)\nprior weight 25%"
            )
        );
        assert!(text.contains(" 24 h"), "{text}");
        assert!(text.contains(" 70%  (prior  88%)"), "{text}");
        assert!(text.contains("fit: 20% within the hour; of the rest 40% over ~5 h, 60% over ~120 h"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        let empty = lag(&pb::GetReportingLagResponse { account_id: "act_1".into(), ..Default::default() });
        assert!(empty.contains("no day of readings yet: the prior"), "{empty}");
    }
}
