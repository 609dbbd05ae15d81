//! The server's edges, through the real server: timestamps outside the
//! protobuf range, undecodable and over-size requests, made-up method paths
//! and `/metrics`, currencies, the request timeout, the per-connection
//! concurrency limit and the per-principal limit on `WatchActions` streams.
use std::time::Duration;

use autoscaler::auth::{Role, TokenTable};
use autoscaler::pb::{self, ActionFilter, ScalingRule};
use autoscaler::platform::sandbox::SandboxAccounts;
use meta_sandbox::Sandbox;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::helpers::{Backend, backends, invalid_field, spawn_app, spawn_app_with};

/// How long a test waits for a condition before it fails.
const WAIT: Duration = Duration::from_secs(15);

/// 10000-01-01T00:00:00Z, the first second past the protobuf range.
const YEAR_10000: i64 = 253_402_300_800;

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

#[tokio::test]
async fn timestamps_outside_the_protobuf_range_are_invalid_arguments_naming_the_field() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut approvals = app.approvals.clone();
        for (filter, field) in [
            (ActionFilter { start_time: ts(YEAR_10000), ..Default::default() }, "filter.start_time"),
            (ActionFilter { end_time: ts(YEAR_10000), ..Default::default() }, "filter.end_time"),
            (ActionFilter { start_time: ts(-62_135_596_801), ..Default::default() }, "filter.start_time"),
        ] {
            let request = pb::ListActionHistoryRequest { filter: Some(filter.clone()), ..Default::default() };
            let err = approvals.list_action_history(request).await.expect_err("out of range");
            assert_eq!(invalid_field(&err), field, "{backend:?}");
            let request = pb::WatchActionsRequest { filter: Some(filter), ..Default::default() };
            let err = approvals.watch_actions(request).await.expect_err("out of range");
            assert_eq!(invalid_field(&err), field, "{backend:?}");
        }
        let request = pb::WatchActionsRequest { replay_from: ts(YEAR_10000), ..Default::default() };
        let err = approvals.watch_actions(request).await.expect_err("out of range");
        assert_eq!(invalid_field(&err), "replay_from");

        let mut autoscaler = app.autoscaler.clone();
        for (request, field) in [
            (pb::ReplayRulesRequest { start_time: ts(YEAR_10000), ..Default::default() }, "start_time"),
            (pb::ReplayRulesRequest { end_time: ts(YEAR_10000), ..Default::default() }, "end_time"),
        ] {
            let request = pb::ReplayRulesRequest { account_id: "act_1000001".into(), ..request };
            let err = autoscaler.replay_rules(request).await.expect_err("out of range");
            assert_eq!(invalid_field(&err), field);
        }

        // The last instant of the range is still a valid filter.
        let last = Some(prost_types::Timestamp { seconds: YEAR_10000 - 1, nanos: 999_999_999 });
        let filter = ActionFilter { end_time: last, ..Default::default() };
        approvals
            .list_action_history(pb::ListActionHistoryRequest { filter: Some(filter), ..Default::default() })
            .await
            .expect("9999-12-31T23:59:59.999999999Z is in range");
    }
}

/// A unary call of `path` whose request is `message` encoded as `Req`.
async fn call_as<Req, Resp>(channel: &Channel, path: &str, message: Req) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let path = http::uri::PathAndQuery::try_from(path).expect("method path");
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    grpc.unary(Request::new(message), path, codec).await.map(tonic::Response::into_inner)
}

async fn scrape(app: &crate::helpers::TestApp) -> String {
    let addr = app.metrics_addr.expect("metrics served");
    reqwest::get(format!("http://{addr}/metrics")).await.expect("scrape").text().await.expect("text")
}

fn grpc_series(body: &str) -> Vec<&str> {
    body.lines().filter(|l| l.starts_with("autoscaler_grpc_requests_total{")).collect()
}

#[tokio::test]
async fn undecodable_requests_are_invalid_arguments_and_oversize_ones_resource_exhausted() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    // `GetRuleRequest.id` is a varint; a string in field 1 cannot decode as it.
    let wrong = pb::ListRulesRequest { account_id: "act_1".into(), ..Default::default() };
    let err = call_as::<_, pb::GetRuleResponse>(&app.channel, "/autoscaler.v1.RulesService/GetRule", wrong)
        .await
        .expect_err("undecodable");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let huge = pb::ListRulesRequest {
        account_id: "a".repeat(autoscaler::startup::MAX_REQUEST_BYTES + 1),
        ..Default::default()
    };
    let err = app.rules.clone().list_rules(huge).await.expect_err("over the size limit");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    app.rules.clone().list_rules(pb::ListRulesRequest::default()).await.expect("the connection still serves");
    let body = scrape(&app).await;
    for expected in [
        "method=\"/autoscaler.v1.RulesService/GetRule\",code=\"INVALID_ARGUMENT\"",
        "method=\"/autoscaler.v1.RulesService/ListRules\",code=\"RESOURCE_EXHAUSTED\"",
    ] {
        assert!(body.contains(expected), "missing {expected} in\n{body}");
    }
}

#[tokio::test]
async fn made_up_method_paths_share_one_metrics_label() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    for i in 0..50 {
        let path = format!("/autoscaler.v1.RulesService/MadeUp{i}");
        let err = call_as::<_, pb::ListRulesResponse>(&app.channel, &path, pb::ListRulesRequest::default())
            .await
            .expect_err("no such method");
        assert_eq!(err.code(), Code::Unimplemented);
    }
    app.rules.clone().list_rules(pb::ListRulesRequest::default()).await.expect("a real method");
    let body = scrape(&app).await;
    let mut series = grpc_series(&body);
    series.sort_unstable();
    assert_eq!(
        series,
        [
            "autoscaler_grpc_requests_total{method=\"/autoscaler.v1.RulesService/ListRules\",code=\"OK\"} 1",
            "autoscaler_grpc_requests_total{method=\"other\",code=\"UNIMPLEMENTED\"} 50",
        ],
        "{body}"
    );
}

#[tokio::test]
async fn rule_currencies_must_be_iso_4217() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut rules = app.rules.clone();
        let rule = |currency: &str| ScalingRule {
            account_id: "act_1000001".into(),
            name: "Default".into(),
            currency: currency.into(),
            ..Default::default()
        };
        for made_up in ["USS", "ZZZ", "XXX"] {
            let err = rules
                .create_rule(pb::CreateRuleRequest { rule: Some(rule(made_up)) })
                .await
                .expect_err("not a currency");
            assert_eq!(invalid_field(&err), "rule.currency", "{made_up}");
        }
        let created = rules
            .create_rule(pb::CreateRuleRequest { rule: Some(rule("JPY")) })
            .await
            .expect("JPY is a currency")
            .into_inner()
            .rule
            .expect("rule");
        let update = pb::UpdateRuleRequest {
            rule: Some(ScalingRule { id: created.id, currency: "USS".into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["currency".into()] }),
        };
        let err = rules.update_rule(update).await.expect_err("not a currency");
        assert_eq!(invalid_field(&err), "rule.currency");
        let listed = rules.list_rules(pb::ListRulesRequest::default()).await.expect("listed").into_inner().rules;
        assert_eq!(listed.iter().map(|r| r.currency.as_str()).collect::<Vec<_>>(), ["JPY"], "{backend:?}");
    }
}

/// Starts a unary call of `path` whose request never arrives (its body stays
/// open), so the server holds it until something ends it.
fn held_call(channel: &Channel, path: &'static str) -> tokio::task::JoinHandle<Result<(), tonic::Status>> {
    let channel = channel.clone();
    tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.expect("channel ready");
        let codec = tonic_prost::ProstCodec::<pb::ListRulesRequest, pb::ListRulesResponse>::default();
        let never = futures_util::stream::pending::<pb::ListRulesRequest>();
        let path = http::uri::PathAndQuery::from_static(path);
        grpc.client_streaming(Request::new(never), path, codec).await.map(drop)
    })
}

#[tokio::test]
async fn a_call_that_does_not_finish_in_time_ends_with_deadline_exceeded() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.request_timeout = Some(Duration::from_millis(200))).await;
    let outcome = tokio::time::timeout(WAIT, held_call(&app.channel, "/autoscaler.v1.RulesService/ListRules"))
        .await
        .expect("the server ended the call")
        .expect("task");
    assert_eq!(outcome.expect_err("timed out").code(), Code::DeadlineExceeded);
    app.rules.clone().list_rules(pb::ListRulesRequest::default()).await.expect("later calls are served");
}

#[tokio::test]
async fn a_cycle_is_never_cut_by_the_request_timeout() {
    let sandbox = Sandbox::generated(21, 1, 3);
    let running = sandbox.start().await.expect("sandbox starts");
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.meta.access_token = Some(running.access_token().into());
        s.meta.graph_url = running.base_url().to_string();
        s.meta.account_ids = sandbox.account_ids();
        s.limits.request_timeout = Some(Duration::from_millis(200));
    })
    .await;
    // The cycle's first Graph request takes five times the timeout.
    sandbox.stall_next_requests(1, Duration::from_secs(1));
    let report = app.autoscaler.clone().run_cycle(pb::RunCycleRequest::default()).await.expect("the cycle ran");
    let report = report.into_inner();
    assert!(report.cycle_id > 0 && report.campaigns_evaluated == 3, "{report:?}");
}

#[tokio::test]
async fn calls_beyond_the_per_connection_limit_are_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.max_concurrent_requests = 1).await;
    let mut held = held_call(&app.channel, "/autoscaler.v1.RulesService/ListRules");
    // Once the held call occupies the connection's only slot, the next call
    // on the same connection is refused instead of queued. (The held call is
    // itself refused when it arrives while a probe holds the slot: then it
    // is made again.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let refused = loop {
        if held.is_finished() {
            held = held_call(&app.channel, "/autoscaler.v1.RulesService/ListRules");
        }
        match app.rules.clone().list_rules(pb::ListRulesRequest::default()).await {
            Err(status) if status.code() == Code::ResourceExhausted => break status,
            other => {
                assert!(other.is_ok(), "{other:?}");
                assert!(tokio::time::Instant::now() < deadline, "never refused: the limit does not hold");
                tokio::task::yield_now().await;
            }
        }
    };
    assert!(refused.message().contains("Too many active requests"), "{refused:?}");
    held.abort();
    // Another connection has slots of its own.
    let other = Channel::from_shared(format!("http://{}", app.addr)).expect("uri").connect().await.expect("connects");
    autoscaler::pb::rules_service_client::RulesServiceClient::new(other)
        .list_rules(pb::ListRulesRequest::default())
        .await
        .expect("served on another connection");
}

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut request = Request::new(msg);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii token"));
    request
}

#[tokio::test]
async fn each_principal_holds_a_bounded_number_of_watch_streams() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.security.tokens =
            TokenTable::from_tokens([("vera", Role::Viewer, "vera-token-1"), ("wes", Role::Viewer, "wes-token-2")]);
        s.limits.max_watch_streams = 2;
    })
    .await;
    let mut client = app.approvals.clone();
    let watch = |token: &'static str| {
        let mut client = app.approvals.clone();
        async move { client.watch_actions(authed(pb::WatchActionsRequest::default(), token)).await }
    };
    let first = watch("vera-token-1").await.expect("first stream");
    let _second = watch("vera-token-1").await.expect("second stream");
    let refused = watch("vera-token-1").await.expect_err("third stream");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let _other = watch("wes-token-2").await.expect("another principal has slots of its own");

    // Closing a stream frees its slot once the server sees the client go.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match client.watch_actions(authed(pb::WatchActionsRequest::default(), "vera-token-1")).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(tokio::time::Instant::now() < deadline, "the closed stream's slot was never freed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Not a test of behaviour: measures `ListRules` one call at a time, to show
/// the trailers no longer wait for a delayed ACK (about 40 ms without
/// `TCP_NODELAY`). `cargo test --test api -- --ignored --nocapture list_call_latency`
#[tokio::test]
#[ignore]
async fn list_call_latency() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut rules = app.rules.clone();
    for i in 0..20 {
        let rule = ScalingRule { account_id: "act_1000001".into(), name: format!("r{i}"), ..Default::default() };
        let campaign = ScalingRule { campaign_id: format!("{}", 100 + i), ..rule };
        rules.create_rule(pb::CreateRuleRequest { rule: Some(campaign) }).await.expect("created");
    }
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = std::time::Instant::now();
        rules.list_rules(pb::ListRulesRequest::default()).await.expect("listed");
        times.push(started.elapsed());
    }
    times.sort();
    println!("ListRules x200: p50 {:?}, p90 {:?}, max {:?}", times[100], times[180], times[199]);
}

#[tokio::test]
async fn the_sandbox_pages_hourly_insights_by_rows_as_meta_does() {
    // Meta's `limit` counts rows (a campaign's hour): a month of 30 campaigns
    // must not come back as one page of 21,600 rows.
    let sandbox = Sandbox::generated(5, 1, 30);
    let running = sandbox.start().await.expect("sandbox starts");
    let account = sandbox.account_ids().remove(0);
    // reqwest is built without a TLS provider; MetaClient installs ring, do the same here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let mut url = format!(
        "{}v26.0/{account}/insights?level=campaign&time_increment=1&limit=100\
         &breakdowns=hourly_stats_aggregated_by_advertiser_time_zone&fields=campaign_id,spend,impressions,clicks\
         &date_preset=last_30d&access_token={}",
        running.base_url(),
        running.access_token()
    );
    let (mut pages, mut rows) = (0, 0);
    loop {
        let body: serde_json::Value = client.get(&url).send().await.expect("sent").json().await.expect("json");
        let data = body["data"].as_array().unwrap_or_else(|| panic!("a page: {body}"));
        assert!(data.len() <= 100, "a page of {} rows", data.len());
        pages += 1;
        rows += data.len();
        match body["paging"]["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert!(rows > 10_000 && pages >= rows / 100, "{rows} rows in {pages} pages");
}

/// Resident and peak memory of this process, in MiB (`/proc/self/status`).
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

/// Not a test of behaviour: the memory one learn cycle over 5 sandbox
/// accounts of 200 campaigns takes (28 days of Meta's hourly breakdown each),
/// server, sandbox and client in this process.
/// `cargo test --test api -- --ignored --nocapture learn_cycle_memory`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn learn_cycle_memory() {
    let sandbox = Sandbox::generated(42, 5, 200);
    let running = sandbox.start().await.expect("sandbox starts");
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.meta.access_token = Some(running.access_token().into());
        s.meta.graph_url = running.base_url().to_string();
        s.meta.account_ids = sandbox.account_ids();
        s.meta.request_timeout = Duration::from_secs(120);
    })
    .await;
    let (before, _) = memory_mib();
    let started = std::time::Instant::now();
    let request = pb::RunCycleRequest { mode: pb::CycleMode::Learn as i32, ..Default::default() };
    let report = app.autoscaler.clone().run_cycle(request).await.expect("learn cycle").into_inner();
    let (after, peak) = memory_mib();
    println!(
        "learn cycle over 5 x 200 campaigns: {} profiles in {:.1?}; RSS {before} MiB before, {after} MiB after, peak {peak} MiB",
        report.profiles_learned,
        started.elapsed()
    );
    let request = pb::RunCycleRequest { mode: pb::CycleMode::Learn as i32, ..Default::default() };
    app.autoscaler.clone().run_cycle(request).await.expect("second learn cycle");
    let (again, peak) = memory_mib();
    println!("after a second learn cycle: RSS {again} MiB, peak {peak} MiB");
}

/// `serve` flags as the binary parses them.
#[derive(Debug, clap::Parser)]
struct Serve {
    #[command(flatten)]
    args: autoscaler::config::ServeArgs,
}

fn parse_limits(flags: &[&str]) -> Result<autoscaler::config::LimitsConfig, String> {
    use clap::Parser;
    let cli =
        Serve::try_parse_from(std::iter::once("serve").chain(flags.iter().copied())).map_err(|e| e.to_string())?;
    cli.args.into_settings().map(|s| s.limits).map_err(|e| e.to_string())
}

#[test]
fn server_limits_are_settings_with_defaults() {
    let defaults = parse_limits(&[]).expect("defaults");
    assert_eq!(defaults, autoscaler::config::LimitsConfig::default());
    assert_eq!(defaults.request_timeout, Some(Duration::from_secs(60)));
    let set =
        parse_limits(&["--request-timeout-secs", "0", "--max-concurrent-requests", "8", "--max-watch-streams", "2"])
            .expect("valid");
    assert_eq!((set.request_timeout, set.max_concurrent_requests, set.max_watch_streams), (None, 8, 2));
    for (flags, setting) in [
        (["--max-watch-streams", "0"], "AUTOSCALER_MAX_WATCH_STREAMS"),
        (["--max-concurrent-requests", "0"], "AUTOSCALER_MAX_CONCURRENT_REQUESTS"),
        (["--request-timeout-secs", "100000"], "AUTOSCALER_REQUEST_TIMEOUT_SECS"),
    ] {
        let err = parse_limits(&flags).expect_err("out of range");
        assert!(err.contains(setting), "{err}");
    }
}
