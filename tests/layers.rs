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
            // The service's error knows tonic and SeaORM; the domain has its own.
            "error",
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
    if !path.exists() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).expect("a source folder").flatten() {
        out.extend(files(&entry.path()));
    }
    out.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    out
}

fn upward_imports(src: &Path) -> Vec<String> {
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

/// Parts of `src/` that may name the sandbox crate: the platform's bridge to
/// it, startup (the embedded sandbox when no token is set) and the simulation
/// (the market pieces both share).
const SANDBOX_USERS: &[&str] = &["platform", "startup.rs", "simulation"];

/// Code lines (comments cut) of the files under `path` that contain `needle`.
fn naming(path: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for file in files(path) {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        for (n, line) in text.lines().enumerate() {
            if line.split("//").next().unwrap_or_default().contains(needle) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_sandbox_crate_stands_alone_and_only_its_users_name_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("sandbox").join("Cargo.toml")).expect("the sandbox's manifest");
    let back = manifest.lines().filter(|l| l.trim_start().starts_with("autoscaler") || l.contains("path = \"..\""));
    assert_eq!(back.count(), 0, "sandbox/Cargo.toml depends on the service crate:\n{manifest}");
    let named = naming(&root.join("sandbox").join("src"), "autoscaler::");
    assert!(named.is_empty(), "the sandbox names the service crate:\n{}", named.join("\n"));
    let src = root.join("src");
    let mut others = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !SANDBOX_USERS.contains(&name.as_str()) {
            others.extend(naming(&entry.path(), "meta_sandbox::"));
        }
    }
    assert!(others.is_empty(), "only {SANDBOX_USERS:?} may name the sandbox:\n{}", others.join("\n"));
}

#[test]
fn no_module_names_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (part, _) in RULES {
        assert!(src.join(part).exists(), "src/{part} is named in RULES but does not exist");
    }
    let found = upward_imports(&src);
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import_and_ignores_comments() {
    let src = tempfile::tempdir().expect("a temporary source tree");
    std::fs::create_dir_all(src.path().join("domain")).expect("domain folder");
    let planted = "// crate::service:: in a comment is fine\nuse crate::service::engine::decide_step;\n";
    std::fs::write(src.path().join("domain").join("step.rs"), planted).expect("a source file");
    let found = upward_imports(src.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("step.rs:2: domain names service"), "{found:?}");
}
