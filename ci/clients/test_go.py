"""The real Go client: client_golang's push package (Debian's client_golang 1.14), which pushes
delimited protobuf by default, driven through ci/clients/go/pusher.go.

The effect of each Push (PUT), Add (POST) and Delete (DELETE) is checked through our
/metrics, as text 0.0.4 and as delimited protobuf decoded by the Go client's own expfmt."""

import time

from conftest import go_pusher, go_scrape_protobuf, key, pushed, scrape_text

GROUP = dict(job="go_job", instance="go-1", path="/a/b")
# path holds slashes, so client_golang sends it as path@base64/L2EvYg.
GROUP_ARGS = ["-group", "instance=go-1", "-group", "path=/a/b"]


def full_expected(temp=21.5, **group):
    g = group or GROUP
    return {
        key("gopush_requests_total", **g): 7,
        key("jobs_done", **g): 42,
        key("gopush_temperature", room="lab", **g): temp,
        key("gopush_latency_seconds_bucket", le="0.1", **g): 1,
        key("gopush_latency_seconds_bucket", le="0.5", **g): 3,
        key("gopush_latency_seconds_bucket", le="1", **g): 3,
        key("gopush_latency_seconds_bucket", le="+Inf", **g): 4,
        key("gopush_latency_seconds_sum", **g): 2.65,
        key("gopush_latency_seconds_count", **g): 4,
        key("gopush_payload_bytes", quantile="0.5", **g): 20,
        key("gopush_payload_bytes", quantile="0.9", **g): 30,
        key("gopush_payload_bytes_sum", **g): 60,
        key("gopush_payload_bytes_count", **g): 3,
        # A native-only histogram in text 0.0.4 shows its count and sum and the +Inf bucket.
        key("gopush_native_seconds_bucket", le="+Inf", **g): 5,
        key("gopush_native_seconds_sum", **g): 5.5,
        key("gopush_native_seconds_count", **g): 5,
    }


def without_push_times(samples):
    return {k: v for k, v in samples.items() if k[0] not in ("push_time_seconds", "push_failure_time_seconds")}


def assert_push_times(samples, group, since):
    labels = frozenset(group.items())
    t = samples.get(("push_time_seconds", labels))
    assert t is not None, f"no push_time_seconds for {group}"
    assert since - 1 <= t <= time.time() + 1, f"push_time_seconds {t} not between {since} and now"
    assert samples.get(("push_failure_time_seconds", labels)) == 0


def test_push_protobuf_then_text_scrape(gateway):
    since = time.time()
    go_pusher("push", "-url", gateway.url, *GROUP_ARGS)
    samples, types = scrape_text(gateway)
    got = pushed(samples, job="go_job")
    assert without_push_times(got) == full_expected()
    assert_push_times(got, GROUP, since)
    assert types["jobs_done"] == "counter"
    assert types["gopush_requests_total"] == "counter"
    assert types["gopush_temperature"] == "gauge"
    assert types["gopush_latency_seconds"] == "histogram"
    assert types["gopush_payload_bytes"] == "summary"
    assert types["gopush_native_seconds"] == "histogram"


def test_push_protobuf_then_protobuf_scrape(gateway):
    go_pusher("push", "-url", gateway.url, *GROUP_ARGS)
    content_type, fams = go_scrape_protobuf(gateway.url + "/metrics")
    assert content_type.startswith(
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    ), content_type
    labels = [{"name": "instance", "value": "go-1"}, {"name": "job", "value": "go_job"}, {"name": "path", "value": "/a/b"}]

    def only(name, mtype):
        mf = fams[name]
        assert mf["type"] == mtype, mf
        assert len(mf["metric"]) == 1, mf
        return mf["metric"][0]

    m = only("jobs_done", "COUNTER")
    assert m["label"] == labels and m["counter"]["value"] == 42
    assert fams["jobs_done"]["help"] == "A counter whose name has no _total suffix."
    m = only("gopush_requests_total", "COUNTER")
    assert m["label"] == labels and m["counter"]["value"] == 7
    m = only("gopush_temperature", "GAUGE")
    assert m["label"] == labels + [{"name": "room", "value": "lab"}] and m["gauge"]["value"] == 21.5

    h = only("gopush_latency_seconds", "HISTOGRAM")["histogram"]
    assert h["sampleCount"] == "4" and h["sampleSum"] == 2.65
    assert [(b["upperBound"], b["cumulativeCount"]) for b in h["bucket"]] == [(0.1, "1"), (0.5, "3"), (1, "3")]
    assert "schema" not in h, h

    s = only("gopush_payload_bytes", "SUMMARY")["summary"]
    assert s["sampleCount"] == "3" and s["sampleSum"] == 60
    assert [(q["quantile"], q["value"]) for q in s["quantile"]] == [(0.5, 20), (0.9, 30)]

    # The native histogram exactly as client_golang encoded it: factor 1.1 gives schema 3;
    # observations 0 | 0.5 | 1 1 | 3 fall into the zero bucket and buckets -8, 0 and 13.
    n = only("gopush_native_seconds", "HISTOGRAM")["histogram"]
    assert n["sampleCount"] == "5" and n["sampleSum"] == 5.5
    assert n["schema"] == 3
    assert n["zeroThreshold"] == 2.938735877055719e-39
    assert n["zeroCount"] == "1"
    assert n["positiveSpan"] == [{"offset": -8, "length": 1}, {"offset": 7, "length": 1}, {"offset": 12, "length": 1}]
    assert n["positiveDelta"] == ["1", "1", "-1"]
    assert "bucket" not in n, n


def test_push_text_format(gateway):
    # The Go client can push text 0.0.4 too (Pusher.Format(expfmt.FmtText)); the native
    # histogram then travels as its count, sum and +Inf bucket only.
    go_pusher("push", "-url", gateway.url, "-format", "text", *GROUP_ARGS)
    samples, types = scrape_text(gateway)
    assert without_push_times(pushed(samples, job="go_job")) == full_expected()
    assert types["jobs_done"] == "counter"


def test_add_replaces_only_same_names(gateway):
    go_pusher("push", "-url", gateway.url, *GROUP_ARGS)
    go_pusher("add", "-url", gateway.url, "-set", "small", "-temp", "30", *GROUP_ARGS)
    samples, _ = scrape_text(gateway)
    expected = full_expected(temp=30)
    expected[key("gopush_extra", **GROUP)] = 1
    assert without_push_times(pushed(samples, job="go_job")) == expected


def test_push_replaces_whole_group(gateway):
    go_pusher("push", "-url", gateway.url, *GROUP_ARGS)
    go_pusher("push", "-url", gateway.url, "-set", "small", "-temp", "-3.25", *GROUP_ARGS)
    samples, _ = scrape_text(gateway)
    assert without_push_times(pushed(samples, job="go_job")) == {
        key("gopush_temperature", room="lab", **GROUP): -3.25,
        key("gopush_extra", **GROUP): 1,
    }


def test_delete_removes_only_its_group(gateway):
    go_pusher("push", "-url", gateway.url, *GROUP_ARGS)
    other = dict(job="go_job", instance="go-2")
    go_pusher("push", "-url", gateway.url, "-group", "instance=go-2")
    go_pusher("delete", "-url", gateway.url, *GROUP_ARGS)
    samples, _ = scrape_text(gateway)
    got = pushed(samples, job="go_job")
    assert without_push_times(got) == full_expected(**other)
    assert ("push_time_seconds", frozenset(other.items())) in got


def test_inconsistent_push_is_an_error_for_the_client(gateway):
    # gopush_temperature is a gauge in group go-1; pushing it as a counter into another group
    # makes the whole /metrics inconsistent, so the gateway answers 400 and the Go client
    # returns an error. The metrics stay as they were; as upstream does, the refused group
    # shows only its push_failure_time_seconds (and push_time_seconds 0).
    go_pusher("push", "-url", gateway.url, *GROUP_ARGS)
    since = time.time()
    p = go_pusher("push", "-url", gateway.url, "-set", "conflict", "-group", "instance=go-3", expect_ok=False)
    assert "unexpected status code 400" in p.stderr, p.stderr
    samples, _ = scrape_text(gateway)
    assert without_push_times(pushed(samples, job="go_job")) == full_expected()
    refused = frozenset(dict(job="go_job", instance="go-3").items())
    assert samples[("push_time_seconds", refused)] == 0
    assert since - 1 <= samples[("push_failure_time_seconds", refused)] <= time.time() + 1


def test_same_results_as_reference(gateway, reference):
    # The same Go pushes against upstream pushgateway (1.5.1) and ours give the same text
    # scrape of the pushed series.
    for gw in (gateway, reference):
        go_pusher("push", "-url", gw.url, *GROUP_ARGS)
        go_pusher("add", "-url", gw.url, "-set", "small", "-temp", "1e-3", *GROUP_ARGS)
        go_pusher("push", "-url", gw.url, "-group", "instance=go-2")
        go_pusher("delete", "-url", gw.url, "-group", "instance=go-2")
    ours, _ = scrape_text(gateway)
    ref, _ = scrape_text(reference)
    assert without_push_times(pushed(ours, job="go_job")) == without_push_times(pushed(ref, job="go_job"))
