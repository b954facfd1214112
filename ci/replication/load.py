"""A concurrent push load through several replicas that remembers what was acknowledged.

Each worker thread owns its groups (job=w<worker>, instance=g<slot>) and sends PUT, POST and
DELETE at random to random replicas, one request at a time, so the order of a group's
changes is the worker's order. A group's expected content is known after every
acknowledged request; after a failed one (503, timeout) the change may or may not have been
applied, so the group is unknown until the next acknowledged PUT or DELETE settles it.
"""

import random
import re
import threading
import time

import requests

SAMPLE = re.compile(r'^(\w+)\{(.*)\} (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
FAMILIES = ("load_a", "load_b")
TYPES = {"load_a": "gauge", "load_b": "counter"}


def parse_samples(text):
    """{(name, frozenset(labels)): value} of the sample lines of a text scrape."""
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = frozenset(LABEL.findall(match.group(2)))
            samples[(match.group(1), labels)] = match.group(3)
    return samples


class Load:
    def __init__(self, replicas, workers=4, slots=5, seed=1):
        self.replicas = list(replicas)
        self.workers = workers
        self.slots = slots
        self.seed = seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        # (worker, slot) -> {family: value} (None: group absent); missing key: unknown.
        self.expected = {}
        self.acknowledged = 0
        self.failed = 0
        self.statuses = {}
        self.failure_reasons = []
        self.threads = []

    def start(self):
        for worker in range(self.workers):
            thread = threading.Thread(target=self._run, args=(worker,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def wait_acknowledged(self, count, timeout=120):
        """Lets the load run until `count` requests were acknowledged in all (a loaded machine
        gets there later, not with fewer)."""
        deadline = time.monotonic() + timeout
        while self.acknowledged < count:
            assert time.monotonic() < deadline, (
                f"only {self.acknowledged} of {count} requests acknowledged after {timeout} s: {self.statuses}")
            time.sleep(0.05)

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _run(self, worker):
        rng = random.Random(self.seed * 1000 + worker)
        session = requests.Session()
        session.trust_env = False
        counter = 0
        # What this worker knows of its own groups; None: absent; missing: unknown.
        known = {slot: None for slot in range(self.slots)}
        while not self.stop.is_set():
            counter += 1
            slot = rng.randrange(self.slots)
            replica = rng.choice(self.replicas)
            path = f"/metrics/job/w{worker}/instance/g{slot}"
            op = rng.choice(("PUT", "PUT", "POST", "DELETE"))
            families = {}
            if op != "DELETE":
                for name in rng.sample(FAMILIES, rng.randint(1, 2)):
                    families[name] = str(counter * 10 + FAMILIES.index(name))
            body = "".join(f"# TYPE {n} {TYPES[n]}\n{n} {v}\n" for n, v in families.items())
            try:
                response = session.request(op, replica.url + path, data=body.encode(), timeout=10)
                status = response.status_code
                if status >= 300:
                    self._note_failure(f"{status} {response.text.strip()}")
            except requests.RequestException as e:
                status = None
                self._note_failure(repr(e))
            ok = status in (200, 202)
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if ok:
                    self.acknowledged += 1
                else:
                    self.failed += 1
            if ok:
                if op == "DELETE":
                    known[slot] = None
                elif op == "PUT":
                    known[slot] = dict(families)
                elif slot in known:
                    base = dict(known[slot] or {})
                    base.update(families)
                    known[slot] = base
            else:
                known.pop(slot, None)
            with self.lock:
                for s in range(self.slots):
                    if s in known:
                        self.expected[(worker, s)] = known[s]
                    else:
                        self.expected.pop((worker, s), None)
        session.close()

    def _note_failure(self, reason):
        with self.lock:
            if len(self.failure_reasons) < 20:
                self.failure_reasons.append(reason)

    def check(self, scrape):
        """Asserts that every group whose content is known is stored exactly so."""
        samples = parse_samples(scrape)
        checked = 0
        for (worker, slot), families in self.expected.items():
            group = {("instance", f"g{slot}"), ("job", f"w{worker}")}
            stored = {name: value for (name, labels), value in samples.items()
                      if name in FAMILIES and labels == frozenset(group)}
            if families is None:
                assert not stored, f"group w{worker}/g{slot} was deleted but holds {stored}"
                assert (("push_time_seconds", frozenset(group)) not in samples), \
                    f"group w{worker}/g{slot} was deleted but is still there"
            else:
                assert stored == families, \
                    f"group w{worker}/g{slot}: acknowledged {families}, stored {stored}"
            checked += 1
        return checked
