# syntax=docker/dockerfile:1
# Multi-stage image of the autoscaler server: built with the Rust toolchain
# (no protoc needed: build.rs compiles the contract with protox), run as a
# non-root user on distroless (glibc, CA certificates, nothing else).
#   docker build -t autoscaler --build-arg AUTOSCALER_REVISION=$(git rev-parse --short HEAD) .
#   docker run --rm -p 50051:50051 -p 9464:9464 -v autoscaler-data:/var/lib/autoscaler \
#     -e AUTOSCALER_AUTH_TOKENS_FILE=/run/secrets/tokens autoscaler
# The image listens on 0.0.0.0, so the server refuses to start without API
# tokens (AUTOSCALER_AUTH_TOKENS[_FILE]) unless AUTOSCALER_INSECURE=true.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# Shown by autoscaler_build_info{revision=...}.
ARG AUTOSCALER_REVISION=unknown
ENV AUTOSCALER_REVISION=${AUTOSCALER_REVISION}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin autoscaler \
    && cp target/release/autoscaler /usr/local/bin/autoscaler \
    && mkdir -p /data

# cc-debian12 has the glibc and libgcc the binary links; nonroot is uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/autoscaler /usr/local/bin/autoscaler
COPY --from=build --chown=65532:65532 /data /var/lib/autoscaler
USER nonroot:nonroot
WORKDIR /var/lib/autoscaler
VOLUME ["/var/lib/autoscaler"]
# The default database, sqlite://autoscaler.db, is created in the volume.
ENV AUTOSCALER_LISTEN=0.0.0.0:50051 \
    AUTOSCALER_METRICS_LISTEN=0.0.0.0:9464
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/autoscaler"]
CMD ["serve"]
