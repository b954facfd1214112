#!/usr/bin/env bash
# Layer 3: black-box end-to-end tests (ci/e2e): our gateway against the upstream reference
# (differential table, random sequences, JSON API, protobuf scrapes, persistence, concurrency),
# promtool's lint of our /metrics, the real Python client, and --web.systemd-socket under
# Debian's systemd-socket-activate.
# Installs everything it needs. E2E_OURS_IS_REFERENCE=1 runs the reference in place of ours.
# Arguments are passed to pytest: ci/suites/30-e2e.sh -k put_basic
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh

PY=$(python_venv pytest requests prometheus_client cramjam python-snappy)
REFERENCE_BIN=$(reference_pushgateway)
PROMTOOL=$(promtool_bin)
command -v systemd-socket-activate >/dev/null 2>&1 || apt_install systemd
SYSTEMD_SOCKET_ACTIVATE=$(command -v systemd-socket-activate)
case "${E2E_OURS_IS_REFERENCE:-0}" in
  0 | "") GATEWAY_BIN=$(gateway_release) ;;
  *) GATEWAY_BIN="" ;; # the reference stands in for ours: nothing to build
esac
export REFERENCE_BIN PROMTOOL GATEWAY_BIN SYSTEMD_SOCKET_ACTIVATE

status=0
"$PY" -m pytest ci/e2e -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "30-e2e: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
