//! Bounds on what the server sends back: an error status travels in HTTP/2
//! headers, and a message that echoes a huge caller input (say an unknown
//! `update_mask` path of a megabyte) would make the client's HTTP/2 library
//! drop the whole connection (GOAWAY `ENHANCE_YOUR_CALM`), failing every other
//! call on it. This layer keeps such statuses small.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;

/// Longest `grpc-message` sent, in bytes of its percent-encoded form.
pub const MAX_STATUS_MESSAGE_BYTES: usize = 1024;
/// Largest `grpc-status-details-bin` sent; larger details are dropped (the
/// code and the truncated message remain).
pub const MAX_STATUS_DETAILS_BYTES: usize = 8 * 1024;

/// Truncates oversized status headers of every response.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusSizeLayer;

impl<S> tower::Layer<S> for StatusSizeLayer {
    type Service = StatusSize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatusSize { inner }
    }
}

/// The service of [`StatusSizeLayer`].
#[derive(Debug, Clone)]
pub struct StatusSize<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for StatusSize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            bound_status_headers(response.headers_mut());
            Ok(response)
        })
    }
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
}
