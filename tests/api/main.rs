//! Integration tests: the real server on a real socket, called with the
//! generated clients, on SQLite and (with TEST_DATABASE_URL) on PostgreSQL.
#![allow(unreachable_pub)]
mod engine;
mod health;
mod helpers;
mod rules;
