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

use crate::helpers::{backends, sample_action, spawn_app_with, spawn_with_sandbox_and};

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
        texts[2].contains("Action 5") && texts[2].contains("failed: budget changed on the platform"),
        "{}",
        texts[2]
    );
    // The approvals of one call come last, in one message, with their commands.
    assert!(
        texts[3].contains("Action 4 waits for approval") && texts[3].contains("$800.00 -> $560.00"),
        "{}",
        texts[3]
    );
    assert!(texts[3].contains("`autoscaler actions approve 4`"), "{}", texts[3]);
    assert!(texts[3].contains("`autoscaler actions reject 4`"), "{}", texts[3]);
    assert!(texts[3].contains(r#"-d '{"action_id":4,"decision":"DECISION_APPROVE""#), "{}", texts[3]);
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
        (1..=200).map(|id| record(id, ActionType::Pause, ActionStatus::Executed, (10_000, 0))).collect();
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

/// The grpcurl to run the commands in messages with: `AUTOSCALER_GRPCURL`,
/// else `grpcurl` on `PATH`; `None` (and a note) when there is none, unless
/// `AUTOSCALER_REQUIRE_GRPCURL` is set.
fn grpcurl() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("AUTOSCALER_GRPCURL").map(std::path::PathBuf::from).or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|dir| dir.join("grpcurl")).find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("AUTOSCALER_REQUIRE_GRPCURL").is_none(),
            "AUTOSCALER_REQUIRE_GRPCURL is set but no grpcurl"
        );
        eprintln!("note: no grpcurl on PATH (or AUTOSCALER_GRPCURL): the alert's grpcurl commands are not run");
    }
    found
}

/// Runs a command copied from an alert through `sh`, with `autoscaler` and
/// `grpcurl` resolved to the built CLI and `grpcurl`.
async fn run_pasted(command: String, grpcurl: Option<std::path::PathBuf>) -> std::process::Output {
    let cli = env!("CARGO_BIN_EXE_autoscaler");
    tokio::task::spawn_blocking(move || {
        let command = match command.strip_prefix("autoscaler ") {
            Some(rest) => format!("'{cli}' {rest}"),
            None => match (&grpcurl, command.strip_prefix("grpcurl ")) {
                (Some(grpcurl), Some(rest)) => format!("'{}' {rest}", grpcurl.display()),
                _ => command,
            },
        };
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env("USER", "alert-test")
            .env_remove("AUTOSCALER_SERVER")
            .env_remove("AUTOSCALER_TOKEN")
            .output()
            .expect("sh runs")
    })
    .await
    .expect("joined")
}

/// The command after `label` (`Approve: `) for action `id` in `text`.
fn command_in(text: &str, label: &str, id: i64) -> String {
    let needle = format!("{label}`");
    text.split(&needle)
        .skip(1)
        .filter_map(|rest| rest.split('`').next())
        .find(|command| {
            command.contains(&format!(" {id} "))
                || command.ends_with(&format!(" {id}"))
                || command.contains(&format!(":{id},"))
        })
        .unwrap_or_else(|| panic!("no {label:?} command for action {id} in:\n{text}"))
        .to_owned()
}

async fn pending_ids(app: &crate::helpers::TestApp) -> Vec<i64> {
    let mut client = app.approvals.clone();
    let page = client
        .list_pending_actions(autoscaler::pb::ListPendingActionsRequest { page_size: 500, ..Default::default() })
        .await
        .expect("pending")
        .into_inner();
    page.actions.iter().map(|a| a.id).collect()
}

/// Rules for `accounts` under which every budget increase waits for approval.
async fn every_increase_waits(app: &crate::helpers::TestApp, accounts: &[&str]) {
    let mut client = app.rules.clone();
    for account in accounts {
        let rule = autoscaler::pb::ScalingRule {
            account_id: (*account).into(),
            name: "Cautious".into(),
            auto_approve_up_to_minor: Some(0),
            ..Default::default()
        };
        client.create_rule(autoscaler::pb::CreateRuleRequest { rule: Some(rule) }).await.expect("rule");
    }
}

async fn run_cycle(app: &crate::helpers::TestApp) -> autoscaler::pb::RunCycleResponse {
    let mut client = app.autoscaler.clone();
    let request =
        autoscaler::pb::RunCycleRequest { mode: autoscaler::pb::CycleMode::Optimize as i32, ..Default::default() };
    client.run_cycle(request).await.expect("cycle runs").into_inner()
}

#[tokio::test]
async fn a_cycles_approvals_arrive_in_one_message_whose_commands_decide_them() {
    let grpcurl = grpcurl();
    for backend in backends() {
        let (url, bodies) = start_receiver(StatusCode::OK, Duration::ZERO).await;
        let sandbox = meta_sandbox::Sandbox::generated(42, 2, 30);
        let (app, running) =
            spawn_with_sandbox_and(backend, &sandbox, |s| s.engine.webhook_url = Some(url.clone())).await;
        every_increase_waits(&app, &["act_1000001", "act_1000002"]).await;
        let cycle = run_cycle(&app).await;
        assert!(app.state.alerts.flush(Duration::from_secs(30)).await, "{backend:?}: alerts settled");

        let pending = pending_ids(&app).await;
        assert!(pending.len() >= 2, "{backend:?}: the sandbox's winners wait for approval: {pending:?}");
        let approvals: Vec<String> = texts(&bodies).into_iter().filter(|t| t.contains("wait")).collect();
        assert_eq!(approvals.len(), 1, "{backend:?}: one message for the cycle's approvals: {approvals:#?}");
        let message = &approvals[0];
        assert!(message.contains(&format!("{} actions of cycle {}", pending.len(), cycle.cycle_id)), "{message}");
        for id in &pending {
            let approve = command_in(message, "Approve: ", *id);
            assert_eq!(approve, format!("autoscaler actions approve {id} --server http://{}", app.addr));
        }
        for secret in [running.access_token(), url.clone()] {
            assert!(!message.contains(&secret), "{backend:?}: a secret in the message");
        }

        // Pasted as they stand, the commands decide the actions.
        let approved = pending[0];
        let out = run_pasted(command_in(message, "Approve: ", approved), None).await;
        assert!(out.status.success(), "{backend:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!pending_ids(&app).await.contains(&approved), "{backend:?}: approved by the pasted CLI command");
        if let Some(grpcurl) = grpcurl.clone() {
            let rejected = pending[1];
            let command = message
                .split("Reject with grpcurl: `")
                .skip(1)
                .filter_map(|rest| rest.split('`').next())
                .find(|c| c.contains(&format!(":{rejected},")))
                .unwrap_or_else(|| panic!("no grpcurl rejection of {rejected} in:\n{message}"))
                .to_owned();
            let out = run_pasted(command, Some(grpcurl)).await;
            assert!(out.status.success(), "{backend:?}: {}", String::from_utf8_lossy(&out.stderr));
            let history = app.state.db.clone();
            let record = autoscaler::persistence::actions::get(&history, rejected).await.expect("action");
            assert_eq!(record.status, ActionStatus::Rejected, "{backend:?}");
            assert_eq!(record.decided_by.as_deref(), Some("alert-test"), "{backend:?}: $USER recorded");
        }
    }
}

#[tokio::test]
async fn failing_accounts_alert_once_with_metas_code_and_what_to_do() {
    use meta_sandbox::{MetaErrorSpec, Sandbox};
    for backend in backends() {
        let (url, bodies) = start_receiver(StatusCode::OK, Duration::ZERO).await;
        let sandbox = Sandbox::generated(42, 3, 5);
        let expired = || MetaErrorSpec::permanent(190, Some(463), "Error validating access token: Session has expired");
        sandbox.fail_object("act_1000001", expired());
        sandbox.fail_object("act_1000002", MetaErrorSpec::permanent(200, None, "Permissions error"));
        sandbox.fail_object("act_1000003", MetaErrorSpec::permanent(100, None, "Invalid parameter"));
        let (app, running) =
            spawn_with_sandbox_and(backend, &sandbox, |s| s.engine.webhook_url = Some(url.clone())).await;
        let cycle = run_cycle(&app).await;
        assert!(app.state.alerts.flush(Duration::from_secs(30)).await);
        let sent = texts(&bodies);
        assert_eq!(sent.len(), 3, "{backend:?}: {sent:#?}");
        let token = sent.iter().find(|t| t.contains("refused the access token")).expect("token alert");
        assert!(
            token.contains("act_1000001 (Meta code 190, subcode 463)") && token.contains("META_ACCESS_TOKEN"),
            "{token}"
        );
        let permission = sent.iter().find(|t| t.contains("lost a permission")).expect("permission alert");
        assert!(
            permission.contains("act_1000002 (Meta code 200)") && permission.contains("system user"),
            "{permission}"
        );
        let failed = sent.iter().find(|t| t.contains("could not evaluate")).expect("account alert");
        assert!(
            failed.contains(&format!("Cycle {}", cycle.cycle_id)) && failed.contains("act_1000003 (Meta code 100)"),
            "{failed}"
        );
        for text in &sent {
            assert!(!text.contains(&running.access_token()) && !text.contains(&url), "{backend:?}: a secret in {text}");
        }

        // The same failures again: nothing new. Alerts are queued before the
        // cycle answers, so the count is final once it has.
        let queued = app.state.alerts.stats().queued;
        run_cycle(&app).await;
        assert_eq!(app.state.alerts.stats().queued, queued, "{backend:?}: repeated failures are not re-sent");

        // The account recovers, then fails again: that is news.
        sandbox.clear_faults();
        sandbox.fail_object("act_1000002", MetaErrorSpec::permanent(200, None, "Permissions error"));
        sandbox.fail_object("act_1000003", MetaErrorSpec::permanent(100, None, "Invalid parameter"));
        run_cycle(&app).await;
        sandbox.fail_object("act_1000001", expired());
        run_cycle(&app).await;
        assert!(app.state.alerts.flush(Duration::from_secs(30)).await);
        let tokens = texts(&bodies).iter().filter(|t| t.contains("refused the access token")).count();
        assert_eq!(tokens, 2, "{backend:?}: {:#?}", texts(&bodies));
    }
}

#[tokio::test]
async fn a_failed_cycle_alerts_with_the_command_to_run_one_now() {
    use sea_orm::ConnectionTrait;
    for backend in backends() {
        let (url, bodies) = start_receiver(StatusCode::OK, Duration::ZERO).await;
        let app = spawn_app_with(backend, |s| s.engine.webhook_url = Some(url.clone())).await;
        // A database that lost a table fails the whole cycle.
        app.state.db.execute_unprepared("DROP TABLE scaling_rules").await.expect("drop");
        let outcome = autoscaler::service::cycle::run_cycle(
            &app.state,
            autoscaler::service::cycle::CycleMode::Optimize,
            false,
            &[],
        )
        .await;
        assert!(outcome.is_err(), "{backend:?}: the cycle fails");
        assert!(app.state.alerts.flush(Duration::from_secs(30)).await);
        let sent = texts(&bodies);
        assert_eq!(sent.len(), 1, "{backend:?}: {sent:#?}");
        assert!(sent[0].contains("(optimize) failed: database failure"), "{}", sent[0]);
        assert!(sent[0].contains("`autoscaler run-cycle --mode optimize`"), "{}", sent[0]);
    }
}

#[tokio::test]
async fn the_daily_digest_lists_what_waits_once_per_day_across_replicas() {
    use autoscaler::service::digest::{DigestOutcome, send_approval_digest};
    for backend in backends() {
        let (url, bodies) = start_receiver(StatusCode::OK, Duration::ZERO).await;
        let sandbox = meta_sandbox::Sandbox::generated(42, 1, 30);
        let (app, _running) =
            spawn_with_sandbox_and(backend, &sandbox, |s| s.engine.webhook_url = Some(url.clone())).await;
        let now = Utc::now();
        assert_eq!(send_approval_digest(&app.state, now).await.expect("digest"), DigestOutcome::NothingWaiting);

        every_increase_waits(&app, &["act_1000001"]).await;
        run_cycle(&app).await;
        let pending = pending_ids(&app).await;
        assert!(!pending.is_empty(), "{backend:?}");
        let tomorrow = now + chrono::TimeDelta::days(1);
        assert_eq!(
            send_approval_digest(&app.state, tomorrow).await.expect("digest"),
            DigestOutcome::Sent(pending.len()),
            "{backend:?}"
        );
        // A second replica (same database) firing for the same day sends nothing.
        assert_eq!(send_approval_digest(&app.state, tomorrow).await.expect("digest"), DigestOutcome::AlreadySent);
        assert!(app.state.alerts.flush(Duration::from_secs(30)).await);
        let digests: Vec<String> = texts(&bodies).into_iter().filter(|t| t.contains("Daily digest")).collect();
        assert_eq!(digests.len(), 1, "{backend:?}: {digests:#?}");
        let noun = if pending.len() == 1 { "action still waits" } else { "actions still wait" };
        assert!(digests[0].contains(&format!("{} {noun} for approval", pending.len())), "{}", digests[0]);
        for id in &pending {
            command_in(&digests[0], "Approve: ", *id);
            command_in(&digests[0], "Reject: ", *id);
        }
    }
    // Without a webhook there is nothing to send.
    let app = crate::helpers::spawn_app(backends()[0]).await;
    assert_eq!(send_approval_digest(&app.state, Utc::now()).await.expect("digest"), DigestOutcome::Disabled);
}
