//! Test harness: spawns the application on a random port with its own
//! database and hands out generated clients.
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use autoscaler::config::{EngineConfig, MetaConfig, SandboxConfig, Settings};
use autoscaler::pb::approvals_service_client::ApprovalsServiceClient;
use autoscaler::pb::auto_scaler_service_client::AutoScalerServiceClient;
use autoscaler::pb::rules_service_client::RulesServiceClient;
use autoscaler::pb::time_optimization_service_client::TimeOptimizationServiceClient;
use autoscaler::platform::sandbox::{RunningSandbox, Sandbox};
use autoscaler::service::AppState;
use autoscaler::startup::Application;
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
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    pub rules: RulesServiceClient<Channel>,
    pub autoscaler: AutoScalerServiceClient<Channel>,
    pub approvals: ApprovalsServiceClient<Channel>,
    pub time: TimeOptimizationServiceClient<Channel>,
    pub channel: Channel,
    _stop: oneshot::Sender<()>,
    _db: TestDb,
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
    let app = Application::build(settings).await.expect("application builds");
    let addr = app.local_addr();
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connects");
    TestApp {
        addr,
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
    let running = sandbox.start().await.expect("sandbox starts");
    let accounts = sandbox.account_ids();
    let app = spawn_app_with(backend, |settings| {
        settings.meta.access_token = Some(running.access_token().into());
        settings.meta.graph_url = running.base_url().to_string();
        settings.meta.account_ids = accounts;
    })
    .await;
    (app, running)
}
