#!/usr/bin/env bash
# Layer 4.7: replicated state on Redis (ci/replication), black-box against our release binary
# and a real redis-server (Debian package, appendfsync always) on loopback:
#   - 3 replicas under concurrent random load with conflicting pushes: identical pushed
#     metrics everywhere, every acknowledged push present, one verdict for conflicting pushes;
#   - kill -9 of a replica mid-load, of Redis mid-load, of the leader while it writes snapshots;
#   - snapshots trimming the stream, new replicas starting from them, /-/ready after catch-up;
#     chunked snapshots (a few hundred thousand series in many chunks), the leader killed
#     mid-write, an older version's single-value snapshot still read;
#   - leader-only exposure, also as a real Prometheus (Debian's) sees it: each series once;
#   - the password from the environment, the replication metrics;
#   - Sentinel (redis-sentinel, Debian): gateways given only the Sentinels, the primary killed
#     under load (with and without a frozen Redis replica), WAIT refusing unconfirmed pushes;
#   - history epochs after FLUSHALL, settings fingerprints, keys moved under the hash tag;
#   - quotas: racing pushes through three replicas get one verdict and the same usage;
#   - a 3-node Redis Cluster (redis-cli --cluster create): gateways given a node without the
#     keys' slot follow MOVED, also when the slot moves to another node under load.
#   - aggregating pushes with Idempotency-Keys: the same sums and verdicts on every replica,
#     also one restarted mid-stream or started from a snapshot (test_aggregate.py).
# Arguments are passed to pytest: ci/suites/47-replication.sh -k snapshot
set -euo pipefail
cd "$(dirname "$0")/../.."
source ci/lib/tools.sh

apt_install redis-server redis-tools redis-sentinel
PY=$(python_venv pytest requests)
GATEWAY_BIN=$(gateway_release)
REDIS_SERVER=$(command -v redis-server)
REDIS_CLI=$(command -v redis-cli)
REDIS_SENTINEL=$(command -v redis-sentinel)
PROMETHEUS_BIN=$(prometheus_bin)
export GATEWAY_BIN REDIS_SERVER REDIS_CLI REDIS_SENTINEL PROMETHEUS_BIN

status=0
"$PY" -m pytest ci/replication -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "47-replication: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
