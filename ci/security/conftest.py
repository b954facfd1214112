"""Fixtures of the security and limits tests (ci/suites/45-security.sh).

Every test starts its own gateway process(es) on 127.0.0.1 ports the kernel picks (port 0), with the web config
file and certificates it needs written into pytest's tmp_path.

Environment:
  GATEWAY_BIN  our binary (target/release/pushgateway), built by the suite script.
  OPENSSL      the openssl CLI (certificates are generated with it).
  CURL         the curl CLI.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import procnet  # noqa: E402

GATEWAY_BIN = os.environ.get("GATEWAY_BIN", "")
OPENSSL = os.environ.get("OPENSSL") or shutil.which("openssl") or "openssl"
CURL = os.environ.get("CURL") or shutil.which("curl") or "curl"

# Families the gateway exposes about itself; everything else in a scrape was pushed.
OWN_PREFIXES = ("process_", "pushgateway_", "go_")


def pushed_series(text):
    """The sample lines of a text scrape that come from pushes (push_time_seconds and
    push_failure_time_seconds included), sorted."""
    lines = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith(OWN_PREFIXES):
            continue
        lines.append(line)
    return sorted(lines)


class Gateway:
    """One gateway process. `session` is a requests.Session set up with the TLS and auth
    settings the gateway needs (verify/cert/auth), used for readiness and by the helpers."""

    def __init__(self, args, scheme="http", verify=None, cert=None, auth=None, ready=True):
        assert GATEWAY_BIN, "GATEWAY_BIN names the gateway binary (ci/suites/45-security.sh sets it)"
        self.scheme = scheme
        self.log = tempfile.NamedTemporaryFile(prefix="security-gw-", suffix=".log", delete=False)
        self.address_file = self.log.name + ".address"
        self.argv = [GATEWAY_BIN, *procnet.gateway_listen_args(self.address_file), *args]
        self.session = requests.Session()
        # Not the environment's proxies or REQUESTS_CA_BUNDLE (which would override verify).
        self.session.trust_env = False
        if verify is not None:
            self.session.verify = verify
        if cert is not None:
            self.session.cert = cert
        if auth is not None:
            self.session.auth = auth
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        try:
            self.port = procnet.wait_for_address_file(self.proc, self.address_file)[1]
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"gateway {self.argv}: {e}:\n{self.log_text()}") from None
        if ready:
            self.wait_ready()

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=procnet.START_TIMEOUT):
        """Until the gateway answers any HTTP response on /-/ready (401 counts: it is up)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway {self.argv} exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                # Without credentials: a 401 is an answer, and a password check (bcrypt) can
                # take longer than the probe's timeout on a busy machine. Connection: close, so
                # that the probe holds no connection slot afterwards.
                requests.get(self.url + "/-/ready", timeout=2, headers={"Connection": "close"},
                             verify=self.session.verify, cert=self.session.cert)
                return
            except requests.RequestException as e:
                last = e
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway {self.argv} not ready within {timeout}s ({last!r}):\n{self.log_text()}")

    def req(self, method, path, timeout=5, **kwargs):
        return self.session.request(method, self.url + path, timeout=timeout, **kwargs)

    def push(self, path, body, method="PUT", **kwargs):
        """PUT (or `method`) of a text body to /metrics/<path>."""
        if isinstance(body, str):
            body = body.encode()
        return self.req(method, "/metrics/" + path.lstrip("/"), data=body, **kwargs)

    def scrape(self):
        r = self.req("GET", "/metrics")
        assert r.status_code == 200, (r.status_code, r.text)
        return r.text

    def pushed(self):
        return pushed_series(self.scrape())

    def log_text(self):
        try:
            with open(self.log.name, "rb") as f:
                return f.read()[-8000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self):
        self.stop()
        self.session.close()
        self.log.close()
        for path in (self.log.name, self.address_file):
            try:
                os.unlink(path)
            except OSError:
                pass

    def __repr__(self):
        return f"<gateway {self.url}>"


@pytest.fixture
def gateway():
    """Factory: gateway(args, scheme=..., verify=..., cert=..., auth=...) -> Gateway; all are
    killed at the end of the test."""
    started = []

    def start(args=(), **kwargs):
        gw = Gateway(list(args), **kwargs)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.close()


def _openssl(*args, cwd):
    result = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"openssl {' '.join(args)} failed:\n{result.stderr}"


# Client certificates with a SAN each (see Certs): name -> openssl subjectAltName.
SAN_CLIENTS = {
    "allowed": "DNS:allowed.example",
    "intruder": "DNS:intruder.example",
    "email": "email:ops@example.org",
    "uri": "URI:spiffe://example.org/pusher",
    "ip": "IP:192.0.2.7",
}


class Certs:
    """Two CAs (ca, other_ca); server certificates for 127.0.0.1/localhost signed by ca
    (server) and by other_ca (other_server); a client certificate signed by ca (client) and
    one signed by other_ca (other_client). Attributes are paths."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca, self.ca_key = self._ca("ca", "Security Test CA")
        self.other_ca, self.other_ca_key = self._ca("other_ca", "Another CA")
        self.server, self.server_key = self._leaf(
            "server", "localhost", "ca",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self.other_server, self.other_server_key = self._leaf(
            "other_server", "localhost", "other_ca",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self.client, self.client_key = self._leaf(
            "client", "good-client", "ca", "extendedKeyUsage=clientAuth\n")
        self.other_client, self.other_client_key = self._leaf(
            "other_client", "foreign-client", "other_ca", "extendedKeyUsage=clientAuth\n")
        # Client certificates of ca with one subject alternative name each, for
        # client_allowed_sans: san_<name>.pem / .key.
        for name, san in SAN_CLIENTS.items():
            self._leaf(f"san_{name}", f"{name}-client", "ca",
                       f"subjectAltName={san}\nextendedKeyUsage=clientAuth\n")

    def _ca(self, name, cn):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return self.dir / f"{name}.pem", self.dir / f"{name}.key"

    def _leaf(self, name, cn, ca, extensions):
        ext = self.dir / f"{name}.ext"
        ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" + extensions)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                 "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
                 "-extfile", ext.name, "-out", f"{name}.pem", cwd=self.dir)
        return self.dir / f"{name}.pem", self.dir / f"{name}.key"


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def cert_dir(tmp_path, certs):
    """A copy of the certificates next to where the test writes its web config, so that the
    config can name them by relative paths (relative to the config file)."""
    for path in certs.dir.glob("*.pem"):
        shutil.copy(path, tmp_path / path.name)
    for path in certs.dir.glob("*.key"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def assert_refused_at_start(config, named):
    """Our gateway started with the web config file `config` must exit at once, naming the
    file and `named` in its output (a setting it cannot honour is never ignored)."""
    proc = subprocess.run([GATEWAY_BIN, "--web.listen-address=127.0.0.1:0", f"--web.config.file={config}"],
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert str(config) in output and named in output, output


def bcrypt_hash(password, rounds=10):
    import bcrypt
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def wait_until(predicate, timeout, interval=0.1):
    """Polls predicate() until it is truthy or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def exchange_on_one_connection(port, first_headers, first_body, pause=0.1, authorization=None):
    """Sends a request whose body follows its headers after `pause` seconds (as clients do
    for bodies of more than a packet), reads the response, then sends a second request
    (GET /-/healthy, with `authorization` if given) on the same connection.
    Returns (first response head, second response head or the error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(first_headers)
        time.sleep(pause)
        try:
            s.sendall(first_body)
        except OSError:
            pass
        first = b""
        while b"\r\n\r\n" not in first:
            chunk = s.recv(65536)
            if not chunk:
                break
            first += chunk
        time.sleep(0.2)
        try:
            auth = f"Authorization: {authorization}\r\n" if authorization else ""
            s.sendall(f"GET /-/healthy HTTP/1.1\r\nHost: gw\r\n{auth}\r\n".encode())
            second = s.recv(65536)
        except OSError as e:
            second = repr(e).encode()
    return first.decode("latin-1"), second.decode("latin-1")
