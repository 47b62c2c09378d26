# Strategy: cases for net/netfilter/nf_conntrack_core.c's hash_conntrack_raw, plain and in
# directional zones. For zones, the zone id recorded in the args is what nf_ct_zone_id() is
# read to return (nf_ct_zone_id_expected), and checks.py compares that reading with the
# compiled function before any vector is written.
"""Test cases for hash_conntrack_raw, with and without directional conntrack zones."""

from __future__ import annotations

import random
from typing import Any

from ..base import U32
from .base import Case, af_number, ip_bytes, ip_flags, rand_pair, rand_u32, rand_v4, rand_v6

__all__ = [
    "DIR_NAMES",
    "ZONE_CONFIGS",
    "cases_conntrack",
    "cases_conntrack_zones",
    "nf_ct_zone_id_expected",
]


def cases_conntrack(rng: random.Random) -> list[Case]:
    cases: list[Case] = []

    def add(
        src: str,
        sp: int,
        dst: str,
        dp: int,
        proto: int,
        zone: int,
        mix: int,
        secret: bytes,
        comment: str,
        flags: list[str],
    ) -> None:
        args: dict[str, Any] = {
            "src": src,
            "sport": sp,
            "dst": dst,
            "dport": dp,
            "protonum": proto,
            "zone_id": zone,
            "net_mix": mix,
            "secret": secret.hex(),
        }
        line = (
            f"hash_conntrack_raw {af_number(src)} {ip_bytes(src).hex()} {sp} "
            f"{ip_bytes(dst).hex()} {dp} {proto} {zone} {mix} {secret.hex()} 0"
        )
        cases.append(Case(comment, sorted(set(flags + ip_flags(src) + ip_flags(dst))), args, line))

    for src, dst in (
        ("0.0.0.0", "0.0.0.0"),
        ("::", "::"),
        ("255.255.255.255", "10.0.0.1"),
        ("::ffff:192.0.2.1", "2001:db8::1"),
    ):
        for proto in (6, 17):
            for p in (0, 65535):
                add(
                    src,
                    p,
                    dst,
                    p,
                    proto,
                    0,
                    0,
                    bytes(16),
                    f"{src} -> {dst}, ports {p}",
                    ["EdgeValue"],
                )
    for zone in (0, 1, 65535):
        for mix in (0, U32):
            add(
                "192.0.2.1",
                1234,
                "198.51.100.7",
                443,
                17,
                zone,
                mix,
                b"\xff" * 16,
                f"zone {zone}, net_mix {mix:#x}",
                ["EdgeValue"],
            )
    for _ in range(140):
        src, dst = rand_pair(rng, edge=False)
        zone = rng.choice((0, 0, rng.randrange(65536)))
        add(
            src,
            rng.randrange(65536),
            dst,
            rng.randrange(65536),
            rng.choice((6, 17)),
            zone,
            rand_u32(rng),
            rng.randbytes(16),
            "random",
            ["Random"],
        )
    return cases


ZONE_CONFIGS = (
    # (id, dir, flags): the default zone, a zone in both directions, directional zones
    # (iptables -j CT --zone-orig / --zone-reply), the largest id, and the mark flag (which
    # only changes where the id comes from, not nf_ct_zone_id).
    (0, 3, 0),
    (7, 3, 0),
    (7, 1, 0),
    (7, 2, 0),
    (65535, 1, 0),
    (65535, 2, 0),
    (300, 3, 1),
    (300, 1, 1),
)
DIR_NAMES = {1: "ORIG", 2: "REPL", 3: "ORIG|REPL"}


def nf_ct_zone_id_expected(zone_id: int, zone_dir: int, direction: int) -> int:
    """What include/net/netfilter/nf_conntrack_zones.h's nf_ct_zone_id() is read to return;
    self_checks() compares it with the compiled function before any vector is written."""
    return zone_id if zone_dir & (1 << direction) else 0


def cases_conntrack_zones(rng: random.Random) -> list[Case]:
    """hash_conntrack_raw of a node of each direction in directional zones: the zone id in
    the args is the one the kernel's nf_ct_zone_id(zone, dir) gives (checked), the hash is
    computed by the harness from the zone struct and the direction."""
    cases: list[Case] = []

    def add(
        src: str,
        sp: int,
        dst: str,
        dp: int,
        zone: tuple[int, int, int],
        direction: int,
        mix: int,
        secret: bytes,
        what: str,
        flags: list[str],
    ) -> None:
        zid, zdir, zflags = zone
        derived = nf_ct_zone_id_expected(zid, zdir, direction)
        args: dict[str, Any] = {
            "src": src,
            "sport": sp,
            "dst": dst,
            "dport": dp,
            "protonum": 17,
            "zone_id": derived,
            "net_mix": mix,
            "secret": secret.hex(),
        }
        line = (
            f"conntrack_zone {af_number(src)} {ip_bytes(src).hex()} {sp} "
            f"{ip_bytes(dst).hex()} {dp} 17 {zid} {zdir} {zflags} {direction} {mix} "
            f"{secret.hex()}"
        )
        dname = "REPLY" if direction else "ORIGINAL"
        comment = (
            f"{what}; zone id {zid} dir {DIR_NAMES[zdir]} flags {zflags}, {dname} node: "
            f"nf_ct_zone_id = {derived}"
        )
        extra = ["DirectionalZone"] if zdir != 3 else []
        if direction:
            extra.append("ReplyNode")
        cases.append(
            Case(
                comment,
                sorted(set(flags + extra + ip_flags(src) + ip_flags(dst))),
                args,
                line,
            )
        )

    for zone in ZONE_CONFIGS:
        for direction in (0, 1):
            for v6 in (False, True):
                src, dst = (rand_v6(rng), rand_v6(rng)) if v6 else (rand_v4(rng), rand_v4(rng))
                sp, dp = rng.randrange(1024, 65536), rng.choice((53, 443, 4433, 51820))
                mix, secret = rand_u32(rng), rng.randbytes(16)
                if direction:
                    # the reply node of a flow src:sp -> dst:dp hashes the inverted tuple
                    add(
                        dst,
                        dp,
                        src,
                        sp,
                        zone,
                        direction,
                        mix,
                        secret,
                        f"reply tuple of {src} -> {dst}",
                        ["Random"],
                    )
                else:
                    add(
                        src,
                        sp,
                        dst,
                        dp,
                        zone,
                        direction,
                        mix,
                        secret,
                        f"original tuple {src} -> {dst}",
                        ["Random"],
                    )
    # a NAT'd flow: client 192.0.2.10:40000 -> VIP 198.51.100.1:443, DNAT to 10.0.0.5:8443,
    # SNAT to 203.0.113.1:61000; its reply tuple is 10.0.0.5:8443 -> 203.0.113.1:61000
    for zone in ((7, 1, 0), (7, 2, 0), (7, 3, 0)):
        for direction, (a, ap, b, bp, what) in enumerate(
            (
                ("192.0.2.10", 40000, "198.51.100.1", 443, "original tuple of a NAT'd flow"),
                ("10.0.0.5", 8443, "203.0.113.1", 61000, "reply tuple after SNAT+DNAT"),
            )
        ):
            add(a, ap, b, bp, zone, direction, 0x1234ABCD, bytes(range(16)), what, ["EdgeValue"])
    return cases
