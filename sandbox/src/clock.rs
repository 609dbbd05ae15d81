//! The sandbox's clock: the system's, or a fixed instant tests set and advance,
//! so the same seed and the same clock always give the same market.
use chrono::{DateTime, Utc};

/// Where the sandbox reads "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxClock {
    /// Wall-clock time (the `serve` default).
    System,
    /// A fixed instant; moves only when a test sets or advances it.
    Fixed(DateTime<Utc>),
}

impl SandboxClock {
    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Fixed(at) => *at,
        }
    }
}
