"""The redis profiles start and act as one gateway: the gateway container of each rendered
profile (its args and env, as the kubelet would pass them) runs as two replicas of our binary
against a real redis-server on loopback that requires the password the chart's env gives, or,
when the gateway is given Sentinels (small-prod's bundled Redis with Sentinels), against the
rendered Redis pods and Sentinels started on loopback (local_sentinels.py).

Only what cannot run here is changed: the Redis host and port in --storage.redis.url or the
Sentinels' in --storage.redis.sentinels, the listen address, and the files under the container's volume mounts (each replica gets its own
directory, as each pod gets its own volume; a ConfigMap's files, such as the gateway's
configuration file, are written into it). Secrets the chart renders (the bundled Redis'
generated password) are read from the render; Secrets the profile expects to exist before
install get test values. Every other values file in redis mode (the chart's ci/ scenarios)
starts one replica the same way, apart from a TLS Redis (rediss://), which is not available here.
"""

import re
import types
import urllib.parse

import pytest
import yaml

from conftest import ALL_VALUES, CHART, EXAMPLES, PROFILES, REPO, find, gateway_container, render, workload
from local_processes import Gateway, Redis, wait_until
from local_sentinels import RedisHA
from pod_env import container_env, expand, volume_files

# The profiles that run on Redis; test_every_redis_profile_is_run keeps the list complete.
REDIS_PROFILES = {
    "small-prod": CHART / "values-small-prod.yaml",
    "values/external-redis.yaml": REPO / "values" / "external-redis.yaml",
}
# Every values file that renders --storage=redis.
REDIS_VALUES = [name for name, path in ALL_VALUES.items()
                if "--storage=redis" in gateway_container(workload(render(path)))["args"]]
# Flags whose values are URL paths, not files.
URL_PATH_FLAGS = {"--web.telemetry-path", "--web.route-prefix", "--web.external-url"}
PUSHED = b"# TYPE profile_test_metric gauge\nprofile_test_metric 42\n"
# A dead leader's lease lasts 10 s (LEASE_TTL in gateway/src/replicate/mod.rs); plus slack.
LEASE_TAKEOVER_SECONDS = 25


class Pod:
    """One replica: the rendered args with loopback and its own directory for every volume mount.
    `redis` is the local Redis (local_processes.Redis, for --storage.redis.url) or the local
    Redis pods with Sentinels (local_sentinels.RedisHA, for --storage.redis.sentinels)."""

    def __init__(self, docs, redis, directory):
        w = workload(docs)
        c = gateway_container(w)
        self.env = container_env(docs, c)
        self.dir = directory
        self.files = {}
        mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
        self.args = []
        for arg in (expand(a, self.env) for a in c["args"]):
            flag, _, value = arg.partition("=")
            if flag == "--web.listen-address":
                continue  # Gateway listens on a loopback port the kernel picks
            elif flag == "--storage.redis.url":
                url = urllib.parse.urlsplit(value)
                assert url.scheme == "redis" and not url.password, f"expected a plain redis:// URL without a password: {value}"
                arg = f"{flag}={url._replace(netloc=f'127.0.0.1:{redis.port}').geturl()}"
            elif flag == "--storage.redis.sentinels":
                arg = f"{flag}={redis.sentinel_addresses(value)}"
            elif value.startswith("/") and flag not in URL_PATH_FLAGS:
                mount = max((m for m in mounts if value.startswith(m + "/")), key=len, default=None)
                assert mount is not None, f"{arg}: the file is on no volume mount (read-only root filesystem)"
                assert flag != "--web.config.file", "a web config from a Secret volume is not materialized here"
                local = directory / mounts[mount] / value[len(mount) + 1:]
                local.parent.mkdir(parents=True, exist_ok=True)
                for name, content in (volume_files(docs, w, mounts[mount]) or {}).items():
                    (directory / mounts[mount] / name).write_bytes(content)
                self.files[flag] = local
                arg = f"{flag}={local}"
            self.args.append(arg)
        assert "$(" not in " ".join(self.args), f"unexpanded variable in {self.args}"
        self.gateway = None

    def start(self):
        self.gateway = Gateway(self.args, env=self.env)
        return self.gateway

    def stop(self):
        if self.gateway:
            self.gateway.stop()


def serves_pushed(gw):
    return "profile_test_metric" in gw.scrape()


def metric(text, name):
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def groups(gw):
    return {tuple(sorted(g["labels"].items())): g for g in gw.api_metrics()}


class Run:
    """A profile's two replicas and their redis-server."""

    def __init__(self, docs, redis, pods):
        self.docs, self.redis, self.pods = docs, redis, pods


# The runs: a profile as it is, or with values changed (--set) where waiting for a default
# interval would take too long.
RUNS = {
    "small-prod": (REDIS_PROFILES["small-prod"], ()),
    "values/external-redis.yaml": (REDIS_PROFILES["values/external-redis.yaml"], ()),
    "small-prod persistence.interval=1s": (REDIS_PROFILES["small-prod"], ("persistence.interval=1s",)),
}


def local_redis(docs, tmp_path):
    """What the rendered gateway needs: a redis-server with the password of its env (if any),
    or, when it is given Sentinels, Redis pods with Sentinels started from a render of the
    bundled ones (its own render, or for external Sentinels small-prod's with the gateway's
    master name and Secrets)."""
    c = gateway_container(workload(docs))
    env = container_env(docs, c)
    sentinels = next((a.split("=", 1)[1] for a in c["args"] if a.startswith("--storage.redis.sentinels=")), None)
    if sentinels is None:
        return Redis(tmp_path, password=env.get("PUSHGATEWAY_REDIS_PASSWORD"))
    if not any(d["kind"] == "ConfigMap" and "redis-ha.sh" in d.get("data", {}) for d in docs):
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
        redis_ref, sentinel_ref = refs["PUSHGATEWAY_REDIS_PASSWORD"], refs["PUSHGATEWAY_REDIS_SENTINEL_PASSWORD"]
        assert redis_ref["name"] == sentinel_ref["name"], "the bundled Sentinels read both from one Secret"
        master = next(a.split("=", 1)[1] for a in c["args"] if a.startswith("--storage.redis.sentinel-master="))
        docs = render(REDIS_PROFILES["small-prod"], (f"redis.auth.existingSecret={redis_ref['name']}",
                                                     f"redis.auth.secretKey={redis_ref['key']}",
                                                     f"redis.sentinel.auth.secretKey={sentinel_ref['key']}",
                                                     f"redis.sentinel.masterName={master}"))
    return RedisHA(docs, tmp_path / "redis-pods")


def start_replicas(docs, tmp_path, count):
    """The Redis the rendered gateway needs (local_redis) and `count` replicas started on it and
    ready; a generator that stops them all when closed."""
    pods = []
    with local_redis(docs, tmp_path) as redis:
        try:
            for i in range(count):
                pod = Pod(docs, redis, tmp_path / f"replica-{i}")
                pods.append(pod)
                pod.start()
            for pod in pods:
                pod.gateway.wait_ready()
            yield Run(docs, redis, pods)
        finally:
            for pod in pods:
                pod.stop()


@pytest.fixture
def run(request, tmp_path):
    """Two replicas of a profile's gateway on a password-protected Redis (local_redis), started
    and ready; stopped afterwards."""
    values, sets = RUNS[request.param]
    docs = render(values, sets)
    env = container_env(docs, gateway_container(workload(docs)))
    assert env.get("PUSHGATEWAY_REDIS_PASSWORD"), "the chart passes the Redis password as PUSHGATEWAY_REDIS_PASSWORD"
    yield from start_replicas(docs, tmp_path, 2)


@pytest.mark.parametrize("name", REDIS_VALUES)
def test_every_redis_values_file_starts_a_ready_replica(name, tmp_path):
    """The rendered flags and env of every values file in redis mode (profiles, scenarios,
    examples) start our gateway, which gets ready on a local redis-server."""
    docs = render(ALL_VALUES[name])
    if "--storage.redis.url=rediss://" in " ".join(gateway_container(workload(docs))["args"]):
        pytest.skip("a TLS Redis (rediss://) is not available here")
    runs = start_replicas(docs, tmp_path, 1)
    (pod,) = next(runs).pods
    try:
        assert pod.gateway.status("/-/ready") == 200
        assert "pushgateway_replication_leader" in pod.gateway.scrape()
    finally:
        runs.close()


@pytest.mark.parametrize("run", ["small-prod", "values/external-redis.yaml"], indirect=True)
def test_two_replicas_act_as_one_gateway(run):
    a, b = run.pods
    c = gateway_container(workload(run.docs))
    assert "--storage=redis" in c["args"] and "--storage.redis.expose=leader" in c["args"]
    # A group without an instance label, pushed through one replica ...
    status, text = a.gateway.request("PUT", "/metrics/job/profile-test", PUSHED)
    assert status == 200, (status, text)
    # ... is in the other replica's JSON API (and the pusher's own).
    key = (("job", "profile-test"),)
    wait_until(lambda: key in groups(b.gateway), 60, "the pushed group in the other replica's /api/v1/metrics")
    assert key in groups(a.gateway)
    value = groups(b.gateway)[key]["profile_test_metric"]["metrics"][0]["value"]
    assert float(value) == 42
    # With expose=leader exactly one replica, the lease holder, serves it on /metrics.
    gws = [a.gateway, b.gateway]
    wait_until(lambda: sorted(metric(g.scrape(), "pushgateway_replication_leader") for g in gws) == [0, 1], 60,
               "one leader among the two replicas")
    serving = [g for g in gws if serves_pushed(g)]
    assert len(serving) == 1, [g.base for g in serving]
    assert metric(serving[0].scrape(), "pushgateway_replication_leader") == 1
    other = next(g for g in gws if g is not serving[0])
    assert "push_time_seconds" not in other.scrape() and "pushgateway_replication_lag_entries" in other.scrape()


@pytest.mark.parametrize("run", ["small-prod"], indirect=True)
def test_small_prod_fails_over_to_the_other_replica(run):
    """The leader stops: the other replica takes the lease and serves the series, and takes
    pushes; the stopped replica, started again, is ready and catches up."""
    status, _ = run.pods[0].gateway.request("PUT", "/metrics/job/profile-test", PUSHED)
    assert status == 200
    leader = wait_until(lambda: next((p for p in run.pods if serves_pushed(p.gateway)), None), 60,
                        "a leader serving the group")
    follower = next(p for p in run.pods if p is not leader)
    leader.stop()
    wait_until(lambda: serves_pushed(follower.gateway), LEASE_TAKEOVER_SECONDS, "the other replica serving the group")
    status, _ = follower.gateway.request("PUT", "/metrics/job/while-away", PUSHED)
    assert status == 200
    leader.start().wait_ready()
    wait_until(lambda: (("job", "while-away"),) in groups(leader.gateway), 60, "the restarted replica catching up")
    assert (("job", "profile-test"),) in groups(leader.gateway)
    assert not serves_pushed(leader.gateway), "the lease stays with the replica that took it"


@pytest.mark.parametrize("run", ["small-prod persistence.interval=1s"], indirect=True)
def test_small_prod_local_copy_serves_a_restarted_replica_while_redis_is_down(run):
    """--persistence.file on the replica's volume is its local copy in redis mode: rewritten
    every persistence.interval, it lets a restarted replica serve its last state at once, even
    while Redis is down (not ready until it has caught up)."""
    pod = run.pods[0]
    status, _ = pod.gateway.request("PUT", "/metrics/job/profile-test", PUSHED)
    assert status == 200
    local_copy = pod.files["--persistence.file"]
    # Written once something was applied (the push is the only change), within an interval.
    wait_until(lambda: local_copy.is_file() and local_copy.stat().st_size > 0, 60, f"the local copy {local_copy}")
    pod.stop()
    run.redis.stop()
    pod.start()
    wait_until(lambda: pod.gateway.status("/-/healthy") == 200, 60, "the restarted replica answering")
    assert (("job", "profile-test"),) in groups(pod.gateway), "the local copy was not served"
    assert pod.gateway.status("/-/ready") == 503, "ready although Redis is down"


def test_every_redis_profile_is_run():
    """Every profile of the chart and of values/ that renders --storage=redis is in REDIS_PROFILES."""
    redis = {name for name, path in {**PROFILES, **EXAMPLES}.items()
             if "--storage=redis" in gateway_container(workload(render(path)))["args"]}
    assert redis == set(REDIS_PROFILES), redis ^ set(REDIS_PROFILES)
    assert set(REDIS_PROFILES) < set(REDIS_VALUES) and len(REDIS_VALUES) >= 6, REDIS_VALUES
    assert all(ALL_VALUES[name] == path for name, path in REDIS_PROFILES.items())


def test_expansion_and_remapping_are_not_vacuous(tmp_path):
    assert expand("--x=$(A)/$(B)/$$(A)", {"A": "1"}) == "--x=1/$(B)/$(A)"
    single = types.SimpleNamespace(port=6400)
    pod = Pod(render(REDIS_PROFILES["small-prod"], ("redis.sentinel.enabled=false",)), single, tmp_path)
    assert "--storage.redis.url=redis://127.0.0.1:6400/0" in pod.args
    assert pod.files["--persistence.file"] == tmp_path / "storage" / "pushgateway.data"
    assert not any(a.startswith("--persistence.file=/data/") for a in pod.args)


def config_text(docs):
    return next(d for d in docs if d["kind"] == "ConfigMap" and "pushgateway.toml" in d.get("data", {}))["data"]["pushgateway.toml"]


def with_quota(tmp_path, max_groups):
    """values/external-redis.yaml with a configFile holding one quota."""
    values = yaml.safe_load(REDIS_PROFILES["values/external-redis.yaml"].read_text())
    values["configFile"] = {"content": f'[[quota]]\nname = "team-a"\nlabels_regex = {{ job = "team-a-.*" }}\n'
                                       f'max_groups = {max_groups}\n'}
    path = tmp_path / f"quota-{max_groups}.yaml"
    path.write_text(yaml.safe_dump(values))
    return render(path)


def test_replicas_share_the_config_file_and_a_rollout_changes_it(tmp_path):
    """Redis mode with configFile: the quota is part of the settings every replica must share.
    Both replicas run the rendered file and give one verdict; a change rolls the pods (the
    digest annotation), and the chart's --storage.redis.adopt-settings makes each new replica
    store the new quota: the replica still on the old one turns unready (no pushes reach it)
    until it is replaced too."""
    old, new = with_quota(tmp_path, 1), with_quota(tmp_path, 2)
    digest = "pushgateway.io/config-file"
    assert workload(old)["spec"]["template"]["metadata"]["annotations"][digest] != \
        workload(new)["spec"]["template"]["metadata"]["annotations"][digest], "a changed file must roll the pods"
    assert "--storage.redis.adopt-settings" in gateway_container(workload(new))["args"]
    (tmp_path / "run").mkdir()
    runs = start_replicas(old, tmp_path / "run", 2)
    a, b = next(runs).pods
    try:
        assert a.gateway.request("PUT", "/metrics/job/team-a-1", PUSHED)[0] == 200
        status, text = b.gateway.request("PUT", "/metrics/job/team-a-2", PUSHED)
        assert status == 429 and "team-a" in text, (status, text)
        # The rollout replaces a, then b, each with the new render's file.
        for replaced, other in ((a, b), (b, None)):
            replaced.stop()
            replaced.files["--config.file"].write_text(config_text(new))
            replaced.start().wait_ready()
            if other is not None:
                wait_until(lambda: other.gateway.status("/-/ready") == 503, 60, "the replica on the old quota unready")
                status, text = other.gateway.request("PUT", "/metrics/job/team-a-2", PUSHED)
                assert status == 503, (status, text)
        assert a.gateway.request("PUT", "/metrics/job/team-a-2", PUSHED)[0] == 200
        assert b.gateway.request("PUT", "/metrics/job/team-a-3", PUSHED)[0] == 429
        wait_until(lambda: (("job", "team-a-2"),) in groups(b.gateway), 60, "the push in the other replica")
    finally:
        runs.close()
