//! The README's examples, pasted in order into a fresh install: every code
//! block marked `<!-- readme-test -->` is run command by command, through
//! `sh`, against `autoscaler serve` (the compiled binary, a new SQLite
//! database, the embedded Meta sandbox, a real socket). A command that exits
//! with a failure fails the test, naming the command and its output.
//!
//! Only the exit status and a few stable words are checked, not tables, so
//! the test follows the product's output as it changes. grpcurl comes from
//! `PATH` or `AUTOSCALER_GRPCURL`; without it the grpcurl examples are
//! skipped with a note, unless `AUTOSCALER_REQUIRE_GRPCURL` is set (CI).
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use autoscaler::pb;
use autoscaler::pb::approvals_service_client::ApprovalsServiceClient;
use autoscaler::pb::auto_scaler_service_client::AutoScalerServiceClient;

/// The line before a code block whose commands this test runs.
const MARKER: &str = "<!-- readme-test -->";

/// The address the README's examples name; replaced by the test server's.
const README_ADDRESS: &str = "127.0.0.1:50051";

/// The placeholder for an id from `actions pending`.
const ACTION_ID: &str = "ACTION_ID";

/// Seconds a single example may take (a cycle or a learn pass on the sandbox
/// takes seconds; this only stops a hung command, through coreutils' timeout).
const COMMAND_TIMEOUT_SECS: u32 = 180;

/// One command of a marked block, continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
struct Example {
    /// The README line it starts on (1-based), for messages.
    line: usize,
    /// The command as written (comments included: `sh` ignores them).
    text: String,
}

/// The commands of every marked block, in README order.
fn examples(readme: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut lines = readme.lines().enumerate();
    while let Some((_, line)) = lines.next() {
        if line.trim() != MARKER {
            continue;
        }
        let Some((_, fence)) = lines.next() else { break };
        assert!(fence.starts_with("```"), "{MARKER} must stand right before a code block, found {fence:?}");
        let mut pending: Option<Example> = None;
        for (index, line) in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            let joined = match pending.take() {
                Some(mut example) => {
                    example.text.push('\n');
                    example.text.push_str(line);
                    example
                }
                None if line.trim().is_empty() => continue,
                None => Example { line: index + 1, text: line.to_owned() },
            };
            if joined.text.trim_end().ends_with('\\') {
                pending = Some(joined);
            } else {
                examples.push(joined);
            }
        }
    }
    examples
}

#[test]
fn marked_blocks_are_split_into_commands_with_their_continuations() {
    let readme = "text\n<!-- readme-test -->\n```sh\na --x 1   # why\n\nb \\\n  --y 2\n```\n```sh\nnot marked\n```\n";
    let found = examples(readme);
    assert_eq!(
        found,
        vec![Example { line: 4, text: "a --x 1   # why".into() }, Example { line: 6, text: "b \\\n  --y 2".into() },]
    );
}

/// The grpcurl to run: `AUTOSCALER_GRPCURL`, else `grpcurl` on `PATH`.
fn grpcurl() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AUTOSCALER_GRPCURL") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("grpcurl")).find(|candidate| candidate.is_file())
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `autoscaler serve`, running until dropped.
struct Server {
    _child: Running,
    addr: String,
    _dir: tempfile::TempDir,
}

/// Starts the server as the README's quick start does, on `database` (a new
/// SQLite file in a temporary directory when `None`), any free port, metrics
/// off and no scheduled cycle (so the hourly cycle cannot create rules between
/// two examples). Returns it once it serves, with the sandbox accounts it
/// logged.
fn start_server(binary: &Path, database: Option<&str>) -> (Server, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = match database {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}?mode=rwc", dir.path().join("autoscaler.db").display()),
    };
    let mut child = Command::new(binary)
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", database)
        .env("AUTOSCALER_LISTEN", "127.0.0.1:0")
        .env("AUTOSCALER_METRICS_LISTEN", "off")
        .env("AUTOSCALER_OPTIMIZE_SCHEDULE", "off")
        .env("AUTOSCALER_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("autoscaler serve starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let child = Running(child);
    // Reads the log to its end (so the server never blocks on a full pipe),
    // passing every line on.
    let (lines, received) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut accounts = Vec::new();
    let mut seen = Vec::new();
    let addr = loop {
        let Ok(line) = received.recv_timeout(Duration::from_secs(120)) else {
            panic!("autoscaler serve did not start serving; it logged:\n{}", seen.join("\n"));
        };
        seen.push(line.clone());
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let fields = &entry["fields"];
        match fields["message"].as_str() {
            Some("sandbox ad account") => accounts.push(fields["account"].as_str().unwrap_or_default().to_owned()),
            Some("serving gRPC") => match fields["addr"].as_str() {
                Some(addr) => break addr.to_owned(),
                None => panic!("serving gRPC without an address: {line}"),
            },
            _ => {}
        }
    };
    (Server { _child: child, addr, _dir: dir }, accounts)
}

/// The oldest pending action not handed out yet, through the generated client.
fn pending_action(addr: &str, used: &[i64]) -> Option<i64> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    runtime.block_on(async {
        let mut client = ApprovalsServiceClient::connect(format!("http://{addr}")).await.ok()?;
        let request =
            pb::ListPendingActionsRequest { account_id: String::new(), page_size: 500, page_token: String::new() };
        let page = client.list_pending_actions(request).await.ok()?.into_inner();
        page.actions.iter().map(|a| a.id).filter(|id| !used.contains(id)).min()
    })
}

/// Actions recorded so far, through the generated client: a dry run must not
/// change it (pasting an example without `dry_run` once changed 17 budgets).
fn recorded_actions(addr: &str) -> i64 {
    block_on(async {
        let mut client = AutoScalerServiceClient::connect(format!("http://{addr}")).await.expect("connects");
        let request = pb::GetDashboardRequest { days: 366, account_id: String::new() };
        let dashboard = client.get_dashboard(request).await.expect("dashboard").into_inner();
        dashboard.overall.map(|o| o.total_actions).unwrap_or_default()
    })
}

/// What one example printed, and how it ended.
struct Ran {
    success: bool,
    output: String,
}

/// `sh -c command` with the test's environment.
fn shell(program: &str, args: &[&str], env: &[(&str, String)], dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    cmd.env_remove("AUTOSCALER_TOKEN").env_remove("AUTOSCALER_TLS_CA").env_remove("RUST_LOG");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd
}

/// Runs `command` through `sh`, stopped after [`COMMAND_TIMEOUT_SECS`].
fn run(command: &str, env: &[(&str, String)], dir: &Path) -> Ran {
    let limit = COMMAND_TIMEOUT_SECS.to_string();
    match shell("timeout", &[&limit, "sh", "-c", command], env, dir).output() {
        Ok(out) => Ran {
            success: out.status.success(),
            output: format!(
                "exit: {}{}\nstdout:\n{}\nstderr:\n{}",
                out.status,
                if out.status.code() == Some(124) { " (timed out)" } else { "" },
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        },
        Err(e) => Ran { success: false, output: format!("could not run sh: {e}") },
    }
}

/// Runs a command that follows live (`actions watch`) until it has printed a
/// line, then stops it: it must print, and must not have failed by then.
fn run_following(command: &str, env: &[(&str, String)], dir: &Path) -> Ran {
    // `exec`, so that stopping the child stops the command itself.
    let spawned = shell("sh", &["-c", &format!("exec {command}")], env, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Ran { success: false, output: format!("could not run sh: {e}") },
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Ran { success: false, output: "no output pipes".into() };
    };
    let child = Running(child);
    let (first_line, received) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = first_line.send(BufReader::new(stdout).lines().next());
    });
    let first = received.recv_timeout(Duration::from_secs(60));
    drop(child);
    let mut errors = String::new();
    let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut errors);
    match first {
        Ok(Some(Ok(line))) => Ran { success: true, output: line },
        other => Ran { success: false, output: format!("printed nothing ({other:?}); stderr:\n{errors}") },
    }
}

/// Words an example's output must contain: stable facts, not layout.
const EXPECTED_WORDS: [(&str, &str); 9] = [
    ("rules create --account act_1000002", "Marginal"),
    ("rules create --account act_1000001", "Cautious"),
    ("evaluate --account act_1000001 --dry-run", "120000100000000"),
    ("actions pending", "120000"),
    ("time report", "120000100000010"),
    ("Health/Check", "SERVING"),
    ("RulesService/CreateRule", "Daypart"),
    ("RulesService/UpdateRule", "1.1"),
    ("ApprovalsService/GetAction", r#""id": "1""#),
];

/// A new PostgreSQL database beside `TEST_DATABASE_URL`'s, dropped with it.
struct PostgresDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    fn create(admin: &str) -> Self {
        use sea_orm::ConnectionTrait;
        let name = format!("autoscaler_readme_{}", std::process::id());
        let base = admin.rsplit_once('/').map(|(base, _)| base.to_owned()).expect("TEST_DATABASE_URL with a database");
        block_on(async {
            let conn = sea_orm::Database::connect(admin).await.expect("connect to TEST_DATABASE_URL");
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop");
            conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
        });
        Self { admin: admin.to_owned(), url: format!("{base}/{name}"), name }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        use sea_orm::ConnectionTrait;
        block_on(async {
            if let Ok(conn) = sea_orm::Database::connect(&self.admin).await {
                let _ = conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
            }
        });
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

#[test]
fn every_readme_example_works_pasted_in_order_into_a_fresh_install() {
    walk_through_the_readme(None);
    // On PostgreSQL too, where the tests have one.
    if let Ok(admin) = std::env::var("TEST_DATABASE_URL") {
        let database = PostgresDatabase::create(&admin);
        walk_through_the_readme(Some(&database.url));
    }
}

/// Runs every marked example in order against a fresh server on `database`.
fn walk_through_the_readme(database: Option<&str>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let examples = examples(&readme);
    assert!(examples.len() >= 20, "the README's marked blocks hold only {} commands", examples.len());

    let grpcurl = grpcurl();
    if grpcurl.is_none() {
        assert!(
            std::env::var_os("AUTOSCALER_REQUIRE_GRPCURL").is_none(),
            "AUTOSCALER_REQUIRE_GRPCURL is set but no grpcurl is on PATH or in AUTOSCALER_GRPCURL"
        );
        eprintln!("note: no grpcurl on PATH (or AUTOSCALER_GRPCURL): the README's grpcurl examples are skipped");
    }

    let binary = Path::new(env!("CARGO_BIN_EXE_autoscaler"));
    let (server, accounts) = start_server(binary, database);
    assert_eq!(
        accounts,
        ["act_1000001", "act_1000002"],
        "the sandbox accounts the README names, as the server logs them"
    );

    // The CLI and grpcurl the README calls by name, first on PATH.
    let mut path_dirs: Vec<PathBuf> = binary.parent().map(Path::to_path_buf).into_iter().collect();
    let grpcurl_dir = tempfile::tempdir().expect("temp dir");
    if let Some(grpcurl) = &grpcurl {
        std::os::unix::fs::symlink(grpcurl, grpcurl_dir.path().join("grpcurl")).expect("link grpcurl");
        path_dirs.push(grpcurl_dir.path().to_path_buf());
    }
    path_dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    let path = std::env::join_paths(path_dirs).expect("PATH").to_string_lossy().into_owned();
    let env =
        [("PATH", path), ("AUTOSCALER_SERVER", format!("http://{}", server.addr)), ("USER", "readme-test".to_owned())];
    let work = tempfile::tempdir().expect("temp dir");

    let mut used_actions = Vec::new();
    let (mut ran, mut skipped) = (0, 0);
    for example in &examples {
        let mut command = example.text.replace(README_ADDRESS, &server.addr);
        if grpcurl.is_none() && command.trim_start().starts_with("grpcurl") {
            skipped += 1;
            continue;
        }
        if command.contains(ACTION_ID) {
            let Some(id) = pending_action(&server.addr, &used_actions) else {
                panic!(
                    "README line {}: no pending action to stand for {ACTION_ID} in:\n{}",
                    example.line, example.text
                );
            };
            used_actions.push(id);
            command = command.replace(ACTION_ID, &id.to_string());
        }
        let dry_run = command.contains("--dry-run") || command.contains(r#""dry_run":true"#);
        let recorded_before = dry_run.then(|| recorded_actions(&server.addr));
        let outcome = if command.contains("actions watch") {
            run_following(&command, &env, work.path())
        } else {
            run(&command, &env, work.path())
        };
        let on = if database.is_some() { "PostgreSQL" } else { "SQLite" };
        assert!(outcome.success, "README line {} failed ({on}):\n$ {}\n{}", example.line, command, outcome.output);
        for (needle, word) in EXPECTED_WORDS {
            if command.contains(needle) {
                assert!(
                    outcome.output.contains(word),
                    "README line {}: expected {word:?} in the output of\n$ {}\n{}",
                    example.line,
                    command,
                    outcome.output
                );
            }
        }
        if let Some(before) = recorded_before {
            let after = recorded_actions(&server.addr);
            assert_eq!(after, before, "README line {}: a dry run recorded actions:\n$ {command}", example.line);
        }
        ran += 1;
    }
    // Every marked example ran, less the grpcurl ones on a machine without
    // grpcurl (never in CI, which requires it).
    assert!(ran + skipped >= 20, "only {ran} examples found");
}
