#!/usr/bin/env bash
# Layer 65: the image, built from the unchanged Dockerfile and run as the chart runs it.
# - Stand-ins for the base images (no registry is reachable): built with mmdebstrap, stored in
#   podman's storage under .cache/podman under exactly the FROM references, digests included
#   (ci/image/standins.sh);
# - `podman build --pull=never` of the Dockerfile as pushgateway:<chart appVersion>, the chart's
#   default image; podman's layer cache and the cargo registry cache mount live in .cache/podman;
# - the image run under the rendered pod spec's security context, with push, scrape, SIGTERM,
#   restart from the volume and --help (ci/image/test_image.py); its size is printed;
# - actionlint (with shellcheck) on every workflow, and the release's chart stamping run on a copy
#   of the chart and rendered.
# hadolint and the static Dockerfile checks run in 60-chart (ci/chart/test_dockerfile.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh
source ci/chart/tools.sh
source ci/image/podman.sh
source ci/image/standins.sh

apt_install curl util-linux mmdebstrap debian-archive-keyring shellcheck
PY=$(python_venv -r ci/chart/requirements.txt -r ci/image/requirements.txt)
HELM=$(helm_bin)
APP_VERSION=$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["appVersion"])' charts/pushgateway/Chart.yaml)
IMAGE="pushgateway:$APP_VERSION"
REVISION=$(git rev-parse HEAD)
SOURCE="https://example.invalid/pushgateway-image-layer"
export HELM IMAGE REVISION SOURCE
echo "$(podman --version), $(runc --version | head -1), $(mmdebstrap --version)"

start=$(date +%s)
standin_images Dockerfile
echo "stand-ins ready in $(( $(date +%s) - start ))s"

start=$(date +%s)
# --network=host: the build downloads crates, and only the host's network reaches the registry.
podman build --pull=never --network=host \
  --build-arg VERSION="$APP_VERSION" --build-arg REVISION="$REVISION" --build-arg SOURCE="$SOURCE" \
  --tag "$IMAGE" --file Dockerfile . 2>&1 | grep -vE '^(Copying blob|Copying config|Writing manifest|Storing signatures)' \
  || { echo "podman build failed" >&2; exit 1; }
echo "built $IMAGE in $(( $(date +%s) - start ))s, $(podman image inspect --format '{{.Size}}' "$IMAGE") bytes"
# Old builds of the image only take space: keep the layers the next build can reuse.
podman image prune --force >/dev/null

"$PY" -m pytest -q -p no:cacheprovider ci/image
