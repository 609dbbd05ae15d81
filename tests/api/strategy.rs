//! The strategy of a rule over gRPC: the marginal-ROAS fields, their defaults
//! and validation, update masks, and the server's default strategy for the
//! rule it creates itself.
use autoscaler::domain::rule::Strategy as DomainStrategy;
use autoscaler::pb::{
    CreateRuleRequest, EvaluateCampaignsRequest, ListRulesRequest, ScalingRule, Strategy, UpdateRuleRequest,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

use meta_sandbox::{AccountSpec, CampaignSpec, RunningSandbox, Sandbox, ScriptedMetrics};

use crate::helpers::{Backend, TestApp, backends, spawn_app, spawn_with_sandbox_and};

fn rule(account: &str) -> ScalingRule {
    ScalingRule { account_id: account.into(), name: "Marginal".into(), ..Default::default() }
}

async fn create(app: &TestApp, rule: ScalingRule) -> Result<ScalingRule, tonic::Status> {
    let mut client = app.rules.clone();
    client.create_rule(CreateRuleRequest { rule: Some(rule) }).await.map(|r| r.into_inner().rule.expect("rule"))
}

fn violated_field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    details.bad_request().expect("bad request details").field_violations[0].field.clone()
}

#[tokio::test]
async fn a_rule_keeps_the_threshold_table_unless_told_and_fills_the_marginal_defaults() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let table = create(&app, rule("act_1")).await.expect("created");
        assert_eq!(table.strategy, Strategy::Thresholds as i32);
        let marginal = create(&app, ScalingRule { strategy: Strategy::MarginalRoas as i32, ..rule("act_2") })
            .await
            .expect("created");
        assert_eq!(marginal.strategy, Strategy::MarginalRoas as i32);
        assert_eq!(marginal.marginal_max_step_percent, Some(20.0));
        assert_eq!(marginal.marginal_min_move_percent, Some(3.0));
        assert_eq!(marginal.marginal_half_life_days, Some(7.0));
        assert_eq!(marginal.marginal_credible_level, Some(0.8));
        assert_eq!(marginal.marginal_elasticity_low, Some(0.55));
        assert_eq!(marginal.marginal_elasticity_high, Some(0.85));
        assert_eq!(marginal.marginal_pause_evidence, Some(0.99));
        // Stored as sent: reading it back gives the same rule.
        let mut client = app.rules.clone();
        let listed = client
            .list_rules(ListRulesRequest { account_id: "act_2".into(), page_size: 10, ..Default::default() })
            .await
            .expect("list")
            .into_inner()
            .rules;
        assert_eq!(listed, vec![marginal]);
    }
}

type Mutation = Box<dyn Fn(&mut ScalingRule)>;

#[tokio::test]
async fn every_invalid_marginal_setting_names_its_field() {
    let cases: Vec<(&str, Mutation)> = vec![
        ("rule.strategy", Box::new(|r| r.strategy = 99)),
        ("rule.marginal_max_step_percent", Box::new(|r| r.marginal_max_step_percent = Some(0.0))),
        ("rule.marginal_max_step_percent", Box::new(|r| r.marginal_max_step_percent = Some(f64::NAN))),
        ("rule.marginal_min_move_percent", Box::new(|r| r.marginal_min_move_percent = Some(25.0))),
        ("rule.marginal_half_life_days", Box::new(|r| r.marginal_half_life_days = Some(0.1))),
        ("rule.marginal_credible_level", Box::new(|r| r.marginal_credible_level = Some(1.0))),
        ("rule.marginal_elasticity_low", Box::new(|r| r.marginal_elasticity_low = Some(0.0))),
        ("rule.marginal_elasticity_high", Box::new(|r| r.marginal_elasticity_high = Some(0.5))),
        ("rule.marginal_elasticity_high", Box::new(|r| r.marginal_elasticity_high = Some(1.0))),
        ("rule.marginal_pause_evidence", Box::new(|r| r.marginal_pause_evidence = Some(0.3))),
    ];
    for backend in backends() {
        let app = spawn_app(backend).await;
        for (field, mutate) in &cases {
            let mut r = ScalingRule { strategy: Strategy::MarginalRoas as i32, ..rule("act_3") };
            mutate(&mut r);
            let status = create(&app, r).await.expect_err("invalid");
            assert_eq!(violated_field(&status), *field);
        }
        let mut client = app.rules.clone();
        let none = client.list_rules(ListRulesRequest { page_size: 10, ..Default::default() }).await.expect("list");
        assert!(none.into_inner().rules.is_empty(), "nothing was written");
    }
}

#[tokio::test]
async fn update_switches_the_strategy_and_its_settings_by_mask() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = create(&app, rule("act_4")).await.expect("created");
        let mut client = app.rules.clone();
        let change = ScalingRule {
            id: stored.id,
            strategy: Strategy::MarginalRoas as i32,
            marginal_max_step_percent: Some(10.0),
            marginal_credible_level: Some(0.9),
            ..Default::default()
        };
        let mask = |paths: &[&str]| Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() });
        let updated = client
            .update_rule(UpdateRuleRequest {
                rule: Some(change.clone()),
                update_mask: mask(&["strategy", "marginal_max_step_percent"]),
            })
            .await
            .expect("updated")
            .into_inner()
            .rule
            .expect("rule");
        assert_eq!(updated.strategy, Strategy::MarginalRoas as i32);
        assert_eq!(updated.marginal_max_step_percent, Some(10.0));
        assert_eq!(updated.marginal_credible_level, Some(0.8), "not in the mask: unchanged");
        // A masked field left unset goes back to its default; a bad value names the field.
        let reset = client
            .update_rule(UpdateRuleRequest {
                rule: Some(ScalingRule { id: stored.id, ..Default::default() }),
                update_mask: mask(&["marginal_max_step_percent"]),
            })
            .await
            .expect("reset")
            .into_inner()
            .rule
            .expect("rule");
        assert_eq!(reset.marginal_max_step_percent, Some(20.0));
        let bad = ScalingRule { id: stored.id, marginal_min_move_percent: Some(-1.0), ..Default::default() };
        let status = client
            .update_rule(UpdateRuleRequest { rule: Some(bad), update_mask: mask(&["marginal_min_move_percent"]) })
            .await
            .expect_err("invalid");
        assert_eq!(violated_field(&status), "rule.marginal_min_move_percent");
    }
}

const ACCOUNT: &str = "act_222";

/// A sandbox account with a winner (ROAS 4.5) and a loser (ROAS 0.8).
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::empty();
    let account = AccountSpec {
        id: ACCOUNT.into(),
        name: "Account".into(),
        currency: "USD".into(),
        timezone_name: "America/New_York".into(),
    };
    sandbox.add_account(account).expect("account");
    let metrics = |spend_minor, revenue_minor, impressions, clicks| ScriptedMetrics {
        spend_minor,
        revenue_minor,
        impressions,
        clicks,
        conversions: revenue_minor / 4_500,
    };
    for (id, name, budget, m) in [
        ("1001", "Winner", 20_000, metrics(10_000, 45_000, 50_000, 1_600)),
        ("1002", "Loser", 15_000, metrics(15_000, 12_000, 20_000, 220)),
    ] {
        sandbox.add_campaign(ACCOUNT, CampaignSpec::scripted(id, name, budget, m)).expect("campaign");
    }
    sandbox
}

/// The app pointed at `sandbox` as if it were Meta, with `strategy` as the
/// default strategy.
async fn spawn_with(backend: Backend, sandbox: &Sandbox, strategy: DomainStrategy) -> (TestApp, RunningSandbox) {
    spawn_with_sandbox_and(backend, sandbox, |settings| settings.engine.default_strategy = strategy).await
}

#[tokio::test]
async fn the_server_creates_the_default_rule_with_its_default_strategy() {
    for backend in backends() {
        for (setting, expected) in
            [(DomainStrategy::Thresholds, Strategy::Thresholds), (DomainStrategy::MarginalRoas, Strategy::MarginalRoas)]
        {
            let sandbox = sandbox();
            let (app, _running) = spawn_with(backend, &sandbox, setting).await;
            let mut client = app.autoscaler.clone();
            let response = client
                .evaluate_campaigns(EvaluateCampaignsRequest {
                    account_id: ACCOUNT.into(),
                    campaign_ids: Vec::new(),
                    dry_run: false,
                })
                .await
                .expect("evaluated")
                .into_inner();
            assert_eq!(response.evaluations.len(), 2, "{response:?}");
            let mut rules = app.rules.clone();
            let listed = rules
                .list_rules(ListRulesRequest { account_id: ACCOUNT.into(), page_size: 10, ..Default::default() })
                .await
                .expect("list")
                .into_inner()
                .rules;
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].strategy, expected as i32);
        }
    }
}

#[tokio::test]
async fn the_engine_decides_a_marginal_rule_through_the_same_limits_and_explains_it() {
    for backend in backends() {
        let sandbox = sandbox();
        let (app, _running) = spawn_with(backend, &sandbox, DomainStrategy::MarginalRoas).await;
        let mut client = app.autoscaler.clone();
        let response = client
            .evaluate_campaigns(EvaluateCampaignsRequest {
                account_id: ACCOUNT.into(),
                campaign_ids: Vec::new(),
                dry_run: false,
            })
            .await
            .expect("evaluated")
            .into_inner();
        let action = |id: &str| {
            response
                .evaluations
                .iter()
                .find(|e| e.campaign_id == id)
                .and_then(|e| e.action.clone())
                .expect("an action per campaign")
        };
        let (winner, loser) = (action("1001"), action("1002"));
        // The winner grows by at most the rule's 20% step, and says why with its figures.
        assert!(winner.reason.starts_with("Marginal ROAS "), "{}", winner.reason);
        assert!(winner.reason.contains("still expected from reporting lag"), "{}", winner.reason);
        assert_eq!(winner.old_budget_minor, 20_000);
        assert!(winner.new_budget_minor > 20_000 && winner.new_budget_minor <= 24_000, "{winner:?}");
        assert_eq!(sandbox.daily_budget("1001"), Some(winner.new_budget_minor));
        // What the engine believed is stored with the decision, and history shows it.
        let belief = winner.belief.expect("the estimate behind the decision");
        assert!(belief.low <= belief.roas && belief.roas <= belief.high, "{belief:?}");
        assert!(belief.low > 0.0 && (0.0..=1.0).contains(&belief.unreported_share), "{belief:?}");
        assert!((belief.credible_level - 0.8).abs() < 1e-9, "{belief:?}");
        let stored = autoscaler::persistence::actions::get(&app.state.db, winner.id).await.expect("stored");
        assert_eq!(stored.action.belief.map(|b| b.roas), Some(belief.roas));
        // One day of a loser is no strong evidence: it is not paused.
        assert_ne!(loser.action_type, autoscaler::pb::ActionType::Pause as i32, "{}", loser.reason);
        assert!(loser.new_budget_minor >= 15_000 * 8 / 10, "{loser:?}");
        // Within the cooldown a second pass changes nothing.
        let again = client
            .evaluate_campaigns(EvaluateCampaignsRequest {
                account_id: ACCOUNT.into(),
                campaign_ids: vec!["1001".into()],
                dry_run: false,
            })
            .await
            .expect("evaluated")
            .into_inner();
        let second = again.evaluations[0].action.clone().expect("action");
        assert_eq!(second.new_budget_minor, second.old_budget_minor, "{}", second.reason);
    }
}

#[tokio::test]
async fn a_replay_plans_a_marginal_rule_like_the_live_engine() {
    for backend in backends() {
        let sandbox = sandbox();
        let (app, _running) = spawn_with(backend, &sandbox, DomainStrategy::MarginalRoas).await;
        let start = chrono::Utc::now() - chrono::TimeDelta::seconds(2);
        let mut client = app.autoscaler.clone();
        for _ in 0..2 {
            let req = EvaluateCampaignsRequest { account_id: ACCOUNT.into(), campaign_ids: Vec::new(), dry_run: false };
            client.evaluate_campaigns(req).await.expect("evaluated");
        }
        let end = chrono::Utc::now();
        let resp = client
            .replay_rules(autoscaler::pb::ReplayRulesRequest {
                account_id: ACCOUNT.into(),
                start_time: Some(prost_types::Timestamp { seconds: start.timestamp(), nanos: 0 }),
                end_time: Some(prost_types::Timestamp { seconds: end.timestamp() + 1, nanos: 0 }),
                ..Default::default()
            })
            .await
            .expect("replayed")
            .into_inner();
        let s = resp.summary.expect("summary");
        assert_eq!((s.steps, s.decisions), (2, 4), "{:#?}", resp.decisions);
        // The first moment has no history but what was read then: the winner
        // grows by the step as the engine's did. (The replay infers the account's
        // midnight from its readings, here a few hours off, so a campaign near
        // its band edge may be decided differently.)
        let winner = resp.decisions.iter().find(|d| d.campaign_id == "1001").expect("winner");
        assert!(winner.same_as_recorded && winner.applied && winner.new_budget_minor == 24_000, "{winner:#?}");
        assert!(resp.decisions.iter().all(|d| d.reason.starts_with("Marginal ROAS") || d.reason.starts_with("Hold")));
        assert!(resp.decisions.iter().all(|d| d.action_type != autoscaler::pb::ActionType::Pause as i32));
    }
}

#[tokio::test]
async fn the_reporting_lag_is_learned_from_stored_readings_and_shown() {
    use autoscaler::pb::GetReportingLagRequest;
    use autoscaler::persistence::lag_readings::{self, DayTotals};
    use chrono::{NaiveTime, TimeDelta, Utc};
    for backend in backends() {
        let sandbox = sandbox();
        let (app, _running) = spawn_with(backend, &sandbox, DomainStrategy::MarginalRoas).await;
        let mut time = app.time.clone();
        let ask = |account: &str| GetReportingLagRequest { account_id: account.into() };

        // Before any reading: the prior, and it says so.
        let prior = time.get_reporting_lag(ask(ACCOUNT)).await.expect("lag").into_inner();
        assert_eq!((prior.days_observed, prior.prior_weight), (0, 1.0), "{prior:?}");
        assert_eq!(prior.points.len(), 12);
        assert!(prior.points.iter().all(|p| (p.reported_share - p.prior_share).abs() < 1e-12), "{prior:?}");
        assert_eq!(prior.points.last().map(|p| (p.hours_after, p.reported_share)), Some((168, 1.0)));

        // A cycle under a marginal rule re-reads the past week: one row per day.
        let before_cycle = Utc::now() - TimeDelta::seconds(1);
        let req = EvaluateCampaignsRequest { account_id: ACCOUNT.into(), campaign_ids: Vec::new(), dry_run: false };
        app.autoscaler.clone().evaluate_campaigns(req).await.expect("evaluated");
        let stored = lag_readings::between(&app.state.db, ACCOUNT, before_cycle, Utc::now()).await.expect("readings");
        let days: std::collections::BTreeSet<&str> = stored.iter().map(|r| r.day.as_str()).collect();
        assert_eq!(days.len(), 8, "today and the seven days before it: {stored:?}");

        // Three weeks (before the re-read week) whose revenue was all reported
        // within the hour: read at 6, 12 and 18 h, and after the day.
        let tz: chrono_tz::Tz = "America/New_York".parse().expect("tz");
        let today = Utc::now().with_timezone(&tz).date_naive();
        let mut rows = Vec::new();
        for back in 9..30 {
            let day = today - TimeDelta::days(back);
            let start = day.and_time(NaiveTime::MIN).and_local_timezone(tz).earliest().expect("midnight").to_utc();
            for hours in [6, 12, 18, 30, 60] {
                let spend = 24_000 * hours.min(24) / 24;
                rows.push(DayTotals {
                    day: day.to_string(),
                    taken_at: start + TimeDelta::hours(hours),
                    spend_minor: spend,
                    revenue_minor: 3 * spend,
                    conversions: spend / 1_000,
                });
            }
        }
        lag_readings::insert(&app.state.db, ACCOUNT, &rows).await.expect("stored");
        let learned = time.get_reporting_lag(ask(ACCOUNT)).await.expect("lag").into_inner();
        assert!(learned.days_observed >= 21, "{learned:?}");
        assert!((learned.prior_weight - 7.0 / (7.0 + learned.days_observed as f64)).abs() < 1e-9);
        assert!(learned.fitted.as_ref().is_some_and(|f| f.immediate_share >= 0.85), "{learned:?}");
        let first = &learned.points[0];
        assert!(first.reported_share > first.prior_share + 0.3, "{learned:?}");

        // Bad and unknown accounts.
        let bad = time.get_reporting_lag(ask("123")).await.expect_err("invalid");
        assert_eq!(violated_field(&bad), "account_id");
        let unknown = time.get_reporting_lag(ask("act_999")).await.expect_err("unknown");
        assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    }
}
