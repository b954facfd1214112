"""Processes the chart tests start on this machine: a redis-server on a free 127.0.0.1 port
(in-memory: --save '' --appendonly no, files in a temporary directory) and our gateway
(GATEWAY_BIN, built by ci/suites/60-chart.sh). Every process is stopped by its owner.

Environment:
  GATEWAY_BIN   our binary (target/release/pushgateway).
  REDIS_SERVER  the redis-server binary (Debian redis-server, installed by the suite).
"""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

GATEWAY_BIN = os.environ.get("GATEWAY_BIN")
REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout, what):
    """Polls condition() until it returns something true; fails with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached within {timeout}s (last: {last!r})")


def stop(proc, timeout=10):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Redis:
    """A redis-server on a free loopback port, without persistence, optionally with requirepass."""

    def __init__(self, directory, password=None):
        assert REDIS_SERVER and os.path.exists(REDIS_SERVER), (
            "redis-server not found (ci/suites/60-chart.sh installs it and sets REDIS_SERVER)")
        self.port = free_port()
        self.password = password
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory),
                "--save", "", "--appendonly", "no", "--protected-mode", "no"]
        if password:
            args += ["--requirepass", password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._answers, 10, f"redis-server on port {self.port}")

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited: " + self.proc.stderr.read().decode())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
            # With requirepass an unauthenticated PING is refused: proof that the password is on.
            return reply.startswith(b"-NOAUTH") if self.password else reply.startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        stop(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Gateway:
    """Our gateway started with the given flags (the listen address included) and environment."""

    def __init__(self, args, port, env=None):
        assert GATEWAY_BIN, "GATEWAY_BIN names the gateway binary (ci/suites/60-chart.sh sets it)"
        self.args = list(args)
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([GATEWAY_BIN, *self.args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env={**os.environ, **(env or {})})

    def request(self, method, path, body=None):
        """(status, body text) of one request; HTTP errors are answers, not exceptions."""
        req = urllib.request.Request(self.base + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def status(self, path):
        if self.proc.poll() is not None:
            raise AssertionError(f"the gateway exited ({' '.join(self.args)}): {self.proc.stderr.read().decode()}")
        try:
            return self.request("GET", path)[0]
        except OSError:
            return None

    def wait_ready(self, timeout=30):
        wait_until(lambda: self.status("/-/ready") == 200, timeout, f"{self.base}/-/ready answering 200")
        return self

    def scrape(self):
        status, text = self.request("GET", "/metrics")
        assert status == 200, (status, text)
        return text

    def api_metrics(self):
        status, text = self.request("GET", "/api/v1/metrics")
        assert status == 200, (status, text)
        return json.loads(text)["data"]

    def stop(self):
        stop(self.proc)
