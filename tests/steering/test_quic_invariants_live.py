"""QUIC long headers of every kind through the compiled steering programs on the live kernel.

The steering programs built from the QUIC plugin's locations steer a long header by the
bytes where RFC 8999 section 5.1 puts the DCID -- whatever the version and the fixed bit --
when its DCID Length byte is the configured length. That is the documented semantics of a
steering program (docs/howto-steering.rst, "Which QUIC packets are steered"), and the model
(:meth:`SteeringPolicy.select` and the IR interpreter) must say exactly what the live kernel
does with them: v1 and v2 long headers, the greased fixed bit (RFC 9287), Version
Negotiation with 0x40 set and clear, IETF drafts, reserved versions, versions nobody knows,
long headers with an empty DCID (steered by their SCID), and the shapes that fall back to
the kernel's hash (another DCID or SCID length, a short header with the fixed bit clear, a
header cut short).

Each payload is sent from 16 source ports in a private pair of namespaces
(:func:`sidkit.bpf.netns.run_in_lab`). A steered payload must reach the model's socket from
every port; a payload the model does not steer must be spread by the kernel's 5-tuple hash,
i.e. reach more than one socket (with 4 sockets, 16 hash choices land on one socket with
probability 4**-15).
"""

from __future__ import annotations

import random
from typing import Any, Literal

import pytest
from conftest import oracle_unavailable
from fixtures import packets as pk

from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available
from sidkit.bpf.netns import CLIENT_V4, SERVER_V4, Datagram, Lab
from sidkit.extract import Extractor
from sidkit.steering import AnyOf, SteeringPolicy, _ir, attach

pytestmark = pytest.mark.oracle

SOCKETS = 4
PORTS = 16
CID = 8


def _policy() -> SteeringPolicy:
    locations = Extractor(["quic"], {"quic": {"cid_length": CID}}).sid_locations()
    return SteeringPolicy(AnyOf(locations), "jhash", SOCKETS, seed=0x5EED)


def _payloads() -> dict[str, bytes]:
    """The shapes, each with its own DCID (so that one shape's socket says nothing of
    another's)."""
    rng = random.Random(14)

    def cid(n: int = CID) -> bytes:
        return rng.randbytes(n)

    body = rng.randbytes(40)
    return {
        "v1-initial": pk.quic_long(pk.QUIC_V1, "initial", cid(), cid(), body),
        "v1-handshake-greased": pk.quic_long(
            pk.QUIC_V1, "handshake", cid(), cid(), body, fixed_bit=False
        ),
        "v2-initial": pk.quic_long(pk.QUIC_V2, "initial", cid(), cid(), body),
        "vn-0x40-set": pk.quic_version_negotiation(cid(), cid(), [1, pk.QUIC_V2], 0x4A),
        "vn-0x40-clear": pk.quic_version_negotiation(cid(), cid(), [1], 0x13),
        "draft-29": pk.quic_invariant_long(0x40, 0xFF00001D, cid(), cid(), body),
        "reserved-0x?a?a?a?a": pk.quic_invariant_long(0x40, 0x1A2A3A4A, cid(), cid(), body),
        "unknown-version": pk.quic_invariant_long(0x40, 0x12345678, cid(), cid(), body),
        "unknown-version-greased": pk.quic_invariant_long(0x05, 0xDEADBEEF, cid(), cid(), body),
        # an empty DCID (the receiver chose zero-length CIDs): the SCID is the ID
        "empty-dcid": pk.quic_long(pk.QUIC_V1, "handshake", b"", cid(), body),
        # fall back to the kernel's hash
        "empty-dcid-scid-length-5": pk.quic_long(pk.QUIC_V1, "handshake", b"", cid(5), body),
        "dcid-length-5": pk.quic_long(pk.QUIC_V1, "initial", cid(5), cid(), body),
        "short-greased": pk.quic_short(cid(), body, fixed_bit=False),
        "long-cut-short": pk.quic_long(pk.QUIC_V1, "initial", cid(), cid(), body)[: 6 + CID - 1],
        # a short header with the fixed bit set: steered
        "short": pk.quic_short(cid(), body),
    }


def _experiment(lab: Lab, backend: Literal["cbpf", "ebpf"], port: int) -> dict[str, list[Any]]:
    policy = _policy()
    socks = netns.open_group(SOCKETS, SERVER_V4, port)
    handle = attach(socks, policy, backend)
    try:
        out: dict[str, list[Any]] = {}
        for name, payload in _payloads().items():
            dgrams = [
                Datagram(CLIENT_V4[i % 2], 41000 + 17 * i, SERVER_V4, port, payload)
                for i in range(PORTS)
            ]
            out[name] = lab.exchange(dgrams, socks)
        return out
    finally:
        handle.detach()
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def live() -> dict[str, dict[str, list[Any]]]:
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")
    return {
        "cbpf": netns.run_in_lab(_experiment, "cbpf", 9101),
        "ebpf": netns.run_in_lab(_experiment, "ebpf", 9102),
    }


STEERED = {
    "v1-initial",
    "v1-handshake-greased",
    "v2-initial",
    "vn-0x40-set",
    "vn-0x40-clear",
    "draft-29",
    "reserved-0x?a?a?a?a",
    "unknown-version",
    "unknown-version-greased",
    "empty-dcid",
    "short",
}


@pytest.mark.parametrize("backend", ["cbpf", "ebpf"])
@pytest.mark.parametrize("name", sorted(_payloads()))
def test_model_says_what_the_live_kernel_does(
    live: dict[str, dict[str, list[Any]]], backend: str, name: str
) -> None:
    policy = _policy()
    payload = _payloads()[name]
    expected = policy.select(payload)
    assert _ir.evaluate(policy.ir(), payload) == expected
    got = live[backend][name]
    assert None not in got, "datagrams lost on the veth"
    if name in STEERED:
        assert expected is not None
        assert got == [expected] * PORTS
    else:
        assert expected is None
        assert len(set(got)) > 1, "the kernel's hash would spread 16 source ports"


@pytest.mark.parametrize("name", sorted(STEERED))
def test_steered_long_headers_are_what_the_extractor_reads_with_unknown_versions(
    name: str,
) -> None:
    """The steering semantics is the Extractor's with ``unknown_versions``: every steered
    payload's ID is the DCID the plugin reads from the invariants, hashed by the policy.
    Without the option, the Extractor refuses the unknown version only (what the docs say
    steering does differently, and why)."""
    policy = _policy()
    payload = _payloads()[name]
    invariant = Extractor(["quic"], {"quic": {"cid_length": CID, "unknown_versions": True}})
    sid = invariant.extract(payload)
    assert sid is not None
    assert policy.select(payload) == policy.index_of(sid.value)
    default = Extractor(["quic"], {"quic": {"cid_length": CID}}).extract(payload)
    if name.startswith("unknown-version"):
        assert default is None
    else:
        assert default == sid
