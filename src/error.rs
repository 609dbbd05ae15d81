//! The crate's one error type, and its single mapping to gRPC status codes.
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Every failure a use case can report. Variants name situations, not
/// libraries; the gRPC mapping below is the only place that turns them into
/// status codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that can never be valid; names the offending field.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The thing asked for does not exist.
    #[error("{kind} {id} was not found")]
    NotFound { kind: &'static str, id: String },
    /// A second thing with the same identity.
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    /// The request is valid but the current state forbids it (e.g. deciding an
    /// action that is no longer pending).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The ad platform failed; the failure keeps Meta's error class and code
    /// (never the access token), so callers learn whether to retry.
    #[error("{0}")]
    Platform(PlatformFailure),
    /// The database failed.
    #[error("database failure")]
    Database(#[from] sea_orm::DbErr),
    /// Anything else that should never happen.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What kind of ad-platform failure happened: it decides what a caller
/// should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PlatformErrorClass {
    /// Meta rate-limits the account: retry after the given wait.
    Throttled,
    /// A passing failure (timeout, 5xx, Meta's transient errors): retry soon.
    Transient,
    /// The access token is invalid or expired (Meta 190, 102): an operator
    /// must replace it; retrying changes nothing.
    Auth,
    /// The token lacks a permission on the account or object (Meta 10,
    /// 200-299): an operator must grant it.
    Permission,
    /// Anything else Meta refuses (bad parameters, budget rules, odd data):
    /// retrying the same request fails the same way.
    Permanent,
}

impl PlatformErrorClass {
    /// Stable name, used as the `ErrorInfo` reason suffix and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "THROTTLED",
            Self::Transient => "TRANSIENT",
            Self::Auth => "AUTH",
            Self::Permission => "PERMISSION",
            Self::Permanent => "PERMANENT",
        }
    }
}

/// An ad-platform failure as the service reports it: its class, Meta's code
/// and subcode when Meta sent them, a token-free message and, for throttles,
/// how long to wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("ad platform failed ({}): {message}", class.as_str())]
pub struct PlatformFailure {
    /// What kind of failure.
    pub class: PlatformErrorClass,
    /// Meta's error code.
    pub code: Option<i64>,
    /// Meta's error subcode.
    pub subcode: Option<i64>,
    /// What happened, without the token.
    pub message: String,
    /// How long to wait before retrying, when known.
    pub retry_after: Option<std::time::Duration>,
}

impl PlatformFailure {
    /// A permanent failure described by `message` (no Meta code).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            class: PlatformErrorClass::Permanent,
            code: None,
            subcode: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A transient failure described by `message` (no Meta code).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            class: PlatformErrorClass::Transient,
            code: None,
            subcode: None,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// How long a caller is told to wait after a transient failure.
const TRANSIENT_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The status a caller should act on for a platform failure: retryable
/// failures are UNAVAILABLE with `RetryInfo`; a token or permission problem
/// and every other refusal are FAILED_PRECONDITION (the service's own state,
/// its Meta token or a rule, must change first). Meta's code and subcode
/// travel in `ErrorInfo` (reason `META_<class>`, domain `graph.facebook.com`).
fn platform_status(failure: &PlatformFailure) -> Status {
    let code = match failure.class {
        PlatformErrorClass::Throttled | PlatformErrorClass::Transient => Code::Unavailable,
        PlatformErrorClass::Auth | PlatformErrorClass::Permission | PlatformErrorClass::Permanent => {
            Code::FailedPrecondition
        }
    };
    let mut metadata = std::collections::HashMap::new();
    if let Some(c) = failure.code {
        metadata.insert("meta_code".to_owned(), c.to_string());
    }
    if let Some(s) = failure.subcode {
        metadata.insert("meta_subcode".to_owned(), s.to_string());
    }
    let mut details =
        ErrorDetails::with_error_info(format!("META_{}", failure.class.as_str()), "graph.facebook.com", metadata);
    if code == Code::Unavailable {
        details.set_retry_info(Some(failure.retry_after.unwrap_or(TRANSIENT_RETRY)));
    }
    Status::with_error_details(code, failure.to_string(), details)
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An `InvalidArgument` for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), reason: reason.into() }
    }
}

impl From<crate::domain::invalid::Invalid> for Error {
    fn from(e: crate::domain::invalid::Invalid) -> Self {
        Self::InvalidArgument { field: e.field, reason: e.reason }
    }
}

impl From<crate::domain::invalid::Invalid> for Status {
    fn from(e: crate::domain::invalid::Invalid) -> Self {
        Error::from(e).into()
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match &err {
            Error::InvalidArgument { field, reason } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field.clone(), reason.clone());
                Status::with_error_details(Code::InvalidArgument, err.to_string(), details)
            }
            Error::NotFound { .. } => Status::not_found(err.to_string()),
            Error::AlreadyExists { .. } => Status::already_exists(err.to_string()),
            Error::FailedPrecondition(_) => Status::failed_precondition(err.to_string()),
            Error::Platform(failure) => {
                tracing::warn!(error = %err, "ad platform call failed");
                platform_status(failure)
            }
            Error::Database(cause) => {
                tracing::error!(error = %cause, "database call failed");
                Status::internal("internal error")
            }
            Error::Internal(cause) => {
                tracing::error!(error = %cause, "internal failure");
                Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(class: PlatformErrorClass) -> Error {
        Error::Platform(PlatformFailure {
            class,
            code: Some(190),
            subcode: Some(463),
            message: "Error validating access token".into(),
            retry_after: None,
        })
    }

    #[test]
    fn platform_failures_map_to_the_code_a_caller_should_act_on() {
        for (class, code, retry) in [
            (PlatformErrorClass::Throttled, Code::Unavailable, true),
            (PlatformErrorClass::Transient, Code::Unavailable, true),
            (PlatformErrorClass::Auth, Code::FailedPrecondition, false),
            (PlatformErrorClass::Permission, Code::FailedPrecondition, false),
            (PlatformErrorClass::Permanent, Code::FailedPrecondition, false),
        ] {
            let status = Status::from(failure(class));
            assert_eq!(status.code(), code, "{class:?}");
            let details = status.get_error_details();
            let info = details.error_info().expect("error info");
            assert_eq!(info.reason, format!("META_{}", class.as_str()));
            assert_eq!(info.metadata.get("meta_code").map(String::as_str), Some("190"));
            assert_eq!(info.metadata.get("meta_subcode").map(String::as_str), Some("463"));
            assert_eq!(details.retry_info().is_some(), retry, "{class:?}");
        }
    }
}
