//! Black-box tests of the HTTP API: each test starts the real application on port 0
//! with a database of its own and talks to it over HTTP. The suite runs on the embedded
//! default, or on PostgreSQL and Redis with `KEYSTONE_TEST_STACK=services` (see
//! `keystone_tests`); the few tests that need a service whatever the stack are ignored
//! with the reason and run by `just test-all`.

mod auth;
mod authority;
mod bad_input;
mod client_address;
mod consumers;
mod database_outage;
mod events;
mod headers;
mod health;
mod http;
mod idempotency;
mod openapi;
mod rate_limits;
mod startup;
mod task_lists;
mod tasks;
mod tenant_isolation;
mod tokens;
mod traces;
mod users;
