//! The scaling engine end to end: gRPC -> engine -> real HTTP to the sandbox
//! (as if it were Meta) -> database, on each backend.
use autoscaler::domain::action::ActionStatus as Status;
use autoscaler::pb::{
    self, ActionStatus, ActionType, CreateRuleRequest, EvaluateCampaignRequest, EvaluateCampaignsRequest,
    ListRulesRequest, RunCycleRequest, ScalingRule,
};
use autoscaler::persistence::actions::{self, TransitionFields};
use autoscaler::platform::BudgetWrite;
use autoscaler::service::executor;
use meta_sandbox::{
    AccountSpec, AdSetSpec, BudgetHolderSpec, CampaignSpec, MetaErrorSpec, Performance, Sandbox, ScriptedMetrics,
    SpecStatus, ThrottleFault,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{TestApp, backends, spawn_with_sandbox};

const ACCOUNT: &str = "act_111";

fn account(id: &str) -> AccountSpec {
    AccountSpec {
        id: id.into(),
        name: format!("Account {id}"),
        currency: "USD".into(),
        timezone_name: "America/New_York".into(),
    }
}

/// ROAS = revenue / spend; CTR = clicks / impressions * 100.
fn metrics(spend: i64, revenue: i64, impressions: i64, clicks: i64) -> ScriptedMetrics {
    ScriptedMetrics { spend_minor: spend, revenue_minor: revenue, impressions, clicks, conversions: revenue / 4_500 }
}

/// The default rule's example 1: ROAS 4.5, CTR 3.2%, spend $100, revenue $450.
fn winner() -> ScriptedMetrics {
    metrics(10_000, 45_000, 50_000, 1_600)
}

/// The default rule's example 2: ROAS 0.8, CTR 1.1%.
fn loser() -> ScriptedMetrics {
    metrics(15_000, 12_000, 20_000, 220)
}

fn sandbox_with(campaigns: Vec<CampaignSpec>) -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.add_account(account(ACCOUNT)).expect("account");
    for c in campaigns {
        sandbox.add_campaign(ACCOUNT, c).expect("campaign");
    }
    sandbox
}

async fn evaluate(app: &TestApp, campaign: &str, dry_run: bool) -> Result<pb::ScalingAction, tonic::Status> {
    let mut client = app.autoscaler.clone();
    let response = client
        .evaluate_campaign(EvaluateCampaignRequest {
            account_id: ACCOUNT.into(),
            campaign_id: campaign.into(),
            dry_run,
        })
        .await?;
    Ok(response.into_inner().evaluation.and_then(|e| e.action).expect("action"))
}

async fn count_all(app: &TestApp) -> usize {
    let mut n = 0;
    for s in Status::ALL {
        n += actions::in_status(&app.state.db, s, None, None, 100_000).await.expect("query").len();
    }
    n
}

#[tokio::test]
async fn example_aggressive_scale_up_is_executed_on_the_platform() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Summer Sale Video", 20_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let action = evaluate(&app, "1001", false).await.expect("evaluated");
        assert_eq!(action.action_type, ActionType::ScaleUpAggressive as i32);
        assert_eq!(action.status, ActionStatus::Executed as i32, "{backend:?}: {action:?}");
        assert_eq!((action.old_budget_minor, action.new_budget_minor), (20_000, 30_000));
        assert_eq!(action.change_minor, 10_000);
        assert_eq!(action.change_percent, 50.0);
        assert_eq!(action.reason, "Exceptional performance: ROAS 4.50x (>4.0x) and CTR 3.20% (>3%)");
        let m = action.metrics.expect("metrics");
        assert_eq!((m.spend_minor, m.revenue_minor, m.currency.as_str()), (10_000, 45_000, "USD"));
        assert!((m.roas - 4.5).abs() < 1e-9 && (m.ctr_percent - 3.2).abs() < 1e-9);
        assert!(action.execute_time.is_some());
        assert_eq!(sandbox.daily_budget("1001"), Some(30_000), "the platform budget changed");
    }
}

#[tokio::test]
async fn example_pause_pauses_the_campaign() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1002", "Old Product Video", 15_000, loser())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let action = evaluate(&app, "1002", false).await.expect("evaluated");
        assert_eq!(action.action_type, ActionType::Pause as i32);
        assert_eq!(action.status, ActionStatus::Executed as i32, "{action:?}");
        assert_eq!((action.old_budget_minor, action.new_budget_minor), (15_000, 0));
        assert_eq!(action.reason, "Critical underperformance: ROAS 0.80x (<1.0x) - pausing to stop losses");
        assert_eq!(sandbox.status("1002").as_deref(), Some("PAUSED"));
    }
}

#[tokio::test]
async fn dry_run_decides_without_recording_or_changing_anything() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Winner", 20_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let action = evaluate(&app, "1001", true).await.expect("evaluated");
        assert_eq!(action.id, 0);
        assert_eq!(action.new_budget_minor, 30_000);
        assert_eq!(action.status, ActionStatus::Approved as i32, "would be executed");
        assert_eq!(count_all(&app).await, 0);
        assert_eq!(sandbox.daily_budget("1001"), Some(20_000));
        assert!(sandbox.writes().is_empty());
        let mut rules = app.rules.clone();
        let listed = rules.list_rules(ListRulesRequest::default()).await.expect("list").into_inner();
        assert!(listed.rules.is_empty(), "a dry run does not even store the default rule");
    }
}

#[tokio::test]
async fn an_account_without_rules_gets_the_default_rule_stored() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Winner", 20_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let action = evaluate(&app, "1001", false).await.expect("evaluated");
        let mut rules = app.rules.clone();
        let listed = rules.list_rules(ListRulesRequest::default()).await.expect("list").into_inner().rules;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].account_id, ACCOUNT);
        assert_eq!(listed[0].name, "Default Auto-Scaling");
        assert_eq!(action.rule_id, listed[0].id);
    }
}

#[tokio::test]
async fn a_large_increase_waits_for_approval_and_changes_nothing() {
    for backend in backends() {
        // $400 x 1.5 = $600: above the $500 approval threshold and +$200 > $100.
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Big winner", 40_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let action = evaluate(&app, "1001", false).await.expect("evaluated");
        assert_eq!(action.status, ActionStatus::PendingApproval as i32);
        assert!(action.requires_approval);
        assert_eq!(action.new_budget_minor, 60_000);
        assert_eq!(sandbox.daily_budget("1001"), Some(40_000));
        // A second evaluation does not queue a second change for the same campaign.
        let again = evaluate(&app, "1001", false).await.expect("evaluated again");
        assert_eq!(again.status, ActionStatus::Skipped as i32);
        assert!(again.reason.contains("still pending_approval"), "{}", again.reason);
    }
}

#[tokio::test]
async fn the_cooldown_stops_an_hourly_cycle_from_compounding() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Winner", 20_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        assert_eq!(evaluate(&app, "1001", false).await.expect("first").status, ActionStatus::Executed as i32);
        let second = evaluate(&app, "1001", false).await.expect("second");
        assert_eq!(second.status, ActionStatus::Skipped as i32);
        assert_eq!(second.new_budget_minor, second.old_budget_minor);
        assert!(second.reason.contains("cooldown"), "{}", second.reason);
        assert_eq!(sandbox.daily_budget("1001"), Some(30_000), "not 45000");
    }
}

#[tokio::test]
async fn a_campaign_rule_overrides_the_account_rule() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![
            CampaignSpec::scripted("1001", "A", 20_000, metrics(10_000, 32_000, 50_000, 1_000)),
            CampaignSpec::scripted("1002", "B", 20_000, metrics(10_000, 32_000, 50_000, 1_000)),
        ]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let mut rules = app.rules.clone();
        let base = ScalingRule { account_id: ACCOUNT.into(), name: "Account".into(), ..Default::default() };
        rules.create_rule(CreateRuleRequest { rule: Some(base.clone()) }).await.expect("account rule");
        let strict = ScalingRule {
            campaign_id: "1002".into(),
            name: "Strict".into(),
            roas_scale_up: Some(3.5),
            roas_scale_up_aggressive: Some(5.0),
            ..base
        };
        rules.create_rule(CreateRuleRequest { rule: Some(strict) }).await.expect("campaign rule");
        // ROAS 3.2: a scale-up under the account rule, maintain under the campaign's.
        assert_eq!(evaluate(&app, "1001", false).await.expect("a").action_type, ActionType::ScaleUp as i32);
        assert_eq!(evaluate(&app, "1002", false).await.expect("b").action_type, ActionType::Maintain as i32);
    }
}

#[tokio::test]
async fn the_account_cap_shrinks_an_increase_to_fit() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![
            CampaignSpec::scripted("1001", "Winner", 20_000, winner()),
            CampaignSpec::scripted("1002", "Filler", 470_000, metrics(10_000, 20_000, 50_000, 1_000)),
        ]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let mut rules = app.rules.clone();
        let rule = ScalingRule {
            account_id: ACCOUNT.into(),
            name: "Cap".into(),
            max_daily_budget_minor: Some(1_000_000),
            require_approval_threshold_minor: Some(1_000_000),
            ..Default::default()
        };
        rules.create_rule(CreateRuleRequest { rule: Some(rule) }).await.expect("rule");
        // Active budgets $4,900 of a $5,000 cap: +$100 fits, not +$100 more.
        let action = evaluate(&app, "1001", false).await.expect("evaluated");
        assert_eq!(action.new_budget_minor, 30_000);
        assert_eq!(action.status, ActionStatus::Executed as i32, "{action:?}");
        let sandbox2 = sandbox_with(vec![
            CampaignSpec::scripted("1001", "Winner", 20_000, winner()),
            CampaignSpec::scripted("1002", "Filler", 475_000, metrics(10_000, 20_000, 50_000, 1_000)),
        ]);
        let (app2, _running2) = spawn_with_sandbox(backend, &sandbox2).await;
        let action = evaluate(&app2, "1001", false).await.expect("evaluated");
        assert_eq!(action.new_budget_minor, 25_000, "shrunk to the cap: {}", action.reason);
        assert_eq!(sandbox2.daily_budget("1001"), Some(25_000));
    }
}

#[tokio::test]
async fn ad_set_budgets_are_scaled_together_and_sum_exactly() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec {
            id: "1001".into(),
            name: "Ad sets".into(),
            budget: BudgetHolderSpec::AdSets(vec![
                AdSetSpec { id: "5001".into(), daily_budget_minor: 6_667, status: SpecStatus::Active },
                AdSetSpec { id: "5002".into(), daily_budget_minor: 6_667, status: SpecStatus::Active },
                AdSetSpec { id: "5003".into(), daily_budget_minor: 6_666, status: SpecStatus::Active },
            ]),
            status: SpecStatus::Active,
            performance: Performance::Scripted(winner()),
        }]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let action = evaluate(&app, "1001", false).await.expect("evaluated");
        assert_eq!(action.budget_level, pb::BudgetLevel::AdSet as i32);
        assert_eq!(action.status, ActionStatus::Executed as i32, "{action:?}");
        let parts: Vec<i64> =
            ["5001", "5002", "5003"].iter().map(|id| sandbox.daily_budget(id).expect("ad set")).collect();
        assert_eq!(parts.iter().sum::<i64>(), 30_000, "{parts:?}");
    }
}

#[tokio::test]
async fn unknown_campaigns_and_accounts_are_not_found_and_bad_ids_invalid() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Winner", 20_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        assert_eq!(evaluate(&app, "999", false).await.expect_err("unknown").code(), Code::NotFound);
        let mut client = app.autoscaler.clone();
        let err = client
            .evaluate_campaign(EvaluateCampaignRequest {
                account_id: "act_999".into(),
                campaign_id: "1".into(),
                dry_run: false,
            })
            .await
            .expect_err("unknown account");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        for (account, campaign) in [("999", "1"), ("act_1", "x")] {
            let err = client
                .evaluate_campaign(EvaluateCampaignRequest {
                    account_id: account.into(),
                    campaign_id: campaign.into(),
                    dry_run: false,
                })
                .await
                .expect_err("invalid");
            assert_eq!(err.code(), Code::InvalidArgument);
        }
        assert_eq!(count_all(&app).await, 0);
    }
}

#[tokio::test]
async fn platform_failures_are_unavailable_with_metas_code() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Winner", 20_000, winner())]);
        sandbox.throttle_account(ACCOUNT, ThrottleFault::business_use_case(std::time::Duration::from_secs(3600)));
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let err = evaluate(&app, "1001", false).await.expect_err("throttled");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(err.message().contains("80004"), "{}", err.message());
        assert!(!err.message().contains(&sandbox.access_token()), "the token leaked");
        let details = err.get_error_details();
        assert_eq!(details.error_info().map(|i| i.reason.as_str()), Some("META_THROTTLED"));
        assert!(details.retry_info().and_then(|r| r.retry_delay).is_some(), "tells when to retry");
    }
}

#[tokio::test]
async fn an_expired_meta_token_is_a_failed_precondition_with_metas_code_not_a_retry() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Winner", 20_000, winner())]);
        let expired = MetaErrorSpec::permanent(190, Some(463), "Error validating access token: Session has expired");
        sandbox.fail_object(ACCOUNT, expired);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let err = evaluate(&app, "1001", false).await.expect_err("token expired");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        let details = err.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "META_AUTH");
        assert_eq!(info.metadata.get("meta_code").map(String::as_str), Some("190"));
        assert_eq!(info.metadata.get("meta_subcode").map(String::as_str), Some("463"));
        assert!(details.retry_info().is_none(), "retrying cannot help");
        assert_eq!(count_all(&app).await, 0);
    }
}

#[tokio::test]
async fn one_failing_campaign_never_stops_a_bulk_evaluation() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![
            CampaignSpec::scripted("1001", "Winner", 20_000, winner()),
            CampaignSpec::scripted("1002", "Loser", 15_000, loser()),
            CampaignSpec::scripted("1003", "Broken", 20_000, winner()),
        ]);
        sandbox.fail_object("1003", MetaErrorSpec::permanent(100, Some(1_885_272), "Budget is too low"));
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let mut client = app.autoscaler.clone();
        let response = client
            .evaluate_campaigns(EvaluateCampaignsRequest {
                account_id: ACCOUNT.into(),
                campaign_ids: vec!["1001".into(), "1002".into(), "1003".into(), "4040".into()],
                dry_run: false,
            })
            .await
            .expect("bulk")
            .into_inner();
        let status_of = |id: &str| {
            response.evaluations.iter().find(|e| e.campaign_id == id).and_then(|e| e.action.as_ref()).map(|a| a.status)
        };
        assert_eq!(status_of("1001"), Some(ActionStatus::Executed as i32), "{:?}", response.evaluations);
        assert_eq!(status_of("1002"), Some(ActionStatus::Executed as i32));
        assert_eq!(status_of("1003"), Some(ActionStatus::Failed as i32));
        let broken = response.evaluations.iter().find(|e| e.campaign_id == "1003").and_then(|e| e.action.clone());
        assert!(broken.is_some_and(|a| a.error.contains("1885272")));
        assert_eq!(response.failures.len(), 1);
        assert_eq!(response.failures[0].campaign_id, "4040");
        assert_eq!(sandbox.daily_budget("1001"), Some(30_000));
    }
}

#[tokio::test]
async fn a_write_that_does_not_stick_fails_the_action() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Winner", 20_000, winner())]);
        sandbox.lose_writes_to("1001");
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let action = evaluate(&app, "1001", false).await.expect("evaluated");
        assert_eq!(action.status, ActionStatus::Failed as i32);
        assert!(action.error.contains("did not keep"), "{}", action.error);
        assert_eq!(sandbox.daily_budget("1001"), Some(20_000));
    }
}

/// Records a pending action through the engine and approves it in storage.
async fn approved_action(app: &TestApp) -> i64 {
    let action = evaluate(app, "1001", false).await.expect("evaluated");
    assert_eq!(action.status, ActionStatus::PendingApproval as i32);
    let fields = TransitionFields { decided_by: Some("tester".into()), decided: true, ..Default::default() };
    let moved =
        actions::transition_many(&app.state.db, &[action.id], Status::PendingApproval, Status::Approved, &fields, None)
            .await
            .expect("approve");
    assert_eq!(moved.len(), 1);
    action.id
}

#[tokio::test]
async fn a_budget_changed_by_hand_is_never_overwritten() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Big winner", 40_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let id = approved_action(&app).await;
        let account = autoscaler::domain::ids::AccountId::parse(ACCOUNT, "account").expect("id");
        let by_hand = [BudgetWrite::SetDailyBudget { object_id: "1001".into(), daily_budget_minor: 41_000 }];
        app.state.platform.write(&account, &by_hand).await.expect("manual change");
        let done = executor::execute_approved(&app.state, &[id]).await.expect("executed");
        assert_eq!(done[0].status, Status::Failed);
        assert!(done[0].error.as_deref().unwrap_or_default().contains("budget changed since the decision"));
        assert_eq!(sandbox.daily_budget("1001"), Some(41_000));
    }
}

#[tokio::test]
async fn concurrent_executions_of_one_action_apply_it_once() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Big winner", 40_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let id = approved_action(&app).await;
        let writes_before = sandbox.writes().len();
        let ids = [id];
        let (a, b) =
            tokio::join!(executor::execute_approved(&app.state, &ids), executor::execute_approved(&app.state, &ids));
        let statuses = [a.expect("a")[0].status, b.expect("b")[0].status];
        assert!(statuses.contains(&Status::Executed), "{statuses:?}");
        assert_eq!(sandbox.writes().len() - writes_before, 1, "exactly one write reached the platform");
        assert_eq!(sandbox.daily_budget("1001"), Some(60_000));
        // Executing it again later changes nothing either.
        let again = executor::execute_approved(&app.state, &[id]).await.expect("again");
        assert_eq!(again[0].status, Status::Executed);
        assert_eq!(sandbox.writes().len() - writes_before, 1);
    }
}

#[tokio::test]
async fn an_execution_interrupted_by_a_crash_is_resolved_by_reading_the_platform() {
    for backend in backends() {
        let sandbox = sandbox_with(vec![CampaignSpec::scripted("1001", "Big winner", 40_000, winner())]);
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let id = approved_action(&app).await;
        // Claim it as a crashed executor would have, after its write landed.
        let claim = TransitionFields { claim_token: Some("crashed".into()), ..Default::default() };
        actions::transition_many(&app.state.db, &[id], Status::Approved, Status::Executing, &claim, None)
            .await
            .expect("claim");
        let account = autoscaler::domain::ids::AccountId::parse(ACCOUNT, "account").expect("id");
        let landed = [BudgetWrite::SetDailyBudget { object_id: "1001".into(), daily_budget_minor: 60_000 }];
        app.state.platform.write(&account, &landed).await.expect("the crashed write");
        let writes_before = sandbox.writes().len();
        let cutoff = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
        let resolved = executor::resolve_claimed_before(&app.state, cutoff).await.expect("resolved");
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, Status::Executed);
        assert_eq!(sandbox.writes().len(), writes_before, "resolving never writes");
    }
}

#[tokio::test]
async fn a_cycle_covers_every_account_and_survives_a_throttled_one() {
    for backend in backends() {
        let sandbox = Sandbox::empty();
        for id in ["act_111", "act_222"] {
            sandbox.add_account(account(id)).expect("account");
        }
        sandbox.add_campaign("act_111", CampaignSpec::scripted("1001", "Winner", 20_000, winner())).expect("c");
        sandbox.add_campaign("act_111", CampaignSpec::scripted("1002", "Loser", 15_000, loser())).expect("c");
        sandbox.add_campaign("act_222", CampaignSpec::scripted("2001", "Other", 20_000, winner())).expect("c");
        sandbox.throttle_account("act_222", ThrottleFault::user_limit(std::time::Duration::from_secs(3600)));
        let (app, _running) = spawn_with_sandbox(backend, &sandbox).await;
        let mut client = app.autoscaler.clone();
        let report = client.run_cycle(RunCycleRequest::default()).await.expect("cycle").into_inner();
        assert!(report.cycle_id > 0);
        assert_eq!(report.accounts, 2);
        assert_eq!(report.campaigns_evaluated, 2);
        assert_eq!(report.executed, 2);
        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].account_id, "act_222");
        assert_eq!(sandbox.daily_budget("1001"), Some(30_000));
        assert_eq!(sandbox.status("1002").as_deref(), Some("PAUSED"));
        assert_eq!(sandbox.daily_budget("2001"), Some(20_000));

        // The dashboard over gRPC sees what the cycle did.
        let board = client
            .get_dashboard(pb::GetDashboardRequest { days: 1, account_id: String::new() })
            .await
            .expect("dashboard")
            .into_inner();
        let overall = board.overall.expect("overall");
        assert_eq!((overall.total_actions, overall.executed), (2, 2));
        assert_eq!(overall.total_increase.iter().map(|m| m.amount_minor).sum::<i64>(), 10_000);
        assert_eq!(overall.total_decrease.iter().map(|m| m.amount_minor).sum::<i64>(), 15_000, "the pause");
    }
}
