"""Two worker "hosts" as network namespaces on a bridge of their own (root only).

Each namespace has a loopback of its own and one veth into the bridge: from inside, the host's 127.0.0.1
services (RabbitMQ, PostgreSQL, the simulator) are out of reach, and everything goes to the bridge address
``HOST_ADDRESS``, where the test's forwarders listen.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

BRIDGE = "cel44br"
SUBNET = "10.213.44"
HOST_ADDRESS = f"{SUBNET}.1"


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (not root, no ``ip``, no permission), or None."""
    if os.geteuid() != 0:
        return "the two-host test makes network namespaces (ip netns add): it needs root"
    probe = "celery_44probe"
    try:
        _ip("netns", "add", probe)
    except (OSError, subprocess.CalledProcessError) as err:
        return f"ip netns add is not permitted here: {getattr(err, 'stderr', err)}"
    _ip("netns", "del", probe)
    return None


def _cleanup(names: Sequence[str]) -> None:
    for name in names:
        kill_all(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, timeout=30)


@contextmanager
def worker_hosts(count: int = 2) -> Iterator[list[tuple[str, str]]]:
    """``count`` namespaces ``celery_44a``, ``celery_44b``… as (name, address), torn down after."""
    hosts = [(f"celery_44{chr(ord('a') + i)}", f"{SUBNET}.{i + 2}") for i in range(count)]
    _cleanup([name for name, _ in hosts])  # a previous run killed before its teardown
    try:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{HOST_ADDRESS}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for name, address in hosts:
            outside, inside = f"{name[-3:]}-h", f"{name[-3:]}-n"
            _ip("netns", "add", name)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", name)
            _ip("link", "set", outside, "master", BRIDGE, "up")
            _ip("addr", "add", f"{address}/24", "dev", inside, netns=name)
            _ip("link", "set", inside, "up", netns=name)
            _ip("link", "set", "lo", "up", netns=name)
        yield hosts
    finally:
        _cleanup([name for name, _ in hosts])


def pids(netns: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30)
    return [int(p) for p in result.stdout.split()]


def kill_all(netns: str) -> list[int]:
    """SIGKILL every process of the namespace (the host is lost at once): the pids killed."""
    killed = pids(netns)
    for pid in killed:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return killed


def can_connect(netns: str, host: str, port: int) -> bool:
    """Whether a TCP connection from inside ``netns`` to ``host:port`` succeeds."""
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=3).close()"
    result = subprocess.run(
        ["ip", "netns", "exec", netns, "python3", "-c", code], capture_output=True, timeout=30
    )
    return result.returncode == 0
