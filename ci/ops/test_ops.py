"""make/ops/pushgateway.mk: the HTTP targets against a local gateway through PUSHGATEWAY_URL,
the kubectl targets against a stub kubectl that records its arguments."""

import base64
import os
import socket
import signal
import subprocess
import time

import pytest

from conftest import MAKEFILE, STUB_DIR

NS = "ops-test"
REL = "pg"
SELECTOR = f"app.kubernetes.io/name=pushgateway,app.kubernetes.io/instance={REL}"
CLUSTER = [f"PUSHGATEWAY_NAMESPACE={NS}", f"PUSHGATEWAY_RELEASE={REL}"]
TARGETS = ["pushgateway-port-forward", "pushgateway-metrics", "pushgateway-delete-group",
           "pushgateway-health", "pushgateway-logs", "pushgateway-restart"]


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
    for var in ("PUSHGATEWAY_NAMESPACE", "PUSHGATEWAY_RELEASE", "PUSHGATEWAY_URL", "JOB", "LABELS", "KUBECTL"):
        assert f"  {var} " in out, var
    assert ok(make()[0]) == out, "help is the default goal"


# ---- HTTP targets through PUSHGATEWAY_URL -------------------------------------------------------

def test_health_reports_both_endpoints(gateway, make):
    out = ok(make("pushgateway-health", f"PUSHGATEWAY_URL={gateway.url}")[0])
    assert f"healthy: ok ({gateway.url}/-/healthy)" in out
    assert f"ready:   ok ({gateway.url}/-/ready)" in out


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
    """Without PUSHGATEWAY_URL the target forwards the release's Service, scrapes, and stops the forward."""
    gateway.push("job/ops_forward", "ops_forward_probe 5\n")
    proc, calls = make("pushgateway-metrics", *CLUSTER, f"PUSHGATEWAY_LOCAL_PORT={gateway.port}")
    assert "ops_forward_probe" in ok(proc)
    assert calls[0] == f"--namespace {NS} get service -l {SELECTOR} -o name"
    assert calls[1] == f"--namespace {NS} port-forward service/pg-pushgateway {gateway.port}:http"
    pid = int((make.log.parent / "kubectl.log.port-forward.pid").read_text())
    deadline = time.monotonic() + 30
    while running(pid):
        if time.monotonic() > deadline:
            pytest.fail("the port-forward was left running")
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
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
        out, _ = p.communicate(timeout=10)
    assert "forwarding http://127.0.0.1:19191 to service/pg-pushgateway" in out


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
