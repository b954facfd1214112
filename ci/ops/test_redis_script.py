"""The bundled one-pod Redis as the chart renders it: its start script and probe, run on a real
redis-server (Debian's redis-tools) with the pod's paths moved into a temporary folder. (The
Redis pods with Sentinels, small-prod's, run in ci/chart/test_redis_ha_run.py.)"""

import os
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from conftest import REPO, procnet

CHART = REPO / "charts" / "pushgateway"
HELM = os.environ.get("HELM", "helm")
PASSWORD = "s3cret-from-the-secret"


def redis_container(values):
    out = subprocess.run([HELM, "template", "pg", str(CHART), "--namespace", "monitoring", "--values", str(values)],
                         capture_output=True, text=True, check=True).stdout
    for d in yaml.safe_load_all(out):
        if d and d["kind"] == "StatefulSet" and d["metadata"]["name"] == "pg-pushgateway-redis":
            return d["spec"]["template"]["spec"]["containers"][0]
    raise AssertionError("no bundled Redis rendered")


@pytest.fixture
def redis_bin(tmp_path):
    """A folder with redis-server (Debian ships it as redis-check-rdb, which acts by its name)."""
    check = shutil.which("redis-check-rdb")
    assert check, "redis-tools is installed by ci/suites/61-ops.sh"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "redis-server").symlink_to(check)
    return bin_dir


class Redis:
    def __init__(self, container, tmp_path, bin_dir):
        assert container["command"][:2] == ["/bin/sh", "-c"]
        self.port = None
        self.run_dir = tmp_path / "run"
        self.data_dir = tmp_path / "data"
        self.run_dir.mkdir(exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        script = container["command"][2]
        for pod_path, local in (("/run/redis", self.run_dir), ("--dir /data", f"--dir {self.data_dir}"),
                                ("--port 6379", "--port {port}")):
            assert pod_path in script, pod_path
            script = script.replace(pod_path, str(local))
        self.script = script
        self.env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        env_names = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]}
        assert set(env_names) == {"REDIS_PASSWORD", "REDISCLI_AUTH"}
        self.env["REDIS_PASSWORD"] = PASSWORD
        self.probe = container["readinessProbe"]["exec"]["command"]

    def _spawn(self, port):
        return subprocess.Popen(["/bin/sh", "-c", self.script.replace("--port {port}", f"--port {port}")],
                                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def _kill(proc):
        proc.kill()
        proc.wait(30)

    def start(self):
        """Starts the script on a candidate port (redis-server cannot listen on port 0), kept once
        the listener there is its own; a restart takes the same port again."""
        if self.port is None:
            self.proc, self.port = procnet.start_on_candidate_port(self._spawn, self._kill, what="redis-server")
        else:
            self.proc = procnet.restart_on_port(self._spawn, self._kill, self.port, what="redis-server")
        deadline = time.monotonic() + procnet.START_TIMEOUT
        while self.cli("ping", auth=True).stdout.strip() != "PONG":
            assert self.proc.poll() is None, f"redis-server stopped: {self.proc.stderr.read()}"
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)

    def cli(self, *args, auth):
        env = dict(os.environ)
        env.pop("REDISCLI_AUTH", None)
        if auth:
            env["REDISCLI_AUTH"] = PASSWORD
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, env=env)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


@pytest.fixture
def persistent_redis(tmp_path, redis_bin):
    """The one-pod Redis with its volume (a scenario; small-prod runs it with Sentinels)."""
    redis = Redis(redis_container(CHART / "ci" / "redis-existing-secret-values.yaml"), tmp_path, redis_bin)
    redis.start()
    yield redis
    redis.stop()


def test_password_is_required_and_kept_off_the_command_line(persistent_redis):
    r = persistent_redis
    assert "NOAUTH" in r.cli("set", "k", "v", auth=False).stdout + r.cli("set", "k", "v", auth=False).stderr
    assert r.cli("set", "k", "v", auth=True).stdout.strip() == "OK"
    # The server runs as the script's exec: its command line names the config file, not the password.
    cmdline = open(f"/proc/{r.proc.pid}/cmdline", "rb").read().decode()
    assert "redis-server" in cmdline and PASSWORD not in cmdline
    conf = r.run_dir / "redis.conf"
    assert PASSWORD in conf.read_text()
    assert conf.stat().st_mode & 0o077 == 0, "the config with the password is readable by its owner only"


def test_probe_command_answers_with_the_secret_in_the_environment(persistent_redis):
    r = persistent_redis
    assert r.probe[0] == "redis-cli"
    cmd = [r.probe[0], "-p", str(r.port), *r.probe[1:]]
    env = dict(os.environ, REDISCLI_AUTH=PASSWORD)
    assert subprocess.run(cmd, capture_output=True, text=True, env=env).stdout.strip() == "PONG"


def test_append_only_file_survives_a_restart(persistent_redis):
    r = persistent_redis
    assert r.cli("config", "get", "appendonly", auth=True).stdout.split() == ["appendonly", "yes"]
    assert r.cli("config", "get", "maxmemory-policy", auth=True).stdout.split() == ["maxmemory-policy", "noeviction"]
    assert r.cli("xadd", "pushgateway-test", "*", "op", "put", auth=True).returncode == 0
    r.stop()
    assert any((r.data_dir / "appendonlydir").iterdir())
    r.start()
    assert r.cli("xlen", "pushgateway-test", auth=True).stdout.strip() == "1"


def test_without_a_volume_redis_keeps_no_file(tmp_path, redis_bin):
    r = Redis(redis_container(CHART / "ci" / "redis-bundled-values.yaml"), tmp_path, redis_bin)
    r.start()
    try:
        assert r.cli("config", "get", "appendonly", auth=True).stdout.split() == ["appendonly", "no"]
        assert r.cli("config", "get", "maxmemory", auth=True).stdout.split() == ["maxmemory", "0"]
    finally:
        r.stop()
