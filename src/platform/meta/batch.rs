//! Graph API batch requests: up to 50 operations per POST, per-operation
//! results in order, and a bounded retry of the operations that came back
//! `null` (batch timeout) or with a transient error.
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{PlatformError, as_i64};
use super::transport::{Call, Transport, check_body};

/// Meta's limit of operations per batch request.
pub const MAX_BATCH_OPS: usize = 50;

/// One operation of a batch, serialized as Meta expects it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct BatchOp {
    /// `GET` or `POST`.
    pub(super) method: &'static str,
    /// Path and query relative to the Graph root, e.g. `v26.0/123?fields=id`.
    pub(super) relative_url: String,
    /// URL-encoded form body of a POST, e.g. `daily_budget=5000`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) body: Option<String>,
}

/// Per-operation outcome: the operation's JSON body (as text), or its error.
pub(super) type OpResult = Result<String, PlatformError>;

impl Transport {
    /// Runs `ops` for `account` in batches of at most 50. Operations that come
    /// back transient are sent again, at most `max_retries` times; so are
    /// `null` ones (Meta's batch timed out before finishing them) when the
    /// batch only reads. A batch with writes resends only the operations
    /// Meta answered with an error: an unanswered write may have landed.
    /// The outer error only when no batch request got an answer at all.
    pub(super) async fn run_batch(&self, account: &str, ops: &[BatchOp]) -> Result<Vec<OpResult>, PlatformError> {
        let reads_only = ops.iter().all(|op| op.method == "GET");
        let mut results: Vec<Option<OpResult>> = vec![None; ops.len()];
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        let mut answered = false;
        let mut whole_failure = None;
        for round in 0..=self.settings.max_retries {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                tokio::time::sleep(self.backoff(round - 1)).await;
            }
            let mut retry = Vec::new();
            for chunk in pending.chunks(MAX_BATCH_OPS) {
                match self.send_batch(account, ops, chunk, reads_only).await {
                    Ok(entries) => {
                        answered = true;
                        for (&i, entry) in chunk.iter().zip(entries) {
                            if matches!(&entry, Err(e) if e.is_transient() && (reads_only || e.proves_not_applied())) {
                                retry.push(i);
                            }
                            results[i] = Some(entry);
                        }
                    }
                    // The request itself was already retried by `execute`: final for these ops.
                    Err(err) => {
                        for &i in chunk {
                            results[i] = Some(Err(err.clone()));
                        }
                        whole_failure = Some(err);
                    }
                }
            }
            pending = retry;
        }
        match whole_failure {
            Some(err) if !answered => Err(err),
            _ => Ok(results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(PlatformError::Decode("batch operation never answered".into()))))
                .collect()),
        }
    }

    async fn send_batch(
        &self,
        account: &str,
        ops: &[BatchOp],
        chunk: &[usize],
        idempotent: bool,
    ) -> Result<Vec<OpResult>, PlatformError> {
        let batch: Vec<&BatchOp> = chunk.iter().map(|&i| &ops[i]).collect();
        let batch = serde_json::to_string(&batch).map_err(|e| PlatformError::Invalid(format!("batch: {e}")))?;
        let form = vec![("batch".to_owned(), batch), ("include_headers".to_owned(), "false".to_owned())];
        let body = self.execute(account, &Call::Post { url: self.url("")?, form, idempotent }).await?;
        let entries: Vec<Option<Entry>> = self.decode(&body, "batch answer")?;
        if entries.len() != chunk.len() {
            return Err(PlatformError::Decode(format!(
                "batch of {} answered with {} entries",
                chunk.len(),
                entries.len()
            )));
        }
        Ok(entries.into_iter().map(|entry| op_result(entry).map_err(|e| e.redacted(self.token()))).collect())
    }
}

/// One entry of a batch answer: `{"code": 200, "body": "<JSON string>"}`.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    body: Option<Value>,
}

/// An entry's outcome: `null` (Meta's mark of an operation unfinished when the
/// batch timed out) is a timeout; otherwise the operation's own status and body.
fn op_result(entry: Option<Entry>) -> OpResult {
    let Some(entry) = entry else { return Err(PlatformError::Timeout) };
    let code = entry.code.as_ref().and_then(as_i64).unwrap_or(0);
    let status = u16::try_from(code).unwrap_or(0);
    let body = match entry.body {
        Some(Value::String(raw)) => raw,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    check_body(status, body.as_bytes())?;
    if !(200..300).contains(&code) {
        return Err(PlatformError::Http { status });
    }
    if serde_json::from_str::<IgnoredAny>(&body).is_err() {
        return Err(PlatformError::Decode("batch operation body is not JSON".into()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(v: Value) -> OpResult {
        op_result(serde_json::from_value(v).expect("an entry"))
    }

    #[test]
    fn reads_each_kind_of_entry() {
        assert!(matches!(entry(Value::Null), Err(PlatformError::Timeout)));
        let ok = json!({"code": 200, "headers": [], "body": "{\"success\":true}"});
        assert_eq!(entry(ok).ok().as_deref(), Some("{\"success\":true}"));
        let failed =
            json!({"code": 400, "body": "{\"error\":{\"code\":100,\"error_subcode\":1885621,\"message\":\"m\"}}"});
        assert!(matches!(
            entry(failed),
            Err(PlatformError::Api { code: 100, subcode: Some(1_885_621), http_status: 400, .. })
        ));
        assert!(matches!(entry(json!({"code": 500, "body": "oops"})), Err(PlatformError::Http { status: 500 })));
        assert!(matches!(entry(json!({"code": 200, "body": "oops"})), Err(PlatformError::Decode(_))));
        assert!(matches!(entry(json!({"code": 503, "body": "{}"})), Err(PlatformError::Http { status: 503 })));
        let refused = json!({"code": 200, "body": "{\"success\":false}"});
        assert!(matches!(entry(refused), Err(PlatformError::Decode(_))));
    }
}
