"""rate_limit in --web.config.file: exporter-toolkit's token bucket, one for the whole server,
429 when it is empty, probes exempt, reloaded with the file."""

import pytest
import requests

from conftest import assert_refused_at_start, wait_until

# An interval long enough that no token comes back while a test runs.
SLOW = "1h"


def limited(burst, interval=SLOW):
    return f"rate_limit:\n  interval: {interval}\n  burst: {burst}\n"


def fresh_get(gw, path):
    """A request on a new connection each time, as many clients would send them."""
    return requests.get(gw.url + path, timeout=5, headers={"Connection": "close"})


def test_burst_then_429_with_the_reason(gateway, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text(limited(3))
    # Readiness probes are exempt, so starting costs no token.
    gw = gateway([f"--web.config.file={config}"])
    statuses = [fresh_get(gw, "/api/v1/status").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    # The bucket is per server, not per connection or endpoint: every path is refused now.
    for method, path in [("GET", "/metrics"), ("PUT", "/metrics/job/j"), ("GET", "/")]:
        r = requests.request(method, gw.url + path, data=b"m 1\n" if method == "PUT" else None, timeout=5)
        assert r.status_code == 429, (method, path, r.status_code, r.text)
        assert r.text == "Too Many Requests\n"
        assert 0 < int(r.headers["Retry-After"]) <= 3600


def test_probes_are_not_limited(gateway, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text(limited(1))
    gw = gateway([f"--web.config.file={config}"])
    assert fresh_get(gw, "/metrics").status_code == 200
    assert fresh_get(gw, "/metrics").status_code == 429
    for path in ("/-/healthy", "/-/ready"):
        for _ in range(5):
            assert fresh_get(gw, path).status_code == 200, path


def test_tokens_come_back_after_the_interval(gateway, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text(limited(2, interval="200ms"))
    gw = gateway([f"--web.config.file={config}"])
    # Drain the bucket, then wait (polling, no fixed sleep) for a token to come back.
    assert wait_until(lambda: fresh_get(gw, "/metrics").status_code == 429, timeout=10)
    assert wait_until(lambda: fresh_get(gw, "/metrics").status_code == 200, timeout=10)


def test_turned_on_and_off_by_reload(gateway, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("")
    gw = gateway([f"--web.config.file={config}"])
    for _ in range(20):
        assert fresh_get(gw, "/metrics").status_code == 200
    config.write_text(limited(2))
    assert wait_until(lambda: fresh_get(gw, "/metrics").status_code == 429, timeout=10), gw.log_text()
    assert "rate limiter is enabled" in gw.log_text()
    config.write_text("rate_limit:\n  interval: 0s\n  burst: 5\n")
    assert wait_until(lambda: fresh_get(gw, "/metrics").status_code == 200, timeout=10), gw.log_text()
    for _ in range(20):
        assert fresh_get(gw, "/metrics").status_code == 200


def test_interval_zero_is_no_limit(gateway, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("rate_limit:\n  interval: 0s\n  burst: 0\n")
    gw = gateway([f"--web.config.file={config}"])
    for _ in range(20):
        assert fresh_get(gw, "/metrics").status_code == 200


@pytest.mark.parametrize("text, named", [
    (limited(0), "burst"),
    (limited(-1), "burst"),
    (limited(2**32), "burst"),
    ("rate_limit:\n  interval: 1s\n", "burst"),
    (limited(1, interval="soon"), "interval"),
    (limited(1, interval="-1s"), "interval"),
    ("rate_limit:\n  interval: 1s\n  burst: 1\n  per_ip: true\n", "per_ip"),
], ids=["burst 0", "negative burst", "burst too large", "no burst", "bad interval", "negative interval",
        "unknown key"])
def test_invalid_rate_limit_stops_the_start(tmp_path, text, named):
    config = tmp_path / "web.yml"
    config.write_text(text)
    assert_refused_at_start(config, named)
