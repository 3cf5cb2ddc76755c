# Keystone's daily commands. Install just with `cargo install just`.

pg_url := env_var_or_default("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
redis_url := env_var_or_default("TEST_REDIS_URL", "redis://127.0.0.1:6379")

# List the recipes.
default:
    @just --list

# Serve the API on 127.0.0.1:8080 with SQLite (docs at /docs).
run:
    cargo run

# Serve with Redis as cache, event bus and rate-limit store.
run-redis:
    APP_REDIS__URL={{redis_url}} cargo run

# Run the outbox relay and the event consumers alone.
worker:
    cargo run -- worker

# Rebuild the task statistics read model (all tenants).
projections-rebuild:
    cargo run -- projections rebuild

# Run the tests that need no service (SQLite, in-process adapters); the summary counts
# the ones left out, each ignored with the service it needs.
test:
    cargo test

# Run every test: those that need PostgreSQL and Redis too (which they then require),
# the API suite once more on PostgreSQL and Redis, and the xtask tests.
test-all:
    TEST_DATABASE_URL={{pg_url}} TEST_REDIS_URL={{redis_url}} cargo test -- --include-ignored
    TEST_DATABASE_URL={{pg_url}} TEST_REDIS_URL={{redis_url}} KEYSTONE_TEST_STACK=services cargo test -p keystone-tests --test api
    cargo test -p xtask

# Format check and clippy with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Check the dependency rules between layers (arch.toml).
arch:
    cargo xtask arch

# Apply pending migrations to APP_DATABASE__URL (default: the SQLite file).
migrate-up:
    cargo run -- migrate up

# Roll back the last migration.
migrate-down steps="1":
    cargo run -- migrate down --steps {{steps}}

# List applied and pending migrations.
migrate-status:
    cargo run -- migrate status

# Drop everything and migrate from scratch (refused in production without --force).
migrate-fresh:
    cargo run -- migrate fresh

# Regenerate docs/openapi.json from the code.
openapi:
    cargo run --quiet -- openapi > docs/openapi.json

# Prove the document says what the server does: `just contract` runs all three checks,
# `just contract lint|fuzz|client` one (contract/check).
contract *checks:
    contract/check {{checks}}

# Add an aggregate to every layer: `just scaffold invoice number:string paid:bool 'due_on:date?'`.
[positional-arguments]
scaffold name +fields:
    cargo xtask scaffold "$@"

# Rename the project: `just rename acme-billing` (add `--dry-run` to look first).
[positional-arguments]
rename +args:
    cargo xtask rename "$@"

# What CI runs.
ci:
    bash .ci/run

# Build the production image (Dockerfile) as keystone:dev, the tag compose runs.
docker-build tag="keystone:dev":
    docker build --build-arg KEYSTONE_GIT_SHA="$(git rev-parse HEAD)" -t {{tag}} .

# PostgreSQL, Redis, the migrations and the API in containers (deploy/compose.yaml).
compose-up:
    APP_AUTH__JWT_SECRET="${APP_AUTH__JWT_SECRET:-$(openssl rand -base64 48)}" docker compose -f deploy/compose.yaml up --build

# Lint the Dockerfile with hadolint (pinned in deploy/requirements.txt).
lint-docker:
    deploy/check dockerfile

# Validate deploy/compose.yaml against the Compose Specification's schema.
compose-validate:
    deploy/check compose

# Render the Kubernetes base and overlays, validate them, and run checkov on them.
k8s-validate:
    deploy/check k8s

# Every check of the container and deployment files, as CI runs them.
lint-deploy:
    deploy/check

# Each endpoint's req/s, p50 and p99 over pgbench -S and over its own SQL, and resident
# memory, in one run (release build, PostgreSQL). `just bench --json bench.json` too.
bench *args:
    bench/run {{args}}
