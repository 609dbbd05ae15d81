//! Graph API answers are input too: a proxy between the client and the
//! sandbox corrupts them (malformed JSON, missing fields, absurd numbers,
//! wrong types, huge bodies), and a full cycle must neither crash nor store
//! nonsense: failures are recorded, stored figures stay plausible, and no
//! budget outside the rule's limits reaches the platform.
use autoscaler::domain::action::{ActionStatus, ActionType};
use autoscaler::domain::rule::MAX_AMOUNT_MINOR;
use autoscaler::persistence::entity::performance_snapshot;
use autoscaler::persistence::history::{self, Order};
use autoscaler::platform::sandbox::SandboxAccounts;
use autoscaler::service::cycle::{CycleMode, run_cycle};
use meta_sandbox::{
    AccountSpec, AdSetSpec, BudgetHolderSpec, CampaignSpec, Performance, Sandbox, ScriptedMetrics, SpecStatus,
};
use sea_orm::EntityTrait;
use serde_json::Value;

use crate::graph_proxy::{GraphProxy, Reply, Seen};
use crate::helpers::{TestApp, backends, spawn_app_with};

const ACCOUNT: &str = "act_4242";
/// The default rule's limits (USD): what any written budget must respect.
const MIN_BUDGET: i64 = 1_000;
const MAX_BUDGET: i64 = 100_000;

fn metrics(spend: i64, revenue: i64, impressions: i64, clicks: i64) -> ScriptedMetrics {
    ScriptedMetrics { spend_minor: spend, revenue_minor: revenue, impressions, clicks, conversions: revenue / 4_500 }
}

/// A winner, a loser, a steady campaign and one budgeted on its ad sets.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::empty();
    let account = AccountSpec {
        id: ACCOUNT.into(),
        name: "Hostile".into(),
        currency: "USD".into(),
        timezone_name: "Europe/Berlin".into(),
    };
    sandbox.add_account(account).expect("account");
    let campaigns = [
        CampaignSpec::scripted("7001", "Winner", 20_000, metrics(10_000, 45_000, 50_000, 1_600)),
        CampaignSpec::scripted("7002", "Loser", 15_000, metrics(15_000, 12_000, 20_000, 220)),
        CampaignSpec::scripted("7003", "Steady", 30_000, metrics(10_000, 20_000, 30_000, 600)),
        CampaignSpec {
            id: "7004".into(),
            name: "Ad sets".into(),
            budget: BudgetHolderSpec::AdSets(vec![
                AdSetSpec { id: "7104".into(), daily_budget_minor: 8_000, status: SpecStatus::Active },
                AdSetSpec { id: "7105".into(), daily_budget_minor: 6_000, status: SpecStatus::Active },
            ]),
            status: SpecStatus::Active,
            performance: Performance::Scripted(metrics(9_000, 40_000, 40_000, 1_400)),
        },
    ];
    for campaign in campaigns {
        sandbox.add_campaign(ACCOUNT, campaign).expect("campaign");
    }
    sandbox
}

/// Applies `f` to every (key, value) of every object in `value`, depth first.
fn walk(value: &mut Value, f: &dyn Fn(&str, &mut Value)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                f(key, child);
                walk(child, f);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| walk(item, f)),
        _ => {}
    }
}

/// Rewrites JSON answers with `f`, including the bodies inside batch answers
/// (JSON text in `body`).
fn rewrite_json(reply: &mut Reply, f: &dyn Fn(&str, &mut Value)) {
    let Some(mut json) = reply.json() else { return };
    if let Value::Array(ops) = &mut json {
        for op in ops.iter_mut() {
            if let Some(Value::String(body)) = op.get_mut("body")
                && let Ok(mut inner) = serde_json::from_str::<Value>(body)
            {
                walk(&mut inner, f);
                *body = inner.to_string();
            }
        }
    } else {
        walk(&mut json, f);
    }
    reply.set_json(&json);
}

type Corruption = Box<dyn Fn(&Seen, &mut Reply) + Send + Sync>;

fn set_keys(keys: &'static [&'static str], to: Value) -> Corruption {
    Box::new(move |_, reply| {
        rewrite_json(reply, &|key, value| {
            if keys.contains(&key) {
                *value = to.clone();
            }
        })
    })
}

fn remove_keys(keys: &'static [&'static str]) -> Corruption {
    Box::new(move |_, reply| {
        rewrite_json(reply, &|_, value| {
            if let Value::Object(map) = value {
                map.retain(|k, _| !keys.contains(&k.as_str()));
            }
        });
        if let Some(Value::Object(mut top)) = reply.json() {
            top.retain(|k, _| !keys.contains(&k.as_str()));
            reply.set_json(&Value::Object(top));
        }
    })
}

fn body(status: u16, text: &'static str) -> Corruption {
    Box::new(move |_, reply| {
        reply.status = status;
        reply.body = text.as_bytes().to_vec();
    })
}

/// The corruptions, each named. Reads (GET) and batch answers (POST) alike.
fn corruptions() -> Vec<(&'static str, Corruption)> {
    vec![
        ("truncated JSON", body(200, r#"{"data": [{"id": "7001", "daily_budget": "#)),
        ("HTML instead of JSON", body(200, "<html><body>502 Bad Gateway</body></html>")),
        ("empty body", body(200, "")),
        ("deeply nested JSON", Box::new(|_, reply| reply.body = "[".repeat(100_000).into_bytes())),
        ("no data list", remove_keys(&["data"])),
        ("no ids", remove_keys(&["id", "campaign_id"])),
        ("no budgets or spend", remove_keys(&["daily_budget", "spend", "currency", "account_currency"])),
        ("spend of 1e308", set_keys(&["spend"], Value::String("1e308".into()))),
        ("negative spend", set_keys(&["spend"], Value::String("-250.00".into()))),
        ("NaN spend", set_keys(&["spend", "ctr"], Value::String("NaN".into()))),
        ("infinite CTR", set_keys(&["ctr"], Value::String("1e999".into()))),
        ("CTR of 1e308", set_keys(&["ctr"], serde_json::json!(1e308))),
        ("20-digit counts", set_keys(&["impressions", "clicks"], Value::String("99999999999999999999".into()))),
        ("negative counts", set_keys(&["impressions", "clicks"], Value::String("-5".into()))),
        ("20-digit budgets", set_keys(&["daily_budget"], Value::String("99999999999999999999".into()))),
        ("19-digit budgets", set_keys(&["daily_budget"], Value::String("9223372036854775807".into()))),
        ("budgets of 1e308", set_keys(&["daily_budget"], serde_json::json!(1e308))),
        ("negative budgets", set_keys(&["daily_budget"], Value::String("-5000".into()))),
        ("revenue of 1e308", set_keys(&["value"], Value::String("1e308".into()))),
        ("numbers as objects", set_keys(&["spend", "daily_budget", "impressions"], serde_json::json!({"x": 1}))),
        ("data as a string", set_keys(&["data"], Value::String("data".into()))),
        ("unknown currency", set_keys(&["currency", "account_currency"], Value::String("ZZZZZZZZ".into()))),
        (
            "huge body",
            Box::new(|seen, reply| {
                if seen.path.ends_with("/insights") {
                    let padding = "x".repeat(24 * 1024 * 1024);
                    reply.body = format!(r#"{{"data": [], "padding": "{padding}"}}"#).into_bytes();
                }
            }),
        ),
    ]
}

/// Checks that nothing absurd is stored and nothing outside the rule's
/// limits was written to the platform.
async fn absurdities(app: &TestApp, sandbox: &Sandbox, scenario: &str) -> Vec<String> {
    let mut found = Vec::new();
    let actions = history::list_actions(&app.state.db, &Default::default(), None, Order::OldestFirst, 10_000)
        .await
        .unwrap_or_else(|e| panic!("{scenario}: actions unreadable: {e}"));
    for record in &actions {
        let a = &record.action;
        let m = &a.metrics;
        let budgets = (0..=MAX_AMOUNT_MINOR).contains(&a.old_budget_minor)
            && (a.new_budget_minor == a.old_budget_minor
                || a.new_budget_minor == 0
                || (MIN_BUDGET..=MAX_BUDGET).contains(&a.new_budget_minor));
        let finite = m.figures.roas().is_finite() && m.figures.ctr_percent.is_finite();
        let figures = [
            m.figures.spend_minor,
            m.figures.revenue_minor,
            m.figures.impressions,
            m.figures.clicks,
            m.figures.conversions,
        ]
        .iter()
        .all(|v| (0..=MAX_AMOUNT_MINOR).contains(v))
            && m.figures.roas() >= 0.0
            && (0.0..=100.0).contains(&m.figures.ctr_percent);
        // A refusal keeps Meta's figures as evidence, with the reason, and
        // changes nothing; anything else must rest on plausible figures.
        let refusal = a.action_type == ActionType::InsufficientData
            && record.status == ActionStatus::Skipped
            && a.new_budget_minor == a.old_budget_minor;
        if !(budgets && finite && (figures || refusal)) {
            found.push(format!("{scenario}: absurd action stored: {record:?}"));
        }
    }
    let snapshots = performance_snapshot::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap_or_else(|e| panic!("{scenario}: snapshots unreadable: {e}"));
    // Snapshots of a campaign whose decision was a refusal keep the same
    // evidence.
    let refused = |s: &performance_snapshot::Model| {
        actions.iter().any(|r| {
            r.action.action_type == ActionType::InsufficientData
                && r.action.campaign_id == s.campaign_id
                && r.action.cycle_id == s.cycle_id
        })
    };
    for s in &snapshots {
        let finite = s.roas.is_finite() && s.ctr_percent.is_finite();
        let figures = [s.spend_minor, s.revenue_minor, s.impressions, s.clicks, s.conversions, s.daily_budget_minor]
            .iter()
            .all(|v| (0..=MAX_AMOUNT_MINOR).contains(v))
            && s.roas >= 0.0
            && (0.0..=100.0).contains(&s.ctr_percent);
        if !(finite && (figures || refused(s))) {
            found.push(format!("{scenario}: absurd snapshot stored: {s:?}"));
        }
    }
    for write in sandbox.writes() {
        if write.field == "daily_budget" {
            let value: i64 = write.value.parse().unwrap_or(-1);
            if !(MIN_BUDGET..=MAX_BUDGET).contains(&value) {
                found.push(format!("{scenario}: wrote budget {write:?}"));
            }
        }
    }
    found
}

/// Runs a full cycle under every corruption `wanted` selects, then a clean
/// one, and returns what went wrong.
async fn run_scenarios(wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    for backend in backends() {
        for (scenario, corruption) in corruptions().into_iter().filter(|(name, _)| wanted(name)) {
            let sandbox = sandbox();
            let running = sandbox.start().await.expect("sandbox");
            let proxy = GraphProxy::start(running.base_url().as_str()).await;
            let app = spawn_app_with(backend, |settings| {
                settings.meta.access_token = Some(running.access_token().into());
                settings.meta.graph_url = proxy.base_url.clone();
                settings.meta.account_ids = sandbox.account_ids();
                settings.meta.max_retries = 1;
            })
            .await;
            proxy.tamper(move |seen, reply| corruption(seen, reply));
            let cycle = tokio::spawn({
                let state = app.state.clone();
                async move { run_cycle(&state, CycleMode::Optimize, false, &[]).await }
            });
            match cycle.await {
                Err(e) => {
                    problems.push(format!("{backend:?} {scenario}: the cycle panicked: {e}"));
                    continue;
                }
                Ok(Ok(report)) if report.failures.is_empty() && report.campaigns_evaluated == 0 => {
                    problems.push(format!("{backend:?} {scenario}: evaluated nothing and said nothing: {report:?}"));
                }
                Ok(_) => {}
            }
            let found = absurdities(&app, &sandbox, scenario).await;
            if !found.is_empty() {
                problems.extend(found);
                continue;
            }
            // The service recovers once Meta answers sensibly again.
            proxy.clear();
            match run_cycle(&app.state, CycleMode::Optimize, false, &[]).await {
                Ok(report) if report.campaigns_evaluated > 0 => {}
                other => problems.push(format!("{backend:?} {scenario}: no recovery: {other:?}")),
            }
            problems.extend(absurdities(&app, &sandbox, scenario).await);
        }
    }
    problems
}

#[tokio::test]
async fn corrupted_graph_answers_neither_crash_the_cycle_nor_store_nonsense() {
    let problems = run_scenarios(|_| true).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
