//! `autoscaler time ...`: hour-of-day profiles drawn as bar charts (the day
//! in two columns of twelve hours, so a report fits an 80x24 terminal),
//! budget schedules and learning, through `TimeOptimizationService`.
use clap::{Args, Subcommand};

use tonic::Code;

use super::format::{self, ChartRow, Table};
use super::{CliError, Ctx, Outcome};
use crate::pb::{self, time_optimization_service_client::TimeOptimizationServiceClient};

/// Width of the bars of the reporting-lag chart, in terminal cells.
const BAR_WIDTH: usize = 40;

/// Width the day charts are laid out for when the output is not a terminal.
const DEFAULT_WIDTH: usize = 80;

/// Cells between the two halves of a day chart.
const HALF_GAP: usize = 3;

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
            let req = pb::GetTimeReportRequest { account_id: c.account.clone(), campaign_id: c.campaign };
            let resp = client.get_time_report(req).await.map_err(|s| learn_hint(s, &c.account))?.into_inner();
            let width = format::terminal_width().unwrap_or(DEFAULT_WIDTH);
            ctx.print(&resp, || report(&resp, width))?;
        }
        TimeCommand::Schedule { campaign: c, daily_budget_minor } => {
            let req = pb::GetBudgetScheduleRequest {
                account_id: c.account.clone(),
                campaign_id: c.campaign,
                daily_budget_minor: daily_budget_minor.unwrap_or(0),
            };
            let resp = client.get_budget_schedule(req).await.map_err(|s| learn_hint(s, &c.account))?.into_inner();
            let width = format::terminal_width().unwrap_or(DEFAULT_WIDTH);
            ctx.print(&resp, || schedule(&resp, width))?;
        }
        TimeCommand::Learn { account, campaign, min_samples } => {
            let req = pb::LearnOptimalHoursRequest {
                account_id: account,
                campaign_id: campaign.unwrap_or_default(),
                min_samples: min_samples.unwrap_or(0),
            };
            let resp = client.learn_optimal_hours(req).await?.into_inner();
            ctx.print(&resp, || learned(&resp))?;
        }
        TimeCommand::Lag { account } => {
            let resp = client.get_reporting_lag(pb::GetReportingLagRequest { account_id: account }).await?.into_inner();
            ctx.print(&resp, || lag(&resp))?;
        }
    }
    Ok(Outcome::Success)
}

/// A missing profile is the usual first answer: say how to get one.
fn learn_hint(status: tonic::Status, account: &str) -> CliError {
    let mut err = CliError::from(status);
    if err.code == Code::NotFound && err.message.contains("profile") {
        err.message = format!(
            "{}: profiles are learned from the stored hourly data; run `autoscaler time learn --account {account}` first",
            err.message
        );
    }
    err
}

/// One hour of a day chart.
struct Hour {
    /// The bar's value.
    value: f64,
    /// A budget, or empty.
    budget: String,
    /// `peak`, `valley` or empty.
    mark: &'static str,
}

/// The 24 hours as two columns of twelve (00-11 left, 12-23 right), each row
/// `hour  value  bar  budget  mark`, the bars scaled to the largest value and
/// as long as `width` allows; a header row first.
fn day_chart(hours: &[Hour], value_header: &str, width: usize) -> String {
    let max = hours.iter().map(|h| h.value).filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    let values: Vec<String> = hours.iter().map(|h| format!("{:.2}", h.value)).collect();
    let value_width =
        values.iter().chain([&value_header.to_owned()]).map(|v| format::display_width(v)).max().unwrap_or(0);
    let budget_width = hours.iter().map(|h| format::display_width(&h.budget)).max().unwrap_or(0);
    let budget_header = if budget_width > 0 { "BUDGET" } else { "" };
    let budget_width = if budget_width > 0 { budget_width.max(budget_header.len()) } else { 0 };
    let mark_width = hours.iter().map(|h| h.mark.len()).max().unwrap_or(0);
    // hour, gap, value, gap, bar, gap, budget, gap, mark
    let fixed = 4 + 2 + value_width + 2 + 2 + budget_width + 2 + mark_width;
    let half = width.saturating_sub(HALF_GAP) / 2;
    let bar_width = half.saturating_sub(fixed).clamp(4, 40);
    let cell = |hour: Option<usize>| -> String {
        let (label, value, bar, budget, mark) = match hour {
            None => ("HOUR".to_owned(), value_header.to_owned(), String::new(), budget_header.to_owned(), ""),
            Some(i) => {
                let h = &hours[i];
                (format!("{i:02}"), values[i].clone(), format::bar(h.value, max, bar_width), h.budget.clone(), h.mark)
            }
        };
        format!(
            "{label:<4}  {value:>value_width$}  {bar}{}  {budget:>budget_width$}  {mark:<mark_width$}",
            " ".repeat(bar_width - format::display_width(&bar))
        )
    };
    if hours.is_empty() {
        return String::new();
    }
    let gap = " ".repeat(HALF_GAP);
    let mut lines = vec![format!("{}{gap}{}", cell(None), cell(None))];
    for i in 0..12 {
        let left = if i < hours.len() { cell(Some(i)) } else { String::new() };
        let right = if i + 12 < hours.len() { cell(Some(i + 12)) } else { String::new() };
        lines.push(format!("{left}{gap}{right}"));
    }
    lines.iter().map(|l| format!("{}\n", l.trim_end())).collect()
}

fn report(r: &pb::GetTimeReportResponse, width: usize) -> String {
    let Some(p) = &r.profile else {
        return "no profile learned for this campaign yet\n".to_owned();
    };
    let metric = if p.metric.is_empty() { "performance" } else { p.metric.as_str() };
    let hours: Vec<Hour> = p
        .hourly_index
        .iter()
        .enumerate()
        .map(|(hour, &value)| {
            let h = hour as i32;
            let budget = r.schedule.iter().find(|b| b.hour == h).map(|b| format::money(b.budget_minor, &r.currency));
            let mark = if p.peak_hours.contains(&h) {
                "peak"
            } else if p.valley_hours.contains(&h) {
                "valley"
            } else {
                ""
            };
            Hour { value, budget: budget.unwrap_or_default(), mark }
        })
        .collect();
    let mut title = vec![
        format!("Campaign {} of {}", p.campaign_id, p.account_id),
        format!("HOUR: local hour of {}", account_zone(&r.time_zone)),
        format!("INDEX: the hour's {metric} / the average hour's (1.00 = average)"),
    ];
    if !r.schedule.is_empty() {
        let currency = if r.currency.is_empty() { "the account's currency".to_owned() } else { r.currency.clone() };
        title.push(format!("BUDGET: the hour's share of today's daily budget, in {currency}"));
    }
    let mut out = String::new();
    for line in title {
        for wrapped in format::wrap_words(&line, width) {
            out.push_str(&wrapped);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&day_chart(&hours, "INDEX", width));
    out.push('\n');
    let summary = [
        format!(
            "peak hours {}; valley hours {}; confidence {:.2}",
            hour_ranges(&p.peak_hours),
            hour_ranges(&p.valley_hours),
            p.confidence
        ),
        format!("learned {} from {} hourly samples", format::time(p.learn_time.as_ref()), p.samples),
    ];
    for line in summary {
        for wrapped in format::wrap_words(&line, width) {
            out.push_str(&wrapped);
            out.push('\n');
        }
    }
    out
}

/// The ad account's time zone for a title: its IANA name when the server
/// sent one (servers before the `time_zone` field did not).
fn account_zone(time_zone: &str) -> String {
    if time_zone.is_empty() {
        "the ad account's time zone".to_owned()
    } else {
        format!("{time_zone}, the ad account's time zone")
    }
}

/// Hours as runs: `03-11, 14`, or "-".
fn hour_ranges(list: &[i32]) -> String {
    let mut hours = list.to_vec();
    hours.sort_unstable();
    hours.dedup();
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for h in hours {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == h => *end = h,
            _ => runs.push((h, h)),
        }
    }
    if runs.is_empty() {
        return "-".to_owned();
    }
    let run = |(start, end): (i32, i32)| {
        if start == end { format!("{start:02}") } else { format!("{start:02}-{end:02}") }
    };
    runs.into_iter().map(run).collect::<Vec<_>>().join(", ")
}

fn schedule(r: &pb::GetBudgetScheduleResponse, width: usize) -> String {
    let hours: Vec<Hour> = r
        .hours
        .iter()
        .map(|h| Hour { value: h.multiplier, budget: format::money(h.budget_minor, &r.currency), mark: "" })
        .collect();
    let title = format!(
        "Daily budget {} spread over 24 hours of {}; MULT 1.00 = a flat hour (daily / 24); confidence {:.2}.",
        format::money(r.daily_budget_minor, &r.currency),
        account_zone(&r.time_zone),
        r.confidence
    );
    let mut out: String = format::wrap_words(&title, width).into_iter().map(|l| format!("{l}\n")).collect();
    out.push('\n');
    out.push_str(&day_chart(&hours, "MULT", width));
    out
}

fn learned(r: &pb::LearnOptimalHoursResponse) -> String {
    let mut out = String::new();
    if !r.profiles.is_empty() {
        let headers = ["ACCOUNT", "CAMPAIGN", "SAMPLES", "CONFIDENCE", "METRIC", "PEAK HOURS", "VALLEY HOURS"];
        let mut t = Table::new(&headers).right(&[2, 3]).wrap(&[5, 6]);
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
    fn report_draws_the_day_in_two_columns_within_80x24() {
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
        let r = pb::GetTimeReportResponse {
            profile: Some(profile),
            schedule,
            currency: "USD".into(),
            time_zone: "Europe/Berlin".into(),
        };
        let text = report(&r, 80);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() <= 23, "{text}");
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{text}");
        assert_eq!(lines[0], "Campaign 7 of act_1");
        assert_eq!(lines[1], "HOUR: local hour of Europe/Berlin, the ad account's time zone");
        assert_eq!(lines[2], "INDEX: the hour's roas / the average hour's (1.00 = average)");
        assert_eq!(lines[3], "BUDGET: the hour's share of today's daily budget, in USD");
        let header = lines.iter().position(|l| l.starts_with("HOUR  ")).expect("header");
        assert_eq!(lines[header].matches("INDEX").count(), 2, "{text}");
        // Hour 03 and 15 share a row; 19 (the peak) has the full bar.
        let row_03 = lines[header + 4];
        assert!(row_03.starts_with("03     0.25  █▏ ") && row_03.contains("$1.00  valley"), "{text}");
        assert!(row_03.contains("   15     1.00  "), "{text}");
        let row_07 = lines[header + 8];
        assert!(row_07.contains("19     2.00  █████████   $1.00  peak"), "{text}");
        assert!(text.contains("peak hours 19; valley hours 03; confidence 0.80\n"), "{text}");
        assert!(text.contains(" from 336 hourly samples"), "{text}");
        assert_eq!(hour_ranges(&[22, 16, 17, 18, 3, 0, 1]), "00-01, 03, 16-18, 22");
        assert_eq!(hour_ranges(&[]), "-");
    }

    #[test]
    fn titles_name_the_time_zone_when_the_server_sends_it() {
        let profile = pb::HourProfile { hourly_index: vec![1.0; 24], ..Default::default() };
        let unnamed = pb::GetTimeReportResponse { profile: Some(profile), ..Default::default() };
        assert!(report(&unnamed, 80).contains("HOUR: local hour of the ad account's time zone\n"));
        // The longest IANA name still leaves the report within 80 columns.
        let longest = pb::GetTimeReportResponse { time_zone: "America/Argentina/ComodRivadavia".into(), ..unnamed };
        let text = report(&longest, 80);
        assert!(text.contains("local hour of America/Argentina/ComodRivadavia, the ad"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");

        let hours = (0..24).map(|hour| pb::HourlyBudget { hour, budget_minor: 100, multiplier: 1.0 }).collect();
        let r = pb::GetBudgetScheduleResponse {
            hours,
            daily_budget_minor: 2400,
            currency: "USD".into(),
            confidence: 0.5,
            time_zone: "Asia/Tokyo".into(),
        };
        let text = schedule(&r, 80);
        assert!(collapse(&text).contains("24 hours of Asia/Tokyo, the ad account's time zone;"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        assert!(text.lines().count() <= 23, "{text}");
    }

    /// Wrapped text as one line.
    fn collapse(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn report_without_profile_says_so() {
        assert_eq!(report(&pb::GetTimeReportResponse::default(), 80), "no profile learned for this campaign yet\n");
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
