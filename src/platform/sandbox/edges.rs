//! The sandbox's account node and edges (`/campaigns`, `/adsets`, `/insights`)
//! with Meta's cursor paging: `limit`, `after`, and an absolute `paging.next`
//! URL that carries the access token, as Meta's does.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Datelike, Duration, NaiveDate};
use reqwest::Url;
use serde_json::{Map, Value, json};

use super::graph::{GraphRequest, Reply, adset_effective_status, error_reply, invalid};
use super::faults::MetaErrorSpec;
use super::market::{Figures, hours};
use super::state::{Budget, State, status_name};
use crate::platform::meta::decimal::minor_to_major;

/// Meta's default page size.
const DEFAULT_LIMIT: usize = 25;
/// Largest page the sandbox serves.
const MAX_LIMIT: usize = 5_000;
/// Days `maximum` covers in the sandbox (Meta: up to 37 months).
const MAXIMUM_DAYS: i64 = 90;
/// Oldest start of a window: Meta refuses more than 37 months back (error 3018).
const OLDEST_DAYS: i64 = 37 * 31;

/// The ad account node.
pub(super) fn account_node(state: &State, account: usize, req: &GraphRequest) -> Value {
    let a = &state.accounts[account];
    let fields = req.fields(&["id"]);
    let offset_hours = {
        let now = state.clock.now().with_timezone(&a.tz);
        f64::from(chrono::Offset::fix(now.offset()).local_minus_utc()) / 3_600.0
    };
    let all = [
        ("name", json!(a.name)),
        ("account_id", json!(a.bare_id())),
        ("currency", json!(a.currency)),
        ("timezone_name", json!(a.tz.name())),
        ("timezone_offset_hours_utc", json!(offset_hours)),
        ("account_status", json!(1)),
    ];
    let mut node = Map::new();
    node.insert("id".into(), json!(a.id));
    for (key, value) in all {
        if fields.contains(key) {
            node.insert(key.into(), value);
        }
    }
    Value::Object(node)
}

/// The `[start, end)` slice of `total` rows a request asks for.
fn page_bounds(req: &GraphRequest, total: usize) -> Result<(usize, usize), &'static str> {
    let limit = match req.param("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw.trim().parse::<usize>().map_err(|_| "(#100) Param limit must be an integer")?.clamp(1, MAX_LIMIT),
    };
    let start = match req.param("after") {
        None => 0,
        Some(cursor) => URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("row:").and_then(|n| n.parse::<usize>().ok()))
            .ok_or("(#100) The after cursor is invalid")?,
    };
    let start = start.min(total);
    Ok((start, start.saturating_add(limit).min(total)))
}

fn cursor(position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("row:{position}"))
}

/// `{data, paging}`: cursors always (Meta sends `after` even on the last
/// page), `next` only while rows remain.
fn page(base: &Url, req: &GraphRequest, rows: Vec<Value>, start: usize, end: usize, total: usize) -> Value {
    if total == 0 {
        return json!({ "data": rows });
    }
    let mut paging = json!({"cursors": {"before": cursor(start), "after": cursor(end)}});
    if end < total {
        let mut next = base.clone();
        next.set_path(&format!("{}/{}", req.version, req.segments.join("/")));
        next.query_pairs_mut()
            .extend_pairs(req.params.iter().filter(|(k, _)| k != "after"))
            .append_pair("after", &cursor(end));
        paging["next"] = json!(next.as_str());
    }
    json!({ "data": rows, "paging": paging })
}

fn pick(fields: &std::collections::HashSet<String>, pairs: Vec<(&str, Value)>) -> Value {
    let mut row = Map::new();
    for (key, value) in pairs {
        if key == "id" || fields.contains(key) {
            row.insert(key.to_owned(), value);
        }
    }
    Value::Object(row)
}

/// `GET /act_x/campaigns`.
pub(super) fn campaigns(state: &mut State, base: &Url, req: &GraphRequest, account: usize) -> Reply {
    let total = state.accounts[account].campaigns.len();
    let (start, end) = match page_bounds(req, total) {
        Ok(bounds) => bounds,
        Err(message) => return invalid(state, None, message, Some(account)),
    };
    let fields = req.fields(&["id"]);
    let rows = state.accounts[account].campaigns[start..end]
        .iter()
        .map(|c| {
            let mut pairs = vec![
                ("id", json!(c.id)),
                ("name", json!(c.name)),
                ("status", json!(c.status())),
                ("effective_status", json!(c.status())),
            ];
            match &c.budget {
                Budget::Daily(daily) => pairs.push(("daily_budget", json!(daily.current().to_string()))),
                Budget::Lifetime(total) => pairs.push(("lifetime_budget", json!(total.to_string()))),
                Budget::AdSets(_) => {}
            }
            pick(&fields, pairs)
        })
        .collect();
    Reply::ok(page(base, req, rows, start, end, total), Some(account))
}

/// `GET /act_x/adsets`: every ad set of the account, in campaign order.
pub(super) fn adsets(state: &mut State, base: &Url, req: &GraphRequest, account: usize) -> Reply {
    let a = &state.accounts[account];
    let all: Vec<(usize, usize)> = a
        .campaigns
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| match &c.budget {
            Budget::AdSets(sets) => (0..sets.len()).map(|si| (ci, si)).collect(),
            _ => Vec::new(),
        })
        .collect();
    let (start, end) = match page_bounds(req, all.len()) {
        Ok(bounds) => bounds,
        Err(message) => return invalid(state, None, message, Some(account)),
    };
    let fields = req.fields(&["id"]);
    let rows = all[start..end]
        .iter()
        .filter_map(|&(ci, si)| {
            let c = &a.campaigns[ci];
            let Budget::AdSets(sets) = &c.budget else { return None };
            let s = &sets[si];
            Some(pick(&fields, vec![
                ("id", json!(s.id)),
                ("name", json!(s.name)),
                ("campaign_id", json!(c.id)),
                ("status", json!(status_name(s.active.current()))),
                ("effective_status", json!(adset_effective_status(c.active.current(), s.active.current()))),
                ("daily_budget", json!(s.daily.current().to_string())),
            ]))
        })
        .collect();
    Reply::ok(page(base, req, rows, start, end, all.len()), Some(account))
}

/// The days a request covers, in the account's time zone.
fn window(req: &GraphRequest, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), (i64, &'static str)> {
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
    let now = state.clock.now();
    let tz = state.accounts[account].tz;
    let today = now.with_timezone(&tz).date_naive();
    if req.param("level").is_some_and(|l| l != "campaign") {
        return invalid(state, None, "(#100) The sandbox serves level=campaign only", Some(account));
    }
    let (since, until) = match window(req, today) {
        Ok(range) => range,
        Err((code, message)) => return error_reply(state, &MetaErrorSpec::permanent(code, None, message), Some(account)),
    };
    if since < today - Duration::days(OLDEST_DAYS) {
        let spec = MetaErrorSpec::permanent(3018, None, "The start date of the time range cannot be beyond 37 months from the current date");
        return error_reply(state, &spec, Some(account));
    }
    let total = state.accounts[account].campaigns.len();
    let (start, end) = match page_bounds(req, total) {
        Ok(bounds) => bounds,
        Err(message) => return invalid(state, None, message, Some(account)),
    };
    let fields = req.fields(&["impressions", "spend"]);
    let slots = hours(tz, since, until, now);
    let a = &state.accounts[account];
    let (date_start, date_stop) = (since.to_string(), until.to_string());
    let rows = a.campaigns[start..end]
        .iter()
        .filter_map(|c| {
            let f = c.figures(state.seed, &slots);
            // Meta has no row for a campaign that did not deliver.
            (f.impressions > 0 || f.spend_minor > 0).then(|| {
                let mut row = insights_row(&f, a.offset, &fields);
                let extra = [
                    ("campaign_id", json!(c.id)),
                    ("campaign_name", json!(c.name)),
                    ("account_id", json!(a.bare_id())),
                    ("account_currency", json!(a.currency)),
                ];
                for (key, value) in extra {
                    if fields.contains(key) {
                        row.insert(key.into(), value);
                    }
                }
                row.insert("date_start".into(), json!(date_start));
                row.insert("date_stop".into(), json!(date_stop));
                Value::Object(row)
            })
        })
        .collect();
    Reply::ok(page(base, req, rows, start, end, total), Some(account))
}

/// Purchase action types Meta reports side by side for the same purchases:
/// a client that sums them counts each purchase three times.
const PURCHASE_TYPES: [&str; 3] = ["omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase"];

/// Metric fields of a row, as Meta writes them: numbers as strings, money in
/// major units, metrics with no data left out.
fn insights_row(f: &Figures, offset: i64, fields: &std::collections::HashSet<String>) -> Map<String, Value> {
    let mut row = Map::new();
    let mut put = |key: &str, value: Value| {
        if fields.contains(key) {
            row.insert(key.to_owned(), value);
        }
    };
    put("spend", json!(minor_to_major(f.spend_minor, offset)));
    put("impressions", json!(f.impressions.to_string()));
    put("clicks", json!(f.clicks.to_string()));
    if f.impressions > 0 {
        put("ctr", json!(trim(f.clicks as f64 / f.impressions as f64 * 100.0)));
        put("cpm", json!(trim(f.spend_minor as f64 / offset as f64 / f.impressions as f64 * 1_000.0)));
    }
    let mut actions = vec![json!({"action_type": "link_click", "value": f.clicks.to_string()})];
    if f.conversions > 0 {
        actions.extend(PURCHASE_TYPES.iter().map(|t| json!({"action_type": t, "value": f.conversions.to_string()})));
    }
    if f.clicks > 0 || f.conversions > 0 {
        put("actions", Value::Array(actions));
    }
    if f.revenue_minor > 0 {
        let value = minor_to_major(f.revenue_minor, offset);
        put("action_values", json!(PURCHASE_TYPES.iter().map(|t| json!({"action_type": t, "value": value})).collect::<Vec<_>>()));
        if f.spend_minor > 0 {
            let roas = trim(f.revenue_minor as f64 / f.spend_minor as f64);
            put("purchase_roas", json!([{"action_type": "omni_purchase", "value": roas}]));
        }
    }
    row
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
        let req = |preset: &str| GraphRequest::new(super::super::graph::Method::Get, "/act_1/insights", vec![("date_preset".into(), preset.into())]);
        let d = |day: u32| NaiveDate::from_ymd_opt(2026, 6, day).expect("date");
        assert_eq!(window(&req("today"), today), Ok((today, today)));
        assert_eq!(window(&req("yesterday"), today), Ok((d(9), d(9))));
        assert_eq!(window(&req("last_3d"), today), Ok((d(7), d(9))));
        assert_eq!(window(&req("this_week_mon_today"), today), Ok((d(8), today)));
        assert!(window(&req("last_24_hours"), today).is_err());
    }
}
