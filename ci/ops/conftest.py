"""Fixtures of the ops tests: a local gateway, and make runs with or without a stub kubectl."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import procnet  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MAKEFILE = REPO / "make" / "ops" / "pushgateway.mk"
STUB_DIR = Path(__file__).parent / "stub"


class Gateway:
    """Our gateway on a loopback port it picks itself (port 0, read back from
    --web.listen-address-file); `prefix` is its route prefix, `extra` further flags."""

    def __init__(self, binary, prefix="", extra=(), scheme="http"):
        self.prefix = prefix
        # The test certificates are self-signed; readiness only needs an answer.
        context = ssl._create_unverified_context() if scheme == "https" else None
        self.dir = tempfile.mkdtemp(prefix="ops-gw-")
        address_file = Path(self.dir) / "address"
        args = [binary, "--web.listen-address=127.0.0.1:0", f"--web.listen-address-file={address_file}",
                "--persistence.file=", *extra]
        if prefix:
            args.append(f"--web.route-prefix={prefix}")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + procnet.START_TIMEOUT
        while True:
            try:
                self.port = int(address_file.read_text().strip().rsplit(":", 1)[1])
                self.url = f"{scheme}://127.0.0.1:{self.port}"
                urllib.request.urlopen(self.url + prefix + "/-/ready", timeout=5, context=context).read()
                return
            except (OSError, ValueError, IndexError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{binary} did not come up: {self.proc.stderr.read().decode()}")
                time.sleep(0.05)

    def push(self, path, body):
        req = urllib.request.Request(self.url + self.prefix + "/metrics/" + path, data=body.encode(), method="PUT")
        urllib.request.urlopen(req, timeout=5).read()

    def scrape(self):
        return urllib.request.urlopen(self.url + self.prefix + "/metrics", timeout=5).read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def gateway():
    """Our gateway (GATEWAY_BIN, built by ci/suites/61-ops.sh), listening on a loopback port the kernel picks."""
    binary = os.environ.get("GATEWAY_BIN")
    assert binary, "GATEWAY_BIN names the gateway binary (ci/suites/61-ops.sh sets it)"
    gw = Gateway(binary)
    yield gw
    gw.stop()


@pytest.fixture
def start_gateway():
    """Factory: start_gateway(prefix="", extra=()) -> Gateway; all are stopped after the test."""
    binary = os.environ.get("GATEWAY_BIN")
    assert binary, "GATEWAY_BIN names the gateway binary (ci/suites/61-ops.sh sets it)"
    started = []

    def start(prefix="", extra=(), scheme="http"):
        started.append(Gateway(binary, prefix, extra, scheme))
        return started[-1]

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def make(tmp_path):
    """Runs `make -f make/ops/pushgateway.mk` with a stub kubectl first on PATH; returns
    (CompletedProcess, list of the stub's recorded calls)."""
    log = tmp_path / "kubectl.log"

    def run(*args, env=None, stub=True, timeout=60):
        full_env = dict(os.environ)
        full_env.pop("MAKEFLAGS", None)
        full_env["STUB_LOG"] = str(log)
        if stub:
            full_env["PATH"] = f"{STUB_DIR}{os.pathsep}{full_env['PATH']}"
        full_env.update(env or {})
        proc = subprocess.run(["make", "--no-print-directory", "-f", str(MAKEFILE), *args],
                              capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO)
        calls = log.read_text().splitlines() if log.exists() else []
        return proc, calls

    run.log = log
    return run
