"""Push and storage limits: the status code (413 for a push too large, 429 for a full store),
the reason in the body, and the store unchanged afterwards (the pushed series of a scrape,
push_time_seconds and push_failure_time_seconds included, are compared before and after)."""

import gzip

import cramjam
import pytest

from conftest import exchange_on_one_connection

BASELINE = {
    "job/base/instance/a": "base_metric{k=\"v\"} 1\nother_metric 2\n",
    "job/base/instance/b": "base_metric{k=\"w\"} 3\n",
}


def with_baseline(gw):
    for path, body in BASELINE.items():
        r = gw.push(path, body)
        assert r.status_code == 200, (path, r.status_code, r.text)
    return gw.pushed()


def assert_refused(gw, response, status, *reason_words):
    assert response.status_code == status, (response.status_code, response.text[:300])
    text = response.text.lower()
    assert text.strip(), "no reason in the body"
    for word in reason_words:
        assert word.lower() in text, (word, response.text[:300])


def lines(n, name="m", width=0):
    return "".join(f'{name}{{i="{i:0{width}d}"}} {i}\n' for i in range(n))


# --- --push.max-body-bytes -------------------------------------------------------------------

BODY_LIMIT = 1000


@pytest.fixture
def body_gw(gateway):
    return gateway([f"--push.max-body-bytes={BODY_LIMIT}"])


def exact_body(size):
    """A valid text body of exactly `size` bytes."""
    body = "# pad " + "x" * (size - len("# pad \nsized 1\n") ) + "\nsized 1\n"
    assert len(body) == size
    return body.encode()


def test_body_at_the_limit_is_accepted(body_gw):
    r = body_gw.push("job/sized", exact_body(BODY_LIMIT))
    assert r.status_code == 200, r.text
    assert 'sized{instance="",job="sized"} 1' in body_gw.scrape()


@pytest.mark.parametrize("how", ["content-length", "chunked", "gzip", "snappy", "gzip-declared-small"])
def test_body_over_the_limit(body_gw, how):
    before = with_baseline(body_gw)
    big = exact_body(BODY_LIMIT + 1)
    headers = {}
    if how == "content-length":
        data = big
    elif how == "chunked":
        data = iter([big[:500], big[500:]])  # no Content-Length
    elif how == "gzip":
        # 100 kB of metrics in well under 1000 bytes: the limit applies after decompression.
        data = gzip.compress(("bomb 1\n# " + "x" * 100_000 + "\n").encode())
        assert len(data) < BODY_LIMIT, len(data)
        headers["Content-Encoding"] = "gzip"
    elif how == "snappy":
        data = bytes(cramjam.snappy.compress(("over_limit 1\n" + "#" * 20000 + "\n").encode()))
        assert len(data) < BODY_LIMIT, len(data)
        headers["Content-Encoding"] = "snappy"
    else:  # the bomb again, into a group that exists, with POST
        data = gzip.compress(b"base_metric{k=\"v\"} 9\n" + b"#" * 50000 + b"\n")
        headers["Content-Encoding"] = "GZIP"
    path = "job/base/instance/a" if how == "gzip-declared-small" else "job/oversized"
    r = body_gw.push(path, data, method="POST" if how == "gzip-declared-small" else "PUT", headers=headers)
    assert_refused(body_gw, r, 413, "limit")
    assert str(BODY_LIMIT) in r.text
    assert body_gw.pushed() == before
    # The gateway still accepts pushes within the limit.
    assert body_gw.push("job/after", "after 1\n").status_code == 200


def test_compressed_body_within_the_limit(body_gw):
    data = gzip.compress(lines(10).encode())
    r = body_gw.push("job/gz", data, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert 'm{i="9",instance="",job="gz"} 9' in body_gw.scrape()


# --- --push.max-series -----------------------------------------------------------------------


@pytest.fixture
def series_gw(gateway):
    return gateway(["--push.max-series=5"])


def test_push_at_the_series_limit(series_gw):
    # A histogram counts once however many buckets it has.
    body = lines(4) + ("# TYPE h histogram\n" + "".join(f'h_bucket{{le="{b}"}} {b}\n' for b in (1, 2, 4, 8, 16))
                       + 'h_bucket{le="+Inf"} 20\nh_sum 30\nh_count 20\n')
    r = series_gw.push("job/five", body)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_push_over_the_series_limit(series_gw, method):
    before = with_baseline(series_gw)
    for path in ("job/six", "job/base/instance/a"):
        r = series_gw.push(path, lines(6), method=method)
        assert_refused(series_gw, r, 413, "max-series")
        assert series_gw.pushed() == before, path


# --- --push.max-label-length -----------------------------------------------------------------


@pytest.fixture
def label_gw(gateway):
    return gateway(["--push.max-label-length=20"])


def test_labels_at_the_length_limit(label_gw):
    ok = ['m{v="' + "x" * 20 + '"} 1\n', "m{" + "n" * 20 + '="v"} 1\n', 'm{v="' + "é" * 10 + '"} 1\n']
    for i, body in enumerate(ok):
        r = label_gw.push(f"job/ok{i}", body)
        assert r.status_code == 200, (body, r.text)
    r = label_gw.push("job/" + "j" * 20 + "/inst/" + "i" * 20, "m 1\n")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("case", [
    "value in body", "name in body", "multibyte value in body", "grouping key value", "job name",
    "base64 grouping value", "existing group",
])
def test_label_over_the_length_limit(label_gw, case):
    before = with_baseline(label_gw)
    import base64
    path, body = "job/long", "m 1\n"
    if case == "value in body":
        body = 'm{v="' + "x" * 21 + '"} 1\n'
    elif case == "name in body":
        body = "m{" + "n" * 21 + '="v"} 1\n'
    elif case == "multibyte value in body":
        body = 'm{v="' + "é" * 11 + '"} 1\n'  # 11 characters, 22 bytes
    elif case == "grouping key value":
        path = "job/long/inst/" + "i" * 21
    elif case == "job name":
        path = "job/" + "j" * 21
    elif case == "base64 grouping value":
        path = "job/long/inst@base64/" + base64.urlsafe_b64encode(b"i" * 21).decode()
    else:
        path, body = "job/base/instance/a", 'base_metric{k="' + "v" * 21 + '"} 1\n'
    r = label_gw.push(path, body)
    assert_refused(label_gw, r, 413, "max-label-length")
    assert label_gw.pushed() == before


# --- --storage.max-groups ---------------------------------------------------------------------


def test_storage_max_groups(gateway):
    gw = gateway(["--storage.max-groups=3"])
    before = with_baseline(gw)  # two groups
    assert gw.push("job/third", "third 1\n").status_code == 200
    full = gw.pushed()
    for method in ("PUT", "POST"):
        r = gw.push("job/fourth", "fourth 1\n", method=method)
        assert_refused(gw, r, 429, "max-groups")
        assert gw.pushed() == full
    # Pushing again to an existing group is fine; so is a new group after a delete.
    assert gw.push("job/third", "third 2\n").status_code == 200
    assert gw.req("DELETE", "/metrics/job/third").status_code == 202
    assert gw.pushed() == before
    assert gw.push("job/fourth", "fourth 1\n").status_code == 200


# --- --storage.max-series --------------------------------------------------------------------


def test_storage_max_series(gateway):
    gw = gateway(["--storage.max-series=10"])
    assert gw.push("job/a", lines(6)).status_code == 200
    assert gw.push("job/b", lines(4, name="n")).status_code == 200
    full = gw.pushed()
    for method, path, body in [("PUT", "job/c", "c 1\n"), ("POST", "job/b", lines(5, name="n")),
                               ("POST", "job/a", "extra 1\n"), ("PUT", "job/a", lines(7))]:
        r = gw.push(path, body, method=method)
        assert_refused(gw, r, 429, "max-series")
        assert gw.pushed() == full, (method, path)
    # Replacing a group by one of the same size or smaller is allowed when full.
    r = gw.push("job/a", lines(6, name="o"))
    assert r.status_code == 200, r.text
    assert gw.push("job/b", lines(3, name="n")).status_code == 200
    assert gw.push("job/c", "c 1\n").status_code == 200
    r = gw.push("job/d", "d 1\n")
    assert_refused(gw, r, 429, "max-series")


def test_limits_survive_in_the_status_api(gateway):
    gw = gateway(["--push.max-body-bytes=1000", "--push.max-series=5", "--push.max-label-length=20",
                  "--storage.max-series=10", "--storage.max-groups=3"])
    flags = gw.req("GET", "/api/v1/status").json()["data"]["flags"]
    assert flags["push.max-body-bytes"] == "1000"
    assert flags["storage.max-groups"] == "3"


@pytest.mark.parametrize("body", [b"# " + b"x" * (BODY_LIMIT + 200) + b"\n", b"a 1\nb 1\nc 1\nd 1\ne 1\nf 1\n"],
                         ids=["body over max-body-bytes", "series over max-series"])
def test_413_keeps_the_connection_usable(gateway, body):
    """After a 413 the connection stays usable for the next request (Go's server discards a
    small unread body), or the 413 says `Connection: close`. A silent close breaks
    keep-alive clients: their next request on the connection fails."""
    gw = gateway([f"--push.max-body-bytes={BODY_LIMIT}", "--push.max-series=5"])
    head = f"PUT /metrics/job/keepalive HTTP/1.1\r\nHost: gw\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    first, second = exchange_on_one_connection(gw.port, head, body)
    assert first.startswith("HTTP/1.1 413"), first
    announced_close = "\r\nconnection: close" in first.lower()
    assert announced_close or second.startswith("HTTP/1.1 200"), (
        f"413 without Connection: close, then the connection was closed: second request got {second!r}")


def test_refused_pushes_leave_the_persisted_state_unchanged(gateway, tmp_path):
    """With persistence: after refused pushes of every kind, a SIGKILL and a restart restore
    exactly the state from before them."""
    args = [f"--persistence.file={tmp_path / 'pg.db'}", f"--push.max-body-bytes={BODY_LIMIT}", "--push.max-series=5",
            "--push.max-label-length=20", "--storage.max-series=6", "--storage.max-groups=2"]
    gw = gateway(args)
    before = with_baseline(gw)
    refused = [
        ("job/base/instance/a", exact_body(BODY_LIMIT + 1), {}, 413),
        ("job/base/instance/a", gzip.compress(b"# " + b"x" * 5000 + b"\n"), {"Content-Encoding": "gzip"}, 413),
        ("job/base/instance/a", lines(6).encode(), {}, 413),
        ("job/base/instance/b", ('base_metric{k="' + "v" * 21 + '"} 1\n').encode(), {}, 413),
        ("job/third", b"third 1\n", {}, 429),
        ("job/base/instance/b", lines(5).encode(), {}, 429),
    ]
    for path, body, headers, status in refused:
        for method in ("PUT", "POST"):
            r = gw.push(path, body, method=method, headers=headers)
            assert r.status_code == status, (path, method, r.status_code, r.text)
    assert gw.pushed() == before
    gw.stop()
    again = gateway(args)
    assert again.pushed() == before
