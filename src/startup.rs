//! The startup seam: [`Application::build`] connects, migrates and binds the
//! listener; [`Application::run_until`] serves until a shutdown future fires.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use meta_sandbox::{RunningSandbox, Sandbox};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tower::Layer;

use crate::config::{MetaConfig, SecurityConfig, Settings};
use crate::domain::ids::AccountId;
use crate::grpc::auth::AuthLayer;
use crate::grpc::call_layer::CallLayer;
use crate::grpc::limits::RequestTimeout;
use crate::grpc::metrics_layer::GrpcMetrics;
use crate::grpc::{ApprovalsApi, AutoScalerApi, RulesApi, TimeOptimizationApi};
use crate::pb::approvals_service_server::ApprovalsServiceServer;
use crate::pb::auto_scaler_service_server::AutoScalerServiceServer;
use crate::pb::rules_service_server::RulesServiceServer;
use crate::pb::time_optimization_service_server::TimeOptimizationServiceServer;
use crate::platform::sandbox::{SandboxAccounts, SandboxSettings};
use crate::platform::{MetaClient, MetaSettings};
use crate::service::AppState;
use crate::service::scheduler::{self, Schedules};
use crate::{pb, persistence};

/// Largest request the server accepts (bytes); anything bigger is refused
/// before it is decoded.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// A built, not yet serving, application.
pub struct Application {
    incoming: TcpIncoming,
    addr: SocketAddr,
    state: AppState,
    schedules: Schedules,
    metrics_listener: Option<(tokio::net::TcpListener, SocketAddr)>,
    auth: AuthLayer,
    tls: Option<ServerTlsConfig>,
    limits: crate::config::LimitsConfig,
    _sandbox: Option<RunningSandbox>,
}

/// Binds the gRPC listener. Accepted connections get `TCP_NODELAY` (the
/// builder's own setting does not reach a listener bound here): without it
/// a response's trailers wait for the client's delayed ACK, about 40 ms.
pub fn bind_grpc(addr: SocketAddr) -> std::io::Result<TcpIncoming> {
    Ok(TcpIncoming::bind(addr)?.with_nodelay(Some(true)))
}

/// The ad platform a server talks to.
pub struct Platform {
    /// The Graph API client.
    pub client: MetaClient,
    /// Accounts to optimize: the configured ones, or the sandbox's.
    pub accounts: Vec<AccountId>,
    /// The local sandbox, when no token is configured; stops when dropped.
    pub sandbox: Option<RunningSandbox>,
}

/// Connects to Meta when a token is configured; otherwise starts the local
/// sandbox on loopback and points the same client at it.
pub async fn connect_platform(meta: &MetaConfig) -> anyhow::Result<Platform> {
    let (mut settings, accounts, sandbox) = match &meta.access_token {
        Some(token) => {
            let mut settings = MetaSettings::new(token.clone());
            settings.graph_url =
                reqwest::Url::parse(&meta.graph_url).map_err(|e| anyhow::anyhow!("invalid META_GRAPH_URL: {e}"))?;
            (settings, meta.account_ids.clone(), None)
        }
        None => {
            let sandbox =
                Sandbox::generated(meta.sandbox.seed, meta.sandbox.accounts, meta.sandbox.campaigns_per_account);
            let running =
                sandbox.start().await.map_err(|e| anyhow::anyhow!("cannot start the local Meta sandbox: {e}"))?;
            let accounts = if meta.account_ids.is_empty() { sandbox.account_ids() } else { meta.account_ids.clone() };
            tracing::info!(url = %running.base_url(), accounts = accounts.len(), "no META_ACCESS_TOKEN: using the local Meta sandbox");
            // The ids an operator needs for the first commands (README quick start).
            for account in sandbox.account_ids() {
                let campaigns = sandbox.campaign_ids(account.as_str());
                tracing::info!(
                    account = %account,
                    campaigns = campaigns.len(),
                    first_campaign = campaigns.first().map(String::as_str).unwrap_or("-"),
                    last_campaign = campaigns.last().map(String::as_str).unwrap_or("-"),
                    "sandbox ad account"
                );
            }
            (running.meta_settings(), accounts, Some(running))
        }
    };
    settings.api_version = meta.api_version.clone();
    settings.app_secret = meta.app_secret.clone();
    settings.purchase_action_type = meta.purchase_action_type.clone();
    settings.request_timeout = meta.request_timeout;
    settings.max_retries = meta.max_retries;
    settings.backoff_base = meta.backoff_base;
    Ok(Platform { client: MetaClient::new(settings)?, accounts, sandbox })
}

/// The shared state of a server or a one-off cycle: database (migrated) and
/// ad platform.
pub async fn build_state(settings: &Settings) -> anyhow::Result<(AppState, Option<RunningSandbox>)> {
    build_state_serving(settings, settings.listen).await
}

/// [`build_state`] for a server bound to `bound` (with port 0, the port it
/// got): the commands in alert messages name it, unless
/// `--alert-server-address` names another.
async fn build_state_serving(
    settings: &Settings,
    bound: SocketAddr,
) -> anyhow::Result<(AppState, Option<RunningSandbox>)> {
    // The database first: when it cannot be reached, nothing else need start.
    let db = persistence::open(&settings.database_url).await?;
    let platform = connect_platform(&settings.meta).await?;
    // A wildcard address is reached as loopback on the server's own host;
    // operators elsewhere need --alert-server-address.
    let reachable = if bound.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
    } else {
        bound
    };
    let commands = crate::alerts::CommandTarget {
        address: settings.engine.alert_server_address.clone().unwrap_or_else(|| reachable.to_string()),
        tls: settings.security.tls.is_some(),
        token: !settings.security.tokens.is_empty(),
    };
    let state = AppState {
        db,
        events: Default::default(),
        engine: Arc::new(settings.engine.clone()),
        platform: platform.client,
        accounts: Arc::new(platform.accounts),
        cycle_lock: Default::default(),
        alerts: crate::alerts::Alerts::from_webhook_with(
            settings.engine.webhook_url.as_deref(),
            settings.engine.alert_budget_change_minor,
            commands,
        ),
        metrics: crate::metrics::Metrics::new(),
        day_cache: Default::default(),
    };
    crate::monitoring::install(&state);
    Ok((state, platform.sandbox))
}

impl Application {
    /// Connects to the database, applies migrations and binds the listener
    /// (connections wait in the backlog until `run_until`).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        check_exposure(settings.listen, &settings.security)?;
        let tls = server_tls(&settings.security)?;
        let auth = AuthLayer::new(&settings.security.tokens);
        // Bound first: alert messages name the address it got.
        let incoming =
            bind_grpc(settings.listen).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let addr = incoming.local_addr()?;
        let (state, sandbox) = build_state_serving(&settings, addr).await?;
        let metrics_listener = match settings.metrics_listen {
            Some(addr) => {
                let listener = crate::metrics::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
                let bound = listener.local_addr()?;
                Some((listener, bound))
            }
            None => None,
        };
        Ok(Self {
            schedules: settings.schedules.clone(),
            metrics_listener,
            incoming,
            addr,
            state,
            auth,
            tls,
            limits: settings.limits.clone(),
            _sandbox: sandbox,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound metrics address, when metrics are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// The shared state, for tests that drive use cases directly.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves gRPC until `shutdown` completes; in-flight calls finish first.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<RulesServiceServer<RulesApi>>().await;
        health.set_serving::<AutoScalerServiceServer<AutoScalerApi>>().await;
        health.set_serving::<ApprovalsServiceServer<ApprovalsApi>>().await;
        health.set_serving::<TimeOptimizationServiceServer<TimeOptimizationApi>>().await;

        // grpcurl builds in the wild speak either reflection version: serve both.
        // google.rpc (error_details.proto) lets grpcurl decode error details.
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let state = self.state;
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = self.metrics_listener.map(|(listener, addr)| {
            tracing::info!(%addr, "serving Prometheus metrics on /metrics");
            tokio::spawn(crate::metrics::serve(listener, state.metrics.clone(), async {
                let _ = metrics_stopped.await;
            }))
        });
        let watchdog = tokio::spawn(watch_database(state.db.clone(), health.clone()));
        let settler = tokio::spawn(settle_after_a_crash(state.clone()));
        // Other replicas' cycles are shared work: join them when idle.
        let assistant = tokio::spawn(crate::service::cycle::assist_forever(state.clone()));
        let mut scheduler = scheduler::start(state.clone(), &self.schedules).await?;
        tracing::info!(
            addr = %self.addr,
            tls = self.tls.is_some(),
            authentication = self.auth.enabled(),
            "serving gRPC"
        );
        // Calls beyond the per-connection limit are refused (RESOURCE_EXHAUSTED)
        // rather than queued; a stream holds its slot only while it starts.
        let mut server =
            Server::builder().concurrency_limit_per_connection(self.limits.max_concurrent_requests).load_shed(true);
        if let Some(tls) = self.tls {
            server = server.tls_config(tls)?;
        }
        // Health and reflection stay open; the four services sit behind the
        // auth layer, which passes everything through when no token is set.
        let auth = self.auth;
        server
            .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()))
            .layer(CallLayer::new(GrpcMetrics::new(state.metrics.clone())))
            .layer(tower::util::MapResponseLayer::new(crate::grpc::limits::fix_response_status))
            .layer(CallLayer::new(RequestTimeout::new(self.limits.request_timeout)))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(auth.layer(
                RulesServiceServer::new(RulesApi::new(state.clone())).max_decoding_message_size(MAX_REQUEST_BYTES),
            ))
            .add_service(
                auth.layer(
                    AutoScalerServiceServer::new(AutoScalerApi::new(state.clone()))
                        .max_decoding_message_size(MAX_REQUEST_BYTES),
                ),
            )
            .add_service(
                auth.layer(
                    ApprovalsServiceServer::new(
                        ApprovalsApi::new(state.clone()).with_watch_limit(self.limits.max_watch_streams),
                    )
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
                ),
            )
            .add_service(
                auth.layer(
                    TimeOptimizationServiceServer::new(TimeOptimizationApi::new(state.clone()))
                        .max_decoding_message_size(MAX_REQUEST_BYTES),
                ),
            )
            .serve_with_incoming_shutdown(self.incoming, shutdown)
            .await?;
        if let Some(scheduler) = scheduler.as_mut()
            && let Err(e) = scheduler.shutdown().await
        {
            tracing::warn!(error = ?e, "scheduler did not stop cleanly");
        }
        // A cycle in progress finishes its current step: wait for it, so no
        // action is left half-applied by the shutdown.
        let _cycle = state.cycle_lock.lock().await;
        assistant.abort();
        watchdog.abort();
        settler.abort();
        let _ = stop_metrics.send(());
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Settles the actions a crashed process left open as soon as its liveness
/// mark has lapsed (one lease TTL after start-up), instead of at the next
/// cycle.
async fn settle_after_a_crash(state: AppState) {
    tokio::time::sleep(state.engine.leases.ttl + std::time::Duration::from_secs(1)).await;
    match crate::service::executor::settle_unsettled(&state).await {
        Ok(settled) if !settled.is_empty() => tracing::info!(count = settled.len(), "settled interrupted actions"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot settle interrupted actions yet; the next cycle will"),
    }
}

/// Refuses to serve beyond loopback without API tokens unless the operator
/// said `--insecure`: an open port would let anyone change budgets.
fn check_exposure(listen: SocketAddr, security: &SecurityConfig) -> anyhow::Result<()> {
    if !security.tokens.is_empty() {
        if !is_loopback(listen) && security.tls.is_none() {
            tracing::warn!(%listen, "API tokens travel in plaintext: configure --tls-cert/--tls-key");
        }
        return Ok(());
    }
    if is_loopback(listen) {
        return Ok(());
    }
    if security.insecure {
        tracing::warn!(%listen, "--insecure: serving beyond loopback WITHOUT authentication");
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {listen} without API tokens: configure AUTOSCALER_AUTH_TOKENS_FILE or \
         AUTOSCALER_AUTH_TOKENS, listen on loopback (127.0.0.1 / ::1), or pass --insecure (AUTOSCALER_INSECURE=true)"
    )
}

/// Loopback, IPv4-mapped IPv6 loopback included.
fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// The rustls server configuration, checked now so that a bad certificate or
/// key stops the start-up rather than the first handshake.
fn server_tls(security: &SecurityConfig) -> anyhow::Result<Option<ServerTlsConfig>> {
    use secrecy::ExposeSecret;
    let Some(tls) = &security.tls else { return Ok(None) };
    // ring only: tonic builds its rustls config from the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let identity = Identity::from_pem(&tls.cert_pem, tls.key_pem.expose_secret());
    let config = ServerTlsConfig::new().identity(identity);
    Server::builder()
        .tls_config(config.clone())
        .map_err(|e| anyhow::anyhow!("invalid AUTOSCALER_TLS_CERT / AUTOSCALER_TLS_KEY: {e}"))?;
    Ok(Some(config))
}

/// How often the health watchdog pings the database.
const DATABASE_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Services whose health follows the database.
const SERVICE_NAMES: [&str; 5] = [
    "",
    "autoscaler.v1.RulesService",
    "autoscaler.v1.AutoScalerService",
    "autoscaler.v1.ApprovalsService",
    "autoscaler.v1.TimeOptimizationService",
];

/// Reports NOT_SERVING while the database is unreachable and SERVING again
/// when it answers, so load balancers and monitors see the outage.
async fn watch_database(db: sea_orm::DatabaseConnection, health: tonic_health::server::HealthReporter) {
    use tonic_health::ServingStatus;
    let mut serving = true;
    let mut tick = tokio::time::interval(DATABASE_PING_INTERVAL);
    loop {
        tick.tick().await;
        let up = tokio::time::timeout(DATABASE_PING_INTERVAL, db.ping()).await.is_ok_and(|r| r.is_ok());
        if up != serving {
            serving = up;
            let status = if up { ServingStatus::Serving } else { ServingStatus::NotServing };
            if up {
                tracing::info!("database reachable again: SERVING");
            } else {
                tracing::error!("database unreachable: NOT_SERVING");
            }
            for name in SERVICE_NAMES {
                health.set_service_status(name, status).await;
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn accepted_grpc_connections_do_not_wait_for_acks() {
        let mut incoming = bind_grpc("127.0.0.1:0".parse().expect("address")).expect("binds");
        let addr = incoming.local_addr().expect("bound");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connects");
        let accepted = incoming.next().await.expect("a connection").expect("accepted");
        assert!(accepted.nodelay().expect("readable option"), "TCP_NODELAY is off on an accepted connection");
    }
}
