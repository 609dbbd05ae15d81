//! Integration tests: the real server on a real socket, called with the
//! generated clients, on SQLite and (with TEST_DATABASE_URL) on PostgreSQL.
#![allow(unreachable_pub)]
mod alerts;
mod approvals;
mod dashboard;
mod engine;
mod health;
mod helpers;
mod history;
mod operations;
mod replay;
mod rules;
mod time_optimization;
mod watch;
