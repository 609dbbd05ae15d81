//! The dependency graph runs one way: transport (`grpc`, `cli`) -> use cases
//! (`service`) -> `persistence`, `platform` -> the pure `domain`; `metrics`
//! and `alerts` are leaves wired in `startup`, and `simulation` is a tool on
//! top of the domain. This test reads every source file and fails when a
//! module names a layer above it (`crate::<module>` in code, not comments).
use std::path::{Path, PathBuf};

/// The modules each part of `src/` must never name.
const RULES: &[(&str, &[&str])] = &[
    (
        "domain",
        &[
            "service",
            "grpc",
            "cli",
            "startup",
            "config",
            "persistence",
            "platform",
            "metrics",
            "alerts",
            "simulation",
            "auth",
            "telemetry",
        ],
    ),
    ("persistence", &["service", "grpc", "cli", "startup", "config", "platform", "metrics", "alerts", "simulation"]),
    ("platform", &["service", "grpc", "cli", "startup", "config", "persistence", "metrics", "alerts", "simulation"]),
    ("service", &["grpc", "cli", "startup", "config", "simulation"]),
    ("metrics.rs", &["service", "grpc", "cli", "startup", "config", "persistence", "platform", "alerts", "simulation"]),
    ("alerts.rs", &["service", "grpc", "cli", "startup", "config", "persistence", "platform", "metrics", "simulation"]),
    ("simulation", &["service", "grpc", "cli", "startup", "config", "persistence", "platform", "metrics", "alerts"]),
    ("grpc", &["cli", "startup", "config", "simulation"]),
];

fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).expect("a source folder").flatten() {
        out.extend(files(&entry.path()));
    }
    out.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    out
}

fn upward_imports() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (part, forbidden) in RULES {
        for file in files(&src.join(part)) {
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for module in *forbidden {
                    if code.contains(&format!("crate::{module}::")) || code.contains(&format!("crate::{module}}}")) {
                        found.push(format!("{}:{}: {part} names {module}: {}", file.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn no_module_names_a_layer_above_it() {
    let found = upward_imports();
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    // The scanner itself: a line as it would appear in `src/domain`.
    let line = "use crate::service::engine::decide_step;";
    assert!(line.split("//").next().unwrap_or_default().contains("crate::service::"));
    assert!(RULES.iter().any(|(part, forbidden)| *part == "domain" && forbidden.contains(&"service")));
}
