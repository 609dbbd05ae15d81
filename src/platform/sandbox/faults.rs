//! Fault switches of the sandbox: the failures Meta is known for (throttling,
//! 5xx, stalls, batch timeouts, permanent errors, writes that do not stick),
//! switched on by tests.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// An error the sandbox answers with, in Meta's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaErrorSpec {
    /// Meta's `code`.
    pub code: i64,
    /// Meta's `error_subcode`.
    pub subcode: Option<i64>,
    /// Meta's `message`.
    pub message: String,
    /// Meta's `is_transient`.
    pub is_transient: bool,
    /// HTTP status (Meta mostly uses 400).
    pub http_status: u16,
}

impl MetaErrorSpec {
    /// A non-transient error with HTTP 400.
    pub fn permanent(code: i64, subcode: Option<i64>, message: &str) -> Self {
        Self { code, subcode, message: message.to_owned(), is_transient: false, http_status: 400 }
    }
}

/// An account Meta is throttling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleFault {
    /// Meta's code: 80004 (ads management BUC), 17 (user), 613, 4 ...
    pub code: i64,
    /// Meta's subcode (2446079 for the BUC and user limits).
    pub subcode: Option<i64>,
    /// What the usage headers announce: `estimated_time_to_regain_access`
    /// (whole minutes, rounded down) and `reset_time_duration` (seconds).
    pub regain: Duration,
    /// Requests that fail before the throttle lifts; `None` until cleared.
    pub requests: Option<u32>,
}

impl ThrottleFault {
    /// Meta's ads-management business-use-case throttle (80004/2446079).
    pub fn business_use_case(regain: Duration) -> Self {
        Self { code: 80_004, subcode: Some(2_446_079), regain, requests: None }
    }

    /// The per-user request limit (17/2446079).
    pub fn user_limit(regain: Duration) -> Self {
        Self { code: 17, subcode: Some(2_446_079), regain, requests: None }
    }

    /// Lifts the throttle after `n` refused requests.
    pub fn for_requests(mut self, n: u32) -> Self {
        self.requests = Some(n);
        self
    }

    pub(super) fn error(&self) -> MetaErrorSpec {
        let message = match self.code {
            17 => "User request limit reached",
            80_000..=80_014 => "There have been too many calls to this ad-account. Wait a bit and try again.",
            613 => "Calls to this api have exceeded the rate limit.",
            _ => "Application request limit reached",
        };
        MetaErrorSpec {
            code: self.code,
            subcode: self.subcode,
            message: message.to_owned(),
            is_transient: true,
            http_status: 400,
        }
    }
}

/// High usage reported in the headers of an account's answers, without errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UsageFault {
    pub(super) pct: u32,
    pub(super) regain: Duration,
}

/// Every switch, as the server consults them.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// Requests still to answer with HTTP 500 (code 2, transient).
    pub(super) fail_next: u32,
    /// Requests still to stall, and for how long.
    pub(super) stall_next: u32,
    pub(super) stall_for: Duration,
    /// Batch operations still to leave `null`, as after a batch timeout.
    pub(super) null_batch_ops: u32,
    /// Write operations (POST) still to leave `null`, unapplied.
    pub(super) null_write_ops: u32,
    pub(super) throttled: HashMap<String, ThrottleFault>,
    pub(super) usage: HashMap<String, UsageFault>,
    pub(super) object_errors: HashMap<String, MetaErrorSpec>,
    /// Objects whose writes are acknowledged but not applied.
    pub(super) lost_writes: HashSet<String>,
    /// Batch requests with writes still to apply and then answer only after
    /// `late_for` (a client with a shorter timeout never sees the answer).
    pub(super) late_write_answers: u32,
    pub(super) late_for: Duration,
    /// Batch requests with writes still to apply and then answer with a bare
    /// HTTP 502, as a proxy that lost Meta's answer would.
    pub(super) lost_write_answers: u32,
    /// Objects whose reads (GET) fail with this error after the given
    /// number of reads have gone through; writes still work.
    pub(super) read_errors: HashMap<String, (MetaErrorSpec, u32)>,
    /// An edit a person makes when the next insights request arrives.
    pub(super) hand_edit_on_insights: Option<(String, super::spec::HandEdit)>,
}

impl Faults {
    /// The throttle error for the account, counting the refused request.
    pub(super) fn throttle_hit(&mut self, account: &str) -> Option<MetaErrorSpec> {
        let fault = self.throttled.get_mut(account)?;
        let error = fault.error();
        match &mut fault.requests {
            Some(0) => {
                self.throttled.remove(account);
                return None;
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Some(error)
    }
}
