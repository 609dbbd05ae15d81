//! One Graph API call with Meta's retry policy: the per-account gate first,
//! then the request, usage headers, error bodies, bounded back-off for
//! transient failures and throttles; and cursor paging on top of it.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Largest Graph API answer the client reads (a page of 500 campaigns is well under 1 MiB).
pub(super) const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use reqwest::Url;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::MetaSettings;
use super::error::PlatformError;
use super::usage::{Admission, Gates, Usage, parse_usage};
use super::wire::Page;

/// Pages followed at most on one edge: far beyond any real account, low
/// enough to end a cursor loop.
const MAX_PAGES: usize = 10_000;
/// Longest single back-off sleep.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// An HTTP request to the Graph API, before the token is added.
#[derive(Debug, Clone)]
pub(super) enum Call {
    /// GET with query parameters.
    Get { url: Url, query: Vec<(String, String)> },
    /// POST with form parameters. `idempotent` when sending it twice does
    /// no harm (a batch of reads); a write is sent again only when Meta's
    /// answer proves the first copy was not applied.
    Post { url: Url, form: Vec<(String, String)>, idempotent: bool },
}

impl Call {
    /// Whether a copy of the call may be sent again after an answer that
    /// does not say what happened (a timeout, a dropped connection, a 5xx).
    fn is_idempotent(&self) -> bool {
        match self {
            Self::Get { .. } => true,
            Self::Post { idempotent, .. } => *idempotent,
        }
    }
}

/// The shared state behind every clone of a `MetaClient`.
pub(super) struct Transport {
    pub(super) http: reqwest::Client,
    pub(super) settings: MetaSettings,
    /// `appsecret_proof` for the token, when an app secret is configured.
    pub(super) proof: Option<String>,
    pub(super) gates: Gates,
    pub(super) requests: AtomicU64,
    /// Time of each HTTP exchange (sent to body read), retries included.
    pub(super) request_seconds: Histogram,
    jitter: AtomicU64,
}

impl Transport {
    pub(super) fn new(http: reqwest::Client, settings: MetaSettings, proof: Option<String>) -> Self {
        // Throttled accounts get requests spaced by the back-off base, and a pause
        // of a few of them when the headers give no regain time.
        let gates = Gates::new(settings.backoff_base, settings.backoff_base * 8);
        // 5 ms to about 80 s: a Graph call is never faster, and the timeout
        // defaults to 60 s.
        let request_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 15));
        Self {
            http,
            settings,
            proof,
            gates,
            requests: AtomicU64::new(0),
            request_seconds,
            jitter: AtomicU64::new(0x5eed),
        }
    }

    pub(super) fn token(&self) -> &str {
        self.settings.access_token.expose_secret()
    }

    /// `{graph_url}/{version}/{path}`.
    pub(super) fn url(&self, path: &str) -> Result<Url, PlatformError> {
        let base = self.settings.graph_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{}/{path}", self.settings.api_version))
            .map_err(|e| PlatformError::Invalid(format!("bad Graph API URL for {path}: {e}")))
    }

    /// Sends `call` for `account`, retrying per Meta's policy, and returns the
    /// body of the first success (checked for Meta's error shapes).
    pub(super) async fn execute(&self, account: &str, call: &Call) -> Result<Vec<u8>, PlatformError> {
        let settings = &self.settings;
        let mut attempt: u32 = 0;
        loop {
            match self.gates.admit(account, settings.max_throttle_wait) {
                Admission::Go => {}
                Admission::WaitThen(wait) => tokio::time::sleep(wait).await,
                Admission::Refuse { remaining, code, subcode, reason } => {
                    return Err(PlatformError::Throttled {
                        account: account.to_owned(),
                        retry_after: remaining,
                        code,
                        subcode,
                        message: reason,
                    });
                }
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let (result, usage) = self.send_once(account, call).await;
            self.request_seconds.observe(started.elapsed().as_secs_f64());
            let err = match result {
                Ok(body) => return Ok(body),
                Err(err) => err,
            };
            if err.is_throttle() {
                let header_wait = usage.map_or(Duration::ZERO, |u| u.regain);
                let wait = header_wait.max(self.backoff(attempt));
                let (code, subcode) = (err.code().unwrap_or(0), err.subcode());
                self.gates.pause(account, wait, code, subcode, &err.message());
                if wait > settings.max_throttle_wait {
                    tracing::warn!(account, code, wait_s = wait.as_secs(), "Meta throttled the account; failing fast");
                    return Err(PlatformError::Throttled {
                        account: account.to_owned(),
                        retry_after: wait,
                        code: err.code(),
                        subcode,
                        message: err.message(),
                    });
                }
                if attempt >= settings.max_retries {
                    return Err(err);
                }
                tracing::info!(account, code, wait_ms = wait.as_millis() as u64, "Meta throttled the account; waiting");
            } else if err.is_transient()
                && attempt < settings.max_retries
                && (call.is_idempotent() || err.proves_not_applied())
            {
                let wait = self.backoff(attempt);
                tracing::info!(account, error = %err, wait_ms = wait.as_millis() as u64, "transient Meta failure; retrying");
                tokio::time::sleep(wait).await;
            } else {
                return Err(err);
            }
            attempt += 1;
        }
    }

    async fn send_once(&self, account: &str, call: &Call) -> (Result<Vec<u8>, PlatformError>, Option<Usage>) {
        let mut auth = vec![("access_token", self.token())];
        if let Some(proof) = &self.proof {
            auth.push(("appsecret_proof", proof.as_str()));
        }
        let request = match call {
            Call::Get { url, query } => self.http.get(url.clone()).query(query).query(&auth),
            Call::Post { url, form, .. } => {
                let mut fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                fields.extend(auth);
                self.http.post(url.clone()).form(&fields)
            }
        };
        let response = match request.timeout(self.settings.request_timeout).send().await {
            Ok(response) => response,
            Err(e) => return (Err(self.transport_error(e)), None),
        };
        let status = response.status().as_u16();
        let usage = parse_usage(response.headers(), account);
        if let Some(usage) = usage {
            self.gates.observe(account, usage);
        }
        let result = match self.read_capped(response).await {
            Ok(bytes) => check_body(status, &bytes).map(|()| bytes).map_err(|e| e.redacted(self.token())),
            Err(e) => Err(e),
        };
        (result, usage)
    }

    /// Reads a body of at most [`MAX_RESPONSE_BYTES`]: a larger answer is an
    /// error, never a way to exhaust memory.
    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, PlatformError> {
        if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
            return Err(PlatformError::Decode(format!("response larger than {MAX_RESPONSE_BYTES} bytes")));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(PlatformError::Decode(format!("response larger than {MAX_RESPONSE_BYTES} bytes")));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(self.transport_error(e)),
            }
        }
    }

    fn transport_error(&self, err: reqwest::Error) -> PlatformError {
        if err.is_timeout() {
            return PlatformError::Timeout;
        }
        // without_url: reqwest would otherwise print the URL, token included.
        let err = err.without_url();
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        PlatformError::Transport(message).redacted(self.token())
    }

    /// Exponential back-off for `attempt` (0-based), jittered by ±25% so that
    /// callers retrying together spread out.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let base = self.settings.backoff_base.saturating_mul(1 << attempt.min(16)).min(MAX_BACKOFF);
        let draw = splitmix64(self.jitter.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed));
        let factor = 0.75 + (draw >> 11) as f64 / (1u64 << 53) as f64 * 0.5;
        base.mul_f64(factor)
    }

    /// Decodes a checked body into `T`; the message names `what`, never the body.
    pub(super) fn decode<'b, T: Deserialize<'b>>(&self, bytes: &'b [u8], what: &str) -> Result<T, PlatformError> {
        serde_json::from_slice(bytes).map_err(|e| PlatformError::Decode(format!("{what}: {e}")).redacted(self.token()))
    }

    /// GETs every page of an edge, following `paging.next` until it is absent.
    pub(super) async fn get_paged<T: DeserializeOwned>(
        &self,
        account: &str,
        path: &str,
        query: Vec<(String, String)>,
    ) -> Result<Vec<T>, PlatformError> {
        let mut rows = Vec::new();
        self.for_each_page(account, path, query, |body| {
            let page: Page<T> = self.decode(body, path)?;
            rows.extend(page.data);
            Ok(page.paging.and_then(|p| p.next))
        })
        .await?;
        Ok(rows)
    }

    /// GETs every page of an edge and hands each checked body to `each`,
    /// which decodes what it needs (borrowing from the body rather than
    /// copying every field) and returns the page's `paging.next`.
    pub(super) async fn for_each_page(
        &self,
        account: &str,
        path: &str,
        query: Vec<(String, String)>,
        mut each: impl FnMut(&[u8]) -> Result<Option<String>, PlatformError>,
    ) -> Result<(), PlatformError> {
        let mut call = Call::Get { url: self.url(path)?, query };
        for _ in 0..MAX_PAGES {
            let body = self.execute(account, &call).await?;
            // Only an absent `next` ends the edge: empty or short pages may carry one.
            match each(&body)? {
                Some(next) => call = Call::Get { url: self.next_url(&next)?, query: Vec::new() },
                None => return Ok(()),
            }
        }
        Err(PlatformError::Decode(format!("{path}: more than {MAX_PAGES} pages")))
    }

    /// Checks a `paging.next` URL and removes the credentials it carries; the
    /// client adds its own, and only ever sends them to the configured host.
    fn next_url(&self, next: &str) -> Result<Url, PlatformError> {
        let url = Url::parse(next).map_err(|_| PlatformError::Decode("paging.next is not a URL".into()))?;
        let clean = strip_credentials(&url);
        if url.origin() != self.settings.graph_url.origin() {
            return Err(PlatformError::Decode(format!("paging.next leaves the Graph API host: {clean}")));
        }
        Ok(clean)
    }
}

/// The URL without `access_token` and `appsecret_proof`: safe to log or send on.
pub(super) fn strip_credentials(url: &Url) -> Url {
    let mut clean = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "access_token" && k != "appsecret_proof")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        clean.set_query(None);
    } else {
        clean.query_pairs_mut().clear().extend_pairs(kept);
    }
    clean
}

/// Just the keys that make a JSON object a failure; the rest is skipped unread.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    success: Option<Value>,
}

/// Checks a response the way Meta's SDK does: an `error` key fails whatever
/// the status; `{"success": false}` fails; a non-JSON 5xx is a transient HTTP
/// error. Other bodies are decoded (and so validated) by the caller.
pub(super) fn check_body(status: u16, bytes: &[u8]) -> Result<(), PlatformError> {
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match is_object.then(|| serde_json::from_slice::<Probe>(bytes)) {
        Some(Ok(probe)) => {
            if let Some(error) = probe.error {
                Err(PlatformError::from_error(&error, status))
            } else if status >= 400 {
                Err(PlatformError::Http { status })
            } else if probe.success == Some(Value::Bool(false)) {
                Err(PlatformError::Decode("Meta answered success: false".into()))
            } else {
                Ok(())
            }
        }
        _ if status >= 400 => Err(PlatformError::Http { status }),
        Some(Err(e)) => Err(PlatformError::Decode(format!("body is not JSON: {e}"))),
        None if String::from_utf8_lossy(bytes).contains("Service Unavailable") => {
            Err(PlatformError::Http { status: 503 })
        }
        None => Ok(()),
    }
}

/// SplitMix64's output function: a cheap, well-mixed hash of a counter.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_credentials_from_next_urls() {
        let url = Url::parse(
            "https://graph.facebook.com/v26.0/act_1/insights?limit=5&access_token=SECRET&after=QQ&appsecret_proof=ab",
        )
        .expect("url");
        let clean = strip_credentials(&url).to_string();
        assert_eq!(clean, "https://graph.facebook.com/v26.0/act_1/insights?limit=5&after=QQ");
    }

    #[test]
    fn checks_bodies_like_the_sdk() {
        let throttled = check_body(200, br#"{"error":{"code":17,"message":"m"}}"#);
        assert!(matches!(throttled, Err(PlatformError::Api { code: 17, .. })));
        assert!(matches!(check_body(502, b"<html>bad gateway</html>"), Err(PlatformError::Http { status: 502 })));
        assert!(matches!(check_body(200, br#"{"success":false}"#), Err(PlatformError::Decode(_))));
        assert!(matches!(check_body(200, b"Service Unavailable"), Err(PlatformError::Http { status: 503 })));
        assert!(check_body(200, br#"{"success":true}"#).is_ok());
        assert!(check_body(200, br#"[{"code":200}]"#).is_ok());
    }
}
