"""A real Prometheus server (Debian prometheus 2.42) scraping our gateway every second with
honor_labels: true, queried through its HTTP API.

Three servers scrape the same gateway at the same time, each through a small recording proxy
(to see what it asked for and what it got):
  - "native": --enable-feature=native-histograms, so it asks for delimited protobuf first;
  - "plain": no feature flag, so it asks for OpenMetrics 1.0.0 first, then text 0.0.4 (the
    gateway runs with --web.enable-openmetrics, so it gets OpenMetrics);
  - "text": no feature flag, and its proxy replaces the Accept header by text 0.0.4 only (the
    fallback a Prometheus 2.42 cannot be configured to ask for by itself).
The pushes (protobuf from the Go client incl. a native histogram, text from the Node client and
a raw text body, a group without an instance label) are all made before the servers start."""

import http.client
import http.server
import os
import shutil
import tempfile
import threading
import time

import pytest
import requests

from conftest import PROMETHEUS_BIN, Process, go_pusher, node_push, start_gateway, GATEWAY_BIN

PUSHED_JOBS = ("go_job", "node_job", "text_job", "noinst_job")
JOB_SELECTOR = '{job=~"%s"}' % "|".join(PUSHED_JOBS)

TEXT_BODY = b"""# HELP jobs_done Jobs done, a counter without a _total suffix.
# TYPE jobs_done counter
jobs_done 5
# TYPE text_gauge gauge
text_gauge{kind="a"} 1.5
text_gauge{kind="b"} -2
text_untyped 3
"""

NOINST_BODY = b"""# TYPE noinst_gauge gauge
noinst_gauge 7
"""


class RecordingProxy:
    """Forwards GET requests to the gateway and records (path, Accept, status, Content-Type).

    With accept set, the request goes on with that Accept header instead of Prometheus' own
    (the record shows the one sent)."""

    def __init__(self, upstream_port, accept=None):
        self.records = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                try:
                    self._forward()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Prometheus stopped or gave up on a scrape

            def _forward(self):
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("accept", "accept-encoding", "user-agent", "x-prometheus-scrape-timeout-seconds")
                }
                if accept is not None:
                    headers = {k: v for k, v in headers.items() if k.lower() != "accept"}
                    headers["Accept"] = accept
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                proxy.records.append(
                    (self.path, headers.get("Accept", ""), resp.status, resp.getheader("Content-Type", ""))
                )
                self.send_response(resp.status)
                for h in ("Content-Type", "Content-Encoding"):
                    if resp.getheader(h):
                        self.send_header(h, resp.getheader(h))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    def __init__(self, name, target_port, native_histograms):
        assert PROMETHEUS_BIN, "PROMETHEUS_BIN not set (run through ci/suites/40-clients.sh)"
        self.dir = tempfile.mkdtemp(prefix=f"clients-prom-{name}-")
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n"
                "  scrape_interval: 1s\n"
                "  scrape_timeout: 1s\n"
                "scrape_configs:\n"
                "  - job_name: pushgateway\n"
                "    honor_labels: true\n"
                "    static_configs:\n"
                f"      - targets: ['127.0.0.1:{target_port}']\n"
            )

        argv = [
            PROMETHEUS_BIN,
            f"--config.file={config}",
            f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
            "--web.listen-address=127.0.0.1:0",
            "--log.level=warn",
        ]
        if native_histograms:
            argv.append("--enable-feature=native-histograms")
        self.process = Process(f"prometheus-{name}", argv, "/-/ready")
        self.url = self.process.url

    def query(self, promql):
        r = requests.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"query {promql!r}: {r.status_code} {r.text}"
        return body["data"]["result"]

    def target(self):
        r = requests.get(self.url + "/api/v1/targets", timeout=10)
        targets = r.json()["data"]["activeTargets"]
        assert len(targets) == 1, targets
        return targets[0]

    def stop(self):
        self.process.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stack():
    # OpenMetrics enabled, so that the "plain" server gets what it asks for first.
    gw = start_gateway(GATEWAY_BIN, "ours-prom", extra=("--web.enable-openmetrics",))
    proxies, proms = [], {}
    try:
        # Protobuf push from the real Go client (incl. the native histogram gopush_native_seconds).
        go_pusher("push", "-url", gw.url, "-group", "instance=go-1", "-group", "path=/a/b")
        # Text push from the real Node client.
        node_push(gw.url, "push", "full")
        # Raw text pushes; noinst_job has no instance label.
        for path, body in (("/metrics/job/text_job/instance/t-1", TEXT_BODY), ("/metrics/job/noinst_job", NOINST_BODY)):
            r = requests.put(gw.url + path, data=body, headers={"Content-Type": "text/plain; version=0.0.4"}, timeout=10)
            assert r.status_code == 200, f"PUT {path}: {r.status_code} {r.text}"

        for name, native, accept in (
            ("native", True, None),
            ("plain", False, None),
            ("text", False, "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
        ):
            proxy = RecordingProxy(gw.port, accept)
            proxies.append(proxy)
            proms[name] = Prometheus(name, proxy.port, native)
            proms[name].proxy = proxy

        # Wait until each server has ingested a scrape holding all pushed groups.
        deadline = time.monotonic() + 120
        for name, prom in proms.items():
            while True:
                res = prom.query("count(push_time_seconds)")
                if res and res[0]["value"][1] == str(len(PUSHED_JOBS)):
                    break
                if time.monotonic() > deadline:
                    t = prom.target()
                    pytest.fail(
                        f"prometheus {name} did not ingest the pushed groups within 120 s: "
                        f"count(push_time_seconds) = {res}; target health {t['health']!r}, "
                        f"lastError {t['lastError']!r}; scrapes seen: {prom.proxy.records[-3:]}\n"
                        f"{prom.process.log_text()}"
                    )
                time.sleep(0.25)
        yield gw, proms
    finally:
        for prom in proms.values():
            prom.stop()
        for proxy in proxies:
            proxy.stop()
        gw.stop()


def series_by_labels(result):
    return {frozenset(s["metric"].items()): s for s in result}


@pytest.mark.parametrize("name", ["native", "plain", "text"])
def test_target_up_and_scrape_format(stack, name):
    _, proms = stack
    prom = proms[name]
    t = prom.target()
    assert t["health"] == "up" and t["lastError"] == "", t
    up = prom.query('up{job="pushgateway"}')
    assert len(up) == 1 and up[0]["value"][1] == "1", up
    records = [r for r in prom.proxy.records if r[0] == "/metrics"]
    assert records, "no scrape went through the proxy"
    assert all(r[2] == 200 for r in records), [r for r in records if r[2] != 200]
    path, accept, status, content_type = records[0]
    if name == "native":
        assert accept.startswith("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily"), accept
        assert content_type.startswith(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        ), content_type
    elif name == "plain":
        assert accept.startswith("application/openmetrics-text;version=1.0.0"), accept
        assert content_type.startswith("application/openmetrics-text; version=1.0.0"), content_type
    else:
        assert content_type.startswith("text/plain; version=0.0.4"), content_type


@pytest.mark.parametrize("name", ["native", "plain", "text"])
def test_pushed_labels_survive(stack, name):
    # honor_labels: the pushed job/instance (and other grouping labels) win over the target's.
    _, proms = stack
    prom = proms[name]
    cases = {
        "gopush_temperature": ({"job": "go_job", "instance": "go-1", "path": "/a/b", "room": "lab"}, "21.5"),
        'jobs_done{job="go_job"}': ({"job": "go_job", "instance": "go-1", "path": "/a/b"}, "42"),
        'jobs_done{job="text_job"}': ({"job": "text_job", "instance": "t-1"}, "5"),
        'text_gauge{kind="b"}': ({"job": "text_job", "instance": "t-1", "kind": "b"}, "-2"),
        "text_untyped": ({"job": "text_job", "instance": "t-1"}, "3"),
        "node_queue_size": ({"job": "node_job", "instance": "node-1", "zone": "eu west"}, "5"),
        "node_requests_total": ({"job": "node_job", "instance": "node-1", "zone": "eu west", "method": "GET"}, "3"),
        # No instance in the grouping key: the gateway exposes instance="", which keeps
        # Prometheus from attaching the target's instance; the stored series has none.
        "noinst_gauge": ({"job": "noinst_job"}, "7"),
        'gopush_latency_seconds_bucket{le="0.5"}': (
            {"job": "go_job", "instance": "go-1", "path": "/a/b", "le": "0.5"},
            "3",
        ),
        'gopush_payload_bytes{quantile="0.5"}': (
            {"job": "go_job", "instance": "go-1", "path": "/a/b", "quantile": "0.5"},
            "20",
        ),
        'node_latency_seconds_bucket{le="+Inf"}': (
            {"job": "node_job", "instance": "node-1", "zone": "eu west", "le": "+Inf"},
            "3",
        ),
    }
    problems = []
    for q, (labels, value) in cases.items():
        res = prom.query(q)
        name_ = q.split("{")[0]
        want = dict(labels, __name__=name_)
        got = [(s["metric"], s.get("value", [None, None])[1]) for s in res]
        if got != [(want, value)]:
            problems.append(f"{q}: got {got}, want {[(want, value)]}")
    assert not problems, "\n".join(problems)
    # Nothing pushed carries the target's job label.
    assert prom.query('count({job="pushgateway", __name__=~"gopush_.*|node_.*|text_.*|jobs_done|noinst_.*"})') == []


def test_native_histogram(stack):
    _, proms = stack
    prom = proms["native"]
    labels = {"job": "go_job", "instance": "go-1", "path": "/a/b"}
    for q, want in (
        ("histogram_count(gopush_native_seconds)", "5"),
        ("histogram_sum(gopush_native_seconds)", "5.5"),
        # The zero bucket (0) and the buckets ending at 0.5 and 1 (0.5, 1, 1) hold 4 of the 5
        # observations; 1 is a bucket boundary of schema 3, so no interpolation.
        ("histogram_fraction(-Inf, 1, gopush_native_seconds)", "0.8"),
    ):
        res = prom.query(q)
        assert [(s["metric"], s["value"][1]) for s in res] == [(labels, want)], f"{q}: {res}"
    raw = prom.query("gopush_native_seconds")
    assert len(raw) == 1 and "histogram" in raw[0], f"not stored as a native histogram: {raw}"
    h = raw[0]["histogram"][1]
    assert h["count"] == "5" and h["sum"] == "5.5", h
    # A native-only histogram is not also stored as classic series.
    assert prom.query('{__name__=~"gopush_native_seconds_(count|sum|bucket)"}') == []


@pytest.mark.parametrize("name", ["plain", "text"])
def test_same_series_without_native_histograms(stack, name):
    # The OpenMetrics scrape (and the text 0.0.4 one) must store the very same series (names,
    # labels, values) as the protobuf scrape; only the native histogram differs: without the
    # feature flag Prometheus keeps it as its classic count/sum/+Inf bucket.
    # Prometheus 2 stores a bucket bound from protobuf as le="1.0" but takes le from text
    # formats as the string it reads. Upstream's text 0.0.4 writes le="1", so for the text
    # scrape le is compared as a number; the OpenMetrics scrape has to give le="1.0" itself.
    _, proms = stack

    def norm_le(labels):
        d = dict(labels)
        if name != "text" or "le" not in d:
            return labels
        d["le"] = repr(float(d["le"]))
        return frozenset(d.items())

    native = series_by_labels(proms["native"].query(JOB_SELECTOR))
    other = series_by_labels(proms[name].query(JOB_SELECTOR))

    def strip(series):
        return {
            norm_le(k): s["value"][1]
            for k, s in series.items()
            if not dict(k)["__name__"].startswith("gopush_native_seconds")
        }

    a, b = strip(native), strip(other)
    only_native = sorted(dict(k)["__name__"] + str(dict(k)) for k in a.keys() - b.keys())
    only_other = sorted(dict(k)["__name__"] + str(dict(k)) for k in b.keys() - a.keys())
    assert not only_native and not only_other, f"only with protobuf: {only_native}\nonly with {name}: {only_other}"
    diff = {dict(k)["__name__"]: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not diff, f"values differ (protobuf, {name}): {diff}"
    names = {dict(k)["__name__"] for k in b}
    assert "jobs_done" in names and "jobs_done_total" not in names, sorted(names)
    assert len(a) >= 30, sorted(names)

    g = {"job": "go_job", "instance": "go-1", "path": "/a/b"}
    classic = {
        frozenset(s["metric"].items()): s["value"][1]
        for s in proms[name].query('{__name__=~"gopush_native_seconds.*"}')
    }
    assert classic == {
        frozenset(dict(g, __name__="gopush_native_seconds_count").items()): "5",
        frozenset(dict(g, __name__="gopush_native_seconds_sum").items()): "5.5",
        frozenset(dict(g, __name__="gopush_native_seconds_bucket", le="+Inf").items()): "5",
    }, classic
