"""Security settings fail closed: client_allowed_sans is enforced, settings the gateway does not
implement stop the start, and a reload never turns TLS, client certificates or basic auth off."""

import json
import os
import signal
import subprocess

import pytest
import requests

from conftest import OPENSSL, SAN_CLIENTS, assert_refused_at_start, bcrypt_hash, wait_until

REFUSED = (requests.exceptions.SSLError, requests.exceptions.ConnectionError)
RELOAD_METRIC = "pushgateway_web_config_last_reload_successful"

TLS = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"


def sans_config(cert_dir, client_auth_type="RequireAndVerifyClientCert", sans=("allowed.example",)):
    path = cert_dir / "web.yml"
    path.write_text(TLS + f"  client_auth_type: {client_auth_type}\n  client_ca_file: ca.pem\n"
                    f"  client_allowed_sans: {json.dumps(list(sans))}\n")
    return path


def get_with(gw, cert_dir, client=None):
    """GET /-/healthy over a new connection with the client certificate `client` (a name in
    cert_dir without extension, or None); the status code or the exception."""
    cert = (str(cert_dir / f"{client}.pem"), str(cert_dir / f"{client}.key")) if client else None
    try:
        with requests.Session() as s:
            s.trust_env = False
            return s.get(gw.url + "/-/healthy", verify=str(cert_dir / "ca.pem"), cert=cert, timeout=5).status_code
    except REFUSED as e:
        return e


def test_client_allowed_sans_admits_only_listed_names(gateway, cert_dir):
    allowed = ["allowed.example", "ops@example.org", "spiffe://example.org/pusher", "192.0.2.7"]
    config = sans_config(cert_dir, sans=allowed)
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=str(cert_dir / "ca.pem"),
                 cert=(str(cert_dir / "san_allowed.pem"), str(cert_dir / "san_allowed.key")))
    for name in ("allowed", "email", "uri", "ip"):
        assert get_with(gw, cert_dir, f"san_{name}") == 200, (name, SAN_CLIENTS[name])
    # Signed by the right CA, but no allowed name: refused in the handshake.
    for client in ("san_intruder", "client", None):
        assert isinstance(get_with(gw, cert_dir, client), REFUSED), client
    r = requests.put(gw.url + "/metrics/job/sans", data=b"sans_pushed 1\n", verify=str(cert_dir / "ca.pem"),
                     cert=(str(cert_dir / "san_allowed.pem"), str(cert_dir / "san_allowed.key")), timeout=5)
    assert r.status_code == 200, r.text
    with pytest.raises(REFUSED):
        requests.put(gw.url + "/metrics/job/intruder", data=b"intruder_pushed 1\n",
                     verify=str(cert_dir / "ca.pem"),
                     cert=(str(cert_dir / "san_intruder.pem"), str(cert_dir / "san_intruder.key")), timeout=5)
    pushed = gw.pushed()
    assert any(line.startswith("sans_pushed") for line in pushed), pushed
    assert not any(line.startswith("intruder_pushed") for line in pushed), pushed


def test_client_allowed_sans_requires_a_certificate_even_if_given_is_optional(gateway, cert_dir):
    config = sans_config(cert_dir, client_auth_type="VerifyClientCertIfGiven")
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=str(cert_dir / "ca.pem"),
                 cert=(str(cert_dir / "san_allowed.pem"), str(cert_dir / "san_allowed.key")))
    assert get_with(gw, cert_dir, "san_allowed") == 200
    assert isinstance(get_with(gw, cert_dir, None), REFUSED)
    assert isinstance(get_with(gw, cert_dir, "san_intruder"), REFUSED)


def handshake_with_group(port, group, cafile):
    """Whether a TLS handshake offering only key-exchange `group` succeeds."""
    result = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-groups", group,
                             "-CAfile", cafile, "-verify_return_error", "-brief"],
                            input="", capture_output=True, text=True, timeout=20)
    return result.returncode == 0


def test_curve_preferences_restrict_the_key_exchange(gateway, cert_dir):
    config = cert_dir / "web.yml"
    config.write_text(TLS + "  curve_preferences: [CurveP384]\n")
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=str(cert_dir / "ca.pem"))
    ca = str(cert_dir / "ca.pem")
    assert handshake_with_group(gw.port, "P-384", ca)
    assert not handshake_with_group(gw.port, "X25519", ca)
    assert not handshake_with_group(gw.port, "P-256", ca)


NOT_IMPLEMENTED = {
    "allowed sans without client verification": (
        TLS + "  client_allowed_sans: [allowed.example]\n", "client_allowed_sans"),
    "allowed sans with RequestClientCert": (
        TLS + "  client_auth_type: RequestClientCert\n  client_allowed_sans: [allowed.example]\n",
        "client_allowed_sans"),
    "client CA without verification": (TLS + "  client_ca_file: ca.pem\n", "client_ca_file"),
    "client CA with RequestClientCert": (
        TLS + "  client_auth_type: RequestClientCert\n  client_ca_file: ca.pem\n", "client_ca_file"),
    "curve P-521": (TLS + "  curve_preferences: [CurveP521]\n", "CurveP521"),
    "unknown curve": (TLS + "  curve_preferences: [Curve25519x]\n", "Curve25519x"),
    "header upstream refuses": ("http_server_config:\n  headers:\n    Set-Cookie: a=b\n", "Set-Cookie"),
    "header value upstream refuses": ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                                      "X-Frame-Options"),
}


@pytest.mark.parametrize("case", list(NOT_IMPLEMENTED), ids=list(NOT_IMPLEMENTED))
def test_settings_not_implemented_stop_the_start(cert_dir, case):
    text, named = NOT_IMPLEMENTED[case]
    config = cert_dir / "web.yml"
    config.write_text(text)
    assert_refused_at_start(config, named)


def reload_metric(gw, **kwargs):
    text = gw.session.get(gw.url + "/metrics", timeout=5, **kwargs).text
    for line in text.splitlines():
        if line.startswith(RELOAD_METRIC + " "):
            return line.split()[1]
    return None


def test_a_truncated_file_keeps_tls_and_auth(gateway, cert_dir):
    """A file emptied by a non-atomic copy must not turn TLS and basic auth off: the previous
    settings stay, the error is logged and the metric says so; a good version is taken again."""
    users = f"basic_auth_users:\n  pusher: {json.dumps(bcrypt_hash('s3cret'))}\n"
    config = cert_dir / "web.yml"
    config.write_text(TLS + users)
    ca = str(cert_dir / "ca.pem")
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=ca, auth=("pusher", "s3cret"))
    assert reload_metric(gw) == "1"
    for broken in ("", "basic_auth_users: {}\n", TLS, users):
        config.write_text(broken)
        os.kill(gw.proc.pid, signal.SIGHUP)
        assert wait_until(lambda: reload_metric(gw) == "0", timeout=30), (broken, gw.log_text())
        # Still HTTPS only, still authenticated.
        try:
            plain = requests.get(f"http://127.0.0.1:{gw.port}/metrics", timeout=5).status_code
        except requests.exceptions.ConnectionError:
            plain = None
        assert plain is None or plain >= 400, broken
        assert requests.get(gw.url + "/metrics", verify=ca, timeout=5).status_code == 401, broken
        assert gw.push("job/kept", "kept_pushed 1\n").status_code == 200
        assert "turn off" in gw.log_text(), gw.log_text()
        # Back to the full settings: taken, the metric recovers.
        config.write_text(TLS + users)
        assert wait_until(lambda: reload_metric(gw) == "1", timeout=30), (broken, gw.log_text())


def test_a_reload_cannot_drop_client_certificates(gateway, cert_dir):
    config = sans_config(cert_dir)
    ca = str(cert_dir / "ca.pem")
    good = (str(cert_dir / "san_allowed.pem"), str(cert_dir / "san_allowed.key"))
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=ca, cert=good)
    for weaker in (
        sans_config(cert_dir, sans=()).read_text(),
        sans_config(cert_dir, client_auth_type="VerifyClientCertIfGiven", sans=()).read_text(),
        TLS,
    ):
        config.write_text(weaker)
        assert wait_until(lambda: reload_metric(gw) == "0", timeout=30), (weaker, gw.log_text())
        assert isinstance(get_with(gw, cert_dir, "client"), REFUSED), weaker
        assert isinstance(get_with(gw, cert_dir, None), REFUSED), weaker
        assert get_with(gw, cert_dir, "san_allowed") == 200
        sans_config(cert_dir)
        assert wait_until(lambda: reload_metric(gw) == "1", timeout=30), gw.log_text()
