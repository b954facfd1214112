"""Aggregating pushes from the three real clients, unchanged but for their gateway URL, which
ends in /aggregate: Python prometheus_client (push_to_gateway, pushadd_to_gateway,
delete_from_gateway), Go client_golang's push package (Push, Add, Delete; delimited
protobuf with a native histogram), Node prom-client's Pushgateway (push, pushAdd, delete).
Each push adds one invocation's counts; an Idempotency-Key sent through each client's own
hook makes a retried push count once."""

from prometheus_client import CollectorRegistry, Counter, Histogram, delete_from_gateway
from prometheus_client import push_to_gateway, pushadd_to_gateway
from prometheus_client.exposition import default_handler

from conftest import go_pusher, go_scrape_protobuf, key, node_push, pushed, scrape_text


def python_registry(duration):
    registry = CollectorRegistry()
    Counter("py_invocations", "Invocations.", registry=registry).inc()
    Histogram("py_duration_seconds", "Duration.", buckets=(0.1, 1), registry=registry).observe(duration)
    return registry


def keyed_handler(idempotency_key):
    """A prometheus_client push handler that adds an Idempotency-Key header."""

    def handler(url, method, timeout, headers, data):
        return default_handler(url, method, timeout, headers + [("Idempotency-Key", idempotency_key)], data)

    return handler


def test_python_client(gateway):
    address = gateway.url.removeprefix("http://") + "/aggregate"
    group = dict(job="lambda-py", instance="")
    push_to_gateway(address, job="lambda-py", registry=python_registry(0.05))
    pushadd_to_gateway(address, job="lambda-py", registry=python_registry(0.5))
    push_to_gateway(address, job="lambda-py", registry=python_registry(2))
    # A retry with the key of an earlier push changes nothing.
    handler = keyed_handler("invocation-4")
    push_to_gateway(address, job="lambda-py", registry=python_registry(0.5), handler=handler)
    push_to_gateway(address, job="lambda-py", registry=python_registry(0.5), handler=handler)
    samples, types = scrape_text(gateway)
    got = pushed(samples, job="lambda-py")
    assert got[key("py_invocations_total", **group)] == 4
    assert got[key("py_duration_seconds_bucket", le="0.1", **group)] == 1
    assert got[key("py_duration_seconds_bucket", le="1", **group)] == 3
    assert got[key("py_duration_seconds_bucket", le="+Inf", **group)] == 4
    assert got[key("py_duration_seconds_count", **group)] == 4
    assert abs(got[key("py_duration_seconds_sum", **group)] - 3.05) < 1e-9
    assert types["py_invocations_total"] == "counter"
    delete_from_gateway(address, job="lambda-py")
    samples, _ = scrape_text(gateway)
    assert pushed(samples, job="lambda-py") == {}


GO_GROUP = dict(job="lambda-go", instance="go-1")


def test_go_client(gateway):
    url = gateway.url + "/aggregate"
    args = ["-url", url, "-job", "lambda-go", "-group", "instance=go-1", "-set", "aggregate"]
    go_pusher("push", *args, "-temp", "0.05")
    go_pusher("add", *args, "-temp", "0.5")
    go_pusher("push", *args, "-temp", "2", "-idempotency-key", "go-3")
    go_pusher("push", *args, "-temp", "2", "-idempotency-key", "go-3")
    samples, _ = scrape_text(gateway)
    got = pushed(samples, job="lambda-go")
    g = GO_GROUP
    assert got[key("agg_invocations_total", **g)] == 3
    assert got[key("agg_duration_seconds_bucket", le="0.1", **g)] == 1
    assert got[key("agg_duration_seconds_bucket", le="1", **g)] == 2
    assert got[key("agg_duration_seconds_count", **g)] == 3
    assert got[key("agg_payload_bytes_sum", **g)] == 30
    assert got[key("agg_payload_bytes_count", **g)] == 3
    assert got[key("agg_last_temp", **g)] == 2
    # The native histogram, read back by the Go client's own decoder: three observations
    # (0.05, 0.5 and 2) in three buckets, at the schema factor 1.1 gives (3).
    _, families = go_scrape_protobuf(gateway.url + "/metrics")
    native = families["agg_native_seconds"]["metric"][0]["histogram"]
    assert int(native["sampleCount"]) == 3
    assert native["schema"] == 3
    deltas = [int(d) for d in native["positiveDelta"]]
    counts, running = [], 0
    for d in deltas:
        running += d
        counts.append(running)
    assert sum(counts) == 3 and sorted(c for c in counts if c) == [1, 1, 1], native
    go_pusher("delete", "-url", url, "-job", "lambda-go", "-group", "instance=go-1")
    samples, _ = scrape_text(gateway)
    assert pushed(samples, job="lambda-go") == {}


NODE_GROUP = dict(job="lambda-node", instance="node-1", zone="eu west")


def test_node_client(gateway):
    url = gateway.url + "/aggregate"
    node_push(url, "push", "aggregate", "--job", "lambda-node")
    node_push(url, "pushAdd", "aggregate", "--job", "lambda-node", "--gzip")
    node_push(url, "push", "aggregate", "--job", "lambda-node", "--key", "node-3")
    node_push(url, "push", "aggregate", "--job", "lambda-node", "--key", "node-3")
    samples, _ = scrape_text(gateway)
    got = pushed(samples, job="lambda-node")
    g = NODE_GROUP
    assert got[key("node_invocations_total", **g)] == 3
    assert got[key("node_duration_seconds_bucket", le="0.1", **g)] == 0
    assert got[key("node_duration_seconds_bucket", le="1", **g)] == 3
    assert got[key("node_duration_seconds_count", **g)] == 3
    assert got[key("node_last_size", **g)] == 7
    node_push(url, "delete", "--job", "lambda-node")
    samples, _ = scrape_text(gateway)
    assert pushed(samples, job="lambda-node") == {}
