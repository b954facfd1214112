#!/usr/bin/env python3
"""Render benchmark of the web UI (not a test): push N groups (default 10,000), load the page
in headless Chromium a few times, print the time to first render of the group list.

    PGW_UI_TARGET=ours PUSHGATEWAY_BIN=target/release/pushgateway python ci/browser/bench_render.py
    PGW_UI_TARGET=dev REFERENCE_PUSHGATEWAY=... python ci/browser/bench_render.py --groups 10000

"Time to first render" is measured in the page, from navigation start to the moment the first
page of groups is in the DOM (app.js records it in window.pgw.timings.firstRender), and split into
the API fetch (request + JSON parse) and the preparation (sorting, filtering, HTML). It also times
a filter keystroke and a page change over the whole store.
"""
import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import requests  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import conftest  # noqa: E402


def push_groups(gw, n, threads=16):
    local = threading.local()

    def one(i):
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        labels = {"job": "bench-%d" % (i % 50), "instance": "host-%05d.example.org:9100" % i}
        body = ("# TYPE bench_runs_total counter\n# HELP bench_runs_total Runs.\nbench_runs_total{kind=\"a\"} %d\n"
                "bench_runs_total{kind=\"b\"} %d\n# TYPE bench_last_run_seconds gauge\nbench_last_run_seconds %d\n") % (i, 2 * i, i)
        r = s.post(gw.url(conftest.group_path(labels)), data=body.encode(), timeout=60)
        if r.status_code not in (200, 202):
            raise RuntimeError("push %d: %s %s" % (i, r.status_code, r.text))

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, range(n)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--url", help="benchmark an already running gateway (its UI base URL) instead of starting one")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="pgw-bench-")
    gw = None
    if args.url:
        gw = conftest.Gateway(args.url.rstrip("/"), [], [])
    else:
        gw = conftest.start_gateway(tmp)
    try:
        t = time.time()
        push_groups(gw, args.groups)
        print("pushed %d groups in %.1fs" % (args.groups, time.time() - t))
        size = len(gw.http.get(gw.url("/api/v1/metrics")).content)
        print("api/v1/metrics: %.1f MB" % (size / 1e6))

        opts = webdriver.ChromeOptions()
        opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for a in conftest.CHROME_ARGS:
            opts.add_argument(a)
        opts.add_argument("--user-data-dir=" + tempfile.mkdtemp(prefix="pgw-chromium-"))
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        d = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=opts)
        d.set_window_size(1280, 900)
        try:
            results = []
            browser_results = []
            for run in range(args.runs):
                d.get(gw.url("/"))
                WebDriverWait(d, 60, 0.02).until(lambda _: d.execute_script("return !!(window.pgw && window.pgw.timings.firstRender)"))
                tm = d.execute_script("return window.pgw.timings")
                res = d.execute_script("""
                    const e = performance.getEntriesByType('resource').filter(r => r.name.includes('/api/v1/metrics')).pop();
                    return e ? {start: e.startTime, ttfb: e.responseStart, end: e.responseEnd} : null;""")
                n = d.execute_script("return document.querySelectorAll('#groups article.group').length")
                count = d.execute_script("return document.getElementById('group-count').textContent")
                # A filter over all groups, then a page change.
                filt = d.execute_script("""
                    const input = document.getElementById('filter');
                    const t0 = performance.now();
                    input.value = 'host-0999';
                    window.pgw.applyNow(input.value);
                    const t1 = performance.now();
                    input.value = '';
                    window.pgw.applyNow('');
                    const t2 = performance.now();
                    document.querySelector('#pager-top button[aria-label="Next page"]').click();
                    const t3 = performance.now();
                    return [t1 - t0, t2 - t1, t3 - t2];
                """)
                results.append(tm["firstRender"])
                # The server's share: from the API request to the last byte of its response.
                server = res["end"] - res["start"] if res else float("nan")
                browser = tm["firstRender"] - server
                browser_results.append(browser)
                print("run %d: first render %.0f ms after navigation start = API response %.0f ms (first byte after %.0f ms)"
                      " + browser %.0f ms (page load %.0f, JSON parse %.0f, prepare+sort %.0f, render %.0f); %d rows, '%s';"
                      " filter %.1f ms, unfilter %.1f ms, next page %.1f ms"
                      % (run + 1, tm["firstRender"], server, (res["ttfb"] - res["start"]) if res else float("nan"), browser,
                         res["start"] if res else float("nan"), tm["fetched"] - res["end"] if res else float("nan"),
                         tm["prepared"] - tm["fetched"], tm["firstRender"] - tm["prepared"], n, count, filt[0], filt[1], filt[2]))
            errors = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
            if errors:
                print("console errors: %r" % errors)
        finally:
            d.quit()
        print("RESULT: %d groups, time to first render: median %.0f ms, best %.0f ms, worst %.0f ms"
              % (args.groups, statistics.median(results), min(results), max(results)))
        print("RESULT: of which in the browser (all but the API response): median %.0f ms, best %.0f ms, worst %.0f ms"
              % (statistics.median(browser_results), min(browser_results), max(browser_results)))
    finally:
        if gw:
            gw.stop()


if __name__ == "__main__":
    main()
