"""QUIC-LB server IDs steered by a kernel program on one host (quiclb.steering_policy).

The CIDs come from :func:`sidkit.quiclb.encode`, which is checked against draft-21's Appendix
B and quiche's vectors (tests/quiclb/test_quiclb_vectors.py); the packets follow RFC 9000 sections
17.2 and 17.3. The policy must agree with :func:`sidkit.quiclb.server_id_index` -- the
user-space answer -- in the model and in both compiled programs' interpreters; the live
kernel agreement of compiled policies in general is tests/reuseport/test_live_reuseport.py's job.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidkit import quiclb
from sidkit.bpf import cbpf, ebpf
from sidkit.steering import SteeringError, compile_cbpf, compile_ebpf


@st.composite
def plaintext_cases(draw: st.DrawFn) -> tuple[quiclb.Config, bytes, int, bytes]:
    sid_len = draw(st.integers(1, 4))
    config = quiclb.Config(
        draw(st.integers(0, 6)),
        sid_len,
        draw(st.integers(4, 19 - sid_len)),
        encode_length=draw(st.booleans()),
    )
    server_id = draw(st.binary(min_size=sid_len, max_size=sid_len))
    nonce = draw(st.binary(min_size=config.nonce_length, max_size=config.nonce_length))
    low = None if config.encode_length else draw(st.integers(0, 31))
    cid = quiclb.encode(config, server_id, nonce, low_bits=low)
    # mostly small server IDs so that many name a socket; some stay >= n (fallback)
    if draw(st.booleans()):
        cid = cid[:1] + bytes(sid_len - 1) + bytes([cid[sid_len] % 12]) + cid[1 + sid_len :]
    n = draw(st.integers(1, 12))
    tail = draw(st.binary(max_size=40))
    return config, cid, n, tail


def _short(cid: bytes, tail: bytes) -> bytes:
    return bytes([0x40 | (len(tail) & 0x3F)]) + cid + tail


def _long(cid: bytes, tail: bytes) -> bytes:
    # RFC 9000 section 17.2: Handshake packet (type 2), version 1, DCID, empty SCID, rest
    return b"\xe0\x00\x00\x00\x01" + bytes([len(cid)]) + cid + b"\x00" + tail


def _agree(policy: object, payload: bytes, expected: int | None) -> None:
    from sidkit.steering import SteeringPolicy  # noqa: PLC0415

    assert isinstance(policy, SteeringPolicy)
    assert policy.select(payload) == expected
    got = cbpf.run(compile_cbpf(policy), payload)
    assert (got if got < policy.n else None) == expected
    _v, selected = ebpf.run_sk_reuseport(
        compile_ebpf(policy, map_fd=3), ebpf.ReuseportContext(bytes(8) + payload)
    )
    assert selected == expected


@given(plaintext_cases())
def test_policy_is_server_id_index(case: tuple[quiclb.Config, bytes, int, bytes]) -> None:
    config, cid, n, tail = case
    policy = quiclb.steering_policy(config, n)
    expected = quiclb.server_id_index(config, cid, n)
    _agree(policy, _short(cid, tail), expected)
    _agree(policy, _long(cid, tail), expected)
    # another config's rotation bits: never this config's server
    other = bytes([(cid[0] + 0x20) & 0xFF]) + cid[1:]
    if other[0] >> 5 != 7:
        assert quiclb.server_id_index(config, other, n) is None
    _agree(policy, _short(other, tail), None)
    # a client-chosen Initial DCID of another length is not read
    _agree(policy, _long(cid + b"\x00", tail), None)


def test_refuses_what_a_program_cannot_read() -> None:
    with pytest.raises(SteeringError, match="AES"):
        quiclb.steering_policy(quiclb.Config(0, 4, 12, bytes(16)), 4)
    with pytest.raises(SteeringError, match="32 bits"):
        quiclb.steering_policy(quiclb.Config(0, 5, 6), 4)
    with pytest.raises(SteeringError):
        quiclb.steering_policy("config", 4)  # type: ignore[arg-type]


@given(
    st.integers(0, 3),
    st.integers(1, 4),
    st.integers(1, 12),
    st.data(),
)
def test_index_field_base(offset: int, length: int, n: int, data: st.DataObject) -> None:
    """IndexField(base=b): the field's value minus b names the socket, values below b fall
    back (the u32 wrap), in the model and both compiled programs."""
    from sidkit.steering import FixedOffset, IndexField, SteeringPolicy  # noqa: PLC0415

    mask = (1 << (8 * length)) - 1
    base = data.draw(st.integers(0, mask))
    policy = SteeringPolicy(
        FixedOffset(1, 8, [(0, 0x80, 0)]),
        "index",
        n,
        field=IndexField(offset, length, 0, mask, base),
    )
    value = data.draw(st.integers(max(0, base - 3), min(mask, base + n + 3)))
    sid = bytes(offset) + value.to_bytes(length, "big") + bytes(8 - offset - length)
    expected = value - base if base <= value < base + n else None
    _agree(policy, b"\x40" + sid + b"pn", expected)
