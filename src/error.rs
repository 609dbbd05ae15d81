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
    /// The ad platform failed; the message carries Meta's error code and never
    /// the access token.
    #[error("ad platform unavailable: {0}")]
    Platform(String),
    /// The database failed.
    #[error("database failure")]
    Database(#[from] sea_orm::DbErr),
    /// Anything else that should never happen.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An `InvalidArgument` for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), reason: reason.into() }
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
            Error::Platform(_) => {
                tracing::warn!(error = %err, "ad platform call failed");
                Status::unavailable(err.to_string())
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
