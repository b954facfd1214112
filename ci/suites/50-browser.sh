#!/usr/bin/env bash
# Layer 5: the web UI in headless Chromium (ci/browser/, pytest + selenium), against our binary.
# Screenshots land in ci/artifacts/browser/. Set PGW_UI_TARGET=dev to run the same tests
# against the upstream reference behind ci/browser/devserver.py instead (UI development).
set -euo pipefail
# Without this, a failure inside $(...) (a failed cargo build in gateway_release, a failed
# pip install) would go unnoticed and the tests would run against a stale binary.
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh

apt_install chromium chromium-driver
PY=$(python_venv pytest selenium requests)
"$PY" -c "import pytest, selenium, requests"
command -v chromium >/dev/null || { echo "chromium is not installed" >&2; exit 1; }
command -v chromedriver >/dev/null || { echo "chromedriver is not installed" >&2; exit 1; }

export PGW_UI_TARGET="${PGW_UI_TARGET:-ours}"
case "$PGW_UI_TARGET" in
  ours)
    if [ -z "${PUSHGATEWAY_BIN:-}" ]; then
      gateway_release >/dev/null # builds, and stops this layer if the build fails
      PUSHGATEWAY_BIN=$(gateway_release)
    fi
    export PUSHGATEWAY_BIN ;;
  dev)
    if [ -z "${REFERENCE_PUSHGATEWAY:-}" ]; then REFERENCE_PUSHGATEWAY=$(reference_pushgateway); fi
    export REFERENCE_PUSHGATEWAY ;;
  *) echo "PGW_UI_TARGET must be ours or dev, not $PGW_UI_TARGET" >&2; exit 1 ;;
esac

rm -rf ci/artifacts/browser
mkdir -p ci/artifacts/browser
status=0
(cd ci/browser && "$PY" -m pytest -q -rs) || status=$?
if [ "$status" -eq 5 ]; then
  echo "50-browser: pytest collected no tests" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "50-browser: browser tests failed (screenshots in ci/artifacts/browser/)" >&2
  exit "$status"
fi
echo "50-browser: screenshots in ci/artifacts/browser/: $(ls ci/artifacts/browser | wc -l) files"
