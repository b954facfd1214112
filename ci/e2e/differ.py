"""The differential runner: request steps, cases, and the comparison of two gateways after each step.

Each step goes to both gateways, in order. After every step:
  * the status codes must be equal (and equal to the status a step records for upstream, if any);
  * a 400 must leave the store unchanged except push_failure_time_seconds (and, for a group that did
    not exist, a push_time_seconds of 0: upstream creates the target group on a failed push);
  * the parsed /metrics of both, normalised (expo.normalise), must be equal: families, types, HELP,
    samples (name, labels, value) -- then also in the same order and with the same value text.
"""

import base64
import difflib
import time
from dataclasses import dataclass, field

import expo


@dataclass
class Step:
    method: str
    path: str
    body: bytes = None
    headers: dict = field(default_factory=dict)
    expect: int = None  # the status upstream answers


@dataclass
class Case:
    name: str
    steps: list
    flags: tuple = ()
    drop_help: bool = False  # HELP that upstream picks arbitrarily

    def __str__(self):
        return self.name


def _b(body):
    return body.encode("utf-8") if isinstance(body, str) else body


def put(path, body, expect=200, headers=None):
    return Step("PUT", path, _b(body), dict(headers or {}), expect)


def post(path, body, expect=200, headers=None):
    return Step("POST", path, _b(body), dict(headers or {}), expect)


def delete(path, expect=202):
    return Step("DELETE", path, None, {}, expect)


def req(method, path, expect, body=None, headers=None):
    return Step(method, path, _b(body), dict(headers or {}), expect)


def b64(s):
    """URL-safe base64 without padding, as a client would put in a path."""
    return base64.urlsafe_b64encode(s.encode("utf-8")).decode("ascii").rstrip("=")



def _scrape(gw, drop_help):
    r = gw.metrics()
    assert r.status == 200, f"{gw.label} /metrics answered {r.status}: {r.text[:500]}"
    return expo.canonical_ties(expo.normalise(expo.parse(r.text), drop_help=drop_help))


def _diff(a, b):
    return "\n".join(difflib.unified_diff(expo.render(a).splitlines(), expo.render(b).splitlines(),
                                          "reference", "ours", lineterm=""))


def _compare(ref, ours, case, where, wait):
    """Compares both scrapes; after an asynchronous step (202), retries for up to 30 s (only a
    difference that persists waits that long)."""
    deadline = time.monotonic() + (30 if wait else 0)
    while True:
        a = _scrape(ref, case.drop_help)
        b = _scrape(ours, case.drop_help)
        if a == b or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    assert expo.semantic(a) == expo.semantic(b), f"{case.name} {where}: /metrics content differs\n{_diff(a, b)}"
    assert a == b, f"{case.name} {where}: same content but family/sample/label order or value text differs\n{_diff(a, b)}"
    return a


def _check_unchanged(before, after, who, where):
    """After a 400: only push_failure_time_seconds may change, and push_time_seconds may only gain
    zero samples (a group created by the failed push)."""
    def split(n):
        rest = [f for f in n if f[0] not in expo.TIMESTAMP_FAMILIES]
        times = {}
        for f in n:
            if f[0] == "push_time_seconds":
                times = {s[1]: s[2] for s in f[3]}
        return rest, times
    rest_b, times_b = split(before)
    rest_a, times_a = split(after)
    assert rest_a == rest_b, f"{who} {where}: a rejected request changed the store"
    for labels, value in times_b.items():
        assert times_a.get(labels) == value, f"{who} {where}: push_time_seconds{labels} changed"
    for labels, value in times_a.items():
        if labels not in times_b:
            assert value == "zero", f"{who} {where}: a rejected push created push_time_seconds{labels}={value}"


def run_case(case, start_gateway):
    """Runs one Case against a fresh reference and a fresh ours (see the module docstring)."""
    ref = start_gateway("reference", *case.flags)
    ours = start_gateway("ours", *case.flags)
    before = _compare(ref, ours, case, "initially", False)
    for i, step in enumerate(case.steps):
        where = f"step {i} ({step.method} {step.path})"
        r = ref.request(step.method, step.path, step.headers, step.body)
        o = ours.request(step.method, step.path, step.headers, step.body)
        if step.expect is not None:
            assert r.status == step.expect, (
                f"{case.name} {where}: the reference answered {r.status} ({r.text[:300]!r}), "
                f"the table says upstream answers {step.expect}")
        assert o.status == r.status, (
            f"{case.name} {where}: status differs: reference {r.status} {r.text[:300]!r}, ours {o.status} {o.text[:300]!r}")
        if r.status in (301, 302, 307, 308):
            assert o.headers.get("location") == r.headers.get("location"), (
                f"{case.name} {where}: redirect Location differs: reference {r.headers.get('location')!r}, "
                f"ours {o.headers.get('location')!r}")
        if r.status == 400:
            assert o.body.strip(), f"{case.name} {where}: ours answered 400 without a reason in the body"
            prefix = "pushed metrics are invalid or inconsistent with existing metrics"
            if r.text.startswith(prefix):
                assert o.text.startswith(prefix), f"{case.name} {where}: ours' 400 body {o.text!r} lacks {prefix!r}"
        after = _compare(ref, ours, case, f"after {where}", r.status == 202 or o.status == 202)
        if r.status == 400:
            _check_unchanged(before, after, "both", where)
        before = after


