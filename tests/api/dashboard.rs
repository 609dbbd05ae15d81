//! GetDashboard: every figure checked against values computed by hand from a
//! small fixture, overall and per account, on each backend; and the daily
//! rollups checked against the raw aggregate over a varied history (several
//! weeks, statuses decided after creation, retention deleting routine rows).
use autoscaler::domain::action::{ActionStatus, ActionType, NewAction};
use autoscaler::grpc::dashboard::get_dashboard;
use autoscaler::pb::{self, CurrencyAmount, DashboardFigures, GetDashboardRequest};
use autoscaler::persistence::actions::{TransitionFields, transition_many};
use autoscaler::persistence::dashboard::{
    ActionGroup, MEDIAN_ERROR, Period, action_groups, exact_median_response_seconds, median_response_seconds,
    raw_action_groups, raw_median_response_seconds,
};
use autoscaler::persistence::{retention, rollups};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::helpers::{TestApp, backends, record_actions, sample_action, set_action_times, spawn_app};

/// One fixture row: what was decided, when (days ago), and how long its
/// execution took (seconds), if it was executed.
struct Row {
    account: &'static str,
    currency: &'static str,
    action_type: ActionType,
    status: ActionStatus,
    requires_approval: bool,
    budgets: (i64, i64),
    spend_revenue: (i64, i64),
    days_ago: f64,
    response_seconds: Option<i64>,
}

// A fixture row reads best as one positional line per action.
#[allow(clippy::too_many_arguments)]
fn row(
    account: &'static str,
    currency: &'static str,
    action_type: ActionType,
    status: ActionStatus,
    requires_approval: bool,
    budgets: (i64, i64),
    spend_revenue: (i64, i64),
    days_ago: f64,
    response_seconds: Option<i64>,
) -> Row {
    Row {
        account,
        currency,
        action_type,
        status,
        requires_approval,
        budgets,
        spend_revenue,
        days_ago,
        response_seconds,
    }
}

fn fixture() -> Vec<Row> {
    use ActionStatus as S;
    use ActionType as T;
    vec![
        // act_1, USD
        row("act_1", "USD", T::ScaleUp, S::Executed, false, (10_000, 12_000), (5_000, 20_000), 5.0, Some(60)),
        row(
            "act_1",
            "USD",
            T::ScaleUpAggressive,
            S::Executed,
            true,
            (20_000, 30_000),
            (10_000, 45_000),
            1.0,
            Some(300),
        ),
        row("act_1", "USD", T::Pause, S::Executed, false, (15_000, 0), (15_000, 12_000), 6.0, Some(120)),
        row("act_1", "USD", T::ScaleDown, S::PendingApproval, true, (50_000, 35_000), (8_000, 9_600), 0.1, None),
        row("act_1", "USD", T::Maintain, S::Skipped, false, (10_000, 10_000), (0, 0), 2.0, None),
        row("act_1", "USD", T::ScaleDown, S::Failed, false, (10_000, 7_000), (4_000, 2_000), 1.0, None),
        // Outside the 7-day period.
        row("act_1", "USD", T::ScaleUp, S::Executed, false, (10_000, 90_000), (1_000, 9_000), 10.0, Some(5)),
        // act_2, EUR
        row("act_2", "EUR", T::ScaleDown, S::Executed, false, (40_000, 28_000), (9_000, 11_700), 3.0, Some(30)),
        row("act_2", "EUR", T::ScaleUp, S::Rejected, true, (10_000, 12_000), (1_000, 3_100), 4.0, None),
        row("act_2", "EUR", T::Pause, S::Executed, false, (5_000, 0), (2_000, 1_000), 1.0, Some(90)),
    ]
}

async fn record_fixture(app: &TestApp) {
    let rows = fixture();
    let actions: Vec<NewAction> = rows
        .iter()
        .map(|r| {
            let mut a = sample_action(r.account, "1", r.action_type, r.status);
            a.currency = r.currency.into();
            a.requires_approval = r.requires_approval;
            (a.old_budget_minor, a.new_budget_minor) = r.budgets;
            (a.metrics.figures.spend_minor, a.metrics.figures.revenue_minor) = r.spend_revenue;
            a
        })
        .collect();
    let stored = record_actions(&app.state, &actions).await;
    let now = Utc::now();
    for (record, r) in stored.iter().zip(&rows) {
        let created = now - TimeDelta::seconds((r.days_ago * 86_400.0) as i64);
        let executed = r.response_seconds.map(|s| created + TimeDelta::seconds(s));
        set_action_times(&app.state, record.id, created, executed).await;
    }
}

fn money(pairs: &[(&str, i64)]) -> Vec<CurrencyAmount> {
    pairs.iter().map(|(c, a)| CurrencyAmount { currency: (*c).into(), amount_minor: *a }).collect()
}

fn by_type(counts: [i64; 6]) -> Vec<pb::ActionTypeCount> {
    use pb::ActionType as T;
    [T::ScaleUpAggressive, T::ScaleUp, T::ScaleDown, T::Pause, T::Maintain, T::InsufficientData]
        .into_iter()
        .zip(counts)
        .map(|(t, count)| pb::ActionTypeCount { action_type: t as i32, count })
        .collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-6, "{what}: {actual} != {expected}");
}

/// Compares everything, floats with a tolerance.
fn assert_figures(actual: &DashboardFigures, expected: &DashboardFigures, scope: &str) {
    let floats = [
        ("execution rate", actual.execution_rate_percent, expected.execution_rate_percent),
        ("average roas", actual.average_roas, expected.average_roas),
        ("automation rate", actual.automation_rate_percent, expected.automation_rate_percent),
        ("median response", actual.median_response_seconds, expected.median_response_seconds),
    ];
    for (what, a, e) in floats {
        assert_close(a, e, &format!("{scope} {what}"));
    }
    let exact = |f: &DashboardFigures| DashboardFigures {
        execution_rate_percent: 0.0,
        average_roas: 0.0,
        automation_rate_percent: 0.0,
        median_response_seconds: 0.0,
        ..f.clone()
    };
    assert_eq!(exact(actual), exact(expected), "{scope}");
}

fn act_1() -> DashboardFigures {
    DashboardFigures {
        total_actions: 6,
        executed: 3,
        pending: 1,
        rejected: 0,
        failed: 1,
        // 3 executed of 5 budget-changing (the maintain does not count).
        execution_rate_percent: 60.0,
        actions_by_type: by_type([1, 1, 2, 1, 1, 0]),
        total_increase: money(&[("USD", 2_000 + 10_000)]),
        total_decrease: money(&[("USD", 15_000)]),
        net_change: money(&[("USD", -3_000)]),
        // (4.0 + 4.5 + 0.8 + 1.2 + 0.5) / 5; the maintain had no spend.
        average_roas: 2.2,
        revenue_tracked: money(&[("USD", 20_000 + 45_000 + 12_000 + 9_600 + 2_000)]),
        // Scale-up and pause executed without approval: 2 of 5.
        automation_rate_percent: 40.0,
        low_roas_spend_before: money(&[("USD", 15_000)]),
        low_roas_spend_after: money(&[("USD", 4_000)]),
        // 60, 120, 300.
        median_response_seconds: 120.0,
    }
}

fn act_2() -> DashboardFigures {
    DashboardFigures {
        total_actions: 3,
        executed: 2,
        pending: 0,
        rejected: 1,
        failed: 0,
        execution_rate_percent: 200.0 / 3.0,
        actions_by_type: by_type([0, 1, 1, 1, 0, 0]),
        total_increase: money(&[("EUR", 0)]),
        total_decrease: money(&[("EUR", 12_000 + 5_000)]),
        net_change: money(&[("EUR", -17_000)]),
        average_roas: (1.3 + 3.1 + 0.5) / 3.0,
        revenue_tracked: money(&[("EUR", 11_700 + 3_100 + 1_000)]),
        automation_rate_percent: 200.0 / 3.0,
        low_roas_spend_before: money(&[("EUR", 0)]),
        low_roas_spend_after: money(&[("EUR", 2_000)]),
        // 30 and 90: the mean of the two middle values.
        median_response_seconds: 60.0,
    }
}

fn overall() -> DashboardFigures {
    DashboardFigures {
        total_actions: 9,
        executed: 5,
        pending: 1,
        rejected: 1,
        failed: 1,
        execution_rate_percent: 62.5,
        actions_by_type: by_type([1, 2, 3, 2, 1, 0]),
        // Currencies are listed side by side, never added.
        total_increase: money(&[("EUR", 0), ("USD", 12_000)]),
        total_decrease: money(&[("EUR", 17_000), ("USD", 15_000)]),
        net_change: money(&[("EUR", -17_000), ("USD", -3_000)]),
        average_roas: (11.0 + 4.9) / 8.0,
        revenue_tracked: money(&[("EUR", 15_800), ("USD", 88_600)]),
        automation_rate_percent: 50.0,
        low_roas_spend_before: money(&[("EUR", 0), ("USD", 15_000)]),
        low_roas_spend_after: money(&[("EUR", 2_000), ("USD", 4_000)]),
        // 30, 60, 90, 120, 300.
        median_response_seconds: 90.0,
    }
}

#[tokio::test]
async fn dashboard_figures_match_hand_computed_values() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        record_fixture(&app).await;
        let board = get_dashboard(&app.state, GetDashboardRequest { days: 7, account_id: String::new() })
            .await
            .expect("dashboard");
        let scope = format!("{backend:?} overall");
        assert_figures(board.overall.as_ref().expect("overall"), &overall(), &scope);
        assert_eq!(board.by_account.len(), 2);
        assert_figures(&board.by_account["act_1"], &act_1(), &format!("{backend:?} act_1"));
        assert_figures(&board.by_account["act_2"], &act_2(), &format!("{backend:?} act_2"));
        let (start, end) = (board.start_time.expect("start"), board.end_time.expect("end"));
        assert_eq!(end.seconds - start.seconds, 7 * 86_400);

        let one = get_dashboard(&app.state, GetDashboardRequest { days: 7, account_id: "act_2".into() })
            .await
            .expect("one account");
        assert_figures(one.overall.as_ref().expect("overall"), &act_2(), &format!("{backend:?} act_2 only"));
        assert_eq!(one.by_account.keys().collect::<Vec<_>>(), ["act_2"]);

        // A longer period takes in the old action too.
        let month = get_dashboard(&app.state, GetDashboardRequest { days: 30, account_id: String::new() })
            .await
            .expect("30 days");
        let month = month.overall.expect("overall");
        assert_eq!((month.total_actions, month.executed), (10, 6));
        assert_eq!(month.total_increase, money(&[("EUR", 0), ("USD", 12_000 + 80_000)]));
    }
}

#[tokio::test]
async fn dashboard_validates_days_and_account() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        record_fixture(&app).await;
        for (days, account, field) in [(-1, "", "days"), (367, "", "days"), (7, "123", "account_id")] {
            let err = get_dashboard(&app.state, GetDashboardRequest { days, account_id: account.into() })
                .await
                .expect_err("invalid");
            assert_eq!(crate::helpers::invalid_field(&tonic::Status::from(err)), field, "{backend:?}");
        }
        let empty = get_dashboard(&app.state, GetDashboardRequest { days: 0, account_id: "act_9".into() })
            .await
            .expect("no actions");
        let (start, end) = (empty.start_time.expect("start"), empty.end_time.expect("end"));
        assert_eq!(end.seconds - start.seconds, 7 * 86_400, "0 days means 7");
        let figures = empty.overall.expect("overall");
        assert_eq!(
            (figures.total_actions, figures.execution_rate_percent, figures.median_response_seconds),
            (0, 0.0, 0.0)
        );
        assert!(empty.by_account.is_empty() && figures.total_increase.is_empty());
    }
}

#[tokio::test]
async fn get_dashboard_over_grpc_reports_the_same_figures_and_validates() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        record_fixture(&app).await;
        let mut client = app.autoscaler.clone();
        let board = client
            .get_dashboard(GetDashboardRequest { days: 0, account_id: String::new() })
            .await
            .expect("dashboard")
            .into_inner();
        assert_figures(board.overall.as_ref().expect("overall"), &overall(), &format!("{backend:?} over gRPC"));
        assert_figures(&board.by_account["act_1"], &act_1(), &format!("{backend:?} act_1 over gRPC"));
        for (days, account, field) in [(-1, "", "days"), (367, "", "days"), (7, "act_", "account_id")] {
            let err = client
                .get_dashboard(GetDashboardRequest { days, account_id: account.into() })
                .await
                .expect_err("invalid");
            assert_eq!(crate::helpers::invalid_field(&err), field, "{backend:?}");
        }
    }
}

/// A varied history: 240 actions over 40 days in three accounts and two
/// currencies, every type, every final status, and pending approvals in old
/// days (decided later). Times are whole minutes off the hour, so no action
/// sits on a period's edge or middle while a test runs.
async fn record_history(app: &TestApp, now: DateTime<Utc>) -> Vec<i64> {
    use ActionStatus as S;
    let mut actions = Vec::new();
    for i in 0..240_usize {
        let account = ["act_1", "act_2", "act_3"][i % 3];
        let action_type = ActionType::ALL[i % 6];
        let status = if !action_type.changes_budget() {
            S::Skipped
        } else {
            [S::Executed, S::Executed, S::Failed, S::Rejected, S::Expired, S::PendingApproval][(i / 6) % 6]
        };
        let mut a = sample_action(account, &format!("{}", 100 + i % 17), action_type, status);
        a.currency = if account == "act_2" { "EUR".into() } else { "USD".into() };
        a.requires_approval = status == S::PendingApproval || i % 4 == 0;
        a.old_budget_minor = 10_000 + (i as i64 * 137) % 9_000;
        a.metrics.figures.spend_minor = if i % 7 == 0 { 0 } else { 1_000 + (i as i64 * 53) % 4_000 };
        let roas = (i % 11) as f64 * 0.31;
        a.metrics.figures.revenue_minor = (a.metrics.figures.spend_minor as f64 * roas) as i64;
        actions.push(a);
    }
    let stored = record_actions(&app.state, &actions).await;
    for (i, record) in stored.iter().enumerate() {
        let created = now - TimeDelta::hours(4 * i as i64 + 1) - TimeDelta::minutes((i % 50) as i64 + 1);
        let executed = (record.status == ActionStatus::Executed).then(|| created + TimeDelta::seconds(30 + i as i64));
        set_action_times(&app.state, record.id, created, executed).await;
    }
    stored.iter().filter(|r| r.status == ActionStatus::PendingApproval).map(|r| r.id).collect()
}

fn sorted(mut groups: Vec<ActionGroup>) -> Vec<ActionGroup> {
    groups.sort_by(|a, b| {
        (&a.account_id, &a.currency, &a.action_type, &a.status).cmp(&(
            &b.account_id,
            &b.currency,
            &b.action_type,
            &b.status,
        ))
    });
    groups
}

/// The dashboard's groups equal the raw aggregate for periods of 1 to 45 days
/// ending `now`, overall and for one account: counts and money exactly, the
/// ROAS sum up to float rounding (it is added in another order).
async fn assert_groups_match_raw(db: &DatabaseConnection, now: DateTime<Utc>, when: &str) {
    for days in [1, 3, 7, 30, 45] {
        for account_id in [None, Some("act_2")] {
            let length = TimeDelta::days(days);
            let start = now - length;
            let period = Period { start, middle: start + length / 2, end: now, account_id };
            let served = sorted(action_groups(db, &period).await.expect("groups"));
            let raw = sorted(raw_action_groups(db, &period).await.expect("raw groups"));
            let scope = format!("{when}: {days} days, {account_id:?}");
            assert!(!raw.is_empty(), "{scope}: the fixture has actions in every period");
            assert_eq!(served.len(), raw.len(), "{scope}");
            for (s, r) in served.iter().zip(&raw) {
                assert_close(s.roas_sum, r.roas_sum, &scope);
                assert_eq!(
                    ActionGroup { roas_sum: 0.0, ..s.clone() },
                    ActionGroup { roas_sum: 0.0, ..r.clone() },
                    "{scope}"
                );
            }
        }
    }
}

/// The dashboard's median response times equal those counted from every
/// executed action in the same buckets (rollups or not), and lie within
/// [`MEDIAN_ERROR`] (plus a millisecond of rounding) of the exact medians,
/// for the same periods as [`assert_groups_match_raw`].
async fn assert_medians_match_raw(db: &DatabaseConnection, now: DateTime<Utc>, when: &str) {
    for days in [1, 3, 7, 30, 45] {
        for account_id in [None, Some("act_2")] {
            let length = TimeDelta::days(days);
            let start = now - length;
            let period = Period { start, middle: start + length / 2, end: now, account_id };
            let scope = format!("{when}: {days} days, {account_id:?}");
            let served = median_response_seconds(db, &period).await.expect("medians");
            let raw = raw_median_response_seconds(db, &period).await.expect("raw medians");
            let (exact, exact_by_account) = exact_median_response_seconds(db, &period).await.expect("exact");
            assert_eq!(served, raw, "{scope}");
            let mut pairs = vec![(served.0, exact)];
            let mut accounts: Vec<&String> = exact_by_account.keys().collect();
            accounts.sort();
            assert_eq!(served.1.len(), accounts.len(), "{scope}");
            for account in accounts {
                pairs.push((served.1.get(account).copied(), exact_by_account.get(account).copied()));
            }
            for (served, exact) in pairs {
                let (Some(served), Some(exact)) = (served, exact) else {
                    assert_eq!(served.is_some(), exact.is_some(), "{scope}");
                    continue;
                };
                assert!((served - exact).abs() <= exact * MEDIAN_ERROR + 0.001, "{scope}: {served} vs {exact}");
            }
        }
    }
}

async fn grpc_dashboards(app: &TestApp) -> Vec<pb::GetDashboardResponse> {
    let mut client = app.autoscaler.clone();
    let mut boards = Vec::new();
    for (days, account) in [(7, ""), (30, ""), (30, "act_3")] {
        let request = GetDashboardRequest { days, account_id: account.into() };
        boards.push(client.get_dashboard(request).await.expect("dashboard").into_inner());
    }
    boards
}

fn assert_same_dashboards(actual: &[pb::GetDashboardResponse], expected: &[pb::GetDashboardResponse], when: &str) {
    for (a, e) in actual.iter().zip(expected) {
        let accounts = |board: &pb::GetDashboardResponse| {
            let mut keys: Vec<String> = board.by_account.keys().cloned().collect();
            keys.sort();
            keys
        };
        let scope = format!("{when}: {:?}", accounts(e));
        assert_figures(a.overall.as_ref().expect("overall"), e.overall.as_ref().expect("overall"), &scope);
        assert_eq!(accounts(a), accounts(e), "{scope}");
        for (account, figures) in &e.by_account {
            assert_figures(&a.by_account[account], figures, &format!("{scope} {account}"));
        }
    }
}

#[tokio::test]
async fn rolled_up_days_answer_exactly_what_the_actions_say() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let db = &app.state.db;
        let now = Utc::now();
        let pending = record_history(&app, now).await;
        assert!(!pending.is_empty());

        // A fresh install has no rollups: every day is read raw.
        assert_groups_match_raw(db, now, &format!("{backend:?} fresh")).await;
        assert_medians_match_raw(db, now, &format!("{backend:?} fresh")).await;
        let fresh = grpc_dashboards(&app).await;

        // Days with a pending approval stay open; the others are sealed.
        let sealed = rollups::refresh(db, now, None, usize::MAX).await.expect("rolled up");
        assert!(sealed >= 20, "{backend:?}: {sealed} days sealed");
        assert_eq!(rollups::refresh(db, now, None, usize::MAX).await.expect("again"), 0, "{backend:?}");
        assert_groups_match_raw(db, now, &format!("{backend:?} rolled up")).await;
        assert_medians_match_raw(db, now, &format!("{backend:?} rolled up")).await;
        // The equality above is served from the rollups: skewing them shows.
        let skew = |by: i64| format!("UPDATE action_rollups SET actions = actions + {by}");
        let month =
            Period { start: now - TimeDelta::days(30), middle: now - TimeDelta::days(15), end: now, account_id: None };
        let total = |groups: Vec<ActionGroup>| groups.iter().map(|g| g.actions).sum::<i64>();
        db.execute_unprepared(&skew(1_000)).await.expect("skewed");
        let skewed = total(action_groups(db, &month).await.expect("groups"));
        db.execute_unprepared(&skew(-1_000)).await.expect("restored");
        assert!(skewed >= total(raw_action_groups(db, &month).await.expect("raw")) + 20 * 1_000, "{backend:?}");
        // So are the medians: a day's response times an hour longer show.
        let hour_longer =
            |by: i64| format!("UPDATE action_response_rollups SET response_ms = response_ms + {by} * responses");
        db.execute_unprepared(&hour_longer(3_600_000)).await.expect("skewed");
        let skewed = median_response_seconds(db, &month).await.expect("medians").0.unwrap_or_default();
        db.execute_unprepared(&hour_longer(-3_600_000)).await.expect("restored");
        let raw = raw_median_response_seconds(db, &month).await.expect("raw medians").0.unwrap_or_default();
        assert!(skewed >= raw + 3_000.0, "{backend:?}: {skewed} vs {raw}");
        // The database buckets as `response_bucket` says: each stored bucket
        // starts a bucket, and the mean of its times lies in it.
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT bucket_ms, responses, response_ms FROM action_response_rollups",
            ))
            .await
            .expect("response rollups");
        assert!(!rows.is_empty(), "{backend:?}");
        for row in rows {
            let bucket: i64 = row.try_get("", "bucket_ms").expect("bucket");
            let (count, sum): (i64, i64) =
                (row.try_get("", "responses").expect("count"), row.try_get("", "response_ms").expect("sum"));
            assert_eq!(rollups::response_bucket(bucket), bucket, "{backend:?}");
            assert_eq!(rollups::response_bucket(sum / count), bucket, "{backend:?}: {count} times, {sum} ms");
        }
        assert_same_dashboards(&grpc_dashboards(&app).await, &fresh, &format!("{backend:?} over gRPC"));

        // Approvals decided days after creation: their days are sealed only now.
        let fields = TransitionFields { decided_by: Some("ops".into()), decided: true, ..Default::default() };
        let (rejected, approved) = pending.split_at(pending.len() / 2);
        transition_many(db, rejected, ActionStatus::PendingApproval, ActionStatus::Rejected, &fields, None)
            .await
            .expect("rejected");
        transition_many(db, approved, ActionStatus::PendingApproval, ActionStatus::Approved, &fields, None)
            .await
            .expect("approved");
        assert_groups_match_raw(db, now, &format!("{backend:?} decided")).await;
        assert_medians_match_raw(db, now, &format!("{backend:?} decided")).await;
        let later = rollups::refresh(db, now, None, usize::MAX).await.expect("rolled up");
        assert!(later >= 1, "{backend:?}: the days of rejected approvals are sealed now");
        assert_groups_match_raw(db, now, &format!("{backend:?} decided, rolled up")).await;
        assert_medians_match_raw(db, now, &format!("{backend:?} decided, rolled up")).await;

        // Retention deletes routine rows from sealed days: the dashboard
        // follows at once, and again once those days are rolled up anew.
        let cutoff = now - TimeDelta::days(20);
        let pruned = retention::prune(db, Some(cutoff), None, 1_000_000).await.expect("pruned");
        assert!(pruned.actions > 0, "{backend:?}");
        assert_groups_match_raw(db, now, &format!("{backend:?} pruned")).await;
        assert_medians_match_raw(db, now, &format!("{backend:?} pruned")).await;
        assert!(rollups::refresh(db, now, Some(cutoff), usize::MAX).await.expect("rolled up") >= 1);
        assert_groups_match_raw(db, now, &format!("{backend:?} pruned, rolled up")).await;
        assert_medians_match_raw(db, now, &format!("{backend:?} pruned, rolled up")).await;
    }
}

/// The response rollups and the index review go down and up again on both
/// backends: `down` restores the dropped indexes, `up` drops them anew and
/// starts the rollups over.
#[tokio::test]
async fn the_index_review_and_response_rollups_migrate_down_and_up() {
    use migration::{Migrator, MigratorTrait};
    for backend in backends() {
        let test_db = crate::helpers::TestDb::create(backend).await;
        let db = autoscaler::persistence::connect(&test_db.url).await.expect("connected");
        let index_names = |sql: &str| sea_orm::Statement::from_string(db.get_database_backend(), sql.to_owned());
        let list = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => "SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'",
            _ => "SELECT name FROM sqlite_master WHERE type = 'index'",
        };
        let indexes = || async {
            let rows = db.query_all_raw(index_names(list)).await.expect("indexes");
            rows.iter().map(|r| r.try_get::<String>("", "name").expect("name")).collect::<Vec<_>>()
        };
        let dropped = ["ix_actions_claim", "ix_actions_campaign_executed", "ix_actions_campaign_created"];
        assert!(!indexes().await.iter().any(|i| dropped.contains(&i.as_str())), "{backend:?}");
        Migrator::down(&db, Some(2)).await.expect("down");
        let before = indexes().await;
        for name in dropped.iter().chain(&["ix_snapshots_campaign_taken"]) {
            assert!(before.iter().any(|i| i == name), "{backend:?}: {name} restored");
        }
        assert!(db.execute_unprepared("SELECT 1 FROM action_response_rollups").await.is_err(), "{backend:?}");
        Migrator::up(&db, None).await.expect("up again");
        assert!(!indexes().await.iter().any(|i| dropped.contains(&i.as_str())), "{backend:?}");
        db.execute_unprepared("SELECT 1 FROM action_response_rollups").await.expect("table again");
    }
}
