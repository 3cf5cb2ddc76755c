# syntax=docker/dockerfile:1
# Keystone's production image. Build: `just docker-build`. Run: deploy/compose.yaml or
# deploy/k8s/ (docs/deploy.md). The image holds the `server` binary and config/ only.

# The toolchain of rust-toolchain.toml (deploy/check makes sure they agree), and cargo-chef.
FROM rust:1.95.0-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe describes the dependencies alone: it changes when a manifest or the lock
# file does, not when code does.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
# Dependencies build into their own layer, cached until the recipe changes.
RUN cargo chef cook --release --locked --bin server --recipe-path recipe.json
COPY . .
# Shown as keystone_build_info{git_sha} on /metrics: `docker build --build-arg
# KEYSTONE_GIT_SHA=$(git rev-parse HEAD) .` Declared after the cook, so it does not
# invalidate the dependency layer.
ARG KEYSTONE_GIT_SHA=unknown
ENV KEYSTONE_GIT_SHA=${KEYSTONE_GIT_SHA}
# The very command of .ci/run's "Release build" step, so CI proves this line compiles.
RUN cargo build --release --locked --bin server

# glibc, libgcc and CA certificates; no shell, no package manager, user 65532.
# Bookworm on both sides, so the binary runs against the glibc it was linked with.
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/release/server /app/server
COPY config /app/config
# Safe by default: production refuses the development secret and pending migrations.
ENV APP_ENVIRONMENT=production
# 8080: the API and the health checks. 9090: /metrics, when APP_METRICS__PORT=9090.
EXPOSE 8080 9090
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# No curl in the image: the binary asks its own /health/ready.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/app/server", "healthcheck"]
ENTRYPOINT ["/app/server"]
CMD ["serve"]
