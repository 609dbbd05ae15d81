//! `--config autoscaler.toml` through the real binary: the shipped example is
//! valid, a key is read, the environment and flags override it, and an
//! unknown key stops the server naming it.
use std::path::Path;
use std::process::{Command, Output};

fn autoscaler(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoscaler"));
    cmd.args(args);
    // Keep the developer's own settings out of the run.
    for var in ["DATABASE_URL", "META_ACCESS_TOKEN", "AUTOSCALER_CONFIG", "META_AD_ACCOUNT_IDS"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_unknown_key_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("autoscaler.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nmetrics_listn = \"off\"\n").expect("file written");
    let output = autoscaler(&["serve", "--config", file.to_str().expect("utf-8 path")], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("unknown key `metrics_listn`"), "{}", stderr(&output));
}

#[test]
fn file_values_are_read_and_the_environment_and_flags_override_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("autoscaler.toml");
    // A value the server refuses, to see that the file was read.
    std::fs::write(&file, "database_url = \"mysql://db/autoscaler\"\nsandbox_campaigns = 3\n").expect("file written");
    let config = file.to_str().expect("utf-8 path");
    let output = autoscaler(&["run-once", "--dry-run", "--config", config], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("DATABASE_URL"), "{}", stderr(&output));

    let url = format!("sqlite://{}?mode=rwc", dir.path().join("env.db").display());
    let output = autoscaler(&["run-once", "--dry-run", "--config", config], &[("DATABASE_URL", &url)]);
    assert_eq!(output.status.code(), Some(0), "environment over file: {}", stderr(&output));

    let url = format!("sqlite://{}?mode=rwc", dir.path().join("flag.db").display());
    let output = autoscaler(&["run-once", "--dry-run", "--config", config, "--database-url", &url], &[]);
    assert_eq!(output.status.code(), Some(0), "flag over file: {}", stderr(&output));
}

#[test]
fn the_shipped_example_file_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join("autoscaler.example.toml");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("example.db").display());
    let args = ["run-once", "--dry-run", "--sandbox-campaigns", "3", "--config", example.to_str().expect("utf-8")];
    let output = autoscaler(&args, &[("DATABASE_URL", &url)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_snapshot_retention_too_short_for_replays_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let args = ["run-once", "--dry-run", "--sandbox-campaigns", "3", "--retain-snapshots-days", "30"];
    let output = autoscaler(&args, &[("DATABASE_URL", &url)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("AUTOSCALER_RETAIN_SNAPSHOTS_DAYS"), "{}", stderr(&output));
    let args = ["run-once", "--dry-run", "--sandbox-campaigns", "3", "--retain-snapshots-days", "0"];
    let output = autoscaler(&args, &[("DATABASE_URL", &url), ("AUTOSCALER_RETAIN_ROUTINE_DAYS", "0")]);
    assert_eq!(output.status.code(), Some(0), "0 keeps everything: {}", stderr(&output));
}

#[test]
fn alert_settings_that_cannot_work_are_refused_naming_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    for (flag, value, setting) in [
        ("--approval-digest-hour", "24", "AUTOSCALER_APPROVAL_DIGEST_HOUR"),
        ("--approval-digest-time-zone", "Mars/Olympus", "AUTOSCALER_APPROVAL_DIGEST_TIME_ZONE"),
        ("--alert-server-address", "http://scaler:50051/x", "AUTOSCALER_ALERT_SERVER_ADDRESS"),
    ] {
        let args = ["run-once", "--dry-run", "--sandbox-campaigns", "3", flag, value];
        let output = autoscaler(&args, &[("DATABASE_URL", &url)]);
        assert_eq!(output.status.code(), Some(1), "{flag} {value}: {}", stderr(&output));
        assert!(stderr(&output).contains(setting), "{}", stderr(&output));
    }
    let args = ["run-once", "--dry-run", "--sandbox-campaigns", "3", "--approval-digest-hour", "off"];
    let output =
        autoscaler(&args, &[("DATABASE_URL", &url), ("AUTOSCALER_APPROVAL_DIGEST_TIME_ZONE", "Europe/Berlin")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
