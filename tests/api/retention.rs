//! Retention: routine decisions older than their retention leave the audit
//! trail with their events, in batches; budget changes, approvals and
//! failures stay; old snapshots go; the cycle prunes on its own.
use autoscaler::domain::action::{ActionStatus, ActionType};
use autoscaler::pb::{ActionFilter, ListActionHistoryRequest};
use autoscaler::persistence::retention::{Pruned, prune};
use chrono::{TimeDelta, Utc};
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::{backends, record_actions, sample_action, set_action_times, spawn_app};

async fn count(app: &crate::helpers::TestApp, sql: &str) -> i64 {
    let backend = app.state.db.get_database_backend();
    let row = app.state.db.query_one_raw(Statement::from_string(backend, sql)).await.expect("count").expect("row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

#[tokio::test]
async fn routine_decisions_go_after_their_retention_and_every_change_stays() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let now = Utc::now();
        // 12,000 old routine decisions (more than two batches), kinds that
        // always stay, and fresh routine ones.
        let mut batch = Vec::new();
        for i in 0..12_000 {
            let kind = if i % 2 == 0 { ActionType::Maintain } else { ActionType::InsufficientData };
            batch.push(sample_action("act_1", &format!("{i}"), kind, ActionStatus::Skipped));
        }
        for (kind, status) in [
            (ActionType::ScaleUp, ActionStatus::Executed),
            (ActionType::ScaleDown, ActionStatus::Failed),
            (ActionType::ScaleUp, ActionStatus::Rejected),
            (ActionType::Pause, ActionStatus::Expired),
            (ActionType::ScaleUp, ActionStatus::PendingApproval),
        ] {
            batch.push(sample_action("act_1", "90", kind, status));
        }
        let old = record_actions(&app.state, &batch).await;
        // Ages them in one statement (12,000 single updates would be slow).
        let backend_kind = app.state.db.get_database_backend();
        let aged = Statement::from_sql_and_values(
            backend_kind,
            match backend_kind {
                sea_orm::DbBackend::Postgres => "UPDATE scaling_actions SET created_at = $1",
                _ => "UPDATE scaling_actions SET created_at = ?",
            },
            [(now - TimeDelta::days(40)).into()],
        );
        app.state.db.execute_raw(aged).await.expect("aged");
        let fresh =
            record_actions(&app.state, &[sample_action("act_1", "91", ActionType::Maintain, ActionStatus::Skipped)])
                .await;
        set_action_times(&app.state, fresh[0].id, now - TimeDelta::days(1), None).await;
        assert_eq!(count(&app, "SELECT COUNT(*) FROM action_events").await, 12_006);

        // A pass bounded at 5,000 rows stops after one batch; the next ones finish.
        let first = prune(&app.state.db, Some(now - TimeDelta::days(30)), None, 5_000).await.expect("pruned");
        assert_eq!((first.actions, first.events), (5_000, 5_000), "{backend:?}");
        let rest = prune(&app.state.db, Some(now - TimeDelta::days(30)), None, 1_000_000).await.expect("pruned");
        assert_eq!((rest.actions, rest.events, rest.snapshots), (7_000, 7_000, 0), "{backend:?}");
        assert_eq!(
            prune(&app.state.db, Some(now - TimeDelta::days(30)), None, 1_000_000).await.expect("again"),
            Pruned::default()
        );

        // What stays: every change, approval and failure, and the fresh decision.
        let mut client = app.approvals.clone();
        let listed = client
            .list_action_history(ListActionHistoryRequest {
                filter: Some(ActionFilter::default()),
                page_size: 100,
                page_token: String::new(),
            })
            .await
            .expect("history")
            .into_inner()
            .actions;
        let mut kept: Vec<i64> = listed.iter().map(|a| a.id).collect();
        kept.sort();
        let mut expected: Vec<i64> = old[12_000..].iter().map(|r| r.id).chain([fresh[0].id]).collect();
        expected.sort();
        assert_eq!(kept, expected, "{backend:?}");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM action_events").await, 6);
    }
}

#[tokio::test]
async fn old_snapshots_go_and_the_cycle_prunes_by_itself() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        // A real cycle writes snapshots (the embedded sandbox's accounts).
        let mut client = app.autoscaler.clone();
        let run =
            autoscaler::pb::RunCycleRequest { mode: autoscaler::pb::CycleMode::Optimize as i32, ..Default::default() };
        let first = client.run_cycle(run.clone()).await.expect("cycle").into_inner().cycle_id;
        let snapshots = count(&app, "SELECT COUNT(*) FROM performance_snapshots").await;
        assert!(snapshots > 0);
        let backend_kind = app.state.db.get_database_backend();
        let age = |table: &str, column: &str, days: i64| {
            Statement::from_sql_and_values(
                backend_kind,
                match backend_kind {
                    sea_orm::DbBackend::Postgres => format!("UPDATE {table} SET {column} = $1"),
                    _ => format!("UPDATE {table} SET {column} = ?"),
                },
                [(Utc::now() - TimeDelta::days(days)).into()],
            )
        };
        app.state.db.execute_raw(age("performance_snapshots", "taken_at", 91)).await.expect("aged");
        app.state.db.execute_raw(age("scaling_actions", "created_at", 31)).await.expect("aged");
        let routine = count(&app, "SELECT COUNT(*) FROM scaling_actions WHERE status = 'skipped'").await;
        let kept = count(&app, "SELECT COUNT(*) FROM scaling_actions WHERE status <> 'skipped'").await;
        assert!(routine > 0, "{backend:?}: the sandbox's first cycle holds some campaigns");

        // The next cycle (defaults: 30 days of routine decisions, 90 of
        // snapshots) prunes what the first one wrote and keeps the rest.
        let second = client.run_cycle(run).await.expect("cycle").into_inner().cycle_id;
        assert_ne!(first, second);
        let of_cycle =
            |table: &str, id: i64, extra: &str| format!("SELECT COUNT(*) FROM {table} WHERE cycle_id = {id}{extra}");
        assert_eq!(count(&app, &of_cycle("performance_snapshots", first, "")).await, 0, "{backend:?}");
        assert!(count(&app, &of_cycle("performance_snapshots", second, "")).await > 0, "{backend:?}");
        assert_eq!(count(&app, &of_cycle("scaling_actions", first, " AND status = 'skipped'")).await, 0, "{backend:?}");
        assert_eq!(
            count(&app, &of_cycle("scaling_actions", first, " AND status <> 'skipped'")).await,
            kept,
            "{backend:?}"
        );
    }
}
