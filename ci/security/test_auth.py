"""basic_auth_users, reloads of --web.config.file, and http_server_config.headers."""

import base64
import collections
import json
import os
import subprocess
import threading
import time

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.exposition import basic_auth_handler

from conftest import GATEWAY_BIN, bcrypt_hash, exchange_on_one_connection, wait_until

USER, PASSWORD = "alice", "correct horse"


def write_users(path, users, extra=""):
    """Writes a web config with `users` ({name: password}) as bcrypt hashes."""
    text = "basic_auth_users:\n" + "".join(f"  {name}: {json.dumps(bcrypt_hash(pw))}\n" for name, pw in users.items())
    path.write_text(text + extra)
    return path


@pytest.fixture
def auth_gateway(gateway, tmp_path):
    config = write_users(tmp_path / "web.yml", {USER: PASSWORD, "bob": "builder", "ünï": "pass:with:colons"})
    return gateway([f"--web.config.file={config}", "--web.enable-admin-api", "--web.enable-lifecycle"],
                   auth=(USER, PASSWORD))


# Every kind of endpoint, with the status a successful request gets.
ENDPOINTS = [
    ("PUT", "/metrics/job/auth/instance/a", b"auth_pushed 1\n", 200),
    ("POST", "/metrics/job/auth/instance/b", b"auth_pushed 2\n", 200),
    ("DELETE", "/metrics/job/auth/instance/b", None, 202),
    ("GET", "/metrics", None, 200),
    ("GET", "/-/healthy", None, 200),
    ("GET", "/-/ready", None, 200),
    ("GET", "/api/v1/status", None, 200),
    ("GET", "/api/v1/metrics", None, 200),
    ("GET", "/", None, 200),
    ("GET", "/static/nonexistent.css", None, None),  # whatever it is, only with credentials
    ("GET", "/no/such/page", None, 404),
]


def fresh_request(method, url, **kwargs):
    """One request on a connection of its own."""
    with requests.Session() as session:
        session.trust_env = False
        return session.request(method, url, timeout=5, **kwargs)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BAD_CREDENTIALS = {
    "missing": None,
    "wrong password": basic(USER, "wrong"),
    "password prefix": basic(USER, PASSWORD[:-1]),
    "unknown user": basic("mallory", PASSWORD),
    "other user's password": basic("bob", PASSWORD),
    "empty": basic("", ""),
    "bearer scheme": "Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    "not base64": "Basic !!!notbase64!!!",
    "no colon": "Basic " + base64.b64encode(USER.encode()).decode(),
}


def test_right_credentials_reach_every_endpoint(auth_gateway):
    for method, path, body, expected in ENDPOINTS:
        r = auth_gateway.req(method, path, data=body)
        if expected is not None:
            assert r.status_code == expected, (method, path, r.status_code, r.text[:300])
        else:
            assert r.status_code != 401, (method, path, r.status_code)
    assert 'auth_pushed{instance="a",job="auth"} 1' in auth_gateway.scrape()
    # Another configured user has their own password.
    r = fresh_request("GET", auth_gateway.url + "/-/healthy", auth=("bob", "builder"))
    assert r.status_code == 200
    # A password with colons (only the first colon separates the user) and a non-ASCII user.
    r = fresh_request("GET", auth_gateway.url + "/-/healthy", headers={"Authorization": basic("ünï", "pass:with:colons")})
    assert r.status_code == 200
    r = fresh_request("GET", auth_gateway.url + "/-/healthy", headers={"Authorization": basic("ünï", "pass:with")})
    assert r.status_code == 401


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
def test_wrong_or_missing_credentials_get_401(auth_gateway, credentials):
    before = auth_gateway.pushed()
    header = BAD_CREDENTIALS[credentials]
    for method, path, body, _ in ENDPOINTS + [("PUT", "/-/quit", None, None), ("POST", "/-/reload", None, None),
                                              ("PUT", "/api/v1/admin/wipe", None, None)]:
        headers = {"Authorization": header} if header else {}
        # A new connection each time: see test_401_keeps_the_connection_usable for reuse.
        r = fresh_request(method, auth_gateway.url + path, data=body, headers=headers)
        assert r.status_code == 401, (credentials, method, path, r.status_code, r.text[:200])
        assert r.headers.get("WWW-Authenticate", "").lower().startswith("basic"), (method, path, dict(r.headers))
        assert "auth_pushed" not in r.text
    # Nothing was pushed, deleted, wiped, and the gateway did not quit.
    assert auth_gateway.proc.poll() is None
    assert auth_gateway.pushed() == before


@pytest.mark.parametrize("credentials", ["missing", "wrong password"])
def test_401_keeps_the_connection_usable(auth_gateway, credentials):
    """A 401 to a push whose body is still on its way: the connection either stays usable
    for the next request (Go's server discards a small unread body) or the 401 says
    `Connection: close`. Closing it silently breaks keep-alive clients (requests.Session,
    urllib3 pools): their next request on it fails with RemoteDisconnected."""
    body = b"keepalive_pushed 1\n" * 20
    header = BAD_CREDENTIALS[credentials]
    head = (f"PUT /metrics/job/keepalive HTTP/1.1\r\nHost: gw\r\nContent-Length: {len(body)}\r\n"
            + (f"Authorization: {header}\r\n" if header else "") + "\r\n").encode()
    first, second = exchange_on_one_connection(auth_gateway.port, head, body, authorization=basic(USER, PASSWORD))
    assert first.startswith("HTTP/1.1 401"), first
    announced_close = "\r\nconnection: close" in first.lower()
    assert announced_close or second.startswith("HTTP/1.1 200"), (
        f"401 without Connection: close, then the connection was closed: second request got {second!r}")


def test_prometheus_client_basic_auth_handler(auth_gateway):
    registry = CollectorRegistry()
    Gauge("py_auth_gauge", "pushed with basic auth", registry=registry).set(11)

    def handler(url, method, timeout, headers, data):
        return basic_auth_handler(url, method, timeout, headers, data, USER, PASSWORD)

    push_to_gateway(auth_gateway.url, job="py-auth", registry=registry, handler=handler, timeout=10)
    assert 'py_auth_gauge{instance="",job="py-auth"} 11' in auth_gateway.scrape()

    def wrong(url, method, timeout, headers, data):
        return basic_auth_handler(url, method, timeout, headers, data, USER, "nope")

    registry2 = CollectorRegistry()
    Gauge("py_auth_refused", "must not arrive", registry=registry2).set(1)
    for handler_ in (wrong, None):
        kwargs = {"handler": handler_} if handler_ else {}
        with pytest.raises(Exception) as excinfo:
            push_to_gateway(auth_gateway.url, job="py-auth-refused", registry=registry2, timeout=10, **kwargs)
        assert "401" in str(excinfo.value), excinfo.value
    assert "py_auth_refused" not in auth_gateway.scrape()


def test_many_requests_with_credentials_stay_fast(auth_gateway):
    """Verdicts are cached: a hundred authenticated requests do not pay bcrypt each time."""
    started = time.monotonic()
    for _ in range(100):
        assert auth_gateway.req("GET", "/-/healthy").status_code == 200
    assert time.monotonic() - started < 5


# --- reloads ---------------------------------------------------------------------------------


def status_with(gw, user, password):
    try:
        return requests.get(gw.url + "/-/healthy", auth=(user, password), timeout=5).status_code
    except requests.RequestException as e:
        return repr(e)


def test_password_rotation_and_invalid_versions(gateway, tmp_path):
    config = write_users(tmp_path / "web.yml", {USER: "old-password"})
    gw = gateway([f"--web.config.file={config}"], auth=(USER, "old-password"))
    assert gw.push("job/before-rotation", "rotation_pushed 1\n").status_code == 200
    assert status_with(gw, USER, "new-password") == 401

    # Rotate the password in place.
    write_users(config, {USER: "new-password"})
    rotated = wait_until(lambda: status_with(gw, USER, "old-password") == 401
                         and status_with(gw, USER, "new-password") == 200, timeout=30)
    assert rotated, (status_with(gw, USER, "old-password"), status_with(gw, USER, "new-password"), gw.log_text())
    # Stays that way.
    for _ in range(3):
        assert status_with(gw, USER, "old-password") == 401
        assert status_with(gw, USER, "new-password") == 200

    # Invalid versions: each is logged and the last valid config stays in force.
    invalid_versions = {
        "yaml syntax": "basic_auth_users: [unclosed\n",
        "unknown field": f"basic_auth_users:\n  {USER}: {json.dumps(bcrypt_hash('third'))}\nno_such_section: 1\n",
        "not a bcrypt hash": f"basic_auth_users:\n  {USER}: third-in-plain-text\n",
        "missing certificate": "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
    }
    for name, text in invalid_versions.items():
        log_before = len(gw.log_text())
        time.sleep(0.05)
        config.write_text(text)
        # Requests keep being served with the previous config while the new file is looked at.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert status_with(gw, USER, "new-password") == 200, (name, gw.log_text())
            assert status_with(gw, USER, "old-password") == 401, name
            assert status_with(gw, USER, "third") == 401, name
            time.sleep(0.2)
        r = requests.put(gw.url + "/metrics/job/after-invalid", data=b"rotation_pushed 2\n",
                         auth=(USER, "new-password"), timeout=5)
        assert r.status_code == 200, (name, r.status_code, r.text)
        logged = wait_until(lambda: str(config) in gw.log_text()[log_before - 100 if log_before > 100 else 0:], 30)
        assert logged, f"the invalid version ({name}) was not logged with the file name:\n{gw.log_text()}"
    assert gw.proc.poll() is None
    # Plain http still (the invalid TLS version did not switch anything on).
    assert gw.url.startswith("http://")

    # The file is removed: still the last valid config.
    config.unlink()
    time.sleep(1.5)
    assert status_with(gw, USER, "new-password") == 200
    assert status_with(gw, USER, "old-password") == 401

    # A valid version after the invalid ones is taken again.
    write_users(config, {USER: "final-password"})
    assert wait_until(lambda: status_with(gw, USER, "final-password") == 200
                      and status_with(gw, USER, "new-password") == 401, timeout=30), gw.log_text()
    scrape = requests.get(gw.url + "/metrics", auth=(USER, "final-password"), timeout=5).text
    assert 'rotation_pushed{instance="",job="before-rotation"} 1' in scrape
    assert 'rotation_pushed{instance="",job="after-invalid"} 2' in scrape


def test_rotation_by_atomic_rename(gateway, tmp_path):
    """Configuration managers replace the file by renaming a new one over it."""
    config = write_users(tmp_path / "web.yml", {USER: "one"})
    gw = gateway([f"--web.config.file={config}"], auth=(USER, "one"))
    assert status_with(gw, USER, "one") == 200
    staged = write_users(tmp_path / ".web.yml.new", {USER: "two"})
    os.replace(staged, config)
    assert wait_until(lambda: status_with(gw, USER, "two") == 200 and status_with(gw, USER, "one") == 401,
                      timeout=30), gw.log_text()


def test_enabling_auth_by_reload(gateway, tmp_path):
    """An empty file (no auth) replaced by one with users: from then on credentials are needed."""
    config = tmp_path / "web.yml"
    config.write_text("")
    gw = gateway([f"--web.config.file={config}"])
    assert requests.get(gw.url + "/metrics", timeout=5).status_code == 200
    write_users(config, {USER: PASSWORD})
    assert wait_until(lambda: requests.get(gw.url + "/metrics", timeout=5).status_code == 401, timeout=30)
    assert status_with(gw, USER, PASSWORD) == 200


INVALID_AT_START = {
    "yaml syntax": "basic_auth_users: [unclosed\n",
    "unknown field": "basic_auth_users: {}\nunknown_top_level: true\n",
    "not a bcrypt hash": "basic_auth_users:\n  alice: plain-password\n",
    "missing certificate": "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
    "cert without key": "tls_server_config:\n  cert_file: server.pem\n",
    "unknown client_auth_type": ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
                                 "  client_auth_type: Sometimes\n"),
    "unknown cipher suite": ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
                             "  cipher_suites: [TLS_NOT_A_SUITE]\n"),
    "bad TLS version": ("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
                        "  min_version: TLS99\n"),
    "invalid header value": 'http_server_config:\n  headers:\n    X-Frame-Options: "a\\nb"\n',
}


def start_and_wait_exit(args, timeout=60):
    proc = subprocess.Popen([GATEWAY_BIN, "--web.listen-address=127.0.0.1:0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the gateway kept running with {args}:\n{err.decode()}")
    return proc.returncode, out.decode() + err.decode()


@pytest.mark.parametrize("case", list(INVALID_AT_START), ids=list(INVALID_AT_START))
def test_invalid_file_at_start(tmp_path, cert_dir, case):
    config = cert_dir / "web.yml"  # next to server.pem/server.key for the relative names
    config.write_text(INVALID_AT_START[case])
    code, output = start_and_wait_exit([f"--web.config.file={config}"])
    assert code != 0, output
    assert str(config) in output, f"the message does not name the file:\n{output}"


def test_missing_file_at_start(tmp_path):
    config = tmp_path / "does-not-exist.yml"
    code, output = start_and_wait_exit([f"--web.config.file={config}"])
    assert code != 0, output
    assert str(config) in output, output


# --- http_server_config.headers --------------------------------------------------------------

HEADERS = {
    "X-Frame-Options": "deny",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'",
    "X-XSS-Protection": "1; mode=block",
}


def headers_config(path, with_users):
    text = "http_server_config:\n  headers:\n" + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in HEADERS.items())
    if with_users:
        text += f"basic_auth_users:\n  {USER}: {json.dumps(bcrypt_hash(PASSWORD))}\n"
    path.write_text(text)
    return path


@pytest.mark.parametrize("with_users", [False, True], ids=["no-auth", "with-auth"])
def test_configured_headers_on_every_response(gateway, tmp_path, with_users):
    config = headers_config(tmp_path / "web.yml", with_users)
    gw = gateway([f"--web.config.file={config}", "--push.max-series=3", "--storage.max-groups=4"],
                 auth=(USER, PASSWORD) if with_users else None)
    responses = [gw.req(method, path, data=body) for method, path, body, _ in ENDPOINTS]
    responses += [
        gw.push("job/bad", "not a metric line {\n"),  # 400
        gw.req("PATCH", "/metrics/job/x"),  # 405
        gw.req("GET", "/metrics", headers={"Accept-Encoding": "gzip"}),
        gw.push("job/many", "a 1\nb 1\nc 1\nd 1\n"),  # 413
        gw.req("GET", "/metrics/", allow_redirects=False),  # redirect
    ]
    for i in range(5):
        responses.append(gw.push(f"job/group{i}", "g 1\n"))  # the last ones: 429
    if with_users:
        responses.append(requests.get(gw.url + "/metrics", timeout=5))  # 401
        assert responses[-1].status_code == 401
    statuses = {r.status_code for r in responses}
    assert {200, 202, 400, 404, 405, 413, 429} <= statuses, statuses
    assert any(300 <= s < 400 for s in statuses), statuses
    for r in responses:
        for name, value in HEADERS.items():
            assert r.headers.get(name) == value, (r.request.method, r.request.url, r.status_code, name, dict(r.headers))


def test_changed_headers_are_reloaded(gateway, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    gw = gateway([f"--web.config.file={config}"])
    assert gw.req("GET", "/-/healthy").headers.get("X-Frame-Options") == "deny"
    config.write_text("http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n")
    assert wait_until(lambda: gw.req("GET", "/-/healthy").headers.get("X-Frame-Options") == "sameorigin", 30)
    config.write_text("")
    assert wait_until(lambda: "X-Frame-Options" not in gw.req("GET", "/-/healthy").headers, 30)


def test_password_guessing_storm_costs_the_guesser(gateway, tmp_path):
    """Every wrong password costs a bcrypt check. The checks run off the request workers, a
    few at a time behind a bounded queue: a client whose verdict is cached stays fast, and
    guessers beyond the queue get 429 at once."""
    config = tmp_path / "web.yml"
    # A costly hash (12 rounds), so that checks on the request workers would show.
    config.write_text(f"basic_auth_users:\n  {USER}: {json.dumps(bcrypt_hash(PASSWORD, rounds=12))}\n")
    gw = gateway([f"--web.config.file={config}"], auth=(USER, PASSWORD))
    assert gw.req("GET", "/-/healthy").status_code == 200  # the verdict is cached now
    stop = threading.Event()
    statuses = collections.Counter()

    def guess(i):
        n = 0
        with requests.Session() as session:
            session.trust_env = False
            while not stop.is_set():
                n += 1
                try:
                    r = session.get(gw.url + "/-/healthy", auth=(USER, f"guess-{i}-{n}"), timeout=60)
                    statuses[r.status_code] += 1
                    if r.status_code == 429:
                        time.sleep(0.05)  # a busy client loop would take the CPU the gateway needs
                except requests.RequestException:
                    statuses["error"] += 1

    guessers = [threading.Thread(target=guess, args=(i,), daemon=True) for i in range(96)]
    for t in guessers:
        t.start()
    try:
        wait_until(lambda: statuses[429] > 0, timeout=30)
        latencies = []
        for _ in range(20):
            started = time.monotonic()
            r = gw.req("GET", "/-/healthy", timeout=30)
            latencies.append(time.monotonic() - started)
            assert r.status_code == 200, r.text
            time.sleep(0.05)
    finally:
        stop.set()
        for t in guessers:
            t.join(timeout=60)
    assert statuses[401] > 0, statuses
    assert statuses[429] > 0, statuses
    median = sorted(latencies)[len(latencies) // 2]
    assert median < 0.5, f"a client with a cached verdict waited {median:.2f}s (median) during the storm: {latencies}"
    after = requests.get(gw.url + "/-/healthy", auth=(USER, PASSWORD), timeout=30)
    assert after.status_code == 200
