//! Test harness: spawns the application on a random port with its own
//! database and hands out generated clients.
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use autoscaler::config::{EngineConfig, MetaConfig, SandboxConfig, Settings};
use autoscaler::pb::approvals_service_client::ApprovalsServiceClient;
use autoscaler::pb::auto_scaler_service_client::AutoScalerServiceClient;
use autoscaler::pb::rules_service_client::RulesServiceClient;
use autoscaler::pb::time_optimization_service_client::TimeOptimizationServiceClient;
use autoscaler::platform::sandbox::SandboxAccounts;
use autoscaler::service::AppState;
use autoscaler::startup::Application;
use meta_sandbox::{RunningSandbox, Sandbox};
use sea_orm::{ConnectionTrait, Database};
use tokio::sync::oneshot;
use tonic::transport::Channel;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        autoscaler::telemetry::init(autoscaler::telemetry::LogFormat::Text, "debug,sqlx=warn,h2=warn,hyper=warn");
    }
});

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run every database test on: SQLite always, PostgreSQL when
/// TEST_DATABASE_URL is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if std::env::var_os("TEST_DATABASE_URL").is_some() {
        all.push(Backend::Postgres);
    }
    all
}

/// A database of one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                TestDb { url, _dir: Some(dir), pg: None }
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
                let name = format!(
                    "autoscaler_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    chrono::Utc::now().timestamp_micros()
                );
                let conn = Database::connect(&admin).await.expect("connect to TEST_DATABASE_URL");
                conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).expect("URL with a database path");
                TestDb { url: format!("{base}/{name}"), _dir: None, pg: Some((admin, name)) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside any runtime guarantee; use a thread of our own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(conn) = Database::connect(&admin).await {
                        let _ = conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    }
                });
            })
            .join();
        }
    }
}

/// A running server and clients for it.
pub struct TestApp {
    #[allow(dead_code)] // for tests that dial the server themselves
    pub addr: std::net::SocketAddr,
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub state: AppState,
    pub rules: RulesServiceClient<Channel>,
    pub autoscaler: AutoScalerServiceClient<Channel>,
    pub approvals: ApprovalsServiceClient<Channel>,
    #[allow(dead_code)] // for the time-optimization tests
    pub time: TimeOptimizationServiceClient<Channel>,
    pub channel: Channel,
    _stop: oneshot::Sender<()>,
    _db: Option<TestDb>,
}

pub fn test_settings(database_url: String) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("address"),
        database_url,
        meta: MetaConfig {
            access_token: None,
            app_secret: None,
            account_ids: Vec::new(),
            graph_url: "http://127.0.0.1:1".into(),
            api_version: "v26.0".into(),
            purchase_action_type: "omni_purchase".into(),
            sandbox: SandboxConfig { seed: 7, accounts: 1, campaigns_per_account: 5 },
            request_timeout: std::time::Duration::from_secs(5),
            max_retries: 3,
            backoff_base: std::time::Duration::from_millis(5),
        },
        engine: EngineConfig::default(),
        schedules: Default::default(),
        metrics_listen: None,
        limits: Default::default(),
        security: Default::default(),
    }
}

/// Starts the application on `backend` with default test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the application on `backend` after `adjust` edits the settings.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    LazyLock::force(&TRACING);
    let db = TestDb::create(backend).await;
    let mut settings = test_settings(db.url.clone());
    adjust(&mut settings);
    start(settings, Some(db)).await
}

/// Starts the application on `backend` after `adjust` edits the settings, and
/// connects through the endpoint `endpoint` makes of the bound address (TLS).
pub async fn spawn_app_with_endpoint(
    backend: Backend,
    adjust: impl FnOnce(&mut Settings),
    endpoint: impl FnOnce(std::net::SocketAddr) -> tonic::transport::Endpoint,
) -> TestApp {
    LazyLock::force(&TRACING);
    let db = TestDb::create(backend).await;
    let mut settings = test_settings(db.url.clone());
    adjust(&mut settings);
    start_with(settings, Some(db), endpoint).await
}

/// Builds and serves the application; `db` is dropped (and removed) with it.
async fn start(settings: Settings, db: Option<TestDb>) -> TestApp {
    start_with(settings, db, |addr| Channel::from_shared(format!("http://{addr}")).expect("uri")).await
}

async fn start_with(
    settings: Settings,
    db: Option<TestDb>,
    endpoint: impl FnOnce(std::net::SocketAddr) -> tonic::transport::Endpoint,
) -> TestApp {
    let app = Application::build(settings).await.expect("application builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let channel = endpoint(addr).connect().await.expect("connects");
    TestApp {
        addr,
        metrics_addr,
        state,
        rules: RulesServiceClient::new(channel.clone()),
        autoscaler: AutoScalerServiceClient::new(channel.clone()),
        approvals: ApprovalsServiceClient::new(channel.clone()),
        time: TimeOptimizationServiceClient::new(channel.clone()),
        channel,
        _stop: stop,
        _db: db,
    }
}

/// Starts `sandbox` on loopback and the application pointed at it as if it
/// were Meta (the "live" code path: token, base URL, configured accounts).
pub async fn spawn_with_sandbox(backend: Backend, sandbox: &Sandbox) -> (TestApp, RunningSandbox) {
    spawn_with_sandbox_and(backend, sandbox, |_| {}).await
}

/// [`spawn_with_sandbox`], after `adjust` edits the settings.
pub async fn spawn_with_sandbox_and(
    backend: Backend,
    sandbox: &Sandbox,
    adjust: impl FnOnce(&mut Settings),
) -> (TestApp, RunningSandbox) {
    let running = sandbox.start().await.expect("sandbox starts");
    let accounts = sandbox.account_ids();
    let app = spawn_app_with(backend, |settings| {
        settings.meta.access_token = Some(running.access_token().into());
        settings.meta.graph_url = running.base_url().to_string();
        settings.meta.account_ids = accounts;
        adjust(settings);
    })
    .await;
    (app, running)
}

/// A recorded decision of `action_type` for a campaign, in `status`, with a
/// 100.00 USD budget moved as the type says and plausible metrics.
pub fn sample_action(
    account: &str,
    campaign: &str,
    action_type: autoscaler::domain::action::ActionType,
    status: autoscaler::domain::action::ActionStatus,
) -> autoscaler::domain::action::NewAction {
    use autoscaler::domain::action::{ActionMetrics, ActionType, BudgetLevel, NewAction};
    use autoscaler::domain::performance::Performance;
    let old = 10_000;
    let new = match action_type {
        ActionType::ScaleUpAggressive => 15_000,
        ActionType::ScaleUp => 12_000,
        ActionType::ScaleDown => 7_000,
        ActionType::Pause => 0,
        ActionType::Maintain | ActionType::InsufficientData => old,
    };
    NewAction {
        account_id: account.into(),
        campaign_id: campaign.into(),
        campaign_name: format!("Campaign {campaign}"),
        rule_id: None,
        cycle_id: None,
        action_type,
        status,
        currency: "USD".into(),
        budget_level: BudgetLevel::Campaign,
        old_budget_minor: old,
        new_budget_minor: new,
        metrics: ActionMetrics {
            figures: Performance {
                spend_minor: 5_000,
                revenue_minor: 17_500,
                impressions: 20_000,
                clicks: 500,
                conversions: 25,
                ctr_percent: 2.5,
            },
            window: "last_24_hours".into(),
            window_start: "2026-11-24".into(),
            window_end: "2026-11-25".into(),
        },
        reason: format!("{} because ROAS 3.50x", action_type.as_str()),
        requires_approval: status == autoscaler::domain::action::ActionStatus::PendingApproval,
        belief: None,
    }
}

/// Records actions through the repository (with their `created` events) and
/// wakes the local watchers, as the engine does.
pub async fn record_actions(
    state: &AppState,
    actions: &[autoscaler::domain::action::NewAction],
) -> Vec<autoscaler::domain::action::ActionRecord> {
    let stored = autoscaler::persistence::actions::insert_many(&state.db, actions).await.expect("actions recorded");
    state.events.published();
    stored
}

/// Moves an action's creation (and, if given, execution) time, to build
/// histories over days without waiting for them.
pub async fn set_action_times(
    state: &AppState,
    id: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    executed_at: Option<chrono::DateTime<chrono::Utc>>,
) {
    use autoscaler::persistence::entity::scaling_action::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let mut update =
        Entity::update_many().col_expr(Column::CreatedAt, Expr::value(created_at)).filter(Column::Id.eq(id));
    if let Some(at) = executed_at {
        update = update.col_expr(Column::ExecutedAt, Expr::value(at));
    }
    update.exec(&state.db).await.expect("times moved");
}

/// The event log of one action, oldest first: (kind, status after it).
pub async fn action_events(state: &AppState, action_id: i64) -> Vec<(String, String)> {
    use autoscaler::persistence::entity::action_event::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    Entity::find()
        .filter(Column::ActionId.eq(action_id))
        .order_by_asc(Column::Seq)
        .all(&state.db)
        .await
        .expect("events read")
        .into_iter()
        .map(|e| (e.kind, e.status))
        .collect()
}

/// The field named by an INVALID_ARGUMENT status's BadRequest details.
pub fn invalid_field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad = details.bad_request().expect("bad request details");
    bad.field_violations[0].field.clone()
}

/// Starts a server on an existing database and a running sandbox (a second
/// replica of the same deployment).
pub async fn spawn_on(db: &TestDb, running: &RunningSandbox, sandbox: &Sandbox) -> TestApp {
    LazyLock::force(&TRACING);
    let mut settings = test_settings(db.url.clone());
    settings.meta.access_token = Some(running.access_token().into());
    settings.meta.graph_url = running.base_url().to_string();
    settings.meta.account_ids = sandbox.account_ids();
    start(settings, None).await
}
