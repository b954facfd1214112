"""gzip scrapes are assembled from cached, separately deflated segments (one per group's run,
or per few small ones) joined into one gzip stream. Python's gzip module and `curl
--compressed` must decode it to exactly the plain scrape, before and after a push changes
one group, for families whose groups' series follow one another and for families whose
groups' series interleave."""

import gzip
import subprocess

from conftest import ours_only

GROUPS = 60
SERIES = 400


def _run(group, value):
    """A group's family whose series sort after the grouping labels (runs follow one another)."""
    return "".join(f'gz_disjoint{{series="{j}"}} {value}\n' for j in range(SERIES))


def _interleaved(group, value):
    """A family whose label `a` sorts before the grouping labels, so groups interleave."""
    return "".join(f'gz_interleaved{{a="{j}"}} {value + j}\n' for j in range(SERIES // 4))


def _push_all(gw, value):
    for g in range(GROUPS):
        body = (_run(g, value) + _interleaved(g, value)).encode()
        r = gw.request("PUT", f"/metrics/job/gz/group/g{g}", body=body)
        assert r.status == 200, r


def _pushed_lines(body):
    """The lines of the pushed families and the push timestamps, in order (the gateway's own
    metrics may change between two scrapes)."""
    keep = ("gz_", "# HELP gz_", "# TYPE gz_", "push_time_seconds", "# HELP push_time", "# TYPE push_time")
    return [line for line in body.decode().splitlines() if line.startswith(keep)]


def _check(gw, accept=None):
    headers = {"Accept": accept} if accept else {}
    compressed = gw.metrics({**headers, "Accept-Encoding": "gzip"})
    assert compressed.status == 200, compressed
    assert compressed.headers.get("content-encoding") == "gzip"
    plain = gw.metrics(headers)
    assert plain.status == 200, plain
    decoded = gzip.decompress(compressed.body)
    lines = _pushed_lines(plain.body)
    assert len(lines) > GROUPS * SERIES
    assert _pushed_lines(decoded) == lines
    curl = subprocess.run(
        ["curl", "-sS", "--compressed", *(["-H", f"Accept: {accept}"] if accept else []), gw.url + gw.metrics_path],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert _pushed_lines(curl.stdout) == lines
    return decoded


@ours_only
def test_gzip_scrape_decodes_to_the_plain_scrape(start_gateway):
    gw = start_gateway("ours", "--web.enable-openmetrics")
    _push_all(gw, 1)
    first = _check(gw)
    # Cached segments again, then one group changed (its segment and the next one's
    # dictionary are new, the rest comes from the cache).
    assert _pushed_lines(_check(gw)) == _pushed_lines(first)
    r = gw.request("PUT", "/metrics/job/gz/group/g7", body=(_run(7, 5) + _interleaved(7, 5)).encode())
    assert r.status == 200, r
    changed = _check(gw)
    assert 'gz_disjoint{group="g7",instance="",job="gz",series="0"} 5' in changed.decode()
    # A removed group, and OpenMetrics (which ends in `# EOF`).
    assert gw.request("DELETE", "/metrics/job/gz/group/g3").status == 202
    _check(gw)
    om = _check(gw, "application/openmetrics-text;version=1.0.0")
    assert om.endswith(b"# EOF\n")
