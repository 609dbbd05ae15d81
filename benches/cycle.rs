//! Benchmark: optimization cycles over 100,000 campaigns in 100 sandbox
//! accounts, beside a floor measured in the same run.
//!
//! Each cycle prints its wall time, Graph API requests, rows written and peak
//! memory. The floor then does the same work the simplest way, account after
//! account: the same Graph reads (account, campaigns, the two insights
//! windows) and the same rows, inserted one prepared `INSERT` per row inside
//! one transaction per account, into a fresh database with the same schema.
//! The floor does not send the budget changes a cycle executes, so it is a
//! floor for the read-decide-record path.
//!
//! Run: `cargo bench --bench cycle`. Environment: BENCH_ACCOUNTS /
//! BENCH_CAMPAIGNS resize it; BENCH_STRATEGY=marginal-roas gives every
//! account the marginal-ROAS rule; DATABASE_URL=postgres://... runs it on
//! PostgreSQL (two scratch databases are created there and dropped);
//! BENCH_REPLICAS=N runs N replicas in this process on the same database and
//! sandbox, the first starting each cycle and the others joining it;
//! BENCH_LATENCY_MS=M makes every sandbox answer wait M ms, as Meta's do.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use autoscaler::config::{EngineConfig, MetaConfig, SandboxConfig, Settings};
use autoscaler::domain::ids::AccountId;
use autoscaler::domain::rule::{MetricsWindow, Strategy};
use autoscaler::persistence::entity::{action_event, performance_snapshot, reported_day, scaling_action};
use autoscaler::service::cycle::{self, CycleMode};
use autoscaler::service::engine::window_days;
use autoscaler::service::{AppState, account_time_zone};
use autoscaler::startup::build_state;
use sea_orm::{
    ColumnTrait, ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, Statement,
    TransactionTrait, Value,
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Scratch databases: SQLite files in a temporary directory, or databases
/// created on the PostgreSQL server of `DATABASE_URL` and dropped at the end.
struct Scratch {
    _dir: tempfile::TempDir,
    postgres: Option<(String, Vec<String>)>,
}

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let postgres = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"));
        Ok(Self { _dir: tempfile::tempdir()?, postgres: postgres.map(|admin| (admin, Vec::new())) })
    }

    fn backend(&self) -> &'static str {
        if self.postgres.is_some() { "PostgreSQL" } else { "SQLite" }
    }

    async fn url(&mut self, name: &str) -> anyhow::Result<String> {
        match &mut self.postgres {
            None => Ok(format!("sqlite://{}?mode=rwc", self._dir.path().join(format!("{name}.db")).display())),
            Some((admin, created)) => {
                let db_name = format!("autoscaler_bench_{name}_{}", std::process::id());
                let conn = Database::connect(admin.as_str()).await?;
                conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).await?;
                conn.execute_unprepared(&format!("CREATE DATABASE {db_name}")).await?;
                conn.close().await.ok();
                created.push(db_name.clone());
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                Ok(format!("{base}/{db_name}"))
            }
        }
    }

    async fn drop_all(&self) {
        if let Some((admin, created)) = &self.postgres
            && let Ok(conn) = Database::connect(admin.as_str()).await
        {
            for name in created {
                let _ = conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            }
        }
    }
}

/// The rows one cycle wrote, read back after it (not timed).
#[derive(Default)]
struct CycleRows {
    actions: Vec<scaling_action::Model>,
    events: Vec<action_event::Model>,
    snapshots: Vec<performance_snapshot::Model>,
    days: Vec<reported_day::Model>,
}

impl CycleRows {
    fn total(&self) -> usize {
        self.actions.len() + self.events.len() + self.snapshots.len() + self.days.len()
    }
}

/// Highest ids of the four tables a cycle writes.
async fn high_water(db: &DatabaseConnection) -> anyhow::Result<[i64; 4]> {
    let mut out = [0; 4];
    for (i, (table, id)) in
        [("scaling_actions", "id"), ("action_events", "seq"), ("performance_snapshots", "id"), ("reported_days", "id")]
            .into_iter()
            .enumerate()
    {
        let sql = format!("SELECT COALESCE(MAX({id}), 0) AS top FROM {table}");
        let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
        out[i] = row.map(|r| r.try_get::<i64>("", "top")).transpose()?.unwrap_or(0);
    }
    Ok(out)
}

/// The rows with ids in `(from, to]` of each table.
async fn rows_between(db: &DatabaseConnection, from: [i64; 4], to: [i64; 4]) -> anyhow::Result<CycleRows> {
    Ok(CycleRows {
        actions: scaling_action::Entity::find()
            .filter(scaling_action::Column::Id.gt(from[0]))
            .filter(scaling_action::Column::Id.lte(to[0]))
            .all(db)
            .await?,
        events: action_event::Entity::find()
            .filter(action_event::Column::Seq.gt(from[1]))
            .filter(action_event::Column::Seq.lte(to[1]))
            .all(db)
            .await?,
        snapshots: performance_snapshot::Entity::find()
            .filter(performance_snapshot::Column::Id.gt(from[2]))
            .filter(performance_snapshot::Column::Id.lte(to[2]))
            .all(db)
            .await?,
        days: reported_day::Entity::find()
            .filter(reported_day::Column::Id.gt(from[3]))
            .filter(reported_day::Column::Id.lte(to[3]))
            .all(db)
            .await?,
    })
}

/// `INSERT INTO table (columns) VALUES (placeholders)` for one row.
fn insert_one(backend: DbBackend, table: &str, columns: &[&str]) -> String {
    let marks: Vec<String> = (1..=columns.len())
        .map(|n| if backend == DbBackend::Postgres { format!("${n}") } else { "?".into() })
        .collect();
    format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), marks.join(", "))
}

const ACTION_COLUMNS: &[&str] = &[
    "account_id",
    "campaign_id",
    "campaign_name",
    "rule_id",
    "cycle_id",
    "action_type",
    "status",
    "currency",
    "budget_level",
    "old_budget_minor",
    "new_budget_minor",
    "spend_minor",
    "revenue_minor",
    "impressions",
    "clicks",
    "conversions",
    "roas",
    "ctr_percent",
    "metrics_window",
    "window_start",
    "window_end",
    "reason",
    "requires_approval",
    "decided_by",
    "decision_comment",
    "error",
    "claim_token",
    "created_at",
    "decided_at",
    "executed_at",
    "updated_at",
    "resolution",
    "belief_roas",
    "belief_low",
    "belief_high",
    "belief_credible_level",
    "belief_unreported_share",
];

fn action_values(a: &scaling_action::Model) -> Vec<Value> {
    vec![
        a.account_id.clone().into(),
        a.campaign_id.clone().into(),
        a.campaign_name.clone().into(),
        a.rule_id.into(),
        a.cycle_id.into(),
        a.action_type.clone().into(),
        a.status.clone().into(),
        a.currency.clone().into(),
        a.budget_level.clone().into(),
        a.old_budget_minor.into(),
        a.new_budget_minor.into(),
        a.spend_minor.into(),
        a.revenue_minor.into(),
        a.impressions.into(),
        a.clicks.into(),
        a.conversions.into(),
        a.roas.into(),
        a.ctr_percent.into(),
        a.metrics_window.clone().into(),
        a.window_start.clone().into(),
        a.window_end.clone().into(),
        a.reason.clone().into(),
        a.requires_approval.into(),
        a.decided_by.clone().into(),
        a.decision_comment.clone().into(),
        a.error.clone().into(),
        a.claim_token.clone().into(),
        a.created_at.into(),
        a.decided_at.into(),
        a.executed_at.into(),
        a.updated_at.into(),
        a.resolution.clone().into(),
        a.belief_roas.into(),
        a.belief_low.into(),
        a.belief_high.into(),
        a.belief_credible_level.into(),
        a.belief_unreported_share.into(),
    ]
}

const EVENT_COLUMNS: &[&str] = &[
    "action_id",
    "kind",
    "status",
    "account_id",
    "campaign_id",
    "action_type",
    "created_at",
    "action_decided_by",
    "action_decision_comment",
    "action_error",
    "action_decided_at",
    "action_executed_at",
    "action_updated_at",
];

const SNAPSHOT_COLUMNS: &[&str] = &[
    "account_id",
    "campaign_id",
    "cycle_id",
    "taken_at",
    "currency",
    "metrics_window",
    "window_start",
    "window_end",
    "spend_minor",
    "revenue_minor",
    "impressions",
    "clicks",
    "conversions",
    "roas",
    "ctr_percent",
    "daily_budget_minor",
    "status",
];

const DAY_COLUMNS: &[&str] = &["account_id", "day", "taken_at", "spend_minor", "revenue_minor", "conversions"];

/// The floor: per account, the cycle's Graph reads, then its rows inserted
/// one prepared statement per row in one transaction.
async fn floor(state: &AppState, floor_db: &DatabaseConnection, rows: &CycleRows) -> anyhow::Result<Duration> {
    let backend = floor_db.get_database_backend();
    let (action_sql, event_sql, snapshot_sql, day_sql) = (
        insert_one(backend, "scaling_actions", ACTION_COLUMNS),
        insert_one(backend, "action_events", EVENT_COLUMNS),
        insert_one(backend, "performance_snapshots", SNAPSHOT_COLUMNS),
        insert_one(backend, "reported_days", DAY_COLUMNS),
    );
    let by_id: std::collections::HashMap<i64, &scaling_action::Model> =
        rows.actions.iter().map(|a| (a.id, a)).collect();
    let mut accounts: BTreeMap<&str, (Vec<Statement>, Vec<Statement>)> = BTreeMap::new();
    let stmt = |sql: &str, values: Vec<Value>| Statement::from_sql_and_values(backend, sql, values);
    let started = Instant::now();
    // Building the statements' values is part of the floor's work.
    for a in &rows.actions {
        accounts.entry(&a.account_id).or_default().0.push(stmt(&action_sql, action_values(a)));
    }
    for e in &rows.events {
        let a = by_id.get(&e.action_id);
        let values: Vec<Value> = vec![
            e.action_id.into(),
            e.kind.clone().into(),
            e.status.clone().into(),
            e.account_id.clone().into(),
            e.campaign_id.clone().into(),
            e.action_type.clone().into(),
            e.created_at.into(),
            a.and_then(|a| a.decided_by.clone()).into(),
            a.and_then(|a| a.decision_comment.clone()).into(),
            a.and_then(|a| a.error.clone()).into(),
            a.and_then(|a| a.decided_at).into(),
            a.and_then(|a| a.executed_at).into(),
            a.map(|a| a.updated_at).into(),
        ];
        accounts.entry(&e.account_id).or_default().1.push(stmt(&event_sql, values));
    }
    for s in &rows.snapshots {
        let values: Vec<Value> = vec![
            s.account_id.clone().into(),
            s.campaign_id.clone().into(),
            s.cycle_id.into(),
            s.taken_at.into(),
            s.currency.clone().into(),
            s.metrics_window.clone().into(),
            s.window_start.clone().into(),
            s.window_end.clone().into(),
            s.spend_minor.into(),
            s.revenue_minor.into(),
            s.impressions.into(),
            s.clicks.into(),
            s.conversions.into(),
            s.roas.into(),
            s.ctr_percent.into(),
            s.daily_budget_minor.into(),
            s.status.clone().into(),
        ];
        accounts.entry(&s.account_id).or_default().0.push(stmt(&snapshot_sql, values));
    }
    for d in &rows.days {
        let values: Vec<Value> = vec![
            d.account_id.clone().into(),
            d.day.clone().into(),
            d.taken_at.into(),
            d.spend_minor.into(),
            d.revenue_minor.into(),
            d.conversions.into(),
        ];
        accounts.entry(&d.account_id).or_default().0.push(stmt(&day_sql, values));
    }
    for (account, (rows_first, events)) in accounts {
        let account = AccountId::parse(account, "account_id")?;
        let info = state.platform.account(&account).await?;
        state.platform.campaigns(&account).await?;
        let today = chrono::Utc::now().with_timezone(&account_time_zone(&account, &info)?).date_naive();
        for window in [MetricsWindow::Last24Hours, MetricsWindow::Today] {
            state.platform.insights(&account, &window_days(window, today).query).await?;
        }
        let txn = floor_db.begin().await?;
        for statement in rows_first.into_iter().chain(events) {
            txn.execute_raw(statement).await?;
        }
        txn.commit().await?;
    }
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    autoscaler::telemetry::init(autoscaler::telemetry::LogFormat::Text, "error");
    let accounts = env_usize("BENCH_ACCOUNTS", 100);
    let campaigns = env_usize("BENCH_CAMPAIGNS", 1_000);
    let mut scratch = Scratch::new()?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        database_url: scratch.url("cycle").await?,
        meta: MetaConfig {
            access_token: None,
            app_secret: None,
            account_ids: Vec::new(),
            graph_url: String::new(),
            api_version: "v26.0".into(),
            purchase_action_type: "omni_purchase".into(),
            sandbox: SandboxConfig { seed: 42, accounts, campaigns_per_account: campaigns },
            request_timeout: std::time::Duration::from_secs(60),
            max_retries: 3,
            backoff_base: std::time::Duration::from_millis(50),
        },
        engine: EngineConfig {
            default_strategy: std::env::var("BENCH_STRATEGY")
                .ok()
                .and_then(|s| Strategy::parse(&s))
                .unwrap_or(Strategy::Thresholds),
            ..EngineConfig::default()
        },
        schedules: Default::default(),
        metrics_listen: None,
        limits: Default::default(),
        security: Default::default(),
    };
    let (state, sandbox) = build_state(&settings).await?;
    // Further replicas: the same database and the same sandbox, as replicas
    // of one deployment; they join the cycle the first one starts.
    let mut replicas = Vec::new();
    if let Some(running) = &sandbox {
        for _ in 1..env_usize("BENCH_REPLICAS", 1).max(1) {
            let mut more = settings.clone();
            more.meta.access_token = Some(running.access_token().into());
            more.meta.graph_url = running.base_url().to_string();
            more.meta.account_ids = Vec::new();
            replicas.push(build_state(&more).await?.0);
        }
    }
    // Meta answers in tens to hundreds of milliseconds; the sandbox at once.
    // BENCH_LATENCY_MS makes every sandbox answer wait that long, so the
    // cycle waits on the network as it does against Meta.
    let latency_ms = env_usize("BENCH_LATENCY_MS", 0);
    if let Some(running) = &sandbox
        && latency_ms > 0
    {
        running.sandbox().stall_next_requests(u32::MAX, Duration::from_millis(latency_ms as u64));
    }
    let backend = scratch.backend();
    println!(
        "cycle benchmark: {accounts} accounts x {campaigns} campaigns = {} campaigns, {backend}, strategy {}, {} replica(s), \
         {latency_ms} ms per Graph answer",
        accounts * campaigns,
        settings.engine.default_strategy.as_str(),
        replicas.len() + 1,
    );
    // The rows each cycle wrote are read back after both cycles, so the
    // peak RSS printed is the cycles' own.
    let mut marks = vec![high_water(&state.db).await?];
    let mut times = Vec::new();
    for round in 1..=2 {
        let requests_of =
            || state.platform.request_count() + replicas.iter().map(|r| r.platform.request_count()).sum::<u64>();
        let requests_before = requests_of();
        let started = Instant::now();
        let finished = std::sync::atomic::AtomicBool::new(false);
        let lead = async {
            let report = cycle::run_cycle(&state, CycleMode::Optimize, false, &[]).await;
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
            report
        };
        let helpers = futures_util::future::join_all(replicas.iter().map(|replica| async {
            let mut done = 0;
            while !finished.load(std::sync::atomic::Ordering::SeqCst) {
                done += cycle::assist(replica).await.unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            done
        }));
        let (report, helped) = tokio::join!(lead, helpers);
        let report = report?;
        let elapsed = started.elapsed();
        let requests = requests_of() - requests_before;
        if !helped.is_empty() {
            println!("  accounts worked by the other replicas: {helped:?}");
        }
        let mark = high_water(&state.db).await?;
        let written: Vec<i64> = mark.iter().zip(&marks[marks.len() - 1]).map(|(to, from)| to - from).collect();
        println!(
            "cycle {round}: {:.2} s, {} campaigns evaluated, {} executed, {} pending approval, {} failed, {} account failures, \
             {requests} Graph requests ({:.1} per account), rows written: {} actions, {} events, {} snapshots, {} re-read days, \
             peak RSS {:.0} MiB",
            elapsed.as_secs_f64(),
            report.campaigns_evaluated,
            report.executed,
            report.pending_approval,
            report.failed,
            report.failures.len(),
            requests as f64 / accounts.max(1) as f64,
            written[0],
            written[1],
            written[2],
            written[3],
            peak_rss_mib().unwrap_or(f64::NAN),
        );
        marks.push(mark);
        times.push(elapsed);
    }
    if latency_ms > 0 {
        // The floor reads account after account: with latency it would
        // measure the network, not the work.
        println!("floor: not measured with BENCH_LATENCY_MS");
        state.db.clone().close().await.ok();
        scratch.drop_all().await;
        return Ok(());
    }
    // The floor writes into a database of its own with the same migrations.
    let floor_db = autoscaler::persistence::connect(&scratch.url("floor").await?).await?;
    for (round, cycle_time) in times.iter().enumerate() {
        let rows = rows_between(&state.db, marks[round], marks[round + 1]).await?;
        let floor_time = floor(&state, &floor_db, &rows).await?;
        println!(
            "floor {}: {:.2} s for the same Graph reads and {} rows one statement at a time; cycle / floor = {:.2}",
            round + 1,
            floor_time.as_secs_f64(),
            rows.total(),
            cycle_time.as_secs_f64() / floor_time.as_secs_f64().max(f64::EPSILON),
        );
    }
    floor_db.close().await.ok();
    state.db.clone().close().await.ok();
    scratch.drop_all().await;
    Ok(())
}
