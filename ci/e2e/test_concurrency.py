"""Concurrent pushes, deletes and scrapes (bounded, loopback only). Every request is answered as it
would be alone, scrapes stay 200 and parseable throughout, and the final store equals upstream's after
the same requests."""

import threading

import expo
from differ import _compare, Case

THREADS = 6
ROUNDS = 30


def _worker(gw, t, errors):
    try:
        path = f"/metrics/job/w{t}/instance/i{t % 2}"
        for r in range(ROUNDS):
            body = f"# TYPE shared counter\nshared{{t=\"{t}\"}} {r}\nown_{t} {r}\n"
            method = "PUT" if r % 3 else "POST"
            st = gw.request(method, path, body=body.encode()).status
            if st != 200:
                errors.append(f"{gw.label} thread {t} round {r}: {method} answered {st}")
            if r % 10 == 5:
                gw.request("DELETE", f"/metrics/job/tmp{t}")
                gw.request("PUT", f"/metrics/job/tmp{t}", body=f"tmp_{t} {r}\n".encode())
    except Exception as e:  # reported by the test
        errors.append(f"{gw.label} thread {t}: {e!r}")


def _scraper(gw, stop, errors):
    while not stop.is_set():
        r = gw.metrics()
        if r.status != 200:
            errors.append(f"{gw.label} scrape answered {r.status}")
            return
        try:
            expo.parse(r.text)
        except expo.ExpositionError as e:
            errors.append(f"{gw.label} scrape unparsable: {e}")
            return


def _hammer(gw):
    errors, stop = [], threading.Event()
    scraper = threading.Thread(target=_scraper, args=(gw, stop, errors))
    scraper.start()
    workers = [threading.Thread(target=_worker, args=(gw, t, errors)) for t in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    stop.set()
    scraper.join(timeout=30)
    return errors


def test_concurrent_pushes_end_like_upstream(reference, ours):
    assert _hammer(reference) == []
    assert _hammer(ours) == []
    _compare(reference, ours, Case("concurrent", []), "after the concurrent requests", True)


def _conflicter(gw, typ, group, results):
    for _ in range(ROUNDS):
        results.append(gw.request("PUT", f"/metrics/job/{group}", body=f"# TYPE race {typ}\nrace 1\n".encode()).status)


def test_concurrent_conflicting_types_stay_consistent(reference, ours):
    """Two groups race to push `race` as a counter and as a gauge: only one type can win; every push
    gets 200 or 400 and the end state is consistent, in both gateways."""
    for gw in (reference, ours):
        results = []
        threads = [threading.Thread(target=_conflicter, args=(gw, typ, group, results))
                   for typ, group in (("counter", "c"), ("gauge", "g"))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert set(results) <= {200, 400}, (gw, results)
        r = gw.metrics()
        assert r.status == 200, (gw, r)
        fams = [f for f in expo.parse(r.text) if f.name == "race"]
        assert len(fams) == 1 and len(fams[0].samples) == 1, (gw, fams)
