"""Redis Cluster (issue 18): three `--cluster-enabled yes` nodes on loopback. Every key sits
under one hash tag, so one node serves them all and the multi-key scripts run there; the
gateways are pointed at a node that does not serve that slot and follow the MOVED
redirection, also when the slot moves to another node while they run."""

import subprocess
import threading

import pytest

from conftest import REDIS_CLI, Redis, converged, wait_until
from load import Load

TAG = "{pushgateway}"


class Cluster:
    """Three master nodes (no replicas) made a cluster by `redis-cli --cluster create`."""

    def __init__(self, directory):
        self.nodes = []
        for i in range(3):
            node_dir = directory / f"cluster{i}"
            node_dir.mkdir()
            self.nodes.append(Redis(node_dir, extra_args=["--cluster-enabled", "yes",
                                                          "--cluster-config-file", str(node_dir / "nodes.conf")]))
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run([REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0",
                                  "--cluster-yes"], capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stdout + created.stderr
        wait_until(lambda: all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in self.nodes), 30,
                   "the cluster is up")
        self.slot = int(self.nodes[0].cli("CLUSTER", "KEYSLOT", TAG))

    def owner(self):
        return next(n for n in self.nodes if owns(n, self.slot))

    def others(self):
        owner = self.owner()
        return [n for n in self.nodes if n is not owner]

    def head(self):
        value = self.owner().cli("GET", TAG + ":seq")
        return int(value) if value else 0

    def move_slot(self, target):
        """Moves the keys' slot to `target` the way `redis-cli --cluster reshard` does:
        IMPORTING/MIGRATING, MIGRATE of its keys, then the new owner announced to every node."""
        source = self.begin_move(target)
        while True:
            keys = source.cli("CLUSTER", "GETKEYSINSLOT", str(self.slot), "100").split()
            if not keys:
                break
            self.migrate(source, target, keys)
        self.end_move(source, target)

    def begin_move(self, target):
        """Marks the slot migrating to `target`; returns its owner until the move ends."""
        source = self.owner()
        source_id, target_id = source.cli("CLUSTER", "MYID"), target.cli("CLUSTER", "MYID")
        assert target.cli("CLUSTER", "SETSLOT", str(self.slot), "IMPORTING", source_id) == "OK"
        assert source.cli("CLUSTER", "SETSLOT", str(self.slot), "MIGRATING", target_id) == "OK"
        return source

    @staticmethod
    def migrate(source, target, keys):
        moved = source.cli("MIGRATE", "127.0.0.1", str(target.port), "", "0", "10000", "KEYS", *keys)
        assert moved == "OK", moved

    def end_move(self, source, target):
        target_id = target.cli("CLUSTER", "MYID")
        for node in (target, source, *[n for n in self.nodes if n not in (source, target)]):
            assert node.cli("CLUSTER", "SETSLOT", str(self.slot), "NODE", target_id) == "OK"
        wait_until(lambda: all(owns_by_view(n, self.slot, target_id) for n in self.nodes), 30,
                   "every node knows the slot's new owner")

    def close(self):
        for node in self.nodes:
            node.kill()


def owns(node, slot):
    """Whether `node` serves `slot` (its own line of CLUSTER NODES)."""
    return owns_by_view(node, slot, node.cli("CLUSTER", "MYID"))


def owns_by_view(node, slot, node_id):
    """Whether `node` believes that the node `node_id` serves `slot`."""
    for line in node.cli("CLUSTER", "NODES").splitlines():
        fields = line.split()
        if fields[0] != node_id:
            continue
        for item in fields[8:]:
            low, _, high = item.partition("-")
            if low.isdigit() and int(low) <= slot <= int(high or low):
                return True
    return False


@pytest.fixture
def cluster(tmp_path):
    setup = Cluster(tmp_path)
    yield setup
    setup.close()


def test_gateways_pointed_at_a_node_without_the_slot_follow_moved(cluster, replicas):
    seed = cluster.others()[0]
    assert "MOVED" in seed.cli("GET", TAG + ":seq"), "the seed does not serve the slot"
    group = replicas(seed, 2)
    for i in range(6):
        response = group[i % 2].push(f"job/j{i}", f"m {i}\n")
        assert response.status_code == 200, response.text
    text = converged(group, cluster)
    assert all(f'm{{instance="",job="j{i}"}} {i}' in text for i in range(6)), text
    # Everything went to the slot's owner; the seed holds nothing.
    assert cluster.owner().cli("EXISTS", TAG + ":changes") == "1"
    assert seed.cli("DBSIZE") == "0"
    # Without the tag the scripts' keys would be in several slots.
    assert "CROSSSLOT" in seed.cli("-c", "EVAL", "return redis.call('GET', KEYS[2])", "2",
                                   "pushgateway:seq", "pushgateway:changes"), "untagged keys would not do"


def test_the_slot_moving_under_load_loses_nothing_acknowledged(cluster, replicas):
    group = replicas(cluster.others()[0], 2)
    load = Load(group, workers=4, slots=5, seed=7).start()
    load.wait_acknowledged(30)
    old_owner = cluster.owner()
    new_owner = next(n for n in cluster.others() if n is not old_owner)
    cluster.move_slot(new_owner)
    assert cluster.owner() is new_owner
    load.wait_acknowledged(load.acknowledged + 50)  # pushes go on against the new owner
    load.finish()
    assert load.failed == 0, (load.statuses, load.failure_reasons)
    converged(group, cluster)
    for replica in group:
        load.check(replica.scrape())
    assert old_owner.cli("DBSIZE") == "0", "every key moved with the slot"


def errors_of(node, code):
    """How many `code` errors (TRYAGAIN, ASK, ...) `node` has answered (INFO errorstats)."""
    for line in node.cli("INFO", "errorstats").splitlines():
        if line.startswith(f"errorstat_{code}:count="):
            return int(line.split("=", 1)[1])
    return 0


def test_a_push_mid_migration_waits_for_the_slot_to_move(cluster, replicas):
    """While the slot migrates, the append script's keys are split between two nodes, which
    answer TRYAGAIN: the push waits (within --storage.redis.timeout) and lands on the new
    owner once the move ends."""
    group = replicas(cluster.others()[0], 1, extra_args=["--storage.redis.timeout=60s"])
    gateway = group[0]
    assert gateway.push("job/before", "m 1\n").status_code == 200
    target = cluster.others()[0]
    source = cluster.begin_move(target)
    cluster.migrate(source, target, [TAG + ":seq"])  # the counter moved, the stream not yet
    refused_before = errors_of(source, "TRYAGAIN")
    result = {}
    pushing = threading.Thread(target=lambda: result.update(
        response=gateway.req("PUT", "/metrics/job/during", data=b"m 2\n", timeout=90)))
    pushing.start()
    try:
        wait_until(lambda: errors_of(source, "TRYAGAIN") > refused_before, 30,
                   "the append meets the split keys (TRYAGAIN)")
        assert pushing.is_alive(), "the push waits instead of failing"
    finally:
        keys = source.cli("CLUSTER", "GETKEYSINSLOT", str(cluster.slot), "100").split()
        if keys:
            cluster.migrate(source, target, keys)
        cluster.end_move(source, target)
        pushing.join(timeout=120)
    response = result["response"]
    assert response.status_code == 200, response.text
    text = converged(group, cluster)
    assert 'm{instance="",job="during"} 2' in text and 'm{instance="",job="before"} 1' in text
