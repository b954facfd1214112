"""Groups by matcher and TTL per push, replicated (issue #20 points 1-2): a matcher delete is
one stream entry that removes the same groups on every replica, and a push's
Pushgateway-TTL reaches every replica, survives a restart from Redis's snapshot and expires
the group everywhere."""

from conftest import converged, wait_until


def groups(replica, query=""):
    r = replica.req("GET", "/api/v1/groups" + query)
    assert r.status_code == 200, (r.status_code, r.text)
    return [g["labels"] for g in r.json()["data"]]


def expiries(replica):
    r = replica.req("GET", "/api/v1/metrics")
    assert r.status_code == 200, (r.status_code, r.text)
    return {g["labels"]["job"]: g.get("expires_at") for g in r.json()["data"]}


def test_a_matcher_delete_is_one_entry_applied_alike_everywhere(redis, replicas):
    group = replicas(redis, 3)
    for i in range(30):
        assert group[i % 3].push(f"job/batch/instance/w{i}", f"m {i}\n").status_code == 200
        assert group[i % 3].push(f"job/keep/instance/w{i}", f"m {i}\n").status_code == 200
    converged(group, redis)
    head = redis.head()
    params = {"match[]": ['{job="batch",instance=~"w1.*"}', '{job="batch",instance="w2"}']}
    dry = group[1].req("DELETE", "/api/v1/groups", params={**params, "dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert dry.json()["data"]["matched"] == 12
    assert redis.head() == head, "a dry run appends nothing"
    r = group[1].req("DELETE", "/api/v1/groups", params=params)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["deleted"] == 12, data
    assert data["groups"] == dry.json()["data"]["groups"]
    assert redis.head() == head + 1, "the whole delete is one stream entry"
    text = converged(group, redis)
    assert 'job="batch"' in text
    listings = [groups(r) for r in group]
    assert listings[0] == listings[1] == listings[2]
    assert len(listings[0]) == 48
    assert not any(g["job"] == "batch" and (g["instance"].startswith("w1") or g["instance"] == "w2")
                   for g in listings[0])
    # Refusals happen before the stream: nothing appended.
    for bad in ["{}", '{job=~".*"}', '{job=~"("}']:
        assert group[0].req("DELETE", "/api/v1/groups", params={"match[]": bad}).status_code == 400
    assert redis.head() == head + 1


def test_ttls_reach_every_replica_survive_a_restart_and_expire_everywhere(redis, replicas):
    group = replicas(redis, 2, extra_args=["--storage.redis.snapshot-interval=1s"])
    r = group[0].req("PUT", "/metrics/job/long", data=b"m 1\n", headers={"Pushgateway-TTL": "2h"})
    assert r.status_code == 200, r.text
    r = group[1].req("PUT", "/metrics/job/brief", data=b"m 2\n", headers={"Pushgateway-TTL": "1ms"})
    assert r.status_code == 200, r.text
    assert group[1].push("job/plain", "m 3\n").status_code == 200
    r = group[0].req("PUT", "/metrics/job/bad", data=b"m 4\n", headers={"Pushgateway-TTL": "soon"})
    assert r.status_code == 400 and "Pushgateway-TTL" in r.text, r.text
    # No expiry rules at all: only the pushed TTL makes the leader sweep.
    wait_until(lambda: all('job="brief"' not in r.pushed() for r in group), 60,
               "the 1ms group expires on every replica")
    converged(group, redis)
    seen = [expiries(r) for r in group]
    assert seen[0] == seen[1], seen
    assert seen[0]["long"] is not None and seen[0]["plain"] is None, seen[0]
    # A new replica after a snapshot (interval 1s) loads the TTL from it.
    head = redis.head()
    wait_until(lambda: _snapshot_position(group[0]) >= head, 60, "a snapshot of the whole stream in Redis")
    (late,) = replicas(redis, 1)
    converged([*group, late], redis)
    assert expiries(late) == seen[0]
    group[0].kill()
    group[0].start()
    converged(group, redis)
    assert expiries(group[0]) == seen[0]


def _snapshot_position(replica):
    for line in replica.scrape().splitlines():
        if line.startswith("pushgateway_replication_snapshot_position "):
            return float(line.split(" ")[1])
    return 0
