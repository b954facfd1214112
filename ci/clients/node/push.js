// A small pusher built on the real Node client (prom-client's Pushgateway), used by
// ci/clients/test_node.py. prom-client is installed by ci/suites/40-clients.sh into
// .cache/npm and found through NODE_PATH.
//
// Usage: node push.js URL push|pushAdd|delete [full|small|conflict|aggregate] [--gzip] [--job NAME] [--key K]
//
// push is Pushgateway.push (PUT), pushAdd is Pushgateway.pushAdd (POST), delete is
// Pushgateway.delete (DELETE); the grouping is {instance: "node-1", zone: "eu west"}.
// The metric sets (text 0.0.4 bodies, prom-client's only push format) are fixed:
//
//   full:  counter node_requests_total{method="GET"} = 3, gauge node_queue_size = 5,
//          histogram node_latency_seconds (buckets 0.1, 1; observations 0.05 0.5 2),
//          summary node_payload_bytes (percentiles 0.5, 0.9; observations 10 20 30).
//   small: gauge node_queue_size = 9, gauge node_extra = 1.
//   conflict: counter node_queue_size = 1 (a type conflict with full and small).
//   aggregate: one invocation's worth, for /aggregate: counter node_invocations_total = 1,
//          histogram node_duration_seconds (buckets 0.1, 1; one observation of 0.5),
//          gauge node_last_size = 7.
//
// --key K sends the header Idempotency-Key: K (through the Pushgateway's request options).
//
// --gzip sends the body gzip-compressed (Content-Encoding: gzip), as prom-client does when
// that header is given in its request options. Exit status 1 on any error.
'use strict';

const client = require('prom-client');

function fail(msg) {
	process.stderr.write(`push.js: ${msg}\n`);
	process.exit(1);
}

const args = process.argv.slice(2);
const flags = new Set(args.filter(a => a === '--gzip'));
let job = 'node_job';
let idempotencyKey = '';
const positional = [];
for (let i = 0; i < args.length; i++) {
	if (args[i] === '--gzip') continue;
	if (args[i] === '--key') {
		idempotencyKey = args[++i];
		continue;
	}
	if (args[i] === '--job') {
		job = args[++i];
		continue;
	}
	positional.push(args[i]);
}
const [url, op, set = 'full'] = positional;
if (!url || !op) fail('usage: node push.js URL push|pushAdd|delete [full|small|conflict] [--gzip] [--job NAME]');

const registry = new client.Registry();
if (set === 'full') {
	const requests = new client.Counter({
		name: 'node_requests_total',
		help: 'Requests handled by the Node pusher.',
		labelNames: ['method'],
		registers: [registry],
	});
	requests.inc({ method: 'GET' }, 3);
	const queue = new client.Gauge({
		name: 'node_queue_size',
		help: 'A gauge.',
		registers: [registry],
	});
	queue.set(5);
	const latency = new client.Histogram({
		name: 'node_latency_seconds',
		help: 'A histogram.',
		buckets: [0.1, 1],
		registers: [registry],
	});
	for (const v of [0.05, 0.5, 2]) latency.observe(v);
	const payload = new client.Summary({
		name: 'node_payload_bytes',
		help: 'A summary.',
		percentiles: [0.5, 0.9],
		registers: [registry],
	});
	for (const v of [10, 20, 30]) payload.observe(v);
} else if (set === 'small') {
	const queue = new client.Gauge({
		name: 'node_queue_size',
		help: 'A gauge.',
		registers: [registry],
	});
	queue.set(9);
	const extra = new client.Gauge({
		name: 'node_extra',
		help: 'Added by the small set.',
		registers: [registry],
	});
	extra.set(1);
} else if (set === 'conflict') {
	const queue = new client.Counter({
		name: 'node_queue_size',
		help: 'A gauge.',
		registers: [registry],
	});
	queue.inc(1);
} else if (set === 'aggregate') {
	new client.Counter({
		name: 'node_invocations_total',
		help: 'Invocations.',
		registers: [registry],
	}).inc(1);
	new client.Histogram({
		name: 'node_duration_seconds',
		help: 'Duration.',
		buckets: [0.1, 1],
		registers: [registry],
	}).observe(0.5);
	new client.Gauge({
		name: 'node_last_size',
		help: 'Last size.',
		registers: [registry],
	}).set(7);
} else {
	fail(`unknown set ${set}`);
}

const options = { timeout: 10000 };
options.headers = {};
if (flags.has('--gzip')) options.headers['Content-Encoding'] = 'gzip';
if (idempotencyKey) options.headers['Idempotency-Key'] = idempotencyKey;
const gateway = new client.Pushgateway(url, options, registry);
const params = { jobName: job, groupings: { instance: 'node-1', zone: 'eu west' } };

let promise;
if (op === 'push') promise = gateway.push(params);
else if (op === 'pushAdd') promise = gateway.pushAdd(params);
else if (op === 'delete') promise = gateway.delete(params);
else fail(`unknown op ${op}`);

promise
	.then(({ resp }) => {
		process.stdout.write(`${op}: status ${resp.statusCode}\n`);
	})
	.catch(err => fail(`${op}: ${err.message}`));
