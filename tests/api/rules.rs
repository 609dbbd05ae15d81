//! RulesService end to end: every RPC and every validation case, on each backend.
use autoscaler::pb::{
    CreateRuleRequest, DeleteRuleRequest, GetRuleRequest, ListRulesRequest, MetricsWindow, ScalingRule,
    UpdateRuleRequest,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestApp, backends, spawn_app};

fn rule(account: &str, campaign: &str) -> ScalingRule {
    ScalingRule {
        account_id: account.into(),
        campaign_id: campaign.into(),
        name: "Default Auto-Scaling".into(),
        ..Default::default()
    }
}

async fn create(app: &TestApp, rule: ScalingRule) -> Result<ScalingRule, tonic::Status> {
    let mut client = app.rules.clone();
    client.create_rule(CreateRuleRequest { rule: Some(rule) }).await.map(|r| r.into_inner().rule.expect("rule"))
}

async fn count(app: &TestApp) -> usize {
    let mut client = app.rules.clone();
    let page = client.list_rules(ListRulesRequest { page_size: 500, ..Default::default() }).await.expect("list");
    page.into_inner().rules.len()
}

/// The field named by an INVALID_ARGUMENT status's BadRequest details.
fn violated_field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().expect("bad request details");
    bad.field_violations[0].field.clone()
}

#[tokio::test]
async fn create_fills_in_the_default_rules_numbers() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = create(&app, rule("act_123456789", "")).await.expect("created");
        assert!(stored.id > 0);
        assert_eq!(stored.enabled, Some(true));
        assert_eq!(stored.roas_scale_up_aggressive, Some(4.0));
        assert_eq!(stored.ctr_scale_up_aggressive_percent, Some(3.0));
        assert_eq!(stored.roas_scale_up, Some(3.0));
        assert_eq!(stored.roas_scale_down, Some(1.5));
        assert_eq!(stored.roas_pause, Some(1.0));
        assert_eq!(stored.multiplier_aggressive_up, Some(1.5));
        assert_eq!(stored.multiplier_up, Some(1.2));
        assert_eq!(stored.multiplier_down, Some(0.7));
        assert_eq!(stored.min_impressions, Some(1000));
        assert_eq!(stored.currency, "USD");
        assert_eq!(stored.min_daily_budget_minor, Some(1_000));
        assert_eq!(stored.max_daily_budget_minor, Some(100_000));
        assert_eq!(stored.max_daily_spend_limit_minor, Some(500_000));
        assert_eq!(stored.require_approval_threshold_minor, Some(50_000));
        assert_eq!(stored.auto_approve_up_to_minor, Some(10_000));
        assert_eq!(stored.cooldown.map(|d| d.seconds), Some(8 * 3600));
        assert_eq!(stored.metrics_window, MetricsWindow::Last24Hours as i32);
        assert_eq!(stored.apply_hourly_schedule, Some(false));
        assert!(stored.create_time.is_some() && stored.update_time.is_some());

        let mut client = app.rules.clone();
        let fetched = client.get_rule(GetRuleRequest { id: stored.id }).await.expect("get").into_inner().rule;
        assert_eq!(fetched, Some(stored), "{backend:?}");
    }
}

#[tokio::test]
async fn create_keeps_given_values_and_currency_scaled_defaults() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut r = rule("act_1", "42");
        r.currency = "JPY".into();
        r.roas_scale_up = Some(3.5);
        r.multiplier_up = Some(1.1);
        r.require_approval_threshold_minor = Some(20_000);
        r.enabled = Some(false);
        r.cooldown = Some(prost_types::Duration { seconds: 3600, nanos: 0 });
        r.metrics_window = MetricsWindow::Yesterday as i32;
        let stored = create(&app, r).await.expect("created");
        assert_eq!(stored.campaign_id, "42");
        assert_eq!(stored.roas_scale_up, Some(3.5));
        assert_eq!(stored.multiplier_up, Some(1.1));
        assert_eq!(stored.require_approval_threshold_minor, Some(20_000));
        assert_eq!(stored.enabled, Some(false));
        assert_eq!(stored.cooldown.map(|d| d.seconds), Some(3600));
        assert_eq!(stored.metrics_window, MetricsWindow::Yesterday as i32);
        // JPY has no minor unit: $10 becomes 10 yen-units, not 1000.
        assert_eq!(stored.min_daily_budget_minor, Some(10));
    }
}

#[tokio::test]
async fn a_second_rule_for_the_same_scope_already_exists_but_other_scopes_do_not_clash() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let account_rule = create(&app, rule("act_1", "")).await.expect("account rule");
        let campaign_rule = create(&app, rule("act_1", "7")).await.expect("campaign rule beside the account rule");
        create(&app, rule("act_2", "")).await.expect("other account");
        for (dup, holder) in [(rule("act_1", ""), &account_rule), (rule("act_1", "7"), &campaign_rule)] {
            let err = create(&app, dup).await.expect_err("duplicate");
            assert_eq!(err.code(), Code::AlreadyExists, "{backend:?}");
            // The refusal names the rule to update instead.
            let named = format!("(rule {}, \"Default Auto-Scaling\"; change it with UpdateRule)", holder.id);
            assert!(err.message().contains(&named), "{backend:?}: {}", err.message());
        }
        assert_eq!(count(&app).await, 3);
    }
}

type Mutation = Box<dyn Fn(&mut ScalingRule)>;

#[tokio::test]
async fn every_invalid_rule_names_its_field_and_writes_nothing() {
    let cases: Vec<(&str, Mutation)> = vec![
        ("rule.account_id", Box::new(|r| r.account_id = "123".into())),
        ("rule.account_id", Box::new(|r| r.account_id = "act_12x".into())),
        ("rule.account_id", Box::new(|r| r.account_id = String::new())),
        ("rule.campaign_id", Box::new(|r| r.campaign_id = "abc".into())),
        ("rule.name", Box::new(|r| r.name = String::new())),
        ("rule.name", Box::new(|r| r.name = "n".repeat(201))),
        ("rule.roas_pause", Box::new(|r| r.roas_pause = Some(f64::NAN))),
        ("rule.roas_scale_up", Box::new(|r| r.roas_scale_up = Some(f64::INFINITY))),
        ("rule.roas_scale_down", Box::new(|r| r.roas_scale_down = Some(-1.0))),
        ("rule.roas_pause", Box::new(|r| r.roas_pause = Some(2.0))),
        ("rule.roas_scale_down", Box::new(|r| r.roas_scale_down = Some(3.5))),
        ("rule.roas_scale_up", Box::new(|r| r.roas_scale_up = Some(5.0))),
        ("rule.multiplier_up", Box::new(|r| r.multiplier_up = Some(0.9))),
        ("rule.multiplier_aggressive_up", Box::new(|r| r.multiplier_aggressive_up = Some(1.0))),
        ("rule.multiplier_down", Box::new(|r| r.multiplier_down = Some(1.2))),
        ("rule.multiplier_down", Box::new(|r| r.multiplier_down = Some(0.0))),
        ("rule.min_impressions", Box::new(|r| r.min_impressions = Some(-5))),
        (
            "rule.min_daily_budget_minor",
            Box::new(|r| {
                r.min_daily_budget_minor = Some(50_000);
                r.max_daily_budget_minor = Some(10_000);
            }),
        ),
        ("rule.max_daily_spend_limit_minor", Box::new(|r| r.max_daily_spend_limit_minor = Some(-1))),
        ("rule.auto_approve_up_to_minor", Box::new(|r| r.auto_approve_up_to_minor = Some(i64::MAX))),
        ("rule.currency", Box::new(|r| r.currency = "dollars".into())),
        ("rule.cooldown", Box::new(|r| r.cooldown = Some(prost_types::Duration { seconds: -1, nanos: 0 }))),
        ("rule.metrics_window", Box::new(|r| r.metrics_window = 99)),
    ];
    for backend in backends() {
        let app = spawn_app(backend).await;
        for (field, mutate) in &cases {
            let mut r = rule("act_1", "");
            mutate(&mut r);
            let err = create(&app, r).await.expect_err("invalid rule accepted");
            assert_eq!(violated_field(&err), *field, "{backend:?}: {err:?}");
        }
        let mut client = app.rules.clone();
        let err = client.create_rule(CreateRuleRequest { rule: None }).await.expect_err("missing rule");
        assert_eq!(violated_field(&err), "rule");
        assert_eq!(count(&app).await, 0, "nothing written on {backend:?}");
    }
}

#[tokio::test]
async fn get_update_and_delete_of_a_missing_rule_are_not_found() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut client = app.rules.clone();
        assert_eq!(client.get_rule(GetRuleRequest { id: 999 }).await.expect_err("get").code(), Code::NotFound);
        assert_eq!(client.delete_rule(DeleteRuleRequest { id: 999 }).await.expect_err("delete").code(), Code::NotFound);
        let update = UpdateRuleRequest {
            rule: Some(ScalingRule { id: 999, name: "x".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
        };
        assert_eq!(client.update_rule(update).await.expect_err("update").code(), Code::NotFound);
    }
}

#[tokio::test]
async fn update_changes_only_masked_fields_and_resets_unset_ones_to_defaults() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut r = rule("act_1", "");
        r.roas_pause = Some(0.8);
        r.multiplier_down = Some(0.5);
        let stored = create(&app, r).await.expect("created");
        let mut client = app.rules.clone();
        let change = ScalingRule {
            id: stored.id,
            roas_scale_up: Some(3.4),
            cooldown: Some(prost_types::Duration { seconds: 7200, nanos: 0 }),
            name: "ignored: not in the mask".into(),
            ..Default::default()
        };
        let updated = client
            .update_rule(UpdateRuleRequest {
                rule: Some(change),
                update_mask: Some(FieldMask {
                    paths: vec!["roas_scale_up".into(), "cooldown".into(), "roas_pause".into()],
                }),
            })
            .await
            .expect("update")
            .into_inner()
            .rule
            .expect("rule");
        assert_eq!(updated.roas_scale_up, Some(3.4));
        assert_eq!(updated.cooldown.map(|d| d.seconds), Some(7200));
        assert_eq!(updated.roas_pause, Some(1.0), "unset masked field resets to its default");
        assert_eq!(updated.multiplier_down, Some(0.5), "unmasked field untouched");
        assert_eq!(updated.name, stored.name);
        assert_eq!(updated.create_time, stored.create_time);
        let fetched = client.get_rule(GetRuleRequest { id: stored.id }).await.expect("get").into_inner().rule;
        assert_eq!(fetched, Some(updated));
    }
}

#[tokio::test]
async fn bad_updates_are_invalid_and_change_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = create(&app, rule("act_1", "")).await.expect("created");
        let mut client = app.rules.clone();
        let cases: Vec<(&str, Vec<&str>, ScalingRule)> = vec![
            ("update_mask", vec![], ScalingRule { id: stored.id, ..Default::default() }),
            ("update_mask", vec!["no_such_field"], ScalingRule { id: stored.id, ..Default::default() }),
            (
                "update_mask",
                vec!["account_id"],
                ScalingRule { id: stored.id, account_id: "act_2".into(), ..Default::default() },
            ),
            ("update_mask", vec!["campaign_id"], ScalingRule { id: stored.id, ..Default::default() }),
            (
                "rule.roas_scale_up",
                vec!["roas_scale_up"],
                ScalingRule { id: stored.id, roas_scale_up: Some(9.0), ..Default::default() },
            ),
            (
                "rule.multiplier_up",
                vec!["multiplier_up"],
                ScalingRule { id: stored.id, multiplier_up: Some(f64::NAN), ..Default::default() },
            ),
            ("rule.name", vec!["name"], ScalingRule { id: stored.id, ..Default::default() }),
            // The first path is fine, the second is not: nothing may be written.
            (
                "rule.roas_pause",
                vec!["roas_scale_up", "roas_pause"],
                ScalingRule { id: stored.id, roas_scale_up: Some(3.3), roas_pause: Some(2.0), ..Default::default() },
            ),
        ];
        for (field, paths, change) in cases {
            let err = client
                .update_rule(UpdateRuleRequest {
                    rule: Some(change),
                    update_mask: Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() }),
                })
                .await
                .expect_err("bad update accepted");
            assert_eq!(violated_field(&err), field, "{backend:?} {paths:?}");
        }
        let after = client.get_rule(GetRuleRequest { id: stored.id }).await.expect("get").into_inner().rule;
        assert_eq!(after, Some(stored), "{backend:?}: a failed update changed the rule");
    }
}

#[tokio::test]
async fn list_pages_through_rules_and_filters_by_account() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        for i in 1..=7 {
            create(&app, rule("act_1", &i.to_string())).await.expect("created");
        }
        create(&app, rule("act_2", "")).await.expect("created");
        let mut client = app.rules.clone();
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .list_rules(ListRulesRequest { account_id: "act_1".into(), page_size: 3, page_token: token })
                .await
                .expect("list")
                .into_inner();
            assert!(page.rules.len() <= 3);
            seen.extend(page.rules.iter().map(|r| r.campaign_id.clone()));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, (1..=7).map(|i| i.to_string()).collect::<Vec<_>>(), "{backend:?}");
        assert_eq!(count(&app).await, 8);

        let err = client
            .list_rules(ListRulesRequest { page_token: "garbage".into(), ..Default::default() })
            .await
            .expect_err("bad token");
        assert_eq!(violated_field(&err), "page_token");
        let err =
            client.list_rules(ListRulesRequest { page_size: -1, ..Default::default() }).await.expect_err("bad size");
        assert_eq!(violated_field(&err), "page_size");
        let err = client
            .list_rules(ListRulesRequest { account_id: "nope".into(), ..Default::default() })
            .await
            .expect_err("bad account");
        assert_eq!(violated_field(&err), "account_id");
    }
}

#[tokio::test]
async fn delete_removes_the_rule() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = create(&app, rule("act_1", "")).await.expect("created");
        let mut client = app.rules.clone();
        client.delete_rule(DeleteRuleRequest { id: stored.id }).await.expect("delete");
        assert_eq!(client.get_rule(GetRuleRequest { id: stored.id }).await.expect_err("gone").code(), Code::NotFound);
        // The scope is free again.
        create(&app, rule("act_1", "")).await.expect("recreated");
    }
}
