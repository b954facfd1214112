"""Redis without a single point of failure (issue 18): gateways that find the primary
through Sentinels, follow a failover, and acknowledge a push only once a Redis replica has
it (WAIT), so that no acknowledged push is lost when the primary dies."""

import time

from conftest import converged, wait_until
from load import Load

# How long pushes may fail after the primary died (the bound).
RECOVERY_SECONDS = 20


def kill_primary_under_load(sentinels, group, load, after_promotion=lambda: None):
    old = sentinels.primary()
    time.sleep(1.5)
    old.kill()
    killed_at = time.monotonic()
    wait_until(lambda: sentinels.primary() not in (None, old), 30, "a Sentinel promotes a replica")
    after_promotion()
    wait_until(lambda: all(r.push("job/after", "after 1\n").status_code == 200 for r in group),
               RECOVERY_SECONDS, "pushes succeed again on every gateway")
    recovered = time.monotonic() - killed_at
    assert recovered < RECOVERY_SECONDS, recovered
    time.sleep(1.5)
    load.finish()
    assert load.acknowledged > 50, load.statuses
    converged(group, sentinels)
    for replica in group:
        load.check(replica.scrape())
        assert 'after{instance="",job="after"} 1' in replica.pushed()


def test_a_gateway_started_with_only_the_sentinels(sentinels, replicas):
    group = replicas(sentinels, 2)
    assert group[0].push("job/a", "a 1\n").status_code == 200
    text = converged(group, sentinels)
    assert 'a{instance="",job="a"} 1' in text
    # The push was acknowledged after a Redis replica confirmed it (WAIT 1).
    for node in sentinels.nodes[1:]:
        wait_until(lambda: node.head() >= 1, 10, "the Redis replicas have the entry")


def test_killing_the_primary_under_load_loses_no_acknowledged_push(sentinels, replicas):
    group = replicas(sentinels, 3)
    load = Load(group, workers=4, slots=5, seed=11).start()
    kill_primary_under_load(sentinels, group, load)


def test_a_replica_frozen_before_the_primary_dies(sentinels, replicas):
    group = replicas(sentinels, 3)
    frozen = sentinels.nodes[2]
    sentinels.freeze(frozen)
    try:
        load = Load(group, workers=4, slots=5, seed=12).start()
        # Only the replica that has every acknowledged push can be promoted; the pushes
        # wait for a second node (WAIT 1) until the frozen one is back.
        kill_primary_under_load(sentinels, group, load, after_promotion=lambda: sentinels.thaw(frozen))
    finally:
        sentinels.thaw(frozen)
    # The frozen node rejoins as a replica of the new primary and catches up.
    wait_until(lambda: frozen.cli("ROLE").startswith("slave") and frozen.head() == sentinels.head(), 60,
               "the frozen node follows the new primary")


def test_a_push_no_redis_replica_confirms_gets_503(sentinels, replicas):
    (gateway,) = replicas(sentinels, 1, extra_args=["--storage.redis.timeout=1s"])
    response = gateway.push("job/before", "b 1\n")
    assert response.status_code == 200, response.text
    for node in sentinels.nodes[1:]:
        sentinels.freeze(node)
    try:
        response = gateway.push("job/unconfirmed", "u 1\n")
        assert response.status_code == 503, response.text
        assert "min-replicas-acks" in response.text, response.text
    finally:
        for node in sentinels.nodes[1:]:
            sentinels.thaw(node)
    wait_until(lambda: gateway.push("job/after", "a 1\n").status_code == 200, 20, "pushes succeed again")
    assert "pushgateway_redis_unconfirmed_writes_total 1" in gateway.scrape()


def test_a_gateway_pointed_at_a_redis_replica_never_writes(sentinels, replicas):
    (gateway,) = replicas(sentinels.nodes[1], 1, wait=False)
    wait_until(lambda: "says it is a replica" in gateway.log_text(), 30, "the gateway refuses the replica")
    assert gateway.ready_status() == 503
    response = gateway.push("job/a", "a 1\n")
    assert response.status_code == 503, response.text
    assert sentinels.nodes[0].cli("EXISTS", "{pushgateway}:seq", "{pushgateway}:settings") == "0"
