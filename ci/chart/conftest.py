"""Shared helpers of the chart tests: where things are, and helm template/lint with a cache."""

import functools
import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "pushgateway"
HELM = os.environ.get("HELM", "helm")
RELEASE = "pg"
NAMESPACE = "monitoring"

# Every values file that must install: the chart's profiles, its ci/ scenarios and values/.
PROFILES = {
    "default": None,
    "dev": CHART / "values-dev.yaml",
    "small-prod": CHART / "values-small-prod.yaml",
}
SCENARIOS = {p.name: p for p in sorted((CHART / "ci").glob("*.yaml"))}
EXAMPLES = {"values/" + p.name: p for p in sorted((REPO / "values").glob("*.yaml"))}
ALL_VALUES = {**PROFILES, **SCENARIOS, **EXAMPLES}


def helm(*args, check=True):
    """Runs helm; returns the CompletedProcess (stdout and stderr as text)."""
    proc = subprocess.run([HELM, *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def values_args(values):
    return [] if values is None else ["--values", str(values)]


@functools.lru_cache(maxsize=None)
def render(values=None, sets=()):
    """helm template of the chart with one values file (or none) and --set pairs; a list of objects."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args(values)]
    for s in sets:
        args += ["--set", s]
    out = helm(*args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(docs, kind, name=None):
    """The objects of one kind (and name, when given)."""
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs, kind, name=None):
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def workload(docs):
    """The gateway's Deployment or StatefulSet (never the bundled Redis)."""
    found = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")
             and d["metadata"]["labels"].get("app.kubernetes.io/component") != "redis"]
    assert len(found) == 1, f"expected one gateway workload, found {len(found)}"
    return found[0]


def gateway_container(w):
    return next(c for c in w["spec"]["template"]["spec"]["containers"] if c["name"] == "pushgateway")


def selects(selector, labels):
    """Whether a matchLabels selector selects objects with these labels."""
    match = selector.get("matchLabels", {})
    assert not selector.get("matchExpressions"), "only matchLabels selectors are used by the chart"
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


@pytest.fixture(scope="session")
def chart():
    return CHART
