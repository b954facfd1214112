"""make/ops/pushgateway.mk: the HTTP targets against a local gateway through PUSHGATEWAY_URL,
the kubectl targets against a stub kubectl that records its arguments."""

import base64
import http.server
import json
import os
import socket
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import MAKEFILE, STUB_DIR

NS = "ops-test"
REL = "pg"
SELECTOR = f"app.kubernetes.io/name=pushgateway,app.kubernetes.io/instance={REL}"
CLUSTER = [f"PUSHGATEWAY_NAMESPACE={NS}", f"PUSHGATEWAY_RELEASE={REL}"]
TARGETS = ["pushgateway-port-forward", "pushgateway-metrics", "pushgateway-delete-group",
           "pushgateway-delete-groups", "pushgateway-health", "pushgateway-status", "pushgateway-reload", "pushgateway-wipe", "pushgateway-logs",
           "pushgateway-restart"]


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def failed(proc, message):
    assert proc.returncode != 0, f"expected a failure\nstdout:\n{proc.stdout}"
    assert message in proc.stderr, proc.stderr


# ---- help ---------------------------------------------------------------------------------------

def test_help_lists_every_target_and_variable(make):
    out = ok(make("help")[0])
    for target in TARGETS + ["help"]:
        assert f"  {target} " in out, target
    for var in ("PUSHGATEWAY_NAMESPACE", "PUSHGATEWAY_RELEASE", "PUSHGATEWAY_URL", "PUSHGATEWAY_ROUTE_PREFIX",
                "POD", "CONFIRM", "JOB", "LABELS", "MATCH", "KUBECTL"):
        assert f"  {var} " in out, var
    assert ok(make()[0]) == out, "help is the default goal"


# ---- HTTP targets through PUSHGATEWAY_URL -------------------------------------------------------

def test_health_reports_both_endpoints(gateway, make):
    out = ok(make("pushgateway-health", f"PUSHGATEWAY_URL={gateway.url}")[0])
    assert f"healthy: ok ({gateway.url} /-/healthy)" in out
    assert f"ready:   ok ({gateway.url} /-/ready)" in out


def test_health_fails_when_the_gateway_is_down(make):
    # A port bound but not listening: connections to it are refused for as long as it is held.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        proc, _ = make("pushgateway-health", f"PUSHGATEWAY_URL=http://127.0.0.1:{port}")
    assert proc.returncode != 0
    assert "healthy: FAILED" in proc.stdout and "ready:   FAILED" in proc.stdout


def test_metrics_prints_pushed_groups(gateway, make):
    gateway.push("job/ops_metrics/instance/a", "ops_metrics_probe 42\n")
    out = ok(make("pushgateway-metrics", f"PUSHGATEWAY_URL={gateway.url}/")[0])
    assert 'ops_metrics_probe{instance="a",job="ops_metrics"} 42' in out
    assert "push_time_seconds" in out


def test_delete_group_removes_only_that_group(gateway, make):
    gateway.push("job/ops_delete/instance/x", "ops_delete_probe 1\n")
    gateway.push("job/ops_delete/instance/y", "ops_delete_probe 2\n")
    out = ok(make("pushgateway-delete-group", "JOB=ops_delete", "LABELS=instance/x",
                  f"PUSHGATEWAY_URL={gateway.url}")[0])
    assert "deleted group /job/ops_delete/instance/x" in out
    scraped = gateway.scrape()
    assert 'ops_delete_probe{instance="x",job="ops_delete"}' not in scraped
    assert 'ops_delete_probe{instance="y",job="ops_delete"} 2' in scraped


def test_delete_group_encodes_slashes_and_spaces(gateway, make):
    b64 = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
    gateway.push(f"job@base64/{b64('nightly/backup')}/instance@base64/{b64('db 1')}/zone/eu",
                 "ops_encoded_probe 7\n")
    assert 'ops_encoded_probe{instance="db 1",job="nightly/backup",zone="eu"} 7' in gateway.scrape()
    ok(make("pushgateway-delete-group", "JOB=nightly/backup", "LABELS=instance/db 1/zone/eu",
            f"PUSHGATEWAY_URL={gateway.url}")[0])
    assert "ops_encoded_probe" not in gateway.scrape()


def test_delete_group_of_the_job_alone(gateway, make):
    gateway.push("job/ops_jobonly", "ops_jobonly_probe 3\n")
    ok(make("pushgateway-delete-group", "JOB=ops_jobonly", f"PUSHGATEWAY_URL={gateway.url}")[0])
    assert "ops_jobonly_probe" not in gateway.scrape()


def test_delete_group_needs_a_job(gateway, make):
    proc, calls = make("pushgateway-delete-group", f"PUSHGATEWAY_URL={gateway.url}")
    failed(proc, "JOB is required")
    assert not calls


def test_delete_group_needs_label_pairs(gateway, make):
    failed(make("pushgateway-delete-group", "JOB=x", "LABELS=instance",
                f"PUSHGATEWAY_URL={gateway.url}")[0], "LABELS must be name/value pairs")


def test_url_targets_never_call_kubectl(gateway, make):
    for target in ("pushgateway-metrics", "pushgateway-health"):
        proc, calls = make(target, f"PUSHGATEWAY_URL={gateway.url}", "KUBECTL=kubectl-that-does-not-exist")
        ok(proc)
        assert not calls


# ---- through a (stub) port-forward --------------------------------------------------------------

def test_metrics_through_a_port_forward(gateway, make):
    """Without PUSHGATEWAY_URL the target forwards each pod on a port kubectl picks, scrapes,
    and stops the forwards."""
    gateway.push("job/ops_forward", "ops_forward_probe 5\n")
    proc, calls = make("pushgateway-metrics", *CLUSTER, env={"STUB_PODS": f"pg-pushgateway-0={gateway.port}"})
    assert "ops_forward_probe" in ok(proc)
    assert calls[0] == f"--namespace {NS} get pod -l {SELECTOR} -o name"
    assert calls[1] == f"--namespace {NS} port-forward pod/pg-pushgateway-0 :http"
    assert_forwards_stopped(make)


def assert_forwards_stopped(make):
    pids = [int(p) for p in (make.log.parent / "kubectl.log.port-forward.pid").read_text().split()]
    assert pids
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in pids):
        assert time.monotonic() < deadline, "a port-forward was left running"
        time.sleep(0.05)


def running(pid):
    """Whether pid is a live process (a zombie waiting to be reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_port_forward_target(make):
    """The target runs until Ctrl-C: start it, read the recorded calls, then stop it."""
    env = dict(os.environ, STUB_LOG=str(make.log), PATH=f"{STUB_DIR}{os.pathsep}{os.environ['PATH']}")
    env.pop("MAKEFLAGS", None)
    p = subprocess.Popen(["make", "-s", "-f", str(MAKEFILE), "pushgateway-port-forward", *CLUSTER,
                          "PUSHGATEWAY_LOCAL_PORT=19191"], env=env, stdout=subprocess.PIPE, text=True)
    pid_file = make.log.parent / "kubectl.log.port-forward.pid"
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert make.log.read_text().splitlines() == [
            f"--namespace {NS} get service -l {SELECTOR} -o name",
            f"--namespace {NS} port-forward service/pg-pushgateway 19191:http"]
    finally:
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
            except ProcessLookupError:
                pass
        out, _ = p.communicate(timeout=10)
    assert "forwarding http://127.0.0.1:19191/ to service/pg-pushgateway" in out


# ---- kubectl targets ----------------------------------------------------------------------------

def test_logs(make):
    proc, calls = make("pushgateway-logs", *CLUSTER, "TAIL=50")
    assert "stub log line" in ok(proc)
    assert calls == [f"--namespace {NS} get pod -l {SELECTOR} -o name",
                     f"--namespace {NS} logs -l {SELECTOR} --container pushgateway --prefix --tail=50 "
                     "--max-log-requests=20"]


def test_logs_follow(make):
    _, calls = make("pushgateway-logs", *CLUSTER, "FOLLOW=1")
    assert calls[-1].endswith("--tail=200 --max-log-requests=20 --follow")


def test_restart_rolls_the_workload_and_waits(make):
    proc, calls = make("pushgateway-restart", *CLUSTER, "TIMEOUT=2m")
    ok(proc)
    assert calls == [f"--namespace {NS} get deployment,statefulset -l {SELECTOR} -o name",
                     f"--namespace {NS} rollout restart statefulset.apps/pg-pushgateway",
                     f"--namespace {NS} rollout status statefulset.apps/pg-pushgateway --timeout=2m"]


def test_defaults_are_monitoring_and_pushgateway(make):
    _, calls = make("pushgateway-restart")
    assert calls[0] == ("--namespace monitoring get deployment,statefulset -l "
                        "app.kubernetes.io/name=pushgateway,app.kubernetes.io/instance=pushgateway -o name")


@pytest.mark.parametrize("target", ["pushgateway-port-forward", "pushgateway-metrics", "pushgateway-delete-group",
                                    "pushgateway-health", "pushgateway-logs", "pushgateway-restart"])
def test_missing_release_is_a_clear_error(make, target):
    proc, calls = make(target, *CLUSTER, "JOB=x", env={"STUB_EMPTY": "1"})
    failed(proc, f"release '{REL}' not found in namespace '{NS}'")
    assert not any("port-forward" in c or "rollout" in c or " logs " in f" {c} " for c in calls)


@pytest.mark.parametrize("target", ["pushgateway-port-forward", "pushgateway-metrics", "pushgateway-delete-group",
                                    "pushgateway-health", "pushgateway-logs", "pushgateway-restart"])
def test_missing_kubectl_is_a_clear_error(make, target):
    proc, calls = make(target, *CLUSTER, "JOB=x", "KUBECTL=kubectl-that-does-not-exist")
    failed(proc, "'kubectl-that-does-not-exist' not found on PATH")
    assert not calls


def test_unreachable_cluster_is_reported(make):
    proc, _ = make("pushgateway-restart", *CLUSTER, env={"STUB_FAIL": "1"})
    failed(proc, "kubectl could not list deployment,statefulset")
    assert "connection to the server" in proc.stderr


# ---- several pods, route prefix, basic auth, TLS ------------------------------------------------

def pods_env(*gateways):
    return {"STUB_PODS": ",".join(f"pg-pushgateway-{i}={gw.port}" for i, gw in enumerate(gateways))}


class FakeServer:
    """Something else on a local port: answers 200 "OK" to every request and records them
    (what a wrong port-forward or another program on the port would look like)."""

    def __init__(self, status=200, body=b"OK"):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                outer.requests.append((self.command, self.path))
                self.send_response(status if not callable(status) else status(self.path))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_server():
    servers = []

    def start(**kwargs):
        servers.append(FakeServer(**kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_health_reports_every_pod(start_gateway, fake_server, make):
    gw = start_gateway()
    not_ready = fake_server(status=lambda path: 503 if path.endswith("/-/ready") else 200,
                            body=b"not ready: catching up with the change stream in Redis")
    proc, calls = make("pushgateway-health", *CLUSTER, env=pods_env(gw, not_ready))
    assert proc.returncode != 0, "one pod is not ready"
    lines = proc.stdout.splitlines()
    assert "healthy: ok (pod/pg-pushgateway-0 /-/healthy)" in lines
    assert "ready:   ok (pod/pg-pushgateway-0 /-/ready)" in lines
    assert "healthy: ok (pod/pg-pushgateway-1 /-/healthy)" in lines
    assert any(line.startswith("ready:   FAILED (pod/pg-pushgateway-1 /-/ready): not ready: catching up")
               for line in lines), lines
    assert [c for c in calls if "port-forward" in c] == [
        f"--namespace {NS} port-forward pod/pg-pushgateway-0 :http",
        f"--namespace {NS} port-forward pod/pg-pushgateway-1 :http"]
    assert_forwards_stopped(make)
    # POD= narrows to one pod.
    before = len(calls)
    proc, calls = make("pushgateway-health", *CLUSTER, "POD=pg-pushgateway-0", env=pods_env(gw, not_ready))
    assert "pod/pg-pushgateway-0" in ok(proc) and "pg-pushgateway-1" not in proc.stdout
    assert calls[before:] == [f"--namespace {NS} port-forward pod/pg-pushgateway-0 :http"]


def test_metrics_come_from_the_pod_serving_the_pushed_series(start_gateway, make):
    """In leader mode only one replica exposes the pushed series; the target finds it."""
    follower, leader = start_gateway(), start_gateway()
    leader.push("job/ops_leader", "ops_leader_probe 9\n")
    proc, _ = make("pushgateway-metrics", *CLUSTER, env=pods_env(follower, leader))
    assert 'ops_leader_probe{instance="",job="ops_leader"} 9' in ok(proc)
    assert "metrics of pod/pg-pushgateway-1 (of 2 pods" in proc.stderr


def test_status_of_every_pod(start_gateway, make):
    a, b = start_gateway(), start_gateway(extra=["--web.enable-admin-api"])
    out = ok(make("pushgateway-status", *CLUSTER, env=pods_env(a, b))[0])
    first, second = out.split("# pod/pg-pushgateway-1\n")
    assert first.startswith("# pod/pg-pushgateway-0\n")
    for part, admin in ((first, "false"), (second, "true")):
        data = json.loads(part.split("\n", 1)[1] if part.startswith("#") else part)["data"]
        assert data["build_information"]["version"] and data["flags"]["web.enable-admin-api"] == admin


def test_reload_of_every_pod(start_gateway, make, tmp_path):
    """configFile.rollOnChange=false: after the kubelet updated the file, every pod re-reads it;
    a pod without the lifecycle API, or with a file it cannot read, is named with the reason."""
    config = tmp_path / "pushgateway.toml"
    config.write_text('[[quota]]\nname = "ops"\nlabels = { job = "ops" }\nmax_groups = 1\n')
    flags = [f"--config.file={config}", "--web.enable-lifecycle"]
    a, b = start_gateway(extra=flags), start_gateway(extra=flags)
    config.write_text('[[quota]]\nname = "ops"\nlabels = { job = "ops" }\nmax_groups = 7\n')
    out = ok(make("pushgateway-reload", *CLUSTER, env=pods_env(a, b))[0])
    assert out.splitlines() == ["reloaded (pod/pg-pushgateway-0)", "reloaded (pod/pg-pushgateway-1)"], out
    for gw in (a, b):
        scraped = urllib.request.urlopen(gw.url + "/metrics", timeout=5).read().decode()
        assert 'pushgateway_quota_max_groups{quota="ops"} 7' in scraped
    off = start_gateway(extra=[f"--config.file={config}"])
    failed(make("pushgateway-reload", *CLUSTER, env=pods_env(a, off))[0],
           "FAILED (pod/pg-pushgateway-1): the lifecycle API is off: set gateway.enableLifecycle=true")
    config.write_text("[[quota]]\nbogus = 1\n")
    proc = make("pushgateway-reload", *CLUSTER, "POD=pg-pushgateway-0", env=pods_env(a))[0]
    failed(proc, "FAILED (pod/pg-pushgateway-0): HTTP 500")
    assert "line 2" in proc.stderr, proc.stderr


def test_route_prefix(start_gateway, make):
    gw = start_gateway(prefix="/pgw")
    gw.push("job/ops_prefix/instance/a", "ops_prefix_probe 1\n")
    prefix = "PUSHGATEWAY_ROUTE_PREFIX=/pgw/"
    out = ok(make("pushgateway-health", *CLUSTER, prefix, env=pods_env(gw))[0])
    assert "ready:   ok (pod/pg-pushgateway-0 /pgw/-/ready)" in out
    assert "ops_prefix_probe" in ok(make("pushgateway-metrics", f"PUSHGATEWAY_URL={gw.url}", prefix)[0])
    ok(make("pushgateway-delete-group", *CLUSTER, prefix, "JOB=ops_prefix", "LABELS=instance/a",
            env=pods_env(gw))[0])
    assert "ops_prefix_probe" not in gw.scrape()
    # Without the prefix nothing answers as a gateway: refused before any DELETE.
    gw.push("job/ops_prefix/instance/a", "ops_prefix_probe 1\n")
    failed(make("pushgateway-delete-group", f"PUSHGATEWAY_URL={gw.url}", "JOB=ops_prefix", "LABELS=instance/a")[0],
           "did not answer as a pushgateway")
    assert "ops_prefix_probe" in gw.scrape()


def test_delete_group_refuses_a_listener_that_is_not_a_gateway(fake_server, make):
    other = fake_server()
    failed(make("pushgateway-delete-group", "JOB=x", f"PUSHGATEWAY_URL={other.url}")[0],
           "did not answer as a pushgateway")
    assert not [r for r in other.requests if r[0] == "DELETE"]
    # A failing port-forward while something else listens on the local port asked for.
    proc, _ = make("pushgateway-delete-group", *CLUSTER, "JOB=x", f"PUSHGATEWAY_LOCAL_PORT={other.port}",
                   env={"STUB_FORWARD_FAIL": "1"})
    failed(proc, "port-forward to service/pg-pushgateway did not come up")
    assert "unable to forward port" in proc.stderr
    assert not [r for r in other.requests if r[0] == "DELETE"]


def test_wipe_needs_the_release_name_and_the_admin_api(start_gateway, make):
    gw = start_gateway(extra=["--web.enable-admin-api"])
    gw.push("job/ops_wipe", "ops_wipe_probe 1\n")
    for confirm in ([], ["CONFIRM=yes"]):
        proc, calls = make("pushgateway-wipe", *CLUSTER, *confirm, env=pods_env(gw))
        failed(proc, f"confirm with CONFIRM={REL}")
        assert not calls
    assert "ops_wipe_probe" in gw.scrape()
    proc, calls = make("pushgateway-wipe", *CLUSTER, f"CONFIRM={REL}", env=pods_env(gw))
    assert f"wiped every group of release '{REL}'" in ok(proc)
    assert f"--namespace {NS} port-forward service/pg-pushgateway :http" in calls
    assert "ops_wipe_probe" not in gw.scrape()
    off = start_gateway()
    failed(make("pushgateway-wipe", f"CONFIRM={REL}", f"PUSHGATEWAY_RELEASE={REL}",
                f"PUSHGATEWAY_URL={off.url}")[0], "gateway.enableAdminApi=true")


def test_delete_groups_shows_the_dry_run_then_deletes_with_the_release_name(start_gateway, make):
    gw = start_gateway(extra=["--web.enable-admin-api"])
    for path in ("job/ops_batch/instance/w1", "job/ops_batch/instance/w2", "job/ops_keep/instance/w1"):
        gw.push(path, "ops_groups_probe 1\n")
    url = f"PUSHGATEWAY_URL={gw.url}"
    match = """MATCH={job="ops_batch",instance=~'w.*'}"""
    dry = make("pushgateway-delete-groups", url, match, f"PUSHGATEWAY_RELEASE={REL}")[0]
    out = ok(dry)
    assert out.count('"job":"ops_batch"') == 2, out
    assert "dry run: 2 group(s) match" in dry.stderr and f"CONFIRM={REL}" in dry.stderr, dry.stderr
    assert gw.scrape().count('job="ops_batch"') >= 2, "a dry run deletes nothing"
    out = ok(make("pushgateway-delete-groups", url, match, f"PUSHGATEWAY_RELEASE={REL}", f"CONFIRM={REL}")[0])
    assert "deleted 2 group(s)" in out, out
    scrape = gw.scrape()
    assert 'job="ops_batch"' not in scrape and 'job="ops_keep"' in scrape, scrape
    # Refusals: no MATCH, a selector matching everything (wipe's job), the admin API off.
    failed(make("pushgateway-delete-groups", url)[0], "MATCH is required")
    failed(make("pushgateway-delete-groups", url, "MATCH={}", f"CONFIRM={REL}",
                f"PUSHGATEWAY_RELEASE={REL}")[0], "wipe")
    assert 'job="ops_keep"' in gw.scrape()
    off = start_gateway()
    failed(make("pushgateway-delete-groups", f"PUSHGATEWAY_URL={off.url}", match)[0],
           "gateway.enableAdminApi=true")


# bcrypt hash of "scrape-secret" (as in charts/pushgateway/ci/basic-auth-values.yaml).
SCRAPE_HASH = "$2b$10$vWGEIlGdbiIeeCbwJqhfsOs1saDXbiNGSGqAgrLLEVDd5EZJfWWjC"


def test_basic_auth(start_gateway, make, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  prometheus: '{SCRAPE_HASH}'\n")
    gw = start_gateway(extra=[f"--web.config.file={config}", "--web.unauthenticated-probes"])
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login prometheus password scrape-secret\n")
    auth = f"PUSHGATEWAY_CURL_OPTS=--netrc-file {netrc}"
    out = ok(make("pushgateway-status", *CLUSTER, auth, env=pods_env(gw))[0])
    assert '"build_information"' in out
    ok(make("pushgateway-metrics", *CLUSTER, auth, env=pods_env(gw))[0])
    ok(make("pushgateway-health", *CLUSTER, auth, env=pods_env(gw))[0])
    # As NOTES.txt prints it: a netrc file in the home directory.
    (tmp_path / ".pushgateway-netrc").write_text(netrc.read_text())
    out = ok(make("pushgateway-status", *CLUSTER, "PUSHGATEWAY_CURL_OPTS=--netrc-file ~/.pushgateway-netrc",
                  env={**pods_env(gw), "HOME": str(tmp_path)})[0])
    assert '"build_information"' in out
    # Without credentials the destructive targets stop at the identity check.
    failed(make("pushgateway-delete-group", *CLUSTER, "JOB=x", env=pods_env(gw))[0],
           "PUSHGATEWAY_CURL_OPTS")


def test_tls(start_gateway, make, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt"), "-subj",
                    "/CN=pg-pushgateway.ops-test.svc"], check=True, capture_output=True)
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n")
    gw = start_gateway(extra=[f"--web.config.file={config}"], scheme="https")
    tls = ["PUSHGATEWAY_SCHEME=https", "PUSHGATEWAY_CURL_OPTS=-k"]
    out = ok(make("pushgateway-health", *CLUSTER, *tls, env=pods_env(gw))[0])
    assert "ready:   ok (pod/pg-pushgateway-0 /-/ready)" in out
    assert '"build_information"' in ok(make("pushgateway-status", *CLUSTER, *tls, env=pods_env(gw))[0])
    # Plain http to the TLS port is not a gateway answer.
    failed(make("pushgateway-delete-group", *CLUSTER, "JOB=x", "PUSHGATEWAY_CURL_OPTS=-k", env=pods_env(gw))[0],
           "did not answer as a pushgateway")
