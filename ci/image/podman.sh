#!/usr/bin/env bash
# podman for the image layer, configured from .cache/podman without touching /etc. Source it
# after ci/lib/tools.sh. What this machine needs, and why:
# - runc, not crun: crun fails on this machine's hybrid cgroup hierarchy;
# - no default ulimits: setting them needs CAP_SYS_RESOURCE, which the machine lacks;
# - its own storage under .cache/podman: the stand-in base images and the build's layer cache
#   survive between runs and are never shared with anything else on the machine;
# - unqualified names mean docker.io, as in the Dockerfile's `FROM rust:…` for docker build.
set -euo pipefail

apt_install podman runc uidmap
PODMAN_HOME="$CACHE/podman"
PODMAN_STORAGE="$PODMAN_HOME/storage"
mkdir -p "$PODMAN_HOME"
cat > "$PODMAN_HOME/containers.conf" <<CONF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
CONF
cat > "$PODMAN_HOME/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$PODMAN_STORAGE"
runroot = "$PODMAN_HOME/run"
CONF
cat > "$PODMAN_HOME/registries.conf" <<CONF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
CONF
export CONTAINERS_CONF="$PODMAN_HOME/containers.conf"
export CONTAINERS_STORAGE_CONF="$PODMAN_HOME/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$PODMAN_HOME/registries.conf"
# buildah keeps RUN --mount=type=cache directories under TMPDIR: keep them in the cache too.
export TMPDIR="$PODMAN_HOME/tmp"
mkdir -p "$TMPDIR"
