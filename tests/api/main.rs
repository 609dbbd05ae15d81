//! Integration tests: the real server on a real socket, called with the
//! generated clients, on SQLite and (with TEST_DATABASE_URL) on PostgreSQL.
#![allow(unreachable_pub)]
mod alerts;
mod approvals;
mod dashboard;
mod edges;
mod engine;
mod faults;
mod graph_proxy;
mod health;
mod helpers;
mod history;
mod hostile_graph;
mod hostile_input;
mod metrics;
mod operations;
mod replay;
mod retention;
mod rules;
mod security;
mod strategy;
mod time_optimization;
mod watch;
