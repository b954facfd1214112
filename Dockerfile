# syntax=docker/dockerfile:1
# The pushgateway image: a release build of the `pushgateway` binary on a distroless runtime.
#   docker build -t pushgateway:$(version) .
#   docker run --rm -p 9091:9091 pushgateway:0.1.0
#   docker run --rm -p 9091:9091 -v pgdata:/data pushgateway:0.1.0 --persistence.file=/data/pushgateway.data

# ---- build ----------------------------------------------------------------------------------
FROM rust:1.95.0-slim-bookworm AS builder
WORKDIR /src

# Dependencies first: with only the manifests and stub sources, this layer stays cached until
# Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
COPY gateway/Cargo.toml gateway/Cargo.toml
COPY ci/bench/Cargo.toml ci/bench/Cargo.toml
RUN mkdir -p gateway/src ci/bench/src \
    && echo 'fn main() {}' > gateway/src/main.rs \
    && touch gateway/src/lib.rs \
    && echo 'fn main() {}' > ci/bench/src/main.rs \
    && cargo build --release --locked --bin pushgateway \
    && rm -rf gateway/src target/release/pushgateway target/release/deps/pushgateway-* \
        target/release/.fingerprint/gateway-* target/release/deps/libgateway-* target/release/deps/gateway-*

# Then the real sources.
COPY gateway/ gateway/
RUN cargo build --release --locked --bin pushgateway \
    && strip target/release/pushgateway \
    && mkdir -p /out/data \
    && cp target/release/pushgateway /out/pushgateway

# ---- runtime --------------------------------------------------------------------------------
# distroless/cc: glibc and libgcc only, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

LABEL org.opencontainers.image.title="pushgateway" \
      org.opencontainers.image.description="Prometheus Pushgateway in Rust" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/pushgateway /usr/local/bin/pushgateway
# Writable data directory for --persistence.file, owned by the runtime user.
COPY --from=builder --chown=65534:65534 /out/data /data

USER 65534:65534
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9091
ENTRYPOINT ["/usr/local/bin/pushgateway"]
CMD ["--web.listen-address=:9091"]
