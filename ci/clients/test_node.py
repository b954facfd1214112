"""The real Node client: prom-client's Pushgateway (push = PUT, pushAdd = POST, delete =
DELETE), which pushes text 0.0.4 without a Content-Type header, driven through
ci/clients/node/push.js and checked through our /metrics."""

import time

from conftest import key, node_push, pushed, scrape_text

GROUP = dict(job="node_job", instance="node-1", zone="eu west")


def full_expected(queue=5, **group):
    g = group or GROUP
    return {
        key("node_requests_total", method="GET", **g): 3,
        key("node_queue_size", **g): queue,
        key("node_latency_seconds_bucket", le="0.1", **g): 1,
        key("node_latency_seconds_bucket", le="1", **g): 2,
        key("node_latency_seconds_bucket", le="+Inf", **g): 3,
        key("node_latency_seconds_sum", **g): 2.55,
        key("node_latency_seconds_count", **g): 3,
        key("node_payload_bytes", quantile="0.5", **g): 20,
        key("node_payload_bytes", quantile="0.9", **g): 30,
        key("node_payload_bytes_sum", **g): 60,
        key("node_payload_bytes_count", **g): 3,
    }


def without_push_times(samples):
    return {k: v for k, v in samples.items() if k[0] not in ("push_time_seconds", "push_failure_time_seconds")}


def test_push(gateway):
    node_push(gateway.url, "push", "full")
    samples, types = scrape_text(gateway)
    got = pushed(samples, job="node_job")
    assert without_push_times(got) == full_expected()
    assert got[("push_failure_time_seconds", frozenset(GROUP.items()))] == 0
    assert got[("push_time_seconds", frozenset(GROUP.items()))] > 0
    assert types["node_requests_total"] == "counter"
    assert types["node_queue_size"] == "gauge"
    assert types["node_latency_seconds"] == "histogram"
    assert types["node_payload_bytes"] == "summary"


def test_push_gzip(gateway):
    node_push(gateway.url, "push", "full", "--gzip")
    samples, _ = scrape_text(gateway)
    assert without_push_times(pushed(samples, job="node_job")) == full_expected()


def test_push_add_replaces_only_same_names(gateway):
    node_push(gateway.url, "push", "full")
    node_push(gateway.url, "pushAdd", "small", "--gzip")
    samples, _ = scrape_text(gateway)
    expected = full_expected(queue=9)
    expected[key("node_extra", **GROUP)] = 1
    assert without_push_times(pushed(samples, job="node_job")) == expected


def test_push_replaces_whole_group(gateway):
    node_push(gateway.url, "push", "full")
    node_push(gateway.url, "push", "small")
    samples, _ = scrape_text(gateway)
    assert without_push_times(pushed(samples, job="node_job")) == {
        key("node_queue_size", **GROUP): 9,
        key("node_extra", **GROUP): 1,
    }


def test_delete_removes_only_its_group(gateway):
    node_push(gateway.url, "push", "full")
    node_push(gateway.url, "push", "full", "--job", "node_other")
    node_push(gateway.url, "delete")
    samples, _ = scrape_text(gateway)
    assert pushed(samples, job="node_job") == {}
    other = dict(GROUP, job="node_other")
    assert without_push_times(pushed(samples, job="node_other")) == full_expected(**other)


def test_error_reaches_the_client(gateway):
    # node_queue_size is a gauge in node_job; pushed as a counter into node_other it would make
    # /metrics inconsistent, so the gateway answers 400 and prom-client rejects its promise
    # with that status. The metrics stay as they were; as upstream does, the refused group
    # shows only its push_failure_time_seconds (and push_time_seconds 0).
    node_push(gateway.url, "push", "full")
    since = time.time()
    p = node_push(gateway.url, "push", "conflict", "--job", "node_other", expect_ok=False)
    assert "status 400" in p.stderr, p.stderr
    samples, _ = scrape_text(gateway)
    refused = pushed(samples, job="node_other")
    labels = frozenset(dict(GROUP, job="node_other").items())
    assert set(refused) == {("push_time_seconds", labels), ("push_failure_time_seconds", labels)}, refused
    assert refused[("push_time_seconds", labels)] == 0
    assert since - 1 <= refused[("push_failure_time_seconds", labels)] <= time.time() + 1
    assert without_push_times(pushed(samples, job="node_job")) == full_expected()
