"""configFile: the gateway's TOML configuration file (--config.file) from the values, in a
ConfigMap mounted read-only. Rendered and checked, and run: our gateway started with the
rendered args, web config and file (only the listen address and the mount paths changed)
enforces the file's scoped user, quota and expiry; a file the kubelet swaps is taken by a
reload (the redis case, replicas sharing the file's quota through a rollout, is in
test_profiles_run.py). TOML syntax is not judged at render time (the gateway reads TOML 1.1, Helm's parser
1.0): a file the gateway cannot read stops it at start with the line, which is shown here too."""

import base64
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import CHART, EXAMPLES, HELM, NAMESPACE, RELEASE, find, gateway_container, one, render, workload
from local_processes import GATEWAY_BIN, Gateway, wait_until
from pod_env import volume_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import kubelet_volume  # noqa: E402

SCENARIO = CHART / "ci" / "config-file-values.yaml"
FILE_PATH = "/etc/pushgateway/config/pushgateway.toml"
# The passwords behind the scenario's bcrypt hashes (as in basic-auth-values.yaml).
PUSHER = ("pusher", "push-secret")
PROMETHEUS = ("prometheus", "scrape-secret")
BODY = b"# TYPE config_file_test gauge\nconfig_file_test 1\n"


def values_file(tmp_path, base, **changes):
    """A values file: `base` (a path or None) with top-level keys replaced or merged one level."""
    values = yaml.safe_load(base.read_text()) if base else {}
    for key, value in changes.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / f"values-{len(list(tmp_path.glob('values-*')))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def refused(values, *sets):
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--values", str(values)]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run([HELM, *args], capture_output=True, text=True)
    return None if proc.returncode == 0 else proc.stderr


def content_of(docs):
    return one(docs, "ConfigMap", f"{RELEASE}-pushgateway-config")["data"]["pushgateway.toml"]


class LocalPod:
    """The gateway container of a render on this machine: every ConfigMap or Secret volume of
    the render written into its own directory as the kubelet lays it out (so it can be swapped
    like the kubelet does), paths under those mounts rewritten, the listen address dropped."""

    def __init__(self, docs, directory):
        w = workload(docs)
        c = gateway_container(w)
        self.mounts = {}
        for m in c.get("volumeMounts", []):
            files = volume_files(docs, w, m["name"])
            if files is not None:
                local = directory / m["name"]
                kubelet_volume.publish(local, "v1", files)
                self.mounts[m["mountPath"].rstrip("/")] = local
        self.args = []
        for arg in c["args"]:
            flag, _, value = arg.partition("=")
            if flag == "--web.listen-address":
                continue
            for mount, local in self.mounts.items():
                if value.startswith(mount + "/"):
                    arg = f"{flag}={local}/{value[len(mount) + 1:]}"
            self.args.append(arg)
        self.version = 1

    def republish(self, docs, mount_path):
        """The kubelet's update of one mounted volume to what `docs` render."""
        self.version += 1
        w = workload(docs)
        name = next(m["name"] for m in gateway_container(w)["volumeMounts"] if m["mountPath"] == mount_path)
        kubelet_volume.publish(self.mounts[mount_path], f"v{self.version}", volume_files(docs, w, name))


def request(gw, method, path, auth=None, body=None):
    req = urllib.request.Request(gw.base + path, data=body, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def push(gw, job, auth=PUSHER):
    return request(gw, "PUT", f"/metrics/job/{job}", auth, BODY)


def started(pod):
    gw = Gateway(pod.args)
    wait_until(lambda: gw.status("/-/ready") == 200, 30, "the gateway ready")
    return gw


# ---- render --------------------------------------------------------------------------------

def test_no_file_by_default():
    for values in (None, CHART / "values-dev.yaml", CHART / "values-small-prod.yaml", *EXAMPLES.values()):
        docs = render(values)
        c = gateway_container(workload(docs))
        assert not [a for a in c["args"] if a.startswith("--config.file")], values
        assert not find(docs, "ConfigMap", f"{RELEASE}-pushgateway-config"), values


def test_the_file_is_a_configmap_mounted_read_only_as_a_directory():
    docs = render(SCENARIO)
    expected = yaml.safe_load(SCENARIO.read_text())["configFile"]["content"]
    assert content_of(docs) == expected, "the file must reach the pod byte for byte"
    w = workload(docs)
    c = gateway_container(w)
    assert f"--config.file={FILE_PATH}" in c["args"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "config-file"]
    assert mount == {"name": "config-file", "mountPath": "/etc/pushgateway/config", "readOnly": True}, \
        "a directory mount without subPath, or the kubelet's updates never arrive"
    (volume,) = [v for v in w["spec"]["template"]["spec"]["volumes"] if v["name"] == "config-file"]
    assert volume == {"name": "config-file", "configMap": {"name": f"{RELEASE}-pushgateway-config"}}


def pod_template(values, *sets):
    return workload(render(values, sets))["spec"]["template"]


def test_pods_roll_when_the_file_changes_unless_told_not_to(tmp_path):
    base = pod_template(SCENARIO)
    assert base == pod_template(SCENARIO, "configFile.rollOnChange=true")
    changed = values_file(tmp_path, SCENARIO, configFile={"content": content_of(render(SCENARIO)) + "\n# new\n"})
    rolled = pod_template(changed)
    digest = "pushgateway.io/config-file"
    assert rolled["metadata"]["annotations"][digest] != base["metadata"]["annotations"][digest]
    assert {k: v for k, v in rolled.items() if k != "metadata"} == {k: v for k, v in base.items() if k != "metadata"}
    kept = pod_template(SCENARIO, "configFile.rollOnChange=false")
    assert digest not in kept.get("metadata", {}).get("annotations", {})
    assert kept == pod_template(changed, "configFile.rollOnChange=false"), "rollOnChange=false rolled the pods"


@pytest.mark.parametrize("spelling", [
    '[flags]\n"web.enable-admin-api" = true\n',
    '[ "flags" ]\n"web.enable-lifecycle" = true\n',
    'flags."web.enable-admin-api" = true\n',
    'flags = { "web.enable-admin-api" = true }\n',
    # Only a Helm that parses TOML (3.17+, as the suite's) sees through an escaped key.
    '"\\u0066lags" = { "web.enable-admin-api" = true }\n',
], ids=["table", "quoted", "dotted", "inline", "escaped"])
def test_a_flags_table_is_refused(spelling, tmp_path):
    values = values_file(tmp_path, SCENARIO, configFile={"content": spelling + content_of(render(SCENARIO))})
    err = refused(values)
    assert err and "must not have a [flags] table" in err and "extraArgs" in err, err


def test_access_rules_the_gateway_would_refuse_are_refused_at_render(tmp_path):
    no_auth = values_file(tmp_path, SCENARIO, webConfig={"basicAuthUsers": {}})
    err = refused(no_auth)
    assert err and "no web config to say who the user is" in err, err
    stranger = content_of(render(SCENARIO)).replace('user = "pusher"', 'user = "puhser"')
    err = refused(values_file(tmp_path, SCENARIO, configFile={"content": stranger}))
    assert err and '"puhser", who is not in webConfig.basicAuthUsers' in err, err
    # A name that merely contains the words is no table.
    harmless = content_of(render(SCENARIO)) + '\n[[quota]]\nname = "flags"\nlabels = { job = "flags" }\nmax_groups = 1\n'
    assert refused(values_file(tmp_path, SCENARIO, configFile={"content": harmless})) is None


def test_invalid_toml_renders_and_the_gateway_refuses_to_start_with_the_line(tmp_path):
    """Not judged at render time (the gateway reads TOML 1.1, which Helm's parser does not): the
    new pod stops at start, its log names the line; a rolling update goes no further."""
    broken = values_file(tmp_path, SCENARIO, configFile={"content": '[expiry]\ndefault_ttl = "1h"\nbogus = 1\n'})
    pod = LocalPod(render(broken), tmp_path / "pod")
    proc = subprocess.run([GATEWAY_BIN, "--web.listen-address=127.0.0.1:0", *pod.args], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 64, proc
    assert "line 3" in proc.stderr and "bogus" in proc.stderr, proc.stderr


# ---- run -----------------------------------------------------------------------------------

def test_the_rendered_file_takes_effect(tmp_path):
    """The scenario's scoped user, quota and expiry, enforced by our gateway started from the
    render."""
    gw = started(LocalPod(render(SCENARIO), tmp_path))
    try:
        status, text = push(gw, "team-b")
        assert status == 403 and "team-a-" in text, (status, text)
        assert push(gw, "team-a-1")[0] == 200
        assert push(gw, "team-a-2")[0] == 200
        status, text = push(gw, "team-a-3")
        assert status == 429 and "team-a" in text, (status, text)
        assert request(gw, "GET", "/metrics", PUSHER)[0] == 403, "the pusher has no scrape right"
        status, scraped = request(gw, "GET", "/metrics", PROMETHEUS)
        assert status == 200 and 'pushgateway_quota_groups{quota="team-a"} 2' in scraped, scraped
        status, text = request(gw, "GET", "/api/v1/metrics", PROMETHEUS)
        assert status == 200 and "expires_at" in text, "[expiry] default_ttl gives every group an expiry"
    finally:
        gw.stop()


def test_a_swapped_file_is_taken_by_a_reload(tmp_path):
    """rollOnChange=false: the kubelet swaps the ConfigMap's files, the pod keeps running, and a
    POST /-/reload (gateway.enableLifecycle, by a user with admin) takes the new quota; the groups
    pushed before stay."""
    admin = content_of(render(SCENARIO)).replace('scrape = true', 'scrape = true\nadmin = true')
    before = values_file(tmp_path, SCENARIO, gateway={"enableLifecycle": True},
                         configFile={"content": admin, "rollOnChange": False})
    after = values_file(tmp_path, SCENARIO, gateway={"enableLifecycle": True},
                        configFile={"content": admin.replace("max_groups = 2", "max_groups = 3"),
                                    "rollOnChange": False})
    assert pod_template(before) == pod_template(after), "the pods would roll"
    pod = LocalPod(render(before), tmp_path / "pod")
    gw = started(pod)
    try:
        assert push(gw, "team-a-1")[0] == 200 and push(gw, "team-a-2")[0] == 200
        assert push(gw, "team-a-3")[0] == 429
        pod.republish(render(after), "/etc/pushgateway/config")
        assert request(gw, "POST", "/-/reload", PUSHER)[0] == 403, "a reload is an admin action"
        assert request(gw, "POST", "/-/reload", PROMETHEUS)[0] == 200
        assert push(gw, "team-a-3")[0] == 200
        assert push(gw, "team-a-4")[0] == 429
        status, scraped = request(gw, "GET", "/metrics", PROMETHEUS)
        assert 'pushgateway_quota_max_groups{quota="team-a"} 3' in scraped, scraped
    finally:
        gw.stop()


def test_the_command_line_wins_over_the_files_flags(tmp_path):
    """Why [flags] is refused, and what holds if one slips through: the flags the chart renders
    win over the file's (auth stays on, the telemetry path stays), but a switch the chart leaves
    off is turned on by the file."""
    pod = LocalPod(render(SCENARIO), tmp_path)
    config = next(Path(a.split("=", 1)[1]) for a in pod.args if a.startswith("--config.file="))
    text = config.read_text() + (
        '\n[flags]\n"web.config.file" = "/dev/null"\n"web.telemetry-path" = "/elsewhere"\n'
        '"log.level" = "error"\n"web.enable-admin-api" = true\n')
    # The ConfigMap's file is a symlink into the kubelet's directory; write what it points to.
    config.resolve().write_text(text)
    gw = started(pod)
    try:
        assert request(gw, "GET", "/metrics")[0] == 401, "the file's web.config.file replaced the chart's"
        assert request(gw, "GET", "/metrics", PROMETHEUS)[0] == 200
        status, text = request(gw, "GET", "/api/v1/status", PROMETHEUS)
        assert '"web.telemetry-path":"/metrics"' in text.replace(" ", "") and '"log.level":"info"' in text.replace(" ", ""), text
        assert '"web.enable-admin-api":"true"' in text.replace(" ", ""), "the file's switch should show"
    finally:
        gw.stop()


def notes(values, *sets):
    args = ["install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", "--values", str(values)]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run([HELM, *args], capture_output=True, text=True, check=True)
    return proc.stdout[proc.stdout.index("NOTES:"):]


def test_notes_say_how_a_change_takes_effect():
    text = notes(SCENARIO)
    assert f"{RELEASE}-pushgateway-config" in text and "rolls the pods (which loses the" in text, text
    text = notes(SCENARIO, "configFile.rollOnChange=false")
    assert "make -f make/ops/pushgateway.mk pushgateway-reload PUSHGATEWAY_NAMESPACE=monitoring" in text, text
    assert "needs gateway.enableLifecycle=true" in text, text
    text = notes(SCENARIO, "configFile.rollOnChange=false", "gateway.enableLifecycle=true", "storage.type=redis",
                 "storage.redis.url=redis://redis:6379/0")
    assert "enableLifecycle" not in text and "WARNING (redis mode)" in text, text
