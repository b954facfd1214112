#!/usr/bin/env bash
# Layer 61: make/ops/pushgateway.mk, and the chart's flags against the binary. The HTTP targets
# run against our gateway started on a loopback port (through PUSHGATEWAY_URL, and through a
# stub port-forward); the kubectl targets run against a stub kubectl (ci/ops/stub) that records
# its arguments. Every values file's rendered flags must start our gateway, and the web config
# the chart generates must work on the upstream reference. The bundled Redis' start script
# and probe run on a real redis-server.
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh
source ci/chart/tools.sh

command -v make >/dev/null 2>&1 || apt_install make
command -v curl >/dev/null 2>&1 || apt_install curl
apt_install redis-tools   # redis-server and redis-cli for the bundled Redis' start script
command -v openssl >/dev/null 2>&1 || apt_install openssl   # a test certificate for the TLS web config
PY=$(python_venv pytest PyYAML)
HELM=$(helm_bin)
# Built here first so that a failing build stops the layer (inside $(...) it would not).
gateway_release >/dev/null
GATEWAY_BIN=$(gateway_release)
REFERENCE_BIN=$(reference_pushgateway)
export HELM GATEWAY_BIN REFERENCE_BIN

"$PY" -m pytest -q -p no:cacheprovider -rs ci/ops "$@"
