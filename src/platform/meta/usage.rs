//! Meta's usage headers and the per-account gate built on them: an account whose
//! quota is nearly used is slowed down or paused before Meta starts refusing,
//! and a paused account never delays the others.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::time::Instant;

/// Usage at or above this percentage pauses the account until its quota is back.
const PAUSE_AT_PCT: f64 = 90.0;
/// Usage at or above this percentage spaces the account's requests out.
const SLOW_AT_PCT: f64 = 75.0;

/// What one response's usage headers say about its ad account.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Highest usage percentage over every header and counter for the account.
    pub max_pct: f64,
    /// How long until the quota is regained (0 when the headers do not say).
    pub regain: Duration,
}

/// Reads `X-Business-Use-Case-Usage` (the entry keyed by the account's bare
/// id), `X-Ad-Account-Usage` and `X-FB-Ads-Insights-Throttle`. `None` when no
/// header concerns the account.
pub fn parse_usage(headers: &HeaderMap, account: &str) -> Option<Usage> {
    let json = |name: &str| -> Option<Value> { serde_json::from_str(headers.get(name)?.to_str().ok()?).ok() };
    let bare = account.strip_prefix("act_").unwrap_or(account);
    let mut usage = Usage::default();
    let mut seen = false;
    if let Some(buc) = json("x-business-use-case-usage") {
        let entries = buc.get(bare).or_else(|| buc.get(account)).and_then(Value::as_array);
        for entry in entries.into_iter().flatten() {
            seen = true;
            for key in ["call_count", "total_cputime", "total_time"] {
                usage.max_pct = usage.max_pct.max(number(entry.get(key)));
            }
            let minutes = number(entry.get("estimated_time_to_regain_access"));
            usage.regain = usage.regain.max(secs(minutes * 60.0));
        }
    }
    if let Some(acc) = json("x-ad-account-usage") {
        seen = true;
        usage.max_pct = usage.max_pct.max(number(acc.get("acc_id_util_pct")));
        usage.regain = usage.regain.max(secs(number(acc.get("reset_time_duration"))));
    }
    if let Some(insights) = json("x-fb-ads-insights-throttle") {
        seen = true;
        // app_id_util_pct is app-wide: it cannot be answered by pausing one account,
        // and Meta's code-4 errors are retried with back-off instead.
        usage.max_pct = usage.max_pct.max(number(insights.get("acc_id_util_pct")));
    }
    seen.then_some(usage)
}

fn number(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
    .max(0.0)
}

fn secs(s: f64) -> Duration {
    // Bounded so a nonsense header cannot overflow a Duration.
    Duration::from_secs_f64(s.clamp(0.0, 86_400.0))
}

/// What the gate decided before a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Send now.
    Go,
    /// Sleep this long, then send.
    WaitThen(Duration),
    /// Paused for longer than the caller may wait.
    Refuse {
        /// Time left on the pause.
        remaining: Duration,
        /// Meta's code that caused the pause, if any.
        code: Option<i64>,
        /// Meta's subcode.
        subcode: Option<i64>,
        /// Why the account is paused.
        reason: String,
    },
}

#[derive(Debug, Default)]
struct AccountGate {
    paused_until: Option<Instant>,
    pause_code: Option<(i64, Option<i64>)>,
    pause_reason: String,
    /// Next free slot while the account is slowed down.
    next_slot: Option<Instant>,
    slow: bool,
    requests: u64,
    /// Total wait imposed on admitted requests (throttle pauses, spacing).
    waited: Duration,
    /// Highest usage percentage of the last response that reported one.
    last_usage_pct: Option<f64>,
}

/// Per-account throttle state shared by all clones of a client.
#[derive(Debug)]
pub struct Gates {
    accounts: Mutex<HashMap<String, AccountGate>>,
    /// Spacing between requests of a slowed-down account.
    slow_gap: Duration,
    /// Pause when usage crosses the limit but the headers give no regain time.
    default_pause: Duration,
}

impl Gates {
    /// Gates with the given spacing for slowed accounts and fallback pause.
    pub fn new(slow_gap: Duration, default_pause: Duration) -> Self {
        Self { accounts: Mutex::new(HashMap::new()), slow_gap, default_pause }
    }

    fn with<R>(&self, account: &str, f: impl FnOnce(&mut AccountGate) -> R) -> R {
        let mut map = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(map.entry(account.to_owned()).or_default())
    }

    /// Decides whether a request for `account` may go now; counts it if so.
    pub fn admit(&self, account: &str, max_wait: Duration) -> Admission {
        let now = Instant::now();
        self.with(account, |gate| {
            let mut wait = Duration::ZERO;
            if let Some(until) = gate.paused_until {
                if until > now {
                    let remaining = until - now;
                    if remaining > max_wait {
                        let (code, subcode) = gate.pause_code.map_or((None, None), |(c, s)| (Some(c), s));
                        return Admission::Refuse { remaining, code, subcode, reason: gate.pause_reason.clone() };
                    }
                    wait = remaining;
                } else {
                    gate.paused_until = None;
                    gate.pause_code = None;
                }
            }
            if gate.slow {
                // Reserve the next slot now, so concurrent callers queue up rather than burst.
                let slot = gate.next_slot.map_or(now + wait, |s| s.max(now + wait));
                gate.next_slot = Some(slot + self.slow_gap);
                wait = slot - now;
            }
            gate.requests += 1;
            gate.waited += wait;
            if wait.is_zero() { Admission::Go } else { Admission::WaitThen(wait) }
        })
    }

    /// Applies the usage a response reported for `account`.
    pub fn observe(&self, account: &str, usage: Usage) {
        let now = Instant::now();
        self.with(account, |gate| {
            gate.last_usage_pct = Some(usage.max_pct);
            gate.slow = usage.max_pct >= SLOW_AT_PCT;
            if !gate.slow {
                gate.next_slot = None;
            }
            if usage.max_pct >= PAUSE_AT_PCT {
                let pause = if usage.regain.is_zero() { self.default_pause } else { usage.regain };
                let reason = format!("usage at {:.0}% of Meta's quota", usage.max_pct);
                extend_pause(gate, now + pause, None, reason);
            }
        });
    }

    /// Pauses `account` for `pause` after Meta refused a call with a throttle error.
    pub fn pause(&self, account: &str, pause: Duration, code: i64, subcode: Option<i64>, message: &str) {
        let now = Instant::now();
        self.with(account, |gate| extend_pause(gate, now + pause, Some((code, subcode)), message.to_owned()));
    }

    /// Requests admitted for `account` so far.
    pub fn requests(&self, account: &str) -> u64 {
        let map = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(account).map_or(0, |g| g.requests)
    }

    /// Total wait the gate imposed on `account`'s admitted requests so far.
    pub fn waited(&self, account: &str) -> Duration {
        let map = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(account).map_or(Duration::ZERO, |g| g.waited)
    }
}

impl Gates {
    /// Every account whose responses reported usage, with the highest
    /// percentage of the last such response, sorted by account.
    pub fn last_usage(&self) -> Vec<(String, f64)> {
        let map = self.accounts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out: Vec<(String, f64)> =
            map.iter().filter_map(|(account, g)| Some((account.clone(), g.last_usage_pct?))).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn extend_pause(gate: &mut AccountGate, until: Instant, code: Option<(i64, Option<i64>)>, reason: String) {
    if gate.paused_until.is_none_or(|current| current < until) {
        gate.paused_until = Some(until);
        gate.pause_code = code.or(gate.pause_code);
        gate.pause_reason = reason;
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("ascii"));
        }
        map
    }

    #[test]
    fn reads_the_accounts_business_use_case_entry() {
        let h = headers(&[(
            "x-business-use-case-usage",
            concat!(
                r#"{"1":[{"type":"ads_management","call_count":95,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":2}],"#,
                r#""2":[{"type":"ads_management","call_count":1,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}]}"#
            ),
        )]);
        assert_eq!(parse_usage(&h, "act_1"), Some(Usage { max_pct: 95.0, regain: Duration::from_secs(120) }));
        assert_eq!(parse_usage(&h, "act_2").map(|u| u.max_pct), Some(1.0));
        assert_eq!(parse_usage(&h, "act_3"), None);
    }

    #[test]
    fn reads_ad_account_and_insights_headers() {
        let h = headers(&[
            (
                "x-ad-account-usage",
                r#"{"acc_id_util_pct":9.67,"reset_time_duration":100,"ads_api_access_tier":"standard_access"}"#,
            ),
            ("x-fb-ads-insights-throttle", r#"{"app_id_util_pct":100,"acc_id_util_pct":10}"#),
        ]);
        assert_eq!(parse_usage(&h, "act_1"), Some(Usage { max_pct: 10.0, regain: Duration::from_secs(100) }));
        assert_eq!(parse_usage(&headers(&[("x-ad-account-usage", "not json")]), "act_1"), None);
    }

    #[test]
    fn high_usage_pauses_only_that_account() {
        let gates = Gates::new(Duration::from_millis(5), Duration::from_secs(1));
        gates.observe("act_1", Usage { max_pct: 95.0, regain: Duration::from_secs(60) });
        assert!(matches!(gates.admit("act_1", Duration::from_secs(30)), Admission::Refuse { .. }));
        assert_eq!(gates.admit("act_2", Duration::from_secs(30)), Admission::Go);
        assert!(matches!(gates.admit("act_1", Duration::from_secs(90)), Admission::WaitThen(_)));
        assert_eq!(gates.last_usage(), [("act_1".to_owned(), 95.0)]);
    }

    #[test]
    fn moderate_usage_spaces_requests() {
        let gates = Gates::new(Duration::from_millis(50), Duration::from_secs(1));
        gates.observe("act_1", Usage { max_pct: 80.0, regain: Duration::ZERO });
        assert_eq!(gates.admit("act_1", Duration::from_secs(1)), Admission::Go);
        assert!(
            matches!(gates.admit("act_1", Duration::from_secs(1)), Admission::WaitThen(w) if w > Duration::from_millis(40))
        );
        gates.observe("act_1", Usage { max_pct: 10.0, regain: Duration::ZERO });
        assert_eq!(gates.admit("act_1", Duration::from_secs(1)), Admission::Go);
    }
}
