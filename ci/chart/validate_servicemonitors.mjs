// Validates ServiceMonitors against the Prometheus Operator CRD schema.
// Reads a JSON array of {source, object} from stdin; prints one line per invalid object and
// exits 1 if any is invalid. OPERATOR_NODE_MODULES names the node_modules that holds
// @kubernetes-models/prometheus-operator.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.OPERATOR_NODE_MODULES;
if (!modules) {
  console.error("OPERATOR_NODE_MODULES is not set");
  process.exit(2);
}
const entry = join(modules, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js");
const { ServiceMonitor } = await import(pathToFileURL(entry).href);

const items = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const { source, object } of items) {
  try {
    new ServiceMonitor(object).validate();
  } catch (err) {
    failed += 1;
    console.log(`${source}: ${err.message}`);
  }
}
console.log(`validated ${items.length} ServiceMonitor(s), ${failed} invalid`);
process.exit(failed ? 1 : 0);
