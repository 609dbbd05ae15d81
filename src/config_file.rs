//! The configuration file (`--config autoscaler.toml`): a flat TOML table
//! whose keys are the server flags in snake_case (`database_url`,
//! `meta_access_token`, ...) and `log_format`. Each value becomes the flag's
//! default, so a flag or an environment variable still overrides it.
use std::path::Path;

use clap::builder::OsStr;

use crate::config::ConfigError;

/// The subcommands that read the file: `serve` and `run-once` take every
/// setting, `migrate` the ones it has (`database_url`); keys a command does
/// not have are accepted and left alone, so one file serves all three.
pub const SERVER_COMMANDS: [&str; 3] = ["serve", "run-once", "migrate"];

/// Global flags that are keys too.
const GLOBAL_KEYS: [&str; 1] = ["log_format"];

/// The setting a file error names.
const SETTING: &str = "AUTOSCALER_CONFIG";

/// Reads `path` and makes its values the defaults of `cmd`'s server flags.
pub fn apply(cmd: clap::Command, path: &Path) -> Result<clap::Command, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError { setting: SETTING, reason: format!("cannot read {}: {e}", path.display()) })?;
    apply_text(cmd, &text, path)
}

/// [`apply`] on the text of a file (`path` only names it in errors).
pub fn apply_text(mut cmd: clap::Command, text: &str, path: &Path) -> Result<clap::Command, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
        setting: SETTING,
        // The message and the line only: toml's own rendering quotes the
        // line, which may hold a token.
        reason: format!("{} line {}: {}", path.display(), line_of(text, e.span()), e.message().trim()),
    })?;
    let keys = known_keys(&cmd);
    for (key, value) in table {
        let Some(delimiter) = keys.iter().find(|(k, _)| *k == key).map(|(_, d)| *d) else {
            return Err(ConfigError {
                setting: SETTING,
                reason: format!("unknown key `{key}` in {} (keys are the server flags in snake_case)", path.display()),
            });
        };
        let value = flag_value(&value, delimiter).ok_or_else(|| ConfigError {
            setting: SETTING,
            reason: format!("`{key}` in {} must be a string, number or boolean", path.display()),
        })?;
        // Values from the file may be secrets: never shown as defaults in --help.
        let set = |arg: clap::Arg| {
            let takes_value = arg.get_action().takes_values();
            arg.default_value(OsStr::from(value.clone())).hide_default_value(takes_value)
        };
        if GLOBAL_KEYS.contains(&key.as_str()) {
            cmd = cmd.mut_arg(&key, set);
        }
        for name in SERVER_COMMANDS {
            let has_key = cmd
                .find_subcommand(name)
                .is_some_and(|sub| sub.get_arguments().any(|a| a.get_id().as_str() == key.as_str()));
            if has_key {
                cmd = cmd.mut_subcommand(name, |sub| sub.mut_arg(&key, set));
            }
        }
    }
    Ok(cmd)
}

/// Every key the file may hold, with the flag's list delimiter if any: the
/// flags of `serve` (which `run-once` shares; its own `--mode` and
/// `--dry-run` are not settings) and the global keys.
fn known_keys(cmd: &clap::Command) -> Vec<(String, Option<char>)> {
    let server = cmd.find_subcommand("serve").into_iter().flat_map(|sub| sub.get_arguments());
    let global = cmd.get_arguments().filter(|a| GLOBAL_KEYS.contains(&a.get_id().as_str()));
    server
        .chain(global)
        .filter(|a| a.get_long().is_some() && !matches!(a.get_id().as_str(), "config" | "help" | "version"))
        .map(|a| (a.get_id().as_str().to_owned(), a.get_value_delimiter()))
        .collect()
}

/// The flag text of a TOML value; a list only for a flag that takes one.
fn flag_value(value: &toml::Value, delimiter: Option<char>) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => {
            let delimiter = delimiter?;
            let parts: Option<Vec<String>> = items.iter().map(|v| flag_value(v, None)).collect();
            Some(parts?.join(&delimiter.to_string()))
        }
        toml::Value::Datetime(_) | toml::Value::Table(_) => None,
    }
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> usize {
    let start = span.map_or(0, |s| s.start.min(text.len()));
    text.as_bytes()[..start].iter().filter(|b| **b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

    use super::*;
    use crate::config::ServeArgs;

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(long, global = true, env = "AUTOSCALER_LOG_FORMAT", default_value = "text")]
        log_format: String,
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, Subcommand)]
    enum Command {
        Serve(ServeArgs),
    }

    fn parse(file: &str, args: &[&str]) -> Result<ServeArgs, String> {
        let cmd = apply_text(Cli::command(), file, Path::new("autoscaler.toml")).map_err(|e| e.to_string())?;
        let argv = ["autoscaler", "serve"].iter().chain(args);
        let matches = cmd.try_get_matches_from(argv).map_err(|e| e.to_string())?;
        let Command::Serve(serve) = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?.command;
        Ok(serve)
    }

    // The environment variables of these flags are unset in `cargo test`;
    // the env-over-file order is clap's own (env before default).
    #[test]
    fn a_key_is_read_and_a_flag_overrides_it() {
        let file = r#"
            insecure = true
            approval_ttl_hours = 12
            meta_ad_account_ids = ["act_1", "act_2"]
            optimize_schedule = "0 30 * * * *"
        "#;
        let serve = parse(file, &[]).expect("parses");
        assert_eq!(serve.engine.approval_ttl_hours, 12);
        assert!(serve.security.insecure);
        assert_eq!(serve.meta.meta_ad_account_ids, ["act_1", "act_2"]);
        assert_eq!(serve.optimize_schedule, "0 30 * * * *");
        let serve = parse(file, &["--approval-ttl-hours", "6"]).expect("parses");
        assert_eq!(serve.engine.approval_ttl_hours, 6);
        assert_eq!(serve.optimize_schedule, "0 30 * * * *");
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = parse("approval_ttl_hour = 12\n", &[]).expect_err("unknown key");
        assert!(err.contains("unknown key `approval_ttl_hour`"), "{err}");
        let err = parse("config = \"other.toml\"\n", &[]).expect_err("not a setting");
        assert!(err.contains("unknown key `config`"), "{err}");
    }

    #[test]
    fn bad_values_and_syntax_are_errors_that_do_not_quote_the_file() {
        let err = parse("listen = [\"a\", \"b\"]\n", &[]).expect_err("a list for a single flag");
        assert!(err.contains("`listen`"), "{err}");
        let err = parse("meta_access_token = \"EAAB-secret\n", &[]).expect_err("unterminated string");
        assert!(err.contains("autoscaler.toml line 1"), "{err}");
        assert!(!err.contains("EAAB-secret"), "{err}");
    }

    #[test]
    fn every_server_flag_is_a_key_and_documented_in_the_example() {
        let keys: Vec<String> = known_keys(&Cli::command()).into_iter().map(|(k, _)| k).collect();
        for key in ["listen", "database_url", "meta_access_token", "insecure", "max_watch_streams", "log_format"] {
            assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
        }
        let example = include_str!("../deploy/autoscaler.example.toml");
        let missing: Vec<&String> = keys
            .iter()
            .filter(|key| !example.lines().any(|l| l.trim_start_matches(['#', ' ']).starts_with(&format!("{key} = "))))
            .collect();
        assert!(missing.is_empty(), "deploy/autoscaler.example.toml does not document {missing:?}");
    }
}
