//! The sandbox's HTTP face: an axum server on 127.0.0.1 with a random port,
//! transport-level faults (HTTP 500s, stalls), the token check, and Meta's
//! usage headers on every answer about an account.
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use super::graph::{self, GraphRequest, Method, error_reply};
use super::spec::MetaErrorSpec;
use super::{RequestKind, Sandbox, batch};
use crate::conventions::appsecret_proof;

#[derive(Clone)]
struct Served {
    sandbox: Sandbox,
    base: Url,
}

/// A sandbox serving HTTP on loopback; stops when dropped or shut down.
pub struct RunningSandbox {
    sandbox: Sandbox,
    addr: SocketAddr,
    base: Url,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSandbox {
    /// `http://127.0.0.1:<port>`: the Graph root to give the client.
    pub fn base_url(&self) -> Url {
        self.base.clone()
    }

    /// The socket the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token the sandbox accepts.
    pub fn access_token(&self) -> String {
        self.sandbox.access_token()
    }

    /// The sandbox behind the server: inspect it and flip its fault switches.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Stops the server and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds 127.0.0.1:0 and serves `sandbox` until the handle goes.
pub(super) async fn start(sandbox: &Sandbox) -> io::Result<RunningSandbox> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let base = Url::parse(&format!("http://{addr}")).map_err(io::Error::other)?;
    let app = Router::new().fallback(handle).with_state(Served { sandbox: sandbox.clone(), base: base.clone() });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::warn!(error = %err, "Meta sandbox server stopped");
        }
    });
    tracing::info!(%addr, "Meta sandbox listening");
    Ok(RunningSandbox { sandbox: sandbox.clone(), addr, base, stop: Some(stop), task: Some(task) })
}

async fn handle(AxumState(served): AxumState<Served>, method: HttpMethod, uri: Uri, body: Bytes) -> Response {
    let (stall, fail) = served.sandbox.with(|st| {
        st.http_requests += 1;
        let stall = st.faults.take_stall();
        (stall, st.faults.take_failure())
    });
    if let Some(delay) = stall {
        tokio::time::sleep(delay).await;
    }
    if fail {
        let body = served.sandbox.with(|st| {
            let spec = MetaErrorSpec {
                code: 2,
                subcode: None,
                message: "An unexpected error has occurred. Please retry your request later.".into(),
                is_transient: true,
                http_status: 500,
            };
            error_reply(st, &spec, None).body
        });
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, body, Vec::new());
    }
    let method = match method {
        HttpMethod::GET => Method::Get,
        HttpMethod::POST => Method::Post,
        _ => {
            let body = json!({"error": {"message": "Unsupported method", "type": "OAuthException", "code": 100}});
            return json_response(StatusCode::METHOD_NOT_ALLOWED, body.to_string(), Vec::new());
        }
    };
    let mut params = uri.query().map(graph::parse_form).unwrap_or_default();
    if method == Method::Post {
        params.extend(graph::parse_form(&String::from_utf8_lossy(&body)));
    }
    let req = GraphRequest::new(method, uri.path(), params);
    let writes = req.kind() == RequestKind::Batch && batch::has_writes(&req);
    let (status, body, headers, answer) = served.sandbox.with(|st| {
        let proof_ok = match &st.app_secret {
            None => true,
            Some(secret) => req.param("appsecret_proof").is_some_and(|p| p == appsecret_proof(secret, &st.token)),
        };
        let reply = if req.param("access_token") != Some(st.token.as_str()) {
            let spec = MetaErrorSpec::permanent(190, None, "Invalid OAuth access token - Cannot parse access token");
            error_reply(st, &spec, None)
        } else if !proof_ok {
            let spec = MetaErrorSpec::permanent(100, None, "Invalid appsecret_proof provided in the API argument");
            error_reply(st, &spec, None)
        } else if req.kind() == RequestKind::Batch {
            *st.by_kind.entry(RequestKind::Batch).or_default() += 1;
            batch::batch(st, &served.base, &req)
        } else {
            graph::dispatch(st, &served.base, &req)
        };
        let headers = match reply.account {
            Some(account) => graph::usage_headers(st, account, req.kind() == RequestKind::Insights),
            None => Vec::new(),
        };
        // Faults on the way back: the writes above have been applied already.
        let answer = match writes.then(|| st.faults.take_write_answer()) {
            Some((true, _)) => Answer::Lost,
            Some((false, Some(delay))) => Answer::Late(delay),
            _ => Answer::OnTime,
        };
        (reply.status, reply.body, headers, answer)
    });
    match answer {
        Answer::OnTime => {}
        Answer::Late(delay) => tokio::time::sleep(delay).await,
        Answer::Lost => return (StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>").into_response(),
    }
    json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), body, headers)
}

/// How the answer to a request travels back.
enum Answer {
    OnTime,
    Late(Duration),
    Lost,
}

fn json_response(status: StatusCode, body: String, headers: Vec<(&'static str, String)>) -> Response {
    let mut response = (status, body).into_response();
    let map = response.headers_mut();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            map.insert(HeaderName::from_static(name), value);
        }
    }
    response
}
