//! Alerts: the webhook receives Slack-compatible JSON for the alerting
//! records only; a failing webhook is retried a bounded number of times and
//! never blocks `observe`. A local HTTP receiver plays the webhook.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autoscaler::alerts::{AlertSettings, AlertStats, Alerts};
use autoscaler::domain::action::{ActionRecord, ActionStatus, ActionType};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;

use crate::helpers::{backends, sample_action, spawn_app_with};

/// What the receiver got, and how it answers.
#[derive(Clone)]
struct Receiver {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    answer: StatusCode,
    delay: Duration,
}

async fn receive(State(receiver): State<Receiver>, Json(body): Json<serde_json::Value>) -> StatusCode {
    tokio::time::sleep(receiver.delay).await;
    receiver.bodies.lock().expect("lock").push(body);
    receiver.answer
}

/// Starts a webhook on a free port; returns its URL and what it received.
async fn start_receiver(answer: StatusCode, delay: Duration) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let app =
        Router::new().route("/hook", post(receive)).with_state(Receiver { bodies: bodies.clone(), answer, delay });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), bodies)
}

fn record(id: i64, action_type: ActionType, status: ActionStatus, budgets: (i64, i64)) -> ActionRecord {
    let mut action = sample_action("act_7", &format!("{id}"), action_type, status);
    (action.old_budget_minor, action.new_budget_minor) = budgets;
    let now = Utc::now();
    ActionRecord {
        id,
        action,
        status,
        decided_by: None,
        decision_comment: None,
        error: (status == ActionStatus::Failed).then(|| "budget changed on the platform since the decision".into()),
        created_at: now,
        decided_at: None,
        executed_at: None,
        updated_at: now,
        resolution: None,
    }
}

fn fast_settings(url: &str) -> AlertSettings {
    AlertSettings {
        max_attempts: 3,
        first_backoff: Duration::from_millis(10),
        request_timeout: Duration::from_secs(2),
        ..AlertSettings::new(url, 50_000)
    }
}

async fn wait_for(alerts: &Alerts, done: impl Fn(AlertStats) -> bool) -> AlertStats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = alerts.stats();
        if done(stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "timed out: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn texts(bodies: &Mutex<Vec<serde_json::Value>>) -> Vec<String> {
    bodies.lock().expect("lock").iter().map(|b| b["text"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn the_webhook_receives_slack_json_for_each_alerting_record() {
    let (url, bodies) = start_receiver(StatusCode::OK, Duration::ZERO).await;
    let alerts = Alerts::start(fast_settings(&url));
    use ActionStatus as S;
    use ActionType as T;
    alerts.observe(&[
        record(1, T::Pause, S::Executed, (15_000, 0)),
        record(2, T::ScaleUpAggressive, S::Executed, (100_000, 150_000)),
        record(3, T::ScaleUp, S::Executed, (10_000, 12_000)),
        record(4, T::ScaleDown, S::PendingApproval, (80_000, 56_000)),
        record(5, T::ScaleUp, S::Failed, (10_000, 12_000)),
        record(6, T::Maintain, S::Skipped, (10_000, 10_000)),
        record(7, T::ScaleUp, S::Approved, (100_000, 200_000)),
    ]);
    assert!(alerts.flush(Duration::from_secs(10)).await, "every alert settled");
    assert_eq!(alerts.stats(), AlertStats { queued: 4, delivered: 4, failed: 0, dropped: 0 });

    let texts = texts(&bodies);
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(texts[0].contains("paused campaign *Campaign 1*") && texts[0].contains("$150.00"), "{}", texts[0]);
    assert!(
        texts[1].contains("increased the daily budget") && texts[1].contains("$500.00") && texts[1].contains("+50.0%"),
        "{}",
        texts[1]
    );
    assert!(
        texts[2].contains("Action 4 waits for approval") && texts[2].contains("$800.00 -> $560.00"),
        "{}",
        texts[2]
    );
    assert!(
        texts[3].contains("Action 5") && texts[3].contains("failed: budget changed on the platform"),
        "{}",
        texts[3]
    );
    for body in bodies.lock().expect("lock").iter() {
        assert_eq!(body["blocks"][0]["type"], "section");
        assert_eq!(body["blocks"][0]["text"]["text"], body["text"]);
        assert_eq!(body["blocks"][1]["type"], "context");
    }
}

#[tokio::test]
async fn a_failing_webhook_is_retried_a_bounded_number_of_times() {
    let (url, bodies) = start_receiver(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO).await;
    let alerts = Alerts::start(fast_settings(&url));
    alerts.observe(&[record(1, ActionType::Pause, ActionStatus::Executed, (15_000, 0))]);
    let stats = wait_for(&alerts, |s| s.failed == 1).await;
    assert_eq!(stats, AlertStats { queued: 1, delivered: 0, failed: 1, dropped: 0 });
    // Nothing in flight: no further try can come, so the count is final.
    assert!(alerts.flush(Duration::ZERO).await, "nothing left in flight");
    assert_eq!(bodies.lock().expect("lock").len(), 3, "exactly max_attempts tries");

    // A refusal (4xx) will not improve: one try only.
    let (url, bodies) = start_receiver(StatusCode::BAD_REQUEST, Duration::ZERO).await;
    let alerts = Alerts::start(fast_settings(&url));
    alerts.observe(&[record(1, ActionType::Pause, ActionStatus::Executed, (15_000, 0))]);
    wait_for(&alerts, |s| s.failed == 1).await;
    assert!(alerts.flush(Duration::ZERO).await, "nothing left in flight");
    assert_eq!(bodies.lock().expect("lock").len(), 1);

    // Nobody listening at all: also bounded, also counted.
    let alerts = Alerts::start(fast_settings("http://127.0.0.1:1/hook"));
    alerts.observe(&[record(1, ActionType::Pause, ActionStatus::Executed, (15_000, 0))]);
    wait_for(&alerts, |s| s.failed == 1).await;
}

#[tokio::test]
async fn observe_never_waits_for_a_slow_webhook_and_counts_what_it_drops() {
    let (url, _bodies) = start_receiver(StatusCode::INTERNAL_SERVER_ERROR, Duration::from_millis(200)).await;
    let alerts = Alerts::start(AlertSettings { queue_capacity: 5, ..fast_settings(&url) });
    let records: Vec<_> =
        (1..=200).map(|id| record(id, ActionType::ScaleUp, ActionStatus::PendingApproval, (10_000, 12_000))).collect();
    // `observe` is not async: it only queues. Right after it returns every
    // record is accounted for, queued or dropped, while the webhook is slow.
    alerts.observe(&records);
    let stats = alerts.stats();
    assert_eq!(stats.queued + stats.dropped, 200);
    assert!(stats.dropped >= 190, "{stats:?}");
    assert!(!alerts.flush(Duration::from_millis(50)).await, "a slow webhook keeps alerts in flight");
}

#[tokio::test]
async fn without_a_webhook_alerts_are_a_no_op_and_with_one_the_server_sends_them() {
    let disabled = Alerts::from_webhook(None, 10_000);
    assert!(!disabled.is_enabled());
    disabled.observe(&[record(1, ActionType::Pause, ActionStatus::Executed, (15_000, 0))]);
    assert_eq!(disabled.stats(), AlertStats::default());

    for backend in backends() {
        let (url, bodies) = start_receiver(StatusCode::OK, Duration::ZERO).await;
        let app = spawn_app_with(backend, |s| s.engine.webhook_url = Some(url.clone())).await;
        assert!(app.state.alerts.is_enabled(), "{backend:?}");
        app.state.alerts.observe(&[record(9, ActionType::ScaleDown, ActionStatus::Failed, (10_000, 7_000))]);
        wait_for(&app.state.alerts, |s| s.delivered == 1).await;
        assert!(texts(&bodies)[0].contains("Action 9"));
    }
}
