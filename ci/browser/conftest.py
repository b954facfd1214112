"""Fixtures for the headless-Chromium tests of the web UI.

Which server the tests run against (environment):
  PGW_UI_TARGET=ours (default)  our binary, PUSHGATEWAY_BIN=<path to target/release/pushgateway>
  PGW_UI_TARGET=dev             the upstream reference (REFERENCE_PUSHGATEWAY=<path>) behind
                                ci/browser/devserver.py, which serves gateway/src/web/ui/ itself
Screenshots go to ci/artifacts/browser/.
"""
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "ci" / "lib"))
import procnet  # noqa: E402
ARTIFACTS = ROOT / "ci" / "artifacts" / "browser"
TARGET = os.environ.get("PGW_UI_TARGET", "ours")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-dev-shm-usage", "--lang=en-US"]


def b64(value):
    """@base64 encoding of a grouping-label value, as upstream documents it."""
    if value == "":
        return "="
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def group_path(labels):
    """/metrics/job@base64/..../name@base64/... for a dict of grouping labels."""
    path = "/metrics/job@base64/" + b64(labels["job"])
    for name in sorted(k for k in labels if k != "job"):
        path += "/%s@base64/%s" % (name, b64(labels[name]))
    return path


class Gateway:
    """A running Pushgateway (ours, or the reference behind the dev server)."""

    def __init__(self, base, procs, logs):
        self.base = base  # http://127.0.0.1:port<prefix>, no trailing slash
        self.procs = procs
        self.logs = logs
        self.http = requests.Session()

    def url(self, path="/"):
        return self.base + path

    def push(self, labels, body, method="POST", expect_ok=True):
        if not body.endswith("\n"):
            body += "\n"
        r = self.http.request(method, self.url(group_path(labels)), data=body.encode(),
                              headers={"Content-Type": "text/plain; version=0.0.4"}, timeout=30)
        if expect_ok:
            assert r.status_code in (200, 202), "push %r failed: %s %s" % (labels, r.status_code, r.text)
        return r

    def groups(self):
        r = self.http.get(self.url("/api/v1/metrics"), timeout=30)
        r.raise_for_status()
        return [g["labels"] for g in r.json()["data"]]

    def metrics_text(self):
        r = self.http.get(self.url("/metrics"), timeout=30)
        r.raise_for_status()
        return r.text

    def wait_groups(self, predicate, timeout=30):
        deadline = time.time() + timeout
        while True:
            groups = self.groups()
            if predicate(groups):
                return groups
            if time.time() > deadline:
                raise AssertionError("groups never matched: %r" % groups)
            time.sleep(0.1)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in self.logs:
            f.close()


def _wait_ready(url, procs, logs, timeout=procnet.START_TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p, log in zip(procs, logs):
            if p.poll() is not None:
                log.flush()
                with open(log.name, errors="replace") as f:
                    out = f.read()
                raise RuntimeError("%s exited with %s:\n%s" % (p.args[0], p.returncode, out[-4000:]))
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s not ready after %ss" % (url, timeout))


def _spawn(args, tmpdir, name):
    log = open(os.path.join(tmpdir, name + ".log"), "w+")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, log


def start_gateway(tmpdir, route_prefix=None, external_url=None, admin=False):
    """Starts a gateway on a loopback port the kernel picks (port 0); returns a Gateway whose
    base is its URL under the route prefix."""
    flags = ["--persistence.file="]
    if admin:
        flags.append("--web.enable-admin-api")
    if route_prefix is not None:
        flags.append("--web.route-prefix=" + route_prefix)
    if external_url is not None:
        flags.append("--web.external-url=" + external_url)
    # The path the routes live under: the route prefix, else the external URL's path.
    if route_prefix is not None:
        served = route_prefix.rstrip("/")
    elif external_url is not None:
        served = urllib.parse.urlsplit(external_url).path.rstrip("/")
    else:
        served = ""
    procs, logs = [], []

    def listening(proc, what, address_file=None):
        try:
            if address_file:
                return procnet.wait_for_address_file(proc, address_file, what=what)[1]
            return procnet.wait_for_listen_port(proc, what=what)
        except RuntimeError:
            Gateway("", procs, logs).stop()
            raise

    if TARGET == "ours":
        binary = os.environ.get("PUSHGATEWAY_BIN")
        if not binary or not os.access(binary, os.X_OK):
            raise RuntimeError("PUSHGATEWAY_BIN must point at our pushgateway binary (got %r)" % binary)
        address_file = os.path.join(tmpdir, "pushgateway-%d.address" % len(os.listdir(tmpdir)))
        p, log = _spawn([binary, *procnet.gateway_listen_args(address_file)] + flags, tmpdir, "pushgateway")
        procs.append(p)
        logs.append(log)
        base = "http://127.0.0.1:%d%s" % (listening(p, "pushgateway", address_file), served)
    elif TARGET == "dev":
        ref = os.environ.get("REFERENCE_PUSHGATEWAY")
        if not ref or not os.access(ref, os.X_OK):
            raise RuntimeError("REFERENCE_PUSHGATEWAY must point at the reference binary (got %r)" % ref)
        p, log = _spawn([ref, "--web.listen-address=127.0.0.1:0"] + flags, tmpdir, "reference")
        procs.append(p)
        logs.append(log)
        ref_port = listening(p, "the reference")
        _wait_ready("http://127.0.0.1:%d%s/-/ready" % (ref_port, served), procs, logs)
        p, log = _spawn([sys.executable, str(HERE / "devserver.py"), "--listen", "127.0.0.1:0",
                         "--upstream", "http://127.0.0.1:%d" % ref_port, "--prefix", served], tmpdir, "devserver")
        procs.append(p)
        logs.append(log)
        base = "http://127.0.0.1:%d%s" % (listening(p, "devserver"), served)
    else:
        raise RuntimeError("unknown PGW_UI_TARGET %r (ours or dev)" % TARGET)
    gw = Gateway(base, procs, logs)
    try:
        _wait_ready(base + "/api/v1/status", procs, logs)
    except Exception:
        gw.stop()
        raise
    return gw


@pytest.fixture
def gateway_factory(tmp_path):
    started = []

    def factory(**kwargs):
        gw = start_gateway(str(tmp_path), **kwargs)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        gw.stop()


@pytest.fixture
def gateway(gateway_factory):
    return gateway_factory()


@pytest.fixture(scope="session")
def driver():
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    chromedriver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    profile = tempfile.mkdtemp(prefix="pgw-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in CHROME_ARGS:
        opts.add_argument(a)
    opts.add_argument("--user-data-dir=" + profile)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=opts)
    drv.set_window_size(1280, 900)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Page:
    """The browser, pointed at one gateway, with a few helpers."""

    def __init__(self, driver, test_name):
        self.d = driver
        self.test_name = test_name
        self.shots = 0

    def open(self, gw, path="/", wait_loaded=True):
        self.d.get(gw.url(path))
        if wait_loaded:
            self.wait_loaded()

    def wait(self, fn, timeout=30, message=""):
        return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda _: fn(), message)

    def generation(self):
        return int(self.d.find_element(By.ID, "groups").get_attribute("data-generation") or 0)

    def wait_loaded(self):
        self.wait(lambda: self.generation() > 0 and
                  self.d.find_element(By.ID, "groups").get_attribute("aria-busy") == "false",
                  message="the group list never rendered")

    def reload_groups(self):
        """Clicks Refresh and waits for the list to be rendered again."""
        before = self.generation()
        self.d.find_element(By.ID, "refresh").click()
        self.wait(lambda: self.generation() > before and
                  self.d.find_element(By.ID, "groups").get_attribute("aria-busy") == "false")

    def articles(self):
        return self.d.find_elements(By.CSS_SELECTOR, "#groups article.group")

    def group_labels(self):
        """The grouping labels of every listed group, in page order, as dicts."""
        keys = self.d.execute_script(
            "return Array.from(document.querySelectorAll('#groups article.group')).map(a => a.dataset.key)")
        return [dict(json.loads(k)) for k in keys]

    def article(self, labels):
        for a in self.articles():
            if dict(json.loads(a.get_attribute("data-key"))) == labels:
                return a
        raise AssertionError("no group %r on the page (have %r)" % (labels, self.group_labels()))

    def css(self, selector):
        return self.d.find_element(By.CSS_SELECTOR, selector)

    def shot(self, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / ("%s-%s.png" % (self.test_name, name))
        # Full-page screenshot: grow the window to the document height, then restore.
        size = self.d.get_window_size()
        height = self.d.execute_script("return Math.max(document.documentElement.scrollHeight, window.innerHeight)")
        chrome = size["height"] - self.d.execute_script("return window.innerHeight")
        self.d.set_window_size(size["width"], min(int(height) + chrome, 6000))
        try:
            self.d.save_screenshot(str(path))
        finally:
            self.d.set_window_size(size["width"], size["height"])
        return path

    def console_errors(self):
        entries = self.d.get_log("browser")
        return [e for e in entries if e.get("level") in ("SEVERE", "ERROR")]


@pytest.fixture
def page(driver, request, gateway_factory):
    # Depends on gateway_factory so that it is torn down before the gateways stop: leaving the
    # page first means no timer of the page can hit a stopped server.
    driver.set_window_size(1280, 900)
    driver.get("about:blank")
    driver.get_log("browser")  # drain what earlier tests left
    p = Page(driver, request.node.name.replace("[", "-").replace("]", ""))
    yield p
    driver.get("about:blank")
    # Every test also checks that the page logged no error (JS exceptions, failed requests).
    errors = p.console_errors()
    assert not errors, "errors in the browser console: %r" % errors
