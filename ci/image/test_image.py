"""The built image, run with podman the way the chart's pod spec runs it.

The pod spec is rendered from the chart (persistence on), and each setting of its security
contexts becomes the podman flag that enforces the same thing: read-only root filesystem, all
capabilities dropped, no privilege escalation, the user and groups it names, the chart's /tmp
and data volumes, its args and its grace period. A setting this file does not know fails the
run instead of being ignored. The gateway listens on :9091 in the container's own network
namespace (`--network=none`: no port of the machine is used); the tests reach it from inside
that namespace with nsenter.
"""

import json
import os
import re
import subprocess
import tarfile
import time
import uuid

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = os.environ["IMAGE"]
HELM = os.environ["HELM"]
MAX_IMAGE_BYTES = 40 * 1000 * 1000


def podman(*args, check=True, timeout=120):
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def pod():
    """The rendered pod template of the chart's workload, persistence on."""
    out = subprocess.run([HELM, "template", "t", os.path.join(REPO, "charts/pushgateway"),
                          "--set", "persistence.enabled=true"], capture_output=True, text=True, check=True).stdout
    workloads = [d for d in yaml.safe_load_all(out) if d and d["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == 1, [w["kind"] for w in workloads]
    return workloads[0]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def config():
    return json.loads(podman("image", "inspect", IMAGE).stdout)[0]


def security_flags(pod):
    """podman flags enforcing the pod's and the gateway container's security contexts."""
    container = next(c for c in pod["containers"] if c["name"] == "pushgateway")
    psc, csc = pod.get("securityContext", {}), container.get("securityContext", {})
    flags = []
    for key, value in {**psc, **csc}.items():
        if key == "runAsNonRoot":
            assert value is True
        elif key == "seccompProfile":
            assert value == {"type": "RuntimeDefault"}, value  # podman's default profile
        elif key == "readOnlyRootFilesystem":
            assert value is True
            flags += ["--read-only", "--read-only-tmpfs=false"]
        elif key == "allowPrivilegeEscalation":
            assert value is False
            flags += ["--security-opt=no-new-privileges"]
        elif key == "privileged":
            assert value is False
        elif key == "capabilities":
            assert value == {"drop": ["ALL"]}, value
            flags += ["--cap-drop=ALL"]
        elif key in ("runAsUser", "runAsGroup", "fsGroup"):
            pass
        else:
            raise AssertionError(f"security context setting {key} has no podman equivalent here: teach test_image.py")
    user = csc.get("runAsUser", psc.get("runAsUser"))
    group = csc.get("runAsGroup", psc.get("runAsGroup"))
    if user is not None:
        flags += [f"--user={user}:{group if group is not None else user}"]
    if "fsGroup" in psc:
        flags += [f"--group-add={psc['fsGroup']}"]
    return flags


def tmpfs_size(volume):
    """The emptyDir's sizeLimit as a tmpfs size (64Mi -> 64m)."""
    limit = volume["emptyDir"].get("sizeLimit", "64Mi")
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", limit).groups()
    return f"{number}{unit[0].lower()}"


class Gateway:
    """One container of the image, started with the pod spec's flags and a data volume."""

    def __init__(self, pod, volume, extra_args=()):
        container = next(c for c in pod["containers"] if c["name"] == "pushgateway")
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert set(mounts) == {"tmp", "storage"}, f"volumes the test does not mount: {mounts}"
        assert "emptyDir" in volumes["tmp"] and "persistentVolumeClaim" in volumes["storage"]
        self.data_dir = mounts["storage"]
        self.grace = pod["terminationGracePeriodSeconds"]
        self.name = f"pushgateway-test-{uuid.uuid4().hex[:8]}"
        podman("run", "--detach", "--name", self.name, "--network=none",
               *security_flags(pod),
               f"--tmpfs={mounts['tmp']}:rw,nosuid,nodev,size={tmpfs_size(volumes['tmp'])}",
               f"--volume={volume}:{self.data_dir}",
               IMAGE, *container["args"], *extra_args)
        self.pid = podman("inspect", "--format", "{{.State.Pid}}", self.name).stdout.strip()
        self.wait_ready()

    def http(self, method, path, body=None):
        """(status, body) of a request to :9091 inside the container's network namespace."""
        cmd = ["nsenter", f"--target={self.pid}", "--net", "curl", "-sS", "-X", method, "-o", "-",
               "-w", "\n%{http_code}", f"http://127.0.0.1:9091{path}"]
        if body is not None:
            cmd += ["--data-binary", "@-"]
        proc = subprocess.run(cmd, input=body, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            return None, proc.stderr
        text, _, status = proc.stdout.rpartition("\n")
        return int(status), text

    def wait_ready(self, deadline_s=60):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            state = podman("inspect", "--format", "{{.State.Running}}", self.name).stdout.strip()
            assert state == "true", f"the container stopped: {self.logs()}"
            status, _ = self.http("GET", "/-/ready")
            if status == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"not ready within {deadline_s}s: {self.logs()}")

    def logs(self):
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def terminate(self):
        """SIGTERM, as the kubelet sends it; returns (exit code, seconds it took)."""
        start = time.monotonic()
        podman("kill", "--signal=TERM", self.name)
        code = podman("wait", self.name, timeout=self.grace + 30).stdout.strip()
        return int(code), time.monotonic() - start

    def remove(self):
        podman("rm", "--force", "--time=0", self.name, check=False)


@pytest.fixture
def volume():
    name = f"pushgateway-test-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "--force", name, check=False)


def test_the_stand_ins_answer_only_to_the_pinned_digests():
    """Each FROM resolves locally as written; the same name with another digest does not."""
    with open(os.path.join(REPO, "Dockerfile")) as f:
        refs = [line.split()[1] for line in f if line.upper().startswith("FROM ")]
    assert len(refs) == 2
    for ref in refs:
        assert podman("image", "exists", ref, check=False).returncode == 0, ref
        other = ref[:-1] + ("0" if ref[-1] != "0" else "1")
        assert podman("image", "exists", other, check=False).returncode == 1, other


def test_image_size_labels_and_user(config):
    size = config["Size"]
    print(f"\nimage {IMAGE}: {size / 1e6:.1f} MB ({size} bytes)")
    assert size < MAX_IMAGE_BYTES, f"the image is {size} bytes, over {MAX_IMAGE_BYTES}"
    labels = config["Config"]["Labels"]
    with open(os.path.join(REPO, "charts/pushgateway/Chart.yaml")) as f:
        app_version = yaml.safe_load(f)["appVersion"]
    assert labels["org.opencontainers.image.version"] == app_version
    assert labels["org.opencontainers.image.revision"] == os.environ["REVISION"]
    assert labels["org.opencontainers.image.source"] == os.environ["SOURCE"]
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert config["Config"]["User"] == "65532:65532"
    assert config["Config"]["Entrypoint"] == ["/usr/local/bin/pushgateway"]
    assert "9091/tcp" in config["Config"]["ExposedPorts"]


def test_the_chart_runs_the_images_user(pod, config):
    """runAsNonRoot needs a numeric user; the chart's IDs are the ones the image's files are owned by."""
    user, group = config["Config"]["User"].split(":")
    assert (str(pod["securityContext"]["runAsUser"]), str(pod["securityContext"]["runAsGroup"])) == (user, group)
    assert str(pod["securityContext"]["fsGroup"]) == group


def test_there_is_no_shell():
    proc = podman("run", "--rm", "--network=none", "--entrypoint=/bin/sh", IMAGE, "-c", "true", check=False)
    assert proc.returncode == 127 and "/bin/sh: no such file" in proc.stderr, f"a shell? {proc.returncode} {proc.stderr}"


def test_help_under_the_pod_security_context(pod):
    proc = podman("run", "--rm", "--network=none", *security_flags(pod), IMAGE, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--persistence.file" in proc.stdout and "--web.listen-address" in proc.stdout, proc.stdout


def test_push_scrape_sigterm_and_restart_from_the_volume(pod, volume):
    gateway = Gateway(pod, volume)
    try:
        status, body = gateway.http("PUT", "/metrics/job/image/instance/a", "image_test_total 42\n")
        assert status == 200, body
        status, body = gateway.http("GET", "/metrics")
        assert status == 200 and 'image_test_total{instance="a",job="image"} 42' in body, body

        terminated_at = time.time()
        code, seconds = gateway.terminate()
        assert code == 0, f"exit code {code} after SIGTERM: {gateway.logs()}"
        assert seconds < gateway.grace, f"took {seconds:.1f}s, the grace period is {gateway.grace}s"
        assert "metrics persisted" in gateway.logs(), gateway.logs()
    finally:
        gateway.remove()

    # The final snapshot was written on the volume by the shutdown (the interval is minutes).
    mountpoint = podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip()
    data = os.path.join(mountpoint, "pushgateway.data")
    assert os.path.exists(data), os.listdir(mountpoint)
    assert os.path.getsize(data) > 0 and os.path.getmtime(data) >= terminated_at - 1

    again = Gateway(pod, volume)
    try:
        status, body = again.http("GET", "/metrics")
        assert status == 200 and 'image_test_total{instance="a",job="image"} 42' in body, body
    finally:
        again.remove()


def test_the_root_filesystem_is_read_only(pod, volume):
    """Persistence outside the volume fails loudly instead of writing into the image."""
    container = next(c for c in pod["containers"] if c["name"] == "pushgateway")
    args = [a for a in container["args"] if not a.startswith("--persistence.file=")]
    name = f"pushgateway-test-{uuid.uuid4().hex[:8]}"
    try:
        proc = podman("run", "--name", name, "--network=none", *security_flags(pod), f"--volume={volume}:/data",
                      IMAGE, *args, "--persistence.file=/usr/local/bin/pushgateway.data", check=False, timeout=60)
    finally:
        podman("rm", "--force", "--time=0", name, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "/usr/local/bin/pushgateway.data" in proc.stdout + proc.stderr


@pytest.mark.parametrize("target, tool", [("kind-load", "kind"), ("minikube-load", "minikube")])
def test_make_load_hands_the_cluster_the_name_the_chart_asks_for(tmp_path, target, tool):
    """The archive given to kind/minikube names the image as containerd resolves `pushgateway:<v>`."""
    stub = tmp_path / tool
    stub.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    proc = subprocess.run(["make", "--no-print-directory", target, "CONTAINER_TOOL=podman", f"IMAGE={IMAGE}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    args = (tmp_path / "args").read_text().split()
    archive = os.path.join(REPO, next(a for a in args if a.endswith(".tar")))
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [f"docker.io/library/{IMAGE}"], manifest
