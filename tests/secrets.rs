//! Secrets never leak: with every log line of a full working session captured
//! (a global subscriber at TRACE, in this dedicated test binary), the Meta
//! access token, the app secret and the API tokens appear nowhere in the
//! logs, the gRPC answers, the `/metrics` text or any column of the database.
#![allow(unreachable_pub)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use autoscaler::auth::{Role, TokenTable};
use autoscaler::pb::{self, ActionStatus, Decision};
use autoscaler::platform::sandbox::SandboxAccounts;
use autoscaler::service::cycle::{CycleMode, run_cycle};
use meta_sandbox::{MetaErrorSpec, Sandbox};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tonic::Request;

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::{Backend, TestApp, backends, spawn_app_with};

/// Everything logged by this process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber for the whole binary (once).
fn capture_logs() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
    .clone()
}

/// Unique per run, so a hit can only come from this run's configuration.
fn secret(label: &str) -> String {
    format!("{label}-{:x}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default())
}

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut request = Request::new(msg);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    request
}

/// Every text column of every table, as text.
async fn database_text(app: &TestApp) -> String {
    let db = &app.state.db;
    let backend = db.get_database_backend();
    let columns_sql = match backend {
        DbBackend::Sqlite => "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                              WHERE m.type = 'table'"
            .to_owned(),
        _ => "SELECT table_name::text, column_name::text FROM information_schema.columns \
              WHERE table_schema = 'public'"
            .to_owned(),
    };
    let columns = db.query_all_raw(Statement::from_string(backend, columns_sql)).await.expect("columns");
    assert!(columns.len() > 10, "the schema was read");
    let mut text = String::new();
    for row in columns {
        let table: String = row.try_get_by_index(0).expect("table");
        let column: String = row.try_get_by_index(1).expect("column");
        let sql = format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\"");
        for value in db.query_all_raw(Statement::from_string(backend, sql)).await.expect("values") {
            if let Ok(Some(v)) = row_text(&value) {
                text.push_str(&v);
                text.push('\n');
            }
        }
    }
    text
}

fn row_text(row: &sea_orm::QueryResult) -> Result<Option<String>, sea_orm::DbErr> {
    row.try_get_by_index::<Option<String>>(0)
}

async fn metrics_text(app: &TestApp) -> String {
    let addr = app.metrics_addr.expect("metrics served");
    let response = reqwest::get(format!("http://{addr}/metrics")).await.expect("metrics answer");
    response.text().await.expect("metrics text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_answers_metrics_or_the_database() {
    let logs = capture_logs();
    let _ = rustls::crypto::ring::default_provider().install_default();
    for backend in backends() {
        session_leaks_nothing(backend, &logs).await;
    }
}

async fn session_leaks_nothing(backend: Backend, logs: &Captured) {
    let (admin, operator, approver, wrong) = (secret("adm"), secret("ops"), secret("apr"), secret("wrong"));
    let app_secret = secret("appsecret");
    let sandbox = Sandbox::generated(5, 1, 8);
    sandbox.require_app_secret(&app_secret);
    let running = sandbox.start().await.expect("sandbox");
    let meta_token = running.access_token();
    let tokens = TokenTable::from_tokens([
        ("root", Role::Admin, admin.as_str()),
        ("otto", Role::Operator, operator.as_str()),
        ("ana", Role::Approver, approver.as_str()),
    ]);
    let app = spawn_app_with(backend, |settings| {
        settings.meta.access_token = Some(meta_token.clone().into());
        settings.meta.app_secret = Some(app_secret.clone().into());
        settings.meta.graph_url = running.base_url().to_string();
        settings.meta.account_ids = sandbox.account_ids();
        settings.metrics_listen = Some("127.0.0.1:0".parse().expect("address"));
        settings.security.tokens = tokens;
    })
    .await;
    let account = sandbox.account_ids()[0].to_string();
    let mut answers = Vec::<String>::new();

    // Rules that send every increase to approval, then a cycle over gRPC.
    let rule = pb::ScalingRule {
        account_id: account.clone(),
        name: "secrets".into(),
        require_approval_threshold_minor: Some(1),
        cooldown: Some(prost_types::Duration { seconds: 0, nanos: 0 }),
        ..Default::default()
    };
    let created = app.rules.clone().create_rule(authed(pb::CreateRuleRequest { rule: Some(rule) }, &operator)).await;
    answers.push(format!("{created:?}"));
    let cycle = pb::RunCycleRequest { mode: pb::CycleMode::Optimize as i32, ..Default::default() };
    let report = app.autoscaler.clone().run_cycle(authed(cycle.clone(), &operator)).await;
    answers.push(format!("{report:?}"));
    assert!(report.is_ok(), "{report:?}");

    // Decisions, the history, the dashboard and the stream.
    let pending = app
        .approvals
        .clone()
        .list_pending_actions(authed(pb::ListPendingActionsRequest::default(), &approver))
        .await
        .expect("pending")
        .into_inner()
        .actions;
    for (action, decision) in pending.iter().zip([Decision::Approve, Decision::Reject]) {
        let request = pb::DecideActionRequest { action_id: action.id, decision: decision as i32, ..Default::default() };
        answers.push(format!("{:?}", app.approvals.clone().decide_action(authed(request, &approver)).await));
    }
    let history =
        app.approvals.clone().list_action_history(authed(pb::ListActionHistoryRequest::default(), &admin)).await;
    answers.push(format!("{history:?}"));
    answers.push(format!(
        "{:?}",
        app.autoscaler.clone().get_dashboard(authed(pb::GetDashboardRequest::default(), &admin)).await
    ));

    // Refused callers: a wrong token, the Meta token, the app secret as tokens.
    for presented in [&wrong, &meta_token, &app_secret] {
        let refused = app.rules.clone().list_rules(authed(pb::ListRulesRequest::default(), presented)).await;
        assert_eq!(refused.as_ref().map_err(tonic::Status::code).err(), Some(tonic::Code::Unauthenticated));
        answers.push(format!("{refused:?}"));
    }

    // Failures on the Meta side: transient 500s, an object error, then a
    // cycle run directly (its spans and errors are logged too).
    running.sandbox().fail_next_requests(2);
    let campaign = sandbox.campaign_ids(&account)[0].clone();
    running.sandbox().fail_object(&campaign, MetaErrorSpec::permanent(100, Some(33), "Unsupported get request"));
    answers.push(format!("{:?}", app.autoscaler.clone().run_cycle(authed(cycle, &admin)).await));
    running.sandbox().clear_faults();
    let direct = run_cycle(&app.state, CycleMode::Both, false, &[]).await;
    answers.push(format!("{direct:?}"));

    // A wrong Meta token: the platform answers 190 and the error is logged.
    let wrong_meta = secret("EAAwrongmeta");
    let bad = spawn_app_with(backend, |settings| {
        settings.meta.access_token = Some(wrong_meta.clone().into());
        settings.meta.graph_url = running.base_url().to_string();
        settings.meta.account_ids = sandbox.account_ids();
    })
    .await;
    answers.push(format!("{:?}", run_cycle(&bad.state, CycleMode::Optimize, false, &[]).await));

    let statuses: Vec<i32> =
        history.map(|h| h.into_inner().actions.iter().map(|a| a.status).collect()).unwrap_or_default();
    assert!(statuses.iter().any(|s| *s != ActionStatus::Unspecified as i32), "the session recorded actions");

    let places = [
        ("logs", logs.text()),
        ("gRPC answers", answers.join("\n")),
        ("metrics", metrics_text(&app).await),
        ("database", database_text(&app).await),
        ("database (wrong Meta token)", database_text(&bad).await),
    ];
    assert!(places[0].1.contains("serving gRPC"), "logs were captured");
    let secrets = [
        ("Meta access token", meta_token.as_str()),
        ("wrong Meta token", wrong_meta.as_str()),
        ("app secret", app_secret.as_str()),
        ("admin token", admin.as_str()),
        ("operator token", operator.as_str()),
        ("approver token", approver.as_str()),
        ("wrong API token", wrong.as_str()),
    ];
    for (place, text) in &places {
        for (what, value) in secrets {
            if let Some(at) = text.find(value) {
                let start = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
                let context: String = text[start..].chars().take(400).collect();
                panic!("{backend:?}: the {what} appears in the {place}: ...{context}...");
            }
        }
    }
}
