"""Loopback ports that are free right now, for private stacks (tests, benchmarks) that must not collide."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port that was free a moment ago on loopback (tests bind 127.0.0.1 only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free a moment ago: held open together, so the OS cannot hand one out twice."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
