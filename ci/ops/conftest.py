"""Fixtures of the ops tests: a local gateway, and make runs with or without a stub kubectl."""

import os
import shutil
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
    """Our gateway on a loopback port the kernel picks (port 0, read back from
    --web.listen-address-file)."""

    def __init__(self, binary):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="ops-gateway-")
        address_file = os.path.join(self.dir, "address")
        self.proc = subprocess.Popen(
            [binary, *procnet.gateway_listen_args(address_file), "--persistence.file="],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.port = procnet.wait_for_address_file(self.proc, address_file)[1]
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{binary} did not come up: {e}: {self.proc.stderr.read().decode()}") from None
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + procnet.START_TIMEOUT
        while True:
            try:
                urllib.request.urlopen(self.url + "/-/ready", timeout=5).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{binary} did not come up: {self.proc.stderr.read().decode()}")
                time.sleep(0.05)

    def push(self, path, body):
        req = urllib.request.Request(self.url + "/metrics/" + path, data=body.encode(), method="PUT")
        urllib.request.urlopen(req, timeout=5).read()

    def scrape(self):
        return urllib.request.urlopen(self.url + "/metrics", timeout=5).read().decode()

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
