#!/usr/bin/env bash
# Layer 60: the Helm chart, its values profiles and the Dockerfile, checked without a cluster:
# helm lint --strict and helm template for every values file, renders validated against the
# Kubernetes schema (strict) and the CRD schemas (Prometheus Operator, Gateway API), assertions on the profiles,
# schema rejections, hadolint and static Dockerfile checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh
source ci/chart/tools.sh

HELM=$(helm_bin)
CRD_NODE_MODULES=$(crd_models)
PY=$(python_venv -r ci/chart/requirements.txt)
export HELM CRD_NODE_MODULES
export HADOLINT="$(dirname "$PY")/hadolint"
echo "helm $("$HELM" version --short), $("$HADOLINT" --version)"

"$PY" -m pytest -q -p no:cacheprovider ci/chart
