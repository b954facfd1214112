"""The chart and the binary agree: the flags the chart renders start our gateway, and the web
configuration the chart generates is accepted by a gateway that supports it."""

import base64
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import REPO, procnet
import kubelet_volume  # noqa: E402 (ci/lib, on the path conftest sets)

CHART = REPO / "charts" / "pushgateway"
HELM = os.environ.get("HELM", "helm")
VALUES = {"default": None, "values-dev.yaml": CHART / "values-dev.yaml",
          "values-small-prod.yaml": CHART / "values-small-prod.yaml"}
VALUES.update({f"ci/{p.name}": p for p in sorted((CHART / "ci").glob("*.yaml"))})
VALUES.update({f"values/{p.name}": p for p in sorted((REPO / "values").glob("*.yaml"))})


def render(values):
    args = [HELM, "template", "pg", str(CHART), "--namespace", "monitoring"]
    if values:
        args += ["--values", str(values)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def gateway_args(docs):
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["labels"].get("app.kubernetes.io/component") != "redis":
            return next(c for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "pushgateway")["args"]
    raise AssertionError("no gateway workload rendered")


def local_args(docs, tmp_path, tls_dir=None):
    """The rendered flags with paths moved to this machine (TLS files to tls_dir, when given) and
    the listen address to a loopback port the kernel picks."""
    args = []
    for arg in gateway_args(docs):
        flag, _, value = arg.partition("=")
        if flag == "--web.listen-address":
            arg = f"{flag}=127.0.0.1:0"
        elif flag == "--persistence.file":
            arg = f"{flag}={tmp_path / Path(value).name}"
        elif flag == "--config.file":
            (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and Path(value).name in d.get("data", {})]
            (tmp_path / "config.toml").write_text(cm["data"][Path(value).name])
            arg = f"{flag}={tmp_path / 'config.toml'}"
        elif flag == "--web.config.file":
            secret = next((d for d in docs if d["kind"] == "Secret" and "web-config.yml" in d.get("stringData", {})), None)
            if secret is None:
                pytest.skip("the web config comes from a Secret outside the chart")
            text = secret["stringData"]["web-config.yml"]
            if "tls_server_config" in text:
                if tls_dir is None:
                    pytest.skip("TLS needs a certificate Secret from outside the chart")
                text = text.replace("/etc/pushgateway/tls/", f"{tls_dir}/")
            (tmp_path / "web-config.yml").write_text(text)
            arg = f"{flag}={tmp_path / 'web-config.yml'}"
        args.append(arg)
    return args


# The passwords behind the bcrypt hashes of the values files (the chart takes hashes only).
PASSWORDS = {"$2b$10$vWGEIlGdbiIeeCbwJqhfsOs1saDXbiNGSGqAgrLLEVDd5EZJfWWjC": "scrape-secret",
             "$2b$10$j4lXccY6CQN.mWWklqkKKegA6xBim3TDfg6mcgc8ek9OZwxY/fFqy": "push-secret",
             "$2y$10$iee.bN2H1dSWrbbDAug05e5CAleO.A/2F0bhATyWXC28Et0e7TtU6": "change-me"}
# Flags of ours that upstream does not know.
OURS_ONLY = ("--web.unauthenticated-probes",)


def credentials(docs):
    """The first user of the chart's web config and its password, or None without basic auth."""
    for d in docs:
        if d["kind"] == "Secret" and "web-config.yml" in d.get("stringData", {}):
            users = yaml.safe_load(d["stringData"]["web-config.yml"]).get("basic_auth_users") or {}
            for user in sorted(users):
                return user, PASSWORDS[users[user]]
    return None


def get(url, auth=None, context=None):
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=2, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def start(binary, args, ready_path, auth, context=None, address_file=None):
    """Starts `binary` (listening on port 0) and waits until `ready_path` answers 200.

    Returns (proc, port, None), or (proc, None, stderr) when it exits first. The port is read
    from `address_file` (our gateway's --web.listen-address-file) or found in /proc."""
    proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if address_file:
            port = procnet.wait_for_address_file(proc, address_file)[1]
        else:
            port = procnet.wait_for_listen_port(proc)
    except RuntimeError as e:
        if proc.poll() is not None:
            return proc, None, proc.stderr.read()
        stop(proc)
        raise AssertionError(f"{binary} {' '.join(args)}: {e}") from None
    scheme = "https" if context else "http"
    deadline = time.monotonic() + procnet.START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, None, proc.stderr.read()
        try:
            if get(f"{scheme}://127.0.0.1:{port}{ready_path}", auth, context) == 200:
                return proc, port, None
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"{binary} {' '.join(args)} did not become ready at port {port}{ready_path}")


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def route_prefix(args):
    for arg in args:
        if arg.startswith("--web.route-prefix="):
            return arg.split("=", 1)[1].rstrip("/")
    for arg in args:
        if arg.startswith("--web.external-url="):
            return re.sub(r"^https?://[^/]*", "", arg.split("=", 1)[1]).rstrip("/")
    return ""


@pytest.mark.parametrize("name", list(VALUES))
def test_rendered_flags_start_our_gateway(name, tmp_path):
    docs = render(VALUES[name])
    if "--storage=redis" in gateway_args(docs):
        pytest.skip("replicated state on Redis is not started here (it needs a Redis server)")
    address_file = tmp_path / "listen-address"
    args = local_args(docs, tmp_path) + [f"--web.listen-address-file={address_file}"]
    auth = credentials(docs)
    proc, port, refused = start(os.environ["GATEWAY_BIN"], args, f"{route_prefix(args)}/-/ready", auth,
                                address_file=address_file)
    try:
        if refused is not None:
            if "not supported by this version yet" in refused:
                pytest.skip(f"our gateway: {refused.strip().splitlines()[-1]}")
            raise AssertionError(f"our gateway refused the chart's flags {args}:\n{refused}")
        assert get(f"http://127.0.0.1:{port}{route_prefix(args)}/-/healthy", auth) == 200
    finally:
        stop(proc)


def test_generated_basic_auth_config_works_upstream(tmp_path):
    """The bcrypt web config the chart writes is what the exporter toolkit expects: upstream asks
    for credentials on every path (ours answers the probes without them, see the next test) and
    takes the users' passwords."""
    docs = render(CHART / "ci" / "basic-auth-values.yaml")
    args = [a for a in local_args(docs, tmp_path) if a not in OURS_ONLY]
    auth = credentials(docs)
    reference = os.environ["REFERENCE_BIN"]
    args.append("--persistence.file=")  # Debian's build defaults to a shared file
    proc, port, refused = start(reference, args, "/-/ready", auth)
    try:
        assert refused is None, refused
        assert get(f"http://127.0.0.1:{port}/-/healthy") == 401
        assert get(f"http://127.0.0.1:{port}/-/healthy", auth) == 200
        assert get(f"http://127.0.0.1:{port}/metrics", ("pusher", "push-secret")) == 200
        assert get(f"http://127.0.0.1:{port}/metrics", ("pusher", "wrong")) == 401
    finally:
        stop(proc)


def test_our_gateway_answers_the_chart_probes_without_credentials(tmp_path):
    """With the chart's basic-auth web config and flags, the probe paths answer the kubelet
    (no credentials) while everything else still asks for them."""
    docs = render(CHART / "ci" / "basic-auth-values.yaml")
    address_file = tmp_path / "listen-address"
    args = local_args(docs, tmp_path) + [f"--web.listen-address-file={address_file}"]
    assert "--web.unauthenticated-probes" in args
    auth = credentials(docs)
    proc, port, refused = start(os.environ["GATEWAY_BIN"], args, "/-/ready", None, address_file=address_file)
    try:
        assert refused is None, refused
        assert get(f"http://127.0.0.1:{port}/-/healthy") == 200
        assert get(f"http://127.0.0.1:{port}/metrics") == 401
        assert get(f"http://127.0.0.1:{port}/metrics", auth) == 200
        assert get(f"http://127.0.0.1:{port}/metrics", ("pusher", "push-secret")) == 200
    finally:
        stop(proc)


def test_generated_tls_config_works_upstream(tmp_path):
    """The TLS web config the chart writes serves HTTPS from the mounted kubernetes.io/tls keys
    and enforces webConfig.tls.minVersion (TLS13 in this scenario)."""
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(tls / "tls.key"), "-out", str(tls / "tls.crt"), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    docs = render(CHART / "ci" / "tls-values.yaml")
    args = [a for a in local_args(docs, tmp_path, tls_dir=tls) if a not in OURS_ONLY] + ["--persistence.file="]
    ctx = ssl.create_default_context(cafile=str(tls / "tls.crt"))
    proc, port, refused = start(os.environ["REFERENCE_BIN"], args, "/-/ready", None, ctx)
    try:
        assert refused is None, refused
        assert get(f"https://127.0.0.1:{port}/-/healthy", context=ctx) == 200
        old = ssl.create_default_context(cafile=str(tls / "tls.crt"))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(OSError):
            get(f"https://127.0.0.1:{port}/-/healthy", context=old)
    finally:
        stop(proc)


def self_signed(directory, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(directory / f"{name}.key"), "-out", str(directory / f"{name}.crt"),
                    "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return directory / f"{name}.crt", directory / f"{name}.key"


def test_renewed_certificate_reaches_new_connections(tmp_path):
    """cert-manager renews the TLS Secret: the kubelet swaps the files under the chart's TLS
    mount, web-config.yml does not change, the pods do not restart. Our gateway, run with the
    chart's flags and web config, serves the new certificate to new connections."""
    docs = render(CHART / "ci" / "tls-values.yaml")
    w = next(d for d in docs if d["kind"] in ("Deployment", "StatefulSet"))
    mount = next(m for m in w["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] if m["name"] == "tls")
    assert "subPath" not in mount, "a subPath mount never sees the kubelet's updates"
    old_crt, old_key = self_signed(tmp_path, "old")
    new_crt, new_key = self_signed(tmp_path, "new")
    tls = tmp_path / "tls"
    tls.mkdir()
    kubelet_volume.publish(tls, "v1", {"tls.crt": old_crt.read_bytes(), "tls.key": old_key.read_bytes()})
    address_file = tmp_path / "listen-address"
    args = local_args(docs, tmp_path, tls_dir=tls) + [f"--web.listen-address-file={address_file}"]
    proc, port, refused = start(os.environ["GATEWAY_BIN"], args, "/-/healthy", None,
                                ssl.create_default_context(cafile=str(old_crt)), address_file=address_file)
    url = f"https://127.0.0.1:{port}/-/healthy"

    def served_by(crt):
        try:
            return get(url, context=ssl.create_default_context(cafile=str(crt))) == 200
        except OSError:
            return False

    try:
        assert refused is None, refused
        assert served_by(old_crt) and not served_by(new_crt)
        kubelet_volume.publish(tls, "v2", {"tls.crt": new_crt.read_bytes(), "tls.key": new_key.read_bytes()})
        deadline = time.monotonic() + 60
        while not (served_by(new_crt) and not served_by(old_crt)):
            assert time.monotonic() < deadline, "the renewed certificate was not picked up"
            time.sleep(0.2)
    finally:
        stop(proc)


def helm_test_script(docs, local_base):
    """The command of the chart's `helm test` pod, with the Service URL moved to local_base."""
    (pod,) = [d for d in docs if d["kind"] == "Pod" and d["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    script = pod["spec"]["containers"][0]["command"][2]
    service = re.search(r'base="(https?://[^"]*?\.svc:\d+)', script).group(1)
    host = re.sub(r"^https?://|:\d+$", "", service)
    return script.replace(service, local_base).replace(f'"{host}"', '"127.0.0.1"')


@pytest.mark.parametrize("values", [None, CHART / "ci" / "basic-auth-values.yaml", CHART / "ci" / "ingress-values.yaml"],
                         ids=["default", "basic-auth", "route-prefix"])
def test_helm_test_pod_pushes_scrapes_and_deletes(values, tmp_path):
    """The `helm test` script against our gateway started with the chart's flags: it must succeed,
    and leave no group behind."""
    docs = render(values)
    address_file = tmp_path / "listen-address"
    args = local_args(docs, tmp_path) + [f"--web.listen-address-file={address_file}"]
    auth = credentials(docs)
    prefix = route_prefix(args)
    proc, port, refused = start(os.environ["GATEWAY_BIN"], args, f"{prefix}/-/ready", auth, address_file=address_file)
    try:
        assert refused is None, refused
        env = dict(os.environ, HOSTNAME="pg-pushgateway-helm-test")
        if auth:
            env.update(TEST_USER=auth[0], TEST_PASSWORD=auth[1])
        script = helm_test_script(docs, f"http://127.0.0.1:{port}")
        # The pod's /tmp is an emptyDir; here a directory of the test's own.
        script = script.replace("/tmp/netrc", str(tmp_path / "netrc"))
        run = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "pushed, scraped and deleted a group through the Service" in run.stdout
        req = urllib.request.Request(f"http://127.0.0.1:{port}{prefix}/metrics")
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        scraped = urllib.request.urlopen(req, timeout=5).read().decode()
        assert "pushgateway_helm_test_probe" not in scraped, "the test group was left behind"
        assert re.search(r'pushgateway_http_requests_total\{code="200",handler="push",method="put"\} [1-9]', scraped), \
            "no push was counted"
    finally:
        stop(proc)
