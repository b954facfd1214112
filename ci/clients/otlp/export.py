"""A short-lived job instrumented with the OpenTelemetry Python SDK: it records a counter, an
up-down counter, a gauge, an explicit and an exponential histogram, and exports them once,
when the provider shuts down, with the OTLP/HTTP protobuf exporter. The endpoint comes from
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, as a user would set it. Exits 1 when an export failed.

Usage: export.py [cumulative|delta]  (the temporality preference of counters and histograms)
"""

import sys

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

results = []


class RecordingExporter(OTLPMetricExporter):
    """The real exporter, remembering whether each export succeeded."""

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        results.append(result)
        return result


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "cumulative"
    temporality = AggregationTemporality.DELTA if mode == "delta" else AggregationTemporality.CUMULATIVE
    preferred = {
        Counter: temporality,
        Histogram: temporality,
        ObservableCounter: temporality,
        UpDownCounter: AggregationTemporality.CUMULATIVE,
        ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
        ObservableGauge: AggregationTemporality.CUMULATIVE,
    }
    exporter = RecordingExporter(preferred_temporality=preferred)
    # Long interval: the one export is the one at shutdown.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create(
            {"service.name": "py_otlp", "service.instance.id": "py-1", "deployment.environment": "ci"}
        ),
        metric_readers=[reader],
        views=[
            View(instrument_name="py.latency", aggregation=ExplicitBucketHistogramAggregation([0.1, 1, 10])),
            View(instrument_name="py.payload", aggregation=ExponentialBucketHistogramAggregation()),
        ],
    )
    meter = provider.get_meter("ci.otlp", "1.0")

    requests = meter.create_counter("py.requests", unit="{request}", description="Requests served.")
    requests.add(3, {"method": "GET"})
    requests.add(2, {"method": "POST"})
    queue = meter.create_up_down_counter("py.queue.size", description="Jobs waiting.")
    queue.add(5)
    queue.add(-2)
    temperature = meter.create_gauge("py.temperature", unit="Cel", description="Last temperature.")
    temperature.set(21.5)
    latency = meter.create_histogram("py.latency", unit="s", description="Latency.")
    for value in (0.05, 0.5, 0.7, 5):
        latency.record(value)
    payload = meter.create_histogram("py.payload", unit="By", description="Payload sizes.")
    for value in (1, 2, 4):
        payload.record(value)

    provider.shutdown()
    if not results or any(r != MetricExportResult.SUCCESS for r in results):
        print(f"export failed: {results}", file=sys.stderr)
        sys.exit(1)
    print(f"exported {len(results)} time(s)")


if __name__ == "__main__":
    main()
