"""Fixtures of the replication tests (ci/suites/47-replication.sh): a real redis-server on
a 127.0.0.1 port checked to be its own, with its append-only file in pytest's tmp_path, and gateway replicas
started with --storage=redis against it.

Environment:
  GATEWAY_BIN   our binary (target/release/pushgateway), built by the suite script.
  REDIS_SERVER  the redis-server binary (Debian redis-server).
  REDIS_CLI     the redis-cli binary.
  REDIS_SENTINEL the redis-sentinel binary (Debian redis-sentinel).
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import procnet  # noqa: E402

GATEWAY_BIN = os.environ.get("GATEWAY_BIN", "")
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
REDIS_CLI = os.environ.get("REDIS_CLI", "redis-cli")
REDIS_SENTINEL = os.environ.get("REDIS_SENTINEL", "redis-sentinel")

# Families the gateway exposes about itself; everything else in a scrape was pushed.
OWN_PREFIXES = ("process_", "pushgateway_", "go_")
# How long a dead leader's lease lasts (LEASE_TTL in gateway/src/replicate/mod.rs) plus slack.
LEASE_TAKEOVER_SECONDS = 20


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached within {timeout}s (last: {last!r})")


def pushed_text(scrape):
    """The pushed families of a text scrape (HELP, TYPE and sample lines), in scrape order:
    everything but the gateway's own metrics."""
    kept = []
    for line in scrape.splitlines():
        name = line.split(" ")[2] if line.startswith("# ") else re.split(r"[{ ]", line, 1)[0]
        if not name.startswith(OWN_PREFIXES):
            kept.append(line)
    return "\n".join(kept)


def metric_value(scrape, name):
    for line in scrape.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return None


class Redis:
    """A redis-server with `appendfsync always`, restartable on the same port and files.

    redis-server cannot listen on port 0, so it starts on a candidate port and is kept only when
    the listener there is its own (ci/lib/procnet.py)."""

    def __init__(self, directory, password=None, extra_args=()):
        self.dir = directory
        self.port = None
        self.password = password
        self.extra_args = list(extra_args)
        self.proc = None
        self.start()

    def _spawn(self, port):
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--protected-mode", "no"]
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        args += self.extra_args
        return subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @staticmethod
    def _stop(proc):
        proc.kill()
        proc.wait(timeout=10)

    def start(self):
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        if self.port is None:
            self.proc, self.port = procnet.start_on_candidate_port(self._spawn, self._stop, what="redis-server")
        else:  # the replicas know this port
            self.proc = procnet.restart_on_port(self._spawn, self._stop, self.port, what="redis-server")
        wait_until(lambda: self.cli("PING") == "PONG", procnet.START_TIMEOUT, "redis-server answers PING")

    def cli(self, *args):
        command = [REDIS_CLI, "-p", str(self.port), "--no-auth-warning"]
        if self.password:
            command += ["-a", self.password]
        result = subprocess.run(command + list(args), capture_output=True, text=True, timeout=10)
        return result.stdout.strip()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()

    def head(self):
        value = self.cli("GET", "{pushgateway}:seq")
        return int(value) if value else 0


class Replica:
    """One gateway replica on a port the kernel picks (port 0; a new one at each start)."""

    def __init__(self, redis, extra_args=(), env=None, wait=True):
        assert GATEWAY_BIN, "GATEWAY_BIN names the gateway binary (ci/suites/47-replication.sh sets it)"
        self.redis = redis
        self.port = None
        self.extra_args = list(extra_args)
        self.env = env
        self.session = requests.Session()
        self.session.trust_env = False
        self.log = tempfile.NamedTemporaryFile(prefix="replica-", suffix=".log", delete=False)
        self.address_file = self.log.name + ".address"
        self.proc = None
        self.start(wait)

    def start(self, wait=True):
        """Starts the process; returns once it listens (and, with `wait`, once it is ready)."""
        # A Sentinel setup names its own arguments instead of one URL.
        target = getattr(self.redis, "gateway_args", lambda: [f"--storage.redis.url={self.redis.url}"])()
        argv = [GATEWAY_BIN, *procnet.gateway_listen_args(self.address_file), "--storage=redis",
                *target, "--web.enable-admin-api", *self.extra_args]
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        try:
            self.port = procnet.wait_for_address_file(self.proc, self.address_file, what="replica")[1]
        except RuntimeError as e:
            raise AssertionError(f"{e}:\n{self.log_text()}") from None
        if wait:
            self.wait_ready()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def ready_status(self):
        try:
            return self.session.get(self.url + "/-/ready", timeout=2).status_code
        except requests.RequestException:
            return None

    def wait_ready(self, timeout=procnet.START_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"replica exited with {self.proc.returncode}:\n{self.log_text()}")
            return self.ready_status() == 200
        wait_until(ready, timeout, f"replica {self.url} ready")

    def req(self, method, path, timeout=10, **kwargs):
        return self.session.request(method, self.url + path, timeout=timeout, **kwargs)

    def push(self, path, body, method="PUT"):
        return self.req(method, "/metrics/" + path.lstrip("/"), data=body.encode())

    def scrape(self):
        r = self.req("GET", "/metrics")
        assert r.status_code == 200, (r.status_code, r.text)
        return r.text

    def pushed(self):
        return pushed_text(self.scrape())

    def applied(self):
        return metric_value(self.scrape(), "pushgateway_replication_applied_position")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_text(self):
        with open(self.log.name, "rb") as f:
            return f.read()[-6000:].decode("utf-8", "replace")

    def close(self):
        self.kill()
        self.session.close()
        self.log.close()
        for path in (self.log.name, self.address_file):
            try:
                os.unlink(path)
            except OSError:
                pass


def converged(replicas, redis):
    """Waits until every live replica applied the whole stream; returns their pushed text."""
    def all_applied():
        head = redis.head()
        return all(r.applied() == head for r in replicas)
    wait_until(all_applied, 60, "every replica applied the whole stream")
    texts = [r.pushed() for r in replicas]
    for replica, text in zip(replicas[1:], texts[1:]):
        assert text == texts[0], f"{replica.url} serves other pushed metrics than {replicas[0].url}"
    return texts[0]


class Sentinels:
    """A primary with two replicas and three Sentinels (quorum 2) on loopback, every node
    with its append-only file; the gateways find the primary through the Sentinels only."""

    MASTER = "pgw"

    def __init__(self, directory):
        self.frozen = set()
        self.nodes = []
        for i in range(3):
            node_dir = directory / f"redis{i}"
            node_dir.mkdir()
            extra = ["--repl-diskless-sync-delay", "0"]
            if i > 0:
                extra += ["--replicaof", "127.0.0.1", str(self.nodes[0].port)]
            self.nodes.append(Redis(node_dir, extra_args=extra))
        wait_until(lambda: self.nodes[0].cli("INFO", "replication").count("state=online") == 2, 30,
                   "both replicas are in sync with the primary")
        self.sentinels = []
        for i in range(3):
            sentinel_dir = directory / f"sentinel{i}"
            sentinel_dir.mkdir()
            config = sentinel_dir / "sentinel.conf"
            log = open(sentinel_dir / "sentinel.log", "ab")

            def spawn(port, config=config, sentinel_dir=sentinel_dir, log=log):
                config.write_text(
                    f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {sentinel_dir}\n"
                    f"sentinel monitor {self.MASTER} 127.0.0.1 {self.nodes[0].port} 2\n"
                    f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                    f"sentinel failover-timeout {self.MASTER} 5000\n")
                return subprocess.Popen([REDIS_SENTINEL, str(config)], stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)

            # Like redis-server, a Sentinel cannot listen on port 0 (procnet keeps one whose
            # listener is its own).
            proc, port = procnet.start_on_candidate_port(spawn, Redis._stop, what="redis-sentinel")
            self.sentinels.append((port, proc, log))
        wait_until(lambda: all(self.sentinel_cli(i, "SENTINEL", "replicas", self.MASTER).count("slave") >= 2
                               and "num-other-sentinels\n2" in self.sentinel_cli(i, "SENTINEL", "master", self.MASTER)
                               for i in range(3)),
                   30, "every Sentinel knows both replicas and the other Sentinels")

    def sentinel_cli(self, index, *args):
        command = [REDIS_CLI, "-p", str(self.sentinels[index][0])] + list(args)
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()

    def gateway_args(self):
        addresses = ",".join(f"127.0.0.1:{port}" for port, _, _ in self.sentinels)
        return [f"--storage.redis.sentinels={addresses}", f"--storage.redis.sentinel-master={self.MASTER}"]

    def freeze(self, node):
        """Stops a node (SIGSTOP): it misses writes without its connections closing."""
        self.frozen.add(node)
        node.proc.send_signal(signal.SIGSTOP)

    def thaw(self, node):
        node.proc.send_signal(signal.SIGCONT)
        self.frozen.discard(node)

    def primary(self):
        """The node that says it is the primary (None during a failover)."""
        for node in self.nodes:
            if node in self.frozen:
                continue
            if node.proc.poll() is None and node.cli("ROLE").startswith("master"):
                return node
        return None

    def head(self):
        primary = wait_until(self.primary, 30, "a primary")
        return primary.head()

    def close(self):
        for _, proc, log in self.sentinels:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
            log.close()
        for node in self.nodes:
            if node.proc.poll() is None:
                self.thaw(node)
            node.kill()


@pytest.fixture
def sentinels(tmp_path):
    setup = Sentinels(tmp_path)
    yield setup
    setup.close()


@pytest.fixture
def redis(tmp_path):
    server = Redis(tmp_path)
    yield server
    server.kill()


@pytest.fixture
def replicas():
    """Factory: replicas(redis, count, extra_args=(), env=None) -> [Replica]; all killed at
    the end of the test."""
    started = []

    def start(redis, count=1, extra_args=(), env=None, wait=True):
        new = [Replica(redis, extra_args, env, wait) for _ in range(count)]
        started.extend(new)
        return new

    yield start
    for replica in started:
        replica.close()
