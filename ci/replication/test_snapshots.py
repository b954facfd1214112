"""Chunked snapshots in Redis (issue 18, point 6): the leader writes a snapshot as a
generation of chunk keys, then the manifest that names them; a new replica reads them one at
a time. A leader killed mid-write leaves the previous snapshot readable, and a snapshot an
older version wrote as one value is still read.

The issue's 10M-series round trip is too slow for this layer on two shared cores; it runs in
the benchmark (ci/bench, kind ours-redis). Here a few hundred thousand series in chunks of a
few KiB make many chunks."""

import os
import signal
import subprocess
import time

from conftest import REDIS_CLI, converged, metric_value, wait_until

MANIFEST = "{pushgateway}:snapshot"
GROUP_SERIES = 1000


def push_store(replicas, groups, value=0):
    """`groups` groups of GROUP_SERIES series each, pushed through the replicas in turn."""
    for g in range(groups):
        body = "".join(f'big{{shard="{s}"}} {s + value}\n' for s in range(GROUP_SERIES))
        response = replicas[g % len(replicas)].push(f"job/big{g}", body)
        assert response.status_code == 200, response.text


MANIFEST_FIELDS = ("seq", "time", "epoch", "generation", "chunks")


def manifest(redis):
    """The manifest's fields that are set, and `data` (the whole snapshot of older versions)
    as 1 when it is there."""
    values = redis.cli("HMGET", MANIFEST, *MANIFEST_FIELDS).split("\n")
    fields = {name: value for name, value in zip(MANIFEST_FIELDS, values) if value}
    if redis.cli("HEXISTS", MANIFEST, "data") == "1":
        fields["data"] = "1"
    return fields


def chunk_key(generation, index):
    return f"{MANIFEST}:{generation}:{index}"


def snapshot_covers_head(replica, redis):
    head = redis.head()
    return metric_value(replica.scrape(), "pushgateway_replication_snapshot_position") == head


def leader_of(group):
    return wait_until(lambda: next((r for r in group if r.proc.poll() is None and
                                    metric_value(r.scrape(), "pushgateway_replication_leader") == 1), None),
                      30, "a leader")


def test_a_large_snapshot_round_trips_in_chunks(redis, replicas):
    chunk_bytes = 65536
    group = replicas(redis, 2, extra_args=["--storage.redis.snapshot-interval=1s",
                                           f"--storage.redis.snapshot-chunk-bytes={chunk_bytes}"])
    push_store(group, 200)  # 200k series
    wait_until(lambda: snapshot_covers_head(group[0], redis), 120, "the leader snapshots the whole stream")
    written = manifest(redis)
    chunks = int(written["chunks"])
    assert chunks > 20, written
    assert "data" not in written, "no single-value snapshot any more"
    sizes = [int(redis.cli("STRLEN", chunk_key(written["generation"], i))) for i in range(chunks)]
    # Whole groups per chunk: at most one group (about 30 KB here) beyond the size asked for.
    assert all(0 < size < 2 * chunk_bytes for size in sizes), sizes
    assert redis.cli("EXISTS", chunk_key(written["generation"], chunks)) == "0"
    # A later snapshot trims the stream below this one and retires its chunks.
    assert group[1].push("job/late", "late 1\n").status_code == 200
    wait_until(lambda: manifest(redis).get("generation") != written["generation"], 60, "a newer snapshot")
    wait_until(lambda: int(redis.cli("XLEN", "{pushgateway}:changes")) < 5, 60, "the stream is trimmed")
    assert 0 < int(redis.cli("PTTL", chunk_key(written["generation"], 0))) <= 300_000, \
        "the previous generation expires after a grace period"
    assert int(redis.cli("PTTL", chunk_key(manifest(redis)["generation"], 0))) == -1, "the new one stays"
    (fresh,) = replicas(redis, 1)
    assert "loaded the snapshot from Redis" in fresh.log_text()
    text = converged([*group, fresh], redis)
    assert 'big{instance="",job="big199",shard="999"} 999' in text
    assert 'late{instance="",job="late"} 1' in text


def test_killing_the_leader_mid_snapshot_write_leaves_the_previous_snapshot_readable(redis, replicas):
    group = replicas(redis, 2, extra_args=["--storage.redis.snapshot-interval=1s",
                                           "--storage.redis.snapshot-chunk-bytes=4096"])
    push_store(group, 100)  # 100k series: hundreds of chunks
    wait_until(lambda: snapshot_covers_head(group[0], redis), 120, "a first complete snapshot")
    for attempt in range(5):
        before = manifest(redis)
        leader = leader_of(group)
        monitor = subprocess.Popen([REDIS_CLI, "-p", str(redis.port), "MONITOR"], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            # A change makes the next snapshot due; the kill comes as its third chunk is set.
            assert group[attempt % 2].push(f"job/change{attempt}", "change 1\n").status_code == 200
            wanted = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = monitor.stdout.readline().decode("utf-8", "replace")
                if not line:
                    break
                if '"SET"' in line and f'"{MANIFEST}:' in line:
                    generation, index = line.split(f'"{MANIFEST}:', 1)[1].split('"', 1)[0].split(":")
                    if int(generation) > int(before["generation"]) and int(index) >= 2:
                        leader.proc.send_signal(signal.SIGKILL)
                        wanted = generation
                        break
        finally:
            monitor.kill()
            monitor.wait(timeout=10)
        assert wanted, "the leader wrote no new snapshot"
        leader.proc.wait(timeout=10)
        if manifest(redis)["generation"] == before["generation"]:
            break  # killed mid-write
        leader.start()  # the write finished first: try again
    else:
        raise AssertionError("the leader finished every snapshot before it was killed")
    # Chunks of the unfinished generation are there, unnamed and expiring; the manifest is the old one.
    assert manifest(redis) == before
    assert int(redis.cli("PTTL", chunk_key(wanted, 0))) > 0
    (fresh,) = replicas(redis, 1)
    assert "loaded the snapshot from Redis" in fresh.log_text()
    leader.start()
    text = converged([*group, fresh], redis)
    assert 'big{instance="",job="big99",shard="999"} 999' in text
    assert f'change{{instance="",job="change{attempt}"}} 1' in text


def test_a_snapshot_written_whole_by_an_older_version_is_read(tmp_path, redis, replicas):
    """Versions before the chunks kept the whole snapshot in the manifest's `data` field. The
    local copy of --persistence.file holds the same encoding: it stands in for one."""
    copy = tmp_path / "copy"
    (writer,) = replicas(redis, 1, extra_args=[f"--persistence.file={copy}",
                                               "--storage.redis.snapshot-interval=1h"])
    for i in range(3):
        assert writer.push(f"job/old{i}", f"old {i}\n").status_code == 200
    writer.proc.send_signal(signal.SIGTERM)  # a clean stop writes the local copy
    writer.proc.wait(timeout=30)
    data = copy.read_bytes()
    encoded = data[data.index(b"PGWSNAP\x01"):]
    epoch = redis.cli("GET", "{pushgateway}:epoch")
    redis.cli("DEL", MANIFEST)
    redis.cli("HSET", MANIFEST, "seq", "3", "time", str(time.time()), "epoch", epoch)
    stored = subprocess.run([REDIS_CLI, "-p", str(redis.port), "-x", "HSET", MANIFEST, "data"], input=encoded,
                            capture_output=True, timeout=10)
    assert stored.returncode == 0, stored.stderr
    redis.cli("XTRIM", "{pushgateway}:changes", "MINID", "4-0")  # only the snapshot has them
    assert redis.cli("XLEN", "{pushgateway}:changes") == "0"
    (fresh,) = replicas(redis, 1, extra_args=["--storage.redis.snapshot-interval=1s"])
    assert "loaded the snapshot from Redis" in fresh.log_text()
    text = converged([fresh], redis)
    assert all(f'old{{instance="",job="old{i}"}} {i}' in text for i in range(3)), text
    # Its next snapshot is chunked and drops the old value.
    assert fresh.push("job/new", "new 1\n").status_code == 200
    wait_until(lambda: "generation" in manifest(redis), 60, "a chunked snapshot")
    assert "data" not in manifest(redis)
    os.unlink(copy)
