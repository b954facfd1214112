"""The alerts and the Grafana dashboard that ship with the chart.

- The plain rules file (files/pushgateway.rules.yaml) is exactly the PrometheusRule the chart
  renders with its default values, so the rules have one definition (templates/_rules.tpl).
- promtool check rules passes on it and on every render; the promtool unit tests in
  rules-tests/ prove that each alert fires when it should and stays silent when it should not.
- The rendered PrometheusRule validates against the Prometheus Operator's schema.
- The dashboard is Grafana JSON whose every query parses, and the rules and the dashboard use
  only metrics that a live gateway exposes (apart from the explicit lists below).
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import promql_parser
import pytest
import yaml

from conftest import CHART, HELM, NAMESPACE, REPO, find, one, render
from local_processes import Gateway, Redis, wait_until
from rules_file import plain_file
from test_chart import validate_crds

HERE = Path(__file__).parent
PROMTOOL = os.environ.get("PROMTOOL", "promtool")
GATEWAY_BIN = os.environ.get("GATEWAY_BIN")
RULES_TESTS = sorted((HERE / "rules-tests").glob("*.test.yaml"))
PLAIN = CHART / "files" / "pushgateway.rules.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
ALERTS_VALUES = CHART / "ci" / "alerts-values.yaml"
DASHBOARD_VALUES = CHART / "ci" / "dashboard-values.yaml"
README = CHART / "README.md"

# Metrics the rules and the dashboard use that come from elsewhere than the gateway's /metrics.
NOT_FROM_THE_GATEWAY = {
    "up": "Prometheus' own scrape health",
    "container_memory_working_set_bytes": "cAdvisor (kubelet)",
    "kube_pod_container_resource_limits": "kube-state-metrics",
    "kube_pod_container_status_ready": "kube-state-metrics",
}
# Metrics every replica exports in redis mode only (--storage=redis): the replication alerts
# (prometheusRule.alerts.replication.enabled) and the dashboard's replication row
# (grafanaDashboard.replicationPanels) use them; the live check takes them from a gateway
# running against a real redis-server.
REDIS_MODE_ONLY = {
    "pushgateway_replication_lag_entries",
    "pushgateway_replication_applied_position",
    "pushgateway_replication_apply_errors_total",
    "pushgateway_redis_errors_total",
    "pushgateway_redis_roundtrip_seconds_bucket",
    "pushgateway_replication_snapshot_position",
    "pushgateway_replication_snapshot_age_seconds",
    "pushgateway_replication_leader",
}
RULE_FIELDS = {"alert", "expr", "for", "labels", "annotations"}
GROUP_ALERTS = {"PushgatewayGroupPushFailed", "PushgatewayGroupStale"}
# Grafana's interval variables, replaced by a duration before a query is parsed.
GRAFANA_DURATIONS = ("$__rate_interval", "$__interval", "$__range")


def rules_of(docs):
    """The spec (a rules file) of the one PrometheusRule of a render."""
    return one(docs, "PrometheusRule")["spec"]


def all_rules(spec):
    return [r for g in spec["groups"] for r in g["rules"]]


@pytest.fixture(scope="module")
def full_rules():
    """Every alert on (alerts-values.yaml): the rules the unit tests run against."""
    return rules_of(render(ALERTS_VALUES))


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


def promtool(*args, cwd=None):
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def write_rules(path, spec):
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ---- one definition ------------------------------------------------------------------------------

def test_plain_rules_file_is_the_rendered_default():
    expected = plain_file(HELM)
    assert PLAIN.read_text() == expected, (
        "files/pushgateway.rules.yaml differs from the chart's render; regenerate it with "
        "HELM=<helm> python3 ci/chart/rules_file.py --write")
    # The defaults: no replication alerts, no runbook links, the gateway's job "pushgateway".
    names = [r["alert"] for r in all_rules(yaml.safe_load(PLAIN.read_text()))]
    assert "PushgatewayReplicationLag" not in names and len(set(names)) == 8, names
    assert 'up{job="pushgateway"}' in PLAIN.read_text() and "runbook_url" not in PLAIN.read_text()


def test_alerts_are_off_by_default():
    docs = render()
    assert not find(docs, "PrometheusRule") and not find(docs, "ConfigMap")


# ---- promtool ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["plain", "alerts-values", "all-off"])
def test_promtool_check_rules(name, tmp_path):
    if name == "plain":
        path = PLAIN
    elif name == "alerts-values":
        path = write_rules(tmp_path / "rules.yaml", rules_of(render(ALERTS_VALUES)))
    else:
        sets = tuple(f"prometheusRule.alerts.{a}.enabled=false" for a in (
            "groupPushFailed", "groupStale", "gatewayDown", "gatewayNotReady", "pushesRejected",
            "memoryNearLimit", "groupsExpired", "quotaNearLimit", "replication"))
        spec = rules_of(render(None, ("prometheusRule.enabled=true", *sets)))
        assert spec == {"groups": []}
        path = write_rules(tmp_path / "rules.yaml", spec)
    proc = promtool("check", "rules", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout, proc.stdout


def test_promtool_check_rules_is_not_vacuous(tmp_path, full_rules):
    bad = json.loads(json.dumps(full_rules))
    bad["groups"][0]["rules"][0]["expr"] = "max without (pod) (push_time_seconds"
    proc = promtool("check", "rules", write_rules(tmp_path / "bad.yaml", bad))
    assert proc.returncode != 0 and "parse error" in (proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory, full_rules):
    """The rules files the unit tests name, beside copies of the tests."""
    d = tmp_path_factory.mktemp("rules")
    write_rules(d / "alerts-values.rules.yaml", full_rules)
    shutil.copy(PLAIN, d / PLAIN.name)
    for t in RULES_TESTS:
        shutil.copy(t, d / t.name)
    return d


@pytest.mark.parametrize("test", RULES_TESTS, ids=[t.name for t in RULES_TESTS])
def test_promtool_unit_tests(test, rules_dir):
    proc = promtool("test", "rules", test.name, cwd=rules_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout, proc.stdout


def test_unit_tests_catch_a_wrong_threshold(rules_dir, full_rules):
    """A rules file with another per-job age fails the stale-group tests."""
    changed = yaml.safe_dump(full_rules, sort_keys=False).replace("> 93600", "> 100000")
    d = rules_dir / "mutant"
    d.mkdir(exist_ok=True)
    (d / "alerts-values.rules.yaml").write_text(changed)
    shutil.copy(HERE / "rules-tests" / "group-alerts.test.yaml", d)
    proc = promtool("test", "rules", "group-alerts.test.yaml", cwd=d)
    assert proc.returncode != 0 and "nightly-backup" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_every_alert_is_proven_to_fire_and_to_stay_silent(full_rules):
    fires, silent = set(), set()
    for path in RULES_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (fires if t.get("exp_alerts") else silent).add(t["alertname"])
    names = {r["alert"] for r in all_rules(full_rules)}
    assert names <= fires, f"alerts no unit test makes fire: {names - fires}"
    assert names <= silent, f"alerts no unit test keeps silent: {names - silent}"
    # The per-job override is exercised: an alert with the override's max_age label.
    stale = [a for p in RULES_TESTS for c in yaml.safe_load(p.read_text())["tests"]
             for t in c.get("alert_rule_test", []) if t["alertname"] == "PushgatewayGroupStale"
             for a in t.get("exp_alerts") or []]
    assert any(a["exp_labels"].get("max_age") == "26h" for a in stale)


# ---- content of the rules ------------------------------------------------------------------------

def test_every_alert_has_a_summary_a_description_and_a_runbook(full_rules):
    readme = README.read_text()
    for rule in all_rules(full_rules):
        name = rule["alert"]
        assert set(rule) <= RULE_FIELDS, (name, set(rule) - RULE_FIELDS)
        ann = rule["annotations"]
        assert ann["summary"] and ann["description"], name
        assert ann["runbook_url"].endswith("README.md#" + name.lower()), name
        if name in GROUP_ALERTS:
            # The job and every grouping label.
            assert '{job="{{ $labels.job }}"{{ range $k, $v := $labels }}' in ann["description"], name
        else:
            # The gateway: its scrape target, its pod (cAdvisor, kube-state-metrics), or its job
            # when the rule sums over replicas.
            assert any(f"$labels.{l}" in ann["description"] for l in ("instance", "pod", "job")), name
        assert rule["labels"]["severity"] and rule["labels"]["team"] == "observability", name
        assert re.search(rf"^### {name}$", readme, re.M), f"no runbook section '### {name}' in the README"
    names = [r["alert"] for r in all_rules(full_rules)]
    assert set(names) == {
        "PushgatewayGroupPushFailed", "PushgatewayGroupStale", "PushgatewayDown", "PushgatewayNotReady",
        "PushgatewayPushesRejected", "PushgatewayMemoryNearLimit", "PushgatewayGroupsExpired",
        "PushgatewayQuotaNearLimit", "PushgatewayReplicationLag", "PushgatewayReplicationApplyErrors", "PushgatewayRedisErrors",
        "PushgatewayReplicationSnapshotStale"}


def test_thresholds_and_selectors_come_from_values(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"prometheusRule": {
        "enabled": True, "gatewaySelector": 'job="gw", cluster="eu"', "groupSelector": 'service="gw"',
        "replicaLabels": ["pod", "replica"], "labels": {"team": "obs", "severity": "ignored"},
        "alerts": {"groupStale": {"maxAge": "1h30m"}, "memoryNearLimit": {"ratio": 0.8},
                   "gatewayDown": {"severity": "page"}}}}))
    spec = rules_of(render(values))
    rules = {r["alert"]: r for r in all_rules(spec)}
    assert "> 5400" in rules["PushgatewayGroupStale"]["expr"]
    assert 'push_time_seconds{service="gw"}' in rules["PushgatewayGroupStale"]["expr"]
    assert "max without (pod, replica)" in rules["PushgatewayGroupStale"]["expr"]
    assert "> 0.8" in rules["PushgatewayMemoryNearLimit"]["expr"]
    assert rules["PushgatewayDown"]["labels"]["severity"] == "page"
    assert rules["PushgatewayDown"]["labels"]["team"] == "obs", "prometheusRule.labels reach every alert"
    assert rules["PushgatewayGroupStale"]["labels"]["max_age"] == "1h30m"
    assert 'up{job="gw", cluster="eu"}' in rules["PushgatewayDown"]["expr"]
    assert "PushgatewayReplicationLag" not in rules
    # The snapshot-age threshold follows storage.redis.snapshotInterval.
    repl = {r["alert"]: r for r in all_rules(rules_of(render(None, (
        "prometheusRule.enabled=true", "prometheusRule.alerts.replication.enabled=true",
        "storage.redis.snapshotInterval=2m30s", "prometheusRule.alerts.replication.maxSnapshotIntervals=4"))))}
    assert ") > 600\n" in repl["PushgatewayReplicationSnapshotStale"]["expr"], repl["PushgatewayReplicationSnapshotStale"]["expr"]
    assert "snapshot interval 2m30s" in repl["PushgatewayReplicationSnapshotStale"]["annotations"]["description"]
    # Without a selector of its own, the job follows the ServiceMonitor's jobLabel.
    sm = rules_of(render(None, ("prometheusRule.enabled=true", "serviceMonitor.jobLabel=app.kubernetes.io/name")))
    assert 'up{job="pushgateway"}' in {r["alert"]: r for r in all_rules(sm)}["PushgatewayDown"]["expr"]


# ---- the PrometheusRule object -------------------------------------------------------------------

def test_prometheus_rule_validates_against_the_operator_schema():
    items = []
    for name, values, sets in (("alerts-values", ALERTS_VALUES, ()),
                               ("default", None, ("prometheusRule.enabled=true",)),
                               ("namespaced", None, ("prometheusRule.enabled=true", "prometheusRule.namespace=obs",
                                                     "prometheusRule.additionalLabels.release=kps"))):
        items.append({"source": name, "object": one(render(values, sets), "PrometheusRule")})
    bad = json.loads(json.dumps(items[0]["object"]))
    bad["spec"]["groups"][0]["rules"][0]["for"] = "5 minutes"
    bad["spec"]["groups"][0]["rules"][0]["labels"]["severity"] = 3
    proc = validate_crds(items)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = validate_crds([{"source": "bad", "object": bad}])
    assert proc.returncode == 1 and "for" in proc.stdout and "severity" in proc.stdout, proc.stdout
    pr = items[2]["object"]
    assert pr["metadata"]["namespace"] == "obs" and pr["metadata"]["labels"]["release"] == "kps"
    assert one(render(ALERTS_VALUES), "PrometheusRule")["metadata"]["namespace"] == NAMESPACE


# ---- the dashboard -------------------------------------------------------------------------------

def panels_of(dash):
    """Every panel, the ones inside collapsed rows included."""
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def grafana_queries(dash):
    """(where, PromQL) of every panel target and every query variable."""
    for p in panels_of(dash):
        for t in p.get("targets", []):
            yield f"panel '{p['title']}' {t['refId']}", t["expr"]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.+), *(\w+)\)", q)
            assert m, f"variable {v['name']}: {q}"
            yield f"variable {v['name']}", m.group(1)


def substitute(expr, dash):
    """A Grafana query as PromQL: interval variables become 5m, a custom variable its first
    option, any other variable (used in label matchers) a regular expression."""
    for d in GRAFANA_DURATIONS:
        expr = expr.replace(d, "5m")
    for v in dash["templating"]["list"]:
        value = v["options"][0]["value"] if v["type"] == "custom" else ".+"
        expr = re.sub(rf"\$\{{{v['name']}\}}|\${v['name']}\b", value, expr)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_dashboard_is_grafana_json(dashboard):
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels_of(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for p in panels_of(dashboard):
        assert set(p["gridPos"]) == {"h", "w", "x", "y"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["targets"] and all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"]), p["title"]
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"]["uid"] == "${datasource}", v["name"]


def test_dashboard_has_the_promised_panels(dashboard):
    titles = {p["title"] for p in panels_of(dashboard)}
    for title in ("Push rate by method and code", "Push latency by method", "Rejected pushes",
                  "Groups and series stored", "Stalest groups", "Last failure per group", "Memory", "CPU",
                  "Replication lag", "Replication (redis mode)"):
        assert title in titles, title
    tables = {p["title"]: p for p in panels_of(dashboard) if p["type"] == "table"}
    assert "topk(" in tables["Stalest groups"]["targets"][0]["expr"]
    assert tables["Stalest groups"]["targets"][0]["instant"] is True


def test_every_dashboard_query_parses(dashboard, tmp_path):
    queries = [(where, substitute(expr, dashboard)) for where, expr in grafana_queries(dashboard)]
    assert len(queries) >= 20
    for where, expr in queries:
        try:
            promql_parser.parse(expr)
        except Exception as err:  # noqa: BLE001 - every failure is reported with its query
            pytest.fail(f"{where}: {expr}: {err}")
    # And through promtool: every query as a recording rule.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]}]}
    proc = promtool("check", "rules", write_rules(tmp_path / "dashboard.rules.yaml", rules))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_query_check_is_not_vacuous(dashboard):
    with pytest.raises(Exception):
        promql_parser.parse(substitute('sum by (code) (rate(x{job=~"$job"}[$__rate_interval])', dashboard))
    with pytest.raises(AssertionError):
        substitute("rate(x[$unknown])", dashboard)


def configmap_dashboard(docs):
    cm = one(docs, "ConfigMap")
    (key,) = cm["data"]
    assert key.endswith(".json")
    return cm, json.loads(cm["data"][key])


def test_dashboard_configmap(dashboard):
    cm, shipped = configmap_dashboard(render(DASHBOARD_VALUES))
    assert cm["metadata"]["name"] == "pushgateway-overview"
    assert cm["metadata"]["namespace"] == "grafana"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "pushgateway"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Monitoring"}
    assert shipped["uid"] == "pushgateway-eu"
    assert {**shipped, "uid": dashboard["uid"]} == dashboard, "with replicationPanels the file is shipped unchanged"
    cm, default = configmap_dashboard(render(None, ("grafanaDashboard.enabled=true",)))
    assert cm["metadata"]["name"] == "pg-pushgateway-dashboard"
    assert cm["metadata"]["namespace"] == NAMESPACE
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    # Without replicationPanels only the replication row is gone.
    assert [p["title"] for p in default["panels"]] == [
        p["title"] for p in dashboard["panels"] if not p["title"].startswith("Replication")]
    assert len(default["panels"]) == len(dashboard["panels"]) - 1
    assert not any("replication" in json.dumps(p) or "redis_errors" in json.dumps(p) for p in default["panels"])


# ---- every metric is one the gateway exposes -----------------------------------------------------

def metric_names(expr):
    names = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.add(m.value)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def handler_values(expr):
    """The values of handler="..." / handler=~"a|b" matchers in a query."""
    found = set()
    for op, value in re.findall(r'handler(=~?)"([^"]*)"', expr):
        found |= set(value.split("|")) if op == "=~" else {value}
    return found


@pytest.fixture(scope="module")
def live_scrape(tmp_path_factory):
    """The /metrics of our gateway after a push, a delete and a readiness check, with a quota
    (whose metrics exist only with quotas)."""
    if not GATEWAY_BIN:
        pytest.skip("GATEWAY_BIN is not set (ci/suites/60-chart.sh builds and sets it)")
    config = tmp_path_factory.mktemp("live") / "pushgateway.toml"
    config.write_text('[[quota]]\nlabels = { job = "batch" }\nmax_series = 100\nmax_groups = 10\n')
    gw = Gateway([f"--config.file={config}"])
    base = gw.base
    try:
        gw.wait_ready()
        counter = b"# TYPE some_metric counter\nsome_metric{label=\"x\"} 1\n"
        for method, path in (("PUT", "/metrics/job/batch/instance/a"), ("POST", "/metrics/job/batch/instance/b"),
                             ("DELETE", "/metrics/job/batch/instance/b"), ("PUT", "/metrics/job/batch/instance/c")):
            req = urllib.request.Request(base + path, data=counter if method != "DELETE" else None, method=method)
            urllib.request.urlopen(req, timeout=5).read()
        # The same name as a gauge in group c contradicts group a: refused with 400, and c's
        # push_failure_time_seconds passes its push_time_seconds (what PushgatewayGroupPushFailed
        # compares).
        time.sleep(0.05)
        gauge = b"# TYPE some_metric gauge\nsome_metric 2\n"
        req = urllib.request.Request(base + "/metrics/job/batch/instance/c", data=gauge, method="PUT")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=5)
        assert refused.value.code == 400
        return urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def redis_scrape(tmp_path_factory):
    """The /metrics of our gateway in redis mode (--storage=redis against a real redis-server
    with a password, leader exposure, snapshots every second) after a push and a delete, once
    it has written a snapshot."""
    tmp = tmp_path_factory.mktemp("redis-mode")
    with Redis(tmp, password="scrape-test") as redis:
        gw = Gateway(["--storage=redis",
                      f"--storage.redis.url=redis://127.0.0.1:{redis.port}/0", "--storage.redis.expose=leader",
                      "--storage.redis.snapshot-interval=1s"], env={"PUSHGATEWAY_REDIS_PASSWORD": "scrape-test"})
        try:
            gw.wait_ready()
            counter = b"# TYPE some_metric counter\nsome_metric{label=\"x\"} 1\n"
            for method, path in (("PUT", "/metrics/job/batch/instance/a"), ("PUT", "/metrics/job/batch/instance/b"),
                                 ("DELETE", "/metrics/job/batch/instance/b")):
                status, text = gw.request(method, path, counter if method != "DELETE" else None)
                assert status in (200, 202), (method, path, status, text)

            def snapshot_of_everything():
                text = gw.scrape()
                applied = sample_or_none(text, "pushgateway_replication_applied_position")
                done = (sample_or_none(text, "pushgateway_replication_leader") == 1 and applied and applied >= 3
                        and sample_or_none(text, "pushgateway_replication_snapshot_position") == applied)
                return text if done else None

            return wait_until(snapshot_of_everything, 60, "the only replica leading and its snapshot holding every change")
        finally:
            gw.stop()


def sample_or_none(text, name):
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def scraped_names(text):
    return {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            for line in text.splitlines() if line and not line.startswith("#")}


def test_rules_and_dashboard_use_only_metrics_the_gateway_exposes(live_scrape, redis_scrape, full_rules, dashboard):
    memory, redis = scraped_names(live_scrape), scraped_names(redis_scrape)
    exposed = memory | redis
    assert "push_time_seconds" in exposed and "pushgateway_http_push_duration_histogram_seconds_bucket" in exposed
    used = {}
    for rule in all_rules(full_rules):
        for name in metric_names(rule["expr"]):
            used.setdefault(name, []).append(f"alert {rule['alert']}")
    for where, expr in grafana_queries(dashboard):
        for name in metric_names(substitute(expr, dashboard)):
            used.setdefault(name, []).append(f"dashboard {where}")
    unknown = {n: w for n, w in used.items() if n not in exposed and n not in NOT_FROM_THE_GATEWAY}
    assert not unknown, f"metrics the gateway does not expose: {unknown}"
    # The exception list holds only names that are used, and the gateway's own names are not in it.
    assert set(NOT_FROM_THE_GATEWAY) <= set(used), set(NOT_FROM_THE_GATEWAY) - set(used)
    assert not (set(NOT_FROM_THE_GATEWAY) & exposed)
    # The replication metrics: all used, all exported in redis mode, none in memory mode (which
    # is why their alerts and dashboard row are off by default).
    assert REDIS_MODE_ONLY <= set(used), REDIS_MODE_ONLY - set(used)
    assert REDIS_MODE_ONLY <= redis, REDIS_MODE_ONLY - redis
    assert not (REDIS_MODE_ONLY & memory), REDIS_MODE_ONLY & memory
    # Every metric of the replication alerts and row is one of them (none slipped past the list).
    replication_used = {n for n, where in used.items()
                        if any("Replication" in w or "Redis" in w or "Leader" in w or "Snapshot" in w for w in where)}
    assert replication_used - REDIS_MODE_ONLY <= memory, replication_used - REDIS_MODE_ONLY


def test_redis_mode_scrape_shows_a_working_replica(redis_scrape):
    """The values behind the replication alerts in a healthy replica: leader, caught up, no
    errors, a snapshot of what it applied; with expose=leader the leader serves the group."""
    assert sample_or_none(redis_scrape, "pushgateway_replication_leader") == 1
    assert sample_or_none(redis_scrape, "pushgateway_replication_lag_entries") == 0
    assert sample_or_none(redis_scrape, "pushgateway_replication_apply_errors_total") == 0
    assert sample_or_none(redis_scrape, "pushgateway_redis_errors_total") == 0
    applied = sample_or_none(redis_scrape, "pushgateway_replication_applied_position")
    assert applied >= 3 and sample_or_none(redis_scrape, "pushgateway_replication_snapshot_position") == applied
    assert sample(redis_scrape, "push_time_seconds", job="batch", instance="a") > 0
    assert 'instance="b"' not in redis_scrape


def sample(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    assert m, f"{name}{{{want}}} not in the scrape"
    return float(m.group(1))


def test_the_gateway_exposes_what_the_alerts_compare(live_scrape):
    """A refused push leaves push_failure_time_seconds > push_time_seconds for its group only,
    and is counted as a 4xx of the push handler."""
    failed = sample(live_scrape, "push_failure_time_seconds", job="batch", instance="c")
    pushed = sample(live_scrape, "push_time_seconds", job="batch", instance="c")
    assert failed > pushed > 0
    assert sample(live_scrape, "push_failure_time_seconds", job="batch", instance="a") == 0
    assert sample(live_scrape, "pushgateway_http_requests_total", code="400", handler="push", method="put") == 1
    assert sample(live_scrape, "pushgateway_http_requests_total", code="200", handler="ready", method="get") >= 1


def test_handler_labels_are_ones_the_gateway_uses(live_scrape, full_rules, dashboard):
    seen = set(re.findall(r'^pushgateway_http_requests_total\{[^}]*handler="([^"]*)"', live_scrape, re.M))
    used = set()
    for rule in all_rules(full_rules):
        used |= handler_values(rule["expr"])
    for _, expr in grafana_queries(dashboard):
        used |= handler_values(expr)
    assert used and used <= seen, f"handler values never exposed: {used - seen} (exposed: {seen})"


def test_metric_extraction_is_not_vacuous():
    assert metric_names('sum(rate(a_total{job="x"}[5m])) / on() group_left b or {__name__="c"}') == {"a_total", "b", "c"}
    assert scraped_names('# TYPE a counter\na_total{x="1"} 1\nb 2\n') == {"a_total", "b"}
    assert REPO.is_dir()
