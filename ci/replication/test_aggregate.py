"""Aggregating pushes on Redis (issue 24): every increment is one stream entry each replica
adds in the same order, an Idempotency-Key reaches the same verdict on every replica, also
on one that started from a snapshot or was killed and restarted mid-stream."""

import threading

from conftest import converged, metric_value, wait_until

BODY = "# TYPE invocations_total counter\ninvocations_total 1\n# TYPE last gauge\nlast {n}\n"


def aggregate(replica, key, n, group="job/lambda"):
    return replica.req("POST", "/aggregate/metrics/" + group, data=BODY.format(n=n).encode(),
                       headers={"Idempotency-Key": key})


def total(replica, group='job="lambda"'):
    return metric_value(replica.scrape(), f'invocations_total{{instance="",{group}}}')


def test_two_replicas_add_the_same_sums_and_count_retries_once(redis, replicas):
    first, second = replicas(redis, 2)
    workers, pushes = 4, 100
    errors = []

    def work(w):
        for i in range(pushes):
            key = f"w{w}-{i}"
            # Sent to one replica; every fifth is retried through the other.
            targets = [first, second] if i % 5 == 0 else [(first, second)[(w + i) % 2]]
            for replica in targets:
                r = aggregate(replica, key, i)
                if r.status_code != 200:
                    errors.append((key, r.status_code, r.text))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    # A replica killed and restarted mid-stream catches up to the same sums.
    (third,) = replicas(redis, 1)
    third.kill()
    for t in threads:
        t.join()
    assert errors == []
    third.start()
    text = converged([first, second, third], redis)
    assert f'invocations_total{{instance="",job="lambda"}} {workers * pushes}' in text, text
    for replica in (first, second, third):
        assert total(replica) == workers * pushes


def test_keys_survive_the_snapshot_a_new_replica_starts_from(redis, replicas):
    first, second = replicas(redis, 2, extra_args=["--storage.redis.snapshot-interval=1s"])
    for i in range(20):
        assert aggregate((first, second)[i % 2], f"k{i}", i).status_code == 200
    # Enough entries after the keys for the stream to be trimmed past them.
    for i in range(60):
        assert first.push(f"job/filler{i % 10}", f"filler {i}\n").status_code == 200
    head = redis.head()
    wait_until(lambda: metric_value(first.scrape(), "pushgateway_replication_snapshot_position") >= head,
               60, "the leader snapshots the whole stream")
    # The next snapshot trims the stream below this one.
    for i in range(5):
        assert first.push(f"job/late{i}", "late 1\n").status_code == 200
    wait_until(lambda: int(redis.cli("XLEN", "{pushgateway}:changes")) < 40, 60, "the stream is trimmed")
    (late,) = replicas(redis, 1)
    assert "loaded the snapshot from Redis" in late.log_text()
    # Retries of keys the new replica knows only from the snapshot change nothing anywhere.
    for i in range(20):
        assert aggregate(late, f"k{i}", 100).status_code == 200
    assert aggregate(late, "new", 7).status_code == 200
    converged([first, second, late], redis)
    for replica in (first, second, late):
        assert total(replica) == 21
        assert metric_value(replica.scrape(), 'last{instance="",job="lambda"}') == 7


def test_what_cannot_be_added_is_refused_alike(redis, replicas):
    first, second = replicas(redis, 2)
    hist = '# TYPE d histogram\nd_bucket{{le="{le}"}} 1\nd_bucket{{le="+Inf"}} 1\nd_sum 1\nd_count 1\n'
    assert first.req("PUT", "/aggregate/metrics/job/h", data=hist.format(le="1").encode()).status_code == 200
    refused = second.req("PUT", "/aggregate/metrics/job/h", data=hist.format(le="2").encode())
    assert refused.status_code == 400 and "bucket bounds" in refused.text, refused.text
    assert second.req("PUT", "/aggregate/metrics/job/h", data=hist.format(le="1").encode()).status_code == 200
    text = converged([first, second], redis)
    assert 'd_count{instance="",job="h"} 2' in text, text
