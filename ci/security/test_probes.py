"""--web.unauthenticated-probes: exactly GET/HEAD <prefix>/-/healthy and <prefix>/-/ready answer
without credentials when the operator opts in; every other path, spelling and method stays
behind basic auth, and without the flag the probes need credentials too."""

import socket

import pytest

from conftest import bcrypt_hash

USER, PASSWORD = "alice", "s3cret"


def raw(port, request_line, headers=""):
    """Sends one request line as written (no client normalisation of the path) and returns
    the status code and the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"{request_line}\r\nHost: gw\r\nConnection: close\r\n{headers}\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode("utf-8", "replace")


@pytest.fixture
def web_config(tmp_path):
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  {USER}: '{bcrypt_hash(PASSWORD)}'\n")
    return path


def start(gateway, web_config, *extra, prefix=""):
    args = [f"--web.config.file={web_config}", "--web.enable-admin-api", *extra]
    if prefix:
        args.append(f"--web.route-prefix={prefix}")
    gw = gateway(args, auth=(USER, PASSWORD))
    r = gw.req("PUT", f"{prefix}/metrics/job/probe_secret", data=b"probe_secret_series 1\n")
    assert r.status_code == 200, r.text
    return gw


# Paths that name another endpoint, or a probe in a spelling the exemption must not accept.
OTHER_SPELLINGS = ["/metrics", "/", "/api/v1/status", "/api/v1/metrics", "//-/ready", "//-/healthy",
                   "/-/ready/", "/-/ready/../metrics", "/-/./ready", "/%2D/ready", "/-%2Fready",
                   "/-/ready%2F..%2Fmetrics", "/-/healthy/../../metrics", "/static/../metrics",
                   "/-/quit", "/-/reload"]


def test_probes_answer_without_credentials_when_opted_in(gateway, web_config):
    gw = start(gateway, web_config, "--web.unauthenticated-probes")
    for path in ("/-/healthy", "/-/ready", "/-/ready?x=/../metrics", "/-/healthy?"):
        status, body = raw(gw.port, f"GET {path} HTTP/1.1")
        assert (status, body) == (200, "OK"), (path, status, body)
    status, body = raw(gw.port, "HEAD /-/ready HTTP/1.1")
    assert status == 200 and body == "", (status, body)
    # The status API shows the flag like the others.
    assert gw.req("GET", "/api/v1/status").json()["data"]["flags"]["web.unauthenticated-probes"] == "true"


@pytest.mark.parametrize("path", OTHER_SPELLINGS)
def test_every_other_path_still_needs_credentials(gateway, web_config, path):
    gw = start(gateway, web_config, "--web.unauthenticated-probes")
    status, body = raw(gw.port, f"GET {path} HTTP/1.1")
    assert status == 401, (path, status, body[:200])
    assert "probe_secret_series" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_on_the_probe_paths_need_credentials(gateway, web_config, method):
    gw = start(gateway, web_config, "--web.unauthenticated-probes")
    for path in ("/-/ready", "/-/healthy"):
        status, _ = raw(gw.port, f"{method} {path} HTTP/1.1", "Content-Length: 0\r\n")
        assert status == 401, (method, path, status)


def test_absolute_form_request_target_reaches_only_the_probe(gateway, web_config):
    gw = start(gateway, web_config, "--web.unauthenticated-probes")
    assert raw(gw.port, f"GET http://127.0.0.1:{gw.port}/-/ready HTTP/1.1") == (200, "OK")
    status, body = raw(gw.port, f"GET http://127.0.0.1:{gw.port}/metrics HTTP/1.1")
    assert status == 401 and "probe_secret_series" not in body


def test_off_by_default(gateway, web_config):
    gw = start(gateway, web_config)
    for path in ("/-/healthy", "/-/ready"):
        assert raw(gw.port, f"GET {path} HTTP/1.1")[0] == 401, path
    assert gw.req("GET", "/api/v1/status").json()["data"]["flags"]["web.unauthenticated-probes"] == "false"


def test_route_prefix(gateway, web_config):
    gw = start(gateway, web_config, "--web.unauthenticated-probes", prefix="/pgw")
    assert raw(gw.port, "GET /pgw/-/ready HTTP/1.1") == (200, "OK")
    assert raw(gw.port, "GET /pgw/-/healthy HTTP/1.1") == (200, "OK")
    for path in ("/-/ready", "/pgw//-/ready", "//pgw/-/ready", "/pgw/metrics", "/pgw/-/ready/../metrics"):
        status, body = raw(gw.port, f"GET {path} HTTP/1.1")
        assert status == 401, (path, status)
        assert "probe_secret_series" not in body


def test_a_scrape_path_named_like_a_probe_stays_protected(gateway, web_config):
    gw = start(gateway, web_config, "--web.unauthenticated-probes", "--web.telemetry-path=/-/ready")
    status, body = raw(gw.port, "GET /-/ready HTTP/1.1")
    assert status == 401 and "probe_secret_series" not in body
    assert raw(gw.port, "GET /-/healthy HTTP/1.1") == (200, "OK")
