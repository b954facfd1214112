#!/usr/bin/env bash
# Layer 60: the Helm chart, its values profiles and the Dockerfile, checked without a cluster:
# helm lint --strict and helm template for every values file, renders validated against the
# Kubernetes schema (strict) and the CRD schemas (Prometheus Operator, Gateway API), assertions on the profiles,
# schema rejections, hadolint and static Dockerfile checks. The alerts and the dashboard:
# promtool check/test rules, the PrometheusRule against its CRD schema, every dashboard query
# parsed, and every metric they use found in a live scrape of our gateway (in memory mode and in
# redis mode). The redis profiles (values-small-prod.yaml, values/external-redis.yaml): their
# rendered flags and environment start two replicas of our gateway against a real redis-server
# on loopback (Debian package, no persistence, password on), which serve as one gateway;
# small-prod's gateways run on its bundled Redis with Sentinels, started from the render (the
# start script in BusyBox's shell, as in the Alpine image; three redis-server and three
# redis-sentinel processes): the primary killed, a replica promoted, no acknowledged push lost,
# the former primary back as a replica. The start script passes shellcheck.
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh
source ci/chart/tools.sh

apt_install redis-server redis-tools busybox shellcheck
REDIS_SERVER=$(command -v redis-server)
BUSYBOX=$(command -v busybox)
HELM=$(helm_bin)
CRD_NODE_MODULES=$(crd_models)
PY=$(python_venv -r ci/chart/requirements.txt)
PROMTOOL=$(promtool_bin)
# Built here first so that a failing build stops the layer (inside $(...) it would not).
gateway_release >/dev/null
GATEWAY_BIN=$(gateway_release)
export HELM CRD_NODE_MODULES PROMTOOL GATEWAY_BIN REDIS_SERVER BUSYBOX
export HADOLINT="$(dirname "$PY")/hadolint"
echo "helm $("$HELM" version --short), $("$HADOLINT" --version), $("$PROMTOOL" --version | head -1)"

"$PY" -m pytest -q -p no:cacheprovider ci/chart "$@"
