"""A rendered container's environment as the kubelet would set it, for the tests that run
rendered pods on this machine: plain values, Secret references (from a Secret of the render,
or test values for the Secrets a profile expects to exist before install) and the pod name."""

import base64
import re

from conftest import find

# Values of the Secrets the profiles expect to exist before install (values/external-redis.yaml
# names them in its header); the URL's host is replaced like the bundled one's.
EXTERNAL_SECRETS = {
    ("pushgateway-redis", "url"): "redis://redis.example.internal:6379/0",
    ("pushgateway-redis", "password"): "external-redis-password",
    # The scenarios in charts/pushgateway/ci/.
    ("redis-password", "redis-password"): "existing-secret-password",
    ("redis-auth", "password"): "redis-auth-password",
    ("pg-redis", "password"): "bundled-redis-password",
    ("redis-url", "url"): "redis://redis.example.internal:6379/2",
    ("redis-sentinels", "password"): "sentinel-redis-password",
    ("redis-sentinels", "sentinel-password"): "sentinel-own-password",
    # A password that would end a quoted config string and start another directive.
    ("redis-tricky", "password"): 'p"a\\ss w\x01rd\nrequirepass injected\n#',
}


def secret_value(docs, ref):
    """The value behind a secretKeyRef: from a Secret of the render, or from EXTERNAL_SECRETS."""
    for s in find(docs, "Secret", ref["name"]):
        if ref["key"] in s.get("stringData", {}):
            return s["stringData"][ref["key"]]
        return base64.b64decode(s["data"][ref["key"]]).decode()
    assert (ref["name"], ref["key"]) in EXTERNAL_SECRETS, f"no value for the Secret key {ref}"
    return EXTERNAL_SECRETS[(ref["name"], ref["key"])]


def container_env(docs, c, pod_name=None):
    """The container's environment as the kubelet sets it (value, secretKeyRef, or the
    metadata.name fieldRef when pod_name is given)."""
    assert not c.get("envFrom"), "envFrom is not resolved here"
    env = {}
    for e in c.get("env", []):
        source = e.get("valueFrom", {})
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in source:
            env[e["name"]] = secret_value(docs, source["secretKeyRef"])
        else:
            assert source.get("fieldRef", {}).get("fieldPath") == "metadata.name" and pod_name, e
            env[e["name"]] = pod_name
    return env


def expand(arg, env):
    """Kubernetes' $(VAR) expansion in container args ($$ escapes, unknown names stay)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), arg)



def volume_files(docs, w, volume):
    """The files of a pod volume that is a ConfigMap or a Secret of the render ({name: bytes}),
    as the kubelet mounts them; None for any other volume."""
    spec = next((v for v in w["spec"]["template"]["spec"].get("volumes", []) if v["name"] == volume), None)
    if spec is None:
        return None
    if "configMap" in spec:
        (cm,) = find(docs, "ConfigMap", spec["configMap"]["name"])
        return {name: text.encode() for name, text in cm.get("data", {}).items()}
    if "secret" in spec:
        secrets = find(docs, "Secret", spec["secret"]["secretName"])
        if not secrets:
            return None
        (secret,) = secrets
        files = {name: base64.b64decode(value) for name, value in secret.get("data", {}).items()}
        files.update({name: text.encode() for name, text in secret.get("stringData", {}).items()})
        return files
    return None
