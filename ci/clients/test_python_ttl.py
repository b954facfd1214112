"""The real Python client (prometheus_client) sending Pushgateway-TTL through the `handler`
argument of push_to_gateway, as the README shows: the TTL reaches the group (its expires_at in
/api/v1/metrics), a refused value surfaces as the client's HTTP error, and a push without the
handler hands the group back to the rules."""

import time
import urllib.error
from datetime import datetime

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.exposition import default_handler

from conftest import GATEWAY_BIN, start_gateway


def ttl_handler(ttl):
    """The README's handler: the client's own headers (content type) plus the TTL."""
    def handler(url, method, timeout, headers, data):
        return default_handler(url, method, timeout, headers + [("Pushgateway-TTL", ttl)], data)
    return handler


def registry():
    r = CollectorRegistry()
    Gauge("job_last_success_unixtime", "Last success.", registry=r).set_to_current_time()
    return r


def group(gw, job):
    data = requests.get(gw.url + "/api/v1/metrics", timeout=10).json()["data"]
    return next(g for g in data if g["labels"]["job"] == job)


def seconds_to_expiry(g):
    expires = datetime.fromisoformat(g["expires_at"].replace("Z", "+00:00")).timestamp()
    pushed = float(g["push_time_seconds"]["metrics"][0]["value"])
    return round(expires - pushed)


@pytest.fixture
def capped():
    g = start_gateway(GATEWAY_BIN, "ours-ttl", extra=["--expiry.max-ttl=3h"])
    yield g
    g.stop()


def test_push_to_gateway_sends_the_ttl_through_its_handler(capped):
    address = f"127.0.0.1:{capped.port}"
    push_to_gateway(address, job="nightly-backup", registry=registry(), handler=ttl_handler("2h"))
    assert seconds_to_expiry(group(capped, "nightly-backup")) == 7200
    # Refused above --expiry.max-ttl: the client raises with the gateway's reason.
    with pytest.raises(urllib.error.HTTPError) as refused:
        push_to_gateway(address, job="nightly-backup", registry=registry(), handler=ttl_handler("4h"))
    assert refused.value.code == 400
    assert "--expiry.max-ttl" in refused.value.read().decode()
    assert seconds_to_expiry(group(capped, "nightly-backup")) == 7200, "the stored TTL is unchanged"
    # Without the header (and without rules) the group has no deadline any more.
    push_to_gateway(address, job="nightly-backup", registry=registry())
    assert "expires_at" not in group(capped, "nightly-backup")
    # A tiny TTL expires the group; the sweep runs every second, so poll.
    push_to_gateway(address, job="brief", registry=registry(), handler=ttl_handler("1ms"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if 'job="brief"' not in requests.get(capped.url + "/metrics", timeout=10).text:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the group pushed with a 1ms TTL did not expire")
