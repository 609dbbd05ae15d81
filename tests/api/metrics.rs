//! `/metrics` as an operator's Prometheus sees it: `promtool check metrics`
//! on a live server after a cycle, the gauges read from the database, each
//! action counted once, named gRPC codes, and the shipped alert rules and
//! dashboard (`deploy/`) checked by promtool and against the served names.
//!
//! promtool comes from Debian's `prometheus` package. `.ci/run` installs it
//! and sets `AUTOSCALER_REQUIRE_PROMTOOL=1`, so CI fails rather than skips
//! when it is missing; elsewhere a missing promtool skips the promtool steps
//! with a note on stderr.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use autoscaler::domain::action::{ActionStatus, ActionType};
use autoscaler::pb::{GetRuleRequest, RunCycleRequest};
use chrono::{TimeDelta, Utc};

use crate::helpers::{Backend, TestApp, backends, record_actions, sample_action, set_action_times, spawn_app_with};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(file)
}

/// promtool, or `None` (with a note) when it is not installed and the run
/// does not require it.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("promtool"))
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("AUTOSCALER_REQUIRE_PROMTOOL").is_none(),
            "promtool is required (AUTOSCALER_REQUIRE_PROMTOOL is set) but not on PATH: \
             apt-get install -y --no-install-recommends prometheus"
        );
        eprintln!("note: promtool not installed; promtool checks skipped (apt-get install prometheus)");
    }
    found
}

/// Runs promtool with `args` and `stdin`; returns its combined output, after
/// asserting it succeeded.
fn run_promtool(promtool: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(promtool)
        .args(args)
        .current_dir(deploy(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin written");
    let output = child.wait_with_output().expect("promtool finishes");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}\n--- input ---\n{stdin}");
    text
}

async fn scrape(app: &TestApp, accept: Option<&str>) -> String {
    let addr = app.metrics_addr.expect("metrics served");
    let mut request = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.expect("scrape").text().await.expect("text")
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Sum of `autoscaler_actions_total` samples with `status`.
fn actions_counted(body: &str, status: &str) -> f64 {
    let label = format!("status=\"{status}\"");
    body.lines()
        .filter(|l| l.starts_with("autoscaler_actions_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn live_metrics_pass_promtool_and_report_the_operators_signals() {
    let promtool = promtool();
    for backend in backends() {
        let app = spawn_app_with(backend, |s| s.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
        // An action waiting for two hours, on an account the sandbox lacks.
        let waiting = record_actions(
            &app.state,
            &[sample_action("act_9", "1", ActionType::ScaleUp, ActionStatus::PendingApproval)],
        )
        .await;
        set_action_times(&app.state, waiting[0].id, Utc::now() - TimeDelta::hours(2), None).await;
        let before_cycle = Utc::now().timestamp() as f64;
        app.autoscaler.clone().run_cycle(RunCycleRequest::default()).await.expect("cycle");
        let _ = app.rules.clone().get_rule(GetRuleRequest { id: 12_345 }).await;
        let body = scrape(&app, None).await;

        if let Some(promtool) = &promtool {
            let lint = run_promtool(promtool, &["check", "metrics"], &body);
            assert!(lint.trim().is_empty(), "{backend:?}: promtool lint findings:\n{lint}");
        }

        // Database gauges, read at scrape time.
        let pending = sample(&body, "autoscaler_pending_approvals").expect("pending gauge");
        assert!(pending >= 1.0, "{backend:?}: {body}");
        let oldest = sample(&body, "autoscaler_oldest_pending_approval_age_seconds").expect("oldest gauge");
        assert!((7_000.0..8_000.0).contains(&oldest), "{backend:?}: oldest pending age {oldest}");
        let last = sample(&body, "autoscaler_cycle_last_success_timestamp_seconds{mode=\"optimize\"}")
            .expect("last success gauge");
        assert!(last >= before_cycle - 1.0 && last <= Utc::now().timestamp() as f64 + 1.0, "{backend:?}: {last}");

        // Codes by name, latency histograms, build info, Meta usage.
        for expected in [
            "autoscaler_grpc_requests_total{method=\"/autoscaler.v1.RulesService/GetRule\",code=\"NOT_FOUND\"} 1",
            "autoscaler_grpc_request_duration_seconds_count{method=\"/autoscaler.v1.AutoScalerService/RunCycle\",code=\"OK\"} 1",
            "autoscaler_build_info{version=\"",
            "autoscaler_meta_usage_ratio{account=\"act_",
        ] {
            assert!(body.contains(expected), "{backend:?}: missing {expected} in\n{body}");
        }
        let graph = sample(&body, "autoscaler_graph_request_duration_seconds_count").expect("graph histogram");
        assert!(graph > 0.0, "{backend:?}");

        // Each action counted once, by the final status it reached: the
        // counts equal the stored actions in each final status, and no
        // waiting or passing status has a count.
        for status in ActionStatus::ALL {
            let stored = autoscaler::persistence::actions::in_status(&app.state.db, status, None, None, 100_000)
                .await
                .expect("actions read")
                .len() as f64;
            let counted = actions_counted(&body, status.as_str());
            let expected = if status.is_final() { stored } else { 0.0 };
            assert_eq!(counted, expected, "{backend:?}: {} counted {counted}, stored {stored}", status.as_str());
        }
    }
}

#[tokio::test]
async fn openmetrics_is_served_to_scrapers_that_ask_for_it() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let body = scrape(&app, Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")).await;
    assert!(body.ends_with("# EOF\n"), "{body}");
    // OpenMetrics names a counter family without its `_total`.
    assert!(body.contains("# TYPE autoscaler_campaigns_evaluated counter"), "{body}");
}

#[tokio::test]
async fn alert_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    run_promtool(&promtool, &["check", "rules", "prometheus-alerts.yml"], "");
    run_promtool(&promtool, &["test", "rules", "prometheus-alerts.test.yml"], "");
}

#[tokio::test]
async fn the_dashboard_and_alerts_name_only_metrics_the_server_exports() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    app.autoscaler.clone().run_cycle(RunCycleRequest::default()).await.expect("cycle");
    // A family appears once it has a series; give the error counter one.
    let error = autoscaler::metrics::PlatformLabels { account: "act_1".into(), kind: "transient".into() };
    drop(app.state.metrics.platform_errors.get_or_create(&error));
    let body = scrape(&app, None).await;
    let dashboard = std::fs::read_to_string(deploy("grafana-dashboard.json")).expect("dashboard");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| !p.is_empty()), "panels");
    let alerts = std::fs::read_to_string(deploy("prometheus-alerts.yml")).expect("alerts");
    let mut names: Vec<&str> = [dashboard.as_str(), alerts.as_str()]
        .into_iter()
        .flat_map(|text| text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| word.starts_with("autoscaler_"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 10, "{names:?}");
    let missing: Vec<&str> = names
        .into_iter()
        .filter(|name| {
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            !body.contains(&format!("# HELP {family} "))
        })
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{body}");
}
