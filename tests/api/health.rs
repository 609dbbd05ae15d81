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
