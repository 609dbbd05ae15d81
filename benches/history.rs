//! History benchmark: records 1,000,000 actions (2,000 hourly cycles of 500
//! decisions over 20 accounts and 1,000 campaigns) through the repository,
//! then times the typical history, approval-queue, stream and dashboard
//! queries; the dashboard first as a fresh install reads it (every action of
//! the period), then after the background step rolled the finished days up.
//! SQLite in a temporary file by default; with
//! `DATABASE_URL=postgres://...` a scratch database is created on that
//! server and dropped at the end. BENCH_DATABASE_URL names a database to
//! keep instead (one that already holds the actions is reused as it is), and
//! BENCH_ACTIONS changes the size.
//!
//! Run: `cargo bench --bench history`
//! (PostgreSQL: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench history`)
use std::time::{Duration, Instant};

use autoscaler::domain::action::{ActionMetrics, ActionStatus, ActionType, BudgetLevel, NewAction};
use autoscaler::domain::performance::Performance;
use autoscaler::persistence::dashboard::{self, Period};
use autoscaler::persistence::entity::scaling_action::{Column, Entity};
use autoscaler::persistence::history::{self, ActionFilter, Order};
use autoscaler::persistence::{self, actions, rollups};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryFilter};

const ACCOUNTS: u64 = 20;
const CAMPAIGNS_PER_ACCOUNT: u64 = 50;
const ACTIONS_PER_CYCLE: usize = 500;
const PAGE: u64 = 50;
const RUNS: usize = 30;

/// A small deterministic generator (xorshift64*), so every run records the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One decision as the engine would record it, with the default rule's mix of
/// outcomes: most maintain or scale, few pauses, some waiting for approval.
fn decision(rng: &mut Rng, campaign: u64) -> NewAction {
    let account = campaign / CAMPAIGNS_PER_ACCOUNT + 1;
    let action_type = match rng.below(100) {
        0..=39 => ActionType::Maintain,
        40..=54 => ActionType::InsufficientData,
        55..=74 => ActionType::ScaleUp,
        75..=79 => ActionType::ScaleUpAggressive,
        80..=94 => ActionType::ScaleDown,
        _ => ActionType::Pause,
    };
    let status = if !action_type.changes_budget() {
        ActionStatus::Skipped
    } else {
        match rng.below(100) {
            0..=79 => ActionStatus::Executed,
            80..=84 => ActionStatus::PendingApproval,
            85..=89 => ActionStatus::Failed,
            90..=94 => ActionStatus::Rejected,
            _ => ActionStatus::Expired,
        }
    };
    let old = 5_000 + rng.below(95_000) as i64;
    let new = match action_type {
        ActionType::ScaleUpAggressive => old * 3 / 2,
        ActionType::ScaleUp => old * 6 / 5,
        ActionType::ScaleDown => old * 7 / 10,
        ActionType::Pause => 0,
        _ => old,
    };
    let spend = rng.below(50_000) as i64;
    let roas = rng.below(500) as f64 / 100.0;
    NewAction {
        account_id: format!("act_{account}"),
        campaign_id: format!("{}", 120_000 + campaign),
        campaign_name: format!("Campaign {campaign}"),
        rule_id: Some(account as i64),
        cycle_id: None,
        action_type,
        status,
        currency: if account.is_multiple_of(5) { "EUR".into() } else { "USD".into() },
        budget_level: BudgetLevel::Campaign,
        old_budget_minor: old,
        new_budget_minor: new,
        metrics: ActionMetrics {
            figures: Performance {
                spend_minor: spend,
                revenue_minor: (spend as f64 * roas) as i64,
                impressions: 1_000 + rng.below(100_000) as i64,
                clicks: rng.below(3_000) as i64,
                conversions: rng.below(100) as i64,
                ctr_percent: rng.below(500) as f64 / 100.0,
            },
            window: "last_24_hours".into(),
            window_start: "2026-11-24".into(),
            window_end: "2026-11-25".into(),
        },
        reason: format!("{} at ROAS {roas:.2}x", action_type.as_str()),
        requires_approval: status == ActionStatus::PendingApproval,
        belief: None,
    }
}

/// Records `total` actions in hourly cycles ending now; returns the time of
/// the first cycle.
async fn fill(db: &DatabaseConnection, total: usize) -> anyhow::Result<DateTime<Utc>> {
    let cycles = total.div_ceil(ACTIONS_PER_CYCLE);
    let first_cycle = Utc::now() - TimeDelta::hours(cycles as i64);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let campaigns = ACCOUNTS * CAMPAIGNS_PER_ACCOUNT;
    let started = Instant::now();
    for cycle in 0..cycles {
        let batch: Vec<NewAction> = (0..ACTIONS_PER_CYCLE.min(total - cycle * ACTIONS_PER_CYCLE))
            .map(|i| decision(&mut rng, (cycle * ACTIONS_PER_CYCLE + i) as u64 % campaigns))
            .collect();
        let stored = actions::insert_many(db, &batch).await?;
        // The repository stamps "now"; spread the cycles over the past hours.
        let (Some(first), Some(last)) = (stored.first(), stored.last()) else { continue };
        let at = first_cycle + TimeDelta::hours(cycle as i64);
        Entity::update_many()
            .col_expr(Column::CreatedAt, Expr::value(at))
            .col_expr(Column::UpdatedAt, Expr::value(at))
            .filter(Column::Id.between(first.id, last.id))
            .exec(db)
            .await?;
        // Executed changes were confirmed within the cycle: 30 s to 10 min
        // later, by campaign, so the median has real work to do.
        Entity::update_many()
            .col_expr(Column::ExecutedAt, Expr::value(at + TimeDelta::seconds(30 + (cycle as i64 * 37) % 570)))
            .filter(Column::Id.between(first.id, last.id))
            .filter(Column::Status.eq(ActionStatus::Executed.as_str()))
            .exec(db)
            .await?;
        if (cycle + 1) % 200 == 0 {
            println!("  {:>9} actions recorded ({:.1?})", (cycle + 1) * ACTIONS_PER_CYCLE, started.elapsed());
        }
    }
    let elapsed = started.elapsed();
    println!(
        "recorded {total} actions (+ {total} events) in {elapsed:.1?}: {:.0} actions/s",
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(first_cycle)
}

/// Runs `query` RUNS times; prints the median and the slowest run.
async fn time<T, F, Fut>(name: &str, mut query: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = autoscaler::Result<T>>,
{
    let mut runs: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        last = Some(query().await?);
        runs.push(started.elapsed());
    }
    runs.sort();
    println!("{name:<58} median {:>9.3?}   max {:>9.3?}", runs[RUNS / 2], runs[RUNS - 1]);
    last.ok_or_else(|| anyhow::anyhow!("no run"))
}

/// The database of the run: BENCH_DATABASE_URL as given (kept), a scratch
/// database on the PostgreSQL server of DATABASE_URL (dropped at the end),
/// or a SQLite file in a temporary directory.
struct Scratch {
    url: String,
    /// (server URL, scratch database name) to drop at the end.
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Scratch {
    async fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
            return Ok(Self { url, postgres: None, _dir: dir });
        }
        match std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) {
            Some(admin) => {
                let name = format!("autoscaler_bench_history_{}", std::process::id());
                let conn = Database::connect(admin.as_str()).await?;
                conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
                conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                Ok(Self { url: format!("{base}/{name}"), postgres: Some((admin, name)), _dir: dir })
            }
            None => {
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
                Ok(Self { url, postgres: None, _dir: dir })
            }
        }
    }

    async fn drop(&self) {
        if let Some((admin, name)) = &self.postgres
            && let Ok(conn) = Database::connect(admin.as_str()).await
        {
            let _ = conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

/// The dashboard's two aggregates of `days` days ending `now`, as
/// `GetDashboard` runs them.
async fn dashboard(db: &DatabaseConnection, now: DateTime<Utc>, days: i64) -> autoscaler::Result<usize> {
    let start = now - TimeDelta::days(days);
    let period = Period { start, middle: start + TimeDelta::days(days) / 2, end: now, account_id: None };
    let (groups, _medians) = futures_util::future::try_join(
        dashboard::action_groups(db, &period),
        dashboard::median_response_seconds(db, &period),
    )
    .await?;
    Ok(groups.len())
}

async fn page(db: &DatabaseConnection, filter: ActionFilter, after: Option<i64>) -> autoscaler::Result<usize> {
    Ok(history::list_actions(db, &filter, after, Order::NewestFirst, PAGE + 1).await?.len())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::var("BENCH_ACTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let scratch = Scratch::new().await?;
    let url = scratch.url.clone();
    println!("history benchmark on {}", url.split(':').next().unwrap_or("?"));
    let result = run(&url, total).await;
    scratch.drop().await;
    result
}

async fn run(url: &str, total: usize) -> anyhow::Result<()> {
    let db = persistence::connect(url).await?;
    // A database kept from an earlier run (BENCH_DATABASE_URL) is reused.
    let oldest = history::list_actions(&db, &ActionFilter::default(), None, Order::OldestFirst, 1).await?;
    let recorded = history::list_actions(&db, &ActionFilter::default(), None, Order::NewestFirst, 1).await?;
    let first_cycle = match (oldest.first(), recorded.first()) {
        (Some(oldest), Some(newest)) if newest.id >= total as i64 => {
            println!("reusing {} recorded actions", newest.id);
            oldest.created_at
        }
        _ => fill(&db, total).await?,
    };
    let db = &db;
    let now = Utc::now();
    let all = ActionFilter::default();

    println!("\nqueries ({RUNS} runs each, page size {PAGE}):");
    time("history: first page, no filter", || page(db, all.clone(), None)).await?;
    // The cursor a client holds after paging 10,000 rows, and one half-way.
    let shallow_cursor = history::list_actions(db, &all, None, Order::NewestFirst, 10_000).await?.last().map(|r| r.id);
    time("history: page after 10,000 rows (token)", || page(db, all.clone(), shallow_cursor)).await?;
    let middle = Some(total as i64 / 2);
    time("history: page half-way down (token at id N/2)", || page(db, all.clone(), middle)).await?;
    let account = ActionFilter { account_id: Some("act_7".into()), ..Default::default() };
    time("history: account", || page(db, account.clone(), None)).await?;
    time("history: account, deep page (token at id N/2)", || page(db, account.clone(), middle)).await?;
    let campaign = ActionFilter { campaign_id: Some("120345".into()), ..Default::default() };
    time("history: campaign (1 of 1,000)", || page(db, campaign.clone(), None)).await?;
    let failed = ActionFilter { status: Some(ActionStatus::Failed), ..Default::default() };
    time("history: status failed", || page(db, failed.clone(), None)).await?;
    let account_pending = ActionFilter {
        account_id: Some("act_3".into()),
        status: Some(ActionStatus::PendingApproval),
        ..Default::default()
    };
    time("history: account + status pending", || page(db, account_pending.clone(), None)).await?;
    let pauses = ActionFilter { action_type: Some(ActionType::Pause), ..Default::default() };
    time("history: type pause", || page(db, pauses.clone(), None)).await?;
    let last_day = ActionFilter { created_from: Some(now - TimeDelta::days(1)), ..Default::default() };
    time("history: last 24 hours", || page(db, last_day.clone(), None)).await?;
    let old_day = ActionFilter {
        created_from: Some(first_cycle + TimeDelta::days(10)),
        created_before: Some(first_cycle + TimeDelta::days(11)),
        ..Default::default()
    };
    time("history: one day, weeks ago", || page(db, old_day.clone(), None)).await?;
    let campaign_month = ActionFilter {
        campaign_id: Some("120345".into()),
        created_from: Some(now - TimeDelta::days(30)),
        ..Default::default()
    };
    time("history: campaign + last 30 days", || page(db, campaign_month.clone(), None)).await?;
    let pending = ActionFilter { status: Some(ActionStatus::PendingApproval), ..Default::default() };
    time("approval queue: oldest pending first", || async {
        Ok(history::list_actions(db, &pending, None, Order::OldestFirst, PAGE + 1).await?.len())
    })
    .await?;

    let head = history::latest_event_sequence(db).await?;
    time("stream: 200 events after the head - 10,000", || history::events_between(db, &all, head - 10_000, head, 200))
        .await?;
    time("stream: account filter, 200 events after head - 100,000", || {
        history::events_between(db, &account, head - 100_000, head, 200)
    })
    .await?;

    // Each cycle expires approvals left undecided past their TTL (24 hours
    // by default); the recorded history has had no cycle run over it, so
    // expire them here as the cycles would have. Until then their days
    // could still change and are never rolled up.
    let stale_before = now - TimeDelta::hours(24);
    let fields = actions::TransitionFields { decided: true, ..Default::default() };
    loop {
        let stale = actions::in_status(db, ActionStatus::PendingApproval, None, Some(stale_before), 5_000).await?;
        if stale.is_empty() {
            break;
        }
        let ids: Vec<i64> = stale.iter().map(|r| r.id).collect();
        actions::transition_many(db, &ids, ActionStatus::PendingApproval, ActionStatus::Expired, &fields, None).await?;
    }
    // A kept database may hold rollups from an earlier run: start raw.
    db.execute_unprepared("DELETE FROM action_rollup_days").await?;
    db.execute_unprepared("DELETE FROM action_rollups").await?;
    db.execute_unprepared("DELETE FROM action_response_rollups").await?;
    for days in [7, 30] {
        time(&format!("dashboard: {days} days, no rollups (fresh install)"), || dashboard(db, now, days)).await?;
    }
    // The cycle's background step rolls up a month per cycle; here every
    // finished day at once.
    let started = Instant::now();
    let sealed = rollups::refresh(db, now, None, usize::MAX).await?;
    println!("rolled up {sealed} days in {:.1?}", started.elapsed());
    time("rollups: refresh with nothing new (each cycle)", || rollups::refresh(db, now, None, usize::MAX)).await?;
    for days in [7, 30] {
        time(&format!("dashboard: {days} days, rolled up"), || dashboard(db, now, days)).await?;
    }
    let start = now - TimeDelta::days(30);
    let period = Period { start, middle: start + TimeDelta::days(15), end: now, account_id: None };
    time("dashboard: 30 days, groups only (rolled up)", || dashboard::action_groups(db, &period)).await?;
    let (median, _) =
        time("dashboard: 30 days, medians only (rolled up)", || dashboard::median_response_seconds(db, &period))
            .await?;
    let (exact, _) = time("dashboard: 30 days, exact medians (every response sorted)", || {
        dashboard::exact_median_response_seconds(db, &period)
    })
    .await?;
    println!("30-day median response: {median:?} s from the buckets, {exact:?} s exactly");
    Ok(())
}
