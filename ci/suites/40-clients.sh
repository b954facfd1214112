#!/usr/bin/env bash
# Layer 4: real clients and a real Prometheus against our gateway (ci/clients):
#   - Go client_golang's push package (Debian golang-go + golang-github-prometheus-client-golang-dev,
#     built offline in GOPATH mode from ci/clients/go/pusher.go), protobuf and text pushes;
#   - Node prom-client's Pushgateway (npm, installed into .cache/npm), ci/clients/node/push.js;
#   - a real Prometheus (Debian prometheus, unpacked into .cache) scraping us with and without
#     native histograms, queried through its HTTP API;
#   - Python's prometheus_client sending Pushgateway-TTL through push_to_gateway's handler
#     (ci/clients/test_python_ttl.py; the rest of that client is covered by ci/e2e/test_clients.py);
#   - the OpenTelemetry SDKs exporting over OTLP/HTTP (Python opentelemetry-sdk with the
#     protobuf exporter into .cache/venv, Node @opentelemetry/sdk-metrics with the JSON exporter
#     into .cache/npm), ci/clients/otlp/, then scraped by the real Prometheus;
#   - aggregating pushes (/aggregate) from all three real clients, Python's prometheus_client
#     included (ci/clients/test_aggregate.py).
# Installs everything it needs; every process listens on 127.0.0.1 only.
# Arguments are passed to pytest: ci/suites/40-clients.sh -k node
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh

apt_install golang-go golang-github-prometheus-client-golang-dev
command -v node >/dev/null 2>&1 || apt_install nodejs npm

# The OpenTelemetry Python SDK and its OTLP/HTTP protobuf exporter, pinned.
OTEL_PYTHON_VERSION=1.45.2
PY=$(python_venv pytest requests prometheus_client "opentelemetry-sdk==$OTEL_PYTHON_VERSION" \
  "opentelemetry-exporter-otlp-proto-http==$OTEL_PYTHON_VERSION")
GATEWAY_BIN=$(gateway_release)
REFERENCE_BIN=$(reference_pushgateway)
PROMETHEUS_BIN=$(prometheus_bin)

# The Go pusher: GOPATH mode, no module download; the imports come from Debian's gocode tree.
mkdir -p "$CACHE/clients"
GO_PUSHER="$CACHE/clients/pusher"
(
  cd ci/clients/go
  GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$CACHE/go-build" GOFLAGS= GOPROXY=off \
    go build -o "$GO_PUSHER" pusher.go
)

# prom-client into .cache/npm (never into the tree), pinned so that a new release cannot
# change what the tests see.
PROM_CLIENT_VERSION=15.1.3
NODE_BIN=$(command -v node)
NODE_PATH="$CACHE/npm/node_modules"
installed=$("$NODE_BIN" -p "require('$NODE_PATH/prom-client/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$PROM_CLIENT_VERSION" ]; then
  with_lock npm npm install --prefix "$CACHE/npm" --save-exact --no-audit --no-fund --loglevel=error "prom-client@$PROM_CLIENT_VERSION" >/dev/null
fi

# The OpenTelemetry JS SDK and its OTLP/HTTP JSON exporter, pinned likewise.
OTEL_JS_PACKAGES=(@opentelemetry/api@1.10.0 @opentelemetry/sdk-metrics@3.1.1
  @opentelemetry/resources@3.1.1 @opentelemetry/exporter-metrics-otlp-http@0.301.2)
installed=$("$NODE_BIN" -p "require('$NODE_PATH/@opentelemetry/exporter-metrics-otlp-http/package.json').version" 2>/dev/null || true)
if [ "$installed" != "0.301.2" ]; then
  with_lock npm npm install --prefix "$CACHE/npm" --save-exact --no-audit --no-fund --loglevel=error "${OTEL_JS_PACKAGES[@]}" >/dev/null
fi

export GATEWAY_BIN REFERENCE_BIN PROMETHEUS_BIN GO_PUSHER NODE_BIN NODE_PATH

status=0
"$PY" -m pytest ci/clients -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "40-clients: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
