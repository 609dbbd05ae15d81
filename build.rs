//! Compiles the protobuf contract with protox (pure Rust: no `protoc` needed),
//! writes the descriptor set that gRPC reflection serves, and records the
//! revision and date of the build for `autoscaler --version`.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const PROTOS: &[&str] = &[
    "proto/autoscaler/v1/common.proto",
    "proto/autoscaler/v1/rules.proto",
    "proto/autoscaler/v1/autoscaler.proto",
    "proto/autoscaler/v1/approvals.proto",
    "proto/autoscaler/v1/time_optimization.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("autoscaler_descriptor.bin"), compiler.encode_file_descriptor_set())?;
    // `prost::Name` on every message: the CLI finds each reply's descriptor
    // by its full name to print it as protobuf JSON.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(compiler.file_descriptor_set(), config)?;
    build_info();
    Ok(())
}

/// Sets `AUTOSCALER_REVISION` (also read by the `autoscaler_build_info`
/// metric) and `AUTOSCALER_BUILD_DATE` for the crate. The revision is the
/// `AUTOSCALER_REVISION` of the build's environment when it names one (builds
/// without a `.git`, such as a container build), else git's, else "unknown":
/// a build never fails for want of git.
fn build_info() {
    println!("cargo:rerun-if-env-changed=AUTOSCALER_REVISION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let from_env =
        env::var("AUTOSCALER_REVISION").ok().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty() && r != "unknown");
    let revision = from_env.or_else(git_revision).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=AUTOSCALER_REVISION={revision}");
    // Reproducible builds pin the date; otherwise the day the build ran.
    let epoch = env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    });
    println!("cargo:rustc-env=AUTOSCALER_BUILD_DATE={}", civil_date(epoch));
}

/// The short id of the checked-out commit; `None` without git or outside a
/// repository. Also asks cargo to run this again when that commit changes.
/// (Uncommitted changes are not marked: cargo would not rerun this when they
/// come or go, so such a mark would soon be stale.)
fn git_revision() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let revision = git(&["rev-parse", "--short=12", "HEAD"])?;
    // HEAD and the branch it points to move when a commit is made. Only
    // files that exist are named: cargo reruns a build script on every build
    // for a path that does not exist.
    let watch = |path: &str| {
        if let Some(file) = git(&["rev-parse", "--git-path", path])
            && Path::new(&file).exists()
        {
            println!("cargo:rerun-if-changed={file}");
            return true;
        }
        false
    };
    watch("HEAD");
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    if !branch.is_some_and(|b| watch(&b)) {
        // The branch is only in packed-refs (a fresh clone): its first commit
        // writes it as a file under refs/heads.
        watch("packed-refs");
        watch("refs/heads");
    }
    Some(revision)
}

/// `YYYY-MM-DD` (UTC) of a Unix time, by the days-to-civil algorithm (no
/// date crate in the build script).
fn civil_date(epoch_secs: u64) -> String {
    let days = (epoch_secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
