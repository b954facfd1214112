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

import pytest

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
