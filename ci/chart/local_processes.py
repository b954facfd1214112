"""Processes the chart tests start on this machine: a redis-server on a 127.0.0.1 port checked to be its own
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
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import procnet  # noqa: E402

GATEWAY_BIN = os.environ.get("GATEWAY_BIN")
REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")


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
    """A redis-server on a loopback port, without persistence, optionally with requirepass.

    redis-server cannot listen on port 0: it starts on a candidate port and is kept only when
    the listener there is its own (ci/lib/procnet.py)."""

    def __init__(self, directory, password=None):
        assert REDIS_SERVER and os.path.exists(REDIS_SERVER), (
            "redis-server not found (ci/suites/60-chart.sh installs it and sets REDIS_SERVER)")
        self.password = password

        def spawn(port):
            args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
                    "--save", "", "--appendonly", "no", "--protected-mode", "no"]
            if password:
                args += ["--requirepass", password]
            return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        self.proc, self.port = procnet.start_on_candidate_port(spawn, stop, what="redis-server")
        wait_until(self._answers, procnet.START_TIMEOUT, f"redis-server on port {self.port}")

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
    """Our gateway started with the given flags and environment, on a loopback port the kernel
    picks (port 0, read back from --web.listen-address-file); `args` carry no listen address."""

    def __init__(self, args, env=None):
        assert GATEWAY_BIN, "GATEWAY_BIN names the gateway binary (ci/suites/60-chart.sh sets it)"
        assert not any(a.startswith("--web.listen-address") for a in args), args
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix="chart-gateway-")
        address_file = os.path.join(self.dir, "address")
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+b")
        self.proc = subprocess.Popen([GATEWAY_BIN, *procnet.gateway_listen_args(address_file), *self.args],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     env={**os.environ, **(env or {})})
        try:
            host, port = procnet.wait_for_address_file(self.proc, address_file)
        except RuntimeError as e:
            self.stop()
            raise AssertionError(f"{e} ({' '.join(self.args)}): {self.stderr_text()}") from None
        self.base = f"http://{host}:{port}"

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

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
            raise AssertionError(f"the gateway exited ({' '.join(self.args)}): {self.stderr_text()}")
        try:
            return self.request("GET", path)[0]
        except OSError:
            return None

    def wait_ready(self, timeout=procnet.START_TIMEOUT):
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
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
