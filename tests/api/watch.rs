//! WatchActions: live events, snapshots of the action as it was, resume and
//! replay without gaps or duplicates, filters, events of other replicas, slow
//! and vanished clients, and many watchers at once, on each backend.
use std::net::SocketAddr;
use std::time::Duration;

use autoscaler::domain::action::{ActionStatus, ActionType};
use autoscaler::grpc::ApprovalsApi;
use autoscaler::grpc::convert::timestamp;
use autoscaler::pb::approvals_service_client::ApprovalsServiceClient;
use autoscaler::pb::approvals_service_server::ApprovalsServiceServer;
use autoscaler::pb::{self, ActionFilter, DecideActionRequest, Decision, WatchActionsRequest, WatchActionsResponse};
use autoscaler::service::AppState;
use autoscaler::service::history::{WatchSettings, Watchers};
use chrono::{TimeDelta, Utc};
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Streaming};
use tonic_types::StatusExt;

use crate::helpers::{TestApp, backends, invalid_field, record_actions, sample_action, spawn_app};

const WAIT: Duration = Duration::from_secs(15);

async fn watch(app: &TestApp, request: WatchActionsRequest) -> Streaming<WatchActionsResponse> {
    let mut client = app.approvals.clone();
    client.watch_actions(request).await.expect("watch starts").into_inner()
}

async fn next(stream: &mut Streaming<WatchActionsResponse>) -> WatchActionsResponse {
    match tokio::time::timeout(WAIT, stream.message()).await {
        Ok(Ok(Some(event))) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn take(stream: &mut Streaming<WatchActionsResponse>, n: usize) -> Vec<WatchActionsResponse> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next(stream).await);
    }
    events
}

fn action_ids(events: &[WatchActionsResponse]) -> Vec<i64> {
    events.iter().map(|e| e.action.as_ref().map_or(0, |a| a.id)).collect()
}

fn assert_increasing(events: &[WatchActionsResponse]) {
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence), "sequences strictly increase");
}

fn pending(account: &str, campaign: &str) -> autoscaler::domain::action::NewAction {
    sample_action(account, campaign, ActionType::ScaleUp, ActionStatus::PendingApproval)
}

/// A second ApprovalsService on its own port over the same state, with its
/// own stream settings (short timeouts for the slow-client tests).
struct WatchServer {
    addr: SocketAddr,
    watchers: Watchers,
    _stop: oneshot::Sender<()>,
}

async fn spawn_watch_server(state: &AppState, settings: WatchSettings) -> WatchServer {
    let api = ApprovalsApi::with_watch_settings(state.clone(), settings);
    let watchers = api.watchers().clone();
    let incoming =
        tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().expect("address")).expect("listener");
    let addr = incoming.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder().add_service(ApprovalsServiceServer::new(api)).serve_with_incoming_shutdown(
            incoming,
            async {
                let _ = stopped.await;
            },
        ),
    );
    WatchServer { addr, watchers, _stop: stop }
}

async fn client(addr: SocketAddr, window: Option<u32>) -> ApprovalsServiceClient<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .initial_stream_window_size(window)
        .initial_connection_window_size(window);
    ApprovalsServiceClient::new(endpoint.connect().await.expect("connects"))
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn new_actions_and_status_changes_stream_as_they_happen() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut stream = watch(&app, WatchActionsRequest::default()).await;
        let stored = record_actions(&app.state, &[pending("act_1", "1")]).await;
        let created = next(&mut stream).await;
        assert_eq!(created.kind, pb::ActionEventKind::Created as i32);
        let action = created.action.as_ref().expect("action");
        assert_eq!((action.id, action.status), (stored[0].id, pb::ActionStatus::PendingApproval as i32));
        assert_eq!((action.old_budget_minor, action.new_budget_minor), (10_000, 12_000));
        assert!(created.sequence > 0 && created.event_time.is_some());

        let mut approvals = app.approvals.clone();
        let decide = DecideActionRequest {
            action_id: stored[0].id,
            decision: Decision::Reject as i32,
            comment: "too big".into(),
            decided_by: "ana".into(),
        };
        approvals.decide_action(decide).await.expect("rejected");
        let changed = next(&mut stream).await;
        assert_eq!(changed.kind, pb::ActionEventKind::StatusChanged as i32, "{backend:?}");
        assert!(changed.sequence > created.sequence);
        let action = changed.action.expect("action");
        assert_eq!(action.status, pb::ActionStatus::Rejected as i32);
        assert_eq!((action.decided_by.as_str(), action.decision_comment.as_str()), ("ana", "too big"));
        assert_eq!(action.update_time, changed.event_time);
    }
}

#[tokio::test]
async fn replayed_events_show_the_action_as_it_was_then() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let before = Utc::now() - TimeDelta::seconds(1);
        let stored = record_actions(&app.state, &[pending("act_1", "1")]).await;
        let mut approvals = app.approvals.clone();
        let decide = DecideActionRequest {
            action_id: stored[0].id,
            decision: Decision::Reject as i32,
            comment: "no".into(),
            decided_by: "ana".into(),
        };
        approvals.decide_action(decide).await.expect("rejected");

        let mut stream =
            watch(&app, WatchActionsRequest { replay_from: Some(timestamp(before)), ..Default::default() }).await;
        let events = take(&mut stream, 2).await;
        let created = events[0].action.as_ref().expect("action");
        // The row is rejected now; the created event still shows it pending,
        // undecided.
        assert_eq!(created.status, pb::ActionStatus::PendingApproval as i32, "{backend:?}");
        assert!(created.decided_by.is_empty() && created.decide_time.is_none());
        assert_eq!(created.update_time, created.create_time);
        let rejected = events[1].action.as_ref().expect("action");
        assert_eq!(rejected.status, pb::ActionStatus::Rejected as i32);
        assert_eq!(rejected.decided_by, "ana");
        assert!(rejected.decide_time.is_some());

        // After the replay the stream continues live.
        let later = record_actions(&app.state, &[pending("act_1", "2")]).await;
        assert_eq!(action_ids(&[next(&mut stream).await]), [later[0].id]);
    }
}

#[tokio::test]
async fn an_event_written_without_its_snapshot_gets_one_from_the_database() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    for backend in backends() {
        let app = spawn_app(backend).await;
        let before = Utc::now() - TimeDelta::seconds(1);
        let stored = record_actions(&app.state, &[pending("act_1", "1")]).await;
        let db = &app.state.db;
        let note = match db.get_database_backend() {
            DbBackend::Postgres => "UPDATE scaling_actions SET resolution = 'read back' WHERE id = $1",
            _ => "UPDATE scaling_actions SET resolution = 'read back' WHERE id = ?",
        };
        db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), note, [stored[0].id.into()]))
            .await
            .expect("resolution noted");
        let mut approvals = app.approvals.clone();
        let decide = DecideActionRequest {
            action_id: stored[0].id,
            decision: Decision::Reject as i32,
            comment: "not now".into(),
            decided_by: "ana".into(),
        };
        approvals.decide_action(decide).await.expect("rejected");
        // Another writer of the log (a script, a later tool) names only the
        // event's own columns.
        let sql = match db.get_database_backend() {
            DbBackend::Postgres => {
                "INSERT INTO action_events (action_id, kind, status, account_id, campaign_id, action_type, created_at) \
                 VALUES ($1, 'status_changed', 'rejected', 'act_1', '1', 'scale_up', $2)"
            }
            _ => {
                "INSERT INTO action_events (action_id, kind, status, account_id, campaign_id, action_type, created_at) \
                 VALUES (?, 'status_changed', 'rejected', 'act_1', '1', 'scale_up', ?)"
            }
        };
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [stored[0].id.into(), Utc::now().into()],
        ))
        .await
        .expect("event written");

        let mut stream =
            watch(&app, WatchActionsRequest { replay_from: Some(timestamp(before)), ..Default::default() }).await;
        let events = take(&mut stream, 3).await;
        let created = events[0].action.as_ref().expect("action");
        assert!(created.decided_by.is_empty(), "{backend:?}: the created event shows it undecided");
        assert!(created.resolution.is_empty());
        // The service's own event and the other writer's both carry the
        // action as it was when they were written.
        for event in &events[1..] {
            let action = event.action.as_ref().expect("action");
            assert_eq!(action.resolution, "read back", "{backend:?}: {event:?}");
            assert_eq!(action.decided_by, "ana", "{backend:?}: {event:?}");
            assert_eq!(action.decision_comment, "not now");
            assert!(action.decide_time.is_some());
        }
    }
}

#[tokio::test]
async fn resuming_after_a_sequence_has_no_gaps_or_duplicates() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut stream = watch(&app, WatchActionsRequest::default()).await;
        let first: Vec<_> = (0..10).map(|i| pending("act_1", &format!("{i}"))).collect();
        let mut expected: Vec<i64> = record_actions(&app.state, &first).await.iter().map(|r| r.id).collect();
        let seen = take(&mut stream, 4).await;
        drop(stream);
        // Written while the monitor is away.
        let second: Vec<_> = (10..15).map(|i| pending("act_1", &format!("{i}"))).collect();
        expected.extend(record_actions(&app.state, &second).await.iter().map(|r| r.id));

        let last_seen = seen[3].sequence;
        let mut resumed = watch(&app, WatchActionsRequest { after_sequence: last_seen, ..Default::default() }).await;
        let rest = take(&mut resumed, 11).await;
        assert!(rest[0].sequence > last_seen);
        let all: Vec<_> = seen.into_iter().chain(rest).collect();
        assert_increasing(&all);
        assert_eq!(action_ids(&all), expected, "{backend:?}: every action once, in order");
        // Nothing else is pending on the stream.
        let extra = tokio::time::timeout(Duration::from_millis(300), resumed.message()).await;
        assert!(extra.is_err(), "no duplicate or extra event: {extra:?}");
    }
}

#[tokio::test]
async fn the_stream_applies_the_history_filters() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let filter = ActionFilter {
            account_id: "act_2".into(),
            status: pb::ActionStatus::PendingApproval as i32,
            ..Default::default()
        };
        let mut stream = watch(&app, WatchActionsRequest { filter: Some(filter), ..Default::default() }).await;
        let stored = record_actions(
            &app.state,
            &[
                pending("act_1", "1"),
                pending("act_2", "2"),
                sample_action("act_2", "3", ActionType::ScaleUp, ActionStatus::Approved),
                pending("act_2", "4"),
            ],
        )
        .await;
        let mut approvals = app.approvals.clone();
        let reject = DecideActionRequest {
            action_id: stored[1].id,
            decision: Decision::Reject as i32,
            comment: String::new(),
            decided_by: "ana".into(),
        };
        approvals.decide_action(reject).await.expect("rejected");
        let sentinel = record_actions(&app.state, &[pending("act_2", "5")]).await;
        let events = take(&mut stream, 3).await;
        assert_eq!(action_ids(&events), [stored[1].id, stored[3].id, sentinel[0].id], "{backend:?}");
        assert!(events.iter().all(|e| e.kind == pb::ActionEventKind::Created as i32));
    }
}

#[tokio::test]
async fn events_committed_without_a_local_wake_up_arrive_by_polling() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut stream = watch(&app, WatchActionsRequest::default()).await;
        // As another replica would: write the log, never touch our wake-up.
        let stored = autoscaler::persistence::actions::insert_many(&app.state.db, &[pending("act_1", "1")])
            .await
            .expect("recorded");
        assert_eq!(action_ids(&[next(&mut stream).await]), [stored[0].id], "{backend:?}");
    }
}

#[tokio::test]
async fn many_watchers_each_receive_every_event() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut streams = Vec::new();
        for _ in 0..40 {
            streams.push(watch(&app, WatchActionsRequest::default()).await);
        }
        let batch: Vec<_> = (0..20).map(|i| pending("act_1", &format!("{i}"))).collect();
        let expected: Vec<i64> = record_actions(&app.state, &batch).await.iter().map(|r| r.id).collect();
        let received = futures_util::future::join_all(streams.iter_mut().map(|s| take(s, 20))).await;
        for events in received {
            assert_eq!(action_ids(&events), expected, "{backend:?}");
        }
    }
}

#[tokio::test]
async fn watch_rejects_bad_requests() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut client = app.approvals.clone();
        let cases = [
            ("after_sequence", WatchActionsRequest { after_sequence: -1, ..Default::default() }),
            (
                "filter.status",
                WatchActionsRequest {
                    filter: Some(ActionFilter { status: 77, ..Default::default() }),
                    ..Default::default()
                },
            ),
            (
                "filter.account_id",
                WatchActionsRequest {
                    filter: Some(ActionFilter { account_id: "act_x".into(), ..Default::default() }),
                    ..Default::default()
                },
            ),
            (
                "replay_from",
                WatchActionsRequest {
                    replay_from: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }),
                    ..Default::default()
                },
            ),
        ];
        for (field, request) in cases {
            let err = client.watch_actions(request).await.expect_err(field);
            assert_eq!(invalid_field(&err), field, "{backend:?}");
        }
    }
}

fn impatient() -> WatchSettings {
    WatchSettings {
        channel_capacity: 16,
        batch_size: 50,
        poll_interval: Duration::from_millis(100),
        stall_timeout: Duration::from_millis(300),
        ..WatchSettings::default()
    }
}

#[tokio::test]
async fn a_slow_watcher_is_told_to_resume_while_the_engine_and_others_keep_going() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let server = spawn_watch_server(&app.state, impatient()).await;
        // The slow client advertises a small HTTP/2 window and does not read.
        let mut slow_client = client(server.addr, Some(16 * 1024)).await;
        let mut fast_client = client(server.addr, None).await;
        let mut slow = slow_client.watch_actions(WatchActionsRequest::default()).await.expect("slow").into_inner();
        let mut fast = fast_client.watch_actions(WatchActionsRequest::default()).await.expect("fast").into_inner();

        let batch: Vec<_> = (0..1_500).map(|i| pending("act_1", &format!("{i}"))).collect();
        // The engine only writes the database: nothing waits for watchers, so
        // the write returns although the slow client reads nothing.
        let recorded = tokio::time::timeout(WAIT, record_actions(&app.state, &batch))
            .await
            .expect("the engine's write waited for a watcher");
        let expected: Vec<i64> = recorded.iter().map(|r| r.id).collect();
        let fast_events = take(&mut fast, expected.len()).await;
        assert_eq!(action_ids(&fast_events), expected, "{backend:?}: the fast watcher got everything");

        // The slow watcher's task gives up on its client...
        wait_until("the slow watcher to end", || server.watchers.active() == 1).await;
        // ...which still receives what was handed over, then the reason.
        let mut received = Vec::new();
        let status = loop {
            match tokio::time::timeout(WAIT, slow.message()).await.expect("stream continues") {
                Ok(Some(event)) => received.push(event),
                Ok(None) => panic!("stream ended without a status"),
                Err(status) => break status,
            }
        };
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(!received.is_empty() && received.len() < expected.len(), "{} received", received.len());
        let last = received.last().map_or(0, |e| e.sequence);
        assert!(status.message().contains(&format!("resume after sequence {last}")), "{}", status.message());
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.metadata.get("resume_after_sequence"), Some(&last.to_string()));

        // Resuming where it stopped delivers the rest, without gaps or repeats.
        let mut resumed = fast_client
            .watch_actions(WatchActionsRequest { after_sequence: last, ..Default::default() })
            .await
            .expect("resume")
            .into_inner();
        let rest = take(&mut resumed, expected.len() - received.len()).await;
        let all: Vec<_> = received.into_iter().chain(rest).collect();
        assert_increasing(&all);
        assert_eq!(action_ids(&all), expected, "{backend:?}");
    }
}

#[tokio::test]
async fn a_watcher_task_stops_when_its_client_goes_away() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let server = spawn_watch_server(&app.state, impatient()).await;
        let mut watcher_client = client(server.addr, None).await;
        let stream = watcher_client.watch_actions(WatchActionsRequest::default()).await.expect("watch").into_inner();
        wait_until("the watcher to start", || server.watchers.active() == 1).await;
        drop(stream);
        wait_until("the watcher to stop", || server.watchers.active() == 0).await;
        // Later events harm nobody: a new watcher gets them, and it is the only one.
        let mut again = watcher_client.watch_actions(WatchActionsRequest::default()).await.expect("watch").into_inner();
        wait_until("the new watcher to start", || server.watchers.active() == 1).await;
        record_actions(&app.state, &[pending("act_1", "1")]).await;
        assert_eq!(take(&mut again, 1).await.len(), 1, "{backend:?}");
        assert_eq!(server.watchers.active(), 1, "{backend:?}");
    }
}
