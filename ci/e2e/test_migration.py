"""Migration from upstream: the reference binary writes its --persistence.file (a Go gob stream), is
stopped with SIGTERM (which writes the file), and ours, started on that file, must serve what the
reference served -- the same /metrics, the same /api/v1/metrics with every family's time_stamp and
every push time -- convert the file to its own format at once, and keep all of it across a restart."""

import datetime
import difflib
import json
import signal

import expo
import pb
from conftest import ours_only

HISTOGRAM = '# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 3\nh_sum 4.25\nh_count 3\n'
SUMMARY = '# HELP s A summary.\n# TYPE s summary\ns{quantile="0.5"} 1\ns{quantile="0.99"} NaN\ns_sum 10\ns_count 5\n'

PUSHES = [
    ("PUT", "/metrics/job/a/instance/i", b'# HELP c A "counter"\\n with escapes.\n# TYPE c counter\nc{x="1"} 3\nc{x="2",y="q\\"uote"} 4\nu NaN\nv +Inf\nw 1e+06\n'),
    ("PUT", "/metrics/job/a/instance/i2", (HISTOGRAM + SUMMARY).encode()),
    # Grouping labels with special characters: a slash and an empty value through @base64, UTF-8.
    ("PUT", "/metrics/job@base64/eC95/p@base64/=/q/%C3%BCml%20aut", b"g 1.5e-07\n"),
    ("PUT", "/metrics/job/b", b"ok 1\n"),
    ("PUT", "/metrics/job/b", b"bad 1 5\n"),  # rejected: a failure time after a success
    ("PUT", "/metrics/job/c", b"bad 1 5\n"),  # rejected: a group with only the timestamps
    # POST leaves the families it does not name (and their time_stamp) alone.
    ("POST", "/metrics/job/a/instance/i", b"# HELP d Post.\n# TYPE d gauge\nd -0.5\n"),
    ("DELETE", "/metrics/job/gone", None),
]

PROTOBUF = pb.delimited(
    pb.family("pc", "counter", [pb.metric(labels=[("k", "v")], counter=7)], help="Pushed as protobuf."),
    pb.family("ph", "histogram", [pb.metric(histogram=(5, 2.5, [(0.1, 1), (1, 4)]))]),
)


def _stop_gracefully(gw):
    gw.proc.send_signal(signal.SIGTERM)
    rc = gw.proc.wait(timeout=20)
    assert rc == 0, f"{gw.label} exited with {rc} on SIGTERM:\n{gw.log_text()}"


def _scrape(gw):
    r = gw.metrics()
    assert r.status == 200, r
    return expo.canonical_ties(expo.normalise(expo.parse(r.text)))


def _api(gw):
    """/api/v1/metrics with the groups (upstream: map order) sorted; everything else as served."""
    r = gw.request("GET", "/api/v1/metrics")
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert doc["status"] == "success", doc
    return sorted(doc["data"], key=lambda g: json.dumps(g["labels"], sort_keys=True))


def _nanos(rfc3339):
    whole, _, fraction = rfc3339.rstrip("Z").partition(".")
    seconds = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp()
    return int(seconds) * 10**9 + int((fraction + "000000000")[:9])


def _assert_same_api(expected, got):
    """Equal, but for time_stamps within a microsecond: ours keeps times as float seconds (about a
    quarter of a microsecond of precision today), upstream as nanoseconds."""
    def split(groups):
        times = []
        groups = json.loads(json.dumps(groups))
        for group in groups:
            for name in sorted(group):
                if isinstance(group[name], dict) and "time_stamp" in group[name]:
                    times.append((name, _nanos(group[name].pop("time_stamp"))))
        return groups, times
    (a, a_times), (b, b_times) = split(expected), split(got)
    assert a == b, _diff(a, b)
    assert [n for n, _ in a_times] == [n for n, _ in b_times]
    far = [(n, x, y) for (n, x), (_, y) in zip(a_times, b_times) if abs(x - y) > 1000]
    assert not far, f"time_stamps differ by more than a microsecond: {far}"


def _filled_reference(start_gateway, data_file):
    reference = start_gateway("reference", f"--persistence.file={data_file}", "--persistence.interval=1s")
    reference.request("PUT", "/metrics/job/gone", body=b"x 1\n")
    for method, path, body in PUSHES:
        reference.request(method, path, body=body)
    r = reference.request("PUT", "/metrics/job/proto", headers={"Content-Type": pb.CONTENT_TYPE}, body=PROTOBUF)
    assert r.status == 200, r
    return reference


@ours_only
def test_ours_imports_the_reference_file(start_gateway, tmp_path):
    data_file = tmp_path / "pushgateway.data"
    reference = _filled_reference(start_gateway, data_file)
    expected_scrape, expected_api = _scrape(reference), _api(reference)
    _stop_gracefully(reference)
    upstream_bytes = data_file.read_bytes()
    assert not upstream_bytes.startswith(b"PGWSNAP"), "the reference did not write its gob file"

    ours = start_gateway("ours", f"--persistence.file={data_file}")
    assert _scrape(ours) == expected_scrape
    _assert_same_api(expected_api, _api(ours))
    log = ours.log_text()
    assert "imported upstream Pushgateway's persistence file" in log, log
    assert "groups=6 families=11" in log, log  # a/i, a/i2, x/y, b, c (timestamps only), proto
    # Converted at once: our own format in place, the upstream file removed after that write.
    assert data_file.read_bytes().startswith(b"PGWSNAP"), "not converted"
    assert not (tmp_path / "pushgateway.data.upstream").exists()

    _stop_gracefully(ours)
    again = start_gateway("ours", f"--persistence.file={data_file}")
    assert _scrape(again) == expected_scrape
    _assert_same_api(expected_api, _api(again))
    # The imported store stays consistent: a conflicting push is refused, a fitting one stored.
    assert again.request("PUT", "/metrics/job/z", body=b"# TYPE c gauge\nc 1\n").status == 400
    assert again.request("PUT", "/metrics/job/z", body=b"# TYPE c counter\nc 1\n").status == 200


@ours_only
def test_ours_refuses_a_damaged_upstream_file(start_gateway, tmp_path):
    """A truncated gob file stops the start with the reason and is left as it was."""
    data_file = tmp_path / "pushgateway.data"
    reference = _filled_reference(start_gateway, data_file)
    _stop_gracefully(reference)
    damaged = data_file.read_bytes()[:-40]
    data_file.write_bytes(damaged)
    try:
        start_gateway("ours", f"--persistence.file={data_file}")
    except RuntimeError as e:
        assert "not a readable upstream Pushgateway file" in str(e), e
    else:
        raise AssertionError("ours started on a damaged upstream file")
    assert data_file.read_bytes() == damaged


def _diff(expected, got):
    return "\n".join(difflib.unified_diff(json.dumps(expected, indent=1, sort_keys=True).splitlines(),
                                          json.dumps(got, indent=1, sort_keys=True).splitlines(),
                                          "reference", "ours", lineterm=""))
