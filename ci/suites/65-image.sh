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
# The longest layer of a cold run: it heads the io queue so that it starts with the others.
# ci-queue: first
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh
source ci/chart/tools.sh
source ci/image/podman.sh
source ci/image/standins.sh

apt_install curl util-linux make shellcheck mmdebstrap debian-archive-keyring
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
# The developers' target. --pull=never: only the stand-ins; --network=host: the build downloads
# crates, and only the host's network reaches the registry.
make --no-print-directory image CONTAINER_TOOL=podman IMAGE="$IMAGE" SOURCE="$SOURCE" REVISION="$REVISION" \
  BUILD_OPTS="--pull=never --network=host" 2>&1 \
  | grep --line-buffered -vE '^(Copying blob|Copying config|Writing manifest|Storing signatures)' \
  || { echo "podman build failed" >&2; exit 1; }
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE in $(( $(date +%s) - start ))s: $(( size / 1000000 )).$(( size / 100000 % 10 )) MB ($size bytes)"
# The layer cache only grows: each change of the sources leaves a builder stage nothing uses
# (a dangling image). Those of the last days stay, as one of them is the current one.
podman image prune --force --filter until=72h >/dev/null

"$PY" -m pytest -q -p no:cacheprovider ci/image
