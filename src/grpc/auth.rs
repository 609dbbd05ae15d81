//! Transport side of authentication: a tower layer around each autoscaler
//! service that reads `authorization: Bearer <token>`, checks the method
//! against [`METHOD_ROLES`] and hands the [`Principal`] to the handler in the
//! request extensions. Health and reflection are never wrapped.
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::Either;
use tonic::Status;
use tonic::server::NamedService;

use crate::auth::{Principal, Role, TokenTable};

/// The least role each RPC needs, by full method path. The only such table:
/// a method of our services that is missing here is refused to every role,
/// so a new RPC stays closed until someone decides who may call it.
pub const METHOD_ROLES: &[(&str, Role)] = &[
    ("/autoscaler.v1.RulesService/CreateRule", Role::Operator),
    ("/autoscaler.v1.RulesService/GetRule", Role::Viewer),
    ("/autoscaler.v1.RulesService/ListRules", Role::Viewer),
    ("/autoscaler.v1.RulesService/UpdateRule", Role::Operator),
    ("/autoscaler.v1.RulesService/DeleteRule", Role::Operator),
    ("/autoscaler.v1.AutoScalerService/EvaluateCampaign", Role::Operator),
    ("/autoscaler.v1.AutoScalerService/EvaluateCampaigns", Role::Operator),
    ("/autoscaler.v1.AutoScalerService/RunCycle", Role::Operator),
    ("/autoscaler.v1.AutoScalerService/GetDashboard", Role::Viewer),
    // Read-only, but replays weeks of decisions: an evaluation, like a dry run.
    ("/autoscaler.v1.AutoScalerService/ReplayRules", Role::Operator),
    ("/autoscaler.v1.ApprovalsService/ListPendingActions", Role::Viewer),
    ("/autoscaler.v1.ApprovalsService/DecideAction", Role::Approver),
    ("/autoscaler.v1.ApprovalsService/ListActionHistory", Role::Viewer),
    ("/autoscaler.v1.ApprovalsService/GetAction", Role::Viewer),
    ("/autoscaler.v1.ApprovalsService/WatchActions", Role::Viewer),
    ("/autoscaler.v1.TimeOptimizationService/LearnOptimalHours", Role::Operator),
    ("/autoscaler.v1.TimeOptimizationService/GetTimeReport", Role::Viewer),
    ("/autoscaler.v1.TimeOptimizationService/GetReportingLag", Role::Viewer),
    ("/autoscaler.v1.TimeOptimizationService/GetBudgetSchedule", Role::Viewer),
];

/// The least role `path` needs; `None` for a method nobody may call.
pub fn required_role(path: &str) -> Option<Role> {
    METHOD_ROLES.iter().find(|(method, _)| *method == path).map(|(_, role)| *role)
}

/// Wraps a service so that its calls need a token; with an empty table every
/// call passes unchanged (authentication off).
#[derive(Clone, Default)]
pub struct AuthLayer {
    tokens: Option<Arc<TokenTable>>,
}

impl AuthLayer {
    /// Checks calls against `tokens`; an empty table turns checking off.
    pub fn new(tokens: &TokenTable) -> Self {
        Self { tokens: (!tokens.is_empty()).then(|| Arc::new(tokens.clone())) }
    }

    /// Whether calls are checked.
    pub fn enabled(&self) -> bool {
        self.tokens.is_some()
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated { inner, tokens: self.tokens.clone() }
    }
}

/// A service behind [`AuthLayer`]; keeps the inner service's name so the
/// router still sends it the same paths.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    tokens: Option<Arc<TokenTable>>,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let Some(tokens) = &self.tokens else {
            return Either::Left(self.inner.call(request));
        };
        match authorize(tokens, &request) {
            Ok(principal) => {
                // Handlers never need the secret: drop it before they run.
                request.headers_mut().remove(http::header::AUTHORIZATION);
                request.extensions_mut().insert(principal);
                Either::Left(self.inner.call(request))
            }
            Err(status) => Either::Right(std::future::ready(Ok(status.into_http()))),
        }
    }
}

/// Authentication, then authorization. Refusals are logged with the method
/// and (once known) the principal, never with the token.
fn authorize<B>(tokens: &TokenTable, request: &http::Request<B>) -> Result<Principal, Status> {
    let path = request.uri().path();
    let Some(token) = bearer_token(request.headers()) else {
        tracing::info!(method = path, "refused: no bearer token");
        return Err(Status::unauthenticated("missing credentials: send `authorization: Bearer <token>`"));
    };
    let Some(principal) = tokens.authenticate(token) else {
        tracing::warn!(method = path, "refused: unknown bearer token");
        return Err(Status::unauthenticated("invalid bearer token"));
    };
    match required_role(path) {
        Some(required) if principal.role.grants(required) => Ok(principal.clone()),
        Some(required) => {
            tracing::warn!(method = path, principal = %principal.name, role = %principal.role, "refused: role too weak");
            Err(Status::permission_denied(format!("role {} may not call {path} (needs {required})", principal.role)))
        }
        None => {
            tracing::warn!(method = path, principal = %principal.name, "refused: method has no role");
            Err(Status::permission_denied(format!("{path} is not open to any role")))
        }
    }
}

/// The token of an `authorization: Bearer <token>` header (scheme matched
/// case-insensitively); `None` when absent, of another scheme, or empty.
fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn every_rpc_of_the_contract_has_exactly_one_role() {
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let mut missing = Vec::new();
        for file in set.file.iter().filter(|f| f.package() == "autoscaler.v1") {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/autoscaler.v1.{}/{}", service.name(), method.name());
                    if required_role(&path).is_none() {
                        missing.push(path);
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "add these RPCs to METHOD_ROLES (src/grpc/auth.rs) and the README's roles table; until then \
             every caller gets PERMISSION_DENIED when tokens are configured: {missing:?}"
        );
        let mut paths: Vec<&str> = METHOD_ROLES.iter().map(|(m, _)| *m).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), METHOD_ROLES.len(), "a method is listed twice");
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let header = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, http::HeaderValue::from_str(v).expect("header"));
            h
        };
        assert_eq!(bearer_token(&header("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&header("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&header("Basic abc")), None);
        assert_eq!(bearer_token(&header("Bearer ")), None);
        assert_eq!(bearer_token(&header("abc")), None);
        assert_eq!(bearer_token(&http::HeaderMap::new()), None);
    }

    #[test]
    fn unknown_methods_need_a_role_nobody_has() {
        assert_eq!(required_role("/autoscaler.v1.RulesService/DropAllRules"), None);
        assert_eq!(required_role("/autoscaler.v1.ApprovalsService/DecideAction"), Some(Role::Approver));
    }
}
