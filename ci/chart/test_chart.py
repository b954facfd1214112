"""The Helm chart: lint, schema, renders valid for Kubernetes and the Prometheus Operator,
and the properties each profile promises."""

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from conftest import (ALL_VALUES, CHART, NAMESPACE, PROFILES, RELEASE, REPO, find, gateway_container,
                      helm, one, render, selects, values_args, workload)
from pod_env import EXTERNAL_SECRETS

KUBE_VERSION = "1.35.0"
# Kinds the Kubernetes schema lacks; validate_crds.mjs checks them against their CRDs.
CRD_KINDS = {"ServiceMonitor", "HTTPRoute", "PrometheusRule"}
INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
HERE = Path(__file__).parent

# Fields of a ServiceMonitor endpoint the chart may set; the operator models accept unknown
# fields, so a typo would otherwise pass.
ENDPOINT_FIELDS = {"port", "path", "honorLabels", "scheme", "interval", "scrapeTimeout", "tlsConfig",
                   "basicAuth", "bearerTokenSecret", "metricRelabelings", "relabelings"}


def ids(d):
    return list(d.keys())


# ---- chart metadata ---------------------------------------------------------------------------

def test_app_version_matches_the_workspace_version():
    cargo = tomllib.loads((REPO / "Cargo.toml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert str(chart["appVersion"]) == cargo["workspace"]["package"]["version"]


def test_default_image_tag_is_the_app_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    c = gateway_container(workload(render()))
    assert c["image"] == f"pushgateway:{chart['appVersion']}"


# ---- lint and schema ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ids(ALL_VALUES))
def test_helm_lint_strict(name):
    """helm lint --strict also validates the merged values against values.schema.json."""
    proc = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values_args(ALL_VALUES[name]),
                check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_values_are_rejected(path):
    """Each file in ci/chart/invalid/ names in an `# expect:` line the error helm must give."""
    expect = re.search(r"^# expect: (.+)$", path.read_text(), re.M).group(1).strip()
    proc = helm("template", RELEASE, str(CHART), "--values", str(path), check=False)
    assert proc.returncode != 0, f"{path.name} rendered although it is invalid"
    assert expect in proc.stderr, proc.stderr
    if "don't meet the specifications of the schema" in proc.stderr:
        # helm lint checks the schema too (it only logs the chart's own fail calls).
        lint = helm("lint", "--strict", str(CHART), "--values", str(path), check=False)
        assert lint.returncode != 0, f"helm lint accepted {path.name}"


def test_schema_closes_our_own_objects():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    for key in ("image", "gateway", "storage", "redis", "persistence", "webConfig", "service",
                "serviceAccount", "ingress", "serviceMonitor", "podDisruptionBudget", "networkPolicy",
                "livenessProbe", "readinessProbe", "resources"):
        node = schema["properties"][key]
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].split("/")[-1]]
        assert node.get("additionalProperties") is False, key
    # Every top-level key of values.yaml is described by the schema, and the other way round.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])


# ---- Kubernetes and operator schemas ------------------------------------------------------------

@pytest.mark.parametrize("name", ids(ALL_VALUES))
def test_render_is_valid_kubernetes(name):
    docs = render(ALL_VALUES[name])
    assert docs, "nothing rendered"
    errors = []
    for d in docs:
        if d["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(d, KUBE_VERSION, strict=True)
        except Exception as err:  # noqa: BLE001 - every failure is reported
            errors.append(f"{d['kind']}/{d['metadata']['name']}: {str(err).splitlines()[0]}")
    assert not errors, "\n".join(errors)


def test_kubernetes_validation_is_strict():
    """The Kubernetes check is not vacuous: an unknown field and a wrong type are rejected."""
    w = json.loads(json.dumps(workload(render())))
    gateway_container(w)["livenesProbe"] = {}
    with pytest.raises(Exception, match="livenesProbe"):
        kubernetes_validate.validate(w, KUBE_VERSION, strict=True)
    w = json.loads(json.dumps(workload(render())))
    w["spec"]["replicas"] = "two"
    with pytest.raises(Exception, match="two"):
        kubernetes_validate.validate(w, KUBE_VERSION, strict=True)


def validate_crds(items):
    return subprocess.run(["node", str(HERE / "validate_crds.mjs")], input=json.dumps(items),
                          capture_output=True, text=True, env=os.environ)


def test_custom_resources_are_valid_for_their_crds():
    """Every ServiceMonitor and HTTPRoute of every values file, through the models' validate()."""
    items = []
    for name, values in ALL_VALUES.items():
        for d in render(values):
            if d["kind"] in CRD_KINDS:
                items.append({"source": name, "object": d})
            if d["kind"] == "ServiceMonitor":
                for ep in d["spec"]["endpoints"]:
                    assert set(ep) <= ENDPOINT_FIELDS, (name, set(ep) - ENDPOINT_FIELDS)
    kinds = [i["object"]["kind"] for i in items]
    assert kinds.count("ServiceMonitor") >= 5 and "HTTPRoute" in kinds, kinds
    proc = validate_crds(items)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_crd_validation_catches_bad_objects():
    """The CRD check is not vacuous: wrong types and a bad duration are reported."""
    sm = find(render(PROFILES["small-prod"]), "ServiceMonitor")[0]
    bad = json.loads(json.dumps(sm))
    bad["spec"]["endpoints"][0]["honorLabels"] = "yes"
    bad["spec"]["endpoints"][0]["interval"] = "30 seconds"
    route = find(render(CHART / "ci" / "httproute-values.yaml"), "HTTPRoute")[0]
    bad_route = json.loads(json.dumps(route))
    bad_route["spec"]["rules"][-1]["backendRefs"][0]["port"] = "http"
    proc = validate_crds([{"source": "bad", "object": bad}, {"source": "bad-route", "object": bad_route}])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "honorLabels" in proc.stdout and "interval" in proc.stdout, proc.stdout
    assert "bad-route" in proc.stdout and "port" in proc.stdout, proc.stdout


# ---- properties of every render -----------------------------------------------------------------

@pytest.mark.parametrize("name", ids(ALL_VALUES))
def test_selectors_are_consistent(name):
    docs = render(ALL_VALUES[name])
    w = workload(docs)
    pod_labels = w["spec"]["template"]["metadata"]["labels"]
    assert selects(w["spec"]["selector"], pod_labels)
    assert set(w["spec"]["selector"]["matchLabels"]) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    svc = one(docs, "Service", w["metadata"]["name"])
    assert selects({"matchLabels": svc["spec"]["selector"]}, pod_labels)
    for redis in find(docs, "StatefulSet", f"{w['metadata']['name']}-redis"):
        # The gateway's Service, PDB and NetworkPolicy must never select the Redis pod.
        assert not selects({"matchLabels": svc["spec"]["selector"]}, redis["spec"]["template"]["metadata"]["labels"])
    for pdb in find(docs, "PodDisruptionBudget", w["metadata"]["name"]):
        assert selects(pdb["spec"]["selector"], pod_labels)
    for pdb in find(docs, "PodDisruptionBudget", f"{w['metadata']['name']}-redis"):
        # The bundled Redis' own budget (with Sentinels) selects its pods only.
        assert not selects(pdb["spec"]["selector"], pod_labels)
    for sm in find(docs, "ServiceMonitor"):
        assert selects(sm["spec"]["selector"], svc["metadata"]["labels"])
        assert sm["spec"]["endpoints"][0]["port"] in [p["name"] for p in svc["spec"]["ports"]]
        assert sm["spec"]["endpoints"][0]["honorLabels"] is True


@pytest.mark.parametrize("name", ids(ALL_VALUES))
def test_pods_are_locked_down(name):
    """Non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp."""
    docs = render(ALL_VALUES[name])
    for w in find(docs, "Deployment") + find(docs, "StatefulSet"):
        pod = w["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        main = pod["containers"][0]
        assert main["name"] in ("pushgateway", "redis")
        sc = main["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc.get("privileged")


@pytest.mark.parametrize("name", ids(ALL_VALUES))
def test_no_secret_on_the_command_line(name):
    docs = render(ALL_VALUES[name])
    c = gateway_container(workload(docs))
    for arg in c["args"]:
        assert "password" not in arg.lower() or arg.startswith("--storage.redis.password-file"), arg
        m = re.match(r"--storage\.redis\.url=(.*)", arg)
        if m:
            assert not re.match(r"rediss?://[^/@]*:[^/@]*@", m.group(1)), arg
    if any(a == "--storage=redis" for a in c["args"]):
        assert any(a.startswith(("--storage.redis.url=", "--storage.redis.sentinels=")) for a in c["args"])


@pytest.mark.parametrize("name", ids(ALL_VALUES))
def test_one_named_port_serves_probes_and_service(name):
    docs = render(ALL_VALUES[name])
    w = workload(docs)
    c = gateway_container(w)
    assert [p["name"] for p in c["ports"]] == ["http"]
    assert c["ports"][0]["containerPort"] == 9091
    svc = one(docs, "Service", w["metadata"]["name"])
    assert [(p["name"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("http", "http")]
    for probe in ("livenessProbe", "readinessProbe"):
        if probe in c:
            action = c[probe].get("httpGet") or c[probe].get("tcpSocket")
            assert action["port"] == "http"


# ---- the default install ------------------------------------------------------------------------

def test_default_install():
    docs = render()
    kinds = sorted(d["kind"] for d in docs if "helm.sh/hook" not in d["metadata"].get("annotations", {}))
    assert kinds == ["Deployment", "Service", "ServiceAccount"], kinds
    w = one(docs, "Deployment")
    assert w["spec"]["replicas"] == 1
    svc = one(docs, "Service")
    assert svc["spec"]["ports"][0]["port"] == 9091
    c = gateway_container(w)
    assert c["resources"] == {"requests": {"cpu": "50m", "memory": "128Mi"},
                              "limits": {"cpu": "100m", "memory": "256Mi"}}
    assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert c["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert "--web.listen-address=:9091" in c["args"]
    assert not any(a.startswith("--persistence.file") for a in c["args"])
    assert not any(a.startswith("--storage") for a in c["args"]), "memory mode takes no storage flags"


def test_redis_exposure_and_snapshot_interval_come_from_values():
    sets = ("storage.type=redis", "storage.redis.url=redis://redis:6379/0")
    args = gateway_container(workload(render(None, sets)))["args"]
    assert "--storage.redis.expose=leader" in args and "--storage.redis.snapshot-interval=1m" in args
    # A release's pods share their settings: a rolling upgrade that changes one adopts it.
    assert "--storage.redis.adopt-settings" in args
    args = gateway_container(workload(render(None, (*sets, "storage.redis.expose=all",
                                                    "storage.redis.snapshotInterval=2m30s"))))["args"]
    assert "--storage.redis.expose=all" in args and "--storage.redis.snapshot-interval=2m30s" in args
    assert "--storage.redis.expose=leader" not in args


def test_notes_tell_how_to_push_and_scrape_and_warn_about_memory():
    def notes(*extra):
        out = helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *extra).stdout
        return out.split("NOTES:", 1)[1]
    default = notes()
    assert "curl" in default and "--data-binary" in default and "/metrics/job/" in default
    assert "honor_labels: true" in default
    assert "WARNING" in default and "memory only" in default
    prod = notes("--values", str(PROFILES["small-prod"]))
    assert "WARNING" not in prod
    assert "ServiceMonitor" in prod and "honorLabels: true" in prod
    # Redis mode: pushes to any replica, each series once (leader exposure), AOF, the local copy.
    assert "Redis mode" not in default
    assert "a push may go to any replica" in prod and "storage.redis.expose=leader" in prod
    assert "/api/v1/metrics" in prod, "where to see every group when the port-forward hits a non-leader"
    assert "append-only file" in prod
    assert "/data/pushgateway.data is each replica's local copy" in prod and "even while Redis is down" in prod
    external = notes("--values", str(REPO / "values" / "external-redis.yaml"), "--set", "storage.redis.expose=all")
    assert "once per replica" in external and "appendonly yes" in external and "local copy" not in external


# ---- the dev profile ----------------------------------------------------------------------------

def test_dev_profile():
    docs = render(PROFILES["dev"])
    w = one(docs, "Deployment")
    assert w["spec"]["replicas"] == 1
    c = gateway_container(w)
    assert "--log.level=debug" in c["args"]
    assert not any(a.startswith("--persistence.file") for a in c["args"])
    assert not find(docs, "PersistentVolumeClaim")
    assert c["resources"]["requests"] == {"cpu": "10m", "memory": "32Mi"}
    assert c["resources"]["limits"]["memory"] == "128Mi"


# ---- the small-prod profile ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def prod():
    return render(PROFILES["small-prod"])


def redis_hosts(name, count=3):
    return [f"{name}-{i}.{name}-headless.{NAMESPACE}.svc.cluster.local" for i in range(count)]


def test_small_prod_runs_two_replicas_on_redis(prod):
    w = workload(prod)
    assert w["kind"] == "StatefulSet" and w["spec"]["replicas"] == 2
    c = gateway_container(w)
    assert "--storage=redis" in c["args"]
    redis_name = f"{w['metadata']['name']}-redis"
    # The gateways find the primary through the bundled Sentinels and wait for one replica.
    sentinels = ",".join(f"{host}:26379" for host in redis_hosts(redis_name))
    assert f"--storage.redis.sentinels={sentinels}" in c["args"]
    assert "--storage.redis.sentinel-master=pushgateway" in c["args"]
    assert "--storage.redis.min-replicas-acks=1" in c["args"]
    assert not any(a.startswith("--storage.redis.url") for a in c["args"])
    # Prometheus scrapes both pods: only the lease holder serves the pushed series.
    assert "--storage.redis.expose=leader" in c["args"]
    assert "--storage.redis.snapshot-interval=1m" in c["args"]
    env = {e["name"]: e for e in c["env"]}
    # The Secret made before install (the profile's header says how): the Redis password, and
    # the Sentinels' (the same key unless redis.sentinel.auth.secretKey names another).
    for name in ("PUSHGATEWAY_REDIS_PASSWORD", "PUSHGATEWAY_REDIS_SENTINEL_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "pushgateway-redis", "key": "password"}
    headless = one(prod, "Service", f"{redis_name}-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    sentinel_service = one(prod, "Service", f"{redis_name}-sentinel")
    assert [p["port"] for p in sentinel_service["spec"]["ports"]] == [26379]
    # No Service in front of every Redis pod: writes would reach replicas.
    assert not find(prod, "Service", redis_name)


def redis_set(docs):
    return one(docs, "StatefulSet", f"{RELEASE}-pushgateway-redis")


def test_small_prod_redis_is_three_pods_with_a_sentinel_each_and_an_aof_on_each_volume(prod):
    w = workload(prod)
    redis = redis_set(prod)
    assert redis["spec"]["replicas"] == 3 and redis["spec"]["serviceName"] == f"{RELEASE}-pushgateway-redis-headless"
    pod = redis["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"redis", "sentinel"}
    for mode, c in containers.items():
        assert c["command"] == ["/bin/sh", "/etc/redis-ha/redis-ha.sh", mode]
        env = {e["name"]: e["valueFrom"] for e in c["env"]}
        assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        for name in ("REDIS_PASSWORD", "SENTINEL_PASSWORD", "REDISCLI_AUTH"):
            assert env[name]["secretKeyRef"]["name"] == "pushgateway-redis"
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "data", "mountPath": "/data"} in containers["redis"]["volumeMounts"]
    assert [v["metadata"]["name"] for v in redis["spec"]["volumeClaimTemplates"]] == ["data"]
    run = next(v for v in pod["volumes"] if v["name"] == "run")
    assert run["emptyDir"]["medium"] == "Memory", "the configs with the passwords stay off disks"
    config = one(prod, "ConfigMap", redis["metadata"]["name"])["data"]
    settings = config["redis.conf"].splitlines()
    for line in ("appendonly yes", "appendfsync everysec", "maxmemory-policy noeviction", "min-replicas-to-write 1",
                 "min-replicas-max-lag 10", "dir /data"):
        assert line in settings, line
    assert "MASTER_NAME='pushgateway'\nQUORUM=2\n" == config["ha.env"]
    assert [line.split() for line in config["nodes"].splitlines()] == [
        [f"{redis['metadata']['name']}-{i}", host, "6379", "26379"]
        for i, host in enumerate(redis_hosts(redis["metadata"]["name"]))]
    assert "sentinel down-after-milliseconds pushgateway 5000" in config["sentinel-master.conf"]
    assert "sentinel announce-hostnames yes" in config["sentinel.conf"]
    # The pods roll when the script or a setting changes.
    assert redis["spec"]["template"]["metadata"]["annotations"]["pushgateway.io/redis-config"]
    # The gateways reach Redis and the Sentinels; the Redis pods reach one another.
    np = one(prod, "NetworkPolicy", redis["metadata"]["name"])
    redis_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert selects(np["spec"]["podSelector"], redis_labels)
    (rule,) = np["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == ["redis", "sentinel"]
    peers = [p["podSelector"] for p in rule["from"]]
    assert [selects(p, w["spec"]["template"]["metadata"]["labels"]) for p in peers] == [True, False]
    assert [selects(p, redis_labels) for p in peers] == [False, True]


def test_small_prod_redis_survives_a_node_drain(prod):
    redis = redis_set(prod)
    labels = redis["spec"]["template"]["metadata"]["labels"]
    pdb = one(prod, "PodDisruptionBudget", redis["metadata"]["name"])
    assert pdb["spec"]["maxUnavailable"] == 1 and selects(pdb["spec"]["selector"], labels)
    # The gateway's budget does not count the Redis pods (nor the other way round).
    gateway_pdb = one(prod, "PodDisruptionBudget", f"{RELEASE}-pushgateway")
    assert not selects(gateway_pdb["spec"]["selector"], labels)
    pod = redis["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert selects(term["podAffinityTerm"]["labelSelector"], labels)
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and selects(spread["labelSelector"], labels)
    hard = redis_set(render(PROFILES["small-prod"], ("redis.sentinel.podAntiAffinity=hard",)))
    (term,) = hard["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert selects(term["labelSelector"], labels)


def test_the_single_pod_redis_stays_for_dev():
    docs = render(PROFILES["small-prod"], ("redis.sentinel.enabled=false",))
    redis = redis_set(docs)
    assert redis["spec"]["replicas"] == 1 and [c["name"] for c in redis["spec"]["template"]["spec"]["containers"]] == ["redis"]
    args = gateway_container(workload(docs))["args"]
    assert f"--storage.redis.url=redis://{RELEASE}-pushgateway-redis.{NAMESPACE}.svc:6379/0" in args
    assert not any("sentinel" in a or "min-replicas" in a for a in args)
    assert not find(docs, "ConfigMap", f"{RELEASE}-pushgateway-redis")
    assert not find(docs, "PodDisruptionBudget", f"{RELEASE}-pushgateway-redis")


def test_external_sentinels():
    docs = render(CHART / "ci" / "redis-external-sentinel-values.yaml")
    c = gateway_container(workload(docs))
    assert ("--storage.redis.sentinels=sentinel-0.redis.example.internal:26379,sentinel-1.redis.example.internal:26379,"
            "sentinel-2.redis.example.internal:26380") in c["args"]
    assert "--storage.redis.sentinel-master=pgw-primary" in c["args"] and "--storage.redis.min-replicas-acks=1" in c["args"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env == {"PUSHGATEWAY_REDIS_PASSWORD": {"name": "redis-sentinels", "key": "password"},
                   "PUSHGATEWAY_REDIS_SENTINEL_PASSWORD": {"name": "redis-sentinels", "key": "sentinel-password"}}
    assert not find(docs, "StatefulSet")
    # Restricted egress opens Redis' port and every Sentinel's.
    policy = one(docs, "NetworkPolicy", f"{RELEASE}-pushgateway")["spec"]
    redis_rule = policy["egress"][1]
    assert [p["port"] for p in redis_rule["ports"]] == [6379, 26379, 26380]


def test_bundled_sentinels_open_the_gateways_egress_to_both_ports():
    docs = render(PROFILES["small-prod"], ("networkPolicy.egress.enabled=true",))
    redis_rule = one(docs, "NetworkPolicy", f"{RELEASE}-pushgateway")["spec"]["egress"][1]
    assert [p["port"] for p in redis_rule["ports"]] == [6379, 26379]
    assert selects(redis_rule["to"][0]["podSelector"], redis_set(docs)["spec"]["template"]["metadata"]["labels"])


def test_the_redis_start_script_passes_shellcheck():
    assert shutil.which("shellcheck"), "ci/suites/60-chart.sh installs shellcheck"
    proc = subprocess.run(["shellcheck", "--shell=sh", str(CHART / "files" / "redis-ha.sh")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ids(ALL_VALUES))
def test_no_secret_in_the_rendered_manifests(name):
    """Every password reaches a pod through a Secret reference: none is in the render (the
    chart reads no Secret), and no container takes one as a plain env value or argument."""
    text = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args(ALL_VALUES[name])).stdout
    for secret in EXTERNAL_SECRETS.values():
        if not secret.startswith("redis://"):
            assert secret not in text
    for d in yaml.safe_load_all(text):
        if not d or d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                if re.search(r"PASSWORD|AUTH|URL", e["name"]):
                    assert "secretKeyRef" in e.get("valueFrom", {}), (d["metadata"]["name"], c["name"], e["name"])
            for arg in c.get("args", []) + c.get("command", []):
                assert not re.search(r"(?i)requirepass|masterauth|auth-pass|password=", arg) or "$REDIS_PASSWORD" in arg, arg
    for template in (CHART / "templates").rglob("*"):
        assert "lookup" not in template.read_text() if template.is_file() else True, template


def test_small_prod_keeps_replicas_on_different_nodes(prod):
    w = workload(prod)
    pod = w["spec"]["template"]["spec"]
    terms = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["topologyKey"] == "kubernetes.io/hostname"
    assert selects(terms[0]["labelSelector"], w["spec"]["template"]["metadata"]["labels"])
    for tsc in pod["topologySpreadConstraints"]:
        assert selects(tsc["labelSelector"], w["spec"]["template"]["metadata"]["labels"])


def test_small_prod_pdb_keeps_one_replica_up(prod):
    w = workload(prod)
    pdb = one(prod, "PodDisruptionBudget", w["metadata"]["name"])
    assert selects(pdb["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
    assert 1 <= pdb["spec"]["minAvailable"] < w["spec"]["replicas"]


def test_small_prod_network_policy_opens_only_the_gateway_port(prod):
    w = workload(prod)
    np = one(prod, "NetworkPolicy", w["metadata"]["name"])
    assert selects(np["spec"]["podSelector"], w["spec"]["template"]["metadata"]["labels"])
    assert np["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = np["spec"]["ingress"]
    ports = rule["ports"]
    assert len(ports) == 1 and ports[0]["protocol"] == "TCP"
    named = {p["name"]: p["containerPort"] for p in gateway_container(w)["ports"]}
    assert named.get(ports[0]["port"], ports[0]["port"]) == 9091
    peers = rule["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in peers
    assert any(p.get("podSelector", {}).get("matchLabels") == {"pushgateway-client": "true"} for p in peers)


def test_small_prod_persists_each_replica_on_its_own_volume(prod):
    """In redis mode --persistence.file is each replica's local copy of its applied state (what
    it serves at once after a restart); test_profiles_run.py runs it."""
    w = workload(prod)
    c = gateway_container(w)
    (vct,) = w["spec"]["volumeClaimTemplates"]
    assert vct["spec"]["accessModes"] == ["ReadWriteOnce"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == vct["metadata"]["name"])
    files = [a.split("=", 1)[1] for a in c["args"] if a.startswith("--persistence.file=")]
    assert files and files[0].startswith(mount["mountPath"].rstrip("/") + "/")
    assert "--persistence.interval=1m" in c["args"]
    assert not find(prod, "PersistentVolumeClaim"), "a StatefulSet needs no separate PVC"


def test_small_prod_service_monitor(prod):
    sm = one(prod, "ServiceMonitor")
    ep = sm["spec"]["endpoints"][0]
    assert ep["honorLabels"] is True
    assert ep["interval"] == "30s" and ep["scrapeTimeout"] == "10s"
    assert ep["path"] == "/metrics" and ep["port"] == "http"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_small_prod_probes_and_resources(prod):
    c = gateway_container(workload(prod))
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http", "scheme": "HTTP"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http", "scheme": "HTTP"}
    assert c["resources"]["requests"] and c["resources"]["limits"]


# ---- scenarios ----------------------------------------------------------------------------------

def test_http_route_sends_traffic_to_the_service():
    route = one(render(CHART / "ci" / "httproute-values.yaml"), "HTTPRoute")
    assert route["spec"]["hostnames"] == ["pushgateway.example.com", f"{RELEASE}.example.com"]
    last = route["spec"]["rules"][-1]
    assert last["backendRefs"] == [{"name": f"{RELEASE}-pushgateway", "port": 9091}]
    assert len(route["spec"]["rules"]) == 2


def scenario(name):
    return render(CHART / "ci" / name)


def test_deployment_with_rwo_persistence_uses_recreate_and_mounts_the_pvc():
    docs = scenario("deployment-persistence-values.yaml")
    w = one(docs, "Deployment")
    assert w["spec"]["strategy"] == {"type": "Recreate"}
    pvc = one(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == ""
    vol = next(v for v in w["spec"]["template"]["spec"]["volumes"] if v.get("persistentVolumeClaim"))
    assert vol["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    c = gateway_container(w)
    mount = next(m for m in c["volumeMounts"] if m["name"] == vol["name"])
    assert mount["mountPath"] == "/var/lib/pushgateway"
    assert "--persistence.file=/var/lib/pushgateway/groups.data" in c["args"]
    assert "--persistence.interval=30s" in c["args"]


def test_existing_claim_is_mounted_and_not_created():
    docs = scenario("existing-claim-values.yaml")
    assert not find(docs, "PersistentVolumeClaim")
    w = one(docs, "Deployment")
    claims = [v["persistentVolumeClaim"]["claimName"] for v in w["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    assert claims == ["pushgateway-data"]
    assert w["spec"]["strategy"]["type"] == "Recreate"


def test_stateless_replicas_roll():
    w = one(scenario("redis-external-url-values.yaml"), "Deployment")
    assert w["spec"]["replicas"] == 2
    assert w["spec"]["strategy"]["type"] == "RollingUpdate"
    c = gateway_container(w)
    assert "--storage.redis.url=rediss://redis.example.internal:6380/1" in c["args"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["PUSHGATEWAY_REDIS_PASSWORD"] == {"name": "redis-auth", "key": "password"}


def test_redis_url_from_a_secret():
    w = workload(scenario("redis-url-secret-values.yaml"))
    c = gateway_container(w)
    assert "--storage.redis.url=$(PUSHGATEWAY_REDIS_URL)" in c["args"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["PUSHGATEWAY_REDIS_URL"] == {"name": "redis-url", "key": "url"}
    assert w["kind"] == "StatefulSet" and w["spec"]["volumeClaimTemplates"]


def test_basic_auth_mounts_the_web_config():
    """The hashes, the scrape Secret and the probes: test_production.py."""
    docs = scenario("basic-auth-values.yaml")
    web = one(docs, "Secret", f"{RELEASE}-pushgateway-web-config")
    cfg = yaml.safe_load(web["stringData"]["web-config.yml"])
    assert set(cfg["basic_auth_users"]) == {"prometheus", "pusher"}
    c = gateway_container(workload(docs))
    assert "--web.config.file=/etc/pushgateway/web/web-config.yml" in c["args"]


def test_tls_serves_https():
    docs = scenario("tls-values.yaml")
    cfg = yaml.safe_load(one(docs, "Secret")["stringData"]["web-config.yml"])
    assert cfg["tls_server_config"] == {"cert_file": "/etc/pushgateway/tls/tls.crt",
                                        "key_file": "/etc/pushgateway/tls/tls.key", "min_version": "TLS13"}
    assert cfg["http_server_config"]["headers"]["X-Frame-Options"] == "deny"
    w = workload(docs)
    c = gateway_container(w)
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["scheme"] == "https"
    vols = {v["name"]: v for v in w["spec"]["template"]["spec"]["volumes"]}
    assert vols["tls"]["secret"]["secretName"] == "pushgateway-tls"


def test_route_prefix_reaches_probes_service_monitor_and_ingress():
    docs = scenario("ingress-values.yaml")
    c = gateway_container(workload(docs))
    assert c["livenessProbe"]["httpGet"]["path"] == "/pushgateway/-/healthy"
    ing = one(docs, "Ingress")
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert [p["path"] for p in paths] == ["/healthz", "/pushgateway"]
    assert paths[-1]["backend"]["service"] == {"name": f"{RELEASE}-pushgateway", "port": {"number": 9091}}
    assert len(ing["spec"]["rules"]) == 2


def test_network_policy_allow_all_has_no_peers():
    np = one(scenario("networkpolicy-allow-all-values.yaml"), "NetworkPolicy")
    assert "from" not in np["spec"]["ingress"][0]


def test_statefulset_scenario_uses_claim_templates_with_sub_path():
    w = workload(scenario("statefulset-persistence-values.yaml"))
    assert w["kind"] == "StatefulSet"
    assert w["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "standard"
    mount = next(m for m in gateway_container(w)["volumeMounts"] if m["name"] == "storage")
    assert mount == {"name": "storage", "mountPath": "/data", "subPath": "gateway"}


def test_extras_pass_through():
    docs = scenario("extras-values.yaml")
    w = workload(docs)
    pod = w["spec"]["template"]["spec"]
    c = gateway_container(w)
    assert [x["name"] for x in pod["containers"]] == ["pushgateway", "sidecar"]
    assert [x["name"] for x in pod["initContainers"]] == ["init"]
    for flag in ("--web.enable-lifecycle", "--web.enable-admin-api", "--push.disable-consistency-check",
                 "--push.enable-utf8-names", "--log.format=json", "--log.level=warn", "--persistence.interval=1m"):
        assert flag in c["args"], flag
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["affinity"]["nodeAffinity"]
    assert {"name": "TZ", "value": "UTC"} in c["env"]
    assert w["spec"]["template"]["metadata"]["labels"]["team"] == "observability"
    assert w["metadata"]["labels"]["cost-center"] == "42"
    names = {d["metadata"]["name"] for d in find(docs, "ConfigMap")}
    assert names == {f"{RELEASE}-extra", f"{RELEASE}-extra-string"}


def test_image_digest_names_and_existing_service_account():
    docs = scenario("image-serviceaccount-values.yaml")
    assert not find(docs, "ServiceAccount")
    w = workload(docs)
    assert w["metadata"]["name"] == "gateway" and w["metadata"]["namespace"] == "observability"
    pod = w["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "existing-sa"
    assert pod["containers"][0]["image"] == (
        "registry.example.com/monitoring/pushgateway@sha256:" + "0123456789abcdef" * 4)


def test_probes_can_be_switched_off():
    c = gateway_container(workload(scenario("probes-off-values.yaml")))
    assert "livenessProbe" not in c and "readinessProbe" not in c and "resources" not in c
