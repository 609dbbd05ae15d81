//! The sandbox's `GET /act_x/insights?level=campaign`: the window in the
//! account's days, one row per delivering campaign, numbers as strings, money
//! in major units, action lists with several purchase types side by side.
use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::edges::{Page, Wanted, page_bounds};
use super::graph::{GraphRequest, Reply, error_reply, invalid};
use super::market::{Figures, hours};
use super::spec::MetaErrorSpec;
use super::state::State;
use crate::conventions::minor_to_major;

/// Days `maximum` covers in the sandbox (Meta: up to 37 months).
const MAXIMUM_DAYS: i64 = 90;
/// Oldest start of a window: Meta refuses more than 37 months back (error 3018).
const OLDEST_DAYS: i64 = 37 * 31;

/// The days a request covers, in the account's time zone.
pub(super) fn window(req: &GraphRequest, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), (i64, &'static str)> {
    const BAD_PRESET: &str = "(#100) date_preset must be one of the following values: today, yesterday, this_month, last_month, maximum, last_3d, last_7d, last_14d, last_28d, last_30d, last_90d, this_week_mon_today, last_week_mon_sun";
    if let Some(raw) = req.param("time_range") {
        let range: Value = serde_json::from_str(raw).map_err(|_| (100, "(#100) time_range must be a JSON object"))?;
        let date = |key: &str| {
            range.get(key).and_then(Value::as_str).and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        };
        let (Some(since), Some(until)) = (date("since"), date("until")) else {
            return Err((100, "(#100) time_range needs since and until as YYYY-MM-DD"));
        };
        if since > until {
            return Err((100, "(#100) time_range since must not be after until"));
        }
        return Ok((since, until));
    }
    let days = |n: i64| today - Duration::days(n);
    let month_start = today.with_day(1).unwrap_or(today);
    let week_start = days(i64::from(today.weekday().num_days_from_monday()));
    Ok(match req.param("date_preset").unwrap_or("last_30d") {
        "today" => (today, today),
        "yesterday" => (days(1), days(1)),
        "last_3d" => (days(3), days(1)),
        "last_7d" => (days(7), days(1)),
        "last_14d" => (days(14), days(1)),
        "last_28d" => (days(28), days(1)),
        "last_30d" => (days(30), days(1)),
        "last_90d" => (days(90), days(1)),
        "this_month" => (month_start, today),
        "last_month" => {
            let end = month_start - Duration::days(1);
            (end.with_day(1).unwrap_or(end), end)
        }
        "this_week_mon_today" => (week_start, today),
        "last_week_mon_sun" => (week_start - Duration::days(7), week_start - Duration::days(1)),
        "maximum" => (days(MAXIMUM_DAYS - 1), today),
        _ => return Err((100, BAD_PRESET)),
    })
}

/// `GET /act_x/insights?level=campaign`: one row per delivering campaign,
/// paged over the account's campaigns (so a page may be empty yet have `next`).
pub(super) fn insights(state: &mut State, base: &Url, req: &GraphRequest, account: usize) -> Reply {
    if req.param("breakdowns").is_some() {
        return super::hourly::hourly_insights(state, base, req, account);
    }
    let now = state.clock.now();
    let tz = state.accounts[account].tz;
    let today = now.with_timezone(&tz).date_naive();
    if req.param("level").is_some_and(|l| l != "campaign") {
        return invalid(state, None, "(#100) The sandbox serves level=campaign only", Some(account));
    }
    let (since, until) = match window(req, today) {
        Ok(range) => range,
        Err((code, message)) => {
            return error_reply(state, &MetaErrorSpec::permanent(code, None, message), Some(account));
        }
    };
    if since < today - Duration::days(OLDEST_DAYS) {
        let spec = MetaErrorSpec::permanent(
            3018,
            None,
            "The start date of the time range cannot be beyond 37 months from the current date",
        );
        return error_reply(state, &spec, Some(account));
    }
    let total = state.accounts[account].campaigns.len();
    let bounds = match page_bounds(req, total) {
        Ok(bounds) => bounds,
        Err(message) => return invalid(state, None, message, Some(account)),
    };
    let want = Wanted::new(req, &["impressions", "spend"]);
    // `time_increment=1`: one row per campaign and day (Meta's other
    // increments are not served).
    let periods: Vec<(NaiveDate, NaiveDate)> = match req.param("time_increment") {
        None | Some("all_days") => vec![(since, until)],
        Some("1") => since.iter_days().take_while(|d| *d <= until).map(|d| (d, d)).collect(),
        Some(_) => {
            return invalid(state, None, "(#100) The sandbox serves time_increment=1 or all_days only", Some(account));
        }
    };
    let periods: Vec<(Vec<_>, String, String)> =
        periods.into_iter().map(|(from, to)| (hours(tz, from, to, now), from.to_string(), to.to_string())).collect();
    let a = &state.accounts[account];
    let rows: Vec<InsightsRow<'_>> = a.campaigns[bounds.0..bounds.1]
        .iter()
        .flat_map(|c| periods.iter().map(move |period| (c, period)))
        .filter_map(|(c, (slots, date_start, date_stop))| {
            let f = c.figures(state.seed, slots);
            // Meta has no row for a campaign that did not deliver.
            (f.impressions > 0 || f.spend_minor > 0).then(|| InsightsRow {
                campaign_id: want.get("campaign_id", || c.id.as_str()),
                campaign_name: want.get("campaign_name", || c.name.as_str()),
                account_id: want.get("account_id", || a.bare_id()),
                account_currency: want.get("account_currency", || a.currency.as_str()),
                date_start,
                date_stop,
                ..InsightsRow::metrics(&f, a.offset, &want)
            })
        })
        .collect();
    Reply::ok(&Page::new(base, req, rows, bounds, total), Some(account))
}

/// Purchase action types Meta reports side by side for the same purchases:
/// a client that sums them counts each purchase three times.
const PURCHASE_TYPES: [&str; 3] = ["omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase"];

/// One insights row as Meta writes it: numbers as strings, money in major
/// units, metrics with no data left out.
#[derive(Serialize, Default)]
struct InsightsRow<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_currency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impressions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ctr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<Vec<ActionStat>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action_values: Option<Vec<ActionStat>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purchase_roas: Option<Vec<ActionStat>>,
    date_start: &'a str,
    date_stop: &'a str,
}

#[derive(Serialize)]
struct ActionStat {
    action_type: &'static str,
    value: String,
}

impl InsightsRow<'_> {
    /// The metric fields asked for, from `f`.
    fn metrics(f: &Figures, offset: i64, want: &Wanted) -> Self {
        let delivered = f.impressions > 0;
        let revenue = (f.revenue_minor > 0).then(|| minor_to_major(f.revenue_minor, offset));
        Self {
            spend: want.get("spend", || minor_to_major(f.spend_minor, offset)),
            impressions: want.get("impressions", || f.impressions.to_string()),
            clicks: want.get("clicks", || f.clicks.to_string()),
            ctr: want.get("ctr", || trim(f.clicks as f64 / f.impressions as f64 * 100.0)).filter(|_| delivered),
            cpm: want
                .get("cpm", || trim(f.spend_minor as f64 / offset as f64 / f.impressions as f64 * 1_000.0))
                .filter(|_| delivered),
            actions: want.get("actions", || actions(f)).flatten(),
            action_values: revenue.as_ref().and_then(|value| {
                want.get("action_values", || {
                    PURCHASE_TYPES.iter().map(|t| ActionStat { action_type: t, value: value.clone() }).collect()
                })
            }),
            purchase_roas: revenue.as_ref().filter(|_| f.spend_minor > 0).and_then(|_| {
                let roas = trim(f.revenue_minor as f64 / f.spend_minor as f64);
                want.get("purchase_roas", || vec![ActionStat { action_type: "omni_purchase", value: roas }])
            }),
            ..Self::default()
        }
    }
}

/// Link clicks and purchases; `None` when there were neither.
fn actions(f: &Figures) -> Option<Vec<ActionStat>> {
    if f.clicks == 0 && f.conversions == 0 {
        return None;
    }
    let mut list = vec![ActionStat { action_type: "link_click", value: f.clicks.to_string() }];
    if f.conversions > 0 {
        list.extend(PURCHASE_TYPES.iter().map(|t| ActionStat { action_type: t, value: f.conversions.to_string() }));
    }
    Some(list)
}

/// Up to 6 decimals without trailing zeros, as Meta prints ratios (`"3.2"`).
fn trim(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_print_like_meta() {
        assert_eq!(trim(320.0 / 10_000.0 * 100.0), "3.2");
        assert_eq!(trim(2.0), "2");
        assert_eq!(trim(1.0 / 3.0), "0.333333");
    }

    #[test]
    fn presets_resolve_in_account_days() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 10).expect("date");
        let req = |preset: &str| {
            GraphRequest::new(
                super::super::graph::Method::Get,
                "/act_1/insights",
                vec![("date_preset".into(), preset.into())],
            )
        };
        let d = |day: u32| NaiveDate::from_ymd_opt(2026, 6, day).expect("date");
        assert_eq!(window(&req("today"), today), Ok((today, today)));
        assert_eq!(window(&req("yesterday"), today), Ok((d(9), d(9))));
        assert_eq!(window(&req("last_3d"), today), Ok((d(7), d(9))));
        assert_eq!(window(&req("this_week_mon_today"), today), Ok((d(8), today)));
        assert!(window(&req("last_24_hours"), today).is_err());
    }
}
