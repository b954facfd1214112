"""The gateway's own push metrics as dashboards written for upstream query them: the summaries
pushgateway_http_push_duration_seconds and pushgateway_http_push_size_bytes, with the same
quantiles and labels as the reference's."""

import re

from conftest import ours_only

UPSTREAM_SUMMARIES = ("pushgateway_http_push_duration_seconds", "pushgateway_http_push_size_bytes")

def push_twice_each(gw):
    for method in ("PUT", "POST"):
        for _ in range(2):
            r = gw.request(method, "/metrics/job/own", body=b"own_metric 1\n")
            assert r.status in (200, 202), r

def shape(gw, names):
    """TYPE lines and the series (name and labels, without values) of the named families."""
    text = gw.metrics().text
    lines = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            if line.split()[2] in names:
                lines.add(line)
        elif line and not line.startswith("#"):
            series = line.rsplit(" ", 1)[0]
            if re.match(r"(%s)(_sum|_count)?(\{|$)" % "|".join(names), series):
                lines.add(series)
    return lines

def test_push_summaries_match_the_reference(reference, ours):
    for gw in (reference, ours):
        push_twice_each(gw)
    expected = shape(reference, UPSTREAM_SUMMARIES)
    assert '# TYPE pushgateway_http_push_duration_seconds summary' in expected, expected
    assert 'pushgateway_http_push_duration_seconds{method="put",quantile="0.9"}' in expected, expected
    assert shape(ours, UPSTREAM_SUMMARIES) == expected

@ours_only
def test_counts_and_histograms_alongside(ours):
    push_twice_each(ours)
    text = ours.metrics().text
    for name in UPSTREAM_SUMMARIES:
        for method in ("put", "post"):
            assert f'{name}_count{{method="{method}"}} 2' in text, text
    # The histograms, for aggregating across replicas, under their own names.
    assert "# TYPE pushgateway_http_push_duration_histogram_seconds histogram" in text
    assert 'pushgateway_http_push_duration_histogram_seconds_count{method="put"} 2' in text
    assert "# TYPE pushgateway_http_push_size_histogram_bytes histogram" in text
    assert 'pushgateway_http_push_size_histogram_bytes_bucket{method="post",le="+Inf"} 2' in text
