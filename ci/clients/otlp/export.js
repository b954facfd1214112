// A short-lived job instrumented with the OpenTelemetry JS SDK: it records a counter, an
// up-down counter, a gauge, an explicit and an exponential histogram, and exports them once,
// when the provider shuts down, with the OTLP/HTTP JSON exporter. The endpoint comes from
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, as a user would set it. Exits 1 when an export failed.
'use strict';

const { MeterProvider, PeriodicExportingMetricReader, AggregationType } = require('@opentelemetry/sdk-metrics');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const results = [];

class RecordingExporter extends OTLPMetricExporter {
  export(metrics, callback) {
    super.export(metrics, (result) => {
      results.push(result);
      callback(result);
    });
  }
}

async function main() {
  const reader = new PeriodicExportingMetricReader({
    exporter: new RecordingExporter(),
    // Long interval: the one export is the one at shutdown.
    exportIntervalMillis: 3600000,
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': 'node_otlp',
      'service.namespace': 'ci',
      'service.instance.id': 'node-1',
      'host.arch': 'test',
    }),
    readers: [reader],
    views: [
      {
        instrumentName: 'node.latency',
        aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [0.1, 1, 10] } },
      },
      { instrumentName: 'node.payload', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } },
    ],
  });
  const meter = provider.getMeter('ci.otlp.node', '2.0');

  const requests = meter.createCounter('node.requests', { unit: '{request}', description: 'Requests served.' });
  requests.add(3, { method: 'GET' });
  requests.add(2, { method: 'POST' });
  const queue = meter.createUpDownCounter('node.queue.size', { description: 'Jobs waiting.' });
  queue.add(5);
  queue.add(-2);
  const temperature = meter.createGauge('node.temperature', { unit: 'Cel', description: 'Last temperature.' });
  temperature.record(21.5);
  const latency = meter.createHistogram('node.latency', { unit: 's', description: 'Latency.' });
  for (const value of [0.05, 0.5, 0.7, 5]) latency.record(value);
  const payload = meter.createHistogram('node.payload', { unit: 'By', description: 'Payload sizes.' });
  for (const value of [1, 2, 4]) payload.record(value);

  await provider.shutdown();
  if (results.length === 0 || results.some((r) => r.code !== 0)) {
    console.error('export failed:', results.map((r) => (r.error ? String(r.error) : r.code)));
    process.exit(1);
  }
  console.log(`exported ${results.length} time(s)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
