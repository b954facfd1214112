#!/usr/bin/env bash
# Local stand-ins for the Dockerfile's base images, which cannot be pulled here (no registry is
# reachable). Source after ci/image/podman.sh; `standin_images` reads the FROM lines and makes
# each reference resolve, exactly as written (name, tag and digest), to a local image:
# - rust:<version>-slim-bookworm: Debian 12 with what the official slim image installs (gcc,
#   libc6-dev, ca-certificates) and the Rust toolchain of that exact version, copied from the
#   machine's rustup, laid out and configured as in the official image (RUSTUP_HOME, CARGO_HOME);
# - gcr.io/distroless/cc-debian12:nonroot: the files of the packages distroless cc holds, cut
#   from a Debian 12 install by distroless_rootfs.py, run as nonroot (65532), no shell.
# Each is built once per input (this script, the cutter, the toolchain) and kept in podman's
# storage under .cache/podman; the digest is recorded on it by pin_digest.py.
set -euo pipefail

STANDIN_INPUTS=("$REPO_ROOT/ci/image/standins.sh" "$REPO_ROOT/ci/image/distroless_rootfs.py")

# Hash of everything a stand-in is built from, plus extra words ($@).
_standin_key() {
  { cat "${STANDIN_INPUTS[@]}"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}

# Imports rootfs tar $1 as image $2 with config changes $3..., unless $2 exists; prints its ID.
_standin_import() {
  local tar="$1" image="$2"
  shift 2
  local changes=() c
  for c in "$@"; do changes+=(--change "$c"); done
  if ! podman image exists "$image"; then
    podman import --quiet "${changes[@]}" "$tar" "$image" >/dev/null
  fi
  podman image inspect --format '{{.Id}}' "$image"
}

# Removes the stand-ins of repository $1 other than $2 (built from inputs that changed since).
_standin_forget_others() {
  local repo="$1" keep="$2" old
  for old in $(podman images --format '{{.Repository}}:{{.Tag}}' "$repo"); do
    [ "$old" = "$keep" ] || podman rmi --force "$old" >/dev/null
  done
}

# Tags image ID $1 as FROM reference $2 (name:tag@sha256:…) and records the digest on it.
_standin_pin() {
  local id="$1" ref="$2"
  local name_tag="${ref%@*}" digest="${ref#*@}"
  # Qualified as docker resolves it (podman tag would put a short name under localhost/).
  if [[ "$name_tag" != */* ]]; then
    name_tag="docker.io/library/$name_tag"
  elif [[ "${name_tag%%/*}" != *[.:]* && "${name_tag%%/*}" != localhost ]]; then
    name_tag="docker.io/$name_tag"
  fi
  podman tag "$id" "$name_tag"
  python3 "$REPO_ROOT/ci/image/pin_digest.py" "$PODMAN_STORAGE" "$id" "$digest"
  local resolved
  resolved=$(podman image inspect --format '{{.Id}}' "$ref")
  [ "$resolved" = "$id" ] || { echo "stand-in: $ref resolves to $resolved, not $id" >&2; return 1; }
}

standin_rust() {
  local ref="$1" version
  version=$(sed -E 's/^(docker\.io\/library\/)?rust:([0-9.]+)-slim-bookworm@.*/\2/' <<<"$ref")
  local toolchain="$HOME/.rustup/toolchains/$version-x86_64-unknown-linux-gnu"
  [ -d "$toolchain" ] || rustup toolchain install "$version" --profile minimal >/dev/null
  toolchain=$(readlink -f "$toolchain")
  local rustc_version
  rustc_version=$("$toolchain/bin/rustc" --version)
  [[ "$rustc_version" == "rustc $version "* ]] || { echo "stand-in: $toolchain is $rustc_version, not $version" >&2; return 1; }
  # The machine's own CAs (a TLS-inspecting egress proxy signs with one): the build downloads
  # crates through it, as a docker build of the real image on this machine would have to.
  local cas=()
  shopt -s nullglob
  cas=(/usr/local/share/ca-certificates/*.crt)
  shopt -u nullglob
  local image="localhost/standin/rust:$(_standin_key "$ref" "$rustc_version" "$(cat /dev/null "${cas[@]}" | sha256sum)")"
  if ! podman image exists "$image"; then
    local tar="$CACHE/image/rust-rootfs.tar" dest="/usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu"
    local ca_hook="true"
    if [ ${#cas[@]} -gt 0 ]; then
      ca_hook="cp ${cas[*]} \"\$1/usr/local/share/ca-certificates/\" && chroot \"\$1\" update-ca-certificates >/dev/null"
    fi
    mkdir -p "$CACHE/image"
    # The official slim image's packages; the toolchain without its docs (share/).
    mmdebstrap --quiet --variant=essential --include=ca-certificates,gcc,libc6-dev \
      --customize-hook="mkdir -p \"\$1$dest\" \"\$1/usr/local/cargo/bin\" && cp -a '$toolchain/bin' '$toolchain/lib' '$toolchain/libexec' \"\$1$dest/\" && for b in cargo rustc rustdoc; do ln -s '$dest/bin/'\$b \"\$1/usr/local/cargo/bin/\$b\"; done" \
      --customize-hook="$ca_hook" \
      bookworm "$tar"
    _standin_import "$tar" "$image" \
      "ENV RUSTUP_HOME=/usr/local/rustup" "ENV CARGO_HOME=/usr/local/cargo" "ENV RUST_VERSION=$version" \
      "ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" >/dev/null
    rm -f "$tar"
  fi
  _standin_forget_others localhost/standin/rust "$image"
  _standin_pin "$(podman image inspect --format '{{.Id}}' "$image")" "$ref"
}

standin_distroless_cc() {
  local ref="$1"
  local image="localhost/standin/distroless-cc:$(_standin_key "$ref")"
  if ! podman image exists "$image"; then
    local full="$CACHE/image/debian-rootfs.tar" tar="$CACHE/image/distroless-cc-rootfs.tar"
    mkdir -p "$CACHE/image"
    mmdebstrap --quiet --variant=essential --include=ca-certificates,tzdata,netbase,libssl3,libstdc++6,libgomp1 \
      bookworm "$full"
    python3 "$REPO_ROOT/ci/image/distroless_rootfs.py" "$full" "$tar"
    _standin_import "$tar" "$image" "USER 65532" "WORKDIR /home/nonroot" \
      "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" >/dev/null
    rm -f "$full" "$tar"
  fi
  _standin_forget_others localhost/standin/distroless-cc "$image"
  _standin_pin "$(podman image inspect --format '{{.Id}}' "$image")" "$ref"
}

# Builds (or reuses) a stand-in for every FROM of the Dockerfile $1.
standin_images() {
  local dockerfile="$1" ref
  apt_install mmdebstrap
  for ref in $(awk 'toupper($1) == "FROM" { print $2 }' "$dockerfile"); do
    case "$ref" in
      rust:*-slim-bookworm@sha256:*) standin_rust "$ref" ;;
      gcr.io/distroless/cc-debian12:nonroot@sha256:*) standin_distroless_cc "$ref" ;;
      *) echo "stand-in: no stand-in for base image $ref (pin it by digest, or teach ci/image/standins.sh)" >&2; return 1 ;;
    esac
    echo "stand-in: $ref -> $(podman image inspect --format '{{.Id}}' "$ref" | cut -c1-12)"
  done
}
