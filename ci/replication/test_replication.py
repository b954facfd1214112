"""Replicated state on Redis: replicas that act as one gateway (issue 5).

Every test runs a real redis-server (appendfsync always) and gateway replicas on loopback.
"""

import threading
import time

import requests

from conftest import (LEASE_TAKEOVER_SECONDS, converged, metric_value, pushed_text,
                      wait_until)
from load import Load, parse_samples


def race(replicas, rounds):
    """Pushes the same metric name with two types to two groups at once through two
    replicas; returns [(name, winner_type, {type: status})]."""
    results = []
    for r in range(rounds):
        name = f"race_{r}"
        barrier = threading.Barrier(2)
        statuses = {}

        def push(replica, metric_type):
            barrier.wait()
            response = replica.push(f"job/race_{metric_type}_{r}",
                                    f"# TYPE {name} {metric_type}\n{name} 1\n")
            statuses[metric_type] = (response.status_code, response.text)

        threads = [threading.Thread(target=push, args=(replicas[0], "counter")),
                   threading.Thread(target=push, args=(replicas[1 % len(replicas)], "gauge"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results.append((name, statuses))
    return results


def check_races(results, scrape):
    samples = parse_samples(scrape)
    for name, statuses in results:
        codes = sorted(code for code, _ in statuses.values())
        assert codes == [200, 400], f"{name}: exactly one of two conflicting pushes wins: {statuses}"
        winner = next(t for t, (code, _) in statuses.items() if code == 200)
        loser = next(t for t, (code, _) in statuses.items() if code == 400)
        assert "type" in statuses[loser][1].lower(), statuses[loser][1]
        assert f"# TYPE {name} {winner}" in scrape, f"{name} is stored with the winner's type {winner}"
        loser_group = frozenset({("instance", ""), ("job", f"race_{loser}_{name[5:]}")})
        failure = samples.get(("push_failure_time_seconds", loser_group))
        assert failure is not None and float(failure) > 0, f"{name}: the loser's failure time is set"
        assert (name, loser_group) not in samples


def test_replicas_serve_identical_state_under_concurrent_load(redis, replicas):
    group = replicas(redis, 3)
    load = Load(group, workers=6, slots=6).start()
    results = race(group, 15)
    load.wait_acknowledged(201)
    load.finish()
    assert load.failed == 0, (load.statuses, load.failure_reasons)
    assert load.acknowledged > 200, load.statuses
    text = converged(group, redis)
    scrape = group[0].scrape()
    assert pushed_text(scrape) == text
    assert load.check(scrape) == 36
    check_races(results, scrape)


def test_the_entry_verdict_is_the_answer_of_the_replica_that_received_it(redis, replicas):
    first, second = replicas(redis, 2)
    assert first.push("job/a", "# TYPE shared counter\nshared 1\n").status_code == 200
    # Through the other replica: the same check, against the same state.
    response = second.push("job/b", "# TYPE shared gauge\nshared 1\n")
    assert response.status_code == 400
    assert "shared" in response.text and "COUNTER" in response.text.upper()
    assert second.push("job/a", "shared 1\n", method="DELETE").status_code == 202
    assert second.push("job/b", "# TYPE shared gauge\nshared 2\n").status_code == 200
    text = converged([first, second], redis)
    assert 'shared{instance="",job="b"} 2' in text
    assert 'job="a"' not in text.replace('push_failure_time_seconds', '')


def test_a_killed_replica_restarts_and_catches_up(redis, replicas):
    group = replicas(redis, 3, extra_args=["--storage.redis.snapshot-interval=2s"])
    load = Load(group[:2], workers=4, slots=5, seed=2).start()
    time.sleep(1.5)
    group[2].kill()
    time.sleep(3)
    group[2].start(wait=False)
    group[2].wait_ready()
    load.wait_acknowledged(load.acknowledged + 20)  # more load after the catch-up
    load.finish()
    assert load.failed == 0, (load.statuses, load.failure_reasons)
    converged(group, redis)
    assert load.check(group[2].scrape()) == 20


def test_a_replica_killed_mid_load_loses_nothing_acknowledged(redis, replicas):
    group = replicas(redis, 3)
    load = Load(group, workers=4, slots=5, seed=3).start()
    time.sleep(1.5)
    group[1].kill()  # its in-flight pushes fail or succeed; either is recorded
    time.sleep(1.5)
    group[1].start()
    load.wait_acknowledged(load.acknowledged + 50)  # more load after the restart
    load.finish()
    assert load.acknowledged > 50
    converged(group, redis)
    for replica in group:
        load.check(replica.scrape())


def test_redis_restart_mid_load(redis, replicas):
    group = replicas(redis, 3)
    load = Load(group, workers=4, slots=5, seed=4).start()
    time.sleep(1.5)
    redis.kill()
    time.sleep(2)
    # Redis is down: pushes get 503 with the reason, scrapes keep serving the last state.
    response = group[1].push("job/outage", "x 1\n")
    assert response.status_code == 503, response.text
    assert "redis" in response.text.lower()
    during = [r.scrape() for r in group]
    assert all(pushed_text(s) for s in during)
    redis.start()
    load.wait_acknowledged(load.acknowledged + 50)  # load goes on after Redis is back
    load.finish()
    statuses = load.statuses
    assert statuses.get(503, 0) > 0, f"some pushes failed during the outage: {statuses}"
    assert load.acknowledged > 50, statuses
    wait_until(lambda: group[2].push("job/after", "x 1\n").status_code == 200, 60,
               "pushes succeed again once Redis is back")
    converged(group, redis)
    scrape = group[0].scrape()
    load.check(scrape)
    assert 'x{instance="",job="after"} 1' in scrape


def test_snapshots_trim_the_stream_and_new_replicas_start_from_them(redis, replicas):
    first, second = replicas(redis, 2, extra_args=["--storage.redis.snapshot-interval=1s"])
    for i in range(300):
        assert (first, second)[i % 2].push(f"job/j{i % 40}", f"m_{i % 7} {i}\n", method="POST").status_code == 200
    head = redis.head()
    wait_until(lambda: metric_value(first.scrape(), "pushgateway_replication_snapshot_position") == head,
               60, "the leader snapshots the whole stream")
    for i in range(5):
        assert first.push(f"job/late{i}", "late 1\n").status_code == 200
    wait_until(lambda: int(redis.cli("XLEN", "{pushgateway}:changes")) < 50, 60, "the stream is trimmed")
    (late,) = replicas(redis, 1)
    text = converged([first, second, late], redis)
    assert 'late{instance="",job="late4"} 1' in text
    assert "loaded the snapshot from Redis" in late.log_text()


def test_killing_the_leader_while_it_writes_snapshots(redis, replicas):
    group = replicas(redis, 3, extra_args=["--storage.redis.snapshot-interval=1s"])
    # A store large enough that each snapshot takes a moment to encode and upload.
    body = "".join(f'big{{shard="{s}"}} {s}\n' for s in range(3000))
    for j in range(10):
        assert group[j % 3].push(f"job/big{j}", body).status_code == 200
    load = Load(group, workers=3, slots=4, seed=5).start()
    for _ in range(3):
        leader = wait_until(lambda: next((r for r in group if r.proc.poll() is None
                                          and metric_value(r.scrape(), "pushgateway_replication_leader") == 1), None),
                            LEASE_TAKEOVER_SECONDS, "a leader")
        time.sleep(1.2)  # into its next snapshot
        leader.kill()
        leader.start()
    load.finish()
    converged(group, redis)
    for replica in group:
        load.check(replica.scrape())
        assert 'big{instance="",job="big9",shard="2999"} 2999' in replica.scrape()


def test_ready_only_once_caught_up(redis, replicas):
    (early,) = replicas(redis, 1)
    assert early.push("job/a", "a 1\n").status_code == 200
    redis.kill()
    (late,) = replicas(redis, 1, wait=False)
    time.sleep(2)
    assert late.ready_status() == 503, "not ready while it cannot read the stream"
    assert early.ready_status() == 200, "a replica that caught up stays ready through an outage"
    redis.start()
    late.wait_ready()
    assert 'a{instance="",job="a"} 1' in converged([early, late], redis)


def test_only_the_leader_exposes_pushed_metrics_when_asked(redis, replicas):
    group = replicas(redis, 3, extra_args=["--storage.redis.expose=leader"])
    assert group[0].push("job/a", "a 1\n").status_code == 200

    def exposing():
        live = [r for r in group if r.proc.poll() is None]
        return [r for r in live if 'a{instance="",job="a"} 1' in r.scrape()]

    (leader,) = wait_until(lambda: len(exposing()) == 1 and exposing(), 60, "exactly one replica exposes")
    # Every replica still answers the JSON API and the UI with the whole state.
    for replica in group:
        assert '"job"' in replica.req("GET", "/api/v1/metrics").text
    leader.kill()
    (successor,) = wait_until(lambda: len(exposing()) == 1 and exposing(), LEASE_TAKEOVER_SECONDS,
                              "another replica takes over")
    assert successor is not leader


def test_password_from_the_environment(tmp_path, replicas):
    from conftest import Redis
    server = Redis(tmp_path, password="s3cret pass")
    try:
        (good,) = replicas(server, 1, env={"PUSHGATEWAY_REDIS_PASSWORD": "s3cret pass"})
        assert good.push("job/a", "a 1\n").status_code == 200
        (bad,) = replicas(server, 1, env={"PUSHGATEWAY_REDIS_PASSWORD": "wrong"}, wait=False)
        time.sleep(2)
        response = bad.push("job/b", "b 1\n")
        assert response.status_code == 503, response.text
        assert "s3cret" not in bad.req("GET", "/api/v1/status").text
    finally:
        server.kill()


def test_replication_metrics(redis, replicas):
    group = replicas(redis, 2, extra_args=["--storage.redis.snapshot-interval=1s"])
    for i in range(10):
        assert group[i % 2].push(f"job/j{i}", "m 1\n").status_code == 200
    converged(group, redis)
    wait_until(lambda: metric_value(group[0].scrape(), "pushgateway_replication_snapshot_position") == 10,
               60, "snapshot position reported")
    scrapes = [r.scrape() for r in group]
    assert sorted(metric_value(s, "pushgateway_replication_leader") for s in scrapes) == [0, 1]
    for scrape in scrapes:
        assert metric_value(scrape, "pushgateway_replication_lag_entries") == 0
        assert metric_value(scrape, "pushgateway_replication_applied_position") == 10
        assert metric_value(scrape, "pushgateway_replication_apply_errors_total") == 0
        assert metric_value(scrape, "pushgateway_redis_roundtrip_seconds_count") > 0
        assert metric_value(scrape, "pushgateway_replication_snapshot_age_seconds") < 60


def test_a_local_copy_serves_the_last_state_while_redis_is_down(redis, replicas, tmp_path):
    copy = tmp_path / "replica.copy"
    (replica,) = replicas(redis, 1, extra_args=[f"--persistence.file={copy}", "--persistence.interval=1s"])
    assert replica.push("job/kept", "kept 1\n").status_code == 200
    wait_until(copy.exists, 60, "the local copy is written")
    time.sleep(1.5)
    redis.kill()
    replica.kill()
    replica.start(wait=False)
    wait_until(lambda: replica.ready_status() == 503, 60, "up but not ready without Redis")
    assert 'kept{instance="",job="kept"} 1' in replica.scrape(), "the last state is served at once"
    redis.start()
    replica.wait_ready()
    assert replica.push("job/new", "new 1\n").status_code == 200
    text = converged([replica], redis)
    assert 'kept{instance="",job="kept"} 1' in text and 'new{instance="",job="new"} 1' in text


def test_replicas_start_over_when_redis_lost_its_data(redis, replicas):
    group = replicas(redis, 2)
    for i in range(5):
        assert group[i % 2].push(f"job/old{i}", "old 1\n").status_code == 200
    converged(group, redis)
    redis.cli("FLUSHALL")
    # Redis is the source of truth: what it no longer has is dropped everywhere.
    wait_until(lambda: all("old" not in r.pushed() for r in group), 60, "replicas drop what Redis lost")
    assert group[1].push("job/fresh", "fresh 1\n").status_code == 200
    text = converged(group, redis)
    assert 'fresh{instance="",job="fresh"} 1' in text
    assert all(metric_value(r.scrape(), "pushgateway_replication_apply_errors_total") >= 1 for r in group)


def test_a_clean_stop_writes_the_local_copy(redis, replicas, tmp_path):
    copy = tmp_path / "replica.copy"
    # An interval far longer than the test: only the stop can write the copy.
    (replica,) = replicas(redis, 1, extra_args=[f"--persistence.file={copy}", "--persistence.interval=1h"])
    assert replica.push("job/last", "last 1\n").status_code == 200
    replica.proc.terminate()
    replica.proc.wait(timeout=20)
    assert copy.exists(), "SIGTERM wrote the local copy"
    redis.kill()
    replica.start(wait=False)
    wait_until(lambda: replica.ready_status() == 503, 60, "up without Redis")
    assert 'last{instance="",job="last"} 1' in replica.scrape()


def test_groups_expire_once_for_all_replicas_and_an_idle_stream_stays_idle(redis, replicas, tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text('[expiry]\n[[expiry.rules]]\nlabels = { job = "short" }\nttl = "2s"\n')
    group = replicas(redis, 2, extra_args=[f"--config.file={config}"])
    assert group[0].push("job/short", "s 1\n").status_code == 200
    assert group[1].push("job/long", "l 1\n").status_code == 200
    wait_until(lambda: all('job="short"' not in r.pushed() for r in group), 60, "the short group expires everywhere")
    text = converged(group, redis)
    assert 'l{instance="",job="long"} 1' in text
    for replica in group:
        assert metric_value(replica.scrape(), "pushgateway_expired_groups_total") == 1
    # Nothing is due any more: the leader sends no sweeps, the stream does not grow.
    head = redis.head()
    time.sleep(3)
    assert redis.head() == head


def test_snapshot_age_counts_from_the_start_while_there_is_none(redis, replicas):
    (replica,) = replicas(redis, 1, extra_args=["--storage.redis.snapshot-interval=1h"])
    assert replica.push("job/a", "a 1\n").status_code == 200
    wait_until(lambda: metric_value(replica.scrape(), "pushgateway_replication_snapshot_age_seconds") >= 2,
               60, "the age grows without a snapshot")
    assert metric_value(replica.scrape(), "pushgateway_replication_snapshot_position") == 0


def test_replicas_notice_a_redis_that_came_back_empty_and_took_new_pushes(redis, replicas):
    import shutil
    group = replicas(redis, 2)
    for i in range(5):
        assert group[i % 2].push(f"job/old{i}", "old 1\n").status_code == 200
    converged(group, redis)
    redis.kill()
    for leftover in redis.dir.glob("appendonly*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    redis.start()
    # Concurrent new pushes take the numbers the replicas applied before, faster than the
    # replicas poll; every one must land (a PUT that got 503 is sent again).
    def push(i):
        wait_until(lambda: group[i % 2].push(f"job/new{i}", "new 1\n").status_code == 200, 60,
                   f"push new{i} accepted")
    threads = [threading.Thread(target=push, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (fresh,) = replicas(redis, 1)
    text = converged(group + [fresh], redis)
    assert all(f'new{{instance="",job="new{i}"}} 1' in text for i in range(10)), text
    assert "old" not in text


def test_unchecked_stores_restored_from_a_snapshot_scrape_alike(redis, replicas):
    args = ["--push.disable-consistency-check", "--storage.redis.snapshot-interval=1s"]
    (first,) = replicas(redis, 1, extra_args=args)
    assert first.push("job/a", "# TYPE x counter\nx 1\n").status_code == 202
    assert first.push("job/b", "# TYPE x gauge\nx 2\n").status_code == 202
    head = redis.head()
    wait_until(lambda: metric_value(first.scrape(), "pushgateway_replication_snapshot_position") == head,
               60, "snapshot written")
    (late,) = replicas(redis, 1, extra_args=args)
    assert "loaded the snapshot from Redis" in late.log_text()
    converged([first, late], redis)


def test_keys_of_an_older_version_move_under_the_hash_tag(redis, replicas):
    """Versions before the hash tag used `pushgateway:*`: a replica of this version moves
    that history under `{pushgateway}:*`, and an old replica still running can no longer
    append (its INCR finds a non-number) instead of writing where nobody reads."""
    (replica,) = replicas(redis, 1, extra_args=["--storage.redis.snapshot-interval=1s"])
    for i in range(3):
        assert replica.push(f"job/old{i}", "old 1\n").status_code == 200
    wait_until(lambda: redis.cli("HGET", "{pushgateway}:snapshot", "seq") == "3", 15, "a snapshot")
    assert replica.push("job/old3", "old 1\n").status_code == 200
    replica.kill()
    # The layout of the older version.
    for name in ("seq", "changes", "snapshot"):
        assert redis.cli("RENAME", f"{{pushgateway}}:{name}", f"pushgateway:{name}") == "OK"
    redis.cli("DEL", "{pushgateway}:leader")
    replica.start()
    assert replica.push("job/new", "new 1\n").status_code == 200
    text = converged([replica], redis)
    assert all(f'old{{instance="",job="old{i}"}} 1' in text for i in range(4)), text
    assert redis.head() == 5
    assert redis.cli("EXISTS", "pushgateway:changes", "pushgateway:snapshot") == "0"
    assert "not an integer" in redis.cli("INCR", "pushgateway:seq")
    (fresh,) = replicas(redis, 1)
    assert converged([replica, fresh], redis) == text


def test_a_frozen_replica_never_mixes_a_flushed_history_with_the_new_one(redis, replicas):
    """FLUSHALL, then more new pushes than the frozen replica had applied: the new entries
    reuse its numbers, and only the epoch tells it that they belong to another history."""
    import signal
    group = replicas(redis, 2)
    for i in range(5):
        assert group[i % 2].push(f"job/old{i}", "old 1\n").status_code == 200
    converged(group, redis)
    epoch = redis.cli("GET", "{pushgateway}:epoch")
    assert epoch, "the first append starts an epoch"
    group[1].proc.send_signal(signal.SIGSTOP)
    try:
        redis.cli("FLUSHALL")
        for i in range(10):
            wait_until(lambda: group[0].push(f"job/new{i}", "new 1\n").status_code == 200, 30,
                       f"push new{i} accepted")
        assert redis.head() == 10
        assert redis.cli("GET", "{pushgateway}:epoch") not in ("", epoch), "a new epoch"
    finally:
        group[1].proc.send_signal(signal.SIGCONT)
    text = converged(group, redis)
    assert all(f'new{{instance="",job="new{i}"}} 1' in text for i in range(10)), text
    assert "old" not in text
    assert metric_value(group[1].scrape(), "pushgateway_replication_apply_errors_total") >= 1


def test_replicas_with_other_check_settings_stay_unready_until_resolved(redis, replicas):
    (first,) = replicas(redis, 1, extra_args=["--storage.max-groups=10"])
    assert first.push("job/a", "a 1\n").status_code == 200
    (other,) = replicas(redis, 1, extra_args=["--storage.max-groups=20"], wait=False)

    def refused_with_reason():
        try:
            r = other.req("GET", "/-/ready")
        except requests.RequestException:
            return False
        return r.status_code == 503 and "storage.max-groups=20" in r.text and "storage.max-groups=10" in r.text
    wait_until(refused_with_reason, 30, "the replica with other settings says why it is unready")
    wait_until(lambda: metric_value(other.scrape(), "pushgateway_replication_settings_mismatch") == 1, 10,
               "the mismatch metric")
    response = other.push("job/b", "b 1\n")
    assert response.status_code == 503 and "storage.max-groups" in response.text, response.text
    assert "differ from those stored in Redis" in other.log_text()
    assert first.ready_status() == 200
    assert metric_value(first.scrape(), "pushgateway_replication_settings_mismatch") == 0
    # The rollout path: the new settings adopted on purpose; the old replica turns unready.
    other.kill()
    other.extra_args.append("--storage.redis.adopt-settings")
    other.start()
    assert other.push("job/b", "b 1\n").status_code == 200
    wait_until(lambda: first.ready_status() == 503, 15, "the replica with the old settings turns unready")
    first.kill()
    first.extra_args = ["--storage.max-groups=20"]
    first.start()
    text = converged([first, other], redis)
    assert 'a{instance="",job="a"} 1' in text and 'b{instance="",job="b"} 1' in text


def test_a_reload_that_changes_the_expiry_rules_adopts_them(redis, replicas, tmp_path):
    configs = []
    for i in range(2):
        config = tmp_path / f"gateway{i}.toml"
        config.write_text('[expiry]\ndefault_ttl = "1h"\n')
        configs.append(config)
    group = [replicas(redis, 1, extra_args=[f"--config.file={c}", "--web.enable-lifecycle"])[0]
             for c in configs]
    configs[0].write_text('[expiry]\ndefault_ttl = "2h"\n')
    assert group[0].req("PUT", "/-/reload").status_code == 200
    wait_until(lambda: group[1].ready_status() == 503, 15, "the replica with the old rules turns unready")
    assert group[0].ready_status() == 200
    configs[1].write_text('[expiry]\ndefault_ttl = "2h"\n')
    assert group[1].req("PUT", "/-/reload").status_code == 200
    wait_until(lambda: group[1].ready_status() == 200, 15, "ready again once reloaded alike")
