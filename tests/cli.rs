//! The operator CLI end to end: the compiled `autoscaler` binary, run as a
//! process, against the real server on a random port (SQLite, local sandbox).
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use autoscaler::config::{EngineConfig, MetaConfig, SandboxConfig, Settings};
use autoscaler::startup::Application;
use serde_json::Value;
use tokio::sync::oneshot;

const ACCOUNT: &str = "act_1000001";

/// A running server on its own runtime; stopped when dropped.
struct TestServer {
    addr: SocketAddr,
    // Field order is drop order: stop the server, then its runtime, then the files.
    _stop: oneshot::Sender<()>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn settings(database_url: String) -> Settings {
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
            sandbox: SandboxConfig { seed: 7, accounts: 1, campaigns_per_account: 12 },
            request_timeout: Duration::from_secs(5),
            max_retries: 3,
            backoff_base: Duration::from_millis(5),
        },
        engine: EngineConfig::default(),
        schedules: Default::default(),
        metrics_listen: None,
        limits: Default::default(),
        security: Default::default(),
    }
}

impl TestServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        let app = runtime.block_on(Application::build(settings(url))).expect("application builds");
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self { addr, _stop: stop, _runtime: runtime, _dir: dir }
    }

    /// The CLI with `args`, pointed at this server, logs and environment neutral.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoscaler"));
        cmd.arg("--server").arg(format!("http://{}", self.addr)).args(args);
        cmd.env_remove("RUST_LOG").env_remove("AUTOSCALER_SERVER").env("USER", "cli-test");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the CLI runs")
    }

    /// Runs `args` with `--json`, expects exit code 0 and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(&[args, &["--json"]].concat());
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out.stdout)))
    }

    /// Runs `args`, expects exit code 0, returns stdout.
    fn table(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        text(&out.stdout)
    }

    /// An account-wide rule for the sandbox account; returns its id.
    fn account_rule(&self, extra: &[&str]) -> i64 {
        let created =
            self.json(&[&["rules", "create", "--account", ACCOUNT, "--name", "Account default"], extra].concat());
        created["rule"]["id"].as_i64().expect("rule id")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a clean failure: exit code 1, `error: <Code>: ...` on stderr, no panic.
fn assert_error(out: &Output, code: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with(&format!("error: {code}: ")), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    stderr
}

#[test]
fn rules_round_trip_through_json() {
    let server = TestServer::start();
    let created = server.json(&[
        "rules",
        "create",
        "--account",
        ACCOUNT,
        "--name",
        "Spring",
        "--roas-scale-up",
        "3.5",
        "--min-daily-budget-minor",
        "2000",
        "--cooldown-hours",
        "6",
        "--window",
        "today",
        "--enabled",
        "false",
    ]);
    let rule = &created["rule"];
    let id = rule["id"].as_i64().expect("id");
    assert_eq!(rule["account_id"], ACCOUNT);
    assert_eq!(rule["campaign_id"], "");
    assert_eq!(rule["name"], "Spring");
    assert_eq!(rule["roas_scale_up"], 3.5);
    assert_eq!(rule["roas_pause"], 1.0, "unset fields take defaults");
    assert_eq!(rule["min_daily_budget_minor"], 2000);
    assert_eq!(rule["cooldown"], "21600s");
    assert_eq!(rule["metrics_window"], "METRICS_WINDOW_TODAY");
    assert_eq!(rule["enabled"], false);
    assert!(rule["create_time"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));

    let campaign_rule = server.json(&["rules", "create", "--account", ACCOUNT, "--campaign", "42", "--name", "One"]);
    assert_eq!(campaign_rule["rule"]["campaign_id"], "42");

    let listed = server.json(&["rules", "list", "--account", ACCOUNT]);
    let ids: Vec<i64> = listed["rules"].as_array().expect("rules").iter().filter_map(|r| r["id"].as_i64()).collect();
    assert_eq!(ids, [id, campaign_rule["rule"]["id"].as_i64().expect("id")]);
    assert_eq!(server.json(&["rules", "show", &id.to_string()])["rule"], *rule);

    let updated = server.json(&["rules", "update", &id.to_string(), "--multiplier-up", "1.1", "--enabled", "true"]);
    assert_eq!(updated["rule"]["multiplier_up"], 1.1);
    assert_eq!(updated["rule"]["enabled"], true);
    assert_eq!(updated["rule"]["roas_scale_up"], 3.5, "fields not given are kept");
    assert_eq!(updated["rule"]["cooldown"], "21600s");
    let reset = server.json(&["rules", "update", &id.to_string(), "--reset", "roas_scale_up", "--name", "Summer"]);
    assert_eq!(reset["rule"]["roas_scale_up"], 3.0);
    assert_eq!(reset["rule"]["name"], "Summer");

    assert_eq!(server.json(&["rules", "delete", &id.to_string()]), serde_json::json!({}));
    assert_error(&server.run(&["rules", "show", &id.to_string()]), "NotFound");
}

#[test]
fn evaluate_dry_run_records_nothing() {
    let server = TestServer::start();
    server.account_rule(&[]);
    let all = server.json(&["evaluate", "--account", ACCOUNT, "--dry-run"]);
    let evaluations = all["evaluations"].as_array().expect("evaluations");
    assert!(!evaluations.is_empty(), "{all:#}");
    for e in evaluations {
        assert_eq!(e["account_id"], ACCOUNT);
        assert_eq!(e["action"]["id"], 0, "a dry run records nothing");
        assert!(e["action"]["action_type"].as_str().is_some_and(|t| t.starts_with("ACTION_TYPE_")), "{e:#}");
        assert!(e["action"]["status"].as_str().is_some_and(|s| s.starts_with("ACTION_STATUS_")), "{e:#}");
    }
    let campaigns: Vec<&str> = evaluations.iter().filter_map(|e| e["campaign_id"].as_str()).collect();

    let one = server.json(&["evaluate", "--account", ACCOUNT, "--campaign", campaigns[0], "--dry-run"]);
    assert_eq!(one["evaluation"]["campaign_id"], campaigns[0]);

    // Several campaigns go through EvaluateCampaigns; a failing one gives exit code 2.
    let two = server.run(&[
        "evaluate",
        "--account",
        ACCOUNT,
        "--campaign",
        campaigns[0],
        "--campaign",
        "999",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(two.status.code(), Some(2), "some campaigns failed: {}", text(&two.stderr));
    let two: Value = serde_json::from_slice(&two.stdout).expect("JSON");
    assert_eq!(two["evaluations"].as_array().map(Vec::len), Some(1));
    assert_eq!(two["evaluations"][0]["campaign_id"], campaigns[0]);
    assert_eq!(two["failures"][0]["campaign_id"], "999");

    let history = server.json(&["actions", "history"]);
    assert_eq!(history["actions"], serde_json::json!([]), "a dry run records nothing");
}

#[test]
fn run_cycle_and_history_in_json() {
    let server = TestServer::start();
    server.account_rule(&[]);
    let dry = server.json(&["run-cycle", "--dry-run"]);
    assert_eq!(dry["cycle_id"], 0);
    assert!(dry["evaluations"].as_array().is_some_and(|e| !e.is_empty()), "{dry:#}");

    let cycle = server.json(&["run-cycle", "--mode", "optimize", "--account", ACCOUNT]);
    assert!(cycle["cycle_id"].as_i64().is_some_and(|id| id > 0), "{cycle:#}");
    assert_eq!(cycle["accounts"], 1);
    let evaluated = cycle["campaigns_evaluated"].as_i64().expect("campaigns_evaluated");
    let by_type: i64 =
        cycle["actions_by_type"].as_array().expect("by type").iter().filter_map(|c| c["count"].as_i64()).sum();
    assert_eq!(by_type, evaluated);
    assert!(chrono::DateTime::parse_from_rfc3339(cycle["start_time"].as_str().expect("start_time")).is_ok());

    // Pages are followed up to --limit; the token of the last page is kept.
    let page = server.json(&["actions", "history", "--account", ACCOUNT, "--limit", "3"]);
    assert_eq!(page["actions"].as_array().map(Vec::len), Some(3));
    assert_ne!(page["next_page_token"], "");
    let all = server.json(&["actions", "history", "--limit", "0"]);
    assert_eq!(all["actions"].as_array().map(Vec::len), Some(evaluated as usize));
    assert_eq!(all["actions"][0]["cycle_id"], cycle["cycle_id"]);
}

#[test]
fn tables_are_aligned_for_people() {
    let server = TestServer::start();
    server.account_rule(&["--max-daily-budget-minor", "123456"]);
    let table = server.table(&["rules", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID  ACCOUNT"), "{table}");
    assert_eq!(lines[0].find("ACCOUNT"), lines[1].find(ACCOUNT), "{table}");
    assert!(lines[1].ends_with("$1,234.56"), "money is formatted: {table}");

    let evaluated = server.table(&["evaluate", "--account", ACCOUNT, "--dry-run"]);
    assert!(evaluated.starts_with("CAMPAIGN"), "{evaluated}");
    assert!(evaluated.contains("evaluated, 0 failed (dry run"), "{evaluated}");
    let out = server.run(&["evaluate", "--account", ACCOUNT, "--dry-run"]);
    assert!(out.stderr.is_empty(), "no progress line or logs when stderr is not a terminal");
}

#[test]
fn errors_are_statuses_not_panics() {
    let server = TestServer::start();
    let out = server.run(&["rules", "show", "999999"]);
    let stderr = assert_error(&out, "NotFound");
    assert!(stderr.contains("999999"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_error(&server.run(&["rules", "update", "1"]), "InvalidArgument");
    assert_error(&server.run(&["rules", "create", "--account", "bogus", "--name", "x"]), "InvalidArgument");
    assert_error(&server.run(&["evaluate", "--account", ACCOUNT, "--campaign", "999", "--dry-run"]), "NotFound");

    let unreachable = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["--server", "http://127.0.0.1:1", "rules", "list"])
        .env_remove("RUST_LOG")
        .output()
        .expect("the CLI runs");
    assert_error(&unreachable, "Unavailable");
}

#[test]
fn every_command_answers_json_or_a_status() {
    // Some services may still answer UNIMPLEMENTED; either way no panic.
    let server = TestServer::start();
    let campaign = "120000100000000";
    let commands: [&[&str]; 6] = [
        &["dashboard", "--days", "3"],
        &["actions", "pending"],
        &["time", "report", "--account", ACCOUNT, "--campaign", campaign],
        &["time", "schedule", "--account", ACCOUNT, "--campaign", campaign, "--daily-budget-minor", "2400"],
        &["time", "learn", "--account", ACCOUNT, "--min-samples", "1"],
        &["actions", "approve", "999999", "--comment", "ok"],
    ];
    for args in commands {
        let out = server.run(&[args, &["--json"]].concat());
        if out.status.success() {
            serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        } else {
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.starts_with("error: ") && !stderr.contains("panicked"), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn watch_prints_actions_as_they_happen() {
    let server = TestServer::start();
    server.account_rule(&[]);
    let mut child = server
        .command(&["actions", "watch", "--account", ACCOUNT, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The stream starts "from now": keep evaluating until the watcher is
    // subscribed and reports an event.
    let mut event = None;
    for _ in 0..20 {
        server.table(&["evaluate", "--account", ACCOUNT]);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            event = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = event.expect("an event within 10 s");
    let event: Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert!(event["sequence"].as_i64().is_some_and(|s| s > 0), "{event:#}");
    assert!(event["kind"].as_str().is_some_and(|k| k.starts_with("ACTION_EVENT_KIND_")), "{event:#}");
    assert_eq!(event["action"]["account_id"], ACCOUNT);
}

#[test]
fn pending_actions_are_approved_and_rejected() {
    let server = TestServer::start();
    // Every increase waits for a person.
    server.account_rule(&["--auto-approve-up-to-minor", "0", "--require-approval-threshold-minor", "0"]);
    server.table(&["evaluate", "--account", ACCOUNT]);
    let pending = server.json(&["actions", "pending", "--account", ACCOUNT]);
    let ids: Vec<i64> =
        pending["actions"].as_array().expect("actions").iter().filter_map(|a| a["id"].as_i64()).collect();
    assert!(ids.len() >= 2, "{pending:#}");
    assert!(
        pending["actions"].as_array().into_iter().flatten().all(|a| a["status"] == "ACTION_STATUS_PENDING_APPROVAL")
    );

    let approved = server.json(&["actions", "approve", &ids[0].to_string(), "--comment", "go", "--by", "alice"]);
    assert_eq!(approved["action"]["status"], "ACTION_STATUS_EXECUTED", "{approved:#}");
    assert_eq!(approved["action"]["decided_by"], "alice");
    assert_eq!(approved["action"]["decision_comment"], "go");
    let rejected = server.json(&["actions", "reject", &ids[1].to_string()]);
    assert_eq!(rejected["action"]["status"], "ACTION_STATUS_REJECTED");
    assert_eq!(rejected["action"]["decided_by"], "cli-test", "--by defaults to the login name");

    let again = server.run(&["actions", "approve", &ids[0].to_string()]);
    assert_error(&again, "FailedPrecondition");
    let history = server.json(&["actions", "history", "--status", "rejected", "--type", type_flag(&rejected)]);
    assert_eq!(history["actions"][0]["id"], ids[1]);
}

/// The `--type` flag value of an action's type (`ACTION_TYPE_SCALE_UP` -> `scale-up`).
fn type_flag(response: &Value) -> &'static str {
    match response["action"]["action_type"].as_str() {
        Some("ACTION_TYPE_SCALE_UP_AGGRESSIVE") => "scale-up-aggressive",
        Some("ACTION_TYPE_SCALE_UP") => "scale-up",
        other => panic!("unexpected pending type {other:?}"),
    }
}
