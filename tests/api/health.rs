//! Health and reflection: what operators and grpcurl rely on.
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::helpers::{Backend, spawn_app};

#[tokio::test]
async fn health_reports_serving_overall_and_per_service() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in [
        "",
        "autoscaler.v1.RulesService",
        "autoscaler.v1.AutoScalerService",
        "autoscaler.v1.ApprovalsService",
        "autoscaler.v1.TimeOptimizationService",
    ] {
        let status = health
            .check(HealthCheckRequest { service: service.into() })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
}

async fn list_services_v1(app: &crate::helpers::TestApp) -> Vec<String> {
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client.server_reflection_info(tokio_stream::once(request)).await.expect("reflection").into_inner();
    let response = stream.message().await.expect("message").expect("one response");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection response {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_all_four_services_and_health() {
    let app = spawn_app(Backend::Sqlite).await;
    let services = list_services_v1(&app).await;
    for expected in [
        "autoscaler.v1.AutoScalerService",
        "autoscaler.v1.RulesService",
        "autoscaler.v1.ApprovalsService",
        "autoscaler.v1.TimeOptimizationService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.iter().any(|s| s == expected), "{expected} missing from {services:?}");
    }
}

#[tokio::test]
async fn reflection_v1alpha_is_served_for_older_grpcurl() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = AlphaClient::new(app.channel.clone());
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut stream = client.server_reflection_info(tokio_stream::once(request)).await.expect("reflection").into_inner();
    let response = stream.message().await.expect("message").expect("one response");
    let Some(AlphaResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected response");
    };
    assert!(list.service.iter().any(|s| s.name == "autoscaler.v1.RulesService"));
}

/// Asks reflection for the file defining `symbol`, then for every file it
/// imports, as grpcurl does; returns every file it was given as (name,
/// package).
async fn resolve_with_imports(app: &crate::helpers::TestApp, symbol: &str) -> Vec<(String, String)> {
    use prost::Message;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let mut wanted = vec![MessageRequest::FileContainingSymbol(symbol.into())];
    let mut seen: Vec<String> = Vec::new();
    let mut files_seen = Vec::new();
    while let Some(message) = wanted.pop() {
        let request = ServerReflectionRequest { host: String::new(), message_request: Some(message.clone()) };
        let mut stream =
            client.server_reflection_info(tokio_stream::once(request)).await.expect("reflection").into_inner();
        let response = stream.message().await.expect("message").expect("one response");
        let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
            panic!("no file for {message:?}: {:?}", response.message_response);
        };
        for bytes in files.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a file descriptor");
            let name = file.name().to_owned();
            if seen.contains(&name) {
                continue;
            }
            for import in &file.dependency {
                if !seen.contains(import) {
                    wanted.push(MessageRequest::FileByFilename(import.clone()));
                }
            }
            files_seen.push((name.clone(), file.package().to_owned()));
            seen.push(name);
        }
    }
    files_seen
}

#[tokio::test]
async fn reflection_resolves_google_rpc_error_details_for_grpcurl() {
    let app = spawn_app(Backend::Sqlite).await;
    // The types the server puts in `grpc-status-details-bin`, each with the
    // files it imports (google/protobuf/duration.proto for RetryInfo).
    for symbol in ["google.rpc.BadRequest", "google.rpc.ErrorInfo", "google.rpc.RetryInfo", "google.rpc.Status"] {
        let files = resolve_with_imports(&app, symbol).await;
        assert!(files.iter().any(|(_, package)| package == "google.rpc"), "{symbol}: {files:?}");
    }
    let files = resolve_with_imports(&app, "google.rpc.RetryInfo").await;
    assert!(files.iter().any(|(name, _)| name == "google/protobuf/duration.proto"), "{files:?}");
    // The contract itself still resolves with every import.
    let files = resolve_with_imports(&app, "autoscaler.v1.RulesService").await;
    assert!(files.iter().any(|(name, _)| name == "google/protobuf/timestamp.proto"), "{files:?}");
}
