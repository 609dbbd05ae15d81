//! Running it for real: the scheduler inside the server, cycles that never
//! overlap, crash recovery, several replicas on one PostgreSQL, health that
//! follows the database, and `run-once` for cron.
use std::time::Duration;

use autoscaler::domain::action::ActionStatus;
use autoscaler::pb::RunCycleRequest;
use autoscaler::persistence::actions::{self, TransitionFields};
use autoscaler::persistence::entity::{cycle_run, scaling_action};
use autoscaler::persistence::leases;
use autoscaler::platform::sandbox::SandboxAccounts;
use autoscaler::service::cycle::CycleMode;
use autoscaler::service::scheduler::{self, Schedules};
use meta_sandbox::{AccountSpec, CampaignSpec, Sandbox, ScriptedMetrics};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{Backend, TestDb, backends, spawn_app, spawn_app_with, spawn_on};

async fn cycles_recorded(db: &impl ConnectionTrait) -> Vec<cycle_run::Model> {
    cycle_run::Entity::find().all(db).await.expect("cycle runs")
}

#[tokio::test]
async fn a_scheduled_slot_runs_one_cycle_however_many_triggers_fire() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        // A yearly schedule: every trigger in this test names the same slot,
        // as two replicas' triggers for one scheduled instant do.
        let cron = scheduler::parse("0 0 0 1 1 *").expect("cron");
        scheduler::run_slot(&app.state, CycleMode::Optimize, &cron).await;
        scheduler::run_slot(&app.state, CycleMode::Optimize, &cron).await;
        let runs = cycles_recorded(&app.state.db).await;
        assert_eq!(runs.len(), 1, "{backend:?}: one cycle per slot: {runs:?}");
        assert_eq!(runs[0].status, "succeeded", "{backend:?}");
        let slot = runs[0].slot.as_deref().unwrap_or_default();
        assert!(slot.starts_with("optimize@") && slot.ends_with("-01-01T00:00:00Z"), "{backend:?}: slot {slot}");
        let actions = scaling_action::Entity::find().count(&app.state.db).await.expect("count");
        assert!(actions > 0, "the scheduled cycle evaluated the sandbox's campaigns");
    }
}

#[tokio::test]
async fn the_server_starts_a_scheduler_only_for_what_is_scheduled() {
    let app = spawn_app(Backend::Sqlite).await;
    let nothing = scheduler::start(app.state.clone(), &Schedules::default()).await.expect("nothing to schedule");
    assert!(nothing.is_none(), "no schedule, no scheduler");
    let hourly = Schedules { optimize: Some("0 0 * * * *".into()), learn: Some("0 30 2 * * *".into()) };
    let mut running = scheduler::start(app.state.clone(), &hourly).await.expect("starts").expect("a scheduler");
    running.shutdown().await.expect("stops");
    let broken = Schedules { optimize: Some("every hour".into()), learn: None };
    let Err(error) = scheduler::start(app.state.clone(), &broken).await else {
        panic!("a broken schedule was accepted")
    };
    assert!(error.to_string().contains("optimize"), "the error names the schedule: {error}");
}

#[tokio::test]
async fn cycles_never_overlap() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        // Another replica holds the cycle lease: an on-demand cycle is refused.
        assert!(
            leases::acquire(&app.state.db, "cycle", "other-replica", chrono::TimeDelta::minutes(5))
                .await
                .expect("lease")
        );
        let mut client = app.autoscaler.clone();
        let err = client.run_cycle(RunCycleRequest::default()).await.expect_err("overlap");
        assert_eq!(err.code(), Code::FailedPrecondition);
        // A dry run only reads: it is never blocked.
        client.run_cycle(RunCycleRequest { dry_run: true, ..Default::default() }).await.expect("dry run");
        leases::release(&app.state.db, "cycle", "other-replica").await.expect("release");
        client.run_cycle(RunCycleRequest::default()).await.expect("runs once the lease is free");
        // Two at once in one process: exactly one runs.
        let (mut first, mut second) = (app.autoscaler.clone(), app.autoscaler.clone());
        let (a, b) =
            tokio::join!(first.run_cycle(RunCycleRequest::default()), second.run_cycle(RunCycleRequest::default()));
        let ok = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
        assert!(ok >= 1, "at least one ran");
        if ok == 1 {
            let err = a.err().or(b.err()).expect("one refused");
            assert_eq!(err.code(), Code::FailedPrecondition);
        }
    }
}

#[tokio::test]
async fn a_scheduled_slot_runs_on_exactly_one_replica() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let slot = "optimize@2026-11-25T14:00Z";
        let first = autoscaler::service::cycle::run_scheduled(
            &app.state,
            autoscaler::service::cycle::CycleMode::Optimize,
            slot,
        )
        .await
        .expect("first");
        assert!(first.is_some());
        let second = autoscaler::service::cycle::run_scheduled(
            &app.state,
            autoscaler::service::cycle::CycleMode::Optimize,
            slot,
        )
        .await
        .expect("second");
        assert!(second.is_none(), "the slot was already taken");
        assert_eq!(cycles_recorded(&app.state.db).await.len(), 1);
    }
}

#[tokio::test]
async fn a_cycle_cut_off_by_a_crash_is_picked_up_by_the_next_one() {
    for backend in backends() {
        let sandbox = Sandbox::empty();
        sandbox
            .add_account(AccountSpec {
                id: "act_111".into(),
                name: "A".into(),
                currency: "USD".into(),
                timezone_name: "Europe/Berlin".into(),
            })
            .expect("account");
        let winner = ScriptedMetrics {
            spend_minor: 10_000,
            revenue_minor: 45_000,
            impressions: 50_000,
            clicks: 1_600,
            conversions: 10,
        };
        sandbox.add_campaign("act_111", CampaignSpec::scripted("1001", "Winner", 40_000, winner)).expect("c");
        let (app, _running) = crate::helpers::spawn_with_sandbox(backend, &sandbox).await;
        let mut client = app.autoscaler.clone();
        let report = client.run_cycle(RunCycleRequest::default()).await.expect("cycle").into_inner();
        assert_eq!(report.pending_approval, 1);
        let pending =
            actions::in_status(&app.state.db, ActionStatus::PendingApproval, None, None, 10).await.expect("q");
        let id = pending[0].id;
        // Approved, then claimed by an executor that crashed before writing;
        // its claim is an hour old and its lease lapsed.
        let approve = TransitionFields { decided_by: Some("ops".into()), decided: true, ..Default::default() };
        actions::transition_many(
            &app.state.db,
            &[id],
            ActionStatus::PendingApproval,
            ActionStatus::Approved,
            &approve,
            None,
        )
        .await
        .expect("approve");
        let claim = TransitionFields { claim_token: Some("dead".into()), ..Default::default() };
        actions::transition_many(&app.state.db, &[id], ActionStatus::Approved, ActionStatus::Executing, &claim, None)
            .await
            .expect("claim");
        let an_hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        app.state
            .db
            .execute_unprepared(&format!(
                "UPDATE scaling_actions SET updated_at = '{}' WHERE id = {id}",
                an_hour_ago.format("%Y-%m-%d %H:%M:%S%.6f+00:00")
            ))
            .await
            .expect("age the claim");
        assert!(
            leases::acquire(&app.state.db, "cycle", "dead-replica", chrono::TimeDelta::seconds(-1))
                .await
                .expect("lease")
        );

        let next = client.run_cycle(RunCycleRequest::default()).await.expect("next cycle runs").into_inner();
        assert!(next.cycle_id > report.cycle_id);
        let record = actions::get(&app.state.db, id).await.expect("action");
        assert_eq!(record.status, ActionStatus::Failed, "resolved by reading the platform");
        assert!(record.error.as_deref().unwrap_or_default().contains("interrupted"));
        assert_eq!(sandbox.daily_budget("1001"), Some(40_000), "never re-applied blindly");
    }
}

#[tokio::test]
async fn two_replicas_on_one_postgres_behave_as_one() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::create(Backend::Postgres).await;
    let sandbox = Sandbox::generated(11, 2, 20);
    let running = sandbox.start().await.expect("sandbox");
    let (a, b) = tokio::join!(spawn_on(&db, &running, &sandbox), spawn_on(&db, &running, &sandbox));
    // Both fire the same scheduled slot: exactly one runs it.
    let slot = "optimize@2026-11-25T15:00Z";
    let mode = autoscaler::service::cycle::CycleMode::Optimize;
    let (ra, rb) = tokio::join!(
        autoscaler::service::cycle::run_scheduled(&a.state, mode, slot),
        autoscaler::service::cycle::run_scheduled(&b.state, mode, slot)
    );
    let ran = [ra.expect("a"), rb.expect("b")].into_iter().filter(Option::is_some).count();
    assert_eq!(ran, 1, "one replica ran the slot");
    assert_eq!(cycles_recorded(&a.state.db).await.len(), 1);
    drop(running);
}

/// Campaigns decided more than once in `cycle_id` (should be none), and how
/// many decisions the cycle recorded.
async fn decisions_of_cycle(db: &impl ConnectionTrait, cycle_id: i64) -> (i64, i64) {
    let row = |sql: String| async move {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("query")
            .expect("row");
        row.try_get::<i64>("", "n").expect("n")
    };
    let twice = row(format!(
        "SELECT COUNT(*) AS n FROM (SELECT campaign_id FROM scaling_actions WHERE cycle_id = {cycle_id} \
         GROUP BY campaign_id HAVING COUNT(*) > 1) twice"
    ))
    .await;
    let all = row(format!("SELECT COUNT(*) AS n FROM scaling_actions WHERE cycle_id = {cycle_id}")).await;
    (twice, all)
}

#[tokio::test]
async fn replicas_share_one_cycle_and_each_account_is_worked_once() {
    use autoscaler::persistence::cycle_accounts;
    use autoscaler::service::cycle;
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::create(Backend::Postgres).await;
    let sandbox = Sandbox::generated(12, 12, 20);
    let running = sandbox.start().await.expect("sandbox");
    let (a, b) = tokio::join!(spawn_on(&db, &running, &sandbox), spawn_on(&db, &running, &sandbox));

    // A leads the cycle; B joins it from its idle loop until it ends.
    let finished = std::sync::atomic::AtomicBool::new(false);
    let lead = async {
        let report = cycle::run_cycle(&a.state, cycle::CycleMode::Optimize, false, &[]).await.expect("cycle");
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        report
    };
    let join = async {
        let mut done = 0;
        while !finished.load(std::sync::atomic::Ordering::SeqCst) {
            done += cycle::assist(&b.state).await.expect("assist");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        done
    };
    let (report, done_by_b) = tokio::join!(lead, join);
    assert!((1..12).contains(&done_by_b), "both replicas worked: B did {done_by_b} of 12 accounts");
    let done = cycle_accounts::done(&a.state.db, report.cycle_id).await.expect("claims");
    assert_eq!(done.len(), 12, "every account done once");
    assert_eq!(report.accounts, 12);
    let (twice, decided) = decisions_of_cycle(&a.state.db, report.cycle_id).await;
    assert_eq!(twice, 0, "no campaign decided twice");
    assert_eq!(decided, report.campaigns_evaluated as i64, "the report adds up every replica's share");
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    // A replica that died holding an account: once its lease lapsed, an idle
    // replica takes the account over while the cycle's starter is alive.
    let cycle_id = autoscaler::persistence::cycles::start(&a.state.db, "optimize", "leader-elsewhere", None)
        .await
        .expect("cycle")
        .expect("id");
    assert!(leases::acquire(&a.state.db, "cycle", "leader-elsewhere", chrono::TimeDelta::minutes(5)).await.expect("l"));
    let accounts: Vec<String> = sandbox.account_ids().iter().take(3).map(ToString::to_string).collect();
    cycle_accounts::enqueue(&a.state.db, cycle_id, &accounts).await.expect("enqueued");
    let now = chrono::Utc::now();
    let dead = cycle_accounts::claim(&a.state.db, cycle_id, "dead-replica", chrono::TimeDelta::seconds(-1), now)
        .await
        .expect("claim")
        .expect("one claimed");
    // (The servers' own idle loops may take some first: wait for the state.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        cycle::assist(&b.state).await.expect("assist");
        let done = cycle_accounts::done(&a.state.db, cycle_id).await.expect("claims");
        if done.len() == 3 || tokio::time::Instant::now() > deadline {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done.len(), 3, "the lapsed account and the two open ones");
    assert!(done.iter().all(|d| d.holder != "dead-replica"), "{done:?}");
    assert!(done.iter().any(|d| d.account_id == dead.account_id));

    // A cycle whose starter holds no lease any more (it crashed) is left to
    // the next cycle: no replica works on it hours late.
    let orphan = autoscaler::persistence::cycles::start(&a.state.db, "optimize", "crashed-leader", None)
        .await
        .expect("cycle")
        .expect("id");
    cycle_accounts::enqueue(&a.state.db, orphan, &accounts).await.expect("enqueued");
    assert_eq!(cycle::assist(&b.state).await.expect("assist"), 0);
    assert_eq!(cycle_accounts::remaining(&a.state.db, orphan).await.expect("remaining"), 3);
    drop(running);
}

#[tokio::test]
async fn health_follows_the_database() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let name: String = {
        let row = app
            .state
            .db
            .query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, "SELECT current_database()"))
            .await
            .expect("query")
            .expect("row");
        row.try_get_by_index(0).expect("name")
    };
    let admin = sea_orm::Database::connect(std::env::var("TEST_DATABASE_URL").expect("url")).await.expect("admin");
    let mut health = HealthClient::new(app.channel.clone());
    let status = |health: &mut HealthClient<tonic::transport::Channel>| {
        let mut health = health.clone();
        async move { health.check(HealthCheckRequest { service: String::new() }).await.expect("check").into_inner().status }
    };
    assert_eq!(status(&mut health).await, ServingStatus::Serving as i32);
    admin.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await.expect("block");
    admin
        .execute_unprepared(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        .await
        .expect("terminate");
    let mut waited = Duration::ZERO;
    while status(&mut health).await != ServingStatus::NotServing as i32 {
        assert!(waited < Duration::from_secs(30), "health never reported NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(250)).await;
        waited += Duration::from_millis(250);
    }
    admin.execute_unprepared(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await.expect("unblock");
    let mut waited = Duration::ZERO;
    while status(&mut health).await != ServingStatus::Serving as i32 {
        assert!(waited < Duration::from_secs(60), "health never came back to SERVING");
        tokio::time::sleep(Duration::from_millis(250)).await;
        waited += Duration::from_millis(250);
    }
}

#[tokio::test]
async fn run_once_runs_one_cycle_and_reports_through_its_exit_code() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cron.db").display());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args([
            "run-once",
            "--mode",
            "optimize",
            "--database-url",
            &url,
            "--sandbox-accounts",
            "1",
            "--sandbox-campaigns",
            "5",
        ])
        .env_remove("META_ACCESS_TOKEN")
        .env("AUTOSCALER_LISTEN", "127.0.0.1:0")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    assert!(summary["cycle_id"].as_i64().is_some_and(|id| id > 0));
    assert!(summary["campaigns_evaluated"].as_i64().is_some_and(|n| n > 0));

    // An account that does not exist fails the cycle's evaluation: exit 2.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["run-once", "--database-url", &url, "--meta-ad-account-ids", "act_999"])
        .env_remove("META_ACCESS_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));

    // A bad setting: exit 1 with the setting named.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["run-once", "--database-url", "mysql://nope"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("DATABASE_URL"));
}

#[tokio::test]
async fn prometheus_metrics_count_cycles_actions_graph_and_grpc_requests() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let mut client = app.autoscaler.clone();
    client.run_cycle(RunCycleRequest::default()).await.expect("cycle");
    let mut rules = app.rules.clone();
    let _ = rules.get_rule(autoscaler::pb::GetRuleRequest { id: 12_345 }).await;
    let addr = app.metrics_addr.expect("metrics served");
    let body = reqwest::get(format!("http://{addr}/metrics")).await.expect("scrape").text().await.expect("text");
    for expected in [
        "autoscaler_cycles_total{outcome=\"succeeded\"} 1",
        "autoscaler_cycle_duration_seconds_count 1",
        "autoscaler_grpc_requests_total{method=\"/autoscaler.v1.AutoScalerService/RunCycle\",code=\"OK\"} 1",
        "autoscaler_grpc_requests_total{method=\"/autoscaler.v1.RulesService/GetRule\",code=\"NOT_FOUND\"} 1",
        "autoscaler_webhook_alerts_total{outcome=\"delivered\"} 0",
    ] {
        assert!(body.contains(expected), "missing {expected} in\n{body}");
    }
    let graph = body
        .lines()
        .find(|l| l.starts_with("autoscaler_graph_requests_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("graph request counter");
    assert!(graph > 0);
    assert!(body.contains("autoscaler_campaigns_evaluated_total"));
    assert!(body.contains("autoscaler_actions_total{action_type="));
}
