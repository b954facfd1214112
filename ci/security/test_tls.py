"""TLS (tls_server_config) and mutual TLS (client_auth_type) in --web.config.file."""

import functools
import json
import ssl
import subprocess
import time
import urllib.request

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.exposition import _make_handler, tls_auth_handler

from conftest import CURL, wait_until

CONNECTION_REFUSED = (requests.exceptions.SSLError, requests.exceptions.ConnectionError)


def write_tls_config(directory, client_auth_type=None, client_ca="ca.pem", extra=""):
    """A web config naming the certificates by paths relative to the config file."""
    text = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
    if client_auth_type:
        text += f"  client_auth_type: {client_auth_type}\n  client_ca_file: {client_ca}\n"
    text += extra
    path = directory / "web.yml"
    path.write_text(text)
    return path


def curl(*args):
    return subprocess.run([CURL, "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=20)


@pytest.fixture
def tls_gateway(gateway, cert_dir):
    config = write_tls_config(cert_dir)
    return gateway([f"--web.config.file={config}"], scheme="https", verify=str(cert_dir / "ca.pem"))


def test_curl_with_cacert(tls_gateway, cert_dir):
    ca = str(cert_dir / "ca.pem")
    put = curl("--cacert", ca, "-X", "PUT", "--data-binary", "curl_pushed 1\n", "-w", "%{http_code}",
               f"{tls_gateway.url}/metrics/job/curl")
    assert put.returncode == 0 and put.stdout.endswith("200"), (put.returncode, put.stdout, put.stderr)
    for host in ("127.0.0.1", "localhost"):  # both names are in the certificate
        scrape = curl("--cacert", ca, f"https://{host}:{tls_gateway.port}/metrics")
        assert scrape.returncode == 0, scrape.stderr
        assert 'curl_pushed{instance="",job="curl"} 1' in scrape.stdout
    health = curl("--cacert", ca, "-w", " %{http_code} %{ssl_verify_result}", f"{tls_gateway.url}/-/healthy")
    assert health.returncode == 0 and health.stdout.endswith(" 200 0"), health.stdout
    # Without the CA the server's certificate is not trusted.
    untrusted = curl(f"{tls_gateway.url}/-/healthy")
    assert untrusted.returncode != 0, untrusted.stdout


def test_requests_over_https(tls_gateway):
    r = tls_gateway.push("job/requests/instance/i1", "req_pushed 2\n")
    assert r.status_code == 200, r.text
    assert tls_gateway.req("GET", "/-/healthy").status_code == 200
    assert tls_gateway.req("GET", "/-/ready").status_code == 200
    api = tls_gateway.req("GET", "/api/v1/metrics")
    assert api.status_code == 200 and api.json()["status"] == "success"
    assert 'req_pushed{instance="i1",job="requests"} 2' in tls_gateway.scrape()
    assert tls_gateway.req("DELETE", "/metrics/job/requests/instance/i1").status_code == 202
    assert not any(line.startswith("req_pushed") for line in tls_gateway.pushed())
    # Default trust store: the test CA is unknown, so verification fails.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_gateway.url + "/-/healthy", timeout=5)


def test_plain_http_to_tls_port_fails(tls_gateway):
    http_url = f"http://127.0.0.1:{tls_gateway.port}"
    try:
        r = requests.put(http_url + "/metrics/job/plain", data=b"plain_pushed 1\n", timeout=5)
    except requests.exceptions.ConnectionError:
        pass  # the server closed the connection: the handshake failed
    else:
        # Go answers 400 "Client sent an HTTP request to an HTTPS server"; anything but success.
        assert r.status_code >= 400, (r.status_code, r.text)
    try:
        r = requests.get(http_url + "/metrics", timeout=5)
    except requests.exceptions.ConnectionError:
        pass
    else:
        assert r.status_code >= 400, (r.status_code, r.text[:200])
    assert not any(line.startswith("plain_pushed") for line in tls_gateway.pushed())
    # The gateway still serves HTTPS afterwards.
    assert tls_gateway.req("GET", "/-/healthy").status_code == 200


def https_handler(cafile):
    """A prometheus_client push handler that trusts `cafile` (the default one uses the
    system trust store)."""
    context = ssl.create_default_context(cafile=cafile)

    def handler(url, method, timeout, headers, data):
        return _make_handler(url, method, timeout, headers, data, urllib.request.HTTPSHandler(context=context))

    return handler


def test_prometheus_client_push_over_https(tls_gateway, cert_dir):
    registry = CollectorRegistry()
    Gauge("py_tls_gauge", "pushed over https", registry=registry).set(42)
    push_to_gateway(tls_gateway.url, job="py-tls", registry=registry,
                    handler=https_handler(str(cert_dir / "ca.pem")), timeout=10)
    assert 'py_tls_gauge{instance="",job="py-tls"} 42' in tls_gateway.scrape()
    # The default handler does not trust the test CA.
    with pytest.raises(Exception) as excinfo:
        push_to_gateway(tls_gateway.url, job="py-tls-untrusted", registry=registry, timeout=10)
    assert "CERTIFICATE_VERIFY_FAILED" in str(excinfo.value) or isinstance(excinfo.value, ssl.SSLError), excinfo.value


def test_min_version_tls13_refuses_tls12(gateway, cert_dir):
    config = write_tls_config(cert_dir, extra="  min_version: TLS13\n")
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=str(cert_dir / "ca.pem"))
    assert gw.req("GET", "/-/healthy").status_code == 200
    tls12 = curl("--cacert", str(cert_dir / "ca.pem"), "--tlsv1.2", "--tls-max", "1.2", f"{gw.url}/-/healthy")
    assert tls12.returncode != 0, tls12.stdout
    tls13 = curl("--cacert", str(cert_dir / "ca.pem"), "--tlsv1.3", f"{gw.url}/-/healthy")
    assert tls13.returncode == 0 and tls13.stdout == "OK", (tls13.stdout, tls13.stderr)


# --- mutual TLS ---------------------------------------------------------------------------


@pytest.fixture
def mtls_gateway(gateway, cert_dir):
    config = write_tls_config(cert_dir, client_auth_type="RequireAndVerifyClientCert")
    return gateway([f"--web.config.file={config}"], scheme="https", verify=str(cert_dir / "ca.pem"),
                   cert=(str(cert_dir / "client.pem"), str(cert_dir / "client.key")))


def test_mtls_requires_a_client_certificate(mtls_gateway, cert_dir):
    ca = str(cert_dir / "ca.pem")
    with pytest.raises(CONNECTION_REFUSED):
        requests.put(mtls_gateway.url + "/metrics/job/nocert", data=b"nocert_pushed 1\n", verify=ca, timeout=5)
    no_cert = curl("--cacert", ca, f"{mtls_gateway.url}/-/healthy")
    assert no_cert.returncode != 0 and no_cert.stdout != "OK", no_cert.stdout
    assert not any(line.startswith("nocert_pushed") for line in mtls_gateway.pushed())


def test_mtls_accepts_a_certificate_of_the_ca(mtls_gateway, cert_dir):
    r = mtls_gateway.push("job/mtls", "mtls_pushed 3\n")
    assert r.status_code == 200, r.text
    assert 'mtls_pushed{instance="",job="mtls"} 3' in mtls_gateway.scrape()
    ok = curl("--cacert", str(cert_dir / "ca.pem"), "--cert", str(cert_dir / "client.pem"),
              "--key", str(cert_dir / "client.key"), f"{mtls_gateway.url}/-/healthy")
    assert ok.returncode == 0 and ok.stdout == "OK", (ok.stdout, ok.stderr)
    # The Python client's own TLS handler with a client certificate.
    registry = CollectorRegistry()
    Gauge("py_mtls_gauge", "pushed with a client certificate", registry=registry).set(7)

    def handler(url, method, timeout, headers, data):
        return tls_auth_handler(url, method, timeout, headers, data, certfile=str(cert_dir / "client.pem"),
                                keyfile=str(cert_dir / "client.key"), cafile=str(cert_dir / "ca.pem"))

    push_to_gateway(mtls_gateway.url, job="py-mtls", registry=registry, handler=handler, timeout=10)
    assert 'py_mtls_gauge{instance="",job="py-mtls"} 7' in mtls_gateway.scrape()


def test_mtls_refuses_a_certificate_of_another_ca(mtls_gateway, cert_dir):
    foreign = (str(cert_dir / "other_client.pem"), str(cert_dir / "other_client.key"))
    with pytest.raises(CONNECTION_REFUSED):
        requests.put(mtls_gateway.url + "/metrics/job/foreign", data=b"foreign_pushed 1\n",
                     verify=str(cert_dir / "ca.pem"), cert=foreign, timeout=5)
    bad = curl("--cacert", str(cert_dir / "ca.pem"), "--cert", foreign[0], "--key", foreign[1],
               f"{mtls_gateway.url}/-/healthy")
    assert bad.returncode != 0 and bad.stdout != "OK", bad.stdout
    assert not any(line.startswith("foreign_pushed") for line in mtls_gateway.pushed())


def test_verify_client_cert_if_given(gateway, cert_dir):
    config = write_tls_config(cert_dir, client_auth_type="VerifyClientCertIfGiven")
    ca = str(cert_dir / "ca.pem")
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=ca)
    assert gw.req("GET", "/-/healthy").status_code == 200  # no certificate: allowed
    good = (str(cert_dir / "client.pem"), str(cert_dir / "client.key"))
    assert requests.get(gw.url + "/-/healthy", verify=ca, cert=good, timeout=5).status_code == 200
    foreign = (str(cert_dir / "other_client.pem"), str(cert_dir / "other_client.key"))
    with pytest.raises(CONNECTION_REFUSED):
        requests.get(gw.url + "/-/healthy", verify=ca, cert=foreign, timeout=5)


def test_tls_with_basic_auth_and_prometheus_client(gateway, cert_dir):
    from conftest import bcrypt_hash
    config = write_tls_config(cert_dir, extra=f"basic_auth_users:\n  pusher: {json.dumps(bcrypt_hash('s3cret'))}\n")
    ca = str(cert_dir / "ca.pem")
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=ca, auth=("pusher", "s3cret"))
    assert requests.get(gw.url + "/metrics", verify=ca, timeout=5).status_code == 401
    registry = CollectorRegistry()
    Gauge("py_tls_auth_gauge", "https and basic auth", registry=registry).set(5)
    context = ssl.create_default_context(cafile=ca)

    def handler(url, method, timeout, headers, data):
        import base64
        headers = list(headers) + [("Authorization", "Basic " + base64.b64encode(b"pusher:s3cret").decode())]
        return _make_handler(url, method, timeout, headers, data, urllib.request.HTTPSHandler(context=context))

    push_to_gateway(gw.url, job="py-tls-auth", registry=registry, handler=handler, timeout=10)
    assert 'py_tls_auth_gauge{instance="",job="py-tls-auth"} 5' in gw.scrape()


def served_trusted_by(gw, cafile):
    """Whether a new connection to gw gets a certificate that cafile trusts."""
    try:
        with requests.Session() as s:
            s.trust_env = False
            return s.get(gw.url + "/-/healthy", verify=cafile, timeout=5,
                         headers={"Connection": "close"}).status_code == 200
    except requests.RequestException:
        return False


def test_server_certificate_rotation_by_reload(gateway, cert_dir):
    """The web config is re-read when it changes: a config naming a new certificate is used
    for new connections; an invalid version (a key that does not match) keeps the old one."""
    config = write_tls_config(cert_dir)
    ca, other_ca = str(cert_dir / "ca.pem"), str(cert_dir / "other_ca.pem")
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=ca)

    trusted_by = functools.partial(served_trusted_by, gw)

    assert trusted_by(ca) and not trusted_by(other_ca)
    # A mismatched pair: refused, the old certificate stays.
    config.write_text("tls_server_config:\n  cert_file: other_server.pem\n  key_file: server.key\n")
    time.sleep(2.5)
    for _ in range(3):
        assert trusted_by(ca) and not trusted_by(other_ca)
    # The new pair: taken within a few seconds.
    config.write_text("tls_server_config:\n  cert_file: other_server.pem\n  key_file: other_server.key\n")
    assert wait_until(lambda: trusted_by(other_ca) and not trusted_by(ca), timeout=30), gw.log_text()


def kubelet_swap(mount, version, files):
    """Publishes `files` ({name: source path}) in `mount` the way the kubelet updates a mounted
    Secret: a new `..<version>` directory, then an atomic rename of a `..data` symlink onto it;
    the visible names are symlinks `name -> ..data/name` made once."""
    target = mount / f"..{version}"
    target.mkdir()
    for name, source in files.items():
        (target / name).write_bytes(source.read_bytes())
    tmp = mount / "..data_tmp"
    tmp.symlink_to(target.name)
    tmp.rename(mount / "..data")
    for name in files:
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")


def test_certificate_renewal_in_a_kubelet_mounted_secret(gateway, cert_dir, tmp_path):
    """cert-manager renews the TLS Secret; the kubelet swaps the mounted files; web-config.yml
    (another Secret) does not change. New connections must get the new certificate."""
    mount = tmp_path / "tls"
    mount.mkdir()
    kubelet_swap(mount, "v1", {"tls.crt": cert_dir / "server.pem", "tls.key": cert_dir / "server.key"})
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {mount}/tls.crt\n  key_file: {mount}/tls.key\n")
    ca, other_ca = str(cert_dir / "ca.pem"), str(cert_dir / "other_ca.pem")
    gw = gateway([f"--web.config.file={config}"], scheme="https", verify=ca)

    trusted_by = functools.partial(served_trusted_by, gw)

    assert trusted_by(ca) and not trusted_by(other_ca)
    config_mtime = config.stat().st_mtime_ns
    kubelet_swap(mount, "v2", {"tls.crt": cert_dir / "other_server.pem", "tls.key": cert_dir / "other_server.key"})
    assert config.stat().st_mtime_ns == config_mtime
    assert wait_until(lambda: trusted_by(other_ca) and not trusted_by(ca), timeout=30), gw.log_text()
    # A renewal that leaves the key behind (a mismatched pair) is refused; the last good pair stays.
    kubelet_swap(mount, "v3", {"tls.crt": cert_dir / "server.pem", "tls.key": cert_dir / "other_server.key"})
    # (The gateway looks at the files when a connection comes, hence the requests while waiting.)
    assert wait_until(lambda: trusted_by(other_ca) and "keeping the previous web config" in gw.log_text(),
                      timeout=30), gw.log_text()
    assert trusted_by(other_ca) and not trusted_by(ca)
    # The fixed pair is taken as soon as it lands.
    kubelet_swap(mount, "v4", {"tls.crt": cert_dir / "server.pem", "tls.key": cert_dir / "server.key"})
    assert wait_until(lambda: trusted_by(ca) and not trusted_by(other_ca), timeout=30), gw.log_text()
