//! ApprovalsService: the pending queue, decisions (including racing ones) and
//! the expiry of stale pending actions, on each backend.
use std::time::Duration;

use autoscaler::domain::action::{ActionStatus, ActionType};
use autoscaler::pb::{self, DecideActionRequest, Decision, ListPendingActionsRequest};
use autoscaler::service::approvals::expire_stale;
use chrono::{TimeDelta, Utc};
use tonic::Code;

use crate::helpers::{
    TestApp, action_events, backends, invalid_field, record_actions, sample_action, set_action_times, spawn_app,
    spawn_app_with,
};

async fn pending_page(
    app: &TestApp,
    account: &str,
    page_size: i32,
    token: &str,
) -> Result<pb::ListPendingActionsResponse, tonic::Status> {
    let mut client = app.approvals.clone();
    let request = ListPendingActionsRequest { account_id: account.into(), page_size, page_token: token.into() };
    client.list_pending_actions(request).await.map(|r| r.into_inner())
}

async fn decide(app: &TestApp, id: i64, decision: Decision, by: &str) -> Result<pb::ScalingAction, tonic::Status> {
    let mut client = app.approvals.clone();
    let request = DecideActionRequest {
        action_id: id,
        decision: decision as i32,
        comment: "looks right".into(),
        decided_by: by.into(),
    };
    client.decide_action(request).await.map(|r| r.into_inner().action.expect("action"))
}

/// Status-change events of an action whose status is `status`.
async fn moves_to(app: &TestApp, id: i64, status: ActionStatus) -> usize {
    action_events(&app.state, id)
        .await
        .iter()
        .filter(|(kind, s)| kind == "status_changed" && s == status.as_str())
        .count()
}

#[tokio::test]
async fn pending_actions_are_listed_oldest_first_with_their_diff_and_paged() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut batch = Vec::new();
        for i in 0..5 {
            batch.push(sample_action("act_1", &format!("10{i}"), ActionType::ScaleUp, ActionStatus::PendingApproval));
        }
        batch.push(sample_action("act_2", "200", ActionType::ScaleDown, ActionStatus::PendingApproval));
        batch.push(sample_action("act_1", "300", ActionType::ScaleUp, ActionStatus::Approved));
        batch.push(sample_action("act_1", "301", ActionType::Maintain, ActionStatus::Skipped));
        let stored = record_actions(&app.state, &batch).await;
        let pending_ids: Vec<i64> =
            stored.iter().filter(|r| r.status == ActionStatus::PendingApproval).map(|r| r.id).collect();

        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = pending_page(&app, "", 4, &token).await.expect("page");
            assert!(page.actions.len() <= 4);
            seen.extend(page.actions.iter().map(|a| a.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, pending_ids, "{backend:?}: every pending action once, oldest first");

        let first = &pending_page(&app, "act_1", 1, "").await.expect("page").actions[0];
        assert_eq!(first.status, pb::ActionStatus::PendingApproval as i32);
        assert_eq!((first.old_budget_minor, first.new_budget_minor, first.change_minor), (10_000, 12_000, 2_000));
        assert!((first.change_percent - 20.0).abs() < 1e-9);
        assert_eq!(first.metrics.as_ref().map(|m| m.roas), Some(3.5));
        assert!(first.reason.contains("scale_up"));
        assert!(first.requires_approval && first.create_time.is_some());

        let other = pending_page(&app, "act_2", 0, "").await.expect("page");
        assert_eq!(other.actions.iter().map(|a| a.campaign_id.as_str()).collect::<Vec<_>>(), ["200"]);
        assert!(other.next_page_token.is_empty());
    }
}

#[tokio::test]
async fn pending_listing_rejects_bad_accounts_sizes_and_tokens() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let batch: Vec<_> = (0..3)
            .map(|i| sample_action("act_1", &format!("{i}"), ActionType::ScaleUp, ActionStatus::PendingApproval))
            .collect();
        record_actions(&app.state, &batch).await;
        let err = pending_page(&app, "123", 0, "").await.expect_err("bad account");
        assert_eq!(invalid_field(&err), "account_id");
        let err = pending_page(&app, "", -1, "").await.expect_err("bad size");
        assert_eq!(invalid_field(&err), "page_size");
        let err = pending_page(&app, "", 0, "not-a-token").await.expect_err("bad token");
        assert_eq!(invalid_field(&err), "page_token");
        // A token belongs to the listing (and account) it came from.
        let token = pending_page(&app, "act_1", 1, "").await.expect("page").next_page_token;
        assert!(!token.is_empty());
        let err = pending_page(&app, "act_2", 1, &token).await.expect_err("foreign token");
        assert_eq!(invalid_field(&err), "page_token", "{backend:?}");
    }
}

#[tokio::test]
async fn reject_records_who_and_why_and_a_second_decision_is_refused() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = record_actions(
            &app.state,
            &[sample_action("act_1", "1", ActionType::ScaleUpAggressive, ActionStatus::PendingApproval)],
        )
        .await;
        let id = stored[0].id;
        let rejected = decide(&app, id, Decision::Reject, "ana@example.com").await.expect("rejected");
        assert_eq!(rejected.status, pb::ActionStatus::Rejected as i32);
        assert_eq!(rejected.decided_by, "ana@example.com");
        assert_eq!(rejected.decision_comment, "looks right");
        assert!(rejected.decide_time.is_some() && rejected.execute_time.is_none());
        assert_eq!(moves_to(&app, id, ActionStatus::Rejected).await, 1);

        for decision in [Decision::Reject, Decision::Approve] {
            let err = decide(&app, id, decision, "bob").await.expect_err("already decided");
            assert_eq!(err.code(), Code::FailedPrecondition, "{backend:?}: {err:?}");
        }
        assert!(pending_page(&app, "", 0, "").await.expect("page").actions.is_empty());
    }
}

#[tokio::test]
async fn approve_moves_the_action_out_of_pending_exactly_once() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = record_actions(
            &app.state,
            &[sample_action("act_1", "1", ActionType::ScaleUp, ActionStatus::PendingApproval)],
        )
        .await;
        let id = stored[0].id;
        let approved = decide(&app, id, Decision::Approve, "ana@example.com").await.expect("approved");
        // Execution itself (and its outcome) belongs to the executor's tests;
        // here: the decision is recorded and the action left the queue.
        assert_ne!(approved.status, pb::ActionStatus::PendingApproval as i32);
        assert_eq!(approved.decided_by, "ana@example.com");
        assert!(approved.decide_time.is_some());
        assert_eq!(moves_to(&app, id, ActionStatus::Approved).await, 1, "{backend:?}");
        let err = decide(&app, id, Decision::Approve, "ana@example.com").await.expect_err("twice");
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(moves_to(&app, id, ActionStatus::Approved).await, 1);
    }
}

#[tokio::test]
async fn racing_decisions_have_exactly_one_winner() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = record_actions(
            &app.state,
            &[
                sample_action("act_1", "1", ActionType::ScaleUp, ActionStatus::PendingApproval),
                sample_action("act_1", "2", ActionType::ScaleDown, ActionStatus::PendingApproval),
            ],
        )
        .await;
        for (id, decisions) in [
            (stored[0].id, [Decision::Approve; 8]),
            (
                stored[1].id,
                [
                    Decision::Approve,
                    Decision::Reject,
                    Decision::Approve,
                    Decision::Reject,
                    Decision::Approve,
                    Decision::Reject,
                    Decision::Approve,
                    Decision::Reject,
                ],
            ),
        ] {
            let calls = decisions.iter().enumerate().map(|(i, d)| {
                let app = &app;
                async move { decide(app, id, *d, &format!("operator-{i}")).await }
            });
            let results = futures_util::future::join_all(calls).await;
            let winners = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(winners, 1, "{backend:?}: {results:?}");
            for err in results.iter().filter_map(|r| r.as_ref().err()) {
                assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
            }
            let left_pending =
                moves_to(&app, id, ActionStatus::Approved).await + moves_to(&app, id, ActionStatus::Rejected).await;
            assert_eq!(left_pending, 1, "{backend:?}: the action left pending_approval once");
        }
    }
}

#[tokio::test]
async fn decide_validates_every_field() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = record_actions(
            &app.state,
            &[sample_action("act_1", "1", ActionType::ScaleUp, ActionStatus::PendingApproval)],
        )
        .await;
        let valid = DecideActionRequest {
            action_id: stored[0].id,
            decision: Decision::Reject as i32,
            comment: String::new(),
            decided_by: "ana".into(),
        };
        let cases = [
            ("action_id", DecideActionRequest { action_id: 0, ..valid.clone() }),
            ("action_id", DecideActionRequest { action_id: -4, ..valid.clone() }),
            ("decision", DecideActionRequest { decision: Decision::Unspecified as i32, ..valid.clone() }),
            ("decision", DecideActionRequest { decision: 42, ..valid.clone() }),
            ("comment", DecideActionRequest { comment: "x".repeat(2_001), ..valid.clone() }),
            ("decided_by", DecideActionRequest { decided_by: "  ".into(), ..valid.clone() }),
            ("decided_by", DecideActionRequest { decided_by: "x".repeat(201), ..valid.clone() }),
        ];
        let mut client = app.approvals.clone();
        for (field, request) in cases {
            let err = client.decide_action(request).await.expect_err(field);
            assert_eq!(invalid_field(&err), field, "{backend:?}");
        }
        // Nothing was decided by the invalid calls; the limits themselves pass.
        let ok = DecideActionRequest { comment: "é".repeat(2_000), decided_by: "x".repeat(200), ..valid.clone() };
        client.decide_action(ok).await.expect("boundary values are valid");

        let err = decide(&app, 999_999, Decision::Approve, "ana").await.expect_err("unknown");
        assert_eq!(err.code(), Code::NotFound);
    }
}

#[tokio::test]
async fn stale_pending_actions_expire_and_are_never_executed() {
    for backend in backends() {
        let app = spawn_app_with(backend, |s| s.engine.approval_ttl = Duration::from_secs(3_600)).await;
        let stored = record_actions(
            &app.state,
            &[
                sample_action("act_1", "1", ActionType::ScaleUp, ActionStatus::PendingApproval),
                sample_action("act_1", "2", ActionType::ScaleDown, ActionStatus::PendingApproval),
                sample_action("act_2", "3", ActionType::Pause, ActionStatus::PendingApproval),
                sample_action("act_1", "4", ActionType::ScaleUp, ActionStatus::Approved),
            ],
        )
        .await;
        let two_hours_ago = Utc::now() - TimeDelta::hours(2);
        for record in [&stored[0], &stored[2], &stored[3]] {
            set_action_times(&app.state, record.id, two_hours_ago, None).await;
        }

        let expired = expire_stale(&app.state).await.expect("expiry runs");
        let mut ids: Vec<i64> = expired.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [stored[0].id, stored[2].id], "{backend:?}: only old pending actions expire");
        for record in &expired {
            assert_eq!(record.status, ActionStatus::Expired);
            assert!(record.decided_at.is_some() && record.executed_at.is_none());
            assert!(record.decided_by.is_none());
            assert_eq!(moves_to(&app, record.id, ActionStatus::Expired).await, 1);
        }
        assert!(expire_stale(&app.state).await.expect("second run").is_empty(), "nothing left to expire");

        let err = decide(&app, stored[0].id, Decision::Approve, "ana").await.expect_err("expired");
        assert_eq!(err.code(), Code::FailedPrecondition);
        let still_pending = pending_page(&app, "", 0, "").await.expect("page");
        assert_eq!(still_pending.actions.iter().map(|a| a.id).collect::<Vec<_>>(), [stored[1].id]);
    }
}
