"""``free_port``: the ports ``cluster up`` (and the tests' servers) choose for their
children lie below the kernel's ephemeral range, where no outgoing connection takes them
between the pick and the child's bind (a cluster's restarted worker once found its
health port taken for 90 s: "address already in use")."""

from __future__ import annotations

import socket
from pathlib import Path

from pixelmill.runtime.cluster import free_port


def _ephemeral() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_a_free_port_is_outside_the_range_of_outgoing_connections_and_binds() -> None:
    low, high = _ephemeral()
    ports = [free_port() for _ in range(20)]
    assert all(1024 <= p < low for p in ports), (ports, low, high)
    for port in ports[:3]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: it binds


def test_a_port_in_use_or_to_avoid_is_not_picked() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        taken = held.getsockname()[1]
        picks = set()
        for _ in range(50):
            picks.add(free_port(avoid=picks))
        assert taken not in picks
        assert len(picks) == 50  # each one avoided the ones before it
