#!/usr/bin/env bash
# Local stand-ins for the Dockerfile's base images, which cannot be pulled here (no registry is
# reachable). Source after ci/image/podman.sh; `standin_images` reads the FROM lines and makes
# each reference resolve, exactly as written (name, tag and digest), to a local image:
# - rust:<version>-slim-bookworm: Debian 12 with what the official slim image installs (gcc,
#   libc6-dev, ca-certificates) and the Rust toolchain of that exact version, copied from the
#   machine's rustup, laid out and configured as in the official image (RUSTUP_HOME, CARGO_HOME);
# - gcr.io/distroless/cc-debian12:nonroot: the files of the packages distroless cc holds, cut
#   from a Debian 12 install by distroless_rootfs.py, run as nonroot (65532), no shell.
# Each is built once per recipe (the mmdebstrap command line with its hooks, the image config,
# the cutter, the toolchain's version and the machine's extra CAs) and kept in podman's storage
# under .cache/podman, tagged localhost/standin/<kind>:<hash of the recipe>; the digest is
# recorded on it by pin_digest.py.
set -euo pipefail

# Builds a stand-in unless it exists: $1 image base name, $2 a file the recipe depends on (or
# /dev/null), then mmdebstrap's arguments, `--`, and podman import's config changes. The root
# filesystem goes through $STANDIN_CUT (a command taking IN.tar OUT.tar) when set. Prints the
# image's name.
_standin_build() {
  local base="$1" depends="$2"
  shift 2
  local args=() changes=()
  while [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  changes=("$@")
  local key
  key=$({ printf '%s\n' "${args[@]}" -- "${changes[@]}" "${STANDIN_CUT:-}"; cat "$depends"; } | sha256sum | cut -c1-16)
  local image="localhost/standin/$base:$key"
  if ! podman image exists "$image"; then
    local tar="$CACHE/image/$base-rootfs.tar" c import=()
    mmdebstrap --quiet "${args[@]}" bookworm "$tar"
    if [ -n "${STANDIN_CUT:-}" ]; then
      $STANDIN_CUT "$tar" "$tar.cut"
      mv "$tar.cut" "$tar"
    fi
    for c in "${changes[@]}"; do import+=(--change "$c"); done
    podman import --quiet "${import[@]}" "$tar" "$image" >/dev/null
    rm -f "$tar"
  fi
  echo "$image"
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
  local dest="/usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu"
  # The machine's own CAs (a TLS-inspecting egress proxy signs with one): the build downloads
  # crates through it, as a docker build of the real image on this machine would have to.
  local cas=() ca_hook="true"
  shopt -s nullglob
  cas=(/usr/local/share/ca-certificates/*.crt)
  shopt -u nullglob
  if [ ${#cas[@]} -gt 0 ]; then
    ca_hook="cp ${cas[*]} \"\$1/usr/local/share/ca-certificates/\" && chroot \"\$1\" update-ca-certificates >/dev/null 2>&1"
  fi
  # The official slim image's packages, and the toolchain (without its docs, share/) where
  # rustup puts it there, with cargo and rustc on PATH.
  STANDIN_CUT="" _standin_build rust <(echo "$rustc_version"; cat /dev/null "${cas[@]}") \
    --variant=essential --include=ca-certificates,gcc,libc6-dev \
    --customize-hook="mkdir -p \"\$1$dest\" \"\$1/usr/local/cargo/bin\" && cp -a '$toolchain/bin' '$toolchain/lib' '$toolchain/libexec' \"\$1$dest/\" && for b in cargo rustc rustdoc; do ln -s '$dest/bin/'\$b \"\$1/usr/local/cargo/bin/\$b\"; done" \
    --customize-hook="$ca_hook" \
    -- "ENV RUSTUP_HOME=/usr/local/rustup" "ENV CARGO_HOME=/usr/local/cargo" "ENV RUST_VERSION=$version" \
    "ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

standin_distroless_cc() {
  local cut="$REPO_ROOT/ci/image/distroless_rootfs.py"
  STANDIN_CUT="python3 $cut" _standin_build distroless-cc "$cut" \
    --variant=essential --include=ca-certificates,tzdata,netbase,libssl3,libstdc++6,libgomp1 \
    -- "USER 65532" "WORKDIR /home/nonroot" \
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
}

# Builds (or reuses) a stand-in for every FROM of the Dockerfile $1. The builds run side by
# side; tagging and pinning run one after the other once all are done, as pin_digest.py must
# not edit the storage while another podman process may write it.
standin_images() {
  local dockerfile="$1" ref refs=() pids=() logs=() i
  apt_install mmdebstrap debian-archive-keyring
  mkdir -p "$CACHE/image"
  mapfile -t refs < <(awk 'toupper($1) == "FROM" { print $2 }' "$dockerfile")
  for i in "${!refs[@]}"; do
    ref="${refs[$i]}"
    logs[i]="$CACHE/image/standin-$i.out"
    case "$ref" in
      rust:*-slim-bookworm@sha256:*) standin_rust "$ref" > "${logs[$i]}" & ;;
      gcr.io/distroless/cc-debian12:nonroot@sha256:*) standin_distroless_cc "$ref" > "${logs[$i]}" & ;;
      *) echo "stand-in: no stand-in for base image $ref (pin it by digest, or teach ci/image/standins.sh)" >&2; return 1 ;;
    esac
    pids[i]=$!
  done
  for i in "${!refs[@]}"; do
    wait "${pids[$i]}" || { echo "stand-in: building one for ${refs[$i]} failed" >&2; return 1; }
  done
  for i in "${!refs[@]}"; do
    ref="${refs[$i]}"
    local image
    image=$(tail -1 "${logs[$i]}")
    _standin_forget_others "${image%:*}" "$image"
    _standin_pin "$(podman image inspect --format '{{.Id}}' "$image")" "$ref"
    echo "stand-in: $ref -> $(podman image inspect --format '{{.Id}}' "$ref" | cut -c1-12)"
  done
}
