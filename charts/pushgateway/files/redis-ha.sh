#!/bin/sh
# Starts one process of the bundled Redis with Sentinels (redis.sentinel.enabled):
#   redis-ha.sh redis     a Redis node: the primary, or a replica of the current primary
#   redis-ha.sh sentinel  the Sentinel beside it, monitoring the current primary
#
# The current primary is what the Sentinels say, asked before anything starts, so that a
# restarted former primary comes back as a replica of the node promoted meanwhile instead of
# as a second primary. Only when no Sentinel answers are the Redis nodes asked (ROLE); when
# none says it is the primary either (a fresh install, or every pod down at once), the first
# node of the list (pod 0) is.
#
# Files beside this script (the ConfigMap): ha.env (MASTER_NAME, QUORUM), nodes (one line per
# pod: name, host, Redis port, Sentinel port), redis.conf, sentinel.conf and
# sentinel-master.conf (the settings every node shares). The passwords come from the
# environment (Secret references: REDIS_PASSWORD, SENTINEL_PASSWORD) and go into the config
# file written to the memory volume /run/redis, readable by this user only; never onto a
# command line. POD_NAME names this pod's line in nodes.
set -eu
umask 077

mode=${1:?usage: redis-ha.sh redis|sentinel}
config=$(dirname "$0")
run=/run/redis
# shellcheck source=/dev/null
. "$config/ha.env"

log() { echo "redis-ha ($mode, $POD_NAME): $*" >&2; }

[ -n "${REDIS_PASSWORD:-}" ] || { log "REDIS_PASSWORD is empty: the Secret's key holds no password"; exit 1; }
[ -n "${SENTINEL_PASSWORD:-}" ] || { log "SENTINEL_PASSWORD is empty: the Secret's key holds no password"; exit 1; }

# A value as a double-quoted config string, every byte escaped (\xHH): no password can end
# the string or start another directive.
quoted() {
  printf '"%s"' "$(printf '%s' "$1" | od -A n -v -t x1 | tr -d ' \n' | sed 's/../\\x&/g')"
}

# One redis-cli command with a deadline (a node that is down must not stall the start); the
# password through the environment.
cli() {
  password=$1 host=$2 port=$3
  shift 3
  REDISCLI_AUTH=$password timeout 3 redis-cli --no-auth-warning -h "$host" -p "$port" "$@" </dev/null 2>/dev/null
}

own_host='' own_port='' own_sentinel_port=''
while read -r name host port sentinel_port; do
  if [ "$name" = "$POD_NAME" ]; then
    own_host=$host own_port=$port own_sentinel_port=$sentinel_port
  fi
done <"$config/nodes"
[ -n "$own_host" ] || { log "no line for $POD_NAME in $config/nodes"; exit 1; }

# "host port" of the primary the first Sentinel that knows one names: the other pods'
# Sentinels first, this pod's own last (it may have restarted with this container and not
# know the primary yet).
primary_from_sentinels() {
  for pass in others own; do
    while read -r name host port sentinel_port; do
      if [ "$pass" = others ] && [ "$name" = "$POD_NAME" ]; then continue; fi
      if [ "$pass" = own ] && [ "$name" != "$POD_NAME" ]; then continue; fi
      # shellcheck disable=SC2046 # the reply is two words: host and port
      set -- $(cli "$SENTINEL_PASSWORD" "$host" "$sentinel_port" SENTINEL get-master-addr-by-name "$MASTER_NAME" || true)
      if [ $# -eq 2 ] && [ -n "$1" ] && [ "$2" -gt 0 ] 2>/dev/null; then
        echo "$1 $2"
        return 0
      fi
    done <"$config/nodes"
  done
  return 1
}

# "host port" of another Redis node that says it is the primary.
primary_from_nodes() {
  while read -r name host port sentinel_port; do
    [ "$name" != "$POD_NAME" ] || continue
    if [ "$(cli "$REDIS_PASSWORD" "$host" "$port" ROLE | head -n 1)" = master ]; then
      echo "$host $port"
      return 0
    fi
  done <"$config/nodes"
  return 1
}

primary=$(primary_from_sentinels || primary_from_nodes || head -n 1 "$config/nodes" | cut -d ' ' -f 2,3)
primary_host=${primary% *} primary_port=${primary#* }
log "the primary is $primary_host:$primary_port"

case "$mode" in
redis)
  conf=$run/redis.conf
  {
    cat "$config/redis.conf"
    echo "port $own_port"
    echo "replica-announce-ip $own_host"
    echo "replica-announce-port $own_port"
    echo "requirepass $(quoted "$REDIS_PASSWORD")"
    echo "masterauth $(quoted "$REDIS_PASSWORD")"
    if [ "$primary_host $primary_port" != "$own_host $own_port" ]; then
      echo "replicaof $primary_host $primary_port"
    fi
  } >"$conf.new"
  mv "$conf.new" "$conf"
  exec redis-server "$conf"
  ;;
sentinel)
  # A Sentinel refuses to start while the primary's name does not resolve (its pod is still
  # being created on a fresh install): wait for it a little, then let the kubelet retry.
  tries=0
  while command -v getent >/dev/null 2>&1 && ! getent hosts "$primary_host" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -le 30 ] || { log "$primary_host does not resolve"; exit 1; }
    sleep 1
  done
  # Sentinel rewrites its file (what it learns about replicas and the other Sentinels); it is
  # written anew at every start from what the other Sentinels say.
  conf=$run/sentinel.conf
  {
    cat "$config/sentinel.conf"
    echo "port $own_sentinel_port"
    echo "sentinel announce-ip $own_host"
    echo "sentinel announce-port $own_sentinel_port"
    echo "requirepass $(quoted "$SENTINEL_PASSWORD")"
    echo "sentinel sentinel-pass $(quoted "$SENTINEL_PASSWORD")"
    echo "sentinel monitor $MASTER_NAME $primary_host $primary_port $QUORUM"
    echo "sentinel auth-pass $MASTER_NAME $(quoted "$REDIS_PASSWORD")"
    cat "$config/sentinel-master.conf"
  } >"$conf.new"
  mv "$conf.new" "$conf"
  exec redis-server "$conf" --sentinel
  ;;
*)
  log "unknown mode (expected redis or sentinel)"
  exit 64
  ;;
esac
