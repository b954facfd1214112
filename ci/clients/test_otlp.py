"""The real OpenTelemetry SDKs pushing to our OTLP receiver (POST /api/v1/otlp/v1/metrics):
Python's opentelemetry-sdk with the OTLP/HTTP protobuf exporter (ci/clients/otlp/export.py) and
Node's @opentelemetry/sdk-metrics with the OTLP/HTTP JSON exporter (ci/clients/otlp/export.js),
each a short-lived process exporting a counter, an up-down counter, a gauge, an explicit and an
exponential histogram once at shutdown, pointed at the gateway by
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as a user would. A real Prometheus (Debian's, with native
histograms) then scrapes the gateway, and the series it stored (names, labels, values, bucket
counts) are compared with what the SDKs recorded. Python's SDK also exports deltas
(preferred_temporality), twice: the gateway adds them up."""

import os
import subprocess
import sys
import time

import pytest
import requests

from conftest import GATEWAY_BIN, HERE, NODE_BIN, parse_text, pushed, start_gateway
from test_prometheus import Prometheus

OTLP_PATH = "/api/v1/otlp/v1/metrics"
PY_SCRIPT = os.path.join(HERE, "otlp", "export.py")
NODE_SCRIPT = os.path.join(HERE, "otlp", "export.js")

# (job, instance, metric prefix, scope name, scope version) of each SDK's export.
PYTHON = ("py_otlp", "py-1", "py", "ci.otlp", "1.0")
NODE = ("ci/node_otlp", "node-1", "node", "ci.otlp.node", "2.0")


def export(script_argv, gateway, *args):
    env = dict(os.environ, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=gateway.url + OTLP_PATH)
    p = subprocess.run([*script_argv, *args], capture_output=True, text=True, timeout=120, env=env,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        pytest.fail(f"{script_argv[-1]} failed ({p.returncode}):\nstdout: {p.stdout}\nstderr: {p.stderr}\n"
                    f"gateway log:\n{gateway.log_text()}")
    return p


def python_export(gateway, *args):
    return export([sys.executable, PY_SCRIPT], gateway, *args)


def node_export(gateway):
    return export([NODE_BIN, NODE_SCRIPT], gateway)


def expected_samples(prefix, scope_name, scope_version):
    """What the SDK recorded, as the samples Prometheus stores (job and instance left out)."""
    scope = {"otel_scope_name": scope_name, "otel_scope_version": scope_version}

    def k(name, **labels):
        return (f"{prefix}_{name}", frozenset(dict(scope, **labels).items()))

    return {
        k("requests_total", method="GET"): "3",
        k("requests_total", method="POST"): "2",
        k("queue_size"): "3",
        k("temperature_celsius"): "21.5",
        k("latency_seconds_bucket", le=0.1): "1",
        k("latency_seconds_bucket", le=1.0): "3",
        k("latency_seconds_bucket", le=10.0): "4",
        k("latency_seconds_bucket", le=float("inf")): "4",
        k("latency_seconds_sum"): "6.25",
        k("latency_seconds_count"): "4",
    }


@pytest.fixture(scope="module")
def stack():
    gw = start_gateway(GATEWAY_BIN, "ours-otlp")
    prom = None
    try:
        python_export(gw)
        node_export(gw)
        prom = Prometheus("otlp", gw.port, native_histograms=True)
        deadline = time.monotonic() + 120
        jobs = f'{{__name__="push_time_seconds",job=~"{PYTHON[0]}|{NODE[0]}"}}'
        while len(prom.query(jobs)) != 2:
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus did not ingest both groups within 120 s: {prom.target()}\n"
                            f"{prom.process.log_text()}")
            time.sleep(0.25)
        yield gw, prom
    finally:
        if prom:
            prom.stop()
        gw.stop()


@pytest.mark.parametrize("sdk", [PYTHON, NODE], ids=["python-protobuf", "node-json"])
def test_stored_series_are_what_the_sdk_recorded(stack, sdk):
    _, prom = stack
    job, instance, prefix, scope_name, scope_version = sdk
    result = prom.query(f'{{job="{job}",instance="{instance}"}}')
    samples, natives, target_info = {}, {}, []
    for s in result:
        labels = {k: v for k, v in s["metric"].items() if k not in ("job", "instance")}
        if "le" in labels:
            # A protobuf scrape gives Prometheus 2 the float bound (le="1.0" for 1).
            labels["le"] = float(labels["le"])
        name = labels.pop("__name__")
        if name == "target_info":
            target_info.append(labels)
        elif name.startswith("push_"):
            continue
        elif "histogram" in s:
            natives[name] = (labels, s["histogram"][1])
        else:
            samples[(name, frozenset(labels.items()))] = s["value"][1]
    assert samples == expected_samples(prefix, scope_name, scope_version)

    # The exponential histogram, as a native histogram: count, sum and one observation in
    # each of the buckets ending at 1, 2 and 4.
    assert list(natives) == [f"{prefix}_payload_bytes"], natives
    labels, histogram = natives[f"{prefix}_payload_bytes"]
    assert labels == {"otel_scope_name": scope_name, "otel_scope_version": scope_version}
    assert (histogram["count"], histogram["sum"]) == ("3", "7"), histogram
    buckets = {(upper, count) for _, _, upper, count in histogram["buckets"]}
    assert buckets == {("1", "1"), ("2", "1"), ("4", "1")}, histogram

    # The other resource attributes, once, in target_info.
    assert len(target_info) == 1, target_info
    info = target_info[0]
    if sdk is PYTHON:
        # Python merges the SDK's own attributes into the resource it is given.
        assert info.get("deployment_environment") == "ci", info
        assert (info.get("telemetry_sdk_name"), info.get("telemetry_sdk_language")) == ("opentelemetry", "python"), info
    else:
        assert info == {"host_arch": "test"}, info
    assert not any(k.startswith("service_") for k in info), info


def test_delta_exports_add_up(gateway):
    # Counters and histograms as deltas (preferred_temporality), from two short-lived
    # processes: each export's increments are added to the group, while the up-down counter
    # and the gauge (cumulative) replace what is stored.
    python_export(gateway, "delta")
    python_export(gateway, "delta")
    r = requests.get(gateway.url + "/metrics", timeout=10)
    assert r.status_code == 200
    samples, types = parse_text(r.text)
    got = {(name, frozenset((k, v) for k, v in labels if k not in ("job", "instance"))): value
           for (name, labels), value in pushed(samples, job="py_otlp", instance="py-1").items()
           if not name.startswith(("push_", "target_info"))}
    scope = {"otel_scope_name": "ci.otlp", "otel_scope_version": "1.0"}

    def k(name, **labels):
        return (f"py_{name}", frozenset(dict(scope, **labels).items()))

    assert got == {
        k("requests_total", method="GET"): 6,
        k("requests_total", method="POST"): 4,
        k("queue_size"): 3,
        k("temperature_celsius"): 21.5,
        k("latency_seconds_bucket", le="0.1"): 2,
        k("latency_seconds_bucket", le="1"): 6,
        k("latency_seconds_bucket", le="10"): 8,
        k("latency_seconds_bucket", le="+Inf"): 8,
        k("latency_seconds_sum"): 12.5,
        k("latency_seconds_count"): 8,
        # The exponential histogram is native: the text format shows its count, sum and +Inf.
        k("payload_bytes_bucket", le="+Inf"): 6,
        k("payload_bytes_count"): 6,
        k("payload_bytes_sum"): 14,
    }, got
    assert types["py_requests_total"] == "counter", types
    assert types["py_latency_seconds"] == "histogram", types
