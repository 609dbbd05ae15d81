//! The operator CLI end to end: the compiled `autoscaler` binary, run as a
//! process, against the real server on a random port (SQLite, local sandbox).
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use autoscaler::config::{EngineConfig, MetaConfig, SandboxConfig, Settings};
use autoscaler::startup::Application;
use migration::MigratorTrait;
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

    /// The CLI with `args`, pointed at this server, logs and environment
    /// neutral, output not fitted to a terminal.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoscaler"));
        cmd.args(args).arg("--server").arg(format!("http://{}", self.addr));
        cmd.env_remove("RUST_LOG").env_remove("AUTOSCALER_SERVER").env_remove("COLUMNS").env("USER", "cli-test");
        cmd
    }

    /// Runs `args` as on a terminal `columns` wide, expects exit code 0, returns stdout.
    fn table_at(&self, columns: usize, args: &[&str]) -> String {
        let out = self.command(args).env("COLUMNS", columns.to_string()).output().expect("the CLI runs");
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        text(&out.stdout)
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
        int(&created["rule"]["id"])
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An int64 field of protobuf JSON: a decimal string.
fn int(value: &Value) -> i64 {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an int64 string: {value}"))
}

/// An int64 field that protobuf JSON leaves out when it is 0.
fn int_or_zero(value: &Value) -> i64 {
    if value.is_null() { 0 } else { int(value) }
}

/// Widest line, in terminal cells (every character these tables hold is one cell).
fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// `text` with every run of whitespace made one space: wrapped text reads
/// as it was before wrapping, unless a word was split.
fn collapsed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
    // Protobuf JSON, as grpcurl prints it: lowerCamelCase names, int64 as
    // strings, fields at their default left out.
    let rule = &created["rule"];
    assert!(rule["id"].is_string(), "int64 as a string: {rule:#}");
    let id = int(&rule["id"]);
    assert_eq!(rule["accountId"], ACCOUNT);
    assert!(rule.get("account_id").is_none(), "no proto field names: {rule:#}");
    assert!(rule.get("campaignId").is_none(), "an empty string is left out: {rule:#}");
    assert_eq!(rule["name"], "Spring");
    assert_eq!(rule["roasScaleUp"], 3.5);
    assert_eq!(rule["roasPause"], 1.0, "unset fields take defaults");
    assert_eq!(rule["minDailyBudgetMinor"], "2000");
    assert_eq!(rule["cooldown"], "21600s");
    assert_eq!(rule["metricsWindow"], "METRICS_WINDOW_TODAY");
    assert_eq!(rule["enabled"], false, "an optional field that is set is printed");
    assert!(rule["createTime"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));

    let campaign_rule = server.json(&["rules", "create", "--account", ACCOUNT, "--campaign", "42", "--name", "One"]);
    assert_eq!(campaign_rule["rule"]["campaignId"], "42");

    let listed = server.json(&["rules", "list", "--account", ACCOUNT]);
    let ids: Vec<i64> = listed["rules"].as_array().expect("rules").iter().map(|r| int(&r["id"])).collect();
    assert_eq!(ids, [id, int(&campaign_rule["rule"]["id"])]);
    assert_eq!(server.json(&["rules", "show", &id.to_string()])["rule"], *rule);

    let updated = server.json(&["rules", "update", &id.to_string(), "--multiplier-up", "1.1", "--enabled", "true"]);
    assert_eq!(updated["rule"]["multiplierUp"], 1.1);
    assert_eq!(updated["rule"]["enabled"], true);
    assert_eq!(updated["rule"]["roasScaleUp"], 3.5, "fields not given are kept");
    assert_eq!(updated["rule"]["cooldown"], "21600s");
    let reset = server.json(&["rules", "update", &id.to_string(), "--reset", "roas_scale_up", "--name", "Summer"]);
    assert_eq!(reset["rule"]["roasScaleUp"], 3.0);
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
        assert_eq!(e["accountId"], ACCOUNT);
        assert_eq!(int_or_zero(&e["action"]["id"]), 0, "a dry run records nothing");
        assert!(e["action"]["actionType"].as_str().is_some_and(|t| t.starts_with("ACTION_TYPE_")), "{e:#}");
        assert!(e["action"]["status"].as_str().is_some_and(|s| s.starts_with("ACTION_STATUS_")), "{e:#}");
    }
    let campaigns: Vec<&str> = evaluations.iter().filter_map(|e| e["campaignId"].as_str()).collect();

    let one = server.json(&["evaluate", "--account", ACCOUNT, "--campaign", campaigns[0], "--dry-run"]);
    assert_eq!(one["evaluation"]["campaignId"], campaigns[0]);

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
    assert_eq!(two["evaluations"][0]["campaignId"], campaigns[0]);
    assert_eq!(two["failures"][0]["campaignId"], "999");

    let history = server.json(&["actions", "history"]);
    assert!(history.get("actions").is_none(), "a dry run records nothing: {history:#}");
}

#[test]
fn run_cycle_and_history_in_json() {
    let server = TestServer::start();
    server.account_rule(&[]);
    let dry = server.json(&["run-cycle", "--dry-run"]);
    assert_eq!(int_or_zero(&dry["cycleId"]), 0);
    assert!(dry["evaluations"].as_array().is_some_and(|e| !e.is_empty()), "{dry:#}");

    let cycle = server.json(&["run-cycle", "--mode", "optimize", "--account", ACCOUNT]);
    assert!(int(&cycle["cycleId"]) > 0, "{cycle:#}");
    assert_eq!(cycle["accounts"], "1");
    let evaluated = int(&cycle["campaignsEvaluated"]);
    let by_type: i64 = cycle["actionsByType"].as_array().expect("by type").iter().map(|c| int(&c["count"])).sum();
    assert_eq!(by_type, evaluated);
    assert!(chrono::DateTime::parse_from_rfc3339(cycle["startTime"].as_str().expect("startTime")).is_ok());

    // Pages are followed up to --limit; the token of the last page is kept.
    let page = server.json(&["actions", "history", "--account", ACCOUNT, "--limit", "3"]);
    assert_eq!(page["actions"].as_array().map(Vec::len), Some(3));
    assert!(page["nextPageToken"].as_str().is_some_and(|t| !t.is_empty()), "{page:#}");
    let all = server.json(&["actions", "history", "--limit", "0"]);
    assert_eq!(all["actions"].as_array().map(Vec::len), Some(evaluated as usize));
    assert_eq!(all["actions"][0]["cycleId"], cycle["cycleId"]);
}

#[test]
fn tables_are_aligned_for_people() {
    let server = TestServer::start();
    server.account_rule(&["--max-daily-budget-minor", "123456"]);
    let table = server.table(&["rules", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], format!("account {ACCOUNT}"), "one account heads the table: {table}");
    assert!(lines[1].starts_with("ID  CAMPAIGN"), "{table}");
    assert_eq!(lines[1].find("CAMPAIGN"), lines[2].find("(account)"), "{table}");
    assert!(lines[2].ends_with("$1,234.56"), "money is formatted: {table}");

    let evaluated = server.table(&["evaluate", "--account", ACCOUNT, "--dry-run"]);
    assert!(evaluated.starts_with("CAMPAIGN"), "{evaluated}");
    assert!(evaluated.lines().next().is_some_and(|h| h.ends_with("NAME: REASON")), "{evaluated}");
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
        .args(["rules", "--server", "http://127.0.0.1:1", "list"])
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
    assert!(int(&event["sequence"]) > 0, "{event:#}");
    assert!(event["kind"].as_str().is_some_and(|k| k.starts_with("ACTION_EVENT_KIND_")), "{event:#}");
    assert_eq!(event["action"]["accountId"], ACCOUNT);
}

#[test]
fn pending_actions_are_approved_and_rejected() {
    let server = TestServer::start();
    // Every increase waits for a person.
    server.account_rule(&["--auto-approve-up-to-minor", "0", "--require-approval-threshold-minor", "0"]);
    server.table(&["evaluate", "--account", ACCOUNT]);
    let pending = server.json(&["actions", "pending", "--account", ACCOUNT]);
    let ids: Vec<i64> = pending["actions"].as_array().expect("actions").iter().map(|a| int(&a["id"])).collect();
    assert!(ids.len() >= 2, "{pending:#}");
    assert!(
        pending["actions"].as_array().into_iter().flatten().all(|a| a["status"] == "ACTION_STATUS_PENDING_APPROVAL")
    );

    let approved = server.json(&["actions", "approve", &ids[0].to_string(), "--comment", "go", "--by", "alice"]);
    assert_eq!(approved["action"]["status"], "ACTION_STATUS_EXECUTED", "{approved:#}");
    assert_eq!(approved["action"]["decidedBy"], "alice");
    assert_eq!(approved["action"]["decisionComment"], "go");
    let rejected = server.json(&["actions", "reject", &ids[1].to_string()]);
    assert_eq!(rejected["action"]["status"], "ACTION_STATUS_REJECTED");
    assert_eq!(rejected["action"]["decidedBy"], "cli-test", "--by defaults to the login name");

    let again = server.run(&["actions", "approve", &ids[0].to_string()]);
    assert_error(&again, "FailedPrecondition");
    let history = server.json(&["actions", "history", "--status", "rejected", "--type", type_flag(&rejected)]);
    assert_eq!(int(&history["actions"][0]["id"]), ids[1]);
}

/// The `--type` flag value of an action's type (`ACTION_TYPE_SCALE_UP` -> `scale-up`).
fn type_flag(response: &Value) -> &'static str {
    match response["action"]["actionType"].as_str() {
        Some("ACTION_TYPE_SCALE_UP_AGGRESSIVE") => "scale-up-aggressive",
        Some("ACTION_TYPE_SCALE_UP") => "scale-up",
        other => panic!("unexpected pending type {other:?}"),
    }
}

/// The action of every event line a text `actions watch` printed: banner,
/// header, then lines of `HH:MM  ID  CAMPAIGN  DECISION ...`.
fn is_event_line(line: &str) -> bool {
    let mut cells = line.split_whitespace();
    let time = cells.next().unwrap_or_default();
    let id = cells.next().unwrap_or_default();
    time.len() == 5 && time.as_bytes()[2] == b':' && id.parse::<i64>().is_ok()
}

/// Lines of a child's stdout, read on a thread as they come.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn history_fits_80_columns_and_wraps_reasons_whole() {
    let server = TestServer::start();
    server.account_rule(&[]);
    // The second cycle is held by the cooldown: longer reasons ("...; held: ...").
    server.json(&["run-cycle", "--mode", "optimize", "--account", ACCOUNT]);
    server.json(&["run-cycle", "--mode", "optimize", "--account", ACCOUNT]);
    let actions = server.json(&["actions", "history", "--limit", "0"]);
    let actions = actions["actions"].as_array().expect("actions").clone();
    assert!(actions.iter().any(|a| a["reason"].as_str().is_some_and(|r| r.contains("held:"))), "no held action");

    let table = server.table_at(80, &["actions", "history", "--limit", "0"]);
    assert!(widest(&table) <= 80, "wider than 80 columns:\n{table}");
    let flat = collapsed(&table);
    for a in &actions {
        let reason = a["reason"].as_str().expect("reason");
        // Whole, and no word (number) split across lines.
        assert!(flat.contains(&collapsed(reason)), "reason {reason:?} cut or split:\n{table}");
        let row = format!("{}  ", int(&a["id"]));
        assert!(table.lines().any(|l| l.trim_start().starts_with(&row)), "no row of action {}:\n{table}", a["id"]);
    }
    let wrapped = actions.iter().filter_map(|a| a["reason"].as_str()).any(|r| !table.lines().any(|l| l.contains(r)));
    assert!(wrapped, "some long reason should need two lines at 80 columns:\n{table}");
    for money in ["OLD", "NEW"] {
        assert!(table.lines().nth(1).is_some_and(|h| h.contains(money)), "{table}");
    }

    // Wide enough, the reason is a column of its own.
    let wide = server.table_at(160, &["actions", "history", "--limit", "5"]);
    assert!(wide.lines().nth(1).is_some_and(|h| h.trim_end().ends_with("REASON")), "{wide}");
    assert!(widest(&wide) <= 160, "{wide}");
    // Not a terminal: whole lines for grep.
    let piped = server.table(&["actions", "history", "--limit", "0"]);
    for a in &actions {
        let reason = a["reason"].as_str().expect("reason");
        assert!(piped.lines().any(|l| l.ends_with(reason)), "{reason:?} not on one line:\n{piped}");
    }
}

#[test]
fn actions_show_prints_one_action_whole() {
    let server = TestServer::start();
    server.account_rule(&[]);
    server.json(&["run-cycle", "--mode", "optimize", "--account", ACCOUNT]);
    let history = server.json(&["actions", "history", "--limit", "0"]);
    let action = &history["actions"][3];
    let id = int(&action["id"]);

    let shown = server.json(&["actions", "show", &id.to_string()]);
    assert_eq!(shown, *action, "the same action as the history holds");
    let text = server.table_at(80, &["actions", "show", &id.to_string()]);
    let id_line = |l: &&str| l.starts_with("action id ") && l.ends_with(&format!(" {id}"));
    assert!(text.lines().any(|l| id_line(&l)), "{text}");
    assert!(collapsed(&text).contains(&collapsed(action["reason"].as_str().expect("reason"))), "{text}");
    assert!(text.contains(action["campaignId"].as_str().expect("campaign")), "{text}");
    assert!(widest(&text) <= 80, "{text}");

    let missing = server.run(&["actions", "show", "999999"]);
    let stderr = assert_error(&missing, "NotFound");
    assert!(stderr.contains("999999"), "{stderr}");
    let zero = server.run(&["actions", "show", "0"]);
    let stderr = assert_error(&zero, "InvalidArgument");
    assert!(stderr.contains("action_id"), "names the field: {stderr}");

    // --account: the action, when it is that account's; NotFound otherwise.
    let of_account = server.json(&["actions", "show", &id.to_string(), "--account", ACCOUNT]);
    assert_eq!(of_account, *action);
    let elsewhere = server.run(&["actions", "show", &id.to_string(), "--account", "act_1000002"]);
    let stderr = assert_error(&elsewhere, "NotFound");
    assert!(stderr.contains(&format!("belongs to {ACCOUNT}, not to act_1000002")), "{stderr}");
}

#[test]
fn watch_prints_a_banner_a_header_and_one_line_per_event() {
    let server = TestServer::start();
    server.account_rule(&[]);
    let start = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    server.table(&["evaluate", "--account", ACCOUNT]);
    let from = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let watch = |extra: &[&str], json: bool| {
        let mut args = vec!["actions", "watch", "--account", ACCOUNT, "--replay-from", from.as_str()];
        args.extend(extra);
        if json {
            args.push("--json");
        }
        let mut child = server
            .command(&args)
            .env("COLUMNS", "80")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("watch starts");
        let lines = lines_of(&mut child);
        (child, lines)
    };
    let routine = |e: &Value| {
        matches!(e["action"]["actionType"].as_str(), Some("ACTION_TYPE_MAINTAIN" | "ACTION_TYPE_INSUFFICIENT_DATA"))
    };

    // With --all the replay holds routine decisions; read up to the first
    // change after one.
    let (mut all_child, all_lines) = watch(&["--all"], true);
    let mut all_events = Vec::new();
    while let Ok(line) = all_lines.recv_timeout(Duration::from_secs(20)) {
        let event: Value = serde_json::from_str(&line).expect("one JSON object per line");
        all_events.push(event);
        if all_events.iter().any(routine) && all_events.last().is_some_and(|e| !routine(e)) {
            break;
        }
    }
    let _ = all_child.kill();
    let _ = all_child.wait();
    assert!(all_events.iter().any(routine), "--all shows routine decisions: {all_events:#?}");
    let last = all_events.last().map(|e| int(&e["sequence"])).expect("events");

    // Without it, the same stream without them.
    let (mut child, lines) = watch(&[], true);
    let mut events = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
        let event: Value = serde_json::from_str(&line).expect("one JSON object per line");
        let sequence = int(&event["sequence"]);
        events.push(event);
        if sequence >= last {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let expected: Vec<&Value> = all_events.iter().filter(|e| !routine(e)).collect();
    assert_eq!(events.iter().collect::<Vec<_>>(), expected, "routine decisions hidden, nothing else");

    // For people: what it waits for, a header, then one line per event.
    let (mut child, lines) = watch(&[], false);
    let mut printed = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
        printed.push(line);
        if printed.iter().filter(|l| is_event_line(l)).count() >= 3 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = printed.join("\n");
    assert!(printed[0].starts_with(&format!("Watching actions of every campaign of {ACCOUNT}")), "{text}");
    assert!(text.contains("--all shows them"), "{text}");
    let header = printed.iter().position(|l| l.starts_with("UTC ")).expect("a header line");
    assert!(printed[header].contains("CAMPAIGN") && printed[header].contains("REASON"), "{text}");
    let event_lines = &printed[header + 1..];
    assert!(event_lines.iter().all(|l| is_event_line(l)), "one line per event, nothing between:\n{text}");
    assert!(event_lines.iter().all(|l| l.chars().count() <= 80), "{text}");
    assert!(event_lines.iter().all(|l| !l.contains(" maintain ") && !l.contains(" no data ")), "{text}");
}

#[test]
fn time_report_says_how_to_learn_then_fits_80x24() {
    let server = TestServer::start();
    let campaign = "120000100000000";
    let before = server.run(&["time", "report", "--account", ACCOUNT, "--campaign", campaign]);
    let stderr = assert_error(&before, "NotFound");
    assert!(stderr.contains(&format!("run `autoscaler time learn --account {ACCOUNT}`")), "{stderr}");

    server.json(&["time", "learn", "--account", ACCOUNT, "--min-samples", "1"]);
    let report = server.table_at(80, &["time", "report", "--account", ACCOUNT, "--campaign", campaign]);
    assert!(report.lines().count() <= 23, "{} lines:\n{report}", report.lines().count());
    assert!(widest(&report) <= 80, "{report}");
    // The sandbox's first account keeps New York time.
    assert!(report.contains("local hour of America/New_York, the ad account's time zone"), "{report}");
    assert!(report.contains("in USD"), "the budgets' currency: {report}");
    assert!(report.contains("INDEX: the hour's"), "what the index measures: {report}");
    for hour in ["00 ", "11 ", "12 ", "23 "] {
        assert!(report.lines().any(|l| l.starts_with(hour) || l.contains(&format!("   {hour}"))), "{hour}:\n{report}");
    }
    let json = server.json(&["time", "report", "--account", ACCOUNT, "--campaign", campaign]);
    assert_eq!(json["timeZone"], "America/New_York", "{json}");

    // The schedule draws the same two columns under the same kind of title.
    let args = ["time", "schedule", "--account", ACCOUNT, "--campaign", campaign, "--daily-budget-minor", "2400"];
    let schedule = server.table_at(80, &args);
    assert!(schedule.lines().count() <= 23, "{} lines:\n{schedule}", schedule.lines().count());
    assert!(widest(&schedule) <= 80, "{schedule}");
    assert!(collapsed(&schedule).contains("24 hours of America/New_York, the ad account's time zone"), "{schedule}");
    assert_eq!(server.json(&args)["timeZone"], "America/New_York");
}

#[test]
fn version_names_the_revision_and_the_build_date() {
    let out = Command::new(env!("CARGO_BIN_EXE_autoscaler")).arg("--version").output().expect("runs");
    let version = text(&out.stdout);
    assert!(version.starts_with(concat!("autoscaler ", env!("CARGO_PKG_VERSION"), " (revision ")), "{version}");
    assert!(version.contains(", built 20"), "{version}");
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success() && std::env::var_os("AUTOSCALER_REVISION").is_none());
    match git {
        Some(git) => {
            let revision = text(&git.stdout);
            assert!(version.contains(&format!("(revision {}, ", revision.trim())), "{version} vs {revision}");
        }
        None => assert!(!version.contains("(revision , "), "{version}"),
    }
}

#[test]
fn completions_are_generated_for_the_shells() {
    let run = |shell: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_autoscaler")).args(["completions", shell]).output().expect("runs");
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let bash = run("bash");
    assert!(bash.contains("_autoscaler()") && bash.contains("complete -F _autoscaler"), "{bash}");
    for word in ["actions", "watch", "--after-sequence", "--database-url", "completions"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(run("zsh").starts_with("#compdef autoscaler"));
    assert!(run("fish").contains("complete -c autoscaler"));
}

#[test]
fn server_and_client_flags_show_only_where_they_apply() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_autoscaler")).args(args).output().expect("runs");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let serve = help(&["serve", "--help"]);
    for client_flag in ["--server ", "--json", "--tls-ca", "--token"] {
        assert!(!serve.contains(client_flag), "serve --help lists {client_flag}:\n{serve}");
    }
    assert!(serve.contains("--database-url"), "{serve}");
    let list = help(&["rules", "list", "--help"]);
    for client_flag in ["--server ", "--json", "--tls-ca", "--token"] {
        assert!(list.contains(client_flag), "rules list --help lacks {client_flag}:\n{list}");
    }
    for server_flag in ["--database-url", "--listen", "--meta-access-token"] {
        assert!(!list.contains(server_flag), "rules list --help lists {server_flag}:\n{list}");
    }
    let migrate = help(&["migrate", "--help"]);
    assert!(migrate.contains("--config") && !migrate.contains("--server "), "{migrate}");
}

#[test]
fn migrate_says_what_it_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let migrate = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .arg("migrate")
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("AUTOSCALER_CONFIG")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let first = migrate(&["--database-url", &url]);
    let total = migration::Migrator::migrations().len();
    assert!(first.starts_with(&format!("applied {total} migrations to SQLite file ")), "{first}");
    for m in migration::Migrator::migrations() {
        assert!(first.contains(&format!("\n  {}\n", m.name())), "{} not listed:\n{first}", m.name());
    }
    // The same database through a configuration file: nothing left to do.
    let config = dir.path().join("autoscaler.toml");
    std::fs::write(&config, format!("database_url = \"{url}\"\nlisten = \"127.0.0.1:0\"\n")).expect("writes");
    let again = migrate(&["--config", &config.display().to_string()]);
    assert!(again.contains("is up to date: nothing to apply"), "{again}");
    assert!(again.contains(&format!("({total} migrations applied before)")), "{again}");
}

#[test]
fn migrate_fails_fast_naming_the_setting_and_host_not_the_password() {
    let (url, port) = unreachable_database_url();
    let out = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["migrate", "--database-url", &url])
        .env_remove("AUTOSCALER_CONFIG")
        .output()
        .expect("runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "names the setting: {stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "names the host: {stderr}");
    assert!(stderr.contains("refused"), "says why: {stderr}");
    assert!(!stderr.contains("s3cret-pa55") && !text(&out.stdout).contains("s3cret-pa55"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one message, not a chain of the same: {stderr}");
}

/// A PostgreSQL URL, with a password, of a local port nothing listens on.
fn unreachable_database_url() -> (String, u16) {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    (format!("postgres://autoscaler:s3cret-pa55@127.0.0.1:{port}/autoscaler"), port)
}

#[test]
fn serve_and_run_once_fail_fast_naming_the_setting_and_host_not_the_password() {
    let (url, port) = unreachable_database_url();
    for command in [&["serve"][..], &["run-once", "--dry-run"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(command)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "off", "--optimize-schedule", "off"])
            .env("DATABASE_URL", &url)
            .env_remove("AUTOSCALER_CONFIG")
            .env_remove("META_ACCESS_TOKEN")
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .output()
            .expect("runs");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {stderr}");
        let message = format!(
            "error: cannot reach the database of DATABASE_URL (--database-url), PostgreSQL at 127.0.0.1:{port}: "
        );
        assert!(stderr.starts_with(&message), "{command:?} names the setting and host: {stderr}");
        assert!(stderr.contains("refused"), "{command:?} says why: {stderr}");
        let output = format!("{stderr}{}", text(&out.stdout));
        assert!(!output.contains("s3cret-pa55"), "{command:?}: {output}");
        assert_eq!(stderr.lines().count(), 1, "{command:?}: one message, not a chain of the same: {stderr}");
    }
}

#[test]
fn serve_fails_fast_on_a_database_that_refuses_it() {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else { return };
    // The server answers, but the database is not there.
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).expect("URL with a database path");
    let url = format!("{base}/cli_missing_{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--optimize-schedule", "off"])
        .env("DATABASE_URL", &url)
        .env_remove("AUTOSCALER_CONFIG")
        .env_remove("META_ACCESS_TOKEN")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: cannot open the database of DATABASE_URL (--database-url), PostgreSQL at "));
    assert!(stderr.contains("does not exist"), "says why: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A PostgreSQL database of its own under `TEST_DATABASE_URL`, dropped at the end.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(admin: String) -> Self {
        use sea_orm::ConnectionTrait;
        let name = format!("cli_migrate_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let conn = sea_orm::Database::connect(&admin).await.expect("connect to TEST_DATABASE_URL");
            conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
            conn.close().await.ok();
        });
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).expect("URL with a database path");
        Self { url: format!("{base}/{name}"), admin, name }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        use sea_orm::ConnectionTrait;
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            if let Ok(conn) = sea_orm::Database::connect(&self.admin).await {
                let _ = conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
            }
        });
    }
}

#[test]
fn migrate_reports_on_postgresql_too() {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else { return };
    let db = PgDatabase::create(admin);
    let migrate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_autoscaler"))
            .args(["migrate", "--database-url", &db.url])
            .env_remove("AUTOSCALER_CONFIG")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let total = migration::Migrator::migrations().len();
    let first = migrate();
    assert!(first.starts_with(&format!("applied {total} migrations to PostgreSQL at ")), "{first}");
    let again = migrate();
    assert!(again.contains("is up to date: nothing to apply"), "{again}");
}
