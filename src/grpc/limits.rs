//! Bounds on what the server sends back: an error status travels in HTTP/2
//! headers, and a message that echoes a huge caller input (say an unknown
//! `update_mask` path of a megabyte) would make the client's HTTP/2 library
//! drop the whole connection (GOAWAY `ENHANCE_YOUR_CALM`), failing every other
//! call on it. This layer keeps such statuses small.
//!
//! Also the server's other edges: codes that follow gRPC's conventions for
//! requests that cannot be decoded or are too large, a timeout on calls that
//! only read, and a cap on the `WatchActions` streams one principal holds.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use tonic::Status;

use super::call_layer::{AroundCall, CallFuture};

/// Validated server limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Longest run of a call that is not exempt; `None` = no limit.
    pub request_timeout: Option<std::time::Duration>,
    /// Calls in progress per connection.
    pub max_concurrent_requests: usize,
    /// Open `WatchActions` streams per principal.
    pub max_watch_streams: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            request_timeout: Some(std::time::Duration::from_secs(60)),
            max_concurrent_requests: 64,
            max_watch_streams: 64,
        }
    }
}

/// Longest `grpc-message` sent, in bytes of its percent-encoded form.
pub const MAX_STATUS_MESSAGE_BYTES: usize = 1024;
/// Largest `grpc-status-details-bin` sent; larger details are dropped (the
/// code and the truncated message remain).
pub const MAX_STATUS_DETAILS_BYTES: usize = 8 * 1024;

/// Fixes up the status of every response: the codes of requests that could
/// not be decoded or were too large (see [`recode_request_errors`]), then
/// oversized status headers shortened (see [`bound_status_headers`]). Wrap
/// the server in `tower::util::MapResponseLayer::new(fix_response_status)`.
pub fn fix_response_status<R>(mut response: http::Response<R>) -> http::Response<R> {
    recode_request_errors(response.headers_mut());
    bound_status_headers(response.headers_mut());
    response
}

/// Shortens `grpc-message` and drops huge `grpc-status-details-bin`.
fn bound_status_headers(headers: &mut http::HeaderMap) {
    if headers.get("grpc-status-details-bin").is_some_and(|v| v.len() > MAX_STATUS_DETAILS_BYTES) {
        headers.remove("grpc-status-details-bin");
        tracing::debug!("oversized status details dropped");
    }
    let Some(message) = headers.get("grpc-message") else { return };
    if message.len() <= MAX_STATUS_MESSAGE_BYTES {
        return;
    }
    let bytes = message.as_bytes();
    let mut cut = MAX_STATUS_MESSAGE_BYTES;
    // Never split a percent escape (`%XX`).
    while cut > 0 && bytes[cut.saturating_sub(2)..cut].contains(&b'%') {
        cut -= 1;
    }
    let mut shortened = bytes[..cut].to_vec();
    shortened.extend_from_slice(b"...");
    if let Ok(value) = HeaderValue::from_bytes(&shortened) {
        headers.insert("grpc-message", value);
    }
}

/// What tonic's server says when a request does not decode (prost's error,
/// or a body that ends inside a message), and when it is above the limit.
/// Our handlers never produce these texts, so a match is tonic's decoder.
const UNDECODABLE_PREFIXES: [&str; 2] = ["failed to decode Protobuf message", "Unexpected EOF decoding stream"];
const TOO_LARGE_PREFIX: &str = "Error, decoded message length too large";

/// Gives undecodable and over-size requests the codes gRPC's conventions
/// use. tonic answers a request it cannot decode with INTERNAL (as if the
/// server were broken) and one above the size limit with OUT_OF_RANGE; the
/// caller's mistake is INVALID_ARGUMENT, a refused size RESOURCE_EXHAUSTED.
/// This rewrites the code of such a (trailers-only) response.
fn recode_request_errors(headers: &mut http::HeaderMap) {
    let code = headers.get("grpc-status").map(HeaderValue::as_bytes);
    let new_code = match code {
        Some(b"13") if UNDECODABLE_PREFIXES.iter().any(|p| message_starts_with(headers, p)) => "3",
        Some(b"11") if message_starts_with(headers, TOO_LARGE_PREFIX) => "8",
        _ => return,
    };
    headers.insert("grpc-status", HeaderValue::from_static(new_code));
}

/// Whether the percent-encoded `grpc-message` starts with `prefix`.
fn message_starts_with(headers: &http::HeaderMap, prefix: &str) -> bool {
    let Some(raw) = headers.get("grpc-message").map(HeaderValue::as_bytes) else { return false };
    let mut decoded = Vec::with_capacity(prefix.len());
    let mut i = 0;
    while i < raw.len() && decoded.len() < prefix.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (raw[i], raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                decoded.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    decoded == prefix.as_bytes()
}

/// Calls that run as long as they need: they change budgets on Meta (cutting
/// one short would leave a write half-done), or they are a live stream.
/// Only a response's start is timed, so a stream's body is never cut anyway.
pub const UNTIMED_METHODS: [&str; 6] = [
    "/autoscaler.v1.AutoScalerService/EvaluateCampaign",
    "/autoscaler.v1.AutoScalerService/EvaluateCampaigns",
    "/autoscaler.v1.AutoScalerService/RunCycle",
    "/autoscaler.v1.ApprovalsService/DecideAction",
    "/autoscaler.v1.ApprovalsService/WatchActions",
    "/autoscaler.v1.TimeOptimizationService/LearnOptimalHours",
];

/// Ends a call that has not answered within the server's request timeout
/// with DEADLINE_EXCEEDED (a caller's shorter `grpc-timeout` still applies).
/// Serve it with [`CallLayer`](super::call_layer::CallLayer). tonic's own
/// server timeout answers CANCELLED and cannot spare the calls that write.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTimeout {
    timeout: Option<Duration>,
}

impl RequestTimeout {
    /// Times calls out after `timeout`; `None` never does.
    pub fn new(timeout: Option<Duration>) -> Self {
        Self { timeout }
    }

    /// The time a call of `path` may take; `None` for no limit.
    pub fn limit_for(&self, path: &str) -> Option<Duration> {
        self.timeout.filter(|_| !UNTIMED_METHODS.contains(&path))
    }
}

impl AroundCall for RequestTimeout {
    fn around<F, R, E>(&self, path: &str, call: F) -> CallFuture<R, E>
    where
        F: Future<Output = Result<http::Response<R>, E>> + Send + 'static,
        R: Default + Send + 'static,
        E: Send + 'static,
    {
        let limit = self.limit_for(path);
        Box::pin(async move {
            let Some(limit) = limit else { return call.await };
            match tokio::time::timeout(limit, call).await {
                Ok(response) => response,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "the call did not finish within the server's request timeout of {} s",
                    limit.as_secs_f64()
                ))
                .into_http()),
            }
        })
    }
}

/// Counts the open streams of each principal against a limit.
#[derive(Debug, Clone)]
pub struct StreamQuota {
    limit: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl StreamQuota {
    /// At most `limit` open streams per principal.
    pub fn new(limit: usize) -> Self {
        Self { limit, open: Default::default() }
    }

    /// A permit for one more stream of `principal`, held as long as the
    /// stream is open; RESOURCE_EXHAUSTED when the principal holds `limit`.
    pub fn acquire(&self, principal: &str) -> Result<StreamPermit, Status> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(principal.to_owned()).or_default();
        if *count >= self.limit {
            return Err(Status::resource_exhausted(format!(
                "{principal} already has {} open WatchActions streams (the limit); close one first",
                self.limit
            )));
        }
        *count += 1;
        Ok(StreamPermit { open: self.open.clone(), principal: principal.to_owned() })
    }

    /// Streams `principal` holds now.
    pub fn open(&self, principal: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.get(principal).copied().unwrap_or(0)
    }
}

/// One open stream; dropping it (the stream ends or its client goes) frees
/// the slot.
#[derive(Debug)]
pub struct StreamPermit {
    open: Arc<Mutex<HashMap<String, usize>>>,
    principal: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.principal) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_outside_percent_escapes() {
        let mut headers = http::HeaderMap::new();
        let long = "%C3%A9".repeat(1_000);
        headers.insert("grpc-message", HeaderValue::from_str(&long).expect("ascii"));
        headers.insert("grpc-status-details-bin", HeaderValue::from_str(&"A".repeat(10_000)).expect("ascii"));
        bound_status_headers(&mut headers);
        let cut = headers.get("grpc-message").expect("kept").to_str().expect("ascii");
        assert!(cut.len() <= MAX_STATUS_MESSAGE_BYTES + 3 && cut.ends_with("..."));
        let body = cut.trim_end_matches("...");
        assert!(body.len().is_multiple_of(3) && body.starts_with("%C3%A9"), "{body}");
        assert!(headers.get("grpc-status-details-bin").is_none());

        let mut small = http::HeaderMap::new();
        small.insert("grpc-message", HeaderValue::from_static("invalid%20name"));
        bound_status_headers(&mut small);
        assert_eq!(small.get("grpc-message").map(HeaderValue::as_bytes), Some(&b"invalid%20name"[..]));
    }

    fn headers(code: &'static str, message: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static(code));
        let encoded = Status::new(tonic::Code::Ok, message).into_http::<tonic::body::Body>();
        if let Some(m) = encoded.headers().get("grpc-message") {
            headers.insert("grpc-message", m.clone());
        }
        headers
    }

    #[test]
    fn decoding_failures_get_the_conventional_codes() {
        let recoded = |code, message: &str| {
            let mut h = headers(code, message);
            recode_request_errors(&mut h);
            h.get("grpc-status").map(|v| v.as_bytes().to_vec())
        };
        assert_eq!(recoded("13", "failed to decode Protobuf message: invalid wire type value: 7"), Some(b"3".to_vec()));
        assert_eq!(recoded("13", "Unexpected EOF decoding stream."), Some(b"3".to_vec()));
        assert_eq!(
            recoded("11", "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes"),
            Some(b"8".to_vec())
        );
        // Anything else keeps its code: a real internal error stays INTERNAL.
        assert_eq!(recoded("13", "internal error"), Some(b"13".to_vec()));
        assert_eq!(recoded("11", "page_size out of range"), Some(b"11".to_vec()));
        assert_eq!(recoded("3", "failed to decode Protobuf message"), Some(b"3".to_vec()));
    }

    #[test]
    fn stream_permits_count_per_principal_and_free_on_drop() {
        let quota = StreamQuota::new(2);
        let a1 = quota.acquire("alice").expect("first");
        let _a2 = quota.acquire("alice").expect("second");
        let refused = quota.acquire("alice").expect_err("third");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        let _b = quota.acquire("bob").expect("another principal has its own count");
        drop(a1);
        assert_eq!(quota.open("alice"), 1);
        let _a3 = quota.acquire("alice").expect("a freed slot is reusable");
    }

    #[tokio::test]
    async fn only_calls_that_do_not_write_are_timed_out() {
        use tower::{Layer, Service, ServiceExt};
        let never = tower::service_fn(|_: http::Request<()>| {
            std::future::pending::<Result<http::Response<tonic::body::Body>, std::convert::Infallible>>()
        });
        let layer = RequestTimeout::new(Some(Duration::from_millis(10)));
        let mut service = super::super::call_layer::CallLayer::new(layer).layer(never);
        let request = http::Request::builder().uri("/autoscaler.v1.RulesService/ListRules").body(()).expect("request");
        let response = service.ready().await.expect("ready").call(request).await.expect("answered");
        assert_eq!(response.headers().get("grpc-status").map(HeaderValue::as_bytes), Some(&b"4"[..]));

        assert_eq!(layer.limit_for("/autoscaler.v1.RulesService/ListRules"), Some(Duration::from_millis(10)));
        for untimed in UNTIMED_METHODS {
            assert_eq!(layer.limit_for(untimed), None, "{untimed}");
        }
        assert_eq!(RequestTimeout::new(None).limit_for("/autoscaler.v1.RulesService/ListRules"), None);
    }
}
