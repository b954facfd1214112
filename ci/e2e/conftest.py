"""Fixtures for the black-box end-to-end tests.

Each test gets fresh gateway processes (an empty store), each on a 127.0.0.1 port the kernel picks
(port 0; see ci/lib/procnet.py).

Environment:
  REFERENCE_BIN         upstream pushgateway binary (Debian prometheus-pushgateway); always started
                        with --persistence.file= because Debian's build defaults it to a shared file.
  GATEWAY_BIN           our binary (target/release/pushgateway).
  PROMTOOL              promtool binary (for `promtool check metrics`).
  E2E_OURS_IS_REFERENCE=1  the "ours" fixture starts the reference binary instead, so the whole suite can
                        run reference-vs-reference (tests of our deliberate differences and of v1.11-only
                        features are then skipped).
"""

import http.client
import os
import subprocess
import sys
import tempfile
import time
import posixpath
import urllib.parse

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import procnet  # noqa: E402

REFERENCE_BIN = os.environ.get("REFERENCE_BIN", "")
GATEWAY_BIN = os.environ.get("GATEWAY_BIN", "")
PROMTOOL = os.environ.get("PROMTOOL", "")
OURS_IS_REFERENCE = os.environ.get("E2E_OURS_IS_REFERENCE", "") not in ("", "0")

# Use as a decorator on tests that assert behaviour of ours that the v1.5.1 reference does not have
# (v1.11 features, deliberate differences): they cannot pass when "ours" is the reference.
ours_only = pytest.mark.skipif(
    OURS_IS_REFERENCE, reason="asserts our own behaviour; E2E_OURS_IS_REFERENCE=1 runs the reference as ours"
)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


class Gateway:
    """One running gateway process, spoken to over plain HTTP/1.1 with exact bytes."""

    def __init__(self, label, binary, args, is_reference):
        self.label = label
        self.binary = binary
        self.is_reference = is_reference
        self.port = None
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix=f"e2e-{label}-", suffix=".log", delete=False)
        # Where the routes are, as upstream computes them from the flags.
        flags = dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)
        prefix = flags.get("--web.route-prefix", "")
        if not prefix and flags.get("--web.external-url"):
            prefix = urllib.parse.urlparse(flags["--web.external-url"]).path
        self.prefix = prefix.rstrip("/")
        self.metrics_path = posixpath.join("/" + self.prefix.strip("/"), flags.get("--web.telemetry-path", "/metrics").lstrip("/"))
        self._start(list(args))

    def _start(self, extra):
        # Port 0: the kernel picks a free port, read back from our address file, or from /proc
        # for the reference (which has no such flag).
        address_file = self.log.name + ".address"
        argv = [self.binary]
        if self.is_reference:
            argv.append("--web.listen-address=127.0.0.1:0")
            if not any(a.startswith("--persistence.file") for a in extra):
                argv.append("--persistence.file=")  # Debian's default is a shared system file
        else:
            argv += procnet.gateway_listen_args(address_file)
        argv += extra
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            if self.is_reference:
                self.port = procnet.wait_for_listen_port(self.proc, what=f"{self.label} gateway")
            else:
                self.port = procnet.wait_for_address_file(self.proc, address_file, what=f"{self.label} gateway")[1]
            deadline = time.monotonic() + procnet.START_TIMEOUT
            last_error = None
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"exited with {self.proc.returncode}")
                try:
                    if self.request("GET", self.prefix + "/-/ready", timeout=5).status == 200:
                        return
                except OSError as e:
                    last_error = repr(e)
                time.sleep(0.02)
            raise RuntimeError(f"not ready within {procnet.START_TIMEOUT} s ({last_error})")
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{self.label} gateway {argv} did not start: {e}\n{self.log_text()}") from None
        finally:
            try:
                os.unlink(address_file)
            except OSError:
                pass

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def request(self, method, path, headers=None, body=None, timeout=10):
        """Sends exactly `path` and `body` (bytes, or a list of chunks); returns a Response."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if isinstance(body, list):  # a list of chunks: sent with Transfer-Encoding: chunked
            body = iter(body)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, dict(resp.getheaders()), data)
        finally:
            conn.close()

    def metrics(self, headers=None):
        """GET of the scrape endpoint (/metrics, or where --web.route-prefix/--web.telemetry-path put it)."""
        return self.request("GET", self.metrics_path, headers=headers)

    def log_text(self):
        try:
            with open(self.log.name, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self):
        self.stop()
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def __repr__(self):
        return f"<{self.label} gateway on {self.address}>"


def _require(path, var):
    if not path:
        pytest.fail(f"{var} is not set (run the layer through ci/suites/30-e2e.sh)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{var}={path} is not an executable")
    return path


@pytest.fixture
def start_gateway():
    """Factory: start_gateway("reference" | "ours", *extra_flags) -> a running Gateway."""
    started = []

    def start(kind, *extra):
        if kind == "reference" or (kind == "ours" and OURS_IS_REFERENCE):
            gw = Gateway(kind, _require(REFERENCE_BIN, "REFERENCE_BIN"), extra, is_reference=True)
        elif kind == "ours":
            gw = Gateway(kind, _require(GATEWAY_BIN, "GATEWAY_BIN"), extra, is_reference=False)
        else:
            raise ValueError(kind)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.close()


@pytest.fixture
def reference(start_gateway):
    return start_gateway("reference")


@pytest.fixture
def ours(start_gateway):
    return start_gateway("ours")


@pytest.fixture
def promtool():
    return _require(PROMTOOL, "PROMTOOL")
