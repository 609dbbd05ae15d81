//! Security: bearer tokens and roles on every RPC, identities taken from the
//! token, the loopback-only default, TLS end to end, the request size limit
//! and `appsecret_proof` on the wire.
use autoscaler::auth::{Role, TokenTable, token_sha256_hex};
use autoscaler::config::{ServeArgs, Settings};
use autoscaler::domain::action::{ActionStatus, ActionType};
use autoscaler::pb::{self, CreateRuleRequest, DecideActionRequest, Decision, ScalingRule, UpdateRuleRequest};
use autoscaler::startup::Application;
use clap::Parser;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request};

use crate::helpers::{
    Backend, TestApp, backends, record_actions, sample_action, spawn_app, spawn_app_with, spawn_app_with_endpoint,
    test_settings,
};

const VIEWER: &str = "viewer-7f3a";
const OPERATOR: &str = "operator-91bc";
const APPROVER: &str = "approver-c0de";
const ADMIN: &str = "admin-5e1f";

/// One principal per role, named after it (`vera` the viewer, ...).
fn tokens() -> TokenTable {
    TokenTable::from_tokens([
        ("vera", Role::Viewer, VIEWER),
        ("otto", Role::Operator, OPERATOR),
        ("ana", Role::Approver, APPROVER),
        ("root", Role::Admin, ADMIN),
    ])
}

fn with_tokens(settings: &mut Settings) {
    settings.security.tokens = tokens();
}

/// `msg` with `authorization: Bearer <token>`.
fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut request = Request::new(msg);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii token"));
    request
}

/// Calls `path` with an empty message (every request field at its default)
/// and returns the status code. Server streaming on the client side works
/// for unary methods too: the wire format is the same.
async fn raw_call(channel: &Channel, path: &str, authorization: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let mut request = Request::new(());
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", value.parse().expect("ascii header"));
    }
    let path = http::uri::PathAndQuery::try_from(path).expect("method path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc.server_streaming(request, path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Every RPC and the roles that may call it, written out independently of
/// the server's table.
const MATRIX: &[(&str, &[Role])] = {
    use Role::*;
    &[
        ("/autoscaler.v1.RulesService/CreateRule", &[Operator, Admin]),
        ("/autoscaler.v1.RulesService/GetRule", &[Viewer, Operator, Approver, Admin]),
        ("/autoscaler.v1.RulesService/ListRules", &[Viewer, Operator, Approver, Admin]),
        ("/autoscaler.v1.RulesService/UpdateRule", &[Operator, Admin]),
        ("/autoscaler.v1.RulesService/DeleteRule", &[Operator, Admin]),
        ("/autoscaler.v1.AutoScalerService/EvaluateCampaign", &[Operator, Admin]),
        ("/autoscaler.v1.AutoScalerService/EvaluateCampaigns", &[Operator, Admin]),
        ("/autoscaler.v1.AutoScalerService/RunCycle", &[Operator, Admin]),
        ("/autoscaler.v1.AutoScalerService/GetDashboard", &[Viewer, Operator, Approver, Admin]),
        ("/autoscaler.v1.AutoScalerService/ReplayRules", &[Operator, Admin]),
        ("/autoscaler.v1.ApprovalsService/ListPendingActions", &[Viewer, Operator, Approver, Admin]),
        ("/autoscaler.v1.ApprovalsService/DecideAction", &[Approver, Admin]),
        ("/autoscaler.v1.ApprovalsService/ListActionHistory", &[Viewer, Operator, Approver, Admin]),
        ("/autoscaler.v1.ApprovalsService/GetAction", &[Viewer, Operator, Approver, Admin]),
        ("/autoscaler.v1.ApprovalsService/WatchActions", &[Viewer, Operator, Approver, Admin]),
        ("/autoscaler.v1.TimeOptimizationService/LearnOptimalHours", &[Operator, Admin]),
        ("/autoscaler.v1.TimeOptimizationService/GetTimeReport", &[Viewer, Operator, Approver, Admin]),
        ("/autoscaler.v1.TimeOptimizationService/GetBudgetSchedule", &[Viewer, Operator, Approver, Admin]),
    ]
};

fn token_of(role: Role) -> &'static str {
    match role {
        Role::Viewer => VIEWER,
        Role::Operator => OPERATOR,
        Role::Approver => APPROVER,
        Role::Admin => ADMIN,
    }
}

#[tokio::test]
async fn every_rpc_without_a_valid_token_is_unauthenticated() {
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    let wrong = format!("Bearer {VIEWER}x");
    let hash_as_token = format!("Bearer {}", token_sha256_hex(ADMIN));
    let bad_headers = [None, Some(wrong.as_str()), Some(hash_as_token.as_str()), Some("Bearer "), Some(ADMIN)];
    let mut basic = String::from("Basic ");
    basic.push_str(ADMIN);
    for (path, _) in MATRIX {
        for header in bad_headers.iter().copied().chain([Some(basic.as_str())]) {
            assert_eq!(raw_call(&app.channel, path, header).await, Code::Unauthenticated, "{path} with {header:?}");
        }
    }
}

#[tokio::test]
async fn every_rpc_is_open_to_exactly_its_roles() {
    for backend in backends() {
        let app = spawn_app_with(backend, with_tokens).await;
        for (path, allowed) in MATRIX {
            for role in Role::ALL {
                let code = raw_call(&app.channel, path, Some(&format!("Bearer {}", token_of(role)))).await;
                if allowed.contains(&role) {
                    assert!(
                        !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                        "{role} must pass the gate of {path}, got {code:?}"
                    );
                } else {
                    assert_eq!(code, Code::PermissionDenied, "{role} must not call {path}");
                }
            }
        }
    }
}

#[tokio::test]
async fn unknown_methods_of_our_services_are_denied_even_to_admins() {
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    let admin = format!("Bearer {ADMIN}");
    for path in ["/autoscaler.v1.RulesService/DropAllRules", "/autoscaler.v1.ApprovalsService/ApproveEverything"] {
        assert_eq!(raw_call(&app.channel, path, None).await, Code::Unauthenticated, "{path}");
        assert_eq!(raw_call(&app.channel, path, Some(&admin)).await, Code::PermissionDenied, "{path}");
    }
    // Unchanged without tokens: the router answers for a method it lacks.
    let open = spawn_app(Backend::Sqlite).await;
    assert_eq!(raw_call(&open.channel, "/autoscaler.v1.RulesService/DropAllRules", None).await, Code::Unimplemented);
}

#[tokio::test]
async fn health_and_reflection_stay_open_without_a_token() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    let mut health = HealthClient::new(app.channel.clone());
    health.check(HealthCheckRequest { service: "autoscaler.v1.RulesService".into() }).await.expect("health is open");
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream =
        reflection.server_reflection_info(tokio_stream::once(request)).await.expect("reflection is open").into_inner();
    assert!(stream.message().await.expect("reflection answers").is_some());
}

fn rule(account: &str) -> ScalingRule {
    ScalingRule { account_id: account.into(), name: "Secure rule".into(), ..Default::default() }
}

#[tokio::test]
async fn rules_record_the_authenticated_principal_as_creator_and_updater() {
    for backend in backends() {
        let app = spawn_app_with(backend, with_tokens).await;
        let mut rules = app.rules.clone();
        let mut forged = rule("act_42");
        forged.created_by = "someone-else".into();
        forged.updated_by = "someone-else".into();
        let created = rules
            .create_rule(authed(CreateRuleRequest { rule: Some(forged) }, OPERATOR))
            .await
            .expect("operator creates")
            .into_inner()
            .rule
            .expect("rule");
        assert_eq!((created.created_by.as_str(), created.updated_by.as_str()), ("otto", "otto"));

        let change = ScalingRule { id: created.id, multiplier_up: Some(1.1), ..Default::default() };
        let mask = prost_types::FieldMask { paths: vec!["multiplier_up".into()] };
        let updated = rules
            .update_rule(authed(UpdateRuleRequest { rule: Some(change), update_mask: Some(mask) }, ADMIN))
            .await
            .expect("admin updates")
            .into_inner()
            .rule
            .expect("rule");
        assert_eq!((updated.created_by.as_str(), updated.updated_by.as_str()), ("otto", "root"));

        let denied = rules.create_rule(authed(CreateRuleRequest { rule: Some(rule("act_43")) }, APPROVER)).await;
        assert_eq!(denied.expect_err("approver may not create").code(), Code::PermissionDenied);
    }
}

async fn pending(app: &TestApp, campaign: &str) -> i64 {
    let action = sample_action("act_9", campaign, ActionType::ScaleUp, ActionStatus::PendingApproval);
    record_actions(&app.state, &[action]).await[0].id
}

#[tokio::test]
async fn the_approver_recorded_is_the_authenticated_principal_not_the_typed_name() {
    for backend in backends() {
        let app = spawn_app_with(backend, with_tokens).await;
        let mut approvals = app.approvals.clone();
        let decide = |id: i64, by: &str| DecideActionRequest {
            action_id: id,
            decision: Decision::Reject as i32,
            comment: "no".into(),
            decided_by: by.into(),
        };

        let typed = pending(&app, "501").await;
        let action = approvals
            .decide_action(authed(decide(typed, "the-ceo"), APPROVER))
            .await
            .expect("approver decides")
            .into_inner()
            .action
            .expect("action");
        assert_eq!(action.decided_by, "ana", "the typed name is ignored");

        let blank = pending(&app, "502").await;
        let action = approvals
            .decide_action(authed(decide(blank, ""), ADMIN))
            .await
            .expect("no decided_by needed with a token")
            .into_inner()
            .action
            .expect("action");
        assert_eq!(action.decided_by, "root");

        let refused = pending(&app, "503").await;
        for token in [VIEWER, OPERATOR] {
            let err = approvals.decide_action(authed(decide(refused, "ana"), token)).await.expect_err("refused");
            assert_eq!(err.code(), Code::PermissionDenied);
        }
        let err = approvals.decide_action(decide(refused, "ana")).await.expect_err("no token");
        assert_eq!(err.code(), Code::Unauthenticated);
        let still = autoscaler::persistence::actions::get(&app.state.db, refused).await.expect("action");
        assert_eq!(still.status, ActionStatus::PendingApproval, "refused calls change nothing");
    }
}

#[tokio::test]
async fn without_tokens_callers_stay_anonymous_and_decided_by_is_required() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut rules = app.rules.clone();
    let created = rules.create_rule(CreateRuleRequest { rule: Some(rule("act_44")) }).await.expect("open server");
    assert_eq!(created.into_inner().rule.expect("rule").created_by, "anonymous");
    let id = pending(&app, "504").await;
    let request = DecideActionRequest { action_id: id, decision: Decision::Reject as i32, ..Default::default() };
    let err = app.approvals.clone().decide_action(request).await.expect_err("decided_by required");
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn build_on(listen: &str, adjust: impl FnOnce(&mut Settings)) -> anyhow::Result<Application> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()));
    settings.listen = listen.parse().expect("address");
    adjust(&mut settings);
    let app = Application::build(settings).await;
    drop(dir);
    app
}

#[tokio::test]
async fn without_tokens_the_server_only_listens_on_loopback() {
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let Err(err) = build_on(listen, |_| {}).await else { panic!("{listen} must be refused without tokens") };
        let message = format!("{err:#}");
        assert!(message.contains("--insecure") && message.contains("AUTOSCALER_AUTH_TOKENS"), "{message}");
    }
    build_on("127.0.0.1:0", |_| {}).await.expect("loopback is fine");
    build_on("0.0.0.0:0", |s| s.security.insecure = true).await.expect("--insecure opens it explicitly");
    build_on("0.0.0.0:0", with_tokens).await.expect("tokens allow any address");
}

/// `serve` flags as the binary parses them.
#[derive(Debug, Parser)]
struct Serve {
    #[command(flatten)]
    args: ServeArgs,
}

fn parse_serve(flags: &[&str]) -> Result<Settings, String> {
    let cli =
        Serve::try_parse_from(std::iter::once("serve").chain(flags.iter().copied())).map_err(|e| e.to_string())?;
    cli.args.into_settings().map_err(|e| e.to_string())
}

#[test]
fn token_lists_are_read_from_the_file_and_the_environment_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tokens");
    let text = format!(
        "# name role sha256\nvera viewer {}\n\notto operator {}\n",
        token_sha256_hex("a"),
        token_sha256_hex("b")
    );
    std::fs::write(&file, text).expect("token file");
    let list = format!("ana approver {};root admin {}", token_sha256_hex("c"), token_sha256_hex("d"));
    let path = file.to_string_lossy().into_owned();
    let settings = parse_serve(&["--auth-tokens-file", &path, "--auth-tokens", &list]).expect("valid");
    let tokens = &settings.security.tokens;
    assert_eq!(tokens.len(), 4);
    let name = |t: &str| tokens.authenticate(t).map(|p| (p.name.clone(), p.role));
    assert_eq!(name("a"), Some(("vera".into(), Role::Viewer)));
    assert_eq!(name("d"), Some(("root".into(), Role::Admin)));
    assert!(!settings.security.insecure && settings.security.tls.is_none());
}

#[test]
fn bad_token_entries_stop_the_start_naming_the_setting_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        format!("vera viewer {}\n# ok so far\nroot superuser {}\n", token_sha256_hex("a"), token_sha256_hex("b")),
    )
    .expect("token file");
    let path = file.to_string_lossy().into_owned();
    let err = parse_serve(&["--auth-tokens-file", &path]).expect_err("bad role");
    assert!(
        err.contains("AUTOSCALER_AUTH_TOKENS_FILE") && err.contains("line 3") && err.contains("superuser"),
        "{err}"
    );

    let err =
        parse_serve(&["--auth-tokens", &format!("vera viewer {};otto operator s3cret-token", token_sha256_hex("a"))])
            .expect_err("a raw token instead of its hash");
    assert!(err.contains("AUTOSCALER_AUTH_TOKENS") && err.contains("entry 2"), "{err}");
    assert!(!err.contains("s3cret-token"), "the error must not echo what may be a secret: {err}");

    let missing = dir.path().join("nope").to_string_lossy().into_owned();
    let err = parse_serve(&["--auth-tokens-file", &missing]).expect_err("missing file");
    assert!(err.contains("AUTOSCALER_AUTH_TOKENS_FILE"), "{err}");

    let same = token_sha256_hex("a");
    let err = parse_serve(&["--auth-tokens", &format!("a viewer {same};b admin {same}")]).expect_err("duplicate");
    assert!(err.contains("twice"), "{err}");
}

/// A CA, and a server certificate it signed for localhost and 127.0.0.1.
struct TestPki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "autoscaler test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    TestPki { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

fn tls_endpoint(addr: std::net::SocketAddr, ca_pem: &str) -> Endpoint {
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)).domain_name("localhost");
    Channel::from_shared(format!("https://{addr}")).expect("uri").tls_config(tls).expect("client TLS")
}

#[tokio::test]
async fn tls_end_to_end_with_a_token() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert, &pki.cert_pem).expect("cert file");
    std::fs::write(&key, &pki.key_pem).expect("key file");
    let (cert, key) = (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    // Through the flags, as an operator would configure it.
    let tls = parse_serve(&["--tls-cert", &cert, "--tls-key", &key]).expect("TLS flags").security.tls;
    assert!(tls.is_some());
    let ca = pki.ca_pem.clone();
    let app = spawn_app_with_endpoint(
        Backend::Sqlite,
        |settings| {
            with_tokens(settings);
            settings.security.tls = tls;
        },
        move |addr| tls_endpoint(addr, &ca),
    )
    .await;

    let listed = app.rules.clone().list_rules(authed(pb::ListRulesRequest::default(), VIEWER)).await;
    assert!(listed.is_ok(), "{listed:?}");
    let created =
        app.rules.clone().create_rule(authed(CreateRuleRequest { rule: Some(rule("act_7")) }, OPERATOR)).await;
    assert_eq!(created.expect("created over TLS").into_inner().rule.expect("rule").created_by, "otto");
    let anonymous = app.rules.clone().list_rules(pb::ListRulesRequest::default()).await;
    assert_eq!(anonymous.expect_err("TLS is no credential").code(), Code::Unauthenticated);

    // Plaintext and an unknown CA both fail to talk to it.
    let connect = |endpoint: Endpoint| async move {
        tokio::time::timeout(std::time::Duration::from_secs(5), endpoint.connect()).await
    };
    let plain = Channel::from_shared(format!("http://{}", app.addr)).expect("uri");
    // A plaintext client may not even connect; if it does, no call succeeds.
    if let Ok(Ok(channel)) = connect(plain).await {
        let code = raw_call(&channel, "/autoscaler.v1.RulesService/ListRules", Some(&format!("Bearer {VIEWER}"))).await;
        assert_ne!(code, Code::Ok, "plaintext must not be served");
    }
    let stranger = test_pki();
    assert!(!matches!(connect(tls_endpoint(app.addr, &stranger.ca_pem)).await, Ok(Ok(_))), "unknown CA accepted");
}

#[test]
fn tls_flags_need_both_files_and_real_pem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = test_pki();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("file");
        path.to_string_lossy().into_owned()
    };
    let (cert, key, junk) = (write("c.pem", &pki.cert_pem), write("k.pem", &pki.key_pem), write("j.pem", "not pem"));
    let err = parse_serve(&["--tls-cert", &cert]).expect_err("key missing");
    assert!(err.contains("AUTOSCALER_TLS_KEY"), "{err}");
    let err = parse_serve(&["--tls-key", &key]).expect_err("cert missing");
    assert!(err.contains("AUTOSCALER_TLS_CERT"), "{err}");
    let err = parse_serve(&["--tls-cert", &junk, "--tls-key", &key]).expect_err("bad cert");
    assert!(err.contains("AUTOSCALER_TLS_CERT"), "{err}");
    let err = parse_serve(&["--tls-cert", &cert, "--tls-key", &junk]).expect_err("bad key");
    assert!(err.contains("AUTOSCALER_TLS_KEY") && !err.contains("PRIVATE KEY-"), "{err}");
    let settings = parse_serve(&["--tls-cert", &cert, "--tls-key", &key]).expect("valid");
    assert!(!format!("{settings:?}").contains("PRIVATE KEY"), "Debug must not print the key");
}

#[tokio::test]
async fn a_certificate_and_key_that_do_not_match_stop_the_start() {
    let (one, other) = (test_pki(), test_pki());
    let tls = autoscaler::config::TlsConfig::new(one.cert_pem, other.key_pem.into()).expect("both parse");
    let Err(err) = build_on("127.0.0.1:0", |s| s.security.tls = Some(tls)).await else {
        panic!("a mismatched key must be refused at start");
    };
    assert!(format!("{err:#}").contains("AUTOSCALER_TLS"), "{err:#}");
}

#[tokio::test]
async fn an_oversized_request_is_refused_and_stores_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mut huge = rule("act_45");
        huge.name = "x".repeat(autoscaler::startup::MAX_REQUEST_BYTES + 1);
        let err = app.rules.clone().create_rule(CreateRuleRequest { rule: Some(huge) }).await.expect_err("too big");
        assert!(matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted), "{err:?}");
        let listed = app.rules.clone().list_rules(pb::ListRulesRequest::default()).await.expect("list");
        assert!(listed.into_inner().rules.is_empty());
        // The server is still fine afterwards.
        app.rules.clone().create_rule(CreateRuleRequest { rule: Some(rule("act_45")) }).await.expect("normal size");
    }
}

#[tokio::test]
async fn an_oversized_request_without_a_token_is_refused_before_it_is_read() {
    let app = spawn_app_with(Backend::Sqlite, with_tokens).await;
    let mut huge = rule("act_46");
    huge.name = "x".repeat(autoscaler::startup::MAX_REQUEST_BYTES + 1);
    let err = app.rules.clone().create_rule(CreateRuleRequest { rule: Some(huge) }).await.expect_err("refused");
    assert_eq!(err.code(), Code::Unauthenticated);
}

/// HMAC-SHA256 (RFC 2104), hex: what Meta expects as `appsecret_proof`.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    let outer = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn every_graph_call_carries_the_appsecret_proof_when_a_secret_is_set() {
    use autoscaler::platform::sandbox::SandboxAccounts;
    use autoscaler::service::cycle::{CycleMode, run_cycle};
    use meta_sandbox::Sandbox;
    let sandbox = Sandbox::generated(11, 1, 4);
    let running = sandbox.start().await.expect("sandbox");
    let proxy = crate::graph_proxy::GraphProxy::start(running.base_url().as_str()).await;
    let token = running.access_token();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.meta.access_token = Some(token.clone().into());
        settings.meta.app_secret = Some("app-secret-for-tests".to_owned().into());
        settings.meta.graph_url = proxy.base_url.clone();
        settings.meta.account_ids = sandbox.account_ids();
    })
    .await;
    run_cycle(&app.state, CycleMode::Optimize, false, &[]).await.expect("cycle runs");
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the cycle talked to the Graph API");
    let expected = hmac_sha256_hex(b"app-secret-for-tests", token.as_bytes());
    for request in &seen {
        assert_eq!(request.param("appsecret_proof"), Some(expected.as_str()), "{} {}", request.method, request.path);
        assert!(
            request.params.iter().all(|(_, v)| !v.contains("app-secret-for-tests")),
            "the secret itself is never sent"
        );
    }
}

#[test]
fn hmac_helper_matches_rfc_4231() {
    assert_eq!(
        hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// Runs the `autoscaler` binary with `args` (off the runtime's thread, so the
/// server keeps answering) and returns (exit code, stdout, stderr).
async fn cli(args: Vec<String>, env: Vec<(&'static str, String)>) -> (Option<i32>, String, String) {
    let output = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_autoscaler"));
        cmd.args(&args).env_remove("RUST_LOG").env_remove("AUTOSCALER_SERVER");
        cmd.env_remove("AUTOSCALER_TOKEN").env_remove("AUTOSCALER_TLS_CA");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.output().expect("the CLI runs")
    })
    .await
    .expect("CLI task");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test]
async fn the_cli_talks_tls_with_a_token() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("CA file");
    let ca = pki.ca_pem.clone();
    let tls = autoscaler::config::TlsConfig::new(pki.cert_pem.clone(), pki.key_pem.clone().into()).expect("TLS");
    let app = spawn_app_with_endpoint(
        Backend::Sqlite,
        |settings| {
            with_tokens(settings);
            settings.security.tls = Some(tls);
        },
        move |addr| tls_endpoint(addr, &ca),
    )
    .await;
    // The certificate names localhost; the CLI checks it against the host.
    let server = format!("https://localhost:{}", app.addr.port());
    let ca_path = ca_file.to_string_lossy().into_owned();
    // The connection flags follow the command: only client commands take them.
    let args = |command: &[&str]| {
        let mut all: Vec<String> = command.iter().map(|s| (*s).to_owned()).collect();
        all.extend(["--server".to_owned(), server.clone(), "--tls-ca".to_owned(), ca_path.clone()]);
        all
    };
    let create = ["rules", "create", "--account", "act_77", "--name", "From the CLI", "--json"];
    let (code, out, err) = cli(args(&create), vec![("AUTOSCALER_TOKEN", OPERATOR.to_owned())]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("\"otto\""), "created by the token's principal: {out}");

    let (code, _, err) = cli(args(&["rules", "list", "--token", VIEWER, "--json"]), Vec::new()).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = cli(args(&["rules", "list"]), Vec::new()).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("Unauthenticated"), "{err}");
    let (code, _, err) = cli(args(&["rules", "delete", "1", "--token", VIEWER]), Vec::new()).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("PermissionDenied") && !err.contains(VIEWER), "{err}");
    let plain = vec![
        "rules".to_owned(),
        "list".to_owned(),
        "--server".to_owned(),
        server.clone(),
        "--token".to_owned(),
        VIEWER.to_owned(),
    ];
    let (code, _, err) = cli(plain, Vec::new()).await;
    assert_eq!(code, Some(1), "https without a CA is refused: {err}");
}

#[tokio::test]
async fn the_sandbox_accepts_the_proof_of_the_right_app_secret_only() {
    use autoscaler::platform::sandbox::SandboxAccounts;
    use autoscaler::service::cycle::{CycleMode, run_cycle};
    use meta_sandbox::Sandbox;
    for (configured, works) in [("the-app-secret", true), ("another-secret", false)] {
        let sandbox = Sandbox::generated(12, 1, 3);
        sandbox.require_app_secret("the-app-secret");
        let running = sandbox.start().await.expect("sandbox");
        let app = spawn_app_with(Backend::Sqlite, |settings| {
            settings.meta.access_token = Some(running.access_token().into());
            settings.meta.app_secret = Some(configured.to_owned().into());
            settings.meta.graph_url = running.base_url().to_string();
            settings.meta.account_ids = sandbox.account_ids();
        })
        .await;
        let report = run_cycle(&app.state, CycleMode::Optimize, false, &[]).await.expect("cycle runs");
        assert_eq!(report.failures.is_empty(), works, "{configured}: {:?}", report.failures);
        assert_eq!(report.campaigns_evaluated > 0, works, "{configured}: {report:?}");
    }
}
