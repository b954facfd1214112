"""--web.systemd-socket under Debian's systemd-socket-activate, for the reference and ours: the
gateway serves the socket it is handed (LISTEN_FDS), and without one it stops with the reason."""

import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import GATEWAY_BIN, OURS_IS_REFERENCE, REFERENCE_BIN, _require, procnet

ACTIVATE = os.environ.get("SYSTEMD_SOCKET_ACTIVATE", "")


def binary(kind):
    if kind == "reference" or OURS_IS_REFERENCE:
        return _require(REFERENCE_BIN, "REFERENCE_BIN")
    return _require(GATEWAY_BIN, "GATEWAY_BIN")


class Activated:
    """systemd-socket-activate listening on a loopback port for `argv`, which it starts on the
    first connection. It cannot pick the port itself (no port 0), so it starts on a candidate
    port and is kept only once the listener there is its own (ci/lib/procnet.py)."""

    def __init__(self, argv):
        activate = _require(ACTIVATE, "SYSTEMD_SOCKET_ACTIVATE")
        self.log = tempfile.NamedTemporaryFile(prefix="activate-", suffix=".log", delete=False)

        def spawn(port):
            return subprocess.Popen([activate, "-l", f"127.0.0.1:{port}", *argv],
                                    stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def stop(proc):
            proc.kill()
            proc.wait(timeout=10)

        self.proc, self.port = procnet.start_on_candidate_port(spawn, stop, what="systemd-socket-activate")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log_text(self):
        return Path(self.log.name).read_text(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
        os.unlink(self.log.name)


@pytest.mark.parametrize("kind", ["reference", "ours"])
def test_serves_the_activated_socket(kind, tmp_path):
    address_file = tmp_path / "address"
    extra = [] if kind == "reference" or OURS_IS_REFERENCE else [f"--web.listen-address-file={address_file}"]
    # The listen address would be taken by nothing: only the activated socket is served.
    activated = Activated([binary(kind), "--web.systemd-socket", "--persistence.file=", "--web.listen-address=:1",
                           *extra])
    try:
        # The first connection starts the gateway, which then answers it.
        with urllib.request.urlopen(activated.url("/-/healthy"), timeout=10) as r:
            assert r.status == 200
        push = urllib.request.Request(activated.url("/metrics/job/activated"), data=b"m 1\n", method="PUT")
        with urllib.request.urlopen(push, timeout=10) as r:
            assert r.status in (200, 202)
        with urllib.request.urlopen(activated.url("/metrics"), timeout=10) as r:
            assert 'm{instance="",job="activated"} 1' in r.read().decode()
        with urllib.request.urlopen(activated.url("/api/v1/status"), timeout=10) as r:
            assert '"web.systemd-socket":"true"' in r.read().decode().replace(" ", "")
        if extra:
            assert address_file.read_text() == f"127.0.0.1:{activated.port}\n"
    finally:
        activated.close()


@pytest.mark.parametrize("kind", ["reference", "ours"])
def test_without_sockets_the_start_fails(kind):
    env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID")}
    proc = subprocess.run([binary(kind), "--web.systemd-socket", "--persistence.file="], env=env,
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert "no socket activation file descriptors found" in output, output
    # The 1.5.1 reference logs the error and exits 0; ours tells its supervisor.
    if kind == "ours" and not OURS_IS_REFERENCE:
        assert proc.returncode != 0, output
