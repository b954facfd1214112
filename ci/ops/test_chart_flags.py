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


def credentials(docs):
    for d in docs:
        if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-scrape-auth"):
            return d["stringData"]["username"], d["stringData"]["password"]
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
    for credentials on every path (which is why the chart's probes turn to TCP) and takes the
    users' passwords."""
    docs = render(CHART / "ci" / "basic-auth-values.yaml")
    args = local_args(docs, tmp_path)
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


def test_generated_tls_config_works_upstream(tmp_path):
    """The TLS web config the chart writes serves HTTPS from the mounted kubernetes.io/tls keys
    and enforces webConfig.tls.minVersion (TLS13 in this scenario)."""
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(tls / "tls.key"), "-out", str(tls / "tls.crt"), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    docs = render(CHART / "ci" / "tls-values.yaml")
    args = local_args(docs, tmp_path, tls_dir=tls) + ["--persistence.file="]
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
