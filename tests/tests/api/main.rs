//! Black-box tests of the HTTP API: each test starts the real application on port 0
//! with a database of its own (SQLite, or PostgreSQL when `TEST_DATABASE_URL` is set)
//! and talks to it over HTTP.

mod auth;
mod bad_input;
mod consumers;
mod database_outage;
mod events;
mod health;
mod idempotency;
mod metrics;
mod openapi;
mod rate_limits;
mod startup;
mod task_lists;
mod tasks;
mod tenant_isolation;
mod tokens;
mod traces;
mod users;
