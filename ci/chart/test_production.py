"""What an SRE running the chart in production relies on: no secret derivable from what pods
show, reproducible renders (GitOps, helm diff), real readiness under basic auth, drains that
cannot be blocked, NetworkPolicies that say what they admit, alerts on by default."""

import json
import os
import re
import subprocess

import pytest
import yaml

from conftest import (ALL_VALUES, CHART, NAMESPACE, PROFILES, RELEASE, find, gateway_container, helm, one,
                      render, values_args, workload)

# bcrypt hashes of "scrape-secret" and "push-secret" (ci/basic-auth-values.yaml).
SCRAPE_HASH = "$2b$10$vWGEIlGdbiIeeCbwJqhfsOs1saDXbiNGSGqAgrLLEVDd5EZJfWWjC"
OTHER_HASH = "$2b$10$j4lXccY6CQN.mWWklqkKKegA6xBim3TDfg6mcgc8ek9OZwxY/fFqy"
BASIC_AUTH = CHART / "ci" / "basic-auth-values.yaml"


def template(values=None, *sets, extra=()):
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args(values), *extra]
    for s in sets:
        args += ["--set", s]
    return helm(*args, check=False)


def rejected(values=None, *sets):
    proc = template(values, *sets)
    assert proc.returncode != 0, "rendered although it must be refused"
    return proc.stderr


def pod_templates(docs):
    return {f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]
            for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


# ---- 1. nothing pod-readable is derived from a secret -------------------------------------------

def test_basic_auth_takes_bcrypt_hashes_and_refuses_plain_passwords():
    err = rejected(BASIC_AUTH, "webConfig.basicAuthUsers.pusher=push-secret")
    assert "basicAuthUsers" in err and "pattern" in err, err
    docs = render(BASIC_AUTH)
    web = one(docs, "Secret", f"{RELEASE}-pushgateway-web-config")
    cfg = yaml.safe_load(web["stringData"]["web-config.yml"])
    assert cfg["basic_auth_users"] == {"prometheus": SCRAPE_HASH, "pusher": OTHER_HASH}


def test_pods_show_nothing_derived_from_the_web_config():
    """Another password (hash) must not change anything a pod reader sees: the web config is
    re-read by the gateway, so no checksum of it is needed."""
    base = pod_templates(render(BASIC_AUTH))
    changed = pod_templates(render(BASIC_AUTH, (f"webConfig.basicAuthUsers.pusher={SCRAPE_HASH}",)))
    assert base == changed
    for values in ALL_VALUES.values():
        for name, pod in pod_templates(render(values)).items():
            for key in pod["metadata"].get("annotations", {}):
                assert not key.startswith("checksum/"), (name, key)


def test_the_service_monitor_takes_scrape_credentials_from_a_secret():
    err = rejected(BASIC_AUTH, "serviceMonitor.basicAuth=null")
    assert "serviceMonitor.basicAuth" in err, err
    docs = render(BASIC_AUTH)
    assert not [s for s in find(docs, "Secret") if "scrape" in s["metadata"]["name"]]
    ep = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert ep["basicAuth"]["password"] == {"name": "pushgateway-scrape-auth", "key": "password"}


# ---- 2. reproducible renders --------------------------------------------------------------------

@pytest.mark.parametrize("name", list(ALL_VALUES))
def test_two_renders_are_byte_identical(name):
    first, second = template(ALL_VALUES[name]), template(ALL_VALUES[name])
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def template_actions(text):
    """The code of every {{ ... }} action, without comments and string literals."""
    actions = re.findall(r"\{\{-?(.*?)-?\}\}", text, re.S)
    return " ".join(re.sub(r'"(?:[^"\\]|\\.)*"', '""', a) for a in actions if not a.strip().startswith("/*"))


def test_templates_draw_no_randomness():
    for path in (p for p in (CHART / "templates").rglob("*") if p.is_file()):
        text = template_actions(path.read_text())
        assert text.strip(), f"no template actions found in {path.name}"
        for fn in ("randAlphaNum", "randAlpha", "randNumeric", "randAscii", "randBytes", "genPrivateKey",
                   "genCA", "genSelfSignedCert", "genSignedCert", "htpasswd", "bcrypt", "uuidv4", "now"):
            assert not re.search(rf"\b{fn}\b", text), f"{path.name} uses {fn}"


def test_bundled_redis_needs_a_password_secret_made_outside_the_chart():
    err = rejected(None, "storage.type=redis", "redis.enabled=true")
    assert "redis.auth.existingSecret" in err and "kubectl" in err and "create secret generic" in err, err
    docs = render(PROFILES["small-prod"])
    assert not find(docs, "Secret"), "the chart renders no Secret in small-prod"


def test_pods_roll_together_when_the_redis_password_revision_changes():
    values = PROFILES["small-prod"]
    base = pod_templates(render(values))
    same = pod_templates(render(values, ("redis.auth.revision=",)))
    assert base == same
    rolled = pod_templates(render(values, ("redis.auth.revision=2026-01-15",)))
    assert set(rolled) == set(base) and len(base) == 2
    for name, pod in rolled.items():
        assert pod != base[name], f"{name} does not roll"
        assert pod["metadata"]["annotations"]["pushgateway.io/redis-auth-revision"] == "2026-01-15"


# ---- 3. real readiness under basic auth ---------------------------------------------------------

@pytest.mark.parametrize("values", [BASIC_AUTH, CHART / "ci" / "webconfig-existing-secret-values.yaml",
                                    ALL_VALUES["values/tls-basic-auth.yaml"]],
                         ids=["basic-auth", "existing-web-config", "tls-basic-auth"])
def test_probes_stay_http_under_basic_auth(values):
    c = gateway_container(workload(render(values)))
    assert "--web.unauthenticated-probes" in c["args"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert c["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert "tcpSocket" not in c["readinessProbe"]
    assert "Authorization" not in json.dumps(c), "no credentials in the pod spec"


def test_probes_fall_back_to_tcp_only_when_the_operator_opts_out():
    c = gateway_container(workload(render(BASIC_AUTH, ("webConfig.unauthenticatedProbes=false",))))
    assert "--web.unauthenticated-probes" not in c["args"]
    assert c["readinessProbe"]["tcpSocket"] == {"port": "http"}


def test_no_unauthenticated_probes_without_a_web_config():
    c = gateway_container(workload(render()))
    assert "--web.unauthenticated-probes" not in c["args"]


# ---- 6. a PodDisruptionBudget always allows one eviction ----------------------------------------

REPLICATED = ("storage.type=redis", "storage.redis.url=redis://redis:6379/0")


@pytest.mark.parametrize("replicas,setting,allowed", [
    (1, "minAvailable=1", False), (1, "minAvailable=0", True), (1, "maxUnavailable=1", True),
    (2, "minAvailable=1", True), (2, "minAvailable=2", False), (2, "minAvailable=50%", True),
    (2, "minAvailable=51%", False), (2, "minAvailable=100%", False), (3, "minAvailable=2", True),
    (2, "maxUnavailable=0", False), (2, "maxUnavailable=0%", False), (2, "maxUnavailable=1%", True),
    (3, "maxUnavailable=1", True),
])
def test_pdb_never_blocks_every_drain(replicas, setting, allowed):
    sets = [*REPLICATED, f"replicaCount={replicas}", "podDisruptionBudget.enabled=true", f"podDisruptionBudget.{setting}"]
    if setting.startswith("minAvailable="):
        sets.append("podDisruptionBudget.maxUnavailable=")
    proc = template(None, *sets)
    if allowed:
        assert proc.returncode == 0, proc.stderr
        one([d for d in yaml.safe_load_all(proc.stdout) if d], "PodDisruptionBudget")
    else:
        assert proc.returncode != 0, f"{replicas} replicas with {setting} rendered a PDB that blocks drains"
        assert "allows no eviction" in proc.stderr and "drain" in proc.stderr, proc.stderr


def test_every_pdb_the_values_files_render_allows_an_eviction():
    for name, values in ALL_VALUES.items():
        docs = render(values)
        for pdb in find(docs, "PodDisruptionBudget"):
            replicas = workload(docs)["spec"]["replicas"]
            spec = pdb["spec"]
            if "minAvailable" in spec:
                assert isinstance(spec["minAvailable"], int) and spec["minAvailable"] < replicas, name
            else:
                assert spec["maxUnavailable"] not in (0, "0%"), name


# ---- 7. NetworkPolicies say what they admit, and can open egress --------------------------------

def test_network_policy_without_peers_is_an_error():
    err = rejected(None, "networkPolicy.enabled=true")
    assert "Prometheus and every pusher would be blocked" in err and "allowAll" in err, err
    docs = render(None, ("networkPolicy.enabled=true", "networkPolicy.allowAll=true"))
    assert "from" not in one(docs, "NetworkPolicy")["spec"]["ingress"][0]


def egress_rules(docs, name=f"{RELEASE}-pushgateway"):
    policy = one(docs, "NetworkPolicy", name)["spec"]
    assert "Egress" in policy["policyTypes"]
    return policy["egress"]


def test_restricted_egress_reaches_dns_and_the_bundled_redis():
    docs = render(CHART / "ci" / "redis-bundled-values.yaml")
    dns, redis = egress_rules(docs)
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    redis_pod = one(docs, "StatefulSet", f"{RELEASE}-pushgateway-redis")["spec"]["template"]["metadata"]["labels"]
    (peer,) = redis["to"]
    assert all(redis_pod.get(k) == v for k, v in peer["podSelector"]["matchLabels"].items())
    assert redis["ports"] == [{"port": 6379, "protocol": "TCP"}]
    # Without the switch the policy leaves egress alone.
    assert one(render(PROFILES["small-prod"]), "NetworkPolicy", f"{RELEASE}-pushgateway")["spec"]["policyTypes"] == ["Ingress"]


def test_restricted_egress_to_an_external_redis_needs_its_address():
    sets = (*REPLICATED, "networkPolicy.enabled=true", "networkPolicy.allowAll=true",
            "networkPolicy.egress.enabled=true")
    assert "networkPolicy.egress.redisTo" in rejected(None, *sets)
    docs = render(None, (*sets, "networkPolicy.egress.redisTo[0].ipBlock.cidr=10.20.0.15/32",
                         "networkPolicy.egress.redisPort=6380"))
    _, redis = egress_rules(docs)
    assert redis == {"ports": [{"port": 6380, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.20.0.15/32"}}]}


# ---- 9. NOTES.txt prints the ops commands for the values in use ---------------------------------

def notes(values=None, *sets):
    args = ["install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *values_args(values)]
    for s in sets:
        args += ["--set", s]
    return helm(*args).stdout.split("NOTES:", 1)[1]


def ops_commands(text):
    return [line.strip() for line in text.splitlines() if line.strip().startswith("make -f make/ops/pushgateway.mk")]


def test_notes_print_the_ops_commands_for_tls_basic_auth_and_a_route_prefix():
    text = notes(ALL_VALUES["values/tls-basic-auth.yaml"], "gateway.routePrefix=/pgw", "nameOverride=pgw")
    commands = ops_commands(text)
    targets = [c.split()[3] for c in commands]
    assert targets == ["pushgateway-health", "pushgateway-status", "pushgateway-metrics", "pushgateway-delete-group"]
    for c in commands:
        assert (f"PUSHGATEWAY_NAMESPACE={NAMESPACE} PUSHGATEWAY_RELEASE={RELEASE} PUSHGATEWAY_NAME=pgw "
                "PUSHGATEWAY_SCHEME=https PUSHGATEWAY_ROUTE_PREFIX=/pgw "
                "PUSHGATEWAY_CURL_OPTS='-k --netrc-file ~/.pushgateway-netrc'") in c, c
    assert "chmod 600 ~/.pushgateway-netrc" in text
    assert "PASSWORD" not in " ".join(commands), "no password on a command line"


def test_notes_ops_commands_of_a_plain_release():
    commands = ops_commands(notes(None, "gateway.enableAdminApi=true"))
    assert commands[-1] == (f"make -f make/ops/pushgateway.mk pushgateway-wipe PUSHGATEWAY_NAMESPACE={NAMESPACE} "
                            f"PUSHGATEWAY_RELEASE={RELEASE} CONFIRM={RELEASE}")
    assert not any("SCHEME" in c or "CURL_OPTS" in c or "ROUTE_PREFIX" in c for c in commands)


# ---- 5. the bundled Redis: a patched release, pinned by digest ----------------------------------

def redis_container(docs):
    redis = one(docs, "StatefulSet", f"{RELEASE}-pushgateway-redis")
    return redis["spec"]["template"]["spec"]["containers"][0]


def test_bundled_redis_is_a_patched_release_pinned_by_digest():
    image = redis_container(render(PROFILES["small-prod"]))["image"]
    m = re.fullmatch(r"docker\.io/library/redis:(\d+)\.(\d+)\.(\d+)-alpine@sha256:[0-9a-f]{64}", image)
    assert m, image
    version = tuple(int(x) for x in m.groups())
    # CVE-2025-49844 (Lua use-after-free) is fixed in 7.4.6, CVE-2025-21605 in 7.4.3.
    assert version >= (7, 4, 6) and version[:2] == (7, 4), version


# ---- 10. the version label follows the image ----------------------------------------------------

def test_version_label_follows_a_digest():
    digest = "sha256:" + "0123456789abcdef" * 4
    for sets, expected in ((("image.digest=" + digest,), ("sha256-" + "0123456789abcdef" * 4)[:63]),
                           (("image.digest=" + digest, "image.tag=1.2.3"), "1.2.3"),
                           ((), yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])):
        docs = render(None, sets)
        w = workload(docs)
        for labels in (w["metadata"]["labels"], w["spec"]["template"]["metadata"]["labels"],
                       one(docs, "Service")["metadata"]["labels"]):
            assert labels["app.kubernetes.io/version"] == expected, (sets, labels)


# ---- Also: small-prod has alerts by default -----------------------------------------------------

OPERATOR = ("--api-versions", "monitoring.coreos.com/v1")


def docs_of(proc):
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def alert_names(groups):
    return sorted(r["alert"] for g in groups["groups"] for r in g["rules"] if "alert" in r)


def test_small_prod_ships_a_prometheus_rule_when_the_operator_is_there():
    docs = docs_of(template(PROFILES["small-prod"], extra=OPERATOR))
    rule = one(docs, "PrometheusRule")
    assert not [c for c in find(docs, "ConfigMap") if c["metadata"]["name"].endswith("-rules")]
    names = alert_names(rule["spec"])
    assert "PushgatewayDown" in names and "PushgatewayReplicationLag" in names, names
    from test_chart import validate_crds
    proc = validate_crds([{"source": "small-prod with the operator", "object": rule}])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_small_prod_ships_the_rules_file_without_the_operator(tmp_path):
    docs = render(PROFILES["small-prod"])
    assert not find(docs, "PrometheusRule")
    cm = one(docs, "ConfigMap", f"{RELEASE}-pushgateway-rules")
    text = cm["data"]["pushgateway.rules.yaml"]
    with_operator = one(docs_of(template(PROFILES["small-prod"], extra=OPERATOR)), "PrometheusRule")
    assert yaml.safe_load(text) == with_operator["spec"], "one definition of the rules"
    (tmp_path / "rules.yaml").write_text(text)
    check = subprocess.run([os.environ.get("PROMTOOL", "promtool"), "check", "rules", str(tmp_path / "rules.yaml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    out = notes(PROFILES["small-prod"])
    assert f"{RELEASE}-pushgateway-rules" in out and "rule_files" in out


def test_rules_stay_off_by_default_and_true_means_a_prometheus_rule():
    assert not find(render(), "PrometheusRule") and not find(render(), "ConfigMap")
    one(render(None, ("prometheusRule.enabled=true",)), "PrometheusRule")


# ---- 8. Redis sizing ----------------------------------------------------------------------------

def test_redis_memory_limit_leaves_room_for_an_aof_rewrite():
    docs = render(PROFILES["small-prod"])
    redis = redis_container(docs)
    assert redis["resources"]["limits"]["memory"] == "512Mi"
    # With Sentinels the setting is in the ConfigMap the start script reads; in one pod, a flag.
    assert "maxmemory 200mb" in one(docs, "ConfigMap", f"{RELEASE}-pushgateway-redis")["data"]["redis.conf"].splitlines()
    single = redis_container(render(PROFILES["small-prod"], ("redis.sentinel.enabled=false",)))
    assert "--maxmemory 200mb" in single["command"][2]
    err = rejected(PROFILES["small-prod"], "redis.resources.limits.memory=256Mi")
    assert "at least 464Mi (2 x maxMemory + 64Mi)" in err, err
    for limit, max_memory, ok in (("464Mi", "200mb", True), ("463Mi", "200mb", False), ("1Gi", "480mb", True),
                                  ("1Gi", "481mb", False), ("300M", "100m", True), ("256Mi", "0mb", True)):
        proc = template(PROFILES["small-prod"], f"redis.resources.limits.memory={limit}", f"redis.maxMemory={max_memory}")
        assert (proc.returncode == 0) == ok, (limit, max_memory, proc.stderr)


def test_redis_memory_alert_fires_before_redis_is_full(tmp_path):
    """promtool: 0.85 x maxmemory for 10 minutes fires PushgatewayRedisMemoryNearMax; 0.7 does not."""
    docs = render(PROFILES["small-prod"])
    rules = yaml.safe_load(one(docs, "ConfigMap", f"{RELEASE}-pushgateway-rules")["data"]["pushgateway.rules.yaml"])
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "PushgatewayRedisMemoryNearMax"]
    assert rule["labels"]["severity"] == "warning"
    # The description shows the value; the other annotations are compared as rendered.
    del rule["annotations"]["description"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    max_bytes = 200 * 1024 * 1024
    series = f'container_memory_working_set_bytes{{namespace="{NAMESPACE}", pod="{RELEASE}-pushgateway-redis-0", container="redis"}}'
    alert = {"severity": "warning", "namespace": NAMESPACE, "pod": f"{RELEASE}-pushgateway-redis-0"}
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": series, "values": f"{int(0.7 * max_bytes)}x15 {int(0.85 * max_bytes)}x20"}],
        "alert_rule_test": [
            {"eval_time": "14m", "alertname": "PushgatewayRedisMemoryNearMax", "exp_alerts": []},
            {"eval_time": "30m", "alertname": "PushgatewayRedisMemoryNearMax",
             "exp_alerts": [{"exp_labels": alert, "exp_annotations": rule["annotations"]}]}]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    proc = subprocess.run([os.environ.get("PROMTOOL", "promtool"), "test", "rules", "test.yaml"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_redis_memory_alert_without_a_bounded_bundled_redis():
    for sets in ((), ("redis.maxMemory=0mb",)):
        docs = render(PROFILES["small-prod"], sets)
        text = one(docs, "ConfigMap", f"{RELEASE}-pushgateway-rules")["data"]["pushgateway.rules.yaml"]
        assert ("PushgatewayRedisMemoryNearMax" in text) == (not sets), sets


# ---- 10. helm test ------------------------------------------------------------------------------

def test_helm_test_pod_reaches_the_service_and_is_admitted():
    """The script itself runs against our gateway in ci/ops/test_chart_flags.py."""
    for name, values in ALL_VALUES.items():
        docs = render(values)
        (pod,) = [d for d in docs if d["kind"] == "Pod"]
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test", name
        svc = one(docs, "Service", workload(docs)["metadata"]["name"])
        labels = pod["metadata"]["labels"]
        assert not all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "the Service must not select it"
        script = pod["spec"]["containers"][0]["command"][2]
        assert f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc:{svc['spec']['ports'][0]['port']}" in script, name
        for np in find(docs, "NetworkPolicy", svc["metadata"]["name"]):
            peers = np["spec"]["ingress"][0].get("from")
            assert peers is None or any(
                p.get("podSelector") and all(labels.get(k) == v for k, v in p["podSelector"]["matchLabels"].items())
                for p in peers), f"{name}: the NetworkPolicy blocks the test pod"
    assert not [d for d in render(None, ("tests.enabled=false",)) if d["kind"] == "Pod"]


def test_claim_template_sizes_say_how_to_resize():
    """volumeClaimTemplates cannot change, so `helm upgrade` with another size fails: the values
    and the README say what to do instead."""
    values = (CHART / "values.yaml").read_text()
    for key in ("  size: 2Gi", "    size: 1Gi"):
        comment = values[:values.index(key)].rsplit("# --", 1)[1]
        assert "volumeClaimTemplates" in comment and "Volume sizes" in comment, key
    readme = (CHART / "README.md").read_text()
    section = readme[readme.index("**Volume sizes.**"):]
    assert "--cascade=orphan" in section and "kubectl -n NS patch pvc" in section
