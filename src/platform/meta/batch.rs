//! Graph API batch requests: up to 50 operations per POST, per-operation
//! results in order, and a bounded retry of the operations that came back
//! `null` (batch timeout) or with a transient error.
use serde_json::{Value, json};

use super::error::{PlatformError, as_i64};
use super::transport::{Call, Transport};

/// Meta's limit of operations per batch request.
pub const MAX_BATCH_OPS: usize = 50;

/// One operation of a batch.
#[derive(Debug, Clone)]
pub(super) struct BatchOp {
    /// `GET` or `POST`.
    pub(super) method: &'static str,
    /// Path and query relative to the Graph root, e.g. `v26.0/123?fields=id`.
    pub(super) relative_url: String,
    /// URL-encoded form body of a POST, e.g. `daily_budget=5000`.
    pub(super) body: Option<String>,
}

/// Per-operation outcome: the operation's JSON body, or its error.
pub(super) type OpResult = Result<Value, PlatformError>;

impl Transport {
    /// Runs `ops` for `account` in batches of at most 50. Operations that come
    /// back `null` or transient are sent again, at most `max_retries` times.
    /// The outer error only when no batch request got an answer at all.
    pub(super) async fn run_batch(&self, account: &str, ops: &[BatchOp]) -> Result<Vec<OpResult>, PlatformError> {
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
                match self.send_batch(account, ops, chunk).await {
                    Ok(entries) => {
                        answered = true;
                        for (&i, entry) in chunk.iter().zip(entries) {
                            if matches!(&entry, Err(e) if e.is_transient()) {
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
    ) -> Result<Vec<OpResult>, PlatformError> {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                let op = &ops[i];
                let mut entry = json!({"method": op.method, "relative_url": op.relative_url});
                if let Some(body) = &op.body {
                    entry["body"] = Value::String(body.clone());
                }
                entry
            })
            .collect();
        let form = vec![
            ("batch".to_owned(), Value::Array(batch).to_string()),
            ("include_headers".to_owned(), "false".to_owned()),
        ];
        let body = self.execute(account, &Call::Post { url: self.url("")?, form }).await?;
        let Value::Array(entries) = body else {
            return Err(PlatformError::Decode("batch answer is not a list".into()));
        };
        if entries.len() != chunk.len() {
            return Err(PlatformError::Decode(format!(
                "batch of {} answered with {} entries",
                chunk.len(),
                entries.len()
            )));
        }
        Ok(entries.into_iter().map(op_result).collect())
    }
}

/// One entry of a batch answer: `null` after a batch timeout, else
/// `{"code": 200, "body": "<JSON string>"}`.
fn op_result(entry: Value) -> OpResult {
    if entry.is_null() {
        // Meta leaves unfinished operations null when the batch times out.
        return Err(PlatformError::Timeout);
    }
    let code = entry.get("code").and_then(as_i64).unwrap_or(0);
    let status = u16::try_from(code).unwrap_or(0);
    let body = match entry.get("body") {
        Some(Value::String(raw)) => match serde_json::from_str(raw) {
            Ok(body) => body,
            Err(_) if !(200..300).contains(&code) => return Err(PlatformError::Http { status }),
            Err(_) => return Err(PlatformError::Decode("batch operation body is not JSON".into())),
        },
        Some(other) => other.clone(),
        None => Value::Null,
    };
    if let Some(err) = PlatformError::from_body(&body, status) {
        return Err(err);
    }
    if !(200..300).contains(&code) {
        return Err(PlatformError::Http { status });
    }
    if body.get("success") == Some(&Value::Bool(false)) {
        return Err(PlatformError::Decode("Meta answered success: false".into()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind_of_entry() {
        assert!(matches!(op_result(Value::Null), Err(PlatformError::Timeout)));
        let ok = json!({"code": 200, "headers": [], "body": "{\"success\":true}"});
        assert_eq!(op_result(ok).ok(), Some(json!({"success": true})));
        let failed =
            json!({"code": 400, "body": "{\"error\":{\"code\":100,\"error_subcode\":1885621,\"message\":\"m\"}}"});
        assert!(matches!(
            op_result(failed),
            Err(PlatformError::Api { code: 100, subcode: Some(1_885_621), http_status: 400, .. })
        ));
        assert!(matches!(op_result(json!({"code": 500, "body": "oops"})), Err(PlatformError::Http { status: 500 })));
        assert!(matches!(op_result(json!({"code": 200, "body": "oops"})), Err(PlatformError::Decode(_))));
        assert!(matches!(op_result(json!({"code": 503, "body": "{}"})), Err(PlatformError::Http { status: 503 })));
    }
}
