"""Quotas on replicated state: the verdict is reached where each replica applies the
stream, so pushes racing through different replicas get one verdict, and every replica
counts the same usage."""

import threading

import requests

from conftest import converged, metric_value, wait_until

QUOTA = '[[quota]]\nname = "team-a"\nlabels_regex = { job = "team-a-.*" }\nmax_groups = 3\nmax_series = 100\n'


def config(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_racing_pushes_through_replicas_get_one_verdict_everywhere(redis, replicas, tmp_path):
    path = config(tmp_path, "quota.toml", QUOTA)
    group = replicas(redis, 3, extra_args=[f"--config.file={path}"])
    barrier = threading.Barrier(9)
    statuses = {}

    def push(i):
        replica = group[i % len(group)]
        barrier.wait()
        response = replica.push(f"job/team-a-{i}", "m 1\n")
        statuses[i] = (response.status_code, response.text)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    accepted = sorted(i for i, (code, _) in statuses.items() if code == 200)
    refused = [text for code, text in statuses.values() if code == 429]
    assert len(accepted) == 3 and len(refused) == 6, statuses
    assert all('"team-a"' in text and "3 groups" in text for text in refused), refused
    text = converged(group, redis)
    stored = sorted(i for i in range(9) if f'job="team-a-{i}"' in text)
    assert stored == accepted, "the groups stored are exactly those acknowledged"
    for replica in group:
        scrape = replica.scrape()
        assert metric_value(scrape, 'pushgateway_quota_groups{quota="team-a"}') == 3, replica.url
        assert metric_value(scrape, 'pushgateway_quota_series{quota="team-a"}') == 3, replica.url

    # A delete through one replica gives the room back on every one.
    assert group[1].push(f"job/team-a-{accepted[0]}", "", method="DELETE").status_code == 202
    assert group[2].push("job/team-a-new", "m 1\n").status_code == 200
    assert group[0].push("job/team-a-newer", "m 1\n").status_code == 429
    converged(group, redis)


def test_a_replica_with_other_quotas_stays_unready(redis, replicas, tmp_path):
    (first,) = replicas(redis, 1, extra_args=[f"--config.file={config(tmp_path, 'a.toml', QUOTA)}"])
    other_rules = config(tmp_path, "b.toml", QUOTA.replace("max_groups = 3", "max_groups = 4"))
    (other,) = replicas(redis, 1, extra_args=[f"--config.file={other_rules}"], wait=False)

    def refused_with_reason():
        try:
            r = other.req("GET", "/-/ready")
        except requests.RequestException:
            return False
        return r.status_code == 503 and "max_groups=4" in r.text and "max_groups=3" in r.text
    wait_until(refused_with_reason, 30, "the replica with other quotas says why it is unready")
    assert other.push("job/team-a-1", "m 1\n").status_code == 503
    assert first.ready_status() == 200


# bcrypt (cost 4) of "pw-a" and "pw-ops": this layer's venv has no bcrypt module.
WEB_CONFIG = """basic_auth_users:
  team-a: "$2b$04$lhNlSc2Jut/qQU5NPpzyaOM/c9efrFjAIynQxoURPnSuZJfx604vC"
  ops: "$2b$04$U1KdnDVrQoa6odrLpbyCy..VrKnVKWa4gOhTLSFYsvsnPgg8E4/9q"
"""


def test_scoped_users_are_refused_by_every_replica(redis, replicas, tmp_path):
    web = config(tmp_path, "web.yml", WEB_CONFIG)
    rules = config(tmp_path, "access.toml", '[[access]]\nuser = "team-a"\npush = { job = "team-a-.*" }\n')
    group = replicas(redis, 2, extra_args=[f"--web.config.file={web}", f"--config.file={rules}",
                                           "--web.unauthenticated-probes"])
    for replica in group:
        replica.session.auth = ("ops", "pw-ops")
    for i, replica in enumerate(group):
        def put(job):
            return requests.put(f"{replica.url}/metrics/job/{job}", data=b"m 1\n", auth=("team-a", "pw-a"), timeout=10)
        assert put(f"team-a-{i}").status_code == 200
        refused = put(f"team-b-{i}")
        assert refused.status_code == 403 and "team-a" in refused.text, refused.text
        assert requests.get(f"{replica.url}/metrics", auth=("team-a", "pw-a"), timeout=10).status_code == 403
    text = converged(group, redis)
    assert 'job="team-a-0"' in text and 'job="team-a-1"' in text and "team-b" not in text
    for replica in group:
        assert 'pushgateway_access_denied_total{action="push",user="team-a"} 1' in replica.scrape()
