#!/usr/bin/env bash
# Layer 61: make/ops/pushgateway.mk. The HTTP targets run against our gateway started on a
# loopback port (through PUSHGATEWAY_URL, and through a stub port-forward); the kubectl targets
# run against a stub kubectl (ci/ops/stub) that records its arguments.
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh

command -v make >/dev/null 2>&1 || apt_install make
command -v curl >/dev/null 2>&1 || apt_install curl
PY=$(python_venv pytest)
GATEWAY_BIN=$(gateway_release)
export GATEWAY_BIN

"$PY" -m pytest -q -p no:cacheprovider ci/ops
