//! The sandbox's time-of-day surface: campaign insights broken down by hour
//! of the advertiser's time zone (spend, impressions and clicks only, as
//! Meta, which returns no website purchases with hourly breakdowns), and
//! budget schedules (high-demand periods) validated under Meta's rules and
//! recorded so tests can check what was applied. Schedules are recorded,
//! not simulated: delivery follows the daily budget alone.
use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;
use serde_json::json;
use url::Url;

use super::edges::{Page, Wanted, page_bounds};
use super::graph::{GraphRequest, Method, Reply, error_reply, invalid};
use super::insights::window;
use super::market::hours;
use super::spec::MetaErrorSpec;
use super::state::{Budget, ObjectRef, State};
use super::{Daypart, Performance, Sandbox};
use crate::conventions::minor_to_major;

/// The hourly breakdowns Meta offers.
const ADVERTISER_HOURS: &str = "hourly_stats_aggregated_by_advertiser_time_zone";
const AUDIENCE_HOURS: &str = "hourly_stats_aggregated_by_audience_time_zone";
/// Meta's rules for budget schedules.
const MAX_SCHEDULES: usize = 50;
const MIN_SCHEDULE_SECONDS: i64 = 3 * 3_600;
const BOUNDARY_SECONDS: i64 = 15 * 60;
const MAX_MULTIPLIER_PERCENT: i64 = 800;

/// A budget schedule the sandbox accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedBudgetSchedule {
    /// Its id.
    pub id: String,
    /// The campaign or ad set.
    pub object_id: String,
    /// Amount (minor units) or percentage of the daily budget.
    pub budget_value: i64,
    /// `ABSOLUTE` or `MULTIPLIER`.
    pub budget_value_type: String,
    /// Start (UTC).
    pub time_start: DateTime<Utc>,
    /// End (UTC).
    pub time_end: DateTime<Utc>,
    /// Sandbox time of the request.
    pub created_at: DateTime<Utc>,
}

impl Sandbox {
    /// Every budget schedule accepted for `object_id`, in creation order.
    pub fn budget_schedules(&self, object_id: &str) -> Vec<AppliedBudgetSchedule> {
        self.with(|st| st.budget_schedules.iter().filter(|s| s.object_id == object_id).cloned().collect())
    }

    /// The hour-of-day effect a simulated campaign was given (the ground
    /// truth time-of-day learning should recover).
    pub fn daypart(&self, campaign_id: &str) -> Option<Daypart> {
        self.with(|st| match st.objects.get(campaign_id)? {
            ObjectRef::Campaign { account, campaign } => {
                match &st.accounts[*account].campaigns[*campaign].performance {
                    Performance::Simulated(spec) => Some(spec.daypart),
                    Performance::Scripted(_) => None,
                }
            }
            ObjectRef::AdSet { .. } => None,
        })
    }
}

/// One hourly insights row.
#[derive(Serialize)]
struct HourlyRow<'a> {
    campaign_id: &'a str,
    account_currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    spend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impressions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks: Option<String>,
    hourly_stats_aggregated_by_advertiser_time_zone: String,
    date_start: String,
    date_stop: String,
}

/// `GET /act_x/insights?breakdowns=hourly_stats_...`: per campaign, day and
/// local hour; the two 01:00 hours of the day daylight saving ends are one
/// bucket. Paged over rows (campaign x hour), as Meta pages insights;
/// scripted campaigns (figures without hours) have no rows.
pub(super) fn hourly_insights(state: &mut State, base: &Url, req: &GraphRequest, account: usize) -> Reply {
    match req.param("breakdowns") {
        Some(ADVERTISER_HOURS) | Some(AUDIENCE_HOURS) => {}
        _ => {
            let spec = MetaErrorSpec::permanent(
                2,
                Some(1_504_041),
                "Invalid breakdowns: the sandbox serves hourly breakdowns only",
            );
            return error_reply(state, &spec, Some(account));
        }
    }
    let now = state.clock.now();
    let tz = state.accounts[account].tz;
    let today = now.with_timezone(&tz).date_naive();
    let (since, until) = match window(req, today) {
        Ok(range) => range,
        Err((code, message)) => {
            return error_reply(state, &MetaErrorSpec::permanent(code, None, message), Some(account));
        }
    };
    let want = Wanted::new(req, &["impressions", "spend"]);
    let slots = hours(tz, since, until, now);
    // One bucket per local (date, hour): its slots are adjacent, and the two
    // 01:00 hours of the day daylight saving ends are one bucket.
    let mut buckets: Vec<(std::ops::Range<usize>, chrono::NaiveDate, u32)> = Vec::new();
    for (k, slot) in slots.iter().enumerate() {
        let local = slot.start.with_timezone(&tz);
        let (date, hour) = (local.date_naive(), local.hour());
        match buckets.last_mut() {
            Some((range, d, h)) if *d == date && *h == hour => range.end = k + 1,
            _ => buckets.push((k..k + 1, date, hour)),
        }
    }
    // Meta's `limit` counts rows (a campaign's hour), not campaigns: a page
    // holds at most `limit` rows whatever the date range, so neither side
    // ever holds a month of an account's hours at once.
    let total = state.accounts[account].campaigns.len() * buckets.len();
    let bounds = match page_bounds(req, total) {
        Ok(bounds) => bounds,
        Err(message) => return invalid(state, None, message, Some(account)),
    };
    let a = &state.accounts[account];
    let mut rows = Vec::with_capacity(bounds.1 - bounds.0);
    for position in bounds.0..bounds.1 {
        let c = &a.campaigns[position / buckets.len()];
        let (range, date, hour) = &buckets[position % buckets.len()];
        if matches!(c.performance, Performance::Scripted(_)) {
            continue;
        }
        let f = c.figures(state.seed, &slots[range.clone()]);
        if f.impressions == 0 && f.spend_minor == 0 {
            continue;
        }
        rows.push(HourlyRow {
            campaign_id: &c.id,
            account_currency: &a.currency,
            spend: want.get("spend", || minor_to_major(f.spend_minor, a.offset)),
            impressions: want.get("impressions", || f.impressions.to_string()),
            clicks: want.get("clicks", || f.clicks.to_string()),
            hourly_stats_aggregated_by_advertiser_time_zone: format!("{hour:02}:00:00 - {hour:02}:59:59"),
            date_start: date.to_string(),
            date_stop: date.to_string(),
        });
    }
    Reply::ok(&Page::new(base, req, rows, bounds, total), Some(account))
}

/// One budget schedule node.
#[derive(Serialize)]
struct ScheduleNode<'a> {
    id: &'a str,
    ad_object_id: &'a str,
    budget_value: String,
    budget_value_type: &'a str,
    recurrence_type: &'static str,
    time_start: i64,
    time_end: i64,
}

/// `GET` or `POST /{campaign or ad set}/budget_schedules`.
pub(super) fn budget_schedules(
    state: &mut State,
    base: &Url,
    req: &GraphRequest,
    object_id: &str,
    account: usize,
) -> Reply {
    let Some(object) = state.objects.get(object_id).copied() else {
        return invalid(state, Some(33), &format!("(#100) Object with ID '{object_id}' does not exist"), Some(account));
    };
    match req.method {
        Method::Get => {
            let param = |name: &str| req.param(name).and_then(|v| v.parse::<i64>().ok());
            let (from, to) = (param("time_start").unwrap_or(i64::MIN), param("time_stop").unwrap_or(i64::MAX));
            let nodes: Vec<ScheduleNode<'_>> = state
                .budget_schedules
                .iter()
                .filter(|s| s.object_id == object_id)
                .filter(|s| s.time_end.timestamp() > from && s.time_start.timestamp() < to)
                .map(|s| ScheduleNode {
                    id: &s.id,
                    ad_object_id: &s.object_id,
                    budget_value: s.budget_value.to_string(),
                    budget_value_type: &s.budget_value_type,
                    recurrence_type: "ONE_TIME",
                    time_start: s.time_start.timestamp(),
                    time_end: s.time_end.timestamp(),
                })
                .collect();
            let total = nodes.len();
            Reply::ok(&Page::new(base, req, nodes, (0, total), total), Some(account))
        }
        Method::Post => match create(state, req, object, object_id) {
            Ok(id) => Reply::ok(&json!({ "id": id }), Some(account)),
            Err(message) => invalid(state, None, &format!("(#100) {message}"), Some(account)),
        },
    }
}

/// Validates a new schedule under Meta's rules and records it.
fn create(state: &mut State, req: &GraphRequest, object: ObjectRef, object_id: &str) -> Result<String, String> {
    let daily = match object {
        ObjectRef::Campaign { account, campaign } => match &state.accounts[account].campaigns[campaign].budget {
            Budget::Daily(daily) => daily.current(),
            _ => return Err("Budget scheduling is only available for campaigns or ad sets with a daily budget".into()),
        },
        ObjectRef::AdSet { account, campaign, adset } => match &state.accounts[account].campaigns[campaign].budget {
            Budget::AdSets(sets) => sets[adset].daily.current(),
            _ => return Err("the ad set holds no budget".into()),
        },
    };
    let int = |name: &str| -> Result<i64, String> {
        req.param(name)
            .ok_or(format!("{name} is required"))?
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{name} must be an integer"))
    };
    let (value, start, end) = (int("budget_value")?, int("time_start")?, int("time_end")?);
    let kind = req.param("budget_value_type").unwrap_or("");
    match kind {
        "MULTIPLIER" if value <= 100 || value > MAX_MULTIPLIER_PERCENT => {
            return Err(format!("budget_value must raise the budget and be at most {MAX_MULTIPLIER_PERCENT} (8x)"));
        }
        "ABSOLUTE" if value <= daily || value > 8 * daily => {
            return Err("budget_value must be above the daily budget and at most 8x it".into());
        }
        "MULTIPLIER" | "ABSOLUTE" => {}
        _ => return Err("budget_value_type must be ABSOLUTE or MULTIPLIER".into()),
    }
    if start % BOUNDARY_SECONDS != 0 || end % BOUNDARY_SECONDS != 0 {
        return Err("time_start and time_end must fall on 15-minute boundaries".into());
    }
    if end - start < MIN_SCHEDULE_SECONDS {
        return Err("a high-demand period must last at least 3 hours".into());
    }
    let now = state.clock.now();
    let (Some(time_start), Some(time_end)) = (DateTime::from_timestamp(start, 0), DateTime::from_timestamp(end, 0))
    else {
        return Err("time_start and time_end must be UNIX seconds".into());
    };
    if time_start <= now {
        return Err("time_start must be in the future".into());
    }
    let mine: Vec<&AppliedBudgetSchedule> =
        state.budget_schedules.iter().filter(|s| s.object_id == object_id).collect();
    if mine.iter().any(|s| s.budget_value_type != kind) {
        return Err("Can't mix your budget scaling selection: the object has schedules of the other type".into());
    }
    if mine.iter().any(|s| s.time_start < time_end && time_start < s.time_end) {
        return Err("the period overlaps another high-demand period of the object".into());
    }
    if mine.iter().filter(|s| s.time_end > now).count() >= MAX_SCHEDULES {
        return Err(format!("at most {MAX_SCHEDULES} high-demand periods per campaign or ad set"));
    }
    let id = format!("{}", 230_000_000_000_000_u64 + state.budget_schedules.len() as u64 + 1);
    state.budget_schedules.push(AppliedBudgetSchedule {
        id: id.clone(),
        object_id: object_id.to_owned(),
        budget_value: value,
        budget_value_type: kind.to_owned(),
        time_start,
        time_end,
        created_at: now,
    });
    Ok(id)
}
