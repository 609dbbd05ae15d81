//! The startup seam: [`Application::build`] connects, migrates and binds the
//! listener; [`Application::run_until`] serves until a shutdown future fires.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::SecretString;

use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::config::{MetaConfig, Settings};
use crate::grpc::{ApprovalsApi, AutoScalerApi, RulesApi, TimeOptimizationApi};
use crate::pb::approvals_service_server::ApprovalsServiceServer;
use crate::pb::auto_scaler_service_server::AutoScalerServiceServer;
use crate::pb::rules_service_server::RulesServiceServer;
use crate::pb::time_optimization_service_server::TimeOptimizationServiceServer;
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
}

/// The Meta client for the settings: the live Graph API when a token is set.
fn meta_client(meta: &MetaConfig, base_url: &str, token: SecretString) -> anyhow::Result<MetaClient> {
    let mut settings = MetaSettings::new(token);
    settings.graph_url = reqwest::Url::parse(base_url).map_err(|e| anyhow::anyhow!("invalid META_GRAPH_URL: {e}"))?;
    settings.api_version = meta.api_version.clone();
    settings.app_secret = meta.app_secret.clone();
    settings.purchase_action_type = meta.purchase_action_type.clone();
    Ok(MetaClient::new(settings)?)
}

impl Application {
    /// Connects to the database, applies migrations and binds the listener
    /// (connections wait in the backlog until `run_until`).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let meta = &settings.meta;
        let (platform, accounts) = match &meta.access_token {
            Some(token) => (meta_client(meta, &meta.graph_url, token.clone())?, meta.account_ids.clone()),
            None => anyhow::bail!("the local Meta sandbox is not available yet: set META_ACCESS_TOKEN"),
        };
        let db = persistence::connect(&settings.database_url).await?;
        let incoming = TcpIncoming::bind(settings.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let addr = incoming.local_addr()?;
        Ok(Self {
            schedules: settings.schedules.clone(),
            incoming,
            addr,
            state: AppState {
                db,
                events: Default::default(),
                engine: Arc::new(settings.engine.clone()),
                platform,
                accounts: Arc::new(accounts),
                cycle_lock: Default::default(),
            },
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let state = self.state;
        let mut scheduler = scheduler::start(state.clone(), &self.schedules).await?;
        tracing::info!(addr = %self.addr, "serving gRPC");
        Server::builder()
            .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                RulesServiceServer::new(RulesApi::new(state.clone())).max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                AutoScalerServiceServer::new(AutoScalerApi::new(state.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                ApprovalsServiceServer::new(ApprovalsApi::new(state.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                TimeOptimizationServiceServer::new(TimeOptimizationApi::new(state.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
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
        tracing::info!("server stopped");
        Ok(())
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
