"""The real Python client (prometheus_client) against our gateway: push_to_gateway (PUT),
pushadd_to_gateway (POST), delete_from_gateway (DELETE), checked through /metrics. Where the
reference supports the same thing, the same client calls also go to the reference and the
normalised expositions must be equal."""

import difflib
import time
import urllib.error

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    delete_from_gateway,
    disable_created_metrics,
    push_to_gateway,
    pushadd_to_gateway,
)

import expo
from conftest import ours_only

# *_created samples carry the creation time, which differs between two registries.
disable_created_metrics()


def _scrape(gw):
    r = gw.metrics()
    assert r.status == 200, f"{gw.label} /metrics answered {r.status}: {r.text[:300]}"
    return expo.parse(r.text)


def _series(gw, name):
    """{frozenset(labels): value text} of every sample called `name`."""
    return expo.samples_of(_scrape(gw), name)


def _labels(**kw):
    return frozenset(kw.items())


def _same(reference, ours):
    a = expo.canonical_ties(expo.normalise(_scrape(reference)))
    b = expo.canonical_ties(expo.normalise(_scrape(ours)))
    assert a == b, "reference and ours differ after the same client calls:\n" + "\n".join(
        difflib.unified_diff(expo.render(a).splitlines(), expo.render(b).splitlines(), "reference", "ours", lineterm=""))


def _registry(value=1):
    reg = CollectorRegistry()
    c = Counter("client_requests", "Requests handled.", ["code"], registry=reg)
    c.labels("200").inc(3 * value)
    c.labels("500").inc(value)
    g = Gauge("client_last_run", "Last run.", registry=reg)
    g.set(1.5e9 * value)
    h = Histogram("client_latency_seconds", "Latency.", buckets=(0.1, 1), registry=reg)
    h.observe(0.05)
    h.observe(0.5 * value)
    s = Summary("client_size_bytes", "Size.", registry=reg)
    s.observe(100 * value)
    return reg


def _wait_until(fn, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


@pytest.fixture
def both(reference, ours):
    return reference, ours


def test_push_to_gateway(both):
    reference, ours = both
    for gw in both:
        push_to_gateway(gw.address, job="batch", registry=_registry())
    key = dict(job="batch", instance="")
    assert _series(ours, "client_requests_total") == {
        _labels(code="200", **key): "3",
        _labels(code="500", **key): "1",
    }
    assert _series(ours, "client_last_run") == {_labels(**key): "1.5e+09"}
    assert _series(ours, "client_latency_seconds_bucket") == {
        _labels(le="0.1", **key): "1", _labels(le="1", **key): "2", _labels(le="+Inf", **key): "2"}
    assert _series(ours, "client_latency_seconds_count") == {_labels(**key): "2"}
    assert _series(ours, "client_size_bytes_sum") == {_labels(**key): "100"}
    types = {f.name: f.type for f in _scrape(ours)}
    assert types["client_requests_total"] == "counter"
    assert types["client_latency_seconds"] == "histogram"
    assert types["client_size_bytes"] == "summary"
    assert types["client_last_run"] == "gauge"
    assert float(next(iter(_series(ours, "push_time_seconds").values()))) > 0
    _same(reference, ours)


def test_push_replaces_and_pushadd_merges(both):
    reference, ours = both
    for gw in both:
        push_to_gateway(gw.address, job="batch", registry=_registry())
        other = CollectorRegistry()
        Gauge("client_last_run", "Last run.", registry=other).set(7)
        Gauge("client_extra", "Extra.", registry=other).set(8)
        pushadd_to_gateway(gw.address, job="batch", registry=other)
    key = _labels(job="batch", instance="")
    assert _series(ours, "client_last_run") == {key: "7"}  # replaced by POST
    assert _series(ours, "client_extra") == {key: "8"}  # added
    assert len(_series(ours, "client_requests_total")) == 2  # untouched by POST
    _same(reference, ours)
    for gw in both:
        only = CollectorRegistry()
        Gauge("client_only", "Only.", registry=only).set(9)
        push_to_gateway(gw.address, job="batch", registry=only)
    assert _series(ours, "client_only") == {key: "9"}
    assert _series(ours, "client_requests_total") == {}  # PUT replaced the whole group
    assert _series(ours, "client_last_run") == {}
    _same(reference, ours)


def test_delete_from_gateway(both):
    reference, ours = both
    for gw in both:
        push_to_gateway(gw.address, job="batch", registry=_registry(), grouping_key={"instance": "a"})
        push_to_gateway(gw.address, job="batch", registry=_registry(2), grouping_key={"instance": "b"})
        delete_from_gateway(gw.address, job="batch", grouping_key={"instance": "a"})
    remaining = _wait_until(lambda: (lambda s: s if len(s) == 1 else None)(_series(ours, "push_time_seconds")))
    assert remaining and set(remaining) == {_labels(job="batch", instance="b")}
    assert _wait_until(lambda: len(_series(reference, "push_time_seconds")) == 1)
    _same(reference, ours)
    for gw in both:
        delete_from_gateway(gw.address, job="batch", grouping_key={"instance": "b"})
        delete_from_gateway(gw.address, job="never-pushed")  # unknown group: still 202, no exception
    assert _wait_until(lambda: _series(ours, "push_time_seconds") == {})
    assert _wait_until(lambda: _series(reference, "push_time_seconds") == {})
    _same(reference, ours)


def test_grouping_key_with_slash_uses_base64(both):
    """A '/' (or a space) in a value makes the client send `name@base64/<urlsafe base64>`."""
    reference, ours = both
    key = {"path": "/var/lib/x", "instance": "host:9091", "space": "a b"}
    for gw in both:
        push_to_gateway(gw.address, job="job/with/slashes", registry=_registry(), grouping_key=key)
    expected = _labels(job="job/with/slashes", **key)
    assert set(_series(ours, "client_last_run")) == {expected}
    assert set(_series(ours, "push_time_seconds")) == {expected}
    _same(reference, ours)
    for gw in both:
        delete_from_gateway(gw.address, job="job/with/slashes", grouping_key=key)
    assert _wait_until(lambda: _series(ours, "client_last_run") == {})
    assert _wait_until(lambda: _series(reference, "client_last_run") == {})


def test_grouping_key_empty_value_and_special_characters(both):
    """An empty value is sent as `name@base64/=`; other values are percent-encoded (quote_plus)."""
    reference, ours = both
    key = {"empty": "", "plus": "a+b&c=d", "utf8": "héllo"}
    for gw in both:
        push_to_gateway(gw.address, job="batch", registry=_registry(), grouping_key=key)
    assert set(_series(ours, "client_last_run")) == {_labels(job="batch", instance="", **key)}
    _same(reference, ours)


def test_inconsistent_push_raises_in_the_client(both):
    """Ours answers 400 to an inconsistent push, which the client raises as an error; the store keeps
    the previous push."""
    reference, ours = both
    for gw in both:
        push_to_gateway(gw.address, job="a", registry=_registry())
        reg = CollectorRegistry()
        Counter("client_last_run", "Now a counter.", registry=reg).inc()  # client_last_run_total: fine
        Gauge("client_requests_total", "Now a gauge.", registry=reg).set(1)  # clashes with counter in job a
        with pytest.raises(urllib.error.HTTPError) as exc:
            push_to_gateway(gw.address, job="b", registry=reg)
        assert exc.value.code == 400
    assert set(_series(ours, "client_last_run")) == {_labels(job="a", instance="")}
    failures = _series(ours, "push_failure_time_seconds")
    assert float(failures[_labels(job="b", instance="")]) > 0
    _same(reference, ours)


def test_gzip_compression(both):
    reference, ours = both
    for gw in both:
        push_to_gateway(gw.address, job="gz", registry=_registry(), compression="gzip")
    assert _series(ours, "client_last_run") == {_labels(job="gz", instance=""): "1.5e+09"}
    _same(reference, ours)


@ours_only
def test_snappy_compression(ours):
    """v1.11 feature (the v1.5.1 reference has no snappy): the client's snappy stream is accepted."""
    push_to_gateway(ours.address, job="sn", registry=_registry(), compression="snappy")
    assert _series(ours, "client_last_run") == {_labels(job="sn", instance=""): "1.5e+09"}
