"""Writes (or prints) charts/pushgateway/files/pushgateway.rules.yaml: the spec of the
PrometheusRule the chart renders with its default values (release "pushgateway" in namespace
"monitoring", prometheusRule.enabled=true), as a plain Prometheus rules file.

    HELM=helm python3 ci/chart/rules_file.py --write   # after changing templates/_rules.tpl

test_alerts.py checks that the committed file is exactly this output.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "pushgateway"
PLAIN = CHART / "files" / "pushgateway.rules.yaml"

HEADER = """\
# Alerting rules of the Pushgateway for a Prometheus without the Prometheus Operator:
#   rule_files: [pushgateway.rules.yaml]
# Generated from charts/pushgateway/templates/_rules.tpl with the chart's default values
# (ci/chart/rules_file.py); do not edit by hand. They expect the gateway scraped as
# job="pushgateway" with honor_labels: true, and cAdvisor and kube-state-metrics series for
# the memory and readiness alerts. For other thresholds, per-job maximum ages or the
# replication alerts, render your own:
#   helm template pushgateway charts/pushgateway --namespace monitoring \\
#     --set prometheusRule.enabled=true --values my-values.yaml \\
#     --show-only templates/prometheusrule.yaml
# and take its spec. The runbooks are in charts/pushgateway/README.md.
"""


def render_spec(helm, release="pushgateway", namespace="monitoring", extra=()):
    """The text of the rendered PrometheusRule's spec, unindented: a Prometheus rules file."""
    out = subprocess.run(
        [helm, "template", release, str(CHART), "--namespace", namespace, "--set", "prometheusRule.enabled=true",
         *extra, "--show-only", "templates/prometheusrule.yaml"],
        check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    start = lines.index("spec:") + 1
    body = []
    for line in lines[start:]:
        if line and not line.startswith("  "):
            break
        body.append(line[2:])
    return "\n".join(body).rstrip("\n") + "\n"


def plain_file(helm):
    return HEADER + render_spec(helm)


if __name__ == "__main__":
    text = plain_file(os.environ.get("HELM", "helm"))
    if sys.argv[1:] == ["--write"]:
        PLAIN.write_text(text)
        print(f"wrote {PLAIN.relative_to(REPO)}")
    else:
        sys.stdout.write(text)
