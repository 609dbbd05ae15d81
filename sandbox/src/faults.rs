//! Fault switches of the sandbox: the failures Meta is known for (throttling,
//! 5xx, stalls, batch timeouts, permanent errors, writes that do not stick),
//! switched on by tests. Built only with the `faults` feature (tests and
//! benches turn it on); `no_faults.rs` stands in for it otherwise.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::Sandbox;
use super::spec::{HandEdit, MetaErrorSpec};

/// The fault switches (tests and benches only).
impl Sandbox {
    /// The next `n` HTTP requests answer HTTP 500, code 2, `is_transient: true`.
    pub fn fail_next_requests(&self, n: u32) {
        self.with(|st| st.faults.fail_next = n);
    }

    /// The next `n` HTTP requests wait `delay` before being answered.
    pub fn stall_next_requests(&self, n: u32, delay: Duration) {
        self.with(|st| {
            st.faults.stall_next = n;
            st.faults.stall_for = delay;
        });
    }

    /// The next `n` batch operations come back `null`, unexecuted, as after a
    /// batch timeout.
    pub fn time_out_next_batch_ops(&self, n: u32) {
        self.with(|st| st.faults.null_batch_ops = n);
    }

    /// Meta throttles `account`: every call fails with the fault's code and the
    /// usage headers show 100% with its regain time.
    pub fn throttle_account(&self, account: &str, fault: ThrottleFault) {
        self.with(|st| st.faults.throttled.insert(account.to_owned(), fault));
    }

    /// Answers about `account` report `pct`% usage (and `regain`) without erroring.
    pub fn report_usage(&self, account: &str, pct: u32, regain: Duration) {
        self.with(|st| st.faults.usage.insert(account.to_owned(), UsageFault { pct, regain }));
    }

    /// Every call on object (or account) `id` fails with `error`.
    pub fn fail_object(&self, id: &str, error: MetaErrorSpec) {
        self.with(|st| st.faults.object_errors.insert(id.to_owned(), error));
    }

    /// Writes to `id` are acknowledged with success but not applied.
    pub fn lose_writes_to(&self, id: &str) {
        self.with(|st| st.faults.lost_writes.insert(id.to_owned()));
    }

    /// The next `n` write operations (POST) of batch requests are left `null`
    /// and not applied, as when Meta's batch times out before running them.
    pub fn time_out_next_write_ops(&self, n: u32) {
        self.with(|st| st.faults.null_write_ops = n);
    }

    /// The next `n` batch requests that carry writes are applied, then
    /// answered only after `delay`: the write lands while a client with a
    /// shorter timeout sees a timeout.
    pub fn answer_writes_late(&self, n: u32, delay: Duration) {
        self.with(|st| {
            st.faults.late_write_answers = n;
            st.faults.late_for = delay;
        });
    }

    /// The next `n` batch requests that carry writes are applied, then
    /// answered with a bare HTTP 502 (the answer was lost on the way back).
    pub fn lose_write_answers(&self, n: u32) {
        self.with(|st| st.faults.lost_write_answers = n);
    }

    /// Reads (GET) of object `id` fail with `error` once `let_through` reads
    /// have been answered; writes to it still work.
    pub fn fail_reads_of(&self, id: &str, error: MetaErrorSpec, let_through: u32) {
        self.with(|st| st.faults.read_errors.insert(id.to_owned(), (error, let_through)));
    }

    /// A person edits object `id` when the next insights request arrives
    /// (in the middle of a cycle, after the budgets were read).
    pub fn edit_by_hand_on_next_insights(&self, id: &str, edit: HandEdit) {
        self.with(|st| st.faults.hand_edit_on_insights = Some((id.to_owned(), edit)));
    }

    /// Switches every fault off.
    pub fn clear_faults(&self) {
        self.with(|st| st.faults = Faults::default());
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
    pub(super) hand_edit_on_insights: Option<(String, HandEdit)>,
}

/// What the server asks before and while it answers; `no_faults.rs` has the
/// same questions, always answered "no fault".
impl Faults {
    /// Whether this request stalls, and for how long (counts it).
    pub(super) fn take_stall(&mut self) -> Option<Duration> {
        (self.stall_next > 0).then(|| {
            self.stall_next -= 1;
            self.stall_for
        })
    }

    /// Whether this request fails with HTTP 500 (counts it).
    pub(super) fn take_failure(&mut self) -> bool {
        let fail = self.fail_next > 0;
        if fail {
            self.fail_next -= 1;
        }
        fail
    }

    /// Whether this batch operation is left `null`, unexecuted (counts it).
    pub(super) fn take_null_op(&mut self, is_write: bool) -> bool {
        if self.null_batch_ops > 0 {
            self.null_batch_ops -= 1;
            return true;
        }
        if is_write && self.null_write_ops > 0 {
            self.null_write_ops -= 1;
            return true;
        }
        false
    }

    /// The error every call on object (or account) `id` fails with.
    pub(super) fn object_error(&self, id: &str) -> Option<MetaErrorSpec> {
        self.object_errors.get(id).cloned()
    }

    /// The error a read of `id` fails with, once its reads let through are used up.
    pub(super) fn read_error(&mut self, id: &str) -> Option<MetaErrorSpec> {
        let (spec, let_through) = self.read_errors.get_mut(id)?;
        if *let_through == 0 {
            return Some(spec.clone());
        }
        *let_through -= 1;
        None
    }

    /// Whether writes to `id` are acknowledged but not applied.
    pub(super) fn loses_writes_to(&self, id: &str) -> bool {
        self.lost_writes.contains(id)
    }

    /// The edit a person makes now that an insights request arrived.
    pub(super) fn take_hand_edit(&mut self) -> Option<(String, HandEdit)> {
        self.hand_edit_on_insights.take()
    }

    /// The usage (percent, regain time) the headers about `account` announce
    /// instead of the real one.
    pub(super) fn usage(&self, account: &str) -> Option<(u32, Duration)> {
        if let Some(t) = self.throttled.get(account) {
            return Some((100, t.regain));
        }
        self.usage.get(account).map(|u| (u.pct, u.regain))
    }

    /// Whether the answer to a batch that wrote is lost (HTTP 502), and
    /// otherwise how late it comes (counts it).
    pub(super) fn take_write_answer(&mut self) -> (bool, Option<Duration>) {
        if self.lost_write_answers > 0 {
            self.lost_write_answers -= 1;
            (true, None)
        } else if self.late_write_answers > 0 {
            self.late_write_answers -= 1;
            (false, Some(self.late_for))
        } else {
            (false, None)
        }
    }

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
