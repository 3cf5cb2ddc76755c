# syntax=docker/dockerfile:1
# Build: docker build -t keystone .   Run: docker run -p 8080:8080 -e APP_AUTH__JWT_SECRET=... keystone

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin server

FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /app
COPY --from=build /src/target/release/server /app/server
COPY config /app/config
ENV APP_ENVIRONMENT=production \
    APP_SERVER__HOST=0.0.0.0 \
    APP_SERVER__PORT=8080
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/app/server"]
CMD ["serve"]
