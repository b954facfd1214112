"""Scoped users: [[access]] entries of --config.file on top of the web config's basic auth
and verified client certificates (the certificate's CN is the user name)."""

import json
import os
import signal
import subprocess

import requests

from conftest import CURL, GATEWAY_BIN, bcrypt_hash, wait_until

PASSWORDS = {"team-a": "pw-a", "ops": "pw-ops"}

TEAM_A_ONLY_PUSHES = """
[[access]]
user = "team-a"
push = { job = "team-a-.*" }
scrape = false
admin = false
"""


def write_web_config(directory):
    path = directory / "web.yml"
    path.write_text("basic_auth_users:\n" + "".join(
        f"  {name}: {json.dumps(bcrypt_hash(pw, rounds=4))}\n" for name, pw in PASSWORDS.items()))
    return path


def write_rules(directory, text):
    path = directory / "pushgateway.toml"
    # Written to a new file and renamed, as a config management tool would.
    tmp = directory / "pushgateway.toml.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def start(gateway, tmp_path, rules):
    web = write_web_config(tmp_path)
    config = write_rules(tmp_path, rules)
    return gateway([f"--web.config.file={web}", f"--config.file={config}",
                    "--web.enable-admin-api", "--web.enable-lifecycle"], auth=("ops", "pw-ops"))


def as_user(gw, user, method, path, **kwargs):
    return requests.request(method, gw.url + path, auth=(user, PASSWORDS[user]), timeout=5, **kwargs)


def denied(gw):
    """pushgateway_access_denied_total samples: {'user/action': value}."""
    counts = {}
    for line in gw.scrape().splitlines():
        if line.startswith("pushgateway_access_denied_total{"):
            labels, value = line.rsplit(" ", 1)
            parsed = dict(part.split("=", 1) for part in labels[labels.index("{") + 1:-1].split(","))
            counts[f"{parsed['user'].strip(chr(34))}/{parsed['action'].strip(chr(34))}"] = float(value)
    return counts


def test_a_scoped_user_may_do_only_what_its_entry_grants(gateway, tmp_path):
    gw = start(gateway, tmp_path, TEAM_A_ONLY_PUSHES)
    assert as_user(gw, "team-a", "PUT", "/metrics/job/team-a-backup", data=b"m 1\n").status_code == 200
    assert gw.push("job/team-b", "m 2\n").status_code == 200, "ops has no entry: anything goes"
    before = gw.pushed()

    outside = as_user(gw, "team-a", "PUT", "/metrics/job/team-b/instance/x", data=b"m 3\n")
    assert outside.status_code == 403, outside.text
    assert "team-a" in outside.text and 'job=~"team-a-.*"' in outside.text, outside.text
    # Deletes are writes: only inside the push scope.
    assert as_user(gw, "team-a", "DELETE", "/metrics/job/team-b").status_code == 403
    assert gw.pushed() == before, "refusals change nothing"

    for method, path in [("GET", "/metrics"), ("GET", "/api/v1/metrics"), ("GET", "/api/v1/status"),
                         ("GET", "/"), ("GET", "/static/app.js")]:
        r = as_user(gw, "team-a", method, path)
        assert r.status_code == 403 and "scrape = false" in r.text, (path, r.status_code, r.text)
    for method, path in [("PUT", "/api/v1/admin/wipe"), ("POST", "/-/reload"), ("PUT", "/-/quit"),
                         ("DELETE", '/api/v1/groups?match[]={job="team-b"}')]:
        r = as_user(gw, "team-a", method, path)
        assert r.status_code == 403 and "admin = false" in r.text, (path, r.status_code, r.text)
    assert as_user(gw, "team-a", "GET", "/-/healthy").status_code == 200
    assert gw.pushed() == before and gw.proc.poll() is None

    assert as_user(gw, "team-a", "DELETE", "/metrics/job/team-a-backup").status_code == 202
    assert not any('job="team-a-backup"' in line for line in gw.pushed())
    assert denied(gw) == {"team-a/push": 1, "team-a/delete": 1, "team-a/scrape": 5, "team-a/admin": 4}
    # ops may still do everything, the wipe included.
    assert gw.req("PUT", "/api/v1/admin/wipe").status_code == 202


def test_rules_reload_and_an_invalid_file_keeps_the_old_ones(gateway, tmp_path):
    gw = start(gateway, tmp_path, TEAM_A_ONLY_PUSHES)
    assert as_user(gw, "team-a", "GET", "/metrics").status_code == 403
    write_rules(tmp_path, TEAM_A_ONLY_PUSHES.replace("scrape = false", "scrape = true"))
    assert gw.req("POST", "/-/reload").status_code == 200
    assert as_user(gw, "team-a", "GET", "/metrics").status_code == 200

    # Invalid: refused with the reason, the rules in force stay.
    write_rules(tmp_path, TEAM_A_ONLY_PUSHES + "\n[[access]]\nuser = \"team-a\"\n")
    r = gw.req("POST", "/-/reload")
    assert r.status_code == 500 and "second entry" in r.text, r.text
    # A user the web config does not know: a misspelt name would leave the real one free.
    write_rules(tmp_path, TEAM_A_ONLY_PUSHES.replace('user = "team-a"', 'user = "tema-a"'))
    r = gw.req("POST", "/-/reload")
    assert r.status_code == 500 and "tema-a" in r.text, r.text
    assert as_user(gw, "team-a", "GET", "/metrics").status_code == 200
    assert as_user(gw, "team-a", "PUT", "/metrics/job/other", data=b"m 1\n").status_code == 403
    assert "pushgateway_config_last_reload_successful 0" in gw.scrape()

    # SIGHUP reloads too: without the entry team-a may do anything again.
    write_rules(tmp_path, "")
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: as_user(gw, "team-a", "PUT", "/metrics/job/other", data=b"m 1\n").status_code == 200,
                      timeout=30)


def test_a_web_config_change_that_would_leave_an_entry_without_its_user_is_refused(gateway, tmp_path):
    gw = start(gateway, tmp_path, TEAM_A_ONLY_PUSHES)
    assert as_user(gw, "team-a", "PUT", "/metrics/job/team-b", data=b"m 1\n").status_code == 403
    # The team's basic-auth user renamed: its entry would name nobody, and the new name would
    # have none (full access), as a misspelt entry would at start.
    web = tmp_path / "web.yml"
    renamed = tmp_path / "web.yml.tmp"
    renamed.write_text(web.read_text().replace("team-a:", "team_a:"))
    os.replace(renamed, web)
    assert wait_until(lambda: "pushgateway_web_config_last_reload_successful 0" in gw.scrape(), 10), \
        gw.log_text()
    assert "would no longer apply" in gw.log_text() and "team-a" in gw.log_text(), gw.log_text()
    r = requests.put(gw.url + "/metrics/job/team-b", data=b"m 2\n", auth=("team_a", "pw-a"), timeout=5)
    assert r.status_code == 401, (r.status_code, r.text)
    assert as_user(gw, "team-a", "PUT", "/metrics/job/team-b", data=b"m 3\n").status_code == 403


def test_rules_that_could_not_apply_stop_the_start(tmp_path):
    rules = write_rules(tmp_path, TEAM_A_ONLY_PUSHES)
    web = write_web_config(tmp_path)
    (tmp_path / "other.yml").write_text(f"basic_auth_users:\n  ops: {json.dumps(bcrypt_hash('x', rounds=4))}\n")
    for args, named in [
        ([], "basic_auth_users"),  # nobody could ever be named: every request anonymous
        ([f"--web.config.file={tmp_path / 'other.yml'}"], '"team-a"'),
    ]:
        proc = subprocess.run([GATEWAY_BIN, "--web.listen-address=127.0.0.1:0", f"--config.file={rules}", *args],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0 and named in output, (args, output)
    assert web.exists()


def test_a_verified_client_certificate_names_the_user_by_its_cn(gateway, cert_dir):
    (cert_dir / "web.yml").write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
        "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n")
    rules = write_rules(cert_dir, '[[access]]\nuser = "good-client"\npush = { job = "team-a-.*" }\n')
    gw = gateway([f"--web.config.file={cert_dir / 'web.yml'}", f"--config.file={rules}"], scheme="https",
                 verify=str(cert_dir / "ca.pem"))
    client = (str(cert_dir / "client.pem"), str(cert_dir / "client.key"))

    def push(job, cert):
        return requests.put(f"{gw.url}/metrics/job/{job}", data=b"m 1\n", verify=str(cert_dir / "ca.pem"),
                            cert=cert, timeout=5)

    assert push("team-a-x", client).status_code == 200
    refused = push("team-b", client)
    assert refused.status_code == 403 and "good-client" in refused.text, refused.text
    # Once rules exist, a request without any user is refused rather than let through.
    anonymous = push("team-a-x", None)
    assert anonymous.status_code == 403 and "no user" in anonymous.text, anonymous.text
    # Over HTTP/2 too (the name goes with every stream of the connection): the entry grants
    # no scrape.
    h2 = subprocess.run([CURL, "-sS", "--max-time", "10", "--http2", "--cacert", str(cert_dir / "ca.pem"),
                         "--cert", client[0], "--key", client[1], "-w", " %{http_version} %{http_code}",
                         f"{gw.url}/metrics"], capture_output=True, text=True, timeout=20)
    assert h2.stdout.endswith(" 2 403") and "good-client" in h2.stdout, h2.stdout + h2.stderr


def test_unverified_client_certificates_name_nobody(tmp_path, cert_dir):
    (cert_dir / "web.yml").write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
        "  client_auth_type: RequestClientCert\n")
    rules = write_rules(cert_dir, '[[access]]\nuser = "good-client"\n')
    proc = subprocess.run([GATEWAY_BIN, "--web.listen-address=127.0.0.1:0", f"--config.file={rules}",
                           f"--web.config.file={cert_dir / 'web.yml'}"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0 and "[[access]]" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_with_basic_auth_an_entry_must_name_a_basic_auth_user(cert_dir):
    """Verified client certificates do not make any name acceptable while basic auth is on:
    every request is then a basic-auth user, and an entry for another name would be dead."""
    (cert_dir / "web.yml").write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
        "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n"
        f"basic_auth_users:\n  ops: {json.dumps(bcrypt_hash('x', rounds=4))}\n")
    rules = write_rules(cert_dir, '[[access]]\nuser = "good-client"\n')
    proc = subprocess.run([GATEWAY_BIN, "--web.listen-address=127.0.0.1:0", f"--config.file={rules}",
                           f"--web.config.file={cert_dir / 'web.yml'}"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and '"good-client"' in output and "basic_auth_users" in output, output
