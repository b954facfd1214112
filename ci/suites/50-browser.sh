#!/usr/bin/env bash
# Layer 5: the web UI in headless Chromium (ci/browser/, pytest + selenium), against our binary.
# Screenshots land in ci/artifacts/browser/. Set PGW_UI_TARGET=dev to run the same tests
# against the upstream reference behind ci/browser/devserver.py instead (UI development).
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh

apt_install chromium chromium-driver
PY=$(python_venv pytest selenium requests)
command -v chromium >/dev/null || { echo "chromium is not installed" >&2; exit 1; }
command -v chromedriver >/dev/null || { echo "chromedriver is not installed" >&2; exit 1; }

export PGW_UI_TARGET="${PGW_UI_TARGET:-ours}"
case "$PGW_UI_TARGET" in
  ours) export PUSHGATEWAY_BIN="${PUSHGATEWAY_BIN:-$(gateway_release)}" ;;
  dev) export REFERENCE_PUSHGATEWAY="${REFERENCE_PUSHGATEWAY:-$(reference_pushgateway)}" ;;
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
