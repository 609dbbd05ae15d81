//! Failures of the ad platform, classified the way Meta's error handling guide
//! asks: by error code only (throttle, transient, permanent, not found). Every
//! message is token-free.
use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// A failed call to the ad platform.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformError {
    /// Meta answered with an `error` body.
    Api {
        /// Meta's `code`.
        code: i64,
        /// Meta's `error_subcode`.
        subcode: Option<i64>,
        /// Meta's `message` (token-free).
        message: String,
        /// Meta's `is_transient`.
        is_transient: bool,
        /// HTTP status of the response (or of the batch operation).
        http_status: u16,
        /// Meta's `fbtrace_id`, for support requests.
        fbtrace_id: Option<String>,
    },
    /// The account is paused by Meta's throttling (or by our own back-off before
    /// the quota runs out) for longer than the client is willing to wait.
    Throttled {
        /// The account (`act_...`).
        account: String,
        /// How long until calls for the account may be made again.
        retry_after: Duration,
        /// Meta's code, when an error (not just a usage header) caused it.
        code: Option<i64>,
        /// Meta's subcode.
        subcode: Option<i64>,
        /// Meta's message, or why we backed off.
        message: String,
    },
    /// An HTTP error status without a Meta error body (a 5xx from a proxy).
    Http {
        /// HTTP status.
        status: u16,
    },
    /// The request (or a batch operation) timed out.
    Timeout,
    /// The connection failed; the message never includes the URL.
    Transport(String),
    /// Meta's answer was not what the API promises.
    Decode(String),
    /// The request was refused before sending (e.g. an object id that is not digits).
    Invalid(String),
}

impl PlatformError {
    /// Builds an error from a Meta error body (`{"error": {...}}`), if it is one.
    #[cfg(test)]
    pub(crate) fn from_body(body: &Value, http_status: u16) -> Option<Self> {
        body.get("error").map(|error| Self::from_error(error, http_status))
    }

    /// Builds an error from the `error` object of a Meta error body.
    pub(crate) fn from_error(error: &Value, http_status: u16) -> Self {
        let int = |key: &str| error.get(key).and_then(as_i64);
        Self::Api {
            code: int("code").unwrap_or(0),
            subcode: int("error_subcode").filter(|s| *s != 0),
            message: error.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
            is_transient: error.get("is_transient").and_then(Value::as_bool).unwrap_or(false),
            http_status,
            fbtrace_id: error.get("fbtrace_id").and_then(Value::as_str).map(str::to_owned),
        }
    }

    /// Meta's error code, when Meta sent one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            Self::Throttled { code, .. } => *code,
            _ => None,
        }
    }

    /// Meta's error subcode, when Meta sent one.
    pub fn subcode(&self) -> Option<i64> {
        match self {
            Self::Api { subcode, .. } | Self::Throttled { subcode, .. } => *subcode,
            _ => None,
        }
    }

    /// Meta's message, or a description of the local failure.
    pub fn message(&self) -> String {
        match self {
            Self::Api { message, .. } | Self::Throttled { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Rate limiting: wait (per the usage headers) and try later.
    pub fn is_throttle(&self) -> bool {
        match self {
            Self::Throttled { .. } => true,
            Self::Api { code, .. } => is_throttle_code(*code),
            _ => false,
        }
    }

    /// A passing failure worth retrying soon with back-off. Disjoint from
    /// [`is_throttle`](Self::is_throttle), which has its own waiting rules.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { code, subcode, is_transient, .. } => {
                if is_throttle_code(*code) {
                    return false;
                }
                // Meta asks to reshape timed-out or too-large queries, not to repeat them.
                let reshape =
                    matches!((*code, *subcode), (2, Some(1_504_038 | 1_504_041)) | (100, Some(1_504_018 | 1_487_534)));
                !reshape && (*is_transient || matches!(code, 1 | 2) || (*code, *subcode) == (-2, Some(2_490_547)))
            }
            Self::Http { status } => *status >= 500 || *status == 429,
            Self::Timeout | Self::Transport(_) => true,
            Self::Throttled { .. } | Self::Decode(_) | Self::Invalid(_) => false,
        }
    }

    /// Whether the failure proves that a write was *not* applied: Meta answered
    /// with an error (a refusal, a throttle, a transient error it reports as
    /// such), or the request was refused before it was sent. A timeout, a
    /// dropped connection, a bare 5xx from a proxy or an unreadable answer
    /// prove nothing: the write may have landed, so it is never sent again
    /// blindly but read back.
    pub fn proves_not_applied(&self) -> bool {
        matches!(self, Self::Api { .. } | Self::Throttled { .. } | Self::Invalid(_))
    }

    /// Retrying will not help (bad parameters, permissions, token, budget rules).
    pub fn is_permanent(&self) -> bool {
        !self.is_throttle() && !self.is_transient()
    }

    /// The object does not exist (or is not visible to the token): Meta code 100
    /// with subcode 33, or 803 for unknown aliases.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { code: 100, subcode: Some(33), .. } | Self::Api { code: 803, .. })
    }

    /// The same error with every occurrence of `secret` replaced, so a message
    /// that echoes a URL or the token can never leak it.
    pub(crate) fn redacted(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let clean = |s: String| if s.contains(secret) { s.replace(secret, "[redacted]") } else { s };
        match self {
            Self::Api { code, subcode, message, is_transient, http_status, fbtrace_id } => {
                Self::Api { code, subcode, message: clean(message), is_transient, http_status, fbtrace_id }
            }
            Self::Throttled { account, retry_after, code, subcode, message } => {
                Self::Throttled { account, retry_after, code, subcode, message: clean(message) }
            }
            Self::Transport(m) => Self::Transport(clean(m)),
            Self::Decode(m) => Self::Decode(clean(m)),
            Self::Invalid(m) => Self::Invalid(clean(m)),
            other => other,
        }
    }
}

/// Meta's throttling codes: app (4), user (17), page (32), application limit
/// (341), temporary block (368), ad account (613), business use cases (80000-80014).
fn is_throttle_code(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 341 | 368 | 613 | 80_000..=80_014)
}

/// Reads an integer sent as a JSON number or a numeric string.
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn write_code(f: &mut fmt::Formatter<'_>, code: i64, subcode: Option<i64>) -> fmt::Result {
    match subcode {
        Some(sub) => write!(f, "Meta error {code}/{sub}"),
        None => write!(f, "Meta error {code}"),
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api { code, subcode, message, .. } => {
                write_code(f, *code, *subcode)?;
                write!(f, ": {message}")
            }
            Self::Throttled { account, retry_after, code, subcode, message } => {
                match code {
                    Some(code) => write_code(f, *code, *subcode)?,
                    None => f.write_str("Meta usage limit near")?,
                }
                write!(f, ": {message} (account {account} paused for {}s)", retry_after.as_secs())
            }
            Self::Http { status } => write!(f, "Meta answered HTTP {status} without an error body"),
            Self::Timeout => f.write_str("Meta request timed out"),
            Self::Transport(m) => write!(f, "could not reach Meta: {m}"),
            Self::Decode(m) => write!(f, "unexpected Meta response: {m}"),
            Self::Invalid(m) => write!(f, "invalid request to Meta: {m}"),
        }
    }
}

impl std::error::Error for PlatformError {}

impl From<PlatformError> for crate::error::Error {
    fn from(err: PlatformError) -> Self {
        if err.is_not_found() {
            let id = match &err {
                // Meta names the object in its message: "Object with ID '123' does not exist".
                PlatformError::Api { message, .. } => quoted_id(message).unwrap_or_default(),
                _ => String::new(),
            };
            crate::error::Error::NotFound { kind: "ad platform object", id }
        } else {
            crate::error::Error::Platform(err.failure())
        }
    }
}

impl PlatformError {
    /// The failure as the service reports it to callers: its class (what to
    /// do about it), Meta's code and subcode, a token-free message.
    pub fn failure(&self) -> crate::error::PlatformFailure {
        use crate::error::PlatformErrorClass as Class;
        let class = if self.is_throttle() {
            Class::Throttled
        } else if self.is_transient() || matches!(self, Self::Decode(_)) {
            // An answer that is not what the API promises is usually a proxy
            // or a partial outage: worth another try later.
            Class::Transient
        } else {
            match self.code() {
                // Invalid or expired token, session key invalid.
                Some(190 | 102) => Class::Auth,
                // Permission errors: 10, 200-299.
                Some(10 | 200..=299) => Class::Permission,
                _ => Class::Permanent,
            }
        };
        let retry_after = match self {
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        crate::error::PlatformFailure {
            class,
            code: self.code(),
            subcode: self.subcode(),
            message: self.to_string(),
            retry_after,
        }
    }
}

fn quoted_id(message: &str) -> Option<String> {
    let start = message.find("ID '")? + 4;
    let len = message[start..].find('\'')?;
    Some(message[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn api(body: Value) -> PlatformError {
        PlatformError::from_body(&body, 400).expect("an error body")
    }

    #[test]
    fn display_carries_metas_code_and_subcode() {
        let err =
            api(json!({"error": {"message": "User request limit reached", "code": 17, "error_subcode": 2446079}}));
        assert_eq!(err.to_string(), "Meta error 17/2446079: User request limit reached");
        let err = api(json!({"error": {"message": "Invalid parameter", "code": "100"}}));
        assert_eq!(err.to_string(), "Meta error 100: Invalid parameter");
    }

    #[test]
    fn classifies_by_code() {
        let by = |code: i64, sub: Option<i64>, transient: bool| {
            api(json!({"error": {"message": "m", "code": code, "error_subcode": sub, "is_transient": transient}}))
        };
        for code in [4, 17, 32, 341, 613, 80_000, 80_004, 80_014] {
            assert!(by(code, None, true).is_throttle(), "{code}");
            assert!(!by(code, None, true).is_transient(), "{code}");
        }
        assert!(by(1, None, false).is_transient());
        assert!(by(2, None, false).is_transient());
        assert!(by(2, Some(1_504_038), false).is_permanent());
        assert!(by(9_999, None, true).is_transient());
        for code in [100, 190, 200, 294, 1_885_621] {
            assert!(by(code, None, false).is_permanent(), "{code}");
        }
        assert!(by(100, Some(33), false).is_not_found());
        assert!(!by(100, Some(1_885_621), false).is_not_found());
        assert!(PlatformError::Http { status: 502 }.is_transient());
        assert!(PlatformError::Timeout.is_transient());
        assert!(PlatformError::Decode("x".into()).is_permanent());
    }

    #[test]
    fn not_found_maps_to_the_crate_not_found() {
        let err = api(
            json!({"error": {"message": "Unsupported get request. Object with ID '123' does not exist", "code": 100, "error_subcode": 33}}),
        );
        match crate::error::Error::from(err) {
            crate::error::Error::NotFound { id, .. } => assert_eq!(id, "123"),
            other => panic!("unexpected {other:?}"),
        }
        let err = api(json!({"error": {"message": "Invalid OAuth access token", "code": 190}}));
        assert!(matches!(
            crate::error::Error::from(err),
            crate::error::Error::Platform(f) if f.code == Some(190) && f.class == crate::error::PlatformErrorClass::Auth
        ));
    }

    #[test]
    fn redaction_removes_the_token_everywhere() {
        let err = PlatformError::Transport("GET https://x/?access_token=SECRET failed".into()).redacted("SECRET");
        assert!(!format!("{err} {err:?}").contains("SECRET"));
    }
}
