"""A real Prometheus (Debian's 2.42) scraping every replica as a ServiceMonitor does: one
target per pod, honor_labels, and target labels a push does not carry (the Operator adds
`pod`, `namespace`, `service`, `endpoint`; here `pod`). With --storage.redis.expose=leader
each pushed series is stored once; with expose=all it is stored once per replica."""

import os
import shutil
import subprocess
import tempfile

import pytest
import requests

from conftest import LEASE_TAKEOVER_SECONDS, procnet, wait_until

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "")


class Prometheus:
    def __init__(self, targets):
        assert PROMETHEUS_BIN, "PROMETHEUS_BIN names Debian's prometheus (ci/suites/47-replication.sh sets it)"
        self.dir = tempfile.mkdtemp(prefix="replication-prom-")
        config = os.path.join(self.dir, "prometheus.yml")
        per_pod = "".join(f"      - targets: ['127.0.0.1:{t.port}']\n        labels: {{pod: replica-{i}}}\n"
                          for i, t in enumerate(targets))
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n"
                    f"    static_configs:\n{per_pod}")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS_BIN, f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
             "--web.listen-address=127.0.0.1:0", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = procnet.wait_for_listen_port(self.proc, what="prometheus")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._ready, procnet.START_TIMEOUT, "prometheus ready")

    def _ready(self):
        try:
            return requests.get(self.url + "/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def count(self, selector):
        """How many series match `selector` now."""
        r = requests.get(self.url + "/api/v1/query", params={"query": f"count({selector}) or vector(0)"}, timeout=10)
        body = r.json()
        assert body["status"] == "success", body
        return int(float(body["data"]["result"][0]["value"][1]))

    def scrapes(self):
        """How many scrapes the least-scraped target has had so far."""
        r = requests.get(self.url + "/api/v1/query", params={"query": "min(count_over_time(up[1h])) or vector(0)"},
                         timeout=10)
        body = r.json()
        assert body["status"] == "success", body
        return int(float(body["data"]["result"][0]["value"][1]))

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def prometheus():
    started = []

    def start(targets):
        server = Prometheus(targets)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.mark.parametrize("expose, copies", [("leader", 1), ("all", 2)])
def test_prometheus_stores_each_pushed_series_once_with_leader_exposure(redis, replicas, prometheus, expose, copies):
    group = replicas(redis, 2, extra_args=[f"--storage.redis.expose={expose}"])
    assert group[0].push("job/nightly", "# TYPE backup_bytes gauge\nbackup_bytes 42\n").status_code == 200
    prom = prometheus(group)
    wait_until(lambda: prom.count("pushgateway_build_info") == 2, 60, "both replicas scraped")
    wait_until(lambda: prom.count("backup_bytes") > 0, 60, "the pushed series ingested")
    seen = prom.scrapes()
    wait_until(lambda: prom.scrapes() >= seen + 3, 60, "three more scrapes of both replicas")
    assert prom.count("backup_bytes") == copies
    assert prom.count('push_time_seconds{job="nightly"}') == copies


def test_pushed_series_continue_from_the_next_leader(redis, replicas, prometheus):
    group = replicas(redis, 2, extra_args=["--storage.redis.expose=leader"])
    assert group[1].push("job/nightly", "backup_bytes 42\n").status_code == 200
    prom = prometheus(group)
    wait_until(lambda: prom.count("backup_bytes") == 1, 60, "the pushed series ingested once")
    leader = next(r for r in group if "backup_bytes" in r.scrape())
    leader.kill()
    # The old leader's series goes stale; the successor's takes over, still one at a time.
    old_pod = f"replica-{group.index(leader)}"
    assert prom.count(f'backup_bytes{{pod="{old_pod}"}}') == 1
    wait_until(lambda: prom.count(f'up{{pod="{old_pod}"}} == 0') == 1, 60, "the old leader is down")
    wait_until(lambda: prom.count("backup_bytes") == 1 and prom.count(f'backup_bytes{{pod="{old_pod}"}}') == 0,
               LEASE_TAKEOVER_SECONDS + 30, "the successor serves the series")
