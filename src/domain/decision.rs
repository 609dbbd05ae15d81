//! The decision table and safety limits (written by the scaling-engine work).
