"""Fixtures for the real-client and real-Prometheus tests (ci/suites/40-clients.sh).

Every process runs on a 127.0.0.1 port the kernel picks (port 0, ci/lib/procnet.py) and is
killed at the end; nothing here talks to any other address.

Environment (set by ci/suites/40-clients.sh):
  GATEWAY_BIN      our binary (target/release/pushgateway).
  REFERENCE_BIN    upstream pushgateway (Debian prometheus-pushgateway 1.5.1), for comparisons;
                   always started with --persistence.file=.
  GO_PUSHER        the Go pusher built from ci/clients/go/pusher.go (client_golang's push package).
  NODE_BIN         node; NODE_PATH points at the prom-client install in .cache/npm.
  PROMETHEUS_BIN   a real Prometheus server (Debian prometheus).
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import procnet  # noqa: E402

GATEWAY_BIN = os.environ.get("GATEWAY_BIN", "")
REFERENCE_BIN = os.environ.get("REFERENCE_BIN", "")
GO_PUSHER = os.environ.get("GO_PUSHER", "")
NODE_BIN = os.environ.get("NODE_BIN", "node")
PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_SCRIPT = os.path.join(HERE, "node", "push.js")

# The gateway's own metrics, left out when comparing what was pushed.
SELF_PREFIXES = ("go_", "process_", "pushgateway_", "promhttp_", "http_")


def wait_http(url, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready")
        try:
            r = requests.get(url, timeout=1)
            if r.status_code == 200:
                return
            last = f"status {r.status_code}"
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready at {url} after {timeout}s: {last}")


class Process:
    """A server process on a loopback port the kernel picked (port 0), its output in a temp log
    file. The port is read from `address_file` (our gateway) or found in /proc (any other)."""

    def __init__(self, name, argv, ready_path, address_file=None, timeout=procnet.START_TIMEOUT):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"clients-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            if address_file:
                self.port = procnet.wait_for_address_file(self.proc, address_file, timeout, name)[1]
            else:
                self.port = procnet.wait_for_listen_port(self.proc, timeout, name)
            wait_http(self.url + ready_path, self.proc, name, timeout)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{name} did not start: {e}\n{self.log_text()}") from None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log_text(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_gateway(binary, name, is_reference=False, extra=()):
    assert binary, f"{name}: binary not set (run through ci/suites/40-clients.sh)"
    if is_reference:
        return Process(
            name, [binary, "--web.listen-address=127.0.0.1:0", "--persistence.file=", *extra], "/-/ready"
        )
    address_file = os.path.join(tempfile.mkdtemp(prefix=f"clients-{name}-"), "address")
    return Process(name, [binary, *procnet.gateway_listen_args(address_file), *extra], "/-/ready", address_file)


@pytest.fixture
def gateway():
    g = start_gateway(GATEWAY_BIN, "ours")
    yield g
    g.stop()


@pytest.fixture
def reference():
    if not REFERENCE_BIN:
        pytest.fail("REFERENCE_BIN not set (run through ci/suites/40-clients.sh)")
    g = start_gateway(REFERENCE_BIN, "reference", is_reference=True)
    yield g
    g.stop()


def run_client(argv, expect_ok=True, timeout=60):
    """Runs a client program; fails the test (with its output) unless it exits as expected."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if expect_ok and p.returncode != 0:
        pytest.fail(
            f"client failed: {' '.join(argv)}\nexit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        )
    if not expect_ok and p.returncode == 0:
        pytest.fail(f"client succeeded but an error was expected: {' '.join(argv)}\nstdout: {p.stdout}")
    return p


def go_pusher(*args, expect_ok=True):
    assert GO_PUSHER, "GO_PUSHER not set (run through ci/suites/40-clients.sh)"
    return run_client([GO_PUSHER, *args], expect_ok=expect_ok)


def node_push(*args, expect_ok=True):
    return run_client([NODE_BIN, NODE_SCRIPT, *args], expect_ok=expect_ok)


def go_scrape_protobuf(url):
    """Scrapes url with the Go client's decoder (delimited protobuf asked for first).

    Returns (content_type, {family name: MetricFamily as protobuf JSON})."""
    out = go_pusher("scrape", "-url", url).stdout.splitlines()
    head = json.loads(out[0])
    families = {}
    for line in out[1:]:
        mf = json.loads(line)
        families[mf["name"]] = mf
    return head["content_type"], families


# --- text exposition ----------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}.get(m.group(1), "\\" + m.group(1)), v)


def parse_text(body):
    """Parses text 0.0.4 into {(name, frozenset(labels.items())): float value} plus TYPE lines."""
    samples = {}
    types = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = _SAMPLE.match(line)
        assert m, f"unparsable sample line: {line!r}"
        name, _, labels_s, value = m.group(1), m.group(2), m.group(3) or "", m.group(4)
        labels = {}
        pos = 0
        while pos < len(labels_s):
            lm = _LABEL.match(labels_s, pos)
            assert lm, f"unparsable labels in {line!r}"
            labels[lm.group(1)] = _unescape(lm.group(2))
            pos = lm.end()
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(value)
    return samples, types


def scrape_text(gw):
    r = requests.get(gw.url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
    return parse_text(r.text)


def pushed(samples, **match):
    """The samples that are not the gateway's own and whose labels include `match`."""
    out = {}
    for (name, labels), value in samples.items():
        if name.startswith(SELF_PREFIXES):
            continue
        d = dict(labels)
        if all(d.get(k) == v for k, v in match.items()):
            out[(name, labels)] = value
    return out


def key(name, **labels):
    return (name, frozenset(labels.items()))
