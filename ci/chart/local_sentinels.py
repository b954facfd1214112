"""The bundled Redis with Sentinels (redis.sentinel.enabled) as the chart renders it, run on
this machine: for every pod of the StatefulSet, its `redis` and `sentinel` containers' commands
(the start script of the ConfigMap) with their rendered environment, as real redis-server and
redis-sentinel processes on loopback.

Only what cannot run here is changed: each pod's host name and ports in the ConfigMap's node
list (all pods share 127.0.0.1, so each process gets its own candidate port; redis-server cannot
listen on port 0, see ci/lib/procnet.py), the `bind` lines (loopback instead of every
interface), and the volume mount paths (each pod gets its own directories, kept across a
restart of its containers as a pod's volumes are). Every other setting is the rendered one.

The script runs in BusyBox's shell with BusyBox's tools (sh, od, timeout, sed, ...) first on
the PATH, as in the Alpine Redis image; redis-server and redis-cli are Debian's.

Environment:
  BUSYBOX  the busybox binary (Debian busybox, installed by ci/suites/60-chart.sh).
"""

import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import procnet  # noqa: E402
from local_processes import wait_until  # noqa: E402
from pod_env import container_env  # noqa: E402

REDIS_CLI = shutil.which("redis-cli")
BUSYBOX = os.environ.get("BUSYBOX") or shutil.which("busybox")
# Whole starts (all processes on new candidate ports) before giving up.
START_ATTEMPTS = 3


def redis_statefulset(docs):
    found = [d for d in docs if d["kind"] == "StatefulSet"
             and d["metadata"]["labels"].get("app.kubernetes.io/component") == "redis"]
    assert len(found) == 1, f"expected one bundled Redis StatefulSet, found {len(found)}"
    return found[0]


def _replace_mounts(text, mounts):
    """Each mount path (a whole path component) replaced by its local directory."""
    for path in sorted(mounts, key=len, reverse=True):
        text = re.sub(rf"(?<![\w/.-]){re.escape(path)}(?=/|\s|$|\")", str(mounts[path]), text, flags=re.M)
    return text


def _busybox_bin(directory):
    """A folder with every BusyBox applet (sh, od, timeout, ...) linked to busybox."""
    assert BUSYBOX and os.path.exists(BUSYBOX), "busybox not found (ci/suites/60-chart.sh installs it)"
    directory.mkdir(parents=True)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    assert "sh" in applets and "od" in applets and "timeout" in applets, applets
    for applet in applets:
        (directory / applet).symlink_to(BUSYBOX)
    return directory


class Process:
    """One container of one pod: its rendered command, started and restarted on one port."""

    def __init__(self, ha, pod, container):
        self.ha, self.pod, self.name = ha, pod, container["name"]
        self.env = {**os.environ, **container_env(ha.docs, container, pod_name=pod.name)}
        self.env["PATH"] = f"{ha.busybox_bin}{os.pathsep}{os.environ['PATH']}"
        self.mounts = {m["mountPath"].rstrip("/"): pod.dir / m["name"] for m in container["volumeMounts"]}
        self.command = [_replace_mounts(a, self.mounts) for a in container["command"]]
        assert self.command[0] == "/bin/sh", self.command
        self.command[0] = str(ha.busybox_bin / "sh")
        self.log_path = pod.dir / f"{self.name}.log"
        self.proc = None
        self.port = None

    def _spawn(self, port):
        assert port == self.port
        log = open(self.log_path, "ab")
        try:
            return subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        finally:
            log.close()

    @staticmethod
    def _kill(proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def start(self):
        """The first start on this process' port; (proc, None) or (None, why not)."""
        proc, reason = procnet.start_on_port(self._spawn, self._kill, self.port)
        self.proc = proc
        return reason

    def restart(self):
        """A container restart: same port (the others know it), same volumes."""
        self.proc = procnet.restart_on_port(self._spawn, self._kill, self.port, what=f"{self.pod.name}/{self.name}")

    def kill(self):
        if self.proc:
            self._kill(self.proc)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Pod:
    def __init__(self, ha, index, spec, directory):
        self.name = f"{ha.sts['metadata']['name']}-{index}"
        self.dir = directory / self.name
        self.dir.mkdir(parents=True)
        self.containers = {c["name"]: Process(ha, self, c) for c in spec["containers"]}
        assert set(self.containers) == {"redis", "sentinel"}, set(self.containers)
        self.redis, self.sentinel = self.containers["redis"], self.containers["sentinel"]


class RedisHA:
    """The rendered Redis pods and Sentinels on loopback, started, replicating and watched."""

    def __init__(self, docs, directory):
        self.docs = docs
        self.busybox_bin = _busybox_bin(directory / "busybox-bin")
        self.sts = redis_statefulset(docs)
        spec = self.sts["spec"]["template"]["spec"]
        config_volume = next(v for v in spec["volumes"] if v["name"] == "config")
        self.config = next(d for d in docs if d["kind"] == "ConfigMap"
                           and d["metadata"]["name"] == config_volume["configMap"]["name"])["data"]
        self.master = re.search(r"^MASTER_NAME='([^']+)'$", self.config["ha.env"], re.M).group(1)
        # name -> (host, redis port, sentinel port) as rendered
        self.rendered_nodes = {}
        for line in self.config["nodes"].splitlines():
            name, host, port, sentinel_port = line.split()
            self.rendered_nodes[name] = (host, int(port), int(sentinel_port))
        self.pods = [Pod(self, i, spec, directory) for i in range(self.sts["spec"]["replicas"])]
        assert [p.name for p in self.pods] == list(self.rendered_nodes), "one node line per pod, in order"
        redis_env = self.pods[0].redis.env
        self.password, self.sentinel_password = redis_env["REDIS_PASSWORD"], redis_env["SENTINEL_PASSWORD"]
        self._start()

    # ---- start -----------------------------------------------------------------------------

    def _write_config(self):
        """Each pod's copy of the ConfigMap: its mount paths, loopback, the ports picked."""
        nodes = "".join(f"{p.name} 127.0.0.1 {p.redis.port} {p.sentinel.port}\n" for p in self.pods)
        for pod in self.pods:
            for process in pod.containers.values():
                for local in process.mounts.values():
                    local.mkdir(exist_ok=True)
            config_dir = pod.dir / "config"
            for key, text in self.config.items():
                if key == "nodes":
                    text = nodes
                elif key in ("redis.conf", "sentinel.conf"):
                    assert re.search(r"^bind \* -::\*$", text, re.M), f"{key}: expected to bind every interface"
                    text = re.sub(r"^bind .*$", "bind 127.0.0.1", text, flags=re.M)
                text = _replace_mounts(text, pod.redis.mounts | pod.sentinel.mounts)
                (config_dir / key).write_text(text)

    def _start(self):
        reason = None
        for _ in range(START_ATTEMPTS):
            ports = set()
            while len(ports) < 2 * len(self.pods):
                ports.add(procnet.candidate_port())
            ports = sorted(ports)
            for pod in self.pods:
                pod.redis.port, pod.sentinel.port = ports.pop(), ports.pop()
            self._write_config()
            # Redis nodes first (pod 0 becomes the primary, the others find it by ROLE), then the Sentinels.
            order = [p.redis for p in self.pods] + [p.sentinel for p in self.pods]
            reason = None
            for process in order:
                reason = process.start()
                if reason:
                    reason = f"{process.pod.name}/{process.name}: {reason}\n{process.log()}"
                    break
            if not reason:
                break
            self.close()
        else:
            raise AssertionError(f"the rendered Redis pods did not start: {reason}")
        wait_until(lambda: all(self.cli(p, "PING") == "PONG" for p in self.pods), procnet.START_TIMEOUT,
                   "every Redis node answers")
        wait_until(lambda: self.cli(self.pods[0], "INFO", "replication").count("state=online") == len(self.pods) - 1,
                   procnet.START_TIMEOUT, "the replicas are in sync with pod 0")
        others = len(self.pods) - 1
        wait_until(lambda: all(self.sentinel_cli(p, "SENTINEL", "replicas", self.master).count("slave") >= others
                               and f"num-other-sentinels\n{others}" in self.sentinel_cli(p, "SENTINEL", "master", self.master)
                               for p in self.pods),
                   procnet.START_TIMEOUT, "every Sentinel knows the replicas and the other Sentinels")

    # ---- queries ---------------------------------------------------------------------------

    def cli(self, pod, *args):
        return self._cli(self.password, pod.redis.port, *args)

    def sentinel_cli(self, pod, *args):
        return self._cli(self.sentinel_password, pod.sentinel.port, *args)

    @staticmethod
    def _cli(password, port, *args):
        """redis-cli on a local port; without a password when `password` is None."""
        env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
        if password is not None:
            env["REDISCLI_AUTH"] = password
        try:
            result = subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True, text=True,
                                    timeout=10, env=env)
        except subprocess.TimeoutExpired:
            return ""
        return result.stdout.strip()

    def role(self, pod):
        return self.cli(pod, "ROLE").split("\n", 1)[0] if pod.redis.running() else None

    def primary(self):
        """The pod whose running Redis says it is the primary (None during a failover; an
        AssertionError if two do)."""
        primaries = [p for p in self.pods if self.role(p) == "master"]
        assert len(primaries) <= 1, f"two primaries: {[p.name for p in primaries]}"
        return primaries[0] if primaries else None

    def sentinels_name(self):
        """The pod each running Sentinel names as the primary."""
        by_port = {p.redis.port: p for p in self.pods}
        named = []
        for pod in self.pods:
            if pod.sentinel.running():
                reply = self.sentinel_cli(pod, "SENTINEL", "get-master-addr-by-name", self.master).split()
                named.append(by_port.get(int(reply[1])) if len(reply) == 2 else None)
        return named

    def sentinel_addresses(self, rendered):
        """The local addresses for a rendered --storage.redis.sentinels value: each rendered
        Sentinel address becomes its pod's loopback port (an address of no rendered pod is
        mapped to the pods in order: external Sentinels)."""
        items = rendered.split(",")
        local = {f"{host}:{sentinel_port}": pod.sentinel.port
                 for pod, (host, _, sentinel_port) in zip(self.pods, self.rendered_nodes.values())}
        if all(item in local for item in items):
            return ",".join(f"127.0.0.1:{local[item]}" for item in items)
        assert len(items) <= len(self.pods), items
        return ",".join(f"127.0.0.1:{pod.sentinel.port}" for pod in self.pods[:len(items)])

    def processes(self):
        return [c for p in self.pods for c in p.containers.values()]

    def close(self):
        for process in self.processes():
            process.kill()

    stop = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
