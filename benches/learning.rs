//! Learning benchmark: 10,000 campaigns x 30 days of hourly rows (7.2
//! million rows) in one SQLite account, then one bulk learning pass (the
//! database sums per campaign, weekday and hour; the statistics run on the
//! sums; the profiles are upserted). BENCH_CAMPAIGNS and BENCH_DAYS change
//! the size.
//!
//! Run: `cargo bench --bench learning` (prints the process's RSS and peak RSS too)
use std::time::Instant;

use autoscaler::domain::ids::AccountId;
use autoscaler::domain::time_profile::epoch_day;
use autoscaler::persistence;
use autoscaler::service::time_optimization::learn_stored;
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection};

const ACCOUNT: &str = "act_4242";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Fills the hourly table in the database itself: campaign x day x hour rows
/// with a pacing-shaped spend, a third of the campaigns peaking at a
/// campaign-specific hour, and deterministic noise.
async fn fill(db: &DatabaseConnection, campaigns: u64, days: u64) -> Result<(), sea_orm::DbErr> {
    let first = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
    let first_day = epoch_day(first);
    let sql = format!(
        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {last_c}), \
         d(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM d WHERE j < {last_d}), \
         h(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM h WHERE k < 23), \
         g AS (SELECT i, j, k, 200 + 20 * k + ((i * 7919 + j * 104729 + k * 1299709) % 300) AS spend, \
               CASE WHEN i % 3 = 0 AND ABS(k - (9 + i % 12)) <= 2 THEN 160 ELSE 100 END AS effect, \
               80 + ((i * 31 + j * 17 + k * 13) % 41) AS noise FROM c, d, h) \
         INSERT INTO campaign_hourly_stats (account_id, campaign_id, source, hour_start, local_date, local_day, \
           day_of_week, hour, spend_minor, revenue_minor, conversions, impressions, clicks, revisions, updated_at) \
         SELECT '{ACCOUNT}', CAST(120000000000 + i AS TEXT), 'snapshot', \
           datetime('{first}', '+' || (j * 24 + k) || ' hours'), date('{first}', '+' || j || ' days'), \
           {first_day} + j, ({first_day} + j + 4) % 7, k, spend, spend * 3 * effect * noise / 10000, \
           spend * 3 * effect * noise / 10000 / 4000, spend, spend / 20, 0, datetime('now') FROM g",
        last_c = campaigns.saturating_sub(1),
        last_d = days.saturating_sub(1),
    );
    db.execute_unprepared(&sql).await?;
    Ok(())
}

/// Resident and peak memory of this process, in MiB (`/proc/self/status`; 0 elsewhere).
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let campaigns = env_or("BENCH_CAMPAIGNS", 10_000);
    let days = env_or("BENCH_DAYS", 30);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("learning.db").display());
    let db = persistence::connect(&url).await?;

    let started = Instant::now();
    fill(&db, campaigns, days).await?;
    let rows = campaigns * days * 24;
    println!("filled {rows} hourly rows ({campaigns} campaigns x {days} days) in {:.1?}", started.elapsed());
    println!("RSS {} MiB", memory_mib().0);

    let account = AccountId::parse(ACCOUNT, "account")?;
    let lookback = u32::try_from(days).unwrap_or(u32::MAX);
    for run in 1..=2 {
        let started = Instant::now();
        let (profiles, skipped) = learn_stored(&db, &account, None, 24, lookback).await?;
        let elapsed = started.elapsed();
        let confident = profiles.iter().filter(|p| p.profile.confidence >= 0.5).count();
        println!(
            "run {run}: learned {} profiles ({} skipped, {confident} with confidence >= 0.5) from {rows} rows in {elapsed:.2?} \
             ({:.0} campaigns/s, {:.1} M rows/s)",
            profiles.len(),
            skipped.len(),
            profiles.len() as f64 / elapsed.as_secs_f64(),
            rows as f64 / elapsed.as_secs_f64() / 1e6,
        );
        let (rss, peak) = memory_mib();
        println!("  RSS {rss} MiB, peak {peak} MiB");
    }
    Ok(())
}
