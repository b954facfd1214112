#!/usr/bin/env python3
"""Soak test of the gateway: minutes of mixed pushes, deletes and scrapes, with random
malformed bodies mixed in, against one gateway with persistence in a temporary directory.
Not run in CI (it takes ten minutes by default); run it by hand before a release.

How to run (from the repository root):

    source ci/lib/tools.sh
    PY=$(python_venv requests)
    "$PY" ci/bench/soak.py --gateway "$(gateway_release)"          # 10 minutes
    "$PY" ci/bench/soak.py --gateway target/release/pushgateway --minutes 1 --workers 8

Options: --minutes (default 10, fractions allowed), --workers (client threads, default 6),
--groups (groups per worker, default 40), --seed (default: random, printed), --keep (keep
the temporary directory and the gateway log), --gateway (the binary; default
target/release/pushgateway of this checkout).

What it does:
  * starts the gateway on a 127.0.0.1 port the kernel picks (port 0, loopback only) with
    --persistence.file in a new temporary directory and a small --push.max-body-bytes;
  * each worker thread owns its groups (job="soak", worker=<n>, group=<k>), so that the last
    acknowledged state of every group is known exactly: PUT replaces it, POST replaces the
    pushed families, DELETE removes it; a state only counts once the gateway acknowledged
    it (2xx);
  * the mix: valid PUT/POST (some gzip-compressed), DELETE, scrapes of /metrics and
    /api/v1/metrics, and malformed pushes (bad names, values, duplicate series, timestamps,
    repeated TYPE lines, broken gzip, truncated protobuf, bad grouping keys, bodies over the
    size limit), which must all be refused with a 4xx;
  * at the end: one scrape is compared series by series with the tracked states, then the
    gateway is killed with SIGKILL, restarted on the same persistence file, and compared again.

It prints the responses counted by operation and status, exceptions, the gateway's RSS at
the start and at the end, and the comparison. Exit status 0 when nothing acknowledged was
lost or changed, no malformed push was accepted and no 5xx or connection error occurred;
1 otherwise. Every request has a timeout and the run ends by itself after --minutes.
"""

import argparse
import collections
import gzip
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import procnet  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FAMILIES = ("soak_a", "soak_b", "soak_c")
BODY_LIMIT = 256 * 1024
TIMEOUT = 10
LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Gateway:
    def __init__(self, binary, directory):
        self.binary = binary
        self.dir = directory
        self.port = None
        self.log = open(directory / "gateway.log", "ab")
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Starts on a port the kernel picks (port 0; a new one at each start) and waits until ready."""
        address_file = self.dir / "listen-address"
        self.proc = subprocess.Popen(
            [self.binary, *procnet.gateway_listen_args(address_file),
             f"--persistence.file={self.dir / 'pushgateway.db'}", f"--push.max-body-bytes={BODY_LIMIT}",
             "--persistence.interval=30s"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self.port = procnet.wait_for_address_file(self.proc, address_file)[1]
        except RuntimeError as e:
            self.kill()
            raise SystemExit(f"{e}; log: {self.dir / 'gateway.log'}") from None
        deadline = time.monotonic() + 60  # restoring a large state may take a moment
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the gateway exited with {self.proc.returncode}; log: {self.dir / 'gateway.log'}")
            try:
                if requests.get(self.url + "/-/ready", timeout=2, headers={"Connection": "close"}).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.kill()
        raise SystemExit("the gateway did not become ready within 60 s")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.responses = collections.Counter()  # (operation, status)
        self.errors = collections.Counter()  # (operation, exception type)
        self.problems = []  # descriptions of what went wrong

    def count(self, op, status):
        with self.lock:
            self.responses[(op, status)] += 1

    def error(self, op, exc):
        with self.lock:
            self.errors[(op, type(exc).__name__)] += 1
            if len(self.problems) < 50:
                self.problems.append(f"{op}: {exc!r}")

    def problem(self, text):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(text)


def render(families):
    """Text body of {family: {series: value}}."""
    out = []
    for family, series in families.items():
        out.append(f"# TYPE {family} gauge\n")
        for name, value in series.items():
            out.append(f'{family}{{series="{name}"}} {value!r}\n')
    return "".join(out)


class Worker(threading.Thread):
    def __init__(self, index, gateway, groups, rng, deadline, stats):
        super().__init__(daemon=True)
        self.index = index
        self.gw = gateway
        self.rng = rng
        self.deadline = deadline
        self.stats = stats
        self.groups = [f"g{k}" for k in range(groups)]
        # Last acknowledged state: {group: {family: {series: value}}}; absent = no group.
        self.state = {}
        self.unverifiable = set()
        self.session = requests.Session()
        self.session.trust_env = False

    def path(self, group):
        return f"/metrics/job/soak/worker/{self.index}/group/{group}"

    def request(self, op, method, path, fresh=False, **kwargs):
        try:
            if fresh:  # a connection of its own (the server may close it, e.g. after a 413)
                with requests.Session() as session:
                    session.trust_env = False
                    r = session.request(method, self.gw.url + path, timeout=TIMEOUT, **kwargs)
            else:
                r = self.session.request(method, self.gw.url + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as e:
            self.stats.error(op, e)
            # The outcome of a push that got no answer is unknown.
            return None
        self.stats.count(op, r.status_code)
        if r.status_code >= 500:
            self.stats.problem(f"{op} {method} {path}: {r.status_code} {r.text[:200]!r}")
        return r

    def random_families(self):
        rng = self.rng
        families = {}
        for family in rng.sample(FAMILIES, rng.randint(1, len(FAMILIES))):
            families[family] = {f"s{i}": round(rng.uniform(-1e6, 1e6), rng.randint(0, 6))
                                for i in rng.sample(range(200), rng.randint(1, 30))}
        return families

    def push_valid(self):
        group = self.rng.choice(self.groups)
        families = self.random_families()
        method = self.rng.choice(("PUT", "POST"))
        body = render(families).encode()
        headers = {}
        if self.rng.random() < 0.3:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        r = self.request("push-" + method.lower(), method, self.path(group), data=body, headers=headers)
        if r is None:
            self.unverifiable.add(group)  # may or may not have been applied
            return
        if r.status_code in (200, 202):
            if method == "PUT" or group not in self.state:
                self.state[group] = families
            else:
                self.state[group].update(families)
        else:
            self.stats.problem(f"valid push refused: {method} {self.path(group)} {r.status_code} {r.text[:200]!r}")

    def delete(self):
        group = self.rng.choice(self.groups)
        r = self.request("delete", "DELETE", self.path(group))
        if r is None:
            self.unverifiable.add(group)
        elif r.status_code == 202:
            self.state.pop(group, None)

    def scrape(self):
        if self.rng.random() < 0.8:
            r = self.request("scrape", "GET", "/metrics")
        else:
            r = self.request("api-metrics", "GET", "/api/v1/metrics")
        if r is not None and r.status_code != 200:
            self.stats.problem(f"scrape: {r.status_code} {r.text[:200]!r}")

    def push_malformed(self):
        rng = self.rng
        group = rng.choice(self.groups)
        path = self.path(group)
        valid = render(self.random_families())
        lines = valid.splitlines(keepends=True)
        kind = rng.choice(("bad-name", "bad-value", "duplicate", "timestamp", "type-twice", "garbage",
                           "bad-gzip", "bad-protobuf", "bad-grouping", "too-large"))
        headers = {}
        fresh = False
        if kind == "bad-name":
            lines.insert(rng.randint(0, len(lines)), "0bad_name 1\n")
            body = "".join(lines).encode()
        elif kind == "bad-value":
            lines.insert(rng.randint(0, len(lines)), 'soak_a{series="x"} not_a_number\n')
            body = "".join(lines).encode()
        elif kind == "duplicate":
            body = (valid + 'soak_c{series="dup"} 1\nsoak_c{series="dup"} 2\n').encode()
        elif kind == "timestamp":
            body = (valid + f'soak_b{{series="ts"}} 1 {int(time.time() * 1000)}\n').encode()
        elif kind == "type-twice":
            body = (valid + "# TYPE soak_twice gauge\n# TYPE soak_twice gauge\nsoak_twice 1\n").encode()
        elif kind == "garbage":
            noise = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400)))
            body = valid.encode() + b"{{" + noise + b"\n"
        elif kind == "bad-gzip":
            body = gzip.compress(valid.encode())[: rng.randint(1, 12)] + bytes(rng.getrandbits(8) for _ in range(20))
            headers["Content-Encoding"] = "gzip"
        elif kind == "bad-protobuf":
            body = b"\xff\x7f" + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 50)))
            headers["Content-Type"] = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        elif kind == "bad-grouping":
            path = path + "/0bad_label/x"
            body = valid.encode()
        else:
            body = ("# " + "x" * BODY_LIMIT + "\n" + valid).encode()
            fresh = True
        method = rng.choice(("PUT", "POST"))
        r = self.request("malformed", method, path, data=body, headers=headers, fresh=fresh)
        if r is None:
            return
        if r.status_code < 400 or r.status_code >= 500:
            self.stats.problem(f"malformed push ({kind}) got {r.status_code}: {method} {path} body={body[:120]!r}")
            self.unverifiable.add(group)

    def run(self):
        actions = [(self.push_valid, 45), (self.delete, 8), (self.scrape, 15), (self.push_malformed, 32)]
        funcs = [a for a, _ in actions]
        weights = [w for _, w in actions]
        try:
            while time.monotonic() < self.deadline:
                self.rng.choices(funcs, weights)[0]()
        except Exception as e:  # a bug in the soak itself: report, do not hang
            self.stats.problem(f"worker {self.index} crashed: {e!r}")
        finally:
            self.session.close()


def scraped_state(gateway):
    """{(worker, group): {family: {series: value}}} of the soak families in a scrape."""
    r = requests.get(gateway.url + "/metrics", timeout=60, headers={"Connection": "close"})
    r.raise_for_status()
    state = collections.defaultdict(lambda: collections.defaultdict(dict))
    for line in r.text.splitlines():
        if not line.startswith(FAMILIES):
            continue
        name, rest = line.split("{", 1)
        labels_text, value = rest.rsplit("} ", 1)
        labels = dict(LABEL_RE.findall(labels_text))
        state[(labels["worker"], labels["group"])][name][labels["series"]] = float(value)
    return state


def compare(workers, scraped, when):
    """Problems (strings) where the scrape differs from the acknowledged states."""
    problems = []
    checked = 0
    for w in workers:
        for group in w.groups:
            if group in w.unverifiable:
                continue
            checked += 1
            expected = w.state.get(group)
            got = scraped.get((str(w.index), group))
            expected_norm = {f: {s: float(v) for s, v in series.items()} for f, series in (expected or {}).items()}
            got_norm = {f: dict(series) for f, series in (got or {}).items()}
            if expected_norm != got_norm:
                problems.append(f"{when}: worker {w.index} group {group}: expected {summary(expected_norm)}, "
                                f"scraped {summary(got_norm)}")
    return checked, problems


def summary(families):
    if not families:
        return "no group"
    return "{" + ", ".join(f"{f}: {len(s)} series" for f, s in sorted(families.items())) + "}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--groups", type=int, default=40, help="groups per worker")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--gateway", default=str(REPO / "target" / "release" / "pushgateway"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes must be in (0, 1440]")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    binary = os.path.abspath(args.gateway)
    if not os.access(binary, os.X_OK):
        parser.error(f"{binary} is not an executable; build it with: source ci/lib/tools.sh; gateway_release")
    directory = Path(tempfile.mkdtemp(prefix="pushgateway-soak-"))
    print(f"soak: {args.minutes} min, {args.workers} workers x {args.groups} groups, seed {seed}, dir {directory}")
    gateway = Gateway(binary, directory)
    stats = Stats()
    failed = False
    try:
        gateway.start()
        rss_start = rss_kib(gateway.proc.pid)
        deadline = time.monotonic() + args.minutes * 60
        workers = [Worker(i, gateway, args.groups, random.Random(seed * 1000 + i), deadline, stats)
                   for i in range(args.workers)]
        started = time.monotonic()
        for w in workers:
            w.start()
        next_report = started + 60
        while any(w.is_alive() for w in workers):
            time.sleep(1)
            if time.monotonic() >= next_report:
                next_report += 60
                total = sum(stats.responses.values())
                print(f"  {time.monotonic() - started:6.0f}s: {total} responses, "
                      f"{sum(stats.errors.values())} errors, RSS {rss_kib(gateway.proc.pid)} KiB", flush=True)
            if time.monotonic() > deadline + 5 * TIMEOUT:
                stats.problem("workers did not stop in time")
                break
        rss_end = rss_kib(gateway.proc.pid)

        print("\nresponses by operation and status:")
        for (op, status), n in sorted(stats.responses.items()):
            print(f"  {op:12} {status}: {n}")
        print("errors (no response):" if stats.errors else "errors (no response): none")
        for (op, kind), n in sorted(stats.errors.items()):
            print(f"  {op:12} {kind}: {n}")
        print(f"RSS: start {rss_start} KiB, end {rss_end} KiB")

        live = scraped_state(gateway)
        checked, problems = compare(workers, live, "live")
        gateway.kill()
        gateway.start()
        restarted = scraped_state(gateway)
        _, problems_restart = compare(workers, restarted, "after SIGKILL and restart")
        unverifiable = sum(len(w.unverifiable) for w in workers)
        stored = sum(1 for w in workers for g in w.groups if g in w.state and g not in w.unverifiable)
        print(f"groups compared: {checked} ({stored} stored, {checked - stored} deleted or never pushed); "
              f"unverifiable (no answer or a malformed push accepted): {unverifiable}")
        all_problems = stats.problems + problems + problems_restart
        if stats.errors:
            all_problems.append(f"{sum(stats.errors.values())} requests got no response")
        if all_problems:
            failed = True
            print(f"\nFAILED: {len(all_problems)} problem(s); first ones:")
            for p in all_problems[:30]:
                print("  " + p)
        else:
            print("\nOK: every acknowledged state was scraped as acknowledged, live and after SIGKILL + restart")
    finally:
        gateway.stop()
        gateway.log.close()
        if args.keep or failed:
            print(f"kept {directory} (gateway.log, persistence files)")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
