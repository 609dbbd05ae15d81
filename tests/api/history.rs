//! ListActionHistory: filters, newest-first keyset paging that stays stable
//! while actions arrive, and validation; GetAction: one action by id; on
//! each backend.
use autoscaler::domain::action::{ActionStatus, ActionType};
use autoscaler::grpc::convert::timestamp;
use autoscaler::pb::{self, ActionFilter, ListActionHistoryRequest};
use chrono::{TimeDelta, Utc};

use crate::helpers::{TestApp, backends, invalid_field, record_actions, sample_action, set_action_times, spawn_app};

async fn history(
    app: &TestApp,
    filter: ActionFilter,
    page_size: i32,
    token: &str,
) -> Result<pb::ListActionHistoryResponse, tonic::Status> {
    let mut client = app.approvals.clone();
    let request = ListActionHistoryRequest { filter: Some(filter), page_size, page_token: token.into() };
    client.list_action_history(request).await.map(|r| r.into_inner())
}

/// Every id the filter lists, following the tokens with `page_size`.
async fn all_ids(app: &TestApp, filter: ActionFilter, page_size: i32) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = history(app, filter.clone(), page_size, &token).await.expect("page");
        ids.extend(page.actions.iter().map(|a| a.id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn history_is_newest_first_and_pages_stay_stable_while_actions_arrive() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let batch: Vec<_> = (0..25)
            .map(|i| sample_action("act_1", &format!("{i}"), ActionType::ScaleUp, ActionStatus::Executed))
            .collect();
        let stored = record_actions(&app.state, &batch).await;
        let mut expected: Vec<i64> = stored.iter().map(|r| r.id).collect();
        expected.reverse();

        let first = history(&app, ActionFilter::default(), 10, "").await.expect("first page");
        assert_eq!(first.actions.iter().map(|a| a.id).collect::<Vec<_>>(), expected[..10]);
        // New actions arrive between pages: they belong before page one and
        // never shift or repeat what follows.
        let newer: Vec<_> = (0..5)
            .map(|i| sample_action("act_1", &format!("9{i}"), ActionType::ScaleDown, ActionStatus::Executed))
            .collect();
        record_actions(&app.state, &newer).await;
        let second = history(&app, ActionFilter::default(), 10, &first.next_page_token).await.expect("second page");
        assert_eq!(second.actions.iter().map(|a| a.id).collect::<Vec<_>>(), expected[10..20]);
        let third = history(&app, ActionFilter::default(), 10, &second.next_page_token).await.expect("third page");
        assert_eq!(third.actions.iter().map(|a| a.id).collect::<Vec<_>>(), expected[20..]);
        assert!(third.next_page_token.is_empty(), "{backend:?}: last page has no token");

        assert_eq!(all_ids(&app, ActionFilter::default(), 0).await.len(), 30, "default page size covers all");
    }
}

#[tokio::test]
async fn history_filters_by_account_campaign_type_status_and_time() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        use ActionStatus as S;
        use ActionType as T;
        let stored = record_actions(
            &app.state,
            &[
                sample_action("act_1", "11", T::ScaleUp, S::Executed),
                sample_action("act_1", "11", T::Pause, S::PendingApproval),
                sample_action("act_1", "12", T::ScaleDown, S::Failed),
                sample_action("act_2", "21", T::ScaleUp, S::Executed),
                sample_action("act_2", "22", T::Maintain, S::Skipped),
                sample_action("act_2", "21", T::ScaleUp, S::Rejected),
            ],
        )
        .await;
        let id = |i: usize| stored[i].id;
        // Creation times: 0 and 3 three days ago, 1 and 4 yesterday, the rest now.
        let now = Utc::now();
        let three_days_ago = now - TimeDelta::days(3);
        let yesterday = now - TimeDelta::days(1);
        for (i, at) in [(0, three_days_ago), (3, three_days_ago), (1, yesterday), (4, yesterday)] {
            set_action_times(&app.state, id(i), at, None).await;
        }

        let cases: Vec<(&str, ActionFilter, Vec<i64>)> = vec![
            ("none", ActionFilter::default(), vec![id(5), id(4), id(3), id(2), id(1), id(0)]),
            ("account", ActionFilter { account_id: "act_2".into(), ..Default::default() }, vec![id(5), id(4), id(3)]),
            ("campaign", ActionFilter { campaign_id: "11".into(), ..Default::default() }, vec![id(1), id(0)]),
            (
                "type",
                ActionFilter { action_type: pb::ActionType::ScaleUp as i32, ..Default::default() },
                vec![id(5), id(3), id(0)],
            ),
            (
                "status",
                ActionFilter { status: pb::ActionStatus::Executed as i32, ..Default::default() },
                vec![id(3), id(0)],
            ),
            (
                "start",
                ActionFilter { start_time: Some(timestamp(yesterday)), ..Default::default() },
                vec![id(5), id(4), id(2), id(1)],
            ),
            (
                "end (exclusive)",
                ActionFilter { end_time: Some(timestamp(yesterday)), ..Default::default() },
                vec![id(3), id(0)],
            ),
            (
                "range",
                ActionFilter {
                    start_time: Some(timestamp(now - TimeDelta::days(2))),
                    end_time: Some(timestamp(now - TimeDelta::hours(1))),
                    ..Default::default()
                },
                vec![id(4), id(1)],
            ),
            (
                "account + type + status",
                ActionFilter {
                    account_id: "act_2".into(),
                    action_type: pb::ActionType::ScaleUp as i32,
                    status: pb::ActionStatus::Rejected as i32,
                    ..Default::default()
                },
                vec![id(5)],
            ),
            (
                "campaign + range",
                ActionFilter {
                    campaign_id: "21".into(),
                    start_time: Some(timestamp(now - TimeDelta::days(4))),
                    end_time: Some(timestamp(now - TimeDelta::days(2))),
                    ..Default::default()
                },
                vec![id(3)],
            ),
        ];
        for (name, filter, expected) in cases {
            for page_size in [1, 2, 50] {
                assert_eq!(
                    all_ids(&app, filter.clone(), page_size).await,
                    expected,
                    "{backend:?} {name} by {page_size}"
                );
            }
        }
    }
}

#[tokio::test]
async fn history_rejects_bad_filters_sizes_and_tokens() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let batch: Vec<_> = (0..3)
            .map(|i| sample_action("act_1", &format!("{i}"), ActionType::ScaleUp, ActionStatus::Executed))
            .collect();
        record_actions(&app.state, &batch).await;
        let now = Utc::now();
        let bad_time = prost_types::Timestamp { seconds: 1, nanos: -5 };
        let cases = [
            ("filter.account_id", ActionFilter { account_id: "123".into(), ..Default::default() }),
            ("filter.campaign_id", ActionFilter { campaign_id: "abc".into(), ..Default::default() }),
            ("filter.action_type", ActionFilter { action_type: 77, ..Default::default() }),
            ("filter.status", ActionFilter { status: 77, ..Default::default() }),
            ("filter.start_time", ActionFilter { start_time: Some(bad_time), ..Default::default() }),
            ("filter.end_time", ActionFilter { end_time: Some(bad_time), ..Default::default() }),
            (
                "filter.end_time",
                ActionFilter { start_time: Some(timestamp(now)), end_time: Some(timestamp(now)), ..Default::default() },
            ),
        ];
        for (field, filter) in cases {
            let err = history(&app, filter, 0, "").await.expect_err(field);
            assert_eq!(invalid_field(&err), field, "{backend:?}");
        }
        for size in [-1, 501] {
            let err = history(&app, ActionFilter::default(), size, "").await.expect_err("size");
            assert_eq!(invalid_field(&err), "page_size");
        }
        let err = history(&app, ActionFilter::default(), 1, "garbage!").await.expect_err("token");
        assert_eq!(invalid_field(&err), "page_token");
        // A token only continues the listing (filter) it came from.
        let token = history(&app, ActionFilter::default(), 1, "").await.expect("page").next_page_token;
        let other = ActionFilter { account_id: "act_1".into(), ..Default::default() };
        let err = history(&app, other, 1, &token).await.expect_err("foreign token");
        assert_eq!(invalid_field(&err), "page_token", "{backend:?}");
    }
}

#[tokio::test]
async fn get_action_answers_one_action_as_the_history_shows_it() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let stored = record_actions(
            &app.state,
            &[
                sample_action("act_1", "11", ActionType::ScaleUp, ActionStatus::Executed),
                sample_action("act_1", "12", ActionType::ScaleUpAggressive, ActionStatus::PendingApproval),
                sample_action("act_2", "21", ActionType::Pause, ActionStatus::Failed),
            ],
        )
        .await;
        // A status reached after recording shows too.
        let pending = stored[1].id;
        let decision = pb::DecideActionRequest {
            action_id: pending,
            decision: pb::Decision::Reject as i32,
            comment: "not during the sale".into(),
            decided_by: "alice".into(),
        };
        app.approvals.clone().decide_action(decision).await.expect("rejected");

        let listed = history(&app, ActionFilter::default(), 0, "").await.expect("history").actions;
        for record in &stored {
            let request = pb::GetActionRequest { action_id: record.id };
            let got = app.approvals.clone().get_action(request).await.expect("found").into_inner();
            let action = got.action.expect("an action");
            let in_history = listed.iter().find(|a| a.id == record.id).expect("listed");
            assert_eq!(&action, in_history, "{backend:?}: action {} as the history has it", record.id);
        }
        let rejected = app.approvals.clone().get_action(pb::GetActionRequest { action_id: pending }).await;
        let rejected = rejected.expect("found").into_inner().action.expect("an action");
        assert_eq!(rejected.status, pb::ActionStatus::Rejected as i32, "{backend:?}");
        assert_eq!(
            (rejected.decided_by.as_str(), rejected.decision_comment.as_str()),
            ("alice", "not during the sale")
        );

        let missing = stored.iter().map(|r| r.id).max().unwrap_or_default() + 1_000;
        let err = app.approvals.clone().get_action(pb::GetActionRequest { action_id: missing }).await;
        let err = err.expect_err("no such action");
        assert_eq!(err.code(), tonic::Code::NotFound, "{backend:?}: {err:?}");
        assert!(err.message().contains(&missing.to_string()), "names the id: {}", err.message());

        for bad in [0, -1, i64::MIN] {
            let err = app.approvals.clone().get_action(pb::GetActionRequest { action_id: bad }).await;
            assert_eq!(invalid_field(&err.expect_err("not an id")), "action_id", "{backend:?}: {bad}");
        }
    }
}
