// Validates custom resources against their CRD schemas, as the @kubernetes-models packages carry
// them: ServiceMonitor and PrometheusRule (Prometheus Operator) and HTTPRoute (Gateway API).
// Reads a JSON array of {source, object} from stdin; prints one line per invalid object and
// exits 1 if any is invalid. CRD_NODE_MODULES names the node_modules that holds the packages.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.CRD_NODE_MODULES;
if (!modules) {
  console.error("CRD_NODE_MODULES is not set");
  process.exit(2);
}
const load = async (file) => import(pathToFileURL(join(modules, file)).href);
const { ServiceMonitor, PrometheusRule } = await load("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js");
const { HTTPRoute } = await load("@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/index.js");
const models = {
  "monitoring.coreos.com/v1 ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1 PrometheusRule": PrometheusRule,
  "gateway.networking.k8s.io/v1 HTTPRoute": HTTPRoute,
};

const items = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const { source, object } of items) {
  const kind = `${object.apiVersion} ${object.kind}`;
  const Model = models[kind];
  try {
    if (!Model) throw new Error(`no schema for ${kind}`);
    new Model(object).validate();
  } catch (err) {
    failed += 1;
    console.log(`${source} ${kind}: ${err.message}`);
  }
}
console.log(`validated ${items.length} custom resource(s), ${failed} invalid`);
process.exit(failed ? 1 : 0);
