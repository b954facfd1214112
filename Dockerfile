# syntax=docker/dockerfile:1
# The pushgateway image: a release build of the `pushgateway` binary on a distroless runtime.
#   make image                      (docker or podman; tags pushgateway:<chart appVersion>)
#   docker run --rm -p 9091:9091 pushgateway:0.1.0
#   docker run --rm -p 9091:9091 -v pgdata:/data pushgateway:0.1.0 --persistence.file=/data/pushgateway.data
#
# Both bases are pinned by digest (the multi-arch index, so amd64 and arm64 builds both resolve):
# a tag alone moves. To refresh, look the digest up and update the reference in one commit:
#   docker buildx imagetools inspect rust:1.95.0-slim-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot

# ---- build ----------------------------------------------------------------------------------
FROM rust:1.95.0-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS builder
WORKDIR /src

# Dependencies first: with only the manifests and stub sources, this layer stays cached until
# Cargo.toml or Cargo.lock change. The crate registry is a cache mount, so a changed lock file
# downloads only what is new.
COPY Cargo.toml Cargo.lock ./
COPY gateway/Cargo.toml gateway/Cargo.toml
COPY ci/bench/Cargo.toml ci/bench/Cargo.toml
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    mkdir -p gateway/src ci/bench/src \
    && echo 'fn main() {}' > gateway/src/main.rs \
    && touch gateway/src/lib.rs \
    && echo 'fn main() {}' > ci/bench/src/main.rs \
    && cargo build --release --locked --bin pushgateway \
    && rm -rf gateway/src target/release/pushgateway target/release/deps/pushgateway-* \
        target/release/.fingerprint/gateway-* target/release/deps/libgateway-* target/release/deps/gateway-*

# Then the real sources.
COPY gateway/ gateway/
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --release --locked --bin pushgateway \
    && strip target/release/pushgateway \
    && mkdir -p /out/data \
    && cp target/release/pushgateway /out/pushgateway

# ---- runtime --------------------------------------------------------------------------------
# distroless/cc: glibc, libgcc and CA certificates, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime

# Stamped by `make image` and the release workflow; the defaults mark a build from elsewhere.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="pushgateway" \
      org.opencontainers.image.description="Prometheus Pushgateway in Rust" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/pushgateway /usr/local/bin/pushgateway
# Writable data directory for --persistence.file, owned by the runtime user.
COPY --from=builder --chown=65532:65532 /out/data /data

# distroless `nonroot` (65532:65532), the user the base image defines; numeric so that
# Kubernetes' runAsNonRoot can check it. The chart's podSecurityContext runs the same IDs.
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9091
ENTRYPOINT ["/usr/local/bin/pushgateway"]
CMD ["--web.listen-address=:9091"]
