//! The sandbox's batch endpoint (`POST /` and `POST /{version}/`): at most 50
//! operations, each answered `{"code", "headers", "body": "<JSON string>"}`,
//! or `null` when a batch-timeout fault is armed.
use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::graph::{self, GraphRequest, Method, Reply, error_reply, invalid};
use super::spec::MetaErrorSpec;
use super::state::State;
use crate::conventions::MAX_BATCH_OPS;

/// Runs the operations of a `batch` form field in order.
pub(super) fn batch(state: &mut State, base: &Url, req: &GraphRequest) -> Reply {
    let Some(raw) = req.param("batch") else {
        return invalid(state, None, "(#100) The parameter batch is required", None);
    };
    let Ok(Value::Array(ops)) = serde_json::from_str::<Value>(raw) else {
        return invalid(state, None, "(#100) The parameter batch must be a JSON array", None);
    };
    if ops.len() > MAX_BATCH_OPS {
        let spec = MetaErrorSpec::permanent(1, None, "Too many requests in batch message. Maximum batch size is 50");
        return error_reply(state, &spec, None);
    }
    let headers = (req.param("include_headers") != Some("false")).then_some([Header::CONTENT_TYPE]);
    let mut account = None;
    let mut entries = Vec::with_capacity(ops.len());
    for op in &ops {
        let is_write = op.get("method").and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case("POST"));
        if state.faults.take_null_op(is_write) {
            // Meta leaves the operations it did not finish before the batch
            // timed out null; nothing of them was applied.
            entries.push(None);
            continue;
        }
        let reply = run_op(state, base, op);
        account = account.or(reply.account);
        entries.push(Some(Entry { code: reply.status, headers, body: reply.body }));
    }
    Reply::ok(&entries, account)
}

/// Whether a batch request carries at least one write (a POST operation).
pub(super) fn has_writes(req: &GraphRequest) -> bool {
    let Some(Ok(Value::Array(ops))) = req.param("batch").map(serde_json::from_str::<Value>) else {
        return false;
    };
    ops.iter().any(|op| op.get("method").and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case("POST")))
}

/// One operation's answer; `body` is the operation's JSON as a string.
#[derive(Serialize)]
struct Entry {
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<[Header; 1]>,
    body: String,
}

#[derive(Clone, Copy, Serialize)]
struct Header {
    name: &'static str,
    value: &'static str,
}

impl Header {
    const CONTENT_TYPE: Self = Self { name: "Content-Type", value: "text/javascript; charset=UTF-8" };
}

fn run_op(state: &mut State, base: &Url, op: &Value) -> Reply {
    let method = match op.get("method").and_then(Value::as_str).map(str::to_ascii_uppercase).as_deref() {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        _ => return invalid(state, None, "(#100) Batch operations need method GET or POST", None),
    };
    let Some(relative_url) = op.get("relative_url").and_then(Value::as_str) else {
        return invalid(state, None, "(#100) Batch operations need a relative_url", None);
    };
    let (path, query) = relative_url.split_once('?').unwrap_or((relative_url, ""));
    let mut params = graph::parse_form(query);
    if let Some(body) = op.get("body").and_then(Value::as_str) {
        params.extend(graph::parse_form(body));
    }
    let req = GraphRequest::new(method, path, params);
    if req.segments.is_empty() {
        return invalid(state, None, "(#100) Batch operations need an object id", None);
    }
    graph::dispatch(state, base, &req)
}
