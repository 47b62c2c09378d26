# Strategy: cases for the networking hashes, whose inputs are addresses and ports: the ehash
# functions (the secret and net_hash_mix travel as one initval, see the ehash file header),
# __ipv6_addr_jhash, the portaddr hashes, __flow_hash_from_keys, and the userspace selftest's
# toeplitz() with the Microsoft RSS key. Edge addresses (any, v4-mapped, ...) are flagged.
"""Test cases for the ehash, ipv6_addr_jhash, portaddr, flow dissector and Toeplitz hashes."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

from ..base import U32
from .base import (
    PORTS,
    V4_EDGE,
    V6_EDGE,
    Case,
    af_number,
    hex_arg,
    ip_bytes,
    ip_flags,
    rand_pair,
    rand_u32,
    rand_v4,
    rand_v6,
)

__all__ = [
    "MS_RSS_KEY",
    "cases_ehash",
    "cases_flow",
    "cases_ipv6_addr_jhash",
    "cases_portaddr",
    "cases_toeplitz",
]


# The RSS key of Microsoft's RSS verification suite, the usual default of NIC drivers.
MS_RSS_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)


def cases_ehash(name: str, v6: bool) -> Callable[[random.Random], list[Case]]:
    edges = V6_EDGE if v6 else V4_EDGE
    rand_ip = rand_v6 if v6 else rand_v4

    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(
            la: str, lp: int, fa: str, fp: int, iv: int, sec2: int, comment: str, flags: list[str]
        ) -> None:
            args: dict[str, Any] = {
                "laddr": la,
                "lport": lp,
                "faddr": fa,
                "fport": fp,
                "initval": iv,
            }
            line = f"{name} {ip_bytes(la).hex()} {lp} {ip_bytes(fa).hex()} {fp} {iv}"
            if v6:
                args["ipv6_hash_secret"] = sec2
                line += f" {sec2}"
            line += " 0"  # net_hash_mix: the kernel adds it to the secret; see the header
            fl = sorted(set(flags + ip_flags(la) + ip_flags(fa)))
            cases.append(Case(comment, fl, args, line))

        for a in edges:
            for p in (0, 65535):
                add(a, p, a, p, 0, 0, f"laddr = faddr = {a}, ports {p}", ["EdgeValue"])
        for iv in (0, U32):
            add(edges[0], 0, edges[1], 65535, iv, iv, f"initval {iv:#x}", ["EdgeValue"])
        for _ in range(30):
            add(
                rng.choice(edges),
                rng.choice(PORTS),
                rng.choice(edges),
                rng.choice(PORTS),
                rand_u32(rng),
                rand_u32(rng),
                "edge addresses and ports, random secrets",
                ["EdgeValue"],
            )
        for _ in range(120):
            add(
                rand_ip(rng),
                rng.randrange(65536),
                rand_ip(rng),
                rng.randrange(65536),
                rand_u32(rng),
                rand_u32(rng),
                "random",
                ["Random"],
            )
        return cases

    return make


def cases_ipv6_addr_jhash(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(a: str, iv: int, comment: str, flags: list[str]) -> None:
        cases.append(
            Case(
                comment,
                sorted(set(flags + ip_flags(a))),
                {"addr": a, "initval": iv},
                f"ipv6_addr_jhash {ip_bytes(a).hex()} {iv}",
            )
        )

    for a in V6_EDGE:
        for iv in (0, U32):
            add(a, iv, f"{a}, initval {iv:#x}", ["EdgeValue"])
    for _ in range(120):
        add(rand_v6(rng), rand_u32(rng), "random", ["Random"])
    return cases


def cases_portaddr(name: str, v6: bool) -> Callable[[random.Random], list[Case]]:
    edges = V6_EDGE if v6 else V4_EDGE
    rand_ip = rand_v6 if v6 else rand_v4

    def make(rng: random.Random) -> list[Case]:
        cases: list[Case] = []

        def add(mix: int, a: str, port: int, comment: str, flags: list[str]) -> None:
            cases.append(
                Case(
                    comment,
                    sorted(set(flags + ip_flags(a))),
                    {"net_mix": mix, "addr": a, "port": port},
                    f"{name} {mix} {ip_bytes(a).hex()} {port}",
                )
            )

        for a in edges:
            for mix in (0, U32):
                for p in (0, 65535):
                    add(mix, a, p, f"{a} port {p}, net_mix {mix:#x}", ["EdgeValue"])
        for _ in range(120):
            add(rand_u32(rng), rand_ip(rng), rng.randrange(65536), "random", ["Random"])
        return cases

    return make


def cases_flow(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(
        src: str, sp: int, dst: str, dp: int, proto: int, key: bytes, comment: str, flags: list[str]
    ) -> None:
        args: dict[str, Any] = {
            "src": src,
            "sport": sp,
            "dst": dst,
            "dport": dp,
            "ip_proto": proto,
            "key": key.hex(),
        }
        line = (
            f"flow_hash_from_keys {af_number(src)} {ip_bytes(src).hex()} {sp} "
            f"{ip_bytes(dst).hex()} {dp} {proto} {key.hex()}"
        )
        cases.append(Case(comment, sorted(set(flags + ip_flags(src) + ip_flags(dst))), args, line))

    for src, dst in (
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("10.0.0.1", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.1"),
        ("2001:db8::1", "2001:db8::2"),
        ("2001:db8::2", "2001:db8::1"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.2"),
    ):
        for proto in (6, 17):
            for sp, dp in ((0, 0), (65535, 0), (0, 65535), (1000, 2000), (2000, 1000)):
                add(src, sp, dst, dp, proto, bytes(16), f"{src}:{sp} -> {dst}:{dp}", ["EdgeValue"])
    for _ in range(140):
        src, dst = rand_pair(rng, edge=False)
        add(
            src,
            rng.randrange(65536),
            dst,
            rng.randrange(65536),
            rng.choice((6, 17)),
            rng.randbytes(16),
            "random",
            ["Random"],
        )
    return cases


def cases_toeplitz(rng: random.Random) -> list[Case]:
    cases: list[Case] = []
    rand_key = rng.randbytes(52)

    def add(data: bytes, key: bytes, comment: str, flags: list[str]) -> None:
        cases.append(
            Case(
                comment,
                flags,
                {"data": data.hex(), "key": key.hex()},
                f"{hex_arg(data)} {key.hex()}",
            )
        )

    for key, kname in ((MS_RSS_KEY, "Microsoft 40-byte key"), (rand_key, "random 52-byte key")):
        add(b"", key, f"empty input, {kname}", ["EmptyInput", "EdgeValue"])
        add(b"\xff" * 36, key, f"36 bytes of 0xff, {kname}", ["EdgeValue"])
        for _ in range(40):
            src, dst = rand_v4(rng), rand_v4(rng)
            data = (
                ip_bytes(src)
                + ip_bytes(dst)
                + struct.pack("!HH", rng.randrange(65536), rng.randrange(65536))
            )
            add(data, key, f"IPv4 4-tuple {src} -> {dst}, {kname}", ["Random"])
        for _ in range(40):
            src, dst = rand_v6(rng), rand_v6(rng)
            data = (
                ip_bytes(src)
                + ip_bytes(dst)
                + struct.pack("!HH", rng.randrange(65536), rng.randrange(65536))
            )
            add(data, key, f"IPv6 4-tuple, {kname}", ["Random"])
        for n in range(1, 37, 5):
            add(rng.randbytes(n), key, f"random input of length {n}, {kname}", ["Random"])
    return cases
