//! The sandbox's Graph API: routing of one (possibly batched) request, object
//! reads and writes under Meta's rules, errors and usage headers in Meta's shape.
use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::spec::MetaErrorSpec;
use super::state::{Budget, ObjectRef, State, status_name};
use super::{AppliedWrite, RequestKind, edges, hourly, insights};

/// Meta's smallest daily budget the sandbox accepts, in minor units ($1, ¥100).
const MIN_DAILY_BUDGET: i64 = 100;
/// Meta allows 4 budget changes per ad set per hour.
const AD_SET_BUDGET_CHANGES_PER_HOUR: usize = 4;
/// Calls per account and hour that make 100% in the usage headers.
const HOURLY_QUOTA: u64 = 10_000;

/// GET or POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Post,
}

/// One Graph request, from HTTP or from a batch operation.
#[derive(Debug, Clone)]
pub(super) struct GraphRequest {
    pub(super) method: Method,
    /// The version segment of the path (`v26.0`), or the default.
    pub(super) version: String,
    /// Path segments after the version.
    pub(super) segments: Vec<String>,
    /// Query and form parameters, in order.
    pub(super) params: Vec<(String, String)>,
}

impl GraphRequest {
    /// Splits `/v26.0/act_1/insights` into version and segments.
    pub(super) fn new(method: Method, path: &str, params: Vec<(String, String)>) -> Self {
        let mut segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
        let version = match segments.first() {
            Some(v) if v.starts_with('v') && v[1..].contains('.') => segments.remove(0),
            _ => "v26.0".to_owned(),
        };
        Self { method, version, segments, params }
    }

    /// The first value of `name`.
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The requested `fields`, or `default` when none were asked.
    pub(super) fn fields(&self, default: &[&'static str]) -> HashSet<String> {
        match self.param("fields") {
            Some(list) if !list.trim().is_empty() => list.split(',').map(|f| f.trim().to_owned()).collect(),
            _ => default.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// What the request does, for the request counts.
    pub(super) fn kind(&self) -> RequestKind {
        match (self.method, self.segments.as_slice()) {
            (Method::Get, [a]) if a.starts_with("act_") => RequestKind::Account,
            (Method::Get, [_, e]) if e == "campaigns" => RequestKind::Campaigns,
            (Method::Get, [_, e]) if e == "adsets" => RequestKind::AdSets,
            (Method::Get, [_, e]) if e == "insights" => RequestKind::Insights,
            (Method::Get, [_]) => RequestKind::ObjectRead,
            (Method::Post, [_]) => RequestKind::ObjectWrite,
            (Method::Post, []) => RequestKind::Batch,
            _ => RequestKind::Other,
        }
    }
}

/// An answer: HTTP status, serialized JSON body, and the account it concerns
/// (for the usage headers). Bodies are serialized straight from typed rows:
/// building `Value` trees cost more than the whole simulated market.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: String,
    pub(super) account: Option<usize>,
}

impl Reply {
    pub(super) fn ok(body: &impl Serialize, account: Option<usize>) -> Self {
        // Our own types always serialize; an empty object keeps the reply JSON regardless.
        let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
        Self { status: 200, body, account }
    }
}

/// Meta's error body for `spec`.
pub(super) fn error_reply(state: &mut State, spec: &MetaErrorSpec, account: Option<usize>) -> Reply {
    let mut error = json!({
        "message": spec.message,
        "type": if spec.code == 100 { "GraphMethodException" } else { "OAuthException" },
        "code": spec.code,
        "is_transient": spec.is_transient,
        "fbtrace_id": state.trace_id(),
    });
    if let Some(sub) = spec.subcode {
        error["error_subcode"] = json!(sub);
    }
    Reply { status: spec.http_status, body: json!({ "error": error }).to_string(), account }
}

/// `(#100)`-style invalid parameter.
pub(super) fn invalid(state: &mut State, subcode: Option<i64>, message: &str, account: Option<usize>) -> Reply {
    error_reply(state, &MetaErrorSpec::permanent(100, subcode, message), account)
}

fn not_found(state: &mut State, method: Method, id: &str) -> Reply {
    let verb = if method == Method::Get { "get" } else { "post" };
    let message = format!(
        "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
    );
    invalid(state, Some(33), &message, None)
}

/// Routes one request (the token was already checked).
pub(super) fn dispatch(state: &mut State, base: &Url, req: &GraphRequest) -> Reply {
    *state.by_kind.entry(req.kind()).or_default() += 1;
    let Some(target) = req.segments.first().cloned() else {
        return invalid(state, None, "(#100) Missing object id", None);
    };
    let account = state.account_of(&target);
    if let Some(spec) = state.faults.object_error(&target) {
        return error_reply(state, &spec, account);
    }
    if req.method == Method::Get
        && let Some(spec) = state.faults.read_error(&target)
    {
        return error_reply(state, &spec, account);
    }
    let Some(account) = account else {
        return not_found(state, req.method, &target);
    };
    let account_id = state.accounts[account].id.clone();
    if let Some(spec) = state.faults.throttle_hit(&account_id) {
        return error_reply(state, &spec, Some(account));
    }
    count_call(state, account);
    match (req.method, req.segments.as_slice()) {
        (Method::Get, [id]) if *id == account_id => Reply::ok(&edges::account_node(state, account, req), Some(account)),
        (Method::Get, [_, edge]) if target == account_id => match edge.as_str() {
            "campaigns" => edges::campaigns(state, base, req, account),
            "adsets" => edges::adsets(state, base, req, account),
            "insights" => {
                // A person edits a budget while the insights are being read.
                if let Some((id, edit)) = state.faults.take_hand_edit() {
                    edit_by_hand(state, &id, &edit);
                }
                insights::insights(state, base, req, account)
            }
            other => error_reply(
                state,
                &MetaErrorSpec::permanent(2500, None, &format!("Unknown path components: /{other}")),
                Some(account),
            ),
        },
        (Method::Get, [id]) => match state.objects.get(id).copied() {
            Some(object) => Reply::ok(&object_node(state, object, req), Some(account)),
            None => not_found(state, req.method, id),
        },
        (Method::Post, [id]) => match state.objects.get(id).copied() {
            Some(object) => update(state, object, req, account),
            None => not_found(state, req.method, id),
        },
        (_, [id, edge]) if edge == "budget_schedules" => hourly::budget_schedules(state, base, req, id, account),
        _ => error_reply(state, &MetaErrorSpec::permanent(2500, None, "Unknown path components"), Some(account)),
    }
}

fn count_call(state: &mut State, account: usize) {
    let hour = state.clock.now().timestamp().div_euclid(3_600);
    let calls = &mut state.accounts[account].calls;
    *calls = if calls.0 == hour { (hour, calls.1 + 1) } else { (hour, 1) };
}

/// A campaign or ad set node with the requested fields.
fn object_node(state: &State, object: ObjectRef, req: &GraphRequest) -> Value {
    let fields = req.fields(&["id", "name"]);
    let mut node = Map::new();
    let mut put = |key: &str, value: Value| {
        if fields.contains(key) || key == "id" {
            node.insert(key.to_owned(), value);
        }
    };
    match object {
        ObjectRef::Campaign { account, campaign } => {
            let a = &state.accounts[account];
            let c = &a.campaigns[campaign];
            put("id", json!(c.id));
            put("name", json!(c.name));
            put("account_id", json!(a.bare_id()));
            put("status", json!(c.status()));
            put("effective_status", json!(c.status()));
            match &c.budget {
                Budget::Daily(daily) => put("daily_budget", json!(daily.current().to_string())),
                Budget::Lifetime(total) => put("lifetime_budget", json!(total.to_string())),
                Budget::AdSets(_) => {}
            }
        }
        ObjectRef::AdSet { account, campaign, adset } => {
            let a = &state.accounts[account];
            let c = &a.campaigns[campaign];
            let Budget::AdSets(sets) = &c.budget else { return Value::Object(node) };
            let s = &sets[adset];
            put("id", json!(s.id));
            put("name", json!(s.name));
            put("account_id", json!(a.bare_id()));
            put("campaign_id", json!(c.id));
            put("status", json!(status_name(s.active.current())));
            put("effective_status", json!(adset_effective_status(c.active.current(), s.active.current())));
            put("daily_budget", json!(s.daily.current().to_string()));
        }
    }
    Value::Object(node)
}

/// An ad set under a paused campaign is `CAMPAIGN_PAUSED`.
pub(super) fn adset_effective_status(campaign_active: bool, adset_active: bool) -> &'static str {
    match (campaign_active, adset_active) {
        (_, false) => "PAUSED",
        (false, true) => "CAMPAIGN_PAUSED",
        (true, true) => "ACTIVE",
    }
}

/// `POST /{id}` with `daily_budget` and/or `status`, under Meta's rules.
fn update(state: &mut State, object: ObjectRef, req: &GraphRequest, account: usize) -> Reply {
    let id = req.segments[0].clone();
    let budget = match req.param("daily_budget").map(|raw| raw.trim().parse::<i64>()) {
        None => None,
        Some(Ok(b)) if b > 0 => Some(b),
        Some(_) => return invalid(state, None, "(#100) Param daily_budget must be a positive integer", Some(account)),
    };
    let status = match req.param("status") {
        None => None,
        Some("ACTIVE") => Some(true),
        Some("PAUSED") => Some(false),
        Some(_) => return invalid(state, None, "(#100) Param status must be one of {ACTIVE, PAUSED}", Some(account)),
    };
    if budget.is_none() && status.is_none() {
        return invalid(state, None, "(#100) No supported field to update (daily_budget, status)", Some(account));
    }
    if let Some(b) = budget
        && let Err(reply) = check_budget(state, object, b, account)
    {
        return reply;
    }
    let now = state.clock.now();
    let stick = !state.faults.loses_writes_to(&id);
    for (field, value) in
        [("daily_budget", budget.map(|b| b.to_string())), ("status", status.map(|s| status_name(s).to_owned()))]
    {
        if let Some(value) = value {
            state.writes.push(AppliedWrite {
                at: now,
                object_id: id.clone(),
                field: field.to_owned(),
                value,
                applied: stick,
                by_hand: false,
            });
        }
    }
    if stick {
        let campaign = match object {
            ObjectRef::Campaign { campaign, .. } | ObjectRef::AdSet { campaign, .. } => campaign,
        };
        let c = &mut state.accounts[account].campaigns[campaign];
        match (object, &mut c.budget) {
            (ObjectRef::Campaign { .. }, budget_holder) => {
                if let (Some(b), Budget::Daily(daily)) = (budget, budget_holder) {
                    daily.set(now, b);
                }
                if let Some(s) = status {
                    c.active.set(now, s);
                }
            }
            (ObjectRef::AdSet { adset, .. }, Budget::AdSets(sets)) => {
                if let Some(b) = budget {
                    sets[adset].daily.set(now, b);
                }
                if let Some(s) = status {
                    sets[adset].active.set(now, s);
                }
            }
            (ObjectRef::AdSet { .. }, _) => {}
        }
    }
    Reply::ok(&json!({"success": true}), Some(account))
}

/// Meta's budget rules: the level that holds the budget, the minimum, the
/// spend already made today, and 4 changes per ad set per hour.
fn check_budget(state: &mut State, object: ObjectRef, budget: i64, account: usize) -> Result<(), Reply> {
    let now = state.clock.now();
    let a = &state.accounts[account];
    let (campaign, adset) = match object {
        ObjectRef::Campaign { campaign, .. } => (campaign, None),
        ObjectRef::AdSet { campaign, adset, .. } => (campaign, Some(adset)),
    };
    let c = &a.campaigns[campaign];
    let failure = match (&c.budget, adset) {
        (Budget::AdSets(_), None) | (Budget::Daily(_), Some(_)) => {
            Some((1_885_621, "You can either set budget at the campaign level or at the adset level, not both"))
        }
        (Budget::Lifetime(_), _) => {
            Some((1_885_621, "This campaign has a lifetime budget; a daily budget cannot be set"))
        }
        _ if budget < MIN_DAILY_BUDGET => Some((1_885_272, "Budget is too low")),
        (Budget::AdSets(sets), Some(i))
            if sets[i].daily.changes_after(now - chrono::Duration::hours(1)) >= AD_SET_BUDGET_CHANGES_PER_HOUR =>
        {
            let spec = MetaErrorSpec::permanent(
                613,
                Some(1_487_632),
                "You can only change an ad set's budget 4 times per hour",
            );
            return Err(error_reply(state, &spec, Some(account)));
        }
        _ => None,
    };
    if let Some((subcode, message)) = failure {
        return Err(invalid(state, Some(subcode), message, Some(account)));
    }
    let today = now.with_timezone(&a.tz).date_naive();
    let slots = super::market::hours(a.tz, today, today, now);
    let spent = match (&c.budget, adset) {
        // An ad set's share of today's spend, by its share of the budget as
        // it stood when the day began (not as earlier writes of the same
        // batch left it, which would shift the shares mid-batch).
        (Budget::AdSets(sets), Some(i)) => {
            let day_began = slots.first().map_or(now, |slot| slot.start);
            let total: i64 = sets.iter().map(|s| s.daily.at(day_began)).sum();
            c.spent_today(state.seed, &slots) * sets[i].daily.at(day_began) / total.max(1)
        }
        _ => c.spent_today(state.seed, &slots),
    };
    if budget < spent {
        let message = "Your budget is too low. This minimum amount is required to account for any spending that occurs while your budget is updated, which may take up to 15 minutes.";
        return Err(invalid(state, Some(1_885_650), message, Some(account)));
    }
    Ok(())
}

/// Usage headers for an answer about `account`: Meta's three JSON headers.
pub(super) fn usage_headers(state: &State, account: usize, insights: bool) -> Vec<(&'static str, String)> {
    let a = &state.accounts[account];
    let (pct, regain) = if let Some(announced) = state.faults.usage(&a.id) {
        announced
    } else {
        let used = a.calls.1.saturating_mul(100) / HOURLY_QUOTA;
        (u32::try_from(used.min(99)).unwrap_or(99), std::time::Duration::ZERO)
    };
    let kind = if insights { "ads_insights" } else { "ads_management" };
    let buc = json!({ a.bare_id(): [{
        "type": kind, "call_count": pct, "total_cputime": pct / 2, "total_time": pct / 2,
        // Meta reports whole minutes: a sub-minute wait shows as 0.
        "estimated_time_to_regain_access": regain.as_secs() / 60,
        "ads_api_access_tier": "standard_access",
    }]});
    let mut headers = vec![
        ("x-business-use-case-usage", buc.to_string()),
        (
            "x-ad-account-usage",
            json!({"acc_id_util_pct": pct, "reset_time_duration": regain.as_secs(), "ads_api_access_tier": "standard_access"}).to_string(),
        ),
    ];
    if insights {
        headers.push((
            "x-fb-ads-insights-throttle",
            json!({"app_id_util_pct": 1, "acc_id_util_pct": pct, "ads_api_access_tier": "standard_access"}).to_string(),
        ));
    }
    headers
}

/// Decodes `a=1&b=%20x+y` (query strings and form bodies).
pub(super) fn parse_form(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Applies `edit` to object `id` as a person in Meta's UI would: it takes
/// effect at once and is recorded with `by_hand`. Unknown objects are ignored.
pub(super) fn edit_by_hand(state: &mut State, id: &str, edit: &super::spec::HandEdit) {
    let Some(object) = state.objects.get(id).copied() else { return };
    let Some(account) = state.account_of(id) else { return };
    let params = match edit {
        super::spec::HandEdit::DailyBudget(b) => vec![("daily_budget".to_owned(), b.to_string())],
        super::spec::HandEdit::Pause => vec![("status".to_owned(), "PAUSED".to_owned())],
    };
    let before = state.writes.len();
    let req = GraphRequest::new(Method::Post, id, params);
    let _ = update(state, object, &req, account);
    for write in &mut state.writes[before..] {
        write.by_hand = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_and_paths() {
        assert_eq!(
            parse_form("batch=%5B%7B%22a%22%3A1%7D%5D&x=a+b&flag"),
            vec![("batch".into(), "[{\"a\":1}]".into()), ("x".into(), "a b".into()), ("flag".into(), String::new())]
        );
        let req = GraphRequest::new(Method::Get, "/v26.0/act_1/insights", Vec::new());
        assert_eq!((req.version.as_str(), req.segments.len(), req.kind()), ("v26.0", 2, RequestKind::Insights));
        assert_eq!(GraphRequest::new(Method::Post, "/", Vec::new()).kind(), RequestKind::Batch);
        assert_eq!(GraphRequest::new(Method::Get, "123", Vec::new()).version, "v26.0");
    }
}
