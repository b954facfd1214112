#!/usr/bin/env bash
# Shared installers for the test layers. Source it; every function is idempotent and
# installs into .cache/ of the checkout (or the machine's package manager for system
# packages), so a fresh machine needs nothing installed by hand.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="$REPO_ROOT/.cache"
mkdir -p "$CACHE"

# Runs "$@" holding the exclusive lock $1 ($CACHE/locks/$1.lock, or an absolute path): layers
# run side by side (ci/test) and share .cache/, and the package manager is the machine's.
with_lock() {
  local lock="$1"
  shift
  case "$lock" in /*) ;; *) mkdir -p "$CACHE/locks"; lock="$CACHE/locks/$lock.lock" ;; esac
  (
    flock 9
    "$@"
  ) 9>"$lock"
}

# apt and dpkg take their own locks and fail at once when another process holds them; every
# checkout on the machine queues on one lock file, and apt waits for the others too.
APT_LOCK=/var/lock/ci-apt.lock
APT_WAIT=(-o DPkg::Lock::Timeout=600)

_apt_updated=""
apt_update_once() {
  if [ -z "$_apt_updated" ]; then
    with_lock "$APT_LOCK" apt-get "${APT_WAIT[@]}" update -qq >/dev/null
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
  with_lock "$APT_LOCK" env DEBIAN_FRONTEND=noninteractive \
    apt-get "${APT_WAIT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Unpacks a Debian package into $CACHE/deb/<name> without installing it (no services started).
deb_extract() {
  local pkg="$1" dest="$CACHE/deb/$1"
  if [ ! -d "$dest" ]; then
    with_lock "deb-$pkg" _deb_extract "$pkg" "$dest"
  fi
  echo "$dest"
}

_deb_extract() {
  local pkg="$1" dest="$2"
  [ ! -d "$dest" ] || return 0 # unpacked by another layer while this one waited
  apt_update_once
  local tmp
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null)
  rm -rf "$dest.partial"
  mkdir -p "$dest.partial"
  dpkg -x "$tmp"/"$pkg"_*.deb "$dest.partial"
  mv "$dest.partial" "$dest"
  rm -rf "$tmp"
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
  with_lock venv _python_venv "$venv" "$@"
  echo "$venv/bin/python"
}

_python_venv() {
  local venv="$1"
  shift
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$@"
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
