//! The sandbox without its fault switches (the `faults` feature off, as in
//! the server's build): the same questions the server asks of `faults.rs`,
//! always answered "no fault", so the fault paths compile away.
use std::time::Duration;

use super::spec::{HandEdit, MetaErrorSpec};

/// No switches at all.
#[derive(Debug, Default)]
pub(super) struct Faults {}

impl Faults {
    pub(super) fn take_stall(&mut self) -> Option<Duration> {
        None
    }

    pub(super) fn take_failure(&mut self) -> bool {
        false
    }

    pub(super) fn take_null_op(&mut self, _is_write: bool) -> bool {
        false
    }

    pub(super) fn object_error(&self, _id: &str) -> Option<MetaErrorSpec> {
        None
    }

    pub(super) fn read_error(&mut self, _id: &str) -> Option<MetaErrorSpec> {
        None
    }

    pub(super) fn throttle_hit(&mut self, _account: &str) -> Option<MetaErrorSpec> {
        None
    }

    pub(super) fn loses_writes_to(&self, _id: &str) -> bool {
        false
    }

    pub(super) fn take_hand_edit(&mut self) -> Option<(String, HandEdit)> {
        None
    }

    pub(super) fn usage(&self, _account: &str) -> Option<(u32, Duration)> {
        None
    }

    pub(super) fn take_write_answer(&mut self) -> (bool, Option<Duration>) {
        (false, None)
    }
}
