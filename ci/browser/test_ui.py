"""Headless-Chromium tests of the web UI (issue 8). See conftest.py for the target server.

Every test also fails if the browser console logged an error (the `page` fixture checks it).
"""
import http.client
import http.server
import json
import re
import threading
import time
import urllib.parse

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import group_path

BACKUP = {"job": "backup", "instance": "db-1.example.org:9100", "env": "prod"}
WORKER1 = {"job": "batch", "instance": "worker-1"}
WORKER2 = {"job": "batch", "instance": "worker-2"}
WEIRD = {"job": "weird/job ü", "path": "/var/tmp/a b", "empty": ""}
BROKEN = {"job": "broken"}

BACKUP_BODY = """\
# TYPE backup_duration_seconds histogram
# HELP backup_duration_seconds How long the backup took.
backup_duration_seconds_bucket{le="1"} 2
backup_duration_seconds_bucket{le="10"} 4
backup_duration_seconds_bucket{le="+Inf"} 5
backup_duration_seconds_sum 120.5
backup_duration_seconds_count 5
# TYPE backup_last_success_timestamp_seconds gauge
# HELP backup_last_success_timestamp_seconds Unix time of the last successful backup.
backup_last_success_timestamp_seconds 1.7953e+09
# TYPE backup_bytes_total counter
backup_bytes_total{volume="/var/lib/postgres"} 1.2e+10
backup_bytes_total{volume="/home"} 3.4e+09
# TYPE rpc_latency_seconds summary
rpc_latency_seconds{quantile="0.5"} 0.012
rpc_latency_seconds{quantile="0.99"} 0.3
rpc_latency_seconds_sum 12
rpc_latency_seconds_count 1000
"""


def seed(gw):
    """Five groups, one of whose last push failed (a type clash with another group)."""
    gw.push(BACKUP, BACKUP_BODY)
    gw.push(WORKER1, "batch_records_processed 1000\n")
    gw.push(WORKER2, "batch_records_processed 2000\n")
    gw.push(WEIRD, "weird_metric 1\n")
    gw.push(BROKEN, "broken_ok 1\n")
    r = gw.push(BROKEN, "# TYPE backup_duration_seconds gauge\nbackup_duration_seconds 1\n", expect_ok=False)
    assert r.status_code == 400, (r.status_code, r.text)
    data = gw.http.get(gw.url("/api/v1/metrics")).json()["data"]
    failed = [g["labels"] for g in data if not g["last_push_successful"]]
    assert failed == [BROKEN], failed


def all_labels():
    return [BACKUP, WORKER1, WORKER2, BROKEN, WEIRD]


def no_horizontal_overflow(page):
    return page.d.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")


# ------------------------------------------------------------------ listing


def test_groups_listed(page, gateway):
    seed(gateway)
    page.open(gateway)
    assert page.group_labels() == all_labels()  # sorted by job, then the other labels
    backup = page.article(BACKUP)
    text = backup.text
    for fragment in ['job="backup"', 'env="prod"', 'instance="db-1.example.org:9100"', "4 families", "5 series", "Last push:"]:
        assert fragment in text, (fragment, text)
    assert "failed" not in backup.get_attribute("class").split()
    assert "Last failure" not in text

    broken = page.article(BROKEN)
    assert "failed" in broken.get_attribute("class").split()
    assert "last push failed" in broken.text
    assert "Last failure:" in broken.text
    # The failed group is visibly highlighted: its left border is the failure colour.
    colours = page.d.execute_script(
        "const [a, b] = arguments; return [getComputedStyle(a).borderLeftColor, getComputedStyle(b).borderLeftColor]",
        backup, broken)
    assert colours[0] != colours[1]

    weird = page.article(WEIRD)
    assert 'job="weird/job ü"' in weird.text and 'empty=""' in weird.text
    assert "5 groups" in page.css("#group-count").text
    assert "1 failed push" in page.css("#group-count").text
    assert not page.css("#wipe").is_displayed()  # the admin API is off
    page.shot("list")


def test_failed_only(page, gateway):
    seed(gateway)
    page.open(gateway)
    page.css("#only-failed").click()
    page.wait(lambda: page.group_labels() == [BROKEN])
    assert "failed=1" in page.d.current_url
    page.css("#only-failed").click()
    page.wait(lambda: len(page.articles()) == 5)
    # The "1 failed push" count is a shortcut for the same filter.
    page.css("#show-failed").click()
    page.wait(lambda: page.group_labels() == [BROKEN])
    assert page.css("#only-failed").is_selected()
    page.css("#show-failed").click()
    page.wait(lambda: len(page.articles()) == 5)


# ------------------------------------------------------------------ filter


def test_filter(page, gateway):
    seed(gateway)
    page.open(gateway)
    box = page.css("#filter")

    def filtered(text, expected):
        box.clear()
        if text:
            box.send_keys(text)
        page.wait(lambda: page.group_labels() == expected, message="filter %r" % text)

    filtered("batch", [WORKER1, WORKER2])
    filtered("BATCH worker-2", [WORKER2])
    filtered("job=batch instance=worker-1", [WORKER1])
    filtered('instance="worker-1"', [WORKER1])
    filtered("env=prod", [BACKUP])
    filtered("ü", [WEIRD])
    assert "of 5 groups" in page.css("#group-count").text or "filtered from 5" in page.css("#group-count").text
    page.shot("filtered")

    filtered("no-such-group", [])
    assert "No group matches" in page.css("#groups").text
    page.css("#clear-filter").click()
    page.wait(lambda: len(page.articles()) == 5)
    assert page.css("#filter").get_attribute("value") == ""

    filtered("batch", [WORKER1, WORKER2])
    box.send_keys(Keys.ESCAPE)
    page.wait(lambda: len(page.articles()) == 5)

    # The filter lives in the URL, so a reload (or a shared link) keeps it.
    filtered("worker", [WORKER1, WORKER2])
    page.wait(lambda: "q=worker" in page.d.current_url)
    page.d.refresh()
    page.wait_loaded()
    assert page.group_labels() == [WORKER1, WORKER2]
    assert page.css("#filter").get_attribute("value") == "worker"


# ------------------------------------------------------------------ expand


def test_expand_group(page, gateway):
    seed(gateway)
    page.open(gateway)
    click_in_group(page, BACKUP, "button.expander")
    page.wait(lambda: page.article(BACKUP).find_elements(By.CSS_SELECTOR, ".group-body .family"))
    art = page.article(BACKUP)
    assert art.find_element(By.CSS_SELECTOR, "button.expander").get_attribute("aria-expanded") == "true"
    families = [e.text for e in art.find_elements(By.CSS_SELECTOR, ".group-body > .family .fname")]
    assert families == ["backup_bytes_total", "backup_duration_seconds",
                        "backup_last_success_timestamp_seconds", "rpc_latency_seconds"]
    body = art.find_element(By.CSS_SELECTOR, ".group-body").text
    for fragment in ["How long the backup took.", 'volume="/var/lib/postgres"', "1.2e+10", "3.4e+09",
                     "le=+Inf", "120.5", "φ=0.99", "0.012", "histogram", "summary", "counter", "gauge"]:
        assert fragment.lower() in body.lower(), (fragment, body)
    # Buckets in numeric order, +Inf last.
    buckets = [e.text for e in art.find_elements(By.CSS_SELECTOR, '.family[data-family="backup_duration_seconds"] .bucket')]
    assert [b.split()[0] for b in buckets] == ["le=1", "le=10", "le=+Inf"], buckets
    page.shot("expanded")

    # Expanding survives a refresh; collapsing hides the samples again.
    page.reload_groups()
    assert page.article(BACKUP).find_elements(By.CSS_SELECTOR, ".group-body .family")
    click_in_group(page, BACKUP, "button.expander")
    page.wait(lambda: not page.article(BACKUP).find_elements(By.CSS_SELECTOR, ".group-body"))

    # Expand every group of the page at once, then collapse them.
    page.css("#toggle-all").click()
    page.wait(lambda: len(page.d.find_elements(By.CSS_SELECTOR, "article.group.open")) == 5)
    page.css("#toggle-all").click()
    page.wait(lambda: not page.d.find_elements(By.CSS_SELECTOR, "article.group.open"))


def open_groups(page):
    return [dict(json.loads(a.get_attribute("data-key")))
            for a in page.d.find_elements(By.CSS_SELECTOR, "#groups article.group.open")]


def test_expanded_groups_survive_a_browser_reload(page, gateway):
    """As upstream 1.7: the expanded groups are kept in sessionStorage across a reload."""
    seed(gateway)
    page.open(gateway)
    click_in_group(page, BACKUP, "button.expander")
    click_in_group(page, WEIRD, "button.expander")
    page.wait(lambda: len(open_groups(page)) == 2)
    page.d.refresh()
    page.wait_loaded()
    canonical = lambda groups: sorted(json.dumps(g, sort_keys=True) for g in groups)  # noqa: E731
    assert canonical(open_groups(page)) == canonical([BACKUP, WEIRD])
    assert page.article(BACKUP).find_elements(By.CSS_SELECTOR, ".group-body .family")
    # Collapsing is remembered too.
    click_in_group(page, WEIRD, "button.expander")
    page.wait(lambda: len(open_groups(page)) == 1)
    page.d.refresh()
    page.wait_loaded()
    assert open_groups(page) == [BACKUP]
    # Collapse page forgets them all.
    page.css("#toggle-all").click()
    page.wait(lambda: len(open_groups(page)) == 5)
    page.css("#toggle-all").click()
    page.wait(lambda: not open_groups(page))
    page.d.refresh()
    page.wait_loaded()
    assert open_groups(page) == []


def test_damaged_session_storage_is_ignored(page, gateway):
    seed(gateway)
    page.open(gateway)
    for stored in ["{not json", '{"a": 1}', "[1, null, {}]"]:
        page.d.execute_script("sessionStorage.setItem('pushgateway.expandedGroups', arguments[0])", stored)
        page.d.refresh()
        page.wait_loaded()
        assert open_groups(page) == [], stored
        assert len(page.articles()) == 5


# ------------------------------------------------------------------ delete


def click_in_group(page, labels, selector):
    """Clicks a control of a group's row, retrying if a refresh re-rendered the row meanwhile."""
    for attempt in range(5):
        try:
            page.article(labels).find_element(By.CSS_SELECTOR, selector).click()
            return
        except StaleElementReferenceException:
            if attempt == 4:
                raise
            time.sleep(0.1)


def delete_via_page(page, labels, confirm=True):
    click_in_group(page, labels, "button.delete")
    dialog = page.css("#confirm")
    page.wait(lambda: dialog.is_displayed())
    for name, value in labels.items():
        assert "%s=%s" % (name, json.dumps(value, ensure_ascii=False)) in dialog.text, dialog.text
    page.css("#confirm-ok" if confirm else "#confirm-cancel").click()
    page.wait(lambda: not dialog.is_displayed())


def test_delete_group(page, gateway):
    seed(gateway)
    page.open(gateway)
    assert 'job="weird/job ü"' in gateway.metrics_text()

    # Cancelling changes nothing.
    delete_via_page(page, WORKER1, confirm=False)
    time.sleep(0.3)
    assert WORKER1 in gateway.groups()
    assert WORKER1 in page.group_labels()

    # Deleting removes it from the page, the API and /metrics. The weird group's values
    # (slash, space, non-ASCII, empty) only survive the URL thanks to @base64.
    click_in_group(page, WEIRD, "button.delete")
    page.wait(lambda: page.css("#confirm").is_displayed())
    page.shot("confirm")
    page.css("#confirm-ok").click()
    page.wait(lambda: WEIRD not in page.group_labels())
    gateway.wait_groups(lambda gs: WEIRD not in gs)
    assert "weird" not in gateway.metrics_text()
    page.wait(lambda: "Deleted the group" in page.css("#notice").text)
    page.shot("deleted")

    delete_via_page(page, WORKER1)
    gateway.wait_groups(lambda gs: WORKER1 not in gs)
    text = gateway.metrics_text()
    assert 'instance="worker-1"' not in text and 'instance="worker-2"' in text
    page.reload_groups()
    assert page.group_labels() == [BACKUP, WORKER2, BROKEN]


# ------------------------------------------------------------------ admin


def test_admin_wipe(page, gateway_factory):
    gw = gateway_factory(admin=True)
    seed(gw)
    page.open(gw)
    wipe = page.css("#wipe")
    page.wait(wipe.is_displayed, message="the wipe button should show with --web.enable-admin-api")
    wipe.click()
    page.wait(lambda: page.css("#confirm").is_displayed())
    assert "5 groups" in page.css("#confirm").text
    page.css("#confirm-cancel").click()
    time.sleep(0.3)
    assert len(gw.groups()) == 5

    wipe.click()
    page.wait(lambda: page.css("#confirm").is_displayed())
    page.css("#confirm-ok").click()
    gw.wait_groups(lambda gs: gs == [])
    page.wait(lambda: not page.articles())
    page.reload_groups()
    assert "No metrics have been pushed yet" in page.css("#groups").text
    page.shot("wiped")


# ------------------------------------------------------------------ status


def test_status_tab(page, gateway):
    seed(gateway)
    status = gateway.http.get(gateway.url("/api/v1/status")).json()["data"]
    page.open(gateway)
    page.css("#tab-status").click()
    page.wait(lambda: page.css("#view-status").get_attribute("data-loaded") == "true")
    assert page.d.current_url == gateway.url("/status")
    assert not page.css("#view-metrics").is_displayed()
    runtime = page.css("#runtime").text
    assert "Start time" in runtime and "UTC" in runtime
    build = page.css("#build").text
    assert status["build_information"]["version"] in build
    flags = page.css("#flags").text
    assert "--web.listen-address" in flags and "--persistence.file" in flags
    for name, value in status["flags"].items():
        assert "--" + name in flags
    if "storage" in status:
        assert "Storage" in runtime and str(status["storage"]) in runtime
    if isinstance(status.get("persistence"), dict):
        assert "Persistence" in runtime
        if "state" in status["persistence"]:
            assert str(status["persistence"]["state"]) in runtime
    page.shot("status")

    # Back to the metrics tab with the history; then a direct load of /status.
    page.d.back()
    page.wait(lambda: page.css("#view-metrics").is_displayed())
    assert len(page.articles()) == 5
    page.open(gateway, "/status")
    page.wait(lambda: page.css("#view-status").get_attribute("data-loaded") == "true")
    assert "active" in page.css("#tab-status").get_attribute("class")
    page.css("#tab-metrics").click()
    page.wait(lambda: len(page.articles()) == 5)
    assert page.d.current_url == gateway.url("/")


# ------------------------------------------------------------------ paging


def test_paging(page, gateway):
    for i in range(250):
        gateway.push({"job": "many-%03d" % i}, "x %d\n" % i)
    page.open(gateway)
    assert len(page.articles()) == 100
    assert "1–100 of 250 groups" in page.css("#group-count").text
    assert page.group_labels()[0] == {"job": "many-000"}
    page.css('#pager-top button[aria-label="Next page"]').click()
    page.wait(lambda: page.group_labels()[0] == {"job": "many-100"})
    assert "101–200 of 250" in page.css("#group-count").text
    assert "page=2" in page.d.current_url
    page.css('#pager-bottom button[aria-label="Page 3"]').click()
    page.wait(lambda: page.group_labels()[0] == {"job": "many-200"})
    assert len(page.articles()) == 50
    page.shot("page3")
    # A bigger page size keeps the first shown group on screen and lands in the URL.
    Select(page.css("#page-size")).select_by_value("250")
    page.wait(lambda: len(page.articles()) == 250)
    assert "size=250" in page.d.current_url and page.css("#group-count").text.startswith("250 groups")
    Select(page.css("#page-size")).select_by_value("50")
    page.wait(lambda: len(page.articles()) == 50)
    page.css("#filter").send_keys("many-24")
    page.wait(lambda: [g["job"] for g in page.group_labels()] == ["many-%03d" % i for i in range(240, 250)])
    assert page.css("#pager-top").text == ""


# ------------------------------------------------------------------ prefix and external URL


def check_page_works(page, gw, labels_present, to_delete):
    page.open(gw)
    assert page.group_labels() == labels_present
    # The stylesheet loaded (our body has no margin; the browser default is 8px).
    assert page.d.execute_script("return getComputedStyle(document.body).marginTop") == "0px"
    resources = page.d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/static/app.js" in r for r in resources), resources
    for r in resources:
        assert r.startswith(gw.base + "/"), "request outside the prefix: %s" % r
    delete_via_page(page, to_delete)
    gw.wait_groups(lambda gs: to_delete not in gs)
    page.css("#tab-status").click()
    page.wait(lambda: page.css("#view-status").get_attribute("data-loaded") == "true")
    assert page.d.current_url == gw.url("/status")
    page.open(gw, "/status")
    page.wait(lambda: page.css("#view-status").get_attribute("data-loaded") == "true")


def test_route_prefix(page, gateway_factory):
    gw = gateway_factory(route_prefix="/pgw")
    assert gw.base.endswith("/pgw")
    seed(gw)
    check_page_works(page, gw, all_labels(), WORKER2)
    page.open(gw)
    page.shot("prefix")
    # The prefix without its trailing slash works too (served directly or redirected).
    page.d.get(gw.base)
    page.wait_loaded()
    assert page.group_labels() == [BACKUP, WORKER1, BROKEN, WEIRD]
    assert page.d.execute_script("return getComputedStyle(document.body).marginTop") == "0px"
    page.css("#tab-status").click()
    page.wait(lambda: page.css("#view-status").get_attribute("data-loaded") == "true")
    assert page.d.current_url == gw.url("/status")


def test_external_url(page, gateway_factory):
    """--web.external-url=http://<proxy>/ext/ behind a proxy that passes paths through: the
    routes live under /ext (the proxy's port is only known once it listens, so the gateway
    cannot be its own external URL)."""
    proxy = RewriteProxy()
    try:
        gw = gateway_factory(external_url="http://127.0.0.1:%d/ext/" % proxy.port)
        assert gw.base.endswith("/ext")
        proxy.upstream_port = port_of(gw)
        gw.base = proxy.base + "/ext"
        seed(gw)
        check_page_works(page, gw, all_labels(), BACKUP)
    finally:
        proxy.close()


class RewriteProxy:
    """A reverse proxy that strips `strip` from request paths and prepends `add`, like an
    nginx `location /strip/ { proxy_pass http://upstream/add/; }`."""

    def __init__(self, upstream_port=None, strip="", add=""):
        # Listens on a port the kernel picks; the upstream may be set later (upstream_port).
        self.upstream_port = upstream_port
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                if not self.path.startswith(strip + "/"):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                conn.request(self.command, add + self.path[len(strip):], body=body,
                             headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")})
                res = conn.getresponse()
                data = res.read()
                self.send_response(res.status)
                for k, v in res.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = "http://127.0.0.1:%d%s" % (self.port, strip)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def port_of(gw):
    return int(urllib.parse.urlsplit(gw.base).port)


def test_external_url_behind_stripping_proxy(page, gateway_factory):
    """--web.external-url=http://proxy/proxied/ --web.route-prefix=/ behind a proxy that
    strips /proxied: the page reaches its assets and the API through /proxied."""
    proxy = RewriteProxy(strip="/proxied")
    try:
        gw = gateway_factory(route_prefix="/", external_url="http://127.0.0.1:%d/proxied/" % proxy.port)
        proxy.upstream_port = port_of(gw)
        gw.base = proxy.base
        seed(gw)
        check_page_works(page, gw, all_labels(), WORKER1)
    finally:
        proxy.close()


def test_route_prefix_behind_adding_proxy(page, gateway_factory):
    """--web.route-prefix=/pgw behind a proxy that serves it at / (adding /pgw): the
    Prometheus meaning of a route prefix without an external URL."""
    gw = gateway_factory(route_prefix="/pgw")
    proxy = RewriteProxy(port_of(gw), add="/pgw")
    try:
        gw.base = proxy.base
        seed(gw)
        check_page_works(page, gw, all_labels(), WORKER1)
    finally:
        proxy.close()


# ------------------------------------------------------------------ assets


def test_assets_and_cache_headers(page, gateway):
    for path in ("/", "/status"):
        r = gateway.http.get(gateway.url(path))
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith("text/html"), r.headers
        assert "__PATH_PREFIX__" not in r.text and "__VERSION__" not in r.text
        assert not re.search(r"(src|href)=\"(https?:)?//", r.text), "external asset in index.html"
    # The stylesheet, and the script's modules: app.js and everything it imports, directly or
    # not, each import carrying the version like the page's own asset URLs do.
    todo = [("app.css", "text/css"), ("app.js", "javascript")]
    seen = set()
    while todo:
        name, ctype = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        r = gateway.http.get(gateway.url("/static/" + name))
        assert r.status_code == 200, name
        assert ctype in r.headers["Content-Type"], r.headers
        cc = r.headers.get("Cache-Control", "")
        m = re.search(r"max-age=(\d+)", cc)
        assert m and int(m.group(1)) >= 86400, "no long cache header on %s: %r" % (name, cc)
        assert not re.search(r"https?://", r.text), "external URL in " + name
        if ctype == "javascript":
            imports = re.findall(r"""^import [^;]* from '([^']*)';""", r.text, re.M)
            for spec in imports:
                assert re.fullmatch(r"\./[a-z]+\.js\?v=[^_&]+", spec), "unversioned import in %s: %s" % (name, spec)
                todo.append((spec[2:].split("?")[0], "javascript"))
    assert len(seen) > 2, "app.js imports no module: %r" % seen
    page.open(gateway)
    resources = page.d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    origin = gateway.base.split("/", 3)
    origin = "/".join(origin[:3])
    assert all(r.startswith(origin + "/") for r in resources), resources
    # The assets carry the version for cache busting.
    assets = [r for r in resources if "/static/" in r]
    assert len(assets) == len(seen) and all(re.search(r"\?v=[^_&]+$", r) for r in assets), assets


def test_label_values_are_escaped(page, gateway):
    evil = {"job": '<img src=x onerror="window.__xss=1">', "note": "</script><b>bold</b>"}
    gateway.push(evil, '# HELP evil_metric <script>window.__xss=2</script>\nevil_metric{v="<i>x</i>"} 1\n')
    page.open(gateway)
    art = page.article(evil)
    art.find_element(By.CSS_SELECTOR, "button.expander").click()
    page.wait(lambda: page.article(evil).find_elements(By.CSS_SELECTOR, ".family"))
    assert page.d.execute_script("return window.__xss === undefined")
    assert not page.d.find_elements(By.CSS_SELECTOR, "#groups img, #groups b, #groups i, #groups script")
    text = page.article(evil).text
    assert '<img src=x onerror=\\"window.__xss=1\\">' in text, text
    assert "<script>window.__xss=2</script>" in text
    delete_via_page(page, evil)
    gateway.wait_groups(lambda gs: evil not in gs)


# ------------------------------------------------------------------ narrow screens


def test_narrow_screen(page, gateway):
    seed(gateway)
    gateway.push({"job": "long", "instance": "a-really-long-instance-name-" + "x" * 120}, "y 1\n")
    page.d.set_window_size(400, 900)
    page.open(gateway)
    assert no_horizontal_overflow(page)
    page.shot("list-400px")
    click_in_group(page, BACKUP, "button.expander")
    page.wait(lambda: page.article(BACKUP).find_elements(By.CSS_SELECTOR, ".family"))
    assert no_horizontal_overflow(page)
    page.shot("expanded-400px")
    # Delete works on the narrow page too (buttons reachable, dialog fits).
    click_in_group(page, WORKER1, "button.delete")
    page.wait(lambda: page.css("#confirm").is_displayed())
    width = page.d.execute_script("return document.getElementById('confirm').getBoundingClientRect().width")
    assert width <= 400
    page.shot("confirm-400px")
    page.css("#confirm-cancel").click()
    page.css("#tab-status").click()
    page.wait(lambda: page.css("#view-status").get_attribute("data-loaded") == "true")
    assert no_horizontal_overflow(page)
    page.shot("status-400px")


def test_console_clean_everywhere(page, gateway_factory):
    """Walk every view and control once; the fixture then checks the console is clean."""
    gw = gateway_factory(admin=True)
    seed(gw)
    page.open(gw)
    page.css("#toggle-all").click()
    page.css("#filter").send_keys("batch")
    page.wait(lambda: len(page.articles()) == 2)
    page.css("#refresh").click()
    page.css("#tab-status").click()
    page.wait(lambda: page.css("#view-status").get_attribute("data-loaded") == "true")
    page.css("#tab-metrics").click()
    page.wait(lambda: len(page.articles()) == 2)


def test_large_family_is_capped(page, gateway):
    """A family with many series renders the first 250 and offers the rest on demand."""
    labels = {"job": "wide"}
    gateway.push(labels, "# TYPE wide_metric gauge\n" + "".join('wide_metric{i="%d"} %d\n' % (i, i) for i in range(300)))
    page.open(gateway)
    click_in_group(page, labels, "button.expander")
    rows = '.family[data-family="wide_metric"] tbody tr'
    page.wait(lambda: len(page.d.find_elements(By.CSS_SELECTOR, rows)) == 250)
    assert "Show all 300 series" in page.css(".show-all").text
    page.css(".show-all").click()
    page.wait(lambda: len(page.d.find_elements(By.CSS_SELECTOR, rows)) == 300)
    assert not page.d.find_elements(By.CSS_SELECTOR, ".show-all")


# ------------------------------------------------------------------ native histograms


def _varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _zigzag(n):
    return (n << 1) ^ (n >> 63)


def _field(number, wire, payload):
    return _varint(number << 3 | wire) + payload


def _message(number, body):
    return _field(number, 2, _varint(len(body)) + body)


def native_histogram_push():
    """A delimited protobuf MetricFamily with one native histogram (schema 0): one
    observation in the zero bucket, one in (0.5, 1], three in (2, 4], one in [-1, -0.5)."""
    import struct
    span = lambda offset, length: _field(1, 0, _varint(_zigzag(offset))) + _field(2, 0, _varint(length))  # noqa: E731
    histogram = (_field(1, 0, _varint(6)) + _field(2, 1, struct.pack("<d", 5.5)) + _field(5, 0, _varint(_zigzag(0)))
                 + _field(6, 1, struct.pack("<d", 0.001)) + _field(7, 0, _varint(1))
                 + _message(9, span(0, 1)) + _field(10, 0, _varint(_zigzag(1)))
                 + _message(12, span(0, 3)) + b"".join(_field(13, 0, _varint(_zigzag(d))) for d in (1, -1, 3)))
    family = (_field(1, 2, _varint(len(b"native_seconds")) + b"native_seconds")
              + _field(3, 0, _varint(4))  # HISTOGRAM
              + _message(4, _message(7, histogram)))
    return _varint(len(family)) + family


def test_native_histogram_buckets(page, gateway):
    """Upstream 1.9 shows a native histogram's buckets as intervals with their counts."""
    labels = {"job": "native"}
    r = gateway.http.put(gateway.url(group_path(labels)), data=native_histogram_push(), timeout=30, headers={
        "Content-Type": "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"})
    assert r.status_code in (200, 202), (r.status_code, r.text)
    page.open(gateway)
    click_in_group(page, labels, "button.expander")
    page.wait(lambda: page.article(labels).find_elements(By.CSS_SELECTOR, ".native-bucket"))
    family = page.article(labels).find_element(By.CSS_SELECTOR, '.family[data-family="native_seconds"]')
    buckets = [e.text for e in family.find_elements(By.CSS_SELECTOR, ".native-bucket")]
    assert buckets == ["[-1, -0.5) 1", "[-0.001, 0.001] 1", "(0.5, 1] 1", "(2, 4] 3"], buckets
    assert "histogram" in family.text.lower()
    page.shot("native-histogram")
