#!/usr/bin/env bash
# Shared installers for the test layers. Source it; every function is idempotent and
# installs into .cache/ of the checkout (or the machine's package manager for system
# packages), so a fresh machine needs nothing installed by hand.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="$REPO_ROOT/.cache"
mkdir -p "$CACHE"

_apt_updated=""
apt_update_once() {
  if [ -z "$_apt_updated" ]; then
    apt-get update -qq >/dev/null
    _apt_updated=1
  fi
}

# Installs Debian packages (the machine runs as root) unless every one is there already.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Unpacks a Debian package into $CACHE/deb/<name> without installing it (no services started).
deb_extract() {
  local pkg="$1" dest="$CACHE/deb/$1"
  if [ ! -d "$dest" ]; then
    apt_update_once
    local tmp
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null)
    mkdir -p "$dest.partial"
    dpkg -x "$tmp"/"$pkg"_*.deb "$dest.partial"
    mv "$dest.partial" "$dest"
    rm -rf "$tmp"
  fi
  echo "$dest"
}

# Path of the upstream reference binary (Debian prometheus-pushgateway, v1.5.1).
# Always start it with --persistence.file= (Debian's build defaults it to a shared file).
reference_pushgateway() {
  echo "$(deb_extract prometheus-pushgateway)/usr/bin/prometheus-pushgateway"
}

# Paths of a real Prometheus server and promtool (Debian prometheus).
prometheus_bin() { echo "$(deb_extract prometheus)/usr/bin/prometheus"; }
promtool_bin() { echo "$(deb_extract prometheus)/usr/bin/promtool"; }

# A Python virtualenv in $CACHE/venv with the given pip requirements; prints its python.
python_venv() {
  local venv="$CACHE/venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$@"
  echo "$venv/bin/python"
}

# Builds our release binary once per layer and prints its path. Under ci/test, which builds it
# once before any layer starts (CI_RELEASE_BUILT=1), only prints it: a no-op cargo build would
# still wait for the lock on target/ while another layer compiles the tests.
gateway_release() {
  if [ -z "${CI_RELEASE_BUILT:-}" ] || [ ! -x "$REPO_ROOT/target/release/pushgateway" ]; then
    (cd "$REPO_ROOT" && cargo build --release -q --bin pushgateway) || return 1
  fi
  echo "$REPO_ROOT/target/release/pushgateway"
}
