"""promtool's linter on ours' /metrics after a varied set of pushes.

`promtool check metrics` exits 1 and prints "error while linting: ..." on stderr when the exposition
cannot be parsed (a real error), and exits 3 with one line per problem on stdout for lint warnings
(missing HELP, counters without _total, ...). Warnings are about the pushed metrics' names, not about
the gateway, so we accept exit 0 and 3 and fail on anything else. The reference is held to the same
rule so that the test itself is checked.
"""

import subprocess

import pytest

PUSHES = [
    ("/metrics/job/a", "# HELP c_total A counter.\n# TYPE c_total counter\nc_total{x=\"1\"} 3\nc_total{x=\"2\"} 4\n"),
    ("/metrics/job/a/instance/i1", "# HELP g A gauge with \\\\ and \\n in help.\n# TYPE g gauge\n"
     "g{v=\"quote \\\" backslash \\\\ newline \\n\"} NaN\ng{v=\"inf\"} +Inf\ng{v=\"ninf\"} -Inf\n"),
    ("/metrics/job/b", "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1\"} 2\nh_sum 1.5\nh_count 2\n"),
    ("/metrics/job/b/instance/i2", "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.99\"} 2\ns_sum 3\ns_count 4\n"),
    ("/metrics/job@base64/L3Zhci90bXA/path@base64/YS9i", "untyped_thing 1e+06\nsmall 1.5e-07\n"),
    ("/metrics/job/c/empty@base64/=", "# HELP u Untyped.\nu{a=\"\"} 1\n"),
]


def _lint(promtool, text):
    proc = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


@pytest.mark.parametrize("who", ["reference", "ours"])
def test_promtool_check_metrics(who, start_gateway, promtool):
    gw = start_gateway(who)
    for path, body in PUSHES:
        r = gw.request("PUT", path, body=body.encode())
        assert r.status == 200, (path, r)
    scrape = gw.metrics()
    assert scrape.status == 200
    rc, out, err = _lint(promtool, scrape.text)
    assert rc in (0, 3), f"promtool check metrics failed on {who}'s /metrics (exit {rc}):\n{err}\n{out}"
    assert "error while linting" not in err, err


def test_promtool_detects_real_errors(promtool):
    """The rule above is meaningful: a broken exposition exits 1."""
    rc, _, err = _lint(promtool, 'foo{ 1\n')
    assert rc == 1 and "error while linting" in err
