"""Randomised differential sequences: PUT/POST/DELETE of small random bodies to a few overlapping groups,
built from a vocabulary chosen to collide (summary `m` vs `m_count`, counter vs gauge of one name,
grouping labels overriding body labels into duplicates, ...), so that the consistency check is
exercised in combinations no hand-written case lists. Each sequence is fixed by its seed: a failure
names it (test_random_sequence[seed]) and can be replayed alone with -k.

Upstream bugs that break its /metrics (BREAKS_UPSTREAM_SCRAPE in test_differential.py) are left out of
the vocabulary: no grouping label with an empty value, no `le`/`quantile` grouping label, valid UTF-8
only. HELP is the same for a name everywhere (upstream picks one arbitrarily when they differ).
"""

import random
import subprocess

import pytest

import expo
from conftest import ours_only
from differ import Case, Step, run_case

GROUPS = [
    "/metrics/job/a",
    "/metrics/job/b",
    "/metrics/job/a/instance/i1",
    "/metrics/job/a/x/1",
    "/metrics/job@base64/YQ",  # the same group as /metrics/job/a
    "/metrics/job/b/y/a",
]
NAMES = ["m", "m_total", "m_count", "m_sum", "m_bucket", "n", "n_created"]
TYPES = ["counter", "gauge", "untyped", "summary", "histogram", None]
LABELSETS = ["", 'x="1"', 'x="2"', 'instance="i1"', 'x="1",y="a"', 'y="b"', 'x=""', 'z="q\\"\\\\"']
VALUES = ["1", "2.5", "0", "-3", "1e6", "NaN", "+Inf"]
Q, LE1, LEINF = 'quantile="0.5"', 'le="1"', 'le="+Inf"'


def _lab(labels, extra=""):
    parts = [p for p in (labels, extra) if p]
    return "{" + ",".join(parts) + "}" if parts else ""


def _family(rng, name):
    typ = rng.choice(TYPES)
    lines = [f"# HELP {name} Doc of {name}."]
    if typ:
        lines.append(f"# TYPE {name} {typ}")
    for labels in rng.sample(LABELSETS, k=rng.choice([1, 1, 2])):
        v = rng.choice(VALUES)
        q, le1, leinf = _lab(labels, Q), _lab(labels, LE1), _lab(labels, LEINF)
        if typ == "summary":
            lines += [f"{name}{q} {v}", f"{name}_sum{_lab(labels)} 3", f"{name}_count{_lab(labels)} 2"]
        elif typ == "histogram":
            lines += [f"{name}_bucket{le1} 1", f"{name}_bucket{leinf} 2",
                      f"{name}_sum{_lab(labels)} {v}", f"{name}_count{_lab(labels)} 2"]
        else:
            lines.append(f"{name}{_lab(labels)} {v}")
    return lines


def _body(rng):
    lines = []
    for name in rng.sample(NAMES, k=rng.choice([0, 1, 1, 2, 2, 3])):
        lines += _family(rng, name)
    r = rng.random()
    if lines and r < 0.05:
        lines[-1] += " 1234"  # a timestamp: rejected
    elif lines and r < 0.10:
        lines.append(lines[-1])  # a duplicate sample (or a second TYPE/HELP line)
    return ("\n".join(lines) + "\n") if lines else ""


def _sequence(seed, steps=10):
    rng = random.Random(seed)
    out = []
    for _ in range(steps):
        path = rng.choice(GROUPS)
        r = rng.random()
        if r < 0.15:
            out.append(Step("DELETE", path))
        else:
            out.append(Step("PUT" if r < 0.6 else "POST", path, _body(rng).encode()))
    return out


SEEDS = list(range(100))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequence(seed, start_gateway):
    run_case(Case(f"random-{seed}", _sequence(seed)), start_gateway)


# ---------------------------------------------------------------- ours only: unchecked pushes never break the scrape

UNCHECKED_SEEDS = list(range(30))


def _assert_valid_exposition(text, promtool, where):
    """Our own checks on every scrape; promtool (0.4 s a run) only when given."""
    fams = expo.parse(text)  # raises on anything malformed
    names = [f.name for f in fams]
    assert len(names) == len(set(names)), f"{where}: a family appears twice: {names}"
    types = {f.name: f.type for f in fams}
    seen = set()
    for f in fams:
        for s in f.samples:
            key = (s.name, frozenset(s.labels))
            assert key not in seen, f"{where}: duplicate series {s.name}{dict(s.labels)}"
            seen.add(key)
            labelnames = [k for k, _ in s.labels]
            assert len(labelnames) == len(set(labelnames)), f"{where}: duplicate label name in {s}"
        for suffix in ("_count", "_sum", "_bucket"):
            if f.name.endswith(suffix) and types.get(f.name[: -len(suffix)]) in ("summary", "histogram"):
                raise AssertionError(f"{where}: family {f.name} collides with {f.name[:-len(suffix)]}")
    if promtool:
        proc = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
        assert proc.returncode in (0, 3), f"{where}: promtool: {proc.stderr.decode()}"


@ours_only
@pytest.mark.parametrize("seed", UNCHECKED_SEEDS)
def test_random_unchecked_scrape_stays_valid(seed, start_gateway, promtool):
    """DELIBERATE: with --push.disable-consistency-check upstream stores inconsistent pushes and its whole
    /metrics then answers 500. Ours answers every push like upstream (202, or 400 for what does not
    parse) and its /metrics stays 200 with a valid, consistent exposition after every step."""
    gw = start_gateway("ours", "--push.disable-consistency-check")
    steps = _sequence(1000 + seed)
    for i, step in enumerate(steps):
        r = gw.request(step.method, step.path, step.headers, step.body)
        assert r.status in (202, 400), (i, step, r)
        scrape = gw.metrics()
        assert scrape.status == 200, f"step {i}: /metrics answered {scrape.status}: {scrape.text[:300]}"
        last = i == len(steps) - 1
        _assert_valid_exposition(scrape.text, promtool if last else None, f"seed {seed} step {i}")
