//! The sandbox's account node and edges (`/campaigns`, `/adsets`) with Meta's
//! cursor paging: `limit`, `after`, and an absolute `paging.next` URL that
//! carries the access token, as Meta's does.
use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::graph::{GraphRequest, Reply, adset_effective_status, invalid};
use super::state::{Budget, State, status_name};

/// Meta's default page size.
const DEFAULT_LIMIT: usize = 25;
/// Largest page the sandbox serves.
const MAX_LIMIT: usize = 5_000;

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
pub(super) fn page_bounds(req: &GraphRequest, total: usize) -> Result<(usize, usize), &'static str> {
    let limit = match req.param("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => {
            raw.trim().parse::<usize>().map_err(|_| "(#100) Param limit must be an integer")?.clamp(1, MAX_LIMIT)
        }
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
#[derive(Serialize)]
pub(super) struct Page<T> {
    data: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paging: Option<Paging>,
}

#[derive(Serialize)]
struct Paging {
    cursors: Cursors,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Serialize)]
struct Cursors {
    before: String,
    after: String,
}

impl<T> Page<T> {
    /// Rows `[start, end)` of `total`, with the paging Meta would add.
    pub(super) fn new(
        base: &Url,
        req: &GraphRequest,
        data: Vec<T>,
        (start, end): (usize, usize),
        total: usize,
    ) -> Self {
        if total == 0 {
            return Self { data, paging: None };
        }
        let next = (end < total).then(|| {
            let mut next = base.clone();
            next.set_path(&format!("{}/{}", req.version, req.segments.join("/")));
            next.query_pairs_mut()
                .extend_pairs(req.params.iter().filter(|(k, _)| k != "after"))
                .append_pair("after", &cursor(end));
            next.to_string()
        });
        Self { data, paging: Some(Paging { cursors: Cursors { before: cursor(start), after: cursor(end) }, next }) }
    }
}

/// Which of a row's fields the request asked for.
pub(super) struct Wanted(HashSet<String>);

impl Wanted {
    /// The request's `fields`, or `default`.
    pub(super) fn new(req: &GraphRequest, default: &[&'static str]) -> Self {
        Self(req.fields(default))
    }

    /// `value()` when `key` was asked for.
    pub(super) fn get<T>(&self, key: &str, value: impl FnOnce() -> T) -> Option<T> {
        self.0.contains(key).then(value)
    }
}

/// A campaign or ad set row; fields not asked for or not held are left out.
#[derive(Serialize)]
struct ObjectRow<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    daily_budget: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifetime_budget: Option<String>,
}

/// `GET /act_x/campaigns`.
pub(super) fn campaigns(state: &mut State, base: &Url, req: &GraphRequest, account: usize) -> Reply {
    let total = state.accounts[account].campaigns.len();
    let bounds = match page_bounds(req, total) {
        Ok(bounds) => bounds,
        Err(message) => return invalid(state, None, message, Some(account)),
    };
    let want = Wanted::new(req, &["id"]);
    let rows: Vec<ObjectRow<'_>> = state.accounts[account].campaigns[bounds.0..bounds.1]
        .iter()
        .map(|c| ObjectRow {
            id: &c.id,
            name: want.get("name", || c.name.as_str()),
            campaign_id: None,
            status: want.get("status", || c.status()),
            effective_status: want.get("effective_status", || c.status()),
            daily_budget: match &c.budget {
                Budget::Daily(daily) => want.get("daily_budget", || daily.current().to_string()),
                _ => None,
            },
            lifetime_budget: match &c.budget {
                Budget::Lifetime(total) => want.get("lifetime_budget", || total.to_string()),
                _ => None,
            },
        })
        .collect();
    Reply::ok(&Page::new(base, req, rows, bounds, total), Some(account))
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
    let bounds = match page_bounds(req, all.len()) {
        Ok(bounds) => bounds,
        Err(message) => return invalid(state, None, message, Some(account)),
    };
    let want = Wanted::new(req, &["id"]);
    let rows: Vec<ObjectRow<'_>> = all[bounds.0..bounds.1]
        .iter()
        .filter_map(|&(ci, si)| {
            let c = &a.campaigns[ci];
            let Budget::AdSets(sets) = &c.budget else { return None };
            let s = &sets[si];
            Some(ObjectRow {
                id: &s.id,
                name: want.get("name", || s.name.as_str()),
                campaign_id: want.get("campaign_id", || c.id.as_str()),
                status: want.get("status", || status_name(s.active.current())),
                effective_status: want
                    .get("effective_status", || adset_effective_status(c.active.current(), s.active.current())),
                daily_budget: want.get("daily_budget", || s.daily.current().to_string()),
                lifetime_budget: None,
            })
        })
        .collect();
    Reply::ok(&Page::new(base, req, rows, bounds, all.len()), Some(account))
}
