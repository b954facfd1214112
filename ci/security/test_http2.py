"""HTTP/2: offered to TLS clients through ALPN as Go's server does (http_server_config.http2,
default true), never on plain HTTP; idle HTTP/2 connections give their slot back."""

import socket
import ssl
import time

import pytest

from conftest import wait_until
from test_tls import curl, write_tls_config


def version_and_status(gw, cert_dir, *args, path="/-/healthy"):
    """curl's negotiated HTTP version and status code for one request."""
    r = curl("--cacert", str(cert_dir / "ca.pem"), "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
             *args, gw.url + path)
    assert r.returncode == 0, r.stderr
    return r.stdout


def start_tls(gateway, cert_dir, extra="", *flags):
    config = write_tls_config(cert_dir, extra=extra)
    return gateway([f"--web.config.file={config}", *flags], scheme="https", verify=str(cert_dir / "ca.pem"))


def test_http2_over_tls_by_default(gateway, cert_dir):
    gw = start_tls(gateway, cert_dir)
    assert version_and_status(gw, cert_dir, "--http2") == "2 200"
    put = curl("--http2", "--cacert", str(cert_dir / "ca.pem"), "-X", "PUT", "--data-binary", "h2_pushed 3\n",
               "-w", "%{http_version} %{http_code}", gw.url + "/metrics/job/h2")
    assert put.stdout.endswith("2 200"), (put.stdout, put.stderr)
    scrape = curl("--http2", "--cacert", str(cert_dir / "ca.pem"), gw.url + "/metrics")
    assert 'h2_pushed{instance="",job="h2"} 3' in scrape.stdout
    # Several requests on one HTTP/2 connection.
    many = curl("--http2", "--cacert", str(cert_dir / "ca.pem"), "-w", "%{http_version}\n",
                gw.url + "/-/healthy", gw.url + "/-/ready", gw.url + "/api/v1/status")
    assert many.returncode == 0 and many.stdout.count("2\n") == 3, many.stdout
    # Clients that ask for HTTP/1.1 still get it.
    assert version_and_status(gw, cert_dir, "--http1.1") == "1.1 200"


def test_long_push_url_over_http2(gateway, cert_dir):
    """A grouping key of 20 KB fits HTTP/1.1's request head; HTTP/2 takes it too."""
    gw = start_tls(gateway, cert_dir)
    put = curl("--http2", "--cacert", str(cert_dir / "ca.pem"), "-X", "PUT", "--data-binary", "long_url 1\n",
               "-o", "/dev/null", "-w", "%{http_version} %{http_code}", gw.url + "/metrics/job/long/v/" + "a" * 20000)
    assert put.stdout == "2 200", (put.stdout, put.stderr)


def test_http2_false_offers_only_http11(gateway, cert_dir):
    gw = start_tls(gateway, cert_dir, "http_server_config:\n  http2: false\n")
    assert version_and_status(gw, cert_dir, "--http2") == "1.1 200"


def test_http2_setting_is_reloaded(gateway, cert_dir):
    gw = start_tls(gateway, cert_dir)
    assert version_and_status(gw, cert_dir, "--http2") == "2 200"
    write_tls_config(cert_dir, extra="http_server_config:\n  http2: false\n")
    assert wait_until(lambda: version_and_status(gw, cert_dir, "--http2") == "1.1 200", timeout=10)


def test_plain_http_stays_http11(gateway):
    gw = gateway([])
    # An h2c upgrade request is answered in HTTP/1.1, as Go's server does without h2c.
    r = curl("--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", gw.url + "/-/healthy")
    assert r.stdout == "1.1 200", (r.stdout, r.stderr)
    # Prior knowledge is not needed to work: it must not be taken for a request.
    prior = curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", gw.url + "/-/healthy")
    assert prior.returncode != 0 or prior.stdout != "200", prior.stdout


def test_idle_http2_connection_is_closed(gateway, cert_dir):
    gw = start_tls(gateway, cert_dir, "", "--web.read-header-timeout=1s")
    context = ssl.create_default_context(cafile=str(cert_dir / "ca.pem"))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            # The client preface and an empty SETTINGS frame, then nothing.
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            started = time.monotonic()
            closed = False
            while time.monotonic() - started < 8:
                try:
                    if not tls.recv(65536):
                        closed = True
                        break
                except (ConnectionResetError, ssl.SSLError):
                    closed = True
                    break
            assert closed, "an idle HTTP/2 connection was kept open"
