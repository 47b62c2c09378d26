# Strategy: one test case is its args (what the vector file records) and the harness command
# line that computes its result; both are built from the same values so they cannot drift
# apart. The helpers here draw inputs from a seeded random.Random only (identical for both
# kernels) and derive the address flags; the edge values every family shares live here too.
"""A test case (args + harness line) and the input helpers the case makers share."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from typing import Any

from ..base import U32, U64

__all__ = [
    "EDGE32",
    "EDGE64",
    "PORTS",
    "V4_EDGE",
    "V6_EDGE",
    "Case",
    "af_number",
    "hex_arg",
    "ip_bytes",
    "ip_flags",
    "rand_pair",
    "rand_u32",
    "rand_u64",
    "rand_v4",
    "rand_v6",
]


@dataclass
class Case:
    comment: str
    flags: list[str]
    args: dict[str, Any]
    line: str  # harness command line


def hex_arg(b: bytes) -> str:
    """Bytes as the harness command line takes them: hex, or ``-`` when empty."""
    return b.hex() if b else "-"


def ip_bytes(addr: str) -> bytes:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return socket.inet_pton(family, addr)


def rand_v4(rng: random.Random) -> str:
    return socket.inet_ntop(socket.AF_INET, rng.randbytes(4))


def rand_v6(rng: random.Random) -> str:
    return socket.inet_ntop(socket.AF_INET6, rng.randbytes(16))


def rand_u32(rng: random.Random) -> int:
    return rng.getrandbits(32)


def rand_u64(rng: random.Random) -> int:
    return rng.getrandbits(64)


EDGE32 = (0, 1, 0x7FFFFFFF, 0x80000000, U32)
EDGE64 = (0, 1, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, U64)
PORTS = (0, 1, 53, 443, 1024, 32768, 65535)
V4_EDGE = ("0.0.0.0", "255.255.255.255", "127.0.0.1", "10.0.0.1", "192.0.2.1")
V6_EDGE = (
    "::",
    "::1",
    "::ffff:0.0.0.0",
    "::ffff:192.0.2.1",
    "::ffff:255.255.255.255",
    "fe80::1",
    "2001:db8::1",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)


def ip_flags(addr: str) -> list[str]:
    b = ip_bytes(addr)
    flags: list[str] = []
    if not any(b):
        flags.append("AnyAddress")
    if len(b) == 16 and b[:12] == b"\0" * 10 + b"\xff\xff":
        flags.append("V4Mapped")
    return flags


def rand_pair(rng: random.Random, edge: bool) -> tuple[str, str]:
    if rng.random() < 0.5:
        if edge:
            return rng.choice(V4_EDGE), rng.choice(V4_EDGE)
        return rand_v4(rng), rand_v4(rng)
    if edge:
        return rng.choice(V6_EDGE), rng.choice(V6_EDGE)
    return rand_v6(rng), rand_v6(rng)


def af_number(addr: str) -> int:
    """AF_INET (2) or AF_INET6 (10), as the harness command line takes the family."""
    return 10 if ":" in addr else 2
