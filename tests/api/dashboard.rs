//! GetDashboard: every figure checked against values computed by hand from a
//! small fixture, overall and per account, on each backend.
use autoscaler::domain::action::{ActionStatus, ActionType, NewAction};
use autoscaler::grpc::dashboard::get_dashboard;
use autoscaler::pb::{self, CurrencyAmount, DashboardFigures, GetDashboardRequest};
use chrono::{TimeDelta, Utc};

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
    spend_revenue_roas: (i64, i64, f64),
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
    spend_revenue_roas: (i64, i64, f64),
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
        spend_revenue_roas,
        days_ago,
        response_seconds,
    }
}

fn fixture() -> Vec<Row> {
    use ActionStatus as S;
    use ActionType as T;
    vec![
        // act_1, USD
        row("act_1", "USD", T::ScaleUp, S::Executed, false, (10_000, 12_000), (5_000, 20_000, 4.0), 5.0, Some(60)),
        row(
            "act_1",
            "USD",
            T::ScaleUpAggressive,
            S::Executed,
            true,
            (20_000, 30_000),
            (10_000, 45_000, 4.5),
            1.0,
            Some(300),
        ),
        row("act_1", "USD", T::Pause, S::Executed, false, (15_000, 0), (15_000, 12_000, 0.8), 6.0, Some(120)),
        row("act_1", "USD", T::ScaleDown, S::PendingApproval, true, (50_000, 35_000), (8_000, 9_600, 1.2), 0.1, None),
        row("act_1", "USD", T::Maintain, S::Skipped, false, (10_000, 10_000), (0, 0, 0.0), 2.0, None),
        row("act_1", "USD", T::ScaleDown, S::Failed, false, (10_000, 7_000), (4_000, 2_000, 0.5), 1.0, None),
        // Outside the 7-day period.
        row("act_1", "USD", T::ScaleUp, S::Executed, false, (10_000, 90_000), (1_000, 9_000, 9.0), 10.0, Some(5)),
        // act_2, EUR
        row("act_2", "EUR", T::ScaleDown, S::Executed, false, (40_000, 28_000), (9_000, 11_700, 1.3), 3.0, Some(30)),
        row("act_2", "EUR", T::ScaleUp, S::Rejected, true, (10_000, 12_000), (1_000, 3_100, 3.1), 4.0, None),
        row("act_2", "EUR", T::Pause, S::Executed, false, (5_000, 0), (2_000, 1_000, 0.5), 1.0, Some(90)),
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
            (a.metrics.spend_minor, a.metrics.revenue_minor, a.metrics.roas) = r.spend_revenue_roas;
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
