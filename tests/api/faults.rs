//! Money safety under faults, on each backend: for every fault class, after
//! the faulted cycle and one clean cycle, the budget changes on the platform
//! equal the changes the history records as applied, no change is applied
//! twice, and no campaign is changed within its cooldown. An unconfirmed
//! write is never recorded as failed nor sent again; a budget edited by hand
//! during a cycle is never overwritten; a cycle whose caller gives up runs to
//! its end.
use std::collections::HashMap;
use std::time::Duration;

use autoscaler::config::Settings;
use autoscaler::domain::action::{ActionRecord, ActionStatus};
use autoscaler::pb::{self, RunCycleRequest};
use autoscaler::persistence::{actions, cycles, leases};
use meta_sandbox::{
    AccountSpec, AdSetSpec, BudgetHolderSpec, CampaignSpec, HandEdit, MetaErrorSpec, Performance, RequestKind,
    RunningSandbox, Sandbox, ScriptedMetrics, SpecStatus,
};

use crate::helpers::{Backend, TestApp, backends, spawn_with_sandbox_and};

const ACCOUNT: &str = "act_500";
/// Campaigns of the fault scenarios, all with the same figures.
const CAMPAIGNS: [&str; 3] = ["5001", "5002", "5003"];
/// Their daily budget: ROAS 3.5 scales it by 1.2 to 13,800 without approval.
const BUDGET: i64 = 11_500;
const SCALED: i64 = 13_800;

/// ROAS 3.5, CTR 1.6%: the default rule's plain scale-up.
fn good() -> ScriptedMetrics {
    ScriptedMetrics { spend_minor: 10_000, revenue_minor: 35_000, impressions: 50_000, clicks: 800, conversions: 8 }
}

/// A sandbox with the scenarios' account and no campaigns yet.
fn one_account() -> Sandbox {
    let sandbox = Sandbox::empty();
    let spec =
        AccountSpec { id: ACCOUNT.into(), name: "Faults".into(), currency: "USD".into(), timezone_name: "UTC".into() };
    sandbox.add_account(spec).expect("account");
    sandbox
}

fn market() -> Sandbox {
    let sandbox = one_account();
    for id in CAMPAIGNS {
        sandbox
            .add_campaign(ACCOUNT, CampaignSpec::scripted(id, &format!("Campaign {id}"), BUDGET, good()))
            .expect("c");
    }
    sandbox
}

/// The server pointed at `sandbox` as if it were Meta, with a 1 s request
/// timeout so that late answers time out quickly.
async fn spawn(backend: Backend, sandbox: &Sandbox, adjust: impl FnOnce(&mut Settings)) -> (TestApp, RunningSandbox) {
    spawn_with_sandbox_and(backend, sandbox, |settings| {
        settings.meta.request_timeout = Duration::from_secs(1);
        adjust(settings);
    })
    .await
}

async fn run_cycle(app: &TestApp) -> pb::RunCycleResponse {
    app.autoscaler.clone().run_cycle(RunCycleRequest::default()).await.expect("cycle runs").into_inner()
}

async fn history(app: &TestApp) -> Vec<ActionRecord> {
    let mut all = Vec::new();
    for status in ActionStatus::ALL {
        all.extend(actions::in_status(&app.state.db, status, Some(ACCOUNT), None, 10_000).await.expect("query"));
    }
    all.sort_by_key(|r| r.id);
    all
}

fn of_campaign<'a>(history: &'a [ActionRecord], campaign: &str) -> Vec<&'a ActionRecord> {
    history.iter().filter(|r| r.action.campaign_id == campaign && r.action.action_type.changes_budget()).collect()
}

/// The invariants every fault class must keep: per campaign, the budget
/// writes the platform applied (hand edits aside) equal the changes the
/// history records as having reached it, at most one (the default cooldown
/// is 8 hours, and the test runs in seconds), and no action stays open.
async fn assert_platform_matches_history(app: &TestApp, sandbox: &Sandbox) {
    let history = history(app).await;
    let mut applied_on_platform: HashMap<String, usize> = HashMap::new();
    for write in sandbox.writes().into_iter().filter(|w| w.applied && !w.by_hand) {
        *applied_on_platform.entry(write.object_id).or_default() += 1;
    }
    for campaign in CAMPAIGNS {
        let recorded = of_campaign(&history, campaign);
        let reached = recorded.iter().filter(|r| r.executed_at.is_some()).count();
        let on_platform = applied_on_platform.get(campaign).copied().unwrap_or(0);
        assert_eq!(on_platform, reached, "campaign {campaign}: platform vs history {recorded:#?}");
        assert!(on_platform <= 1, "campaign {campaign} was changed twice within its cooldown");
        assert!(
            recorded.iter().all(|r| r.status.is_final() || r.status == ActionStatus::PendingApproval),
            "campaign {campaign} has an unsettled action: {recorded:#?}"
        );
    }
}

#[tokio::test]
async fn a_write_whose_answer_times_out_is_read_back_not_failed_and_not_repeated() {
    for backend in backends() {
        let sandbox = market();
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        // Meta applies the batch but answers after the client gave up.
        sandbox.answer_writes_late(1, Duration::from_secs(3));

        let first = run_cycle(&app).await;
        assert_eq!((first.executed, first.failed, first.unconfirmed), (3, 0, 0), "found on the read-back");
        let second = run_cycle(&app).await;
        assert_eq!((second.executed, second.failed), (0, 0), "the cooldown holds every campaign");

        // The read right before the write, the write (sent once), the read-back.
        assert_eq!(sandbox.request_counts().of(RequestKind::Batch), 3, "a timed-out write is never resent");
        for id in CAMPAIGNS {
            assert_eq!(sandbox.daily_budget(id), Some(SCALED));
        }
        assert_platform_matches_history(&app, &sandbox).await;
    }
}

#[tokio::test]
async fn a_lost_answer_and_a_failed_read_back_leave_one_action_unconfirmed_until_the_next_cycle_reads_it() {
    for backend in backends() {
        let sandbox = market();
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        sandbox.lose_write_answers(1);
        // The read right before the write goes through; the read-back fails.
        sandbox.fail_reads_of("5002", MetaErrorSpec::permanent(2, None, "An unexpected error has occurred"), 1);

        let first = run_cycle(&app).await;
        assert_eq!((first.executed, first.failed, first.unconfirmed), (2, 0, 1), "{first:?}");
        let held = of_campaign(&history(&app).await, "5002")[0].clone();
        assert_eq!(held.status, ActionStatus::Unconfirmed);
        assert!(held.resolution.as_deref().unwrap_or_default().contains("5002: could not be read back"), "{held:?}");
        assert_eq!(held.error, None, "an unconfirmed write is not a failure");

        sandbox.clear_faults();
        let second = run_cycle(&app).await;
        assert_eq!(second.executed, 0, "nothing is written again: {second:?}");
        let settled = of_campaign(&history(&app).await, "5002")[0].clone();
        assert_eq!(settled.status, ActionStatus::Executed, "the write had landed");
        let resolution = settled.resolution.unwrap_or_default();
        assert!(resolution.starts_with("settled by reading the platform"), "{resolution}");
        assert!(resolution.contains("the platform budget is $138.00, the new value"), "{resolution}");
        assert!(settled.executed_at.is_some());
        assert_platform_matches_history(&app, &sandbox).await;
    }
}

#[tokio::test]
async fn an_unanswered_write_that_did_not_land_is_settled_as_not_applied_and_decided_again() {
    for backend in backends() {
        let sandbox = market();
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        // Meta's batch times out before running the first write.
        sandbox.time_out_next_write_ops(1);

        let first = run_cycle(&app).await;
        assert_eq!((first.executed, first.unconfirmed), (2, 1), "{first:?}");
        let second = run_cycle(&app).await;
        // Settled first (not applied), then decided and applied once.
        assert_eq!(second.executed, 1, "{second:?}");
        let records = of_campaign(&history(&app).await, "5001").into_iter().cloned().collect::<Vec<_>>();
        assert_eq!(records.len(), 2, "{records:#?}");
        assert_eq!(records[0].status, ActionStatus::Failed);
        assert!(records[0].error.as_deref().unwrap_or_default().contains("not re-applied"), "{:?}", records[0]);
        assert_eq!(records[0].executed_at, None);
        assert_eq!(records[1].status, ActionStatus::Executed);
        assert_eq!(sandbox.daily_budget("5001"), Some(SCALED));
        assert_platform_matches_history(&app, &sandbox).await;
    }
}

#[tokio::test]
async fn a_budget_edited_by_hand_during_the_cycle_is_never_overwritten() {
    for backend in backends() {
        let sandbox = market();
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        // Someone sets the budget while the cycle reads insights, after the
        // cycle read the budgets.
        sandbox.edit_by_hand_on_next_insights("5003", HandEdit::DailyBudget(6_677));

        let first = run_cycle(&app).await;
        assert_eq!((first.executed, first.failed), (2, 1), "{first:?}");
        let refused = of_campaign(&history(&app).await, "5003")[0].clone();
        assert_eq!(refused.status, ActionStatus::Failed);
        let error = refused.error.unwrap_or_default();
        assert!(error.contains("changed since the decision (now $66.77, decided on $115.00)"), "{error}");
        assert_eq!(sandbox.daily_budget("5003"), Some(6_677), "the hand edit stands");
        run_cycle(&app).await;
        assert_platform_matches_history(&app, &sandbox).await;
    }
}

#[tokio::test]
async fn approving_a_scale_up_of_a_campaign_paused_by_hand_changes_nothing() {
    for backend in backends() {
        let sandbox = one_account();
        // $450 -> $540 goes above the $500 approval threshold: it waits for a person.
        sandbox.add_campaign(ACCOUNT, CampaignSpec::scripted("5001", "Big", 45_000, good())).expect("campaign");
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        let report = run_cycle(&app).await;
        assert_eq!(report.pending_approval, 1, "{report:?}");
        let pending = of_campaign(&history(&app).await, "5001")[0].id;

        sandbox.edit_by_hand("5001", HandEdit::Pause);
        let decided = app
            .approvals
            .clone()
            .decide_action(pb::DecideActionRequest {
                action_id: pending,
                decision: pb::Decision::Approve as i32,
                comment: "ok".into(),
                decided_by: "ops".into(),
            })
            .await
            .expect("decided")
            .into_inner();
        let action = decided.action.expect("action");
        assert_eq!(action.status, pb::ActionStatus::Failed as i32, "{action:?}");
        assert!(action.error.contains("set to PAUSED"), "{}", action.error);
        assert_eq!(sandbox.daily_budget("5001"), Some(45_000));
        assert_eq!(sandbox.status("5001").as_deref(), Some("PAUSED"));
    }
}

/// Waits (bounded) until cycle `id` has recorded its end.
async fn wait_for_cycle_end(app: &TestApp, id: i64) -> String {
    for _ in 0..300 {
        match cycles::status(&app.state.db, id).await.expect("status").as_deref() {
            Some("running") | None => tokio::time::sleep(Duration::from_millis(100)).await,
            Some(done) => return done.to_owned(),
        }
    }
    panic!("cycle {id} did not end within 30 s");
}

#[tokio::test]
async fn a_run_cycle_whose_caller_has_a_short_deadline_answers_in_time_and_the_cycle_finishes() {
    for backend in backends() {
        let sandbox = market();
        // The server waits 10 s for Meta; the write's answer takes 4 s.
        let (app, _running) = spawn(backend, &sandbox, |s| s.meta.request_timeout = Duration::from_secs(10)).await;
        sandbox.answer_writes_late(1, Duration::from_secs(4));

        let mut request = tonic::Request::new(RunCycleRequest::default());
        request.set_timeout(Duration::from_millis(1_500));
        let early = app.autoscaler.clone().run_cycle(request).await.expect("answered in time").into_inner();

        assert!(early.still_running && early.cycle_id > 0, "{early:?}");
        assert_eq!(wait_for_cycle_end(&app, early.cycle_id).await, "succeeded");
        assert_nothing_left_behind(&app).await;
        assert_eq!(history(&app).await.iter().filter(|r| r.status == ActionStatus::Executed).count(), 3);
        assert_platform_matches_history(&app, &sandbox).await;
        run_cycle(&app).await;
    }
}

#[tokio::test]
async fn a_run_cycle_whose_caller_hangs_up_runs_to_its_end_and_leaves_nothing_behind() {
    for backend in backends() {
        let sandbox = market();
        let (app, _running) = spawn(backend, &sandbox, |s| s.meta.request_timeout = Duration::from_secs(10)).await;
        sandbox.answer_writes_late(1, Duration::from_secs(4));

        let mut client = app.autoscaler.clone();
        let call = client.run_cycle(RunCycleRequest::default());
        assert!(tokio::time::timeout(Duration::from_millis(1_500), call).await.is_err(), "the caller hung up");

        let mut executed = 0;
        for _ in 0..300 {
            executed = history(&app).await.iter().filter(|r| r.status == ActionStatus::Executed).count();
            if executed == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(executed, 3, "the abandoned call's cycle executed its changes");
        assert_nothing_left_behind(&app).await;
        assert_platform_matches_history(&app, &sandbox).await;
        // The next cycle is not refused.
        run_cycle(&app).await;
    }
}

/// Waits (bounded) until no action is executing and the cycle lease is free.
async fn assert_nothing_left_behind(app: &TestApp) {
    for _ in 0..300 {
        let unsettled = actions::unsettled(&app.state.db).await.expect("query");
        let lease = leases::holder(&app.state.db, "cycle").await.expect("lease");
        if unsettled.is_empty() && lease.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("an action stayed executing or the cycle lease stayed taken");
}

/// The server binary, started as a separate process against `sandbox` and
/// the database at `url`, with short leases so a crash is noticed quickly.
fn start_server_process(url: &str, running: &RunningSandbox, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("AUTOSCALER_LISTEN", format!("127.0.0.1:{port}"))
        .env("AUTOSCALER_METRICS_LISTEN", "off")
        .env("AUTOSCALER_OPTIMIZE_SCHEDULE", "off")
        .env("AUTOSCALER_LEASE_TTL_SECS", "6")
        .env("AUTOSCALER_LEASE_RENEW_SECS", "2")
        .env("META_ACCESS_TOKEN", running.access_token())
        .env("META_GRAPH_URL", running.base_url().to_string())
        .env("META_AD_ACCOUNT_IDS", ACCOUNT)
        .env("META_REQUEST_TIMEOUT_SECS", "120")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the server binary starts")
}

/// A client of the server process on `port`, once it accepts connections.
async fn connect(port: u16) -> pb::auto_scaler_service_client::AutoScalerServiceClient<tonic::transport::Channel> {
    for _ in 0..600 {
        if let Ok(client) =
            pb::auto_scaler_service_client::AutoScalerServiceClient::connect(format!("http://127.0.0.1:{port}")).await
        {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server process did not start listening");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

#[tokio::test]
async fn after_a_sigkill_in_the_middle_of_a_batch_a_restarted_server_settles_every_interrupted_action() {
    for backend in backends() {
        let db = crate::helpers::TestDb::create(backend).await;
        let sandbox = market();
        let running = sandbox.start().await.expect("sandbox");
        // Meta applies the batch and holds its answer for a minute.
        sandbox.answer_writes_late(1, Duration::from_secs(60));
        let port = free_port();
        let mut server = start_server_process(&db.url, &running, port);
        let mut client = connect(port).await;
        let cycle = tokio::spawn(async move { client.run_cycle(RunCycleRequest::default()).await });
        for _ in 0..600 {
            if sandbox.writes().len() == CAMPAIGNS.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(sandbox.writes().len(), CAMPAIGNS.len(), "the batch reached Meta");
        server.kill().expect("SIGKILL");
        server.wait().expect("reaped");
        let _ = cycle.await;

        let port = free_port();
        let mut restarted = start_server_process(&db.url, &running, port);
        let mut client = connect(port).await;
        let state = autoscaler::persistence::connect(&db.url).await.expect("database");
        // The dead process's lease and liveness mark lapse within one TTL;
        // cycles are refused until then, and the first one after settles.
        let mut settled = Vec::new();
        for _ in 0..120 {
            let _ = client.run_cycle(RunCycleRequest::default()).await;
            settled = actions::in_status(&state, ActionStatus::Executed, Some(ACCOUNT), None, 100).await.expect("q");
            if settled.len() == CAMPAIGNS.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        restarted.kill().expect("stop");
        restarted.wait().expect("reaped");

        assert_eq!(settled.len(), CAMPAIGNS.len(), "every interrupted action was settled");
        for action in &settled {
            let resolution = action.resolution.as_deref().unwrap_or_default();
            assert!(resolution.starts_with("recovered after an interrupted execution"), "{resolution}");
            assert!(resolution.contains("$138.00, the new value"), "{resolution}");
            assert!(action.executed_at.is_some());
        }
        assert_eq!(sandbox.writes().len(), CAMPAIGNS.len(), "nothing was written again");
        assert!(actions::unsettled(&state).await.expect("q").is_empty());
    }
}

#[tokio::test]
async fn a_partly_applied_ad_set_change_names_the_ad_sets_that_took_it_and_holds_the_cooldown() {
    for backend in backends() {
        let sandbox = one_account();
        sandbox
            .add_campaign(
                ACCOUNT,
                CampaignSpec {
                    id: "6000".into(),
                    name: "Ad sets".into(),
                    budget: BudgetHolderSpec::AdSets(vec![
                        AdSetSpec { id: "6001".into(), daily_budget_minor: 5_750, status: SpecStatus::Active },
                        AdSetSpec { id: "6002".into(), daily_budget_minor: 5_750, status: SpecStatus::Active },
                    ]),
                    status: SpecStatus::Active,
                    performance: Performance::Scripted(good()),
                },
            )
            .expect("campaign");
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        sandbox.lose_writes_to("6002");

        let first = run_cycle(&app).await;
        assert_eq!(first.failed, 1, "{first:?}");
        let action = of_campaign(&history(&app).await, "6000")[0].clone();
        assert_eq!(action.status, ActionStatus::Failed);
        assert!(action.error.as_deref().unwrap_or_default().starts_with("partly applied (1 of 2"), "{action:?}");
        assert_eq!(action.resolution.as_deref(), Some("the new budget was taken by 6001; not by the others"));
        assert!(action.executed_at.is_some(), "it reached the platform");

        sandbox.clear_faults();
        let second = run_cycle(&app).await;
        assert_eq!((second.executed, second.failed), (0, 0), "the cooldown counts the partial change: {second:?}");
        let applied: Vec<String> = sandbox.writes().into_iter().filter(|w| w.applied).map(|w| w.object_id).collect();
        assert_eq!(applied, ["6001"]);
    }
}
