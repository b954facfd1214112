"""Which TCP ports a process really listens on, and how the test layers start servers on them.

No layer may depend on a port staying free between picking it and using it, so:

- our gateway is started on port 0 with --web.listen-address-file and the file is read back
  (`gateway_listen_args`, `wait_for_address_file`);
- other programs that accept port 0 (the upstream reference, Prometheus) are started on it and
  the port is found in /proc: the sockets of the process (its /proc/<pid>/fd links) matched
  against the LISTEN entries of /proc/net/tcp and tcp6 (`wait_for_listen_port`);
- programs that cannot take port 0 (redis-server turns TCP off on port 0) are started on a
  candidate port and kept only if the listener there belongs to the process that was started
  (`listens_on`); otherwise another candidate is tried (`start_on_candidate_port`), or, for a
  restart on the port its clients know, the same port again (`restart_on_port`).

Layers import it with `sys.path.insert(0, <repo>/ci/lib)`.
"""

import os
import random
import socket
import time

# /proc/net/tcp state of a listening socket.
_TCP_LISTEN = "0A"

# How long a start may take on a loaded machine (CI shares its cores with other jobs).
START_TIMEOUT = 60


def _descendants(pid):
    """`pid` and every process below it (a shell or make may stand between us and the server)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
    return found


def _socket_inodes(pid):
    inodes = set()
    for p in _descendants(pid):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    return inodes


def _listening_inodes():
    """inode -> port of every listening TCP socket (IPv4 and IPv6) on the machine."""
    listening = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == _TCP_LISTEN:
                        listening[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
        except OSError:
            pass
    return listening


def listening_ports(pid):
    """The TCP ports on which `pid` (or a process below it) listens."""
    inodes = _socket_inodes(pid)
    return {port for inode, port in _listening_inodes().items() if inode in inodes}


def listens_on(pid, port):
    """Whether the listener on `port` belongs to `pid` (not to whoever else took the port)."""
    return port in listening_ports(pid)


def _exited(proc):
    return proc.poll() is not None


def wait_for_listen_port(proc, timeout=START_TIMEOUT, what="the process"):
    """The one port `proc` (a Popen started on port 0) listens on, once it listens.

    Raises RuntimeError when it exits first, listens on several ports, or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        ports = listening_ports(proc.pid)
        if len(ports) == 1:
            return ports.pop()
        if len(ports) > 1:
            raise RuntimeError(f"{what} listens on several ports: {sorted(ports)}")
        if _exited(proc):
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} is not listening after {timeout} s")
        time.sleep(0.02)


def gateway_listen_args(address_file, host="127.0.0.1"):
    """Flags that start our gateway on a port the kernel picks and write it to `address_file`."""
    try:
        os.unlink(address_file)  # never read a stale address
    except FileNotFoundError:
        pass
    return [f"--web.listen-address={host}:0", f"--web.listen-address-file={address_file}"]


def wait_for_address_file(proc, address_file, timeout=START_TIMEOUT, what="the gateway"):
    """(host, port) that a gateway started with `gateway_listen_args` really bound.

    Raises RuntimeError when it exits first or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(address_file) as f:
                text = f.read().strip()
            host, port = text.rsplit(":", 1)
            return host.strip("[]"), int(port)
        except (OSError, ValueError):
            pass
        if _exited(proc):
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} wrote no listen address to {address_file} in {timeout} s")
        time.sleep(0.02)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def candidate_port():
    """A port for a program that cannot listen on port 0; only to be used with `listens_on`.

    Drawn below the kernel's ephemeral range, which port-0 listeners and outgoing connections
    take from, so that other tests rarely want the same port; but nothing guarantees that it is
    free, or stays free."""
    low, _ = _ephemeral_range()
    if low > 11000:
        return random.randrange(10000, low)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_and_check(start, stop, port, timeout):
    """`start(port)`, kept if the listener on `port` becomes its own; else stopped (None)."""
    proc = start(port)
    deadline = time.monotonic() + timeout
    while True:
        if listens_on(proc.pid, port):
            return proc, None
        if _exited(proc):
            reason = f"exited with {proc.returncode} on port {port}"
            break
        if time.monotonic() > deadline:
            reason = f"not listening on port {port} after {timeout} s"
            break
        time.sleep(0.02)
    stop(proc)
    return None, reason


def start_on_candidate_port(start, stop, attempts=10, timeout=START_TIMEOUT, what="the server"):
    """Starts a server that cannot take port 0: `start(port)` returns a Popen listening on
    `port`; it is kept once the listener on `port` is its own. When it exits, or another
    process holds the port, `stop(proc)` ends it and another candidate is tried.

    Returns (proc, port)."""
    reason = None
    for _ in range(attempts):
        port = candidate_port()
        proc, reason = _start_and_check(start, stop, port, timeout)
        if proc:
            return proc, port
    raise RuntimeError(f"{what} did not start on any of {attempts} ports: {reason}")


def restart_on_port(start, stop, port, timeout=START_TIMEOUT, what="the server"):
    """Starts a server again on the `port` it had (its clients know that port). Another process
    may hold the port for a while (the kernel may even hand it out to a port-0 listener): try
    again until `timeout`, and keep only a process whose own listener is on `port`."""
    deadline = time.monotonic() + timeout
    while True:
        proc, reason = _start_and_check(start, stop, port, max(1, deadline - time.monotonic()))
        if proc:
            return proc
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start again: {reason}")
        time.sleep(0.2)


def start_on_port(start, stop, port, timeout=START_TIMEOUT):
    """`start(port)` once, for servers that must know one another's ports before any starts:
    returns (proc, None) once the listener on `port` is the process' own, or (None, reason)
    after `stop(proc)`; the caller then starts them all again on other candidate ports."""
    return _start_and_check(start, stop, port, timeout)
