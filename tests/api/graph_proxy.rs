//! A recording, tampering HTTP proxy in front of the Meta sandbox: the client
//! talks to it as if it were Meta; every request's parameters are recorded,
//! and a test-supplied function may rewrite (or replace) each answer.
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

/// One request as Meta would have received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Query and form parameters, decoded.
    pub params: Vec<(String, String)>,
}

impl Seen {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An answer on its way back to the client.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn set_json(&mut self, value: &serde_json::Value) {
        self.body = value.to_string().into_bytes();
    }
}

type Tamper = Arc<dyn Fn(&Seen, &mut Reply) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
    tamper: Arc<Mutex<Option<Tamper>>>,
}

/// The running proxy; stops when dropped.
pub struct GraphProxy {
    pub base_url: String,
    shared: Shared,
    _stop: oneshot::Sender<()>,
}

impl GraphProxy {
    /// Proxies to `upstream` (`http://127.0.0.1:<port>`).
    pub async fn start(upstream: &str) -> GraphProxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            seen: Default::default(),
            tamper: Default::default(),
        };
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        GraphProxy { base_url: format!("http://{addr}"), shared, _stop: stop }
    }

    /// Rewrites every answer from now on with `f`.
    pub fn tamper(&self, f: impl Fn(&Seen, &mut Reply) + Send + Sync + 'static) {
        *self.shared.tamper.lock().expect("tamper lock") = Some(Arc::new(f));
    }

    /// Passes answers through unchanged from now on.
    pub fn clear(&self) {
        *self.shared.tamper.lock().expect("tamper lock") = None;
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("seen lock").clone()
    }
}

fn decode_pairs(raw: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{raw}"))
        .map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

async fn forward(State(shared): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut params = uri.query().map(decode_pairs).unwrap_or_default();
    if method == Method::POST {
        params.extend(decode_pairs(&String::from_utf8_lossy(&body)));
    }
    let seen = Seen { method: method.to_string(), path: uri.path().to_owned(), params };
    shared.seen.lock().expect("seen lock").push(seen.clone());
    let target = format!("{}{}", shared.upstream, uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut request = shared.http.request(method, target).body(body.to_vec());
    if let Some(ct) = headers.get("content-type") {
        request = request.header("content-type", ct);
    }
    let mut reply = match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let headers = r
                .headers()
                .iter()
                .filter(|(k, _)| *k != "content-length" && *k != "transfer-encoding")
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
                .collect();
            let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            Reply { status, headers, body }
        }
        Err(_) => Reply { status: 502, headers: Vec::new(), body: b"bad gateway".to_vec() },
    };
    let tamper = shared.tamper.lock().expect("tamper lock").clone();
    if let Some(f) = tamper {
        f(&seen, &mut reply);
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK), reply.body).into_response();
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (k.parse::<axum::http::HeaderName>(), v.parse::<axum::http::HeaderValue>()) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}
