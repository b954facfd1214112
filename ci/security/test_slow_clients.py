"""Slow header senders (--web.read-header-timeout) and --web.max-connections. Every wait is
bounded; upper bounds leave several seconds of slack for a busy machine (a broken timeout
never closes the connection at all)."""

import socket
import threading
import time

import requests

from conftest import pushed_series

REQUEST_HEAD = b"PUT /metrics/job/slowloris HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 13\r\nX-Padding: " + b"p" * 200


def drip(port, result, stop, interval=1.0):
    """Sends REQUEST_HEAD one byte per `interval` seconds; records in `result` when and how
    the server ended the connection (EOF or reset) and what it sent before."""
    started = time.monotonic()
    result["received"] = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            result["connected"] = time.monotonic() - started
            s.settimeout(interval)
            for byte in REQUEST_HEAD:
                if stop.is_set():
                    result["outcome"] = "stopped by the test"
                    return
                try:
                    s.sendall(bytes([byte]))
                except OSError as e:
                    result["outcome"] = f"send failed: {e!r}"
                    break
                deadline = time.monotonic() + interval
                ended = False
                while time.monotonic() < deadline:
                    try:
                        data = s.recv(65536)
                    except socket.timeout:
                        break
                    except OSError as e:
                        result["outcome"] = f"reset: {e!r}"
                        ended = True
                        break
                    if not data:
                        result["outcome"] = "EOF"
                        ended = True
                        break
                    result["received"] += data
                if ended:
                    break
            else:
                result["outcome"] = "never closed"
    finally:
        result["closed_after"] = time.monotonic() - started


def test_slow_header_sender_is_dropped_and_does_not_block_others(gateway):
    gw = gateway(["--web.read-header-timeout=2s"])
    stop = threading.Event()
    results = [{} for _ in range(5)]
    threads = [threading.Thread(target=drip, args=(gw.port, r, stop), daemon=True) for r in results]
    for t in threads:
        t.start()
    try:
        # Meanwhile other clients are served promptly.
        time.sleep(0.3)
        for i in range(10):
            started = time.monotonic()
            r = gw.push(f"job/fast/instance/{i}", f"fast_metric {i}\n", timeout=3)
            assert r.status_code == 200, r.text
            scrape = gw.req("GET", "/metrics", timeout=3)
            assert scrape.status_code == 200
            assert f'fast_metric{{instance="{i}",job="fast"}} {i}' in scrape.text
            # Far below the 2 s the slow senders hold their connections: they block nobody.
            assert time.monotonic() - started < 2.0, f"push+scrape {i} took {time.monotonic() - started:.2f}s"
            time.sleep(0.1)
        for t in threads:
            t.join(timeout=15)
    finally:
        stop.set()
    for r in results:
        assert r.get("outcome") in ("EOF",) or str(r.get("outcome", "")).startswith(("reset", "send failed")), r
        # 2 s of header timeout, slack for the one-second drip and a busy machine.
        assert r["closed_after"] < 8.0, r
        assert r["closed_after"] > 1.5, r
        assert not r["received"] or r["received"].startswith(b"HTTP/1.1 408"), r
    assert not any(line.startswith("slowloris") for line in pushed_series(gw.scrape()))


def read_response(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_max_connections_queues_the_extra_client(gateway):
    gw = gateway(["--web.max-connections=2"])
    time.sleep(0.2)  # the readiness probe's connection (Connection: close) is gone
    idle = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(2)]
    try:
        time.sleep(0.3)  # both accepted: they hold the two slots
        third = socket.create_connection(("127.0.0.1", gw.port), timeout=5)  # lands in the backlog
        result = {}

        def ask():
            started = time.monotonic()
            try:
                third.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                result["response"] = read_response(third, timeout=15)
            except OSError as e:
                result["response"] = repr(e).encode()
            result["after"] = time.monotonic() - started

        waiter = threading.Thread(target=ask, daemon=True)
        waiter.start()
        waiter.join(timeout=1.5)
        assert waiter.is_alive(), f"the third client was served while two connections held both slots: {result}"
        # Free a slot: the waiting client is served.
        idle[0].close()
        freed = time.monotonic()
        waiter.join(timeout=15)
        assert not waiter.is_alive(), "the third client was not served after a slot freed"
        assert result["response"].startswith(b"HTTP/1.1 200"), result
        assert time.monotonic() - freed < 10, result
        third.close()
    finally:
        for s in idle:
            s.close()
    # Once the others are gone, requests are served normally again.
    time.sleep(0.2)
    r = requests.get(gw.url + "/-/healthy", timeout=5)
    assert r.status_code == 200


def test_max_connections_busy_keepalive_clients(gateway):
    """A slot is held per connection, also by an idle keep-alive client after its request;
    closing it lets the next one in."""
    gw = gateway(["--web.max-connections=1"])
    time.sleep(0.2)
    first = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    try:
        first.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(first, 3).startswith(b"HTTP/1.1 200")
        second = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        second.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        second.settimeout(1.0)
        try:
            early = second.recv(65536)
        except socket.timeout:
            early = None
        assert early is None, f"served while the only slot was held: {early!r}"
        first.close()
        assert read_response(second, 3).startswith(b"HTTP/1.1 200")
        second.close()
    finally:
        first.close()


def closed_after(sock, limit):
    """Seconds until the server ends the connection (EOF or reset), or None within `limit`."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
    except socket.timeout:
        return None
    except OSError:
        pass
    return time.monotonic() - started


def test_silent_partial_and_idle_keepalive_connections_are_dropped(gateway):
    gw = gateway(["--web.read-header-timeout=2s"])
    silent = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    partial = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    partial.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no final empty line
    idle = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    idle.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_response(idle, 3).startswith(b"HTTP/1.1 200")
    results = {}
    threads = [threading.Thread(target=lambda n=n, s=s: results.__setitem__(n, closed_after(s, 12)), daemon=True)
               for n, s in (("silent", silent), ("partial", partial), ("idle keep-alive", idle))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    for s in (silent, partial, idle):
        s.close()
    for name, after in results.items():
        assert after is not None and after < 8.0, (name, results)
    assert len(results) == 3, results


def test_slots_held_by_silent_connections_come_back(gateway):
    """--web.max-connections=2 with two connections that never send anything: the header
    timeout frees their slots, and a waiting client is served then."""
    gw = gateway(["--web.max-connections=2", "--web.read-header-timeout=2s"])
    time.sleep(0.2)
    silent = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(2)]
    try:
        time.sleep(0.2)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as third:
            third.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            response = read_response(third, 15)
        waited = time.monotonic() - started
        assert response.startswith(b"HTTP/1.1 200"), response
        assert 1.0 < waited < 8.0, waited
    finally:
        for s in silent:
            s.close()


def test_silent_tls_client_is_dropped_within_the_header_timeout(gateway, cert_dir):
    """A client that connects to the TLS port and never starts the handshake holds a
    connection slot. Go's server bounds the handshake by ReadHeaderTimeout (its
    tlsHandshakeTimeout is the smallest of the read/header/write timeouts), so with
    --web.read-header-timeout=2s it is dropped after about 2 s."""
    config = cert_dir / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n")
    gw = gateway([f"--web.config.file={config}", "--web.read-header-timeout=2s"], scheme="https",
                 verify=str(cert_dir / "ca.pem"))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as silent:
        after = closed_after(silent, 12)
    assert after is not None and after < 8.0, f"the silent TLS connection was closed after {after} s"


def test_client_that_stops_reading_loses_its_slot(gateway):
    """--web.write-timeout: a client that asks for a large /metrics and never reads it is
    dropped once the response has made no progress for the timeout, freeing its slot."""
    gw = gateway(["--web.max-connections=1", "--web.write-timeout=1s"])
    padding = "p" * 60000
    body = "".join(f'big{{i="{i}",pad="{padding}"}} 1\n' for i in range(300))  # an 18 MB scrape
    r = gw.push("job/big", body, timeout=60, headers={"Connection": "close"})
    assert r.status_code == 200, r.text
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window stalls the server soon
    stalled.settimeout(10)
    stalled.connect(("127.0.0.1", gw.port))
    try:
        stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # The only slot is the stalled client's: the next one waits in the backlog until the
        # write timeout drops it.
        started = time.monotonic()
        other = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        try:
            other.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            response = read_response(other, timeout=30)
        finally:
            other.close()
        waited = time.monotonic() - started
        assert response.startswith(b"HTTP/1.1 200"), response
        assert waited < 30, waited
        # The stalled connection was closed before the whole scrape was sent.
        received = 0
        try:
            while chunk := stalled.recv(1 << 20):
                received += len(chunk)
        except OSError:
            pass  # a reset is a close too
        assert received < len(body), f"the stalled client got {received} of about {len(body)} bytes"
    finally:
        stalled.close()
