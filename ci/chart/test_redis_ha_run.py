"""small-prod's bundled Redis with Sentinels, started from what the chart renders (the
StatefulSet's containers, the ConfigMap's start script and settings, the Secret references;
local_sentinels.py changes only host names, ports and mount paths): three Redis pods and three
Sentinels on loopback, and a gateway started from its rendered args against the Sentinels.

Killing the primary: a Sentinel promotes a replica, pushes succeed again, and every
acknowledged push is still there; the former primary, restarted, comes back as a replica of
the new one (its start script asks the Sentinels first), never as a second primary.
"""

import os

import pytest

from conftest import CHART, render
from local_processes import wait_until
from local_sentinels import RedisHA
from test_profiles_run import Pod, groups

SMALL_PROD = CHART / "values-small-prod.yaml"
BODY = b"# TYPE ha_test_metric gauge\nha_test_metric 1\n"
# Sentinel's down-after (5 s as rendered) plus the election and promotion, on a loaded machine.
FAILOVER_SECONDS = 60


@pytest.fixture
def ha(tmp_path):
    with RedisHA(render(SMALL_PROD), tmp_path / "redis-pods") as setup:
        yield setup


@pytest.fixture
def gateways(ha, tmp_path):
    """Factory: a gateway started from small-prod's rendered args against the local Sentinels."""
    started = []

    def start(name):
        pod = Pod(ha.docs, ha, tmp_path / name)
        started.append(pod)
        pod.start().wait_ready()
        return pod.gateway

    yield start
    for pod in started:
        pod.stop()


def push(gateway, job):
    return gateway.request("PUT", f"/metrics/job/{job}", BODY)


def new_primary(ha, old):
    """Waits until the Sentinels agree on a promoted pod that says it is the primary."""
    def promoted():
        primary = ha.primary()
        named = ha.sentinels_name()
        return primary if primary not in (None, old) and named and all(p is primary for p in named) else None
    return wait_until(promoted, FAILOVER_SECONDS, "a Sentinel promotes a replica")


def test_the_gateway_finds_the_primary_through_the_sentinels_and_waits_for_a_replica(ha, gateways):
    gateway = gateways("gateway-0")
    args = " ".join(gateway.args)
    assert "--storage.redis.min-replicas-acks=1" in args and "--storage.redis.sentinel-master=pushgateway" in args
    status, text = push(gateway, "first")
    assert status == 200, text
    primary = ha.primary()
    assert primary is ha.pods[0], "pod 0 starts as the primary"
    # Acknowledged after a replica confirmed it (WAIT 1): it is on a replica already.
    head = ha.cli(primary, "GET", "{pushgateway}:seq")
    assert any(ha.cli(p, "GET", "{pushgateway}:seq") == head for p in ha.pods if p is not primary)
    # The primary refuses writes while no replica is in sync (min-replicas-to-write 1).
    assert ha.cli(primary, "CONFIG", "GET", "min-replicas-to-write").split() == ["min-replicas-to-write", "1"]
    assert ha.cli(primary, "CONFIG", "GET", "maxmemory-policy").split() == ["maxmemory-policy", "noeviction"]
    assert ha.cli(primary, "CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]


def test_killing_the_primary_loses_no_acknowledged_push_and_it_rejoins_as_a_replica(ha, gateways):
    gateway = gateways("gateway-0")
    acknowledged = []
    for i in range(5):
        status, text = push(gateway, f"before-{i}")
        assert status == 200, text
        acknowledged.append(f"before-{i}")
    old = ha.primary()
    old.redis.kill()
    primary = new_primary(ha, old)

    def pushed_again():
        status, _ = push(gateway, "after")
        return status == 200
    wait_until(pushed_again, FAILOVER_SECONDS, "pushes succeed again after the failover")
    acknowledged.append("after")
    wanted = {(("job", job),) for job in acknowledged}
    assert wanted <= set(groups(gateway)), "an acknowledged push is missing on the gateway"
    # A gateway started now loads everything from the new primary: it is in Redis, not only
    # in the first gateway's memory.
    fresh = gateways("gateway-1")
    assert wanted <= set(groups(fresh)), "an acknowledged push is missing in Redis after the failover"

    # The former primary's container restarts with its volume: its start script asks the
    # Sentinels and starts as a replica of the promoted pod, not as a second primary.
    old.redis.restart()
    wait_until(lambda: ha.role(old), 30, "the restarted node answers")
    assert ha.role(old) == "slave", ha.cli(old, "ROLE")
    assert ha.primary() is primary
    assert f"replicaof 127.0.0.1 {primary.redis.port}" in (old.dir / "run" / "redis.conf").read_text()
    assert "the primary is 127.0.0.1:%d" % primary.redis.port in old.redis.log()
    head = ha.cli(primary, "GET", "{pushgateway}:seq")
    wait_until(lambda: ha.cli(old, "GET", "{pushgateway}:seq") == head, 60, "the former primary catches up")
    status, text = push(gateway, "after-rejoin")
    assert status == 200, text


def test_a_whole_restarted_pod_rejoins_as_a_replica(ha, gateways):
    """The primary's pod goes away (both containers) and comes back after the failover: its
    Sentinel asks the other Sentinels and watches the promoted primary; its Redis follows it."""
    gateway = gateways("gateway-0")
    status, _ = push(gateway, "before")
    assert status == 200
    old = ha.primary()
    old.redis.kill()
    old.sentinel.kill()
    primary = new_primary(ha, old)
    old.sentinel.restart()
    old.redis.restart()
    # Both start scripts found the promoted primary (a Sentinel left alone would convert a
    # stray primary too, but only after it took writes for a while).
    wait_until(lambda: ha.role(old), 30, "the restarted node answers")
    assert ha.role(old) == "slave", ha.cli(old, "ROLE")
    for process in (old.redis, old.sentinel):
        assert f"the primary is 127.0.0.1:{primary.redis.port}" in process.log(), process.log()
    wait_until(lambda: all(p is primary for p in ha.sentinels_name()) and len(ha.sentinels_name()) == 3, 30,
               "every Sentinel, the restarted one too, names the promoted primary")
    assert ha.primary() is primary
    wait_until(lambda: push(gateway, "after")[0] == 200, FAILOVER_SECONDS, "pushes succeed")
    assert {(("job", "before"),), (("job", "after"),)} <= set(groups(gateway))


def test_a_password_with_quotes_and_newlines_is_taken_as_it_is(tmp_path):
    """Every byte of the password reaches the config escaped: replication (masterauth), the
    Sentinels (auth-pass, requirepass, sentinel-pass) work with it (RedisHA waits for both),
    and nothing in it becomes a directive."""
    docs = render(SMALL_PROD, ("redis.auth.existingSecret=redis-tricky",))
    with RedisHA(docs, tmp_path / "redis-pods") as ha:
        assert "\n" in ha.password and '"' in ha.password and ha.sentinel_password == ha.password
        check_passwords_stay_secret(ha)
        for pod in ha.pods:
            assert ha.cli(pod, "PING") == "PONG"
            # A directive smuggled in the password would have made "injected" a password.
            assert "NOAUTH" in ha._cli("injected", pod.redis.port, "GET", "x")
            assert "NOAUTH" in ha._cli("injected", pod.sentinel.port, "SENTINEL", "masters")
            assert ha.cli(pod, "CONFIG", "GET", "maxmemory-policy").split() == ["maxmemory-policy", "noeviction"]


def test_the_passwords_stay_off_command_lines_and_out_of_readable_files(ha):
    check_passwords_stay_secret(ha)


def check_passwords_stay_secret(ha):
    passwords = {ha.password, ha.sentinel_password}
    for process in ha.processes():
        with open(f"/proc/{process.proc.pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace")
        assert process.name in ("redis", "sentinel") and "redis-server" in cmdline, cmdline
        assert not any(p in cmdline for p in passwords), f"a password on the command line of {process.pod.name}/{process.name}"
    for pod in ha.pods:
        for conf in ("redis.conf", "sentinel.conf"):
            path = pod.dir / "run" / conf
            assert os.stat(path).st_mode & 0o077 == 0, f"{path} is readable by others"
    # Nothing answers without the password: Redis nor Sentinel.
    for pod in ha.pods:
        assert "NOAUTH" in ha._cli(None, pod.redis.port, "GET", "x")
        assert "NOAUTH" in ha._cli(None, pod.sentinel.port, "SENTINEL", "masters")
