//! TimeOptimizationService over gRPC on both databases: learning from the
//! cycle's snapshots (known patterns, flat campaigns, weekdays, daylight
//! saving, revisions, gaps), schedules, reports, validation, and the learn
//! cycle.
use autoscaler::config::Settings;
use autoscaler::domain::action::ActionMetrics;
use autoscaler::domain::performance::Performance;
use autoscaler::domain::time_profile::day_hours;
use autoscaler::pb;
use autoscaler::persistence::snapshots::{self, NewSnapshot};
use autoscaler::platform::sandbox::SandboxAccounts;
use chrono::{Datelike, NaiveDate, TimeDelta, Timelike};
use chrono_tz::Tz;
use meta_sandbox::{AccountSpec, CampaignSpec, RunningSandbox, Sandbox, ScriptedMetrics};
use tonic::Code;

use crate::helpers::{Backend, TestApp, backends, invalid_field, spawn_app_with};

const ACCOUNT: &str = "act_7001";
const PEAK: &str = "9000001";
const FLAT: &str = "9000002";

/// A sandbox with one account in `tz` and `campaigns` CBO campaigns of $240 a day.
fn sandbox(tz: &str, campaigns: &[&str]) -> Sandbox {
    let sandbox = Sandbox::empty();
    let account = AccountSpec {
        id: ACCOUNT.into(),
        name: "Time account".into(),
        currency: "USD".into(),
        timezone_name: tz.into(),
    };
    sandbox.add_account(account).expect("account");
    for id in campaigns {
        let metrics = ScriptedMetrics { spend_minor: 1, impressions: 1, ..ScriptedMetrics::default() };
        sandbox
            .add_campaign(ACCOUNT, CampaignSpec::scripted(id, &format!("Campaign {id}"), 24_000, metrics))
            .expect("campaign");
    }
    sandbox
}

/// The application pointed at `sandbox` as if it were Meta, after `adjust`.
async fn spawn(backend: Backend, sandbox: &Sandbox, adjust: impl FnOnce(&mut Settings)) -> (TestApp, RunningSandbox) {
    let running = sandbox.start().await.expect("sandbox starts");
    let accounts = sandbox.account_ids();
    let app = spawn_app_with(backend, |settings| {
        settings.meta.access_token = Some(running.access_token().into());
        settings.meta.graph_url = running.base_url().to_string();
        settings.meta.account_ids = accounts;
        // These tests learn from the snapshots they insert.
        settings.engine.time.backfill_days = 0;
        adjust(settings);
    })
    .await;
    (app, running)
}

/// A tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// A cosine ROAS effect peaking at `peak` with swing `strength`.
fn peak_at(peak: u32, strength: f64) -> impl Fn(u32, u32) -> f64 {
    move |_, hour| 1.0 + strength * ((f64::from(hour) - f64::from(peak)) * std::f64::consts::TAU / 24.0).cos()
}

/// The cycle's hourly "today" readings of `campaign` from `first` for `days`
/// days: a reading 30 s after every local hour but the last of each day
/// (taken after midnight, it belongs to the next day), spend shaped like a
/// day's pacing with noise, ROAS 3 x `effect(weekday, hour)` with noise.
fn readings(
    tz: Tz,
    campaign: &str,
    first: NaiveDate,
    days: u32,
    seed: u64,
    effect: impl Fn(u32, u32) -> f64,
) -> Vec<NewSnapshot> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for d in 0..days {
        let day = first + TimeDelta::days(i64::from(d));
        let weekday = day.weekday().num_days_from_sunday();
        let (mut spend, mut revenue, mut clicks) = (0_i64, 0_i64, 0_i64);
        let hours = day_hours(tz, day);
        for start in &hours[..hours.len() - 1] {
            let hour = start.with_timezone(&tz).hour();
            let s = (1_000.0 * (0.4 + f64::from(hour) / 23.0) * (0.85 + 0.3 * rng.unit())).round();
            spend += s as i64;
            revenue += (s * 3.0 * effect(weekday, hour) * (0.85 + 0.3 * rng.unit())).round() as i64;
            clicks += (s / 20.0).round() as i64;
            out.push(snapshot(campaign, *start + TimeDelta::seconds(3_630), day, spend, revenue, clicks));
        }
    }
    out
}

fn snapshot(
    campaign: &str,
    taken_at: chrono::DateTime<chrono::Utc>,
    day: NaiveDate,
    spend: i64,
    revenue: i64,
    clicks: i64,
) -> NewSnapshot {
    NewSnapshot {
        account_id: ACCOUNT.into(),
        campaign_id: campaign.into(),
        cycle_id: None,
        taken_at,
        currency: "USD".into(),
        metrics: ActionMetrics {
            figures: Performance {
                spend_minor: spend,
                revenue_minor: revenue,
                impressions: spend,
                clicks,
                conversions: revenue / 5_000,
                ctr_percent: 0.0,
            },
            window: "today".into(),
            window_start: day.to_string(),
            window_end: day.to_string(),
        },
        daily_budget_minor: 24_000,
        status: "ACTIVE".into(),
    }
}

async fn insert(app: &TestApp, rows: &[NewSnapshot]) {
    snapshots::insert_many(&app.state.db, rows).await.expect("snapshots stored");
}

async fn learn(app: &TestApp, campaign: &str, min_samples: i32) -> pb::LearnOptimalHoursResponse {
    let req = pb::LearnOptimalHoursRequest { account_id: ACCOUNT.into(), campaign_id: campaign.into(), min_samples };
    app.time.clone().learn_optimal_hours(req).await.expect("learns").into_inner()
}

fn profile<'a>(resp: &'a pb::LearnOptimalHoursResponse, campaign: &str) -> &'a pb::HourProfile {
    resp.profiles.iter().find(|p| p.campaign_id == campaign).expect("profile of the campaign")
}

fn argmax(values: &[f64]) -> usize {
    values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

fn hours_apart(a: usize, b: usize) -> usize {
    let d = a.abs_diff(b);
    d.min(24 - d)
}

async fn schedule(app: &TestApp, campaign: &str, daily: i64) -> Result<pb::GetBudgetScheduleResponse, tonic::Status> {
    let req = pb::GetBudgetScheduleRequest {
        account_id: ACCOUNT.into(),
        campaign_id: campaign.into(),
        daily_budget_minor: daily,
    };
    app.time.clone().get_budget_schedule(req).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn learning_recovers_a_known_peak_and_gives_flat_campaigns_no_confident_peaks() {
    for backend in backends() {
        let tz = chrono_tz::America::New_York;
        let sandbox = sandbox("America/New_York", &[PEAK, FLAT]);
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        let mut rows = readings(tz, PEAK, date("2026-10-05"), 21, 1, peak_at(18, 0.6));
        rows.extend(readings(tz, FLAT, date("2026-10-05"), 21, 2, |_, _| 1.0));
        insert(&app, &rows).await;

        let resp = learn(&app, "", 0).await;
        assert_eq!(resp.profiles.len(), 2, "{backend:?}: {resp:?}");
        assert_eq!(resp.snapshot_hours, 2 * 21 * 23, "{backend:?}");
        let peak = profile(&resp, PEAK);
        assert_eq!(peak.metric, "roas");
        assert!(hours_apart(argmax(&peak.hourly_index), 18) <= 1, "{backend:?}: {:?}", peak.hourly_index);
        assert!(peak.peak_hours.contains(&18), "{backend:?}: {:?}", peak.peak_hours);
        assert!(peak.valley_hours.contains(&6), "{backend:?}: {:?}", peak.valley_hours);
        assert!(peak.confidence > 0.6, "{backend:?}: {peak:?}");
        assert_eq!(peak.samples, 21 * 23);
        assert_eq!(peak.hourly_samples[23], 0, "the last hour of a day is never closed by a reading");
        assert_eq!(peak.day_of_week_index.len(), 168);
        assert!(peak.learn_time.is_some());
        let flat = profile(&resp, FLAT);
        assert!(flat.confidence < 0.3, "{backend:?}: {flat:?}");
        assert!(flat.peak_hours.is_empty() || flat.confidence < 0.15, "{backend:?}: {flat:?}");
    }
}

#[tokio::test]
async fn day_of_week_patterns_are_learned() {
    for backend in backends() {
        let tz = chrono_tz::Europe::Berlin;
        let sandbox = sandbox("Europe/Berlin", &[PEAK]);
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        // Weekends peak at 10, weekdays at 19.
        let effect = |weekday: u32, hour: u32| {
            let peak = if weekday == 0 || weekday == 6 { 10.0 } else { 19.0 };
            1.0 + 0.7 * ((f64::from(hour) - peak) * std::f64::consts::TAU / 24.0).cos()
        };
        insert(&app, &readings(tz, PEAK, date("2026-09-07"), 56, 3, effect)).await;
        let resp = learn(&app, PEAK, 0).await;
        let p = profile(&resp, PEAK);
        let row = |d: usize| &p.day_of_week_index[d * 24..(d + 1) * 24];
        let mean =
            |d: usize, hours: std::ops::Range<usize>| row(d)[hours.clone()].iter().sum::<f64>() / hours.len() as f64;
        for (weekday, peak) in [(0, 10), (6, 10), (2, 19), (4, 19)] {
            assert!(hours_apart(argmax(row(weekday)), peak) <= 2, "{backend:?} day {weekday}: {:?}", row(weekday));
            let (morning, evening) = (mean(weekday, 8..13), mean(weekday, 17..22));
            assert_eq!(morning > evening, peak == 10, "{backend:?} day {weekday}: {:?}", row(weekday));
        }
        // The report and the schedule name the zone their hours are counted in.
        let req = pb::GetTimeReportRequest { account_id: ACCOUNT.into(), campaign_id: PEAK.into() };
        let report = app.time.clone().get_time_report(req).await.expect("report").into_inner();
        assert_eq!(report.time_zone, "Europe/Berlin", "{backend:?}");
        assert_eq!(schedule(&app, PEAK, 2_400).await.expect("schedule").time_zone, "Europe/Berlin", "{backend:?}");
    }
}

#[tokio::test]
async fn daylight_saving_days_have_23_and_25_local_hours() {
    for backend in backends() {
        let tz = chrono_tz::America::New_York;
        let (spring, autumn) = ("9000011", "9000012");
        let sandbox = sandbox("America/New_York", &[spring, autumn]);
        // Learning looks at the account's last N days: reach back to March.
        let (app, _running) = spawn(backend, &sandbox, |s| s.engine.time.lookback_days = 366).await;
        // Two weeks around the start (2026-03-08, 23 hours) and the end
        // (2026-11-01, 25 hours) of daylight saving.
        let mut rows = readings(tz, spring, date("2026-03-02"), 14, 4, peak_at(18, 0.6));
        rows.extend(readings(tz, autumn, date("2026-10-26"), 14, 5, peak_at(18, 0.6)));
        insert(&app, &rows).await;
        let resp = learn(&app, "", 0).await;

        let s = profile(&resp, spring);
        assert_eq!(s.samples, 14 * 23 - 1, "{backend:?}: {:?}", s.hourly_samples);
        assert_eq!(s.hourly_samples[2], 13, "02:00 does not exist on 2026-03-08");
        assert_eq!(s.hourly_samples[3], 14);
        let a = profile(&resp, autumn);
        assert_eq!(a.samples, 14 * 23 + 1, "{backend:?}: {:?}", a.hourly_samples);
        assert_eq!(a.hourly_samples[1], 15, "01:00 happens twice on 2026-11-01");
        assert_eq!(a.hourly_samples[2], 14);
        // The pattern lives in local time on both sides of the change.
        for p in [s, a] {
            assert!(hours_apart(argmax(&p.hourly_index), 18) <= 1, "{backend:?}: {:?}", p.hourly_index);
        }
    }
}

#[tokio::test]
async fn revised_and_missing_figures_are_clamped_skipped_and_recorded() {
    use autoscaler::persistence::entity::campaign_hourly_stat::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    for backend in backends() {
        let tz = chrono_tz::UTC;
        let sandbox = sandbox("UTC", &[PEAK]);
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        let day = date("2026-06-01");
        let mut rows: Vec<NewSnapshot> = (0..23)
            .map(|h| {
                snapshot(
                    PEAK,
                    day_hours(tz, day)[h] + TimeDelta::seconds(3_630),
                    day,
                    100 * (h as i64 + 1),
                    300 * (h as i64 + 1),
                    5,
                )
            })
            .collect();
        // Meta revised the spend down in the reading after hour 3 (400 -> 250),
        rows[3].metrics.figures.spend_minor = 250;
        // and the cycle missed the reading after hour 10 (hours 10 and 11 unmeasurable).
        rows.remove(10);
        insert(&app, &rows).await;

        let resp = learn(&app, PEAK, 1).await;
        assert_eq!(resp.revised_hours, 1, "{backend:?}: {resp:?}");
        assert_eq!(resp.skipped_hours, 2, "{backend:?}: {resp:?}");
        assert_eq!(resp.snapshot_hours, 21);
        let hour =
            |h: i16| Entity::find().filter(Column::CampaignId.eq(PEAK)).filter(Column::Hour.eq(h)).one(&app.state.db);
        let revised = hour(3).await.expect("read").expect("hour 3 stored");
        assert_eq!((revised.spend_minor, revised.revisions), (0, 1), "{backend:?}");
        // What the revision took from hour 3 comes back with hour 4's growth.
        assert_eq!(hour(4).await.expect("read").expect("hour 4").spend_minor, 200);
        assert!(hour(10).await.expect("read").is_none());

        // A rerun (and more readings later) revises rows instead of duplicating them.
        let count = || Entity::find().filter(Column::CampaignId.eq(PEAK)).count(&app.state.db);
        let before = count().await.expect("count");
        learn(&app, PEAK, 1).await;
        assert_eq!(count().await.expect("count"), before, "{backend:?}");
        assert_eq!(hour(3).await.expect("read").expect("hour 3").revisions, 1);
    }
}

#[tokio::test]
async fn schedules_sum_exactly_stay_in_bounds_and_are_flat_without_confidence() {
    for backend in backends() {
        let tz = chrono_tz::America::New_York;
        let sandbox = sandbox("America/New_York", &[PEAK, FLAT]);
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        let mut rows = readings(tz, PEAK, date("2026-10-05"), 21, 1, peak_at(18, 0.9));
        rows.extend(readings(tz, FLAT, date("2026-10-05"), 21, 2, |_, _| 1.0));
        insert(&app, &rows).await;
        learn(&app, "", 0).await;

        for daily in [1_001, 7, 99_999] {
            let s = schedule(&app, PEAK, daily).await.expect("schedule");
            assert_eq!(s.hours.len(), 24);
            assert_eq!(s.hours.iter().map(|h| h.budget_minor).sum::<i64>(), daily, "{backend:?}");
            assert_eq!(s.daily_budget_minor, daily);
        }
        let s = schedule(&app, PEAK, 1_001).await.expect("schedule");
        assert!(s.hours[18].budget_minor > s.hours[6].budget_minor, "{:?}", s.hours);
        assert!(s.hours.iter().all(|h| (0.5 - 0.03..=2.0 + 0.03).contains(&h.multiplier)), "{:?}", s.hours);
        assert!(s.confidence > 0.6);
        assert_eq!(s.currency, "USD");

        // 0: the campaign's current daily budget, read from the platform.
        let current = schedule(&app, PEAK, 0).await.expect("schedule");
        assert_eq!(current.daily_budget_minor, 24_000);
        assert_eq!(current.hours.iter().map(|h| h.budget_minor).sum::<i64>(), 24_000);

        // A flat campaign's schedule stays flat.
        let flat = schedule(&app, FLAT, 24_000).await.expect("schedule");
        assert!(flat.hours.iter().all(|h| h.budget_minor == 1_000), "{backend:?}: {:?}", flat.hours);
    }
}

#[tokio::test]
async fn schedule_bounds_are_settings() {
    let tz = chrono_tz::America::New_York;
    let sandbox = sandbox("America/New_York", &[PEAK]);
    let (app, _running) = spawn(Backend::Sqlite, &sandbox, |s| {
        s.engine.time.bounds.min_multiplier = 0.8;
        s.engine.time.bounds.max_multiplier = 1.25;
    })
    .await;
    insert(&app, &readings(tz, PEAK, date("2026-10-05"), 21, 1, peak_at(18, 0.9))).await;
    learn(&app, PEAK, 0).await;
    let s = schedule(&app, PEAK, 2_400_000).await.expect("schedule");
    assert!(s.hours.iter().all(|h| (0.8 - 1e-4..=1.25 + 1e-4).contains(&h.multiplier)), "{:?}", s.hours);
    assert!((s.hours[18].multiplier - 1.25).abs() < 1e-4, "{:?}", s.hours);
    assert_eq!(s.hours.iter().map(|h| h.budget_minor).sum::<i64>(), 2_400_000);
}

#[tokio::test]
async fn time_report_has_the_profile_samples_learn_time_and_schedule() {
    for backend in backends() {
        let tz = chrono_tz::America::New_York;
        let sandbox = sandbox("America/New_York", &[PEAK]);
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        insert(&app, &readings(tz, PEAK, date("2026-10-05"), 14, 1, peak_at(12, 0.8))).await;
        learn(&app, PEAK, 0).await;
        let req = pb::GetTimeReportRequest { account_id: ACCOUNT.into(), campaign_id: PEAK.into() };
        let report = app.time.clone().get_time_report(req).await.expect("report").into_inner();
        let p = report.profile.expect("profile");
        assert_eq!(p.campaign_id, PEAK);
        assert_eq!(p.samples, 14 * 23);
        assert_eq!(p.hourly_samples.len(), 24);
        assert!((p.days - 14.0 * 23.0 / 24.0).abs() < 1e-9);
        assert!(p.reliability > 0.5 && p.consistency > 0.5, "{p:?}");
        assert!(p.learn_time.is_some());
        assert_eq!(report.currency, "USD");
        assert_eq!(report.time_zone, "America/New_York", "{backend:?}");
        assert_eq!(report.schedule.len(), 24);
        assert_eq!(report.schedule.iter().map(|h| h.budget_minor).sum::<i64>(), 24_000, "{backend:?}");
    }
}

#[tokio::test]
async fn every_rpc_validates_its_input_and_reports_unknown_campaigns() {
    for backend in backends() {
        let sandbox = sandbox("America/New_York", &[PEAK]);
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        let mut time = app.time.clone();
        let learn_req = |account: &str, campaign: &str, min_samples| pb::LearnOptimalHoursRequest {
            account_id: account.into(),
            campaign_id: campaign.into(),
            min_samples,
        };
        for (req, field) in [
            (learn_req("", "", 0), "account_id"),
            (learn_req("7001", "", 0), "account_id"),
            (learn_req(ACCOUNT, "12x", 0), "campaign_id"),
            (learn_req(ACCOUNT, "", -1), "min_samples"),
            (learn_req(ACCOUNT, "", 1_000_000), "min_samples"),
        ] {
            let err = time.learn_optimal_hours(req).await.expect_err("invalid");
            assert_eq!(invalid_field(&err), field);
        }
        let err = time.learn_optimal_hours(learn_req(ACCOUNT, "424242", 0)).await.expect_err("unknown");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        let err = time.learn_optimal_hours(learn_req("act_999", "", 0)).await.expect_err("unknown account");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");

        let report = |account: &str, campaign: &str| pb::GetTimeReportRequest {
            account_id: account.into(),
            campaign_id: campaign.into(),
        };
        assert_eq!(invalid_field(&time.get_time_report(report("x", PEAK)).await.expect_err("bad")), "account_id");
        assert_eq!(invalid_field(&time.get_time_report(report(ACCOUNT, "")).await.expect_err("bad")), "campaign_id");
        let err = time.get_time_report(report(ACCOUNT, PEAK)).await.expect_err("no profile yet");
        assert_eq!(err.code(), Code::NotFound);

        assert_eq!(invalid_field(&schedule(&app, PEAK, -1).await.expect_err("bad")), "daily_budget_minor");
        assert_eq!(invalid_field(&schedule(&app, "abc", 100).await.expect_err("bad")), "campaign_id");
        assert_eq!(schedule(&app, PEAK, 100).await.expect_err("no profile").code(), Code::NotFound);
    }
}

#[tokio::test]
async fn too_few_samples_skip_a_campaign() {
    let tz = chrono_tz::UTC;
    let sandbox = sandbox("UTC", &[PEAK]);
    let (app, _running) = spawn(Backend::Sqlite, &sandbox, |_| {}).await;
    insert(&app, &readings(tz, PEAK, date("2026-06-01"), 1, 1, |_, _| 1.0)).await;
    let resp = learn(&app, "", 100).await;
    assert!(resp.profiles.is_empty());
    assert_eq!(resp.skipped_campaign_ids, vec![PEAK.to_owned()]);
    // The default (24) is not reached by 23 measured hours either; 23 is.
    assert!(learn(&app, "", 0).await.profiles.is_empty());
    let resp = learn(&app, "", 23).await;
    assert_eq!(resp.profiles.len(), 1);
    assert_eq!(resp.profiles[0].confidence, 0.0, "one day cannot tell signal from noise");
}

#[tokio::test]
async fn a_learn_cycle_reports_the_profiles_it_learned() {
    for backend in backends() {
        let tz = chrono_tz::America::New_York;
        let sandbox = sandbox("America/New_York", &[PEAK, FLAT]);
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        let mut rows = readings(tz, PEAK, date("2026-10-05"), 7, 1, peak_at(18, 0.6));
        rows.extend(readings(tz, FLAT, date("2026-10-05"), 7, 2, |_, _| 1.0));
        insert(&app, &rows).await;
        let req = pb::RunCycleRequest { mode: pb::CycleMode::Learn as i32, dry_run: false, account_ids: vec![] };
        let resp = app.autoscaler.clone().run_cycle(req).await.expect("learn cycle").into_inner();
        assert_eq!(resp.profiles_learned, 2, "{backend:?}: {resp:?}");
        assert!(resp.failures.is_empty(), "{resp:?}");
        let dry = pb::RunCycleRequest { mode: pb::CycleMode::Learn as i32, dry_run: true, account_ids: vec![] };
        let err = app.autoscaler.clone().run_cycle(dry).await.expect_err("dry learn");
        assert_eq!(invalid_field(&err), "dry_run");
    }
}

#[tokio::test]
async fn the_meta_backfill_recovers_the_sandbox_campaigns_hourly_patterns() {
    use autoscaler::platform::sandbox::SandboxAccounts;
    use meta_sandbox::Daypart;
    for backend in backends() {
        // A generated market (fixed seed): some campaigns live by the hour
        // (Daypart archetype, known peak), the others are flat.
        let sandbox = Sandbox::generated(11, 1, 40);
        let account = sandbox.account_ids()[0].to_string();
        let (app, _running) = spawn(backend, &sandbox, |s| s.engine.time.backfill_days = 28).await;
        let req =
            pb::LearnOptimalHoursRequest { account_id: account.clone(), campaign_id: String::new(), min_samples: 0 };
        let resp = app.time.clone().learn_optimal_hours(req.clone()).await.expect("learns").into_inner();
        assert!(resp.backfilled_hours > 10_000, "{backend:?}: {}", resp.backfilled_hours);
        let (mut peaked, mut flat) = (0, 0);
        for p in &resp.profiles {
            assert_eq!(p.metric, "clicks_per_spend", "Meta's hourly breakdown has no website purchases");
            match sandbox.daypart(&p.campaign_id) {
                Some(Daypart::Peak { hour, .. }) => {
                    peaked += 1;
                    let near = |h: usize| hours_apart(h, hour as usize) <= 2;
                    assert!(near(argmax(&p.hourly_index)), "{backend:?} {}: peak {hour}, {p:?}", p.campaign_id);
                    assert!(p.peak_hours.iter().any(|h| near(*h as usize)), "{backend:?}: {p:?}");
                    assert!(p.confidence > 0.4, "{backend:?} {}: {p:?}", p.campaign_id);
                }
                _ => {
                    flat += 1;
                    assert!(p.confidence < 0.3 || p.peak_hours.is_empty(), "{backend:?} {}: {p:?}", p.campaign_id);
                }
            }
        }
        assert!(peaked >= 2 && flat >= 10, "{peaked} patterned, {flat} flat");

        // A rerun fetches only the last days again and revises, never duplicates.
        use autoscaler::persistence::entity::campaign_hourly_stat::Entity;
        use sea_orm::{EntityTrait, PaginatorTrait};
        let before = Entity::find().count(&app.state.db).await.expect("count");
        let again = app.time.clone().learn_optimal_hours(req).await.expect("learns").into_inner();
        assert!(
            again.backfilled_hours > 0 && again.backfilled_hours < resp.backfilled_hours / 5,
            "{}",
            again.backfilled_hours
        );
        assert_eq!(Entity::find().count(&app.state.db).await.expect("count"), before);
    }
}

async fn opt_in(app: &TestApp, campaign: &str, apply: bool) {
    use autoscaler::domain::ids::{AccountId, CampaignId};
    use autoscaler::domain::rule::{NewRule, RuleSettings};
    let mut settings = RuleSettings::defaults(format!("Rule {campaign}"), "USD", 100);
    settings.apply_hourly_schedule = apply;
    let rule = NewRule {
        account_id: AccountId::parse(ACCOUNT, "account").expect("account"),
        campaign_id: Some(CampaignId::parse(campaign, "campaign").expect("campaign")),
        settings,
        created_by: "test".into(),
    };
    autoscaler::persistence::rules::create(&app.state.db, rule).await.expect("rule");
}

#[tokio::test]
async fn a_learn_cycle_applies_tomorrows_peak_windows_as_meta_budget_schedules() {
    const OTHER: &str = "9000003";
    for backend in backends() {
        let tz = chrono_tz::America::New_York;
        let sandbox = sandbox("America/New_York", &[PEAK, FLAT, OTHER]);
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        let mut rows = readings(tz, PEAK, date("2026-10-05"), 21, 1, peak_at(18, 0.9));
        rows.extend(readings(tz, FLAT, date("2026-10-05"), 21, 2, |_, _| 1.0));
        rows.extend(readings(tz, OTHER, date("2026-10-05"), 21, 3, peak_at(18, 0.9)));
        insert(&app, &rows).await;
        opt_in(&app, PEAK, true).await;
        opt_in(&app, FLAT, true).await;
        opt_in(&app, OTHER, false).await;

        let cycle = || async {
            let req = pb::RunCycleRequest { mode: pb::CycleMode::Learn as i32, dry_run: false, account_ids: vec![] };
            app.autoscaler.clone().run_cycle(req).await.expect("learn cycle").into_inner()
        };
        let resp = cycle().await;
        assert!(resp.failures.is_empty(), "{backend:?}: {resp:?}");
        let applied = sandbox.budget_schedules(PEAK);
        assert!(!applied.is_empty(), "{backend:?}");
        let tomorrow = chrono::Utc::now().with_timezone(&tz).date_naive() + TimeDelta::days(1);
        let covers_18 = applied.iter().any(|s| {
            let (a, b) = (s.time_start.with_timezone(&tz), s.time_end.with_timezone(&tz));
            a.date_naive() == tomorrow && a.hour() <= 18 && (b.hour() > 18 || b.date_naive() > tomorrow)
        });
        assert!(covers_18, "{applied:?}");
        for s in &applied {
            assert_eq!(s.budget_value_type, "MULTIPLIER");
            assert!((101..=800).contains(&s.budget_value), "{s:?}");
            assert!(s.time_end - s.time_start >= TimeDelta::hours(3), "{s:?}");
            assert_eq!(s.time_start.timestamp() % 900, 0);
            assert_eq!(s.time_start.with_timezone(&tz).date_naive(), tomorrow);
        }
        assert!(sandbox.budget_schedules(FLAT).is_empty(), "a flat profile raises nothing");
        assert!(sandbox.budget_schedules(OTHER).is_empty(), "applying is opt-in per rule");

        // The next learn cycle finds tomorrow already scheduled.
        assert!(cycle().await.failures.is_empty());
        assert_eq!(sandbox.budget_schedules(PEAK).len(), applied.len(), "{backend:?}");
    }
}

#[tokio::test]
async fn the_sandbox_holds_budget_schedules_to_metas_rules_through_the_client() {
    use autoscaler::domain::ids::AccountId;
    use autoscaler::platform::meta::{BudgetValueType, NewBudgetSchedule};
    let sandbox = sandbox("Asia/Kolkata", &[PEAK]);
    let (app, _running) = spawn(Backend::Sqlite, &sandbox, |_| {}).await;
    let client = &app.state.platform;
    let account = AccountId::parse(ACCOUNT, "account").expect("account");
    let hour = 3_600;
    let base = (chrono::Utc::now().timestamp() / hour + 2) * hour;
    let hdp = |start: i64, hours: i64, percent: i64| NewBudgetSchedule {
        budget_value: percent,
        budget_value_type: BudgetValueType::Multiplier,
        time_start: start,
        time_end: start + hours * hour,
    };
    for bad in [
        hdp(base, 2, 150),             // shorter than 3 hours
        hdp(base + 60, 3, 150),        // not on a 15-minute boundary
        hdp(base, 3, 900),             // above 8x
        hdp(base, 3, 100),             // raises nothing
        hdp(base - 10 * hour, 3, 150), // in the past
    ] {
        let err = client.create_budget_schedule(&account, PEAK, &bad).await.expect_err("refused");
        assert!(err.to_string().contains("100"), "{err}");
    }
    let id = client.create_budget_schedule(&account, PEAK, &hdp(base, 3, 150)).await.expect("created");
    assert!(!id.is_empty());
    assert!(client.create_budget_schedule(&account, PEAK, &hdp(base + hour, 3, 150)).await.is_err(), "overlap");
    let absolute = NewBudgetSchedule {
        budget_value_type: BudgetValueType::Absolute,
        budget_value: 30_000,
        ..hdp(base + 10 * hour, 3, 0)
    };
    assert!(client.create_budget_schedule(&account, PEAK, &absolute).await.is_err(), "mixed types");
    for k in 1..50 {
        client.create_budget_schedule(&account, PEAK, &hdp(base + k * 3 * hour, 3, 120)).await.expect("within 50");
    }
    assert!(client.create_budget_schedule(&account, PEAK, &hdp(base + 50 * 3 * hour, 3, 120)).await.is_err(), "51st");
    let listed = client.budget_schedules(&account, PEAK, base, base + 3 * hour).await.expect("listed");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].budget_value, listed[0].budget_value_type.as_str()), (150, "MULTIPLIER"));
    assert_eq!(sandbox.budget_schedules(PEAK).len(), 50);
}

#[tokio::test]
async fn the_cycles_snapshots_of_the_sandbox_market_recover_its_roas_peaks() {
    use autoscaler::platform::InsightsWindow;
    use autoscaler::platform::sandbox::SandboxAccounts;
    use meta_sandbox::Daypart;
    for backend in backends() {
        // The generated market (fixed seed), read as the hourly cycle does:
        // 30 s after every local hour, today's cumulative figures, stored as snapshots.
        let sandbox = Sandbox::generated(11, 1, 40);
        let account = sandbox.account_ids()[0].clone();
        let tz = chrono_tz::America::New_York; // the first generated account's zone
        let (app, _running) = spawn(backend, &sandbox, |_| {}).await;
        let mut rows = Vec::new();
        for d in 0..14 {
            let day = date("2026-10-05") + TimeDelta::days(d);
            let hours = day_hours(tz, day);
            for start in &hours[..hours.len() - 1] {
                let taken_at = *start + TimeDelta::seconds(3_630);
                sandbox.set_now(taken_at);
                let today = InsightsWindow::Preset("today".into());
                for p in app.state.platform.insights(&account, &today).await.expect("today's insights") {
                    let mut s = snapshot(
                        p.campaign_id.as_str(),
                        taken_at,
                        day,
                        p.figures.spend_minor,
                        p.figures.revenue_minor,
                        p.figures.clicks,
                    );
                    s.account_id = account.to_string();
                    rows.push(s);
                }
            }
        }
        snapshots::insert_many(&app.state.db, &rows).await.expect("snapshots stored");
        let req = pb::LearnOptimalHoursRequest {
            account_id: account.to_string(),
            campaign_id: String::new(),
            min_samples: 0,
        };
        let resp = app.time.clone().learn_optimal_hours(req).await.expect("learns").into_inner();
        let mut recovered = 0;
        for p in &resp.profiles {
            match sandbox.daypart(&p.campaign_id) {
                Some(Daypart::Peak { hour, .. }) if p.confidence >= 0.3 => {
                    assert_eq!(p.metric, "roas");
                    let near = p.peak_hours.iter().any(|h| hours_apart(*h as usize, hour as usize) <= 1);
                    assert!(near, "{backend:?} {}: peak {hour}, {p:?}", p.campaign_id);
                    recovered += 1;
                }
                // Too few purchases to tell: an honest low confidence.
                Some(Daypart::Peak { .. }) => {}
                _ => assert!(p.confidence < 0.3 || p.peak_hours.is_empty(), "{backend:?} {}: {p:?}", p.campaign_id),
            }
        }
        assert!(recovered >= 2, "{backend:?}: {recovered} patterned campaigns recovered with confidence");
    }
}
