//! The domain's one error: input that can never be valid, naming the field
//! at fault. It knows nothing of transport or storage; the service's error
//! type turns it into `INVALID_ARGUMENT` with the field in the details.

/// Input that can never be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct Invalid {
    /// The field at fault, as callers name it (`roas_pause`, `account_id`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Invalid {
    /// `field` is wrong because of `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// A result whose error is [`Invalid`].
pub type Result<T, E = Invalid> = std::result::Result<T, E>;
