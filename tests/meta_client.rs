//! The Meta client against the Meta sandbox over real HTTP on 127.0.0.1:
//! paging, exact money parsing, batching, every injected fault, throttling
//! per account, read-back after writes, token hygiene and the generated market.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use autoscaler::domain::ids::AccountId;
use autoscaler::platform::sandbox::{SandboxAccounts, SandboxSettings};
use autoscaler::platform::{
    BudgetHolder, BudgetWrite, CampaignPerformance, InsightsWindow, MetaClient, MetaSettings, PlatformError,
};
use chrono::{DateTime, Utc};
use meta_sandbox::{
    AccountSpec, AdSetSpec, Archetype, BudgetHolderSpec, CampaignSpec, MetaErrorSpec, Performance, RequestKind,
    RunningSandbox, Sandbox, ScriptedMetrics, SpecStatus, ThrottleFault,
};
use secrecy::SecretString;

/// 2026-06-10 15:30 UTC: mid-afternoon in Europe, morning in New York.
fn fixed_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-10T15:30:00Z").expect("rfc3339").with_timezone(&Utc)
}

fn account(id: &str) -> AccountId {
    AccountId::parse(id, "account").expect("valid account id")
}

/// Settings for tests: short back-off and timeouts.
fn fast(running: &RunningSandbox) -> MetaSettings {
    let mut settings = running.meta_settings();
    settings.backoff_base = Duration::from_millis(5);
    settings.request_timeout = Duration::from_secs(5);
    settings.max_throttle_wait = Duration::from_secs(5);
    settings
}

/// A plain HTTP client for speaking to the sandbox directly.
fn raw_http() -> reqwest::Client {
    // reqwest is built without a TLS provider; MetaClient installs ring, do the same here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn serve(sandbox: &Sandbox) -> (RunningSandbox, MetaClient) {
    let running = sandbox.start().await.expect("sandbox starts");
    let client = MetaClient::new(fast(&running)).expect("client builds");
    (running, client)
}

fn add_account(sandbox: &Sandbox, id: &str, currency: &str, zone: &str) {
    let spec = AccountSpec {
        id: id.into(),
        name: format!("Account {id}"),
        currency: currency.into(),
        timezone_name: zone.into(),
    };
    sandbox.add_account(spec).expect("account added");
}

fn metrics(spend_minor: i64, revenue_minor: i64, impressions: i64, clicks: i64, conversions: i64) -> ScriptedMetrics {
    ScriptedMetrics { spend_minor, revenue_minor, impressions, clicks, conversions }
}

/// An account with `n` scripted CBO campaigns `<base>+i` of $100 budget.
fn scripted_account(sandbox: &Sandbox, id: &str, base: u64, n: u64) -> Vec<String> {
    add_account(sandbox, id, "USD", "America/New_York");
    (0..n)
        .map(|i| {
            let campaign = (base + i).to_string();
            let spec =
                CampaignSpec::scripted(&campaign, &format!("C{i}"), 10_000, metrics(5_000, 15_000, 4_000, 80, 3));
            sandbox.add_campaign(id, spec).expect("campaign added");
            campaign
        })
        .collect()
}

fn by_id(rows: Vec<CampaignPerformance>) -> HashMap<String, CampaignPerformance> {
    rows.into_iter().map(|r| (r.campaign_id.as_str().to_owned(), r)).collect()
}

#[tokio::test]
async fn paging_follows_next_to_the_end_even_past_empty_pages() {
    let sandbox = Sandbox::empty().with_clock(meta_sandbox::SandboxClock::Fixed(fixed_now()));
    add_account(&sandbox, "act_1", "USD", "America/New_York");
    // The first seven campaigns never delivered: the first insights page is empty but has `next`.
    for i in 0..23u64 {
        let figures = if i < 7 { metrics(0, 0, 0, 0, 0) } else { metrics(1_000, 2_000, 500, 10, 1) };
        sandbox
            .add_campaign("act_1", CampaignSpec::scripted(&(100 + i).to_string(), "c", 5_000, figures))
            .expect("added");
    }
    let running = sandbox.start().await.expect("starts");
    let mut settings = fast(&running);
    settings.page_size = 5;
    let client = MetaClient::new(settings).expect("client");

    let campaigns = client.campaigns(&account("act_1")).await.expect("campaigns");
    let insights =
        client.insights(&account("act_1"), &InsightsWindow::Preset("yesterday".into())).await.expect("insights");

    assert_eq!(campaigns.len(), 23);
    assert_eq!(insights.len(), 16);
    let counts = sandbox.request_counts();
    assert_eq!(counts.of(RequestKind::Campaigns), 5, "23 campaigns in pages of 5");
    assert_eq!(counts.of(RequestKind::Insights), 5, "one paged insights request, never one per campaign");
    assert_eq!(counts.of(RequestKind::AdSets), 0, "all budgets are on campaigns: no ad set read");
}

#[tokio::test]
async fn scripted_insights_parse_money_ctr_and_roas_exactly() {
    let sandbox = Sandbox::empty();
    add_account(&sandbox, "act_1", "USD", "America/New_York");
    add_account(&sandbox, "act_2", "JPY", "Asia/Tokyo");
    // The default rule's example: ROAS 4.5, CTR 3.2%, $100 spent, $450 revenue on a $200 budget.
    let summer = CampaignSpec::scripted("11", "Summer Sale Video", 20_000, metrics(10_000, 45_000, 10_000, 320, 9));
    sandbox.add_campaign("act_1", summer).expect("added");
    let odd_cents = CampaignSpec::scripted("12", "Odd cents", 5_000, metrics(12_345, 1, 3, 1, 1));
    sandbox.add_campaign("act_1", odd_cents).expect("added");
    sandbox
        .add_campaign("act_2", CampaignSpec::scripted("21", "Tokyo", 30_000, metrics(12_345, 55_555, 7_000, 77, 4)))
        .expect("added");
    let (_running, client) = serve(&sandbox).await;

    let usd = by_id(client.insights(&account("act_1"), &InsightsWindow::Preset("today".into())).await.expect("usd"));
    let summer = &usd["11"];
    assert_eq!(
        (summer.figures.spend_minor, summer.figures.revenue_minor, summer.figures.conversions),
        (10_000, 45_000, 9)
    );
    assert_eq!((summer.figures.impressions, summer.figures.clicks), (10_000, 320));
    assert_eq!(summer.figures.ctr_percent, 3.2);
    assert_eq!(summer.figures.roas(), 4.5);
    assert_eq!(summer.campaign_name, "Summer Sale Video");
    assert_eq!((usd["12"].figures.spend_minor, usd["12"].figures.revenue_minor), (12_345, 1));

    let jpy_account = client.account(&account("act_2")).await.expect("account");
    assert_eq!((jpy_account.currency.as_str(), jpy_account.currency_offset), ("JPY", 1));
    assert_eq!(jpy_account.timezone_name, "Asia/Tokyo");
    let since = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
    let until = chrono::NaiveDate::from_ymd_opt(2026, 6, 7).expect("date");
    let jpy = by_id(client.insights(&account("act_2"), &InsightsWindow::Range { since, until }).await.expect("jpy"));
    let tokyo = &jpy["21"];
    assert_eq!((tokyo.figures.spend_minor, tokyo.figures.revenue_minor), (12_345, 55_555), "yen have no minor unit");
    assert_eq!((tokyo.date_start.as_str(), tokyo.date_stop.as_str()), ("2026-06-01", "2026-06-07"));
}

#[tokio::test]
async fn campaign_states_know_where_each_budget_lives() {
    let sandbox = Sandbox::empty();
    add_account(&sandbox, "act_1", "USD", "Europe/Berlin");
    let sim = Performance::Simulated(Default::default());
    let spec = |id: &str, budget: BudgetHolderSpec, status: SpecStatus| CampaignSpec {
        id: id.into(),
        name: id.into(),
        budget,
        status,
        performance: sim.clone(),
    };
    let ad_sets = BudgetHolderSpec::AdSets(vec![
        AdSetSpec { id: "21".into(), daily_budget_minor: 10_000, status: SpecStatus::Active },
        AdSetSpec { id: "22".into(), daily_budget_minor: 5_000, status: SpecStatus::Paused },
        AdSetSpec { id: "23".into(), daily_budget_minor: 20_001, status: SpecStatus::Active },
    ]);
    sandbox
        .add_campaign("act_1", spec("1", BudgetHolderSpec::Campaign { daily_budget_minor: 20_000 }, SpecStatus::Active))
        .expect("cbo");
    sandbox.add_campaign("act_1", spec("2", ad_sets, SpecStatus::Active)).expect("abo");
    sandbox
        .add_campaign(
            "act_1",
            spec("3", BudgetHolderSpec::Lifetime { lifetime_budget_minor: 900_000 }, SpecStatus::Active),
        )
        .expect("life");
    sandbox
        .add_campaign("act_1", spec("4", BudgetHolderSpec::Campaign { daily_budget_minor: 7_000 }, SpecStatus::Paused))
        .expect("paused");
    let (_running, client) = serve(&sandbox).await;

    let states = client.campaigns(&account("act_1")).await.expect("campaigns");
    let state = |id: &str| states.iter().find(|s| s.campaign_id.as_str() == id).expect("present");
    assert_eq!(state("1").budget, BudgetHolder::Campaign { daily_budget_minor: 20_000 });
    assert_eq!(state("2").daily_budget_minor(), Some(30_001), "only active ad sets count");
    assert_eq!(state("3").budget, BudgetHolder::NoDailyBudget);
    assert!(state("1").is_active() && !state("4").is_active());
    assert_eq!(state("4").status, "PAUSED");
    assert_eq!(sandbox.request_counts().of(RequestKind::AdSets), 1);
}

#[tokio::test]
async fn ad_set_budgets_scale_together_and_sum_exactly() {
    let sandbox = Sandbox::empty();
    add_account(&sandbox, "act_1", "USD", "Europe/Berlin");
    let ad_sets = BudgetHolderSpec::AdSets(vec![
        AdSetSpec { id: "21".into(), daily_budget_minor: 10_000, status: SpecStatus::Active },
        AdSetSpec { id: "22".into(), daily_budget_minor: 5_000, status: SpecStatus::Paused },
        AdSetSpec { id: "23".into(), daily_budget_minor: 20_001, status: SpecStatus::Active },
    ]);
    let spec = CampaignSpec { budget: ad_sets, ..CampaignSpec::scripted("2", "abo", 0, metrics(100, 100, 10, 1, 0)) };
    sandbox.add_campaign("act_1", spec).expect("added");
    let (_running, client) = serve(&sandbox).await;

    let states = client.campaigns(&account("act_1")).await.expect("campaigns");
    let writes = states[0].budget_writes(45_000);
    let results = client.write(&account("act_1"), &writes).await.expect("batch answered");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let (a, b) = (sandbox.daily_budget("21").expect("21"), sandbox.daily_budget("23").expect("23"));
    assert_eq!(a + b, 45_000);
    // 45000 x 10000/30001 = 14999.50..., x 20001/30001 = 30000.49...: the larger remainder gets the cent.
    assert_eq!((a, b), (15_000, 30_000));
    assert_eq!(sandbox.daily_budget("22"), Some(5_000), "paused ad set untouched");

    // The budget lives on the ad sets: Meta refuses it on the campaign, and it is not retried.
    let before = client.request_count();
    let wrong = [BudgetWrite::SetDailyBudget { object_id: "2".into(), daily_budget_minor: 50_000 }];
    let results = client.write(&account("act_1"), &wrong).await.expect("batch answered");
    let err = results[0].as_ref().expect_err("refused");
    assert_eq!((err.code(), err.subcode()), (Some(100), Some(1_885_621)));
    assert!(err.is_permanent());
    assert_eq!(client.request_count() - before, 1);
}

#[tokio::test]
async fn writes_over_fifty_go_in_batches_of_fifty_and_all_apply() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 120);
    let (_running, client) = serve(&sandbox).await;

    let writes: Vec<BudgetWrite> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| BudgetWrite::SetDailyBudget { object_id: id.clone(), daily_budget_minor: 20_000 + i as i64 })
        .collect();
    let results = client.write(&account("act_1"), &writes).await.expect("batches answered");

    assert_eq!(results.len(), 120);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(sandbox.daily_budget(id), Some(20_000 + i as i64));
    }
    let counts = sandbox.request_counts();
    assert_eq!((counts.of(RequestKind::Batch), counts.of(RequestKind::ObjectWrite)), (3, 120));
    assert_eq!(client.request_count(), 3);

    let pause = [BudgetWrite::Pause { campaign_id: ids[0].clone() }];
    assert!(client.write(&account("act_1"), &pause).await.expect("answered")[0].is_ok());
    let read = client.read_objects(&account("act_1"), &ids[..1]).await.expect("read back");
    assert_eq!(read[&ids[0]].as_ref().map(|s| s.status.as_str()).ok(), Some("PAUSED"));
}

#[tokio::test]
async fn sandbox_refuses_batches_over_fifty_like_meta() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 51);
    let running = sandbox.start().await.expect("starts");
    let ops: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| serde_json::json!({"method": "POST", "relative_url": id, "body": "daily_budget=5000"}))
        .collect();
    let form = [("access_token", running.access_token()), ("batch", serde_json::Value::Array(ops).to_string())];
    let url = format!("{}v26.0/", running.base_url());
    let body: serde_json::Value =
        raw_http().post(url).form(&form).send().await.expect("sent").json().await.expect("json");
    assert_eq!(body["error"]["code"], 1);
    assert_eq!(body["error"]["message"], "Too many requests in batch message. Maximum batch size is 50");
    assert!(sandbox.writes().is_empty());
}

#[tokio::test]
async fn paging_next_carries_the_token_like_meta_and_the_client_strips_it() {
    let sandbox = Sandbox::empty();
    scripted_account(&sandbox, "act_1", 1_000, 3);
    let running = sandbox.start().await.expect("starts");
    let url = format!(
        "{}v26.0/act_1/campaigns?limit=1&fields=id&access_token={}",
        running.base_url(),
        running.access_token()
    );
    let body: serde_json::Value = raw_http().get(url).send().await.expect("sent").json().await.expect("json");
    let next = body["paging"]["next"].as_str().expect("next");
    assert!(next.contains(&format!("access_token={}", running.access_token())));
    assert!(body["paging"]["cursors"]["after"].is_string());
}

#[tokio::test]
async fn every_call_carries_the_app_secret_proof() {
    let sandbox = Sandbox::empty();
    scripted_account(&sandbox, "act_1", 1_000, 2);
    sandbox.require_app_secret("app-secret-1");
    let running = sandbox.start().await.expect("starts");
    let mut settings = fast(&running);
    settings.app_secret = Some(SecretString::from("app-secret-1"));
    let client = MetaClient::new(settings.clone()).expect("client");

    assert_eq!(client.campaigns(&account("act_1")).await.expect("proof accepted").len(), 2);
    let writes = [BudgetWrite::SetDailyBudget { object_id: "1000".into(), daily_budget_minor: 7_000 }];
    assert!(client.write(&account("act_1"), &writes).await.expect("batch")[0].is_ok());

    settings.app_secret = Some(SecretString::from("another-secret"));
    let err = MetaClient::new(settings).expect("client").account(&account("act_1")).await.expect_err("bad proof");
    assert_eq!(err.code(), Some(100));
    assert!(!err.to_string().contains("another-secret"));
}

#[tokio::test]
async fn transient_server_errors_are_retried_until_they_pass() {
    let sandbox = Sandbox::empty();
    scripted_account(&sandbox, "act_1", 1_000, 2);
    let (_running, client) = serve(&sandbox).await;
    sandbox.fail_next_requests(2);

    let info = client.account(&account("act_1")).await.expect("third try works");

    assert_eq!(info.currency, "USD");
    assert_eq!(client.request_count(), 3);
    assert_eq!(sandbox.request_counts().http, 3);
}

#[tokio::test]
async fn stalled_requests_time_out_and_are_retried() {
    let sandbox = Sandbox::empty();
    scripted_account(&sandbox, "act_1", 1_000, 2);
    let running = sandbox.start().await.expect("starts");
    let mut settings = fast(&running);
    settings.request_timeout = Duration::from_millis(300);
    let client = MetaClient::new(settings).expect("client");
    // A stall far longer than the test's bound: finishing at all proves the
    // client gave up on it and retried.
    sandbox.stall_next_requests(1, Duration::from_secs(3_600));

    let read = tokio::time::timeout(Duration::from_secs(120), client.campaigns(&account("act_1"))).await;
    let campaigns = read.expect("did not wait for the stall").expect("retry works");

    assert_eq!(campaigns.len(), 2);
    assert_eq!(client.request_count(), 2);
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 2);
    let (_running, client) = serve(&sandbox).await;
    sandbox.fail_object("act_1", MetaErrorSpec::permanent(200, None, "(#200) Permissions error"));

    let err = client.account(&account("act_1")).await.expect_err("refused");

    assert_eq!(err.code(), Some(200));
    assert!(err.is_permanent() && !err.is_transient() && !err.is_throttle());
    assert_eq!(err.to_string(), "Meta error 200: (#200) Permissions error");
    assert_eq!(client.request_count(), 1);

    sandbox.clear_faults();
    sandbox.fail_object(&ids[0], MetaErrorSpec::permanent(100, Some(1_487_901), "Invalid budget"));
    let writes: Vec<BudgetWrite> =
        ids.iter().map(|id| BudgetWrite::SetDailyBudget { object_id: id.clone(), daily_budget_minor: 9_000 }).collect();
    let results = client.write(&account("act_1"), &writes).await.expect("answered");
    assert_eq!(results[0].as_ref().err().and_then(PlatformError::subcode), Some(1_487_901));
    assert!(results[1].is_ok());
    assert_eq!(client.request_count(), 2, "one batch, no retry of the permanent failure");
}

#[tokio::test]
async fn unknown_accounts_are_not_found() {
    let sandbox = Sandbox::empty();
    let (_running, client) = serve(&sandbox).await;
    let err = client.account(&account("act_999")).await.expect_err("unknown");
    assert!(err.is_not_found(), "{err}");
    assert!(matches!(autoscaler::Error::from(err), autoscaler::Error::NotFound { ref id, .. } if id == "act_999"));
    assert_eq!(client.request_count(), 1);
}

#[tokio::test]
async fn a_long_throttle_fails_that_account_fast_while_its_neighbour_completes() {
    let sandbox = Sandbox::empty();
    scripted_account(&sandbox, "act_1", 1_000, 3);
    scripted_account(&sandbox, "act_2", 2_000, 3);
    let (_running, client) = serve(&sandbox).await;
    sandbox.throttle_account("act_1", ThrottleFault::business_use_case(Duration::from_secs(3_600)));

    let (one, two, today) = (account("act_1"), account("act_2"), InsightsWindow::Preset("today".into()));
    let (throttled, healthy) = tokio::join!(client.campaigns(&one), client.insights(&two, &today));

    let err = throttled.expect_err("throttled");
    assert!(err.is_throttle(), "{err}");
    assert_eq!((err.code(), err.subcode()), (Some(80_004), Some(2_446_079)));
    assert!(matches!(err, PlatformError::Throttled { retry_after, .. } if retry_after >= Duration::from_secs(3_000)));
    assert_eq!(healthy.expect("neighbour unaffected").len(), 3);
    assert_eq!(client.account_wait(&one), Duration::ZERO, "failed fast instead of waiting an hour");
    assert_eq!(client.account_wait(&two), Duration::ZERO);
    assert_eq!(client.account_request_count(&account("act_1")), 1);

    // The account stays paused: no request is sent until the quota is back.
    let again = client.account(&account("act_1")).await.expect_err("still paused");
    assert!(again.is_throttle());
    assert_eq!(client.account_request_count(&account("act_1")), 1);
}

#[tokio::test]
async fn a_short_throttle_is_waited_out_per_the_usage_headers() {
    let sandbox = Sandbox::empty();
    scripted_account(&sandbox, "act_1", 1_000, 3);
    scripted_account(&sandbox, "act_2", 2_000, 3);
    let (_running, client) = serve(&sandbox).await;
    sandbox.throttle_account("act_1", ThrottleFault::user_limit(Duration::from_secs(1)).for_requests(1));

    let (one, two) = (account("act_1"), account("act_2"));
    let (slow, fast) = tokio::join!(client.campaigns(&one), client.campaigns(&two));

    assert_eq!(slow.expect("succeeds after waiting").len(), 3);
    let waited = client.account_wait(&one);
    assert!(waited >= Duration::from_millis(900), "waited {waited:?}, the header said 1 s");
    assert_eq!(fast.expect("neighbour").len(), 3);
    assert_eq!(client.account_wait(&two), Duration::ZERO, "the neighbour never waited");
    assert_eq!(client.account_request_count(&account("act_1")), 2);
}

#[tokio::test]
async fn high_usage_pauses_the_account_before_meta_refuses() {
    let sandbox = Sandbox::empty();
    scripted_account(&sandbox, "act_1", 1_000, 3);
    scripted_account(&sandbox, "act_2", 2_000, 3);
    let (_running, client) = serve(&sandbox).await;
    sandbox.report_usage("act_1", 95, Duration::from_secs(600));

    client.account(&account("act_1")).await.expect("answered at 95%");
    let err = client.campaigns(&account("act_1")).await.expect_err("paused by the client");

    assert!(matches!(err, PlatformError::Throttled { code: None, .. }), "{err}");
    assert_eq!(client.account_request_count(&account("act_1")), 1, "no request sent while paused");
    assert_eq!(client.campaigns(&account("act_2")).await.expect("other account").len(), 3);
}

#[tokio::test]
async fn null_batch_entries_of_reads_are_retried_alone() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 10);
    let (_running, client) = serve(&sandbox).await;
    sandbox.time_out_next_batch_ops(3);

    let read = client.read_objects(&account("act_1"), &ids).await.expect("answered");

    assert_eq!(read.len(), 10);
    assert!(read.values().all(Result::is_ok), "{read:?}");
    assert_eq!(sandbox.request_counts().of(RequestKind::Batch), 2, "the three null reads were sent again");
}

#[tokio::test]
async fn null_batch_entries_of_writes_are_never_sent_again() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 10);
    let (_running, client) = serve(&sandbox).await;
    sandbox.time_out_next_batch_ops(3);

    let writes: Vec<BudgetWrite> = ids
        .iter()
        .map(|id| BudgetWrite::SetDailyBudget { object_id: id.clone(), daily_budget_minor: 12_300 })
        .collect();
    let results = client.write(&account("act_1"), &writes).await.expect("answered");

    // An unanswered write may have landed: it is reported as a timeout (for
    // the executor to read back), never sent a second time.
    let timed_out = results.iter().filter(|r| matches!(r, Err(PlatformError::Timeout))).count();
    assert_eq!(timed_out, 3, "{results:?}");
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 7);
    assert_eq!(sandbox.request_counts().of(RequestKind::Batch), 1);
    assert_eq!(sandbox.writes().len(), 7, "no write was sent twice");
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_not_sent_again() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 2);
    let (_running, client) = serve(&sandbox).await;
    sandbox.lose_write_answers(1);

    let writes: Vec<BudgetWrite> = ids
        .iter()
        .map(|id| BudgetWrite::SetDailyBudget { object_id: id.clone(), daily_budget_minor: 12_300 })
        .collect();
    let outcome = client.write(&account("act_1"), &writes).await;

    // A bare 502 says nothing about the writes: no retry, and they did land.
    assert!(matches!(outcome, Err(PlatformError::Http { status: 502 })), "{outcome:?}");
    assert_eq!(sandbox.request_counts().of(RequestKind::Batch), 1, "the batch was sent once");
    assert_eq!(sandbox.writes().len(), 2);
    assert!(ids.iter().all(|id| sandbox.daily_budget(id) == Some(12_300)));
}

#[tokio::test]
async fn a_timed_out_write_batch_is_not_sent_again() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 2);
    let running = sandbox.start().await.expect("sandbox");
    let mut settings = fast(&running);
    settings.request_timeout = Duration::from_millis(300);
    let client = MetaClient::new(settings).expect("client");
    sandbox.answer_writes_late(1, Duration::from_secs(2));

    let writes = [BudgetWrite::SetDailyBudget { object_id: ids[0].clone(), daily_budget_minor: 12_300 }];
    let outcome = client.write(&account("act_1"), &writes).await;

    assert!(matches!(outcome, Err(PlatformError::Timeout)), "{outcome:?}");
    assert_eq!(sandbox.request_counts().of(RequestKind::Batch), 1, "a timed-out write is never resent");
    assert_eq!(sandbox.daily_budget(&ids[0]), Some(12_300), "the write landed all the same");
}

#[tokio::test]
async fn one_objects_failed_read_leaves_the_others_readable() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 3);
    let (_running, client) = serve(&sandbox).await;
    sandbox.fail_reads_of(&ids[1], MetaErrorSpec::permanent(200, None, "Permissions error"), 0);

    let read = client.read_objects(&account("act_1"), &ids).await.expect("answered");

    assert!(read[&ids[0]].is_ok() && read[&ids[2]].is_ok(), "{read:?}");
    assert!(matches!(read[&ids[1]], Err(PlatformError::Api { code: 200, .. })), "{read:?}");
}

#[tokio::test]
async fn a_write_that_does_not_stick_is_caught_by_reading_back() {
    let sandbox = Sandbox::empty();
    let ids = scripted_account(&sandbox, "act_1", 1_000, 2);
    let (_running, client) = serve(&sandbox).await;
    sandbox.lose_writes_to(&ids[0]);

    let writes: Vec<BudgetWrite> = ids
        .iter()
        .map(|id| BudgetWrite::SetDailyBudget { object_id: id.clone(), daily_budget_minor: 15_000 })
        .collect();
    let results = client.write(&account("act_1"), &writes).await.expect("answered");
    assert!(results.iter().all(Result::is_ok), "Meta says success either way");

    let mut wanted = ids.clone();
    wanted.push("999999".into());
    let read = client.read_objects(&account("act_1"), &wanted).await.expect("read back");
    assert_eq!(read[&ids[0]].as_ref().ok().and_then(|s| s.daily_budget_minor), Some(10_000), "the lost write shows");
    assert_eq!(read[&ids[1]].as_ref().ok().and_then(|s| s.daily_budget_minor), Some(15_000));
    assert!(!read.contains_key("999999"), "unknown objects are absent");
    assert!(sandbox.writes().iter().any(|w| w.object_id == ids[0] && !w.applied));
}

#[tokio::test]
async fn the_token_never_appears_in_errors() {
    let sandbox = Sandbox::empty();
    scripted_account(&sandbox, "act_1", 1_000, 2);
    let running = sandbox.start().await.expect("starts");
    let good = running.access_token();
    let mut errors: Vec<PlatformError> = Vec::new();

    let mut wrong = fast(&running);
    wrong.access_token = SecretString::from("EAAwrong-token-123");
    let err = MetaClient::new(wrong).expect("client").account(&account("act_1")).await.expect_err("190");
    assert_eq!(err.code(), Some(190));
    errors.push(err);

    let client = MetaClient::new(fast(&running)).expect("client");
    sandbox.fail_object("act_1", MetaErrorSpec::permanent(100, Some(33), "gone"));
    errors.push(client.insights(&account("act_1"), &InsightsWindow::Preset("today".into())).await.expect_err("gone"));
    sandbox.clear_faults();
    sandbox.throttle_account("act_1", ThrottleFault::business_use_case(Duration::from_secs(3_600)));
    errors.push(client.campaigns(&account("act_1")).await.expect_err("throttled"));

    let mut closed = fast(&running);
    closed.graph_url = reqwest::Url::parse("http://127.0.0.1:9").expect("url");
    closed.max_retries = 0;
    errors.push(MetaClient::new(closed).expect("client").account(&account("act_1")).await.expect_err("refused"));

    for err in &errors {
        let shown = format!("{err} {err:?} {}", autoscaler::Error::from(err.clone()));
        assert!(!shown.contains(&good) && !shown.contains("EAAwrong-token-123"), "token leaked: {shown}");
    }
    let client_debug = format!("{client:?} {:?}", client.settings());
    assert!(!client_debug.contains(&good), "{client_debug}");
}

#[tokio::test]
async fn the_same_seed_and_clock_give_the_same_insights() {
    let read = |seed: u64| async move {
        let sandbox = Sandbox::generated(seed, 2, 40);
        sandbox.set_now(fixed_now());
        let (_running, client) = serve(&sandbox).await;
        let mut all = Vec::new();
        for id in sandbox.account_ids() {
            for preset in ["yesterday", "today"] {
                all.extend(client.insights(&id, &InsightsWindow::Preset(preset.into())).await.expect("insights"));
            }
        }
        all
    };
    let (first, second, other) = (read(42).await, read(42).await, read(43).await);
    assert!(!first.is_empty());
    assert_eq!(first, second);
    assert_ne!(first, other);
}

#[tokio::test]
async fn a_day_by_day_read_gives_each_days_history_figures_and_nothing_else() {
    let sandbox = Sandbox::generated(11, 1, 30);
    sandbox.set_now(fixed_now());
    let (_running, client) = serve(&sandbox).await;
    let id = account("act_1000001");
    let (since, until) = (chrono::NaiveDate::from_ymd_opt(2026, 6, 3), chrono::NaiveDate::from_ymd_opt(2026, 6, 8));
    let (since, until) = (since.expect("date"), until.expect("date"));
    let daily = client.insights(&id, &InsightsWindow::Daily { since, until }).await.expect("daily");
    let mut days = std::collections::BTreeSet::new();
    for row in &daily {
        days.insert(row.date_start.clone());
        assert_eq!(row.date_start, row.date_stop, "one row per campaign and day");
        // Only what a daily history uses is asked for.
        assert!(row.campaign_name.is_empty() && row.figures.clicks == 0 && row.figures.ctr_percent == 0.0, "{row:?}");
    }
    assert_eq!(days.len(), 6, "{days:?}");
    // Each day's figures are those of a full read of that day alone.
    let day = chrono::NaiveDate::from_ymd_opt(2026, 6, 5).expect("date");
    let full = by_id(client.insights(&id, &InsightsWindow::Range { since: day, until: day }).await.expect("one day"));
    let of_day: Vec<&CampaignPerformance> = daily.iter().filter(|r| r.date_start == "2026-06-05").collect();
    assert!(!of_day.is_empty() && of_day.len() == full.len());
    for row in of_day {
        let whole = &full[row.campaign_id.as_str()].figures;
        assert!(whole.clicks > 0, "the full read has clicks");
        let f = &row.figures;
        assert_eq!(
            (f.spend_minor, f.revenue_minor, f.impressions, f.conversions),
            (whole.spend_minor, whole.revenue_minor, whole.impressions, whole.conversions)
        );
    }
}

#[tokio::test]
async fn budget_changes_apply_to_the_hours_after_them() {
    let (changed, control) = (Sandbox::generated(5, 1, 30), Sandbox::generated(5, 1, 30));
    changed.set_now(fixed_now());
    control.set_now(fixed_now());
    let (_running, client) = serve(&changed).await;
    let (_control_running, control_client) = serve(&control).await;
    let id = account("act_1000001");
    let today = InsightsWindow::Preset("today".into());
    let yesterday = InsightsWindow::Preset("yesterday".into());
    let before_yesterday = client.insights(&id, &yesterday).await.expect("yesterday");

    let states = client.campaigns(&id).await.expect("campaigns");
    let target = states
        .iter()
        .find(|s| s.is_active() && matches!(s.budget, BudgetHolder::Campaign { .. }))
        .expect("a CBO campaign");
    let budget = target.daily_budget_minor().expect("budget");
    let results = client.write(&id, &target.budget_writes(budget * 3)).await.expect("answered");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(client.insights(&id, &yesterday).await.expect("yesterday"), before_yesterday, "the past is unchanged");

    // Three hours later the tripled budget has been spending; nothing else moved.
    changed.advance(chrono::Duration::hours(3));
    control.advance(chrono::Duration::hours(3));
    let after = by_id(client.insights(&id, &today).await.expect("today"));
    let baseline = by_id(control_client.insights(&id, &today).await.expect("today"));
    let key = target.campaign_id.as_str();
    assert!(
        after[key].figures.spend_minor > baseline[key].figures.spend_minor * 5 / 4,
        "{} vs {}",
        after[key].figures.spend_minor,
        baseline[key].figures.spend_minor
    );
    for (campaign, row) in &after {
        if campaign != key {
            assert_eq!(row, &baseline[campaign]);
        }
    }
}

#[tokio::test]
async fn the_generated_market_has_the_economic_mix() {
    let sandbox = Sandbox::generated(7, 3, 150);
    sandbox.set_now(fixed_now());
    let (_running, client) = serve(&sandbox).await;
    let mut rows = Vec::new();
    let mut ad_set_campaigns = 0;
    let mut campaigns = 0;
    for id in sandbox.account_ids() {
        let states = client.campaigns(&id).await.expect("campaigns");
        campaigns += states.len();
        ad_set_campaigns += states.iter().filter(|s| matches!(s.budget, BudgetHolder::AdSets(_))).count();
        rows.extend(client.insights(&id, &InsightsWindow::Preset("last_7d".into())).await.expect("insights"));
    }
    let tokyo = client.account(&account("act_1000003")).await.expect("third account");
    assert_eq!((tokyo.currency.as_str(), tokyo.timezone_name.as_str()), ("JPY", "Asia/Tokyo"));

    let count = |pred: &dyn Fn(&CampaignPerformance) -> bool| rows.iter().filter(|r| pred(r)).count();
    let winners = count(&|r| r.figures.roas() > 4.0 && r.figures.ctr_percent > 3.0);
    let solid = count(&|r| (2.9..3.6).contains(&r.figures.roas()));
    let mediocre = count(&|r| (1.7..2.4).contains(&r.figures.roas()));
    let losers = count(&|r| r.figures.roas() < 1.5);
    let deep = count(&|r| r.figures.roas() < 1.0);
    for (label, n) in
        [("winners", winners), ("solid", solid), ("mediocre", mediocre), ("losers", losers), ("deep losers", deep)]
    {
        assert!(n * 100 >= rows.len() * 5, "{label}: {n} of {}", rows.len());
    }
    let share = ad_set_campaigns * 100 / campaigns;
    assert!((22..45).contains(&share), "ad-set budgets on {share}% of campaigns");

    let small: Vec<&CampaignPerformance> =
        rows.iter().filter(|r| sandbox.archetype(r.campaign_id.as_str()) == Some(Archetype::NoisySmall)).collect();
    assert!(!small.is_empty());
    assert!(small.iter().all(|r| r.figures.impressions < 7 * 2_000), "small campaigns have few impressions");
    assert!(rows.iter().any(|r| sandbox.archetype(r.campaign_id.as_str()) == Some(Archetype::Daypart)));
}

#[tokio::test]
async fn a_cycle_over_many_accounts_reads_each_in_a_few_paged_requests() {
    // Scaled down for debug builds; `full_scale_cycle` below is the full size.
    let sandbox = Sandbox::generated(11, 8, 300);
    sandbox.set_now(fixed_now());
    let (_running, client) = serve(&sandbox).await;
    let cycles = sandbox.account_ids().into_iter().map(|id| {
        let client = client.clone();
        async move {
            let states = client.campaigns(&id).await?;
            let yesterday = client.insights(&id, &InsightsWindow::Preset("yesterday".into())).await?;
            let today = client.insights(&id, &InsightsWindow::Preset("today".into())).await?;
            Ok::<_, PlatformError>((states.len(), yesterday.len(), today.len()))
        }
    });
    let results = futures_util::future::join_all(cycles).await;
    for result in results {
        let (states, yesterday, today) = result.expect("cycle");
        assert_eq!(states, 300);
        assert!(yesterday > 250, "{yesterday} campaigns delivered yesterday");
        // Where the local day has just begun, no hour of today has ended yet.
        assert!(today <= yesterday + 10);
    }
    // One page each of campaigns, ad sets and both insights windows per
    // account (500 rows a page): never a request per campaign.
    assert_eq!(client.request_count(), 8 * 4, "requests sent");
}

/// The full scale: 100 accounts x 1000 campaigns, campaigns plus insights for
/// yesterday and today. Run with
/// `cargo test --release --test meta_client -- --ignored --nocapture full_scale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "release-mode measurement"]
async fn full_scale_cycle() {
    let built = Instant::now();
    let sandbox = Sandbox::generated(11, 100, 1_000);
    sandbox.set_now(fixed_now());
    let build_took = built.elapsed();
    let (_running, client) = serve(&sandbox).await;
    let started = Instant::now();
    let cycles = sandbox.account_ids().into_iter().map(|id| {
        let client = client.clone();
        async move {
            let states = client.campaigns(&id).await?;
            let yesterday = client.insights(&id, &InsightsWindow::Preset("yesterday".into())).await?;
            let today = client.insights(&id, &InsightsWindow::Preset("today".into())).await?;
            Ok::<_, PlatformError>(states.len() + yesterday.len() + today.len())
        }
    });
    let rows: usize = futures_util::future::join_all(cycles).await.into_iter().map(|r| r.expect("cycle")).sum();
    let took = started.elapsed();
    // A measurement, printed for the README; no timing is asserted.
    println!("generated in {build_took:?}; cycle: {rows} rows, {} requests in {took:?}", client.request_count());
    assert!(rows > 0);
}
