//! Hostile input through the real server: property tests over rule creation
//! and updates, action decisions and history queries. Any input either
//! succeeds and leaves a valid stored state, or fails with INVALID_ARGUMENT
//! (NOT_FOUND / FAILED_PRECONDITION / ALREADY_EXISTS where the id or the
//! state says so) and changes nothing. One server per property and backend.
use std::sync::atomic::{AtomicUsize, Ordering};

use autoscaler::auth::{Role, TokenTable};
use autoscaler::domain::action::{ActionRecord, ActionStatus, ActionType};
use autoscaler::domain::rule::{MAX_AMOUNT_MINOR, MAX_COOLDOWN_SECONDS, MAX_NAME_CHARS};
use autoscaler::grpc::convert::{RULE_IMMUTABLE_PATHS, RULE_SETTINGS_PATHS};
use autoscaler::pb::{self, ActionFilter, ScalingRule};
use autoscaler::persistence::history::{self, Order};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tonic::{Code, Request};

use crate::helpers::{Backend, TestApp, backends, record_actions, sample_action, spawn_app_with};

/// A runtime of its own, so that the synchronous proptest runner can drive
/// the async clients between cases while the server keeps running. Fields
/// drop in order: the server stops before its runtime goes.
struct Harness {
    app: TestApp,
    rt: tokio::runtime::Runtime,
}

impl Harness {
    fn start(backend: Backend, adjust: impl FnOnce(&mut autoscaler::config::Settings)) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let app = rt.block_on(spawn_app_with(backend, adjust));
        Harness { app, rt }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Runs `property` over `strategy` (64 cases, little shrinking), on a
    /// thread with room for the deep strategy trees and debug-build futures.
    fn check<S>(&self, strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError> + Sync)
    where
        S: Strategy + Sync,
        S::Value: std::fmt::Debug,
    {
        let config = Config { cases: 64, max_shrink_iters: 64, failure_persistence: None, ..Config::default() };
        let outcome = std::thread::scope(|scope| {
            let runner = std::thread::Builder::new()
                .stack_size(32 << 20)
                .spawn_scoped(scope, || TestRunner::new(config).run(&strategy, &property).map_err(|e| e.to_string()));
            runner.expect("property thread").join()
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => panic!("{failure}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// How many cases of a property succeeded and failed: a property whose
/// every case fails validation would prove little about stored state.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
}

impl Tally {
    fn count<T, E>(&self, result: &Result<T, E>) {
        let counter = if result.is_ok() { &self.ok } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn assert_both_seen(&self, property: &str) {
        let (ok, failed) = (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed));
        assert!(ok > 0 && failed > 0, "{property}: {ok} successes and {failed} failures; the inputs need both");
    }
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   ".to_owned()),
        Just("\0\u{7}\r\n\t".to_owned()),
        Just("x".repeat(MAX_NAME_CHARS)),
        Just("x".repeat(MAX_NAME_CHARS + 1)),
        Just("é".repeat(300_000)),
        Just("\u{202e}ȿ😀 name".to_owned()),
        Just("act_1' OR '1'='1".to_owned()),
        any::<String>(),
        "[a-zA-Z0-9 _-]{1,40}",
    ]
}

fn hostile_f64() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(1e-320),
        any::<f64>(),
        0.0..12.0f64,
    ])
}

fn hostile_i64() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(prop_oneof![
        Just(i64::MAX),
        Just(i64::MIN),
        Just(-1),
        Just(0),
        Just(MAX_AMOUNT_MINOR),
        Just(MAX_AMOUNT_MINOR + 1),
        any::<i64>(),
        0..2_000_000i64,
    ])
}

fn hostile_enum() -> impl Strategy<Value = i32> {
    prop_oneof![0..8i32, any::<i32>(), Just(i32::MIN), Just(i32::MAX)]
}

fn hostile_duration() -> impl Strategy<Value = Option<prost_types::Duration>> {
    prop::option::of(
        (prop_oneof![any::<i64>(), 0..(2 * MAX_COOLDOWN_SECONDS), Just(i64::MAX)], prop_oneof![Just(0), any::<i32>()])
            .prop_map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
    )
}

fn hostile_timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    prop::option::of(
        (prop_oneof![any::<i64>(), 1_700_000_000..1_900_000_000i64], prop_oneof![Just(0), any::<i32>()])
            .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
}

fn account_id() -> impl Strategy<Value = String> {
    prop_oneof![Just("act_1".to_owned()), "act_[0-9]{1,8}", "act_[0-9]{33}", "act_-[0-9]", hostile_string()]
}

fn campaign_id() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[0-9]{1,8}", "[0-9]{33}", hostile_string()]
}

/// Any `ScalingRule` a caller could send.
fn hostile_rule() -> impl Strategy<Value = ScalingRule> {
    let scope = (any::<i64>(), account_id(), campaign_id(), hostile_string(), prop::option::of(any::<bool>()));
    let ratios = (hostile_f64(), hostile_f64(), hostile_f64(), hostile_f64(), hostile_f64());
    let multipliers = (hostile_f64(), hostile_f64(), hostile_f64(), hostile_i64());
    let currency = prop_oneof![Just(String::new()), Just("USD".to_owned()), Just("JPY".to_owned()), "[A-Za-z]{0,5}"];
    let money = (currency, hostile_i64(), hostile_i64(), hostile_i64(), hostile_i64(), hostile_i64());
    let rest = (hostile_duration(), hostile_enum(), prop::option::of(any::<bool>()), hostile_string());
    let marginal = (
        hostile_enum(),
        hostile_f64(),
        hostile_f64(),
        hostile_f64(),
        hostile_f64(),
        hostile_f64(),
        hostile_f64(),
        hostile_f64(),
    );
    (scope, ratios, multipliers, money, rest, marginal).prop_map(
        |((id, account_id, campaign_id, name, enabled), r, m, money, (cooldown, metrics_window, hourly, by), g)| {
            ScalingRule {
                strategy: g.0,
                marginal_max_step_percent: g.1,
                marginal_min_move_percent: g.2,
                marginal_half_life_days: g.3,
                marginal_credible_level: g.4,
                marginal_elasticity_low: g.5,
                marginal_elasticity_high: g.6,
                marginal_pause_evidence: g.7,
                id,
                account_id,
                campaign_id,
                name,
                enabled,
                roas_scale_up_aggressive: r.0,
                ctr_scale_up_aggressive_percent: r.1,
                roas_scale_up: r.2,
                roas_scale_down: r.3,
                roas_pause: r.4,
                multiplier_aggressive_up: m.0,
                multiplier_up: m.1,
                multiplier_down: m.2,
                min_impressions: m.3,
                currency: money.0,
                min_daily_budget_minor: money.1,
                max_daily_budget_minor: money.2,
                max_daily_spend_limit_minor: money.3,
                require_approval_threshold_minor: money.4,
                auto_approve_up_to_minor: money.5,
                cooldown,
                metrics_window,
                apply_hourly_schedule: hourly,
                create_time: None,
                update_time: None,
                created_by: by.clone(),
                updated_by: by,
            }
        },
    )
}

/// Copies field number `field` of `from` into `rule`.
fn overlay(rule: &mut ScalingRule, from: &ScalingRule, field: usize) {
    match field {
        0 => rule.name = from.name.clone(),
        1 => rule.enabled = from.enabled,
        2 => rule.roas_scale_up_aggressive = from.roas_scale_up_aggressive,
        3 => rule.ctr_scale_up_aggressive_percent = from.ctr_scale_up_aggressive_percent,
        4 => rule.roas_scale_up = from.roas_scale_up,
        5 => rule.roas_scale_down = from.roas_scale_down,
        6 => rule.roas_pause = from.roas_pause,
        7 => rule.multiplier_aggressive_up = from.multiplier_aggressive_up,
        8 => rule.multiplier_up = from.multiplier_up,
        9 => rule.multiplier_down = from.multiplier_down,
        10 => rule.min_impressions = from.min_impressions,
        11 => rule.currency = from.currency.clone(),
        12 => rule.min_daily_budget_minor = from.min_daily_budget_minor,
        13 => rule.max_daily_budget_minor = from.max_daily_budget_minor,
        14 => rule.max_daily_spend_limit_minor = from.max_daily_spend_limit_minor,
        15 => rule.require_approval_threshold_minor = from.require_approval_threshold_minor,
        16 => rule.auto_approve_up_to_minor = from.auto_approve_up_to_minor,
        17 => rule.cooldown = from.cooldown,
        18 => rule.metrics_window = from.metrics_window,
        19 => rule.apply_hourly_schedule = from.apply_hourly_schedule,
        20 => rule.account_id = from.account_id.clone(),
        _ => rule.campaign_id = from.campaign_id.clone(),
    }
}

/// Mostly valid rules with up to two hostile fields, and wholly hostile ones:
/// enough of both that successes and failures are each exercised.
fn rule_input() -> impl Strategy<Value = ScalingRule> {
    let base = ("act_[1-9][0-9]{0,8}", prop_oneof![Just(String::new()), "[1-9][0-9]{0,8}"], "[A-Za-z][A-Za-z ]{0,30}")
        .prop_map(|(account_id, campaign_id, name)| ScalingRule {
            account_id,
            campaign_id,
            name,
            ..Default::default()
        });
    let fields = prop::sample::subsequence((0..22).collect::<Vec<usize>>(), 0..=2);
    let near_valid = (base, hostile_rule(), fields).prop_map(|(mut rule, hostile, fields)| {
        for field in fields {
            overlay(&mut rule, &hostile, field);
        }
        rule
    });
    prop_oneof![2 => near_valid, 1 => hostile_rule()]
}

/// Every invariant a stored rule must keep (the proto's field comments).
fn assert_valid_rule(rule: &ScalingRule, principal: &str) -> Result<(), TestCaseError> {
    let f = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let i = |v: Option<i64>| v.unwrap_or(-1);
    let name_chars = rule.name.chars().count();
    prop_assert!(name_chars > 0 && name_chars <= MAX_NAME_CHARS && !rule.name.trim().is_empty());
    prop_assert!(!rule.name.chars().any(char::is_control));
    prop_assert!(rule.account_id.strip_prefix("act_").is_some_and(|d| !d.is_empty() && d.len() <= 32));
    prop_assert!(rule.campaign_id.len() <= 32 && rule.campaign_id.bytes().all(|b| b.is_ascii_digit()));
    let (aggr, ctr, up, down, pause) = (
        f(rule.roas_scale_up_aggressive),
        f(rule.ctr_scale_up_aggressive_percent),
        f(rule.roas_scale_up),
        f(rule.roas_scale_down),
        f(rule.roas_pause),
    );
    for v in [aggr, ctr, up, down, pause] {
        prop_assert!(v.is_finite() && v >= 0.0, "ratio {v}");
    }
    prop_assert!(pause < down && down <= up && up <= aggr && ctr <= 100.0);
    let (m_aggr, m_up, m_down) = (f(rule.multiplier_aggressive_up), f(rule.multiplier_up), f(rule.multiplier_down));
    prop_assert!(m_aggr > 1.0 && m_aggr <= 10.0 && m_up > 1.0 && m_up <= 10.0, "up multipliers {m_aggr} {m_up}");
    prop_assert!(m_down > 0.0 && m_down < 1.0, "down multiplier {m_down}");
    prop_assert!(i(rule.min_impressions) >= 0);
    prop_assert!(autoscaler::domain::money::is_known_currency(&rule.currency), "currency {:?}", rule.currency);
    for amount in [
        rule.min_daily_budget_minor,
        rule.max_daily_budget_minor,
        rule.max_daily_spend_limit_minor,
        rule.require_approval_threshold_minor,
        rule.auto_approve_up_to_minor,
    ] {
        prop_assert!((0..=MAX_AMOUNT_MINOR).contains(&i(amount)), "amount {amount:?}");
    }
    prop_assert!(i(rule.min_daily_budget_minor) <= i(rule.max_daily_budget_minor));
    prop_assert!(i(rule.max_daily_budget_minor) > 0);
    let cooldown = rule.cooldown.as_ref().map_or(-1, |d| d.seconds);
    prop_assert!((0..=MAX_COOLDOWN_SECONDS).contains(&cooldown));
    prop_assert!(pb::MetricsWindow::try_from(rule.metrics_window).is_ok_and(|w| w != pb::MetricsWindow::Unspecified));
    prop_assert_eq!(rule.updated_by.as_str(), principal);
    Ok(())
}

async fn all_rules(app: &TestApp) -> Vec<ScalingRule> {
    let mut rules = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListRulesRequest { account_id: String::new(), page_size: 500, page_token };
        let page = app.rules.clone().list_rules(request).await.expect("list rules").into_inner();
        rules.extend(page.rules);
        if page.next_page_token.is_empty() {
            return rules;
        }
        page_token = page.next_page_token;
    }
}

#[test]
fn any_create_rule_request_stores_a_valid_rule_or_fails_cleanly() {
    for backend in backends() {
        let h = Harness::start(backend, |_| {});
        let tally = Tally::default();
        h.check(rule_input(), |rule| {
            h.block_on(async {
                let before = all_rules(&h.app).await;
                let result = h.app.rules.clone().create_rule(pb::CreateRuleRequest { rule: Some(rule) }).await;
                tally.count(&result);
                let after = all_rules(&h.app).await;
                match result {
                    Ok(response) => {
                        let stored = response.into_inner().rule.expect("rule");
                        assert_valid_rule(&stored, "anonymous")?;
                        prop_assert_eq!(stored.created_by.as_str(), "anonymous");
                        let mut expected = before.clone();
                        expected.push(stored);
                        prop_assert_eq!(after, expected);
                    }
                    Err(status) => {
                        prop_assert!(
                            matches!(status.code(), Code::InvalidArgument | Code::AlreadyExists),
                            "unexpected {:?}",
                            status
                        );
                        prop_assert_eq!(after, before);
                    }
                }
                Ok(())
            })
        });
        tally.assert_both_seen("any_create_rule_request_stores_a_valid_rule_or_fails_cleanly");
    }
}

fn mask_path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(RULE_SETTINGS_PATHS.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(RULE_IMMUTABLE_PATHS.to_vec()).prop_map(str::to_owned),
        1 => Just("*".to_owned()),
        1 => hostile_string(),
    ]
}

#[test]
fn any_update_rule_request_keeps_every_rule_valid_or_changes_nothing() {
    for backend in backends() {
        let h = Harness::start(backend, |_| {});
        let ids: Vec<i64> = h.block_on(async {
            let mut ids = Vec::new();
            for (account, campaign) in [("act_1", ""), ("act_1", "77"), ("act_2", "")] {
                let rule = ScalingRule {
                    account_id: account.into(),
                    campaign_id: campaign.into(),
                    name: "seed".into(),
                    ..Default::default()
                };
                let created = h.app.rules.clone().create_rule(pb::CreateRuleRequest { rule: Some(rule) }).await;
                ids.push(created.expect("seed rule").into_inner().rule.expect("rule").id);
            }
            ids
        });
        let id = prop_oneof![3 => prop::sample::select(ids.clone()), 1 => any::<i64>(), 1 => Just(0i64)];
        let mask = prop::option::of(prop::collection::vec(mask_path(), 0..4));
        let tally = Tally::default();
        h.check((id, rule_input(), mask), |(id, mut rule, mask)| {
            rule.id = id;
            h.block_on(async {
                let before = all_rules(&h.app).await;
                let update_mask = mask.map(|paths| prost_types::FieldMask { paths });
                let result =
                    h.app.rules.clone().update_rule(pb::UpdateRuleRequest { rule: Some(rule), update_mask }).await;
                tally.count(&result);
                let after = all_rules(&h.app).await;
                match result {
                    Ok(response) => {
                        let stored = response.into_inner().rule.expect("rule");
                        prop_assert_eq!(stored.id, id);
                        assert_valid_rule(&stored, "anonymous")?;
                        let old = before.iter().find(|r| r.id == id).expect("updated an existing rule");
                        prop_assert_eq!(
                            (&old.account_id, &old.campaign_id, &old.create_time, &old.created_by),
                            (&stored.account_id, &stored.campaign_id, &stored.create_time, &stored.created_by)
                        );
                        let expected: Vec<ScalingRule> =
                            before.iter().map(|r| if r.id == id { stored.clone() } else { r.clone() }).collect();
                        prop_assert_eq!(after, expected);
                    }
                    Err(status) => {
                        prop_assert!(
                            matches!(status.code(), Code::InvalidArgument | Code::NotFound),
                            "unexpected {:?}",
                            status
                        );
                        prop_assert_eq!(after, before);
                    }
                }
                Ok(())
            })
        });
        tally.assert_both_seen("any_update_rule_request_keeps_every_rule_valid_or_changes_nothing");
    }
}

async fn all_actions(app: &TestApp) -> Vec<ActionRecord> {
    history::list_actions(&app.state.db, &Default::default(), None, Order::OldestFirst, 100_000).await.expect("actions")
}

const APPROVER_TOKEN: &str = "hostile-approver-token";

#[test]
fn any_decide_action_request_records_the_decider_or_changes_nothing() {
    // With a token the principal is recorded; without, the typed name.
    for (backend, authenticated) in backends().into_iter().flat_map(|b| [(b, true), (b, false)]) {
        let h = Harness::start(backend, |settings| {
            if authenticated {
                settings.security.tokens = TokenTable::from_tokens([("ana", Role::Approver, APPROVER_TOKEN)]);
            }
        });
        let (pending, closed) = h.block_on(async {
            let mut batch = Vec::new();
            for i in 0..80 {
                batch.push(sample_action(
                    "act_9",
                    &format!("{}", 500 + i),
                    ActionType::ScaleUp,
                    ActionStatus::PendingApproval,
                ));
            }
            for status in [ActionStatus::Executed, ActionStatus::Rejected, ActionStatus::Skipped] {
                batch.push(sample_action("act_9", "900", ActionType::ScaleUp, status));
            }
            let stored = record_actions(&h.app.state, &batch).await;
            let (pending, closed): (Vec<_>, Vec<_>) =
                stored.iter().partition(|a| a.status == ActionStatus::PendingApproval);
            (pending.iter().map(|a| a.id).collect::<Vec<_>>(), closed.iter().map(|a| a.id).collect::<Vec<_>>())
        });
        let id = prop_oneof![
            4 => prop::sample::select(pending),
            1 => prop::sample::select(closed),
            1 => any::<i64>(),
            1 => prop_oneof![Just(0i64), Just(-1), Just(i64::MIN), Just(i64::MAX)],
        ];
        let decision = prop_oneof![3 => 1..=2i32, 1 => hostile_enum()];
        let tally = Tally::default();
        h.check((id, decision, hostile_string(), hostile_string()), |(id, decision, comment, decided_by)| {
            h.block_on(async {
                let before = all_actions(&h.app).await;
                let expected_decider = if authenticated { "ana".to_owned() } else { decided_by.trim().to_owned() };
                let request = pb::DecideActionRequest { action_id: id, decision, comment: comment.clone(), decided_by };
                let mut request = Request::new(request);
                if authenticated {
                    let bearer = format!("Bearer {APPROVER_TOKEN}").parse().expect("ascii");
                    request.metadata_mut().insert("authorization", bearer);
                }
                let result = h.app.approvals.clone().decide_action(request).await;
                tally.count(&result);
                let after = all_actions(&h.app).await;
                match result {
                    Ok(response) => {
                        let action = response.into_inner().action.expect("action");
                        prop_assert_eq!(action.id, id);
                        prop_assert_eq!(&action.decided_by, &expected_decider);
                        let expected_comment = if comment.trim().is_empty() { "" } else { comment.as_str() };
                        prop_assert_eq!(action.decision_comment.as_str(), expected_comment);
                        let status = pb::ActionStatus::try_from(action.status).expect("known status");
                        if decision == pb::Decision::Reject as i32 {
                            prop_assert_eq!(status, pb::ActionStatus::Rejected);
                        } else {
                            prop_assert!(matches!(
                                status,
                                pb::ActionStatus::Approved | pb::ActionStatus::Executed | pb::ActionStatus::Failed
                            ));
                        }
                        let was = before.iter().find(|a| a.id == id).expect("an existing action");
                        prop_assert_eq!(was.status, ActionStatus::PendingApproval);
                        // The decision touches the status and the decision fields only.
                        let now = after.iter().find(|a| a.id == id).expect("kept");
                        let mut kept = now.action.clone();
                        kept.status = was.action.status;
                        prop_assert_eq!(&was.action, &kept);
                        let others =
                            |list: &[ActionRecord]| list.iter().filter(|a| a.id != id).cloned().collect::<Vec<_>>();
                        prop_assert_eq!(others(&after), others(&before));
                    }
                    Err(status) => {
                        prop_assert!(
                            matches!(status.code(), Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition),
                            "unexpected {:?}",
                            status
                        );
                        prop_assert_eq!(after, before);
                    }
                }
                Ok(())
            })
        });
        tally.assert_both_seen("any_decide_action_request_records_the_decider_or_changes_nothing");
    }
}

fn hostile_page_token() -> impl Strategy<Value = String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    prop_oneof![
        4 => Just(String::new()),
        1 => "[A-Za-z0-9_-]{1,60}",
        1 => (any::<i64>(), "[a-z.0-9]{0,30}").prop_map(|(id, scope)| URL_SAFE_NO_PAD.encode(format!("{scope}:{id}"))),
        1 => any::<i64>().prop_map(|id| URL_SAFE_NO_PAD.encode(format!("history.0000000000000000:{id}"))),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        1 => hostile_string(),
    ]
}

fn hostile_filter() -> impl Strategy<Value = Option<ActionFilter>> {
    let account = prop_oneof![Just(String::new()), Just("act_1".to_owned()), account_id()];
    let campaign = prop_oneof![Just(String::new()), Just("101".to_owned()), campaign_id()];
    prop::option::of(
        (account, campaign, hostile_enum(), hostile_enum(), hostile_timestamp(), hostile_timestamp()).prop_map(
            |(account_id, campaign_id, action_type, status, start_time, end_time)| ActionFilter {
                account_id,
                campaign_id,
                action_type,
                status,
                start_time,
                end_time,
            },
        ),
    )
}

#[test]
fn any_history_query_returns_matching_actions_or_invalid_argument() {
    for backend in backends() {
        let h = Harness::start(backend, |_| {});
        h.block_on(async {
            let mut batch = Vec::new();
            for (k, status) in ActionStatus::ALL.into_iter().enumerate() {
                for (j, action_type) in ActionType::ALL.into_iter().enumerate() {
                    let account = if (k + j) % 2 == 0 { "act_1" } else { "act_2" };
                    batch.push(sample_action(account, &format!("10{}", j % 3), action_type, status));
                }
            }
            record_actions(&h.app.state, &batch).await;
        });
        let before = h.block_on(all_actions(&h.app));
        let page_size = prop_oneof![3 => 0..=600i32, 1 => any::<i32>()];
        let tally = Tally::default();
        h.check((hostile_filter(), page_size, hostile_page_token()), |(filter, page_size, page_token)| {
            h.block_on(async {
                let request = pb::ListActionHistoryRequest { filter: filter.clone(), page_size, page_token };
                let result = h.app.approvals.clone().list_action_history(request).await;
                tally.count(&result);
                match result {
                    Ok(response) => {
                        let page = response.into_inner();
                        let limit = if page_size == 0 { 50 } else { page_size as usize };
                        prop_assert!(page_size >= 0 && page.actions.len() <= limit);
                        prop_assert!(page.actions.windows(2).all(|w| w[0].id > w[1].id), "newest first");
                        let f = filter.unwrap_or_default();
                        for a in &page.actions {
                            prop_assert!(f.account_id.is_empty() || a.account_id == f.account_id);
                            prop_assert!(f.campaign_id.is_empty() || a.campaign_id == f.campaign_id);
                            prop_assert!(f.action_type == 0 || a.action_type == f.action_type);
                            prop_assert!(f.status == 0 || a.status == f.status);
                            let created = a.create_time.as_ref().map_or(0, |t| t.seconds);
                            prop_assert!(f.start_time.as_ref().is_none_or(|t| created >= t.seconds));
                            prop_assert!(f.end_time.as_ref().is_none_or(|t| created <= t.seconds));
                        }
                    }
                    Err(status) => prop_assert_eq!(status.code(), Code::InvalidArgument, "{:?}", status),
                }
                Ok(())
            })
        });
        tally.assert_both_seen("any_history_query_returns_matching_actions_or_invalid_argument");
        assert_eq!(before, h.block_on(all_actions(&h.app)), "queries changed the stored actions");
    }
}

#[tokio::test]
async fn an_error_that_echoes_a_huge_input_stays_small_and_keeps_the_connection() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let rule = ScalingRule { id: 1, ..Default::default() };
    let update_mask = Some(prost_types::FieldMask { paths: vec!["é".repeat(500_000)] });
    let err = app
        .rules
        .clone()
        .update_rule(pb::UpdateRuleRequest { rule: Some(rule), update_mask })
        .await
        .expect_err("unknown path");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().len() <= 2 * autoscaler::grpc::limits::MAX_STATUS_MESSAGE_BYTES, "{}", err.message().len());
    app.rules.clone().list_rules(pb::ListRulesRequest::default()).await.expect("the connection still serves");
}
