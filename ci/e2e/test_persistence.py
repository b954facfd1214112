"""Persistence across a restart, compared with upstream: push, stop gracefully (SIGTERM), start again
on the same --persistence.file, and the store must be back as it was -- the same normalised /metrics as
upstream's, and every push_time_seconds / push_failure_time_seconds value exactly as before the restart.
(The files themselves are not compared: ours need not write upstream's gob format.)"""

import signal

import expo
from conftest import ours_only

PUSHES = [
    ("PUT", "/metrics/job/a/instance/i", b'# HELP c A counter.\n# TYPE c counter\nc{x="1"} 3\nu NaN\n'),
    ("PUT", "/metrics/job/b", b"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n"),
    ("PUT", "/metrics/job@base64/eC95/p@base64/=", b"g 1.5e-07\n"),
    ("PUT", "/metrics/job/b", b"bad 1 5\n"),  # rejected: a failure time to keep
    ("PUT", "/metrics/job/c", b"bad 1 5\n"),  # rejected: a group with only the timestamps
    ("POST", "/metrics/job/a/instance/i", b"d -0.5\n"),
    ("DELETE", "/metrics/job/gone", None),
]


def _timestamps(gw):
    fams = expo.parse(gw.metrics().text)
    return {name: expo.samples_of(fams, name) for name in expo.TIMESTAMP_FAMILIES}


def _normalised(gw):
    r = gw.metrics()
    assert r.status == 200, r
    return expo.canonical_ties(expo.normalise(expo.parse(r.text)))


def _stop_gracefully(gw):
    gw.proc.send_signal(signal.SIGTERM)
    rc = gw.proc.wait(timeout=60)
    assert rc == 0, f"{gw.label} exited with {rc} on SIGTERM:\n{gw.log_text()}"


def test_store_survives_restart(start_gateway, tmp_path):
    gws = {}
    for kind in ("reference", "ours"):
        flags = (f"--persistence.file={tmp_path / kind}.data",)
        gw = start_gateway(kind, *flags)
        gw.request("PUT", "/metrics/job/gone", body=b"x 1\n")
        for method, path, body in PUSHES:
            gw.request(method, path, body=body)
        gws[kind] = (gw, flags)
    before = {k: (_normalised(gw), _timestamps(gw)) for k, (gw, _) in gws.items()}
    assert before["reference"][0] == before["ours"][0], "the stores differ before the restart"
    for kind, (gw, flags) in gws.items():
        _stop_gracefully(gw)
        again = start_gateway(kind, *flags)
        assert _normalised(again) == before[kind][0], f"{kind}: the store changed across the restart"
        assert _timestamps(again) == before[kind][1], f"{kind}: push timestamps changed across the restart"
        # Still consistent with what was restored: a conflicting push is rejected, a fitting one accepted.
        assert again.request("PUT", "/metrics/job/z", body=b"# TYPE c gauge\nc 1\n").status == 400
        assert again.request("PUT", "/metrics/job/z", body=b"# TYPE c counter\nc 1\n").status == 200


@ours_only
def test_ours_acknowledged_push_survives_kill(start_gateway, tmp_path):
    """Ours (not upstream, which writes its file at most every --persistence.interval and on shutdown):
    a push acknowledged with 200 is durable, so it survives SIGKILL."""
    flags = (f"--persistence.file={tmp_path / 'ours'}.data",)
    gw = start_gateway("ours", *flags)
    for method, path, body in PUSHES:
        gw.request(method, path, body=body)
    before = (_normalised(gw), _timestamps(gw))
    gw.proc.kill()
    gw.proc.wait(timeout=60)
    again = start_gateway("ours", *flags)
    assert (_normalised(again), _timestamps(again)) == before
