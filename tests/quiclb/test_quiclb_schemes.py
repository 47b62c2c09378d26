"""Katran, Envoy and nginx server/worker-ID decoders against their upstream projects.

Oracles, none produced by sidkit:

* Katran: the QUIC test packets of ``katran/lib/testing/KatranGueTestFixtures.h`` (base64
  Ethernet frames with their descriptions) and the QUIC ID mapping of
  ``KatranTestProvision.cpp`` (``addQuicMappings``: 1026 -> fc00::2); mvfst's
  ``quic/codec/test/DefaultConnectionIdAlgoTest.cpp`` (the server that writes Katran's v1/v2
  CIDs).
* Envoy: the packets and expectations of ``QuicLbTest.WorkerSelector``
  (``test/extensions/quic/connection_id_generator/quic_lb/quic_lb_test.cc``), and the live
  kernel running Envoy's own cBPF program (``createCompatibleLinuxBpfSocketOption()`` in
  ``source/extensions/quic/connection_id_generator/quic_lb/quic_lb.cc``) on a real
  SO_REUSEPORT group, exactly as that test's ``KernelBpfTester`` does.
* nginx and Katran's CID version 3 have no published vectors: those tests check the layout
  read from the source (cited in the docstrings) on hand-built examples.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import random
import select
import socket
from collections.abc import Iterator

import dpkt
import pytest
from conftest import oracle_unavailable
from hypothesis import given
from hypothesis import strategies as st

from sidkit import quiclb

H = bytes.fromhex

# --- Katran --------------------------------------------------------------------------------------

# KatranGueTestFixtures.h, inputGueTestFixtures 22-30: (frame, description, expected).
# Expected: None = Katran does not decode a server ID; otherwise (version, server ID).
KATRAN_FIXTURES = [
    (
        "AgAAAAAAAQAAAAAACABFAAA5AAEAAEARrRTAqAEqCsgBBXppAbsAJbdsz/rOsAEIQQIDBAUGBwAAAREBcXVpYyBkYXRhAEA=",
        "QUIC: long header. Client Initial type. LRU miss",
        None,
    ),
    (
        "AgAAAAAAAQAAAAAACABFAAA5AAEAAEARrRTAqAEqCsgBBXppAbsAJbNG3/rOsAEIQ/8zRFVmd4gAAREBcXVpYyBkYXRhAEA=",
        "QUIC: long header. 0-RTT Protected. CH. LRU hit.",
        None,
    ),
    (
        "AgAAAAAAAQAAAAAAht1gAAAAACURQPwAAAIAAAAAAAAAAAAAAEL8AAABAAAAAAAAAAAAAAACemkBuwAlicTP+s6wAQhEAQMEBQYHAAABEQFxdWljIGRhdGEAQA==",
        "QUIC: long header. client initial. v6 vip v6 real. LRU miss",
        None,
    ),
    (
        "AgAAAAAAAQAAAAAACABFAAAdAAEAAEARrTDAqAEqCsgBBXppAbsACbYYAA==",
        "QUIC: short header. No connection id. CH. LRU hit",
        None,
    ),
    (
        "AgAAAAAAAQAAAAAACABFAAAmAAEAAEARrSfAqAEqCsgBBXppAbsAEqr2AEEAgwQFBgcAQA==",
        "QUIC: short header w/ connection id",  # routed to fc00::2, QUIC id 1026
        (1, 1026),
    ),
    (
        "AgAAAAAAAQAAAAAACABFAAAmAAEAAEARrSfAqAEqCsgBBXppAbsAEqSFAEERAAAAAAAAQA==",
        "QUIC: short header w/ connection id 1092 but non-existing mapping. LRU hit",
        (1, 1092),
    ),
    (
        "AgAAAAAAAQAAAAAACABFAAAmAAEAAEARrSfAqAEqCsgBBXppAbsAEqt3AEAAAwQFBgcAQA==",
        "QUIC: short header w/ conn id. host id = 0. CH. LRU hit",
        (1, 0),
    ),
]
# "Conn Id based": Handshake and Retry long headers are decoded (the ID itself is unlabelled).
KATRAN_CID_BASED = [
    "AgAAAAAAAQAAAAAACABFAAA5AAEAAEARrRTAqAEqCsgBBXppAbsAJZRt7/rOsAEIRAEDBAUGBwAAAREBcXVpYyBkYXRhAEA=",
    "AgAAAAAAAQAAAAAACABFAAA5AAEAAEARrRTAqAEqCsgBBXppAbsAJYRt//rOsAEIRAEDBAUGBwAAAREBcXVpYyBkYXRhAEA=",
]


def udp_payload(frame_b64: str) -> bytes:
    eth = dpkt.ethernet.Ethernet(base64.b64decode(frame_b64))
    udp = eth.data.data
    assert isinstance(udp, dpkt.udp.UDP) and udp.dport == 443
    return bytes(udp.data)


@pytest.mark.oracle
@pytest.mark.parametrize(("frame", "description", "expected"), KATRAN_FIXTURES)
def test_katran_fixture_packets(
    frame: str, description: str, expected: tuple[int, int] | None
) -> None:
    got = quiclb.katran_packet_server_id(udp_payload(frame))
    if expected is None:
        assert got is None, description
    else:
        assert got == quiclb.KatranServerId(*expected), description
        # "host id = 0. CH": Katran routes by consistent hashing, not by the ID.
        assert got.routed_by_katran == (expected[1] != 0)


@pytest.mark.oracle
@pytest.mark.parametrize("frame", KATRAN_CID_BASED)
def test_katran_handshake_and_retry_are_cid_based(frame: str) -> None:
    got = quiclb.katran_packet_server_id(udp_payload(frame))
    assert got is not None and got.version == 1 and got.routed_by_katran


@pytest.mark.oracle
def test_mvfst_v1_and_v2_vectors() -> None:
    # decodeV1: "01" host "1111111111111111" worker "10101010" process "1" unused "00000".
    bits = "01" + "1" * 16 + "10101010" + "1" + "00000"
    v1 = int(bits, 2).to_bytes(4, "big")
    with pytest.raises(quiclb.CidError):  # mvfst allows 4 octets; Katran reads 8
        quiclb.katran_server_id(v1)
    assert quiclb.katran_server_id(v1 + bytes(4)) == quiclb.KatranServerId(1, 0xFFFF)
    # decodeV2: version 0x80, host AA BB CC, worker FF, process 0x80.
    v2 = H("80aabbccff80")
    assert quiclb.katran_server_id(v2 + bytes(2)) == quiclb.KatranServerId(2, 0xAABBCC)


def test_katran_v3_layout_from_source() -> None:
    # No published vector: parse_quic's v3 expression, octets 1-4 big-endian.
    assert quiclb.katran_server_id(H("c001020304ffffff")) == quiclb.KatranServerId(3, 0x01020304)
    top = quiclb.katran_server_id(H("c080000001000000"))
    assert top == quiclb.KatranServerId(3, 0x80000001)
    assert not top.routed_by_katran  # negative as Katran's int server_id
    assert quiclb.katran_server_id(H("3f" + "ff" * 7)) is None  # version 0


def test_katran_packet_rules() -> None:
    cid = H("4100830405060700")
    handshake = bytes([0xE0]) + b"\x00\x00\x00\x01" + bytes([8]) + cid + b"\x00"
    assert quiclb.katran_packet_server_id(handshake) == quiclb.KatranServerId(1, 1026)
    short_dcid = bytearray(handshake)
    short_dcid[5] = 7  # DCID length below QUIC_MIN_CONNID_LEN
    assert quiclb.katran_packet_server_id(bytes(short_dcid)) is None
    assert quiclb.katran_packet_server_id(handshake[:13]) is None  # shorter than the header
    assert quiclb.katran_packet_server_id(b"\x40" + cid[:7]) is None


# --- Envoy ---------------------------------------------------------------------------------------

CONCURRENCY = 8


def envoy_selector_cases(h: int) -> list[tuple[bytes, int | None]]:
    """QuicLbTest.WorkerSelector's packets for non-default host *h* (None = default)."""
    cases: list[tuple[bytes, int | None]] = [(bytes(8), None)]
    buf = bytearray(13)
    buf[0], buf[5] = 0x80, 20
    cases.append((bytes(buf), None))  # long header too short
    cases.append((bytes(buf) + bytes(5), None))  # shorter than the encoded CID length
    buf = bytearray(32)
    buf[0], buf[5], buf[5 + 8] = 0x80, 8, 4 * CONCURRENCY + h
    cases.append((bytes(buf), h))  # long header: success (wraps modulo concurrency)
    buf = bytearray(12)
    buf[1] = 12
    cases.append((bytes(buf), None))  # short header too short
    buf = bytearray(12)
    buf[1], buf[1 + 8 + 1] = 8, CONCURRENCY
    cases.append((bytes(buf), None))  # worker ID >= concurrency
    buf = bytearray(12)
    buf[1], buf[1 + 8 + 1] = 8, h
    cases.append((bytes(buf), h))  # short header: valid
    return cases


@pytest.mark.oracle
@pytest.mark.parametrize("h", range(CONCURRENCY))
def test_envoy_worker_selector_vectors(h: int) -> None:
    for packet, expected in envoy_selector_cases(h):
        assert quiclb.envoy_worker(packet, CONCURRENCY) == expected, packet.hex()


def test_envoy_worker_byte_follows_a_quiche_cid() -> None:
    config = quiclb.Config(2, 6, 10, bytes(16), expand_layout="draft-18")
    cid = quiclb.encode(config, H("abcdef123456"), bytes(10)) + bytes([5])
    assert quiclb.envoy_worker_byte(cid) == 5
    assert quiclb.short_header_dcid_length(b"\x40" + cid + b"pn", trailing=1) == len(cid)
    assert quiclb.envoy_worker(b"\x40" + cid + b"pn", CONCURRENCY) == 5
    with pytest.raises(quiclb.CidError):
        quiclb.envoy_worker_byte(cid[:-1])


@pytest.mark.parametrize("bad", [0, 255, 256, -1, True])
def test_envoy_concurrency_limits(bad: int) -> None:
    # quic_lb.cc refuses concurrency() >= UINT8_MAX (its message says "greater than 256").
    with pytest.raises(ValueError):
        quiclb.envoy_worker(bytes(20), bad)


# Envoy's route.bpf as compiled into quic_lb.cc (code, jt, jf, k); None = the concurrency.
ENVOY_CBPF: list[tuple[int, int, int, int | None]] = [
    (0x80, 0, 0, 0), (0x07, 0, 0, 0), (0x35, 0, 21, 0x00000009),
    (0x30, 0, 0, 0), (0x54, 0, 0, 0x00000080), (0x15, 0, 9, 0),
    (0x30, 0, 0, 0x00000001), (0x54, 0, 0, 0x0000001F), (0x04, 0, 0, 0x00000003),
    (0x2D, 14, 0, 0), (0x14, 0, 0, 0x00000001), (0x07, 0, 0, 0),
    (0x50, 0, 0, 0), (0x35, 10, 0, None), (0x16, 0, 0, 0),
    (0x80, 0, 0, 0), (0x35, 0, 7, 0x0000000E), (0x30, 0, 0, 0x00000005),
    (0x04, 0, 0, 0x00000006), (0x2D, 4, 0, 0), (0x14, 0, 0, 0x00000001),
    (0x07, 0, 0, 0), (0x50, 0, 0, 0), (0x05, 0, 0, 0x00000001),
    (0x20, 0, 0, 0xFFFFF020), (0x94, 0, 0, None), (0x16, 0, 0, 0),
]  # fmt: skip
SO_ATTACH_REUSEPORT_CBPF = 51


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class ReuseportGroup:
    """*n* UDP sockets in one SO_REUSEPORT group on loopback, Envoy's cBPF attached."""

    def __init__(self, n: int) -> None:
        insns = [(c, jt, jf, n if k is None else k) for c, jt, jf, k in ENVOY_CBPF]
        program = (_SockFilter * len(insns))(*(_SockFilter(*insn) for insn in insns))
        fprog = _SockFprog(len(insns), program)
        self.sockets: list[socket.socket] = []
        self.port = 0
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("127.0.0.1", self.port))
            s.setblocking(False)
            if i == 0:
                self.port = s.getsockname()[1]
                s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(fprog))
            self.sockets.append(s)
        self.client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client.bind(("127.0.0.1", 0))

    def recipient(self, payload: bytes) -> int:
        self.client.sendto(payload, ("127.0.0.1", self.port))
        ready, _, _ = select.select(self.sockets, [], [], 2.0)
        assert len(ready) == 1, "exactly one socket receives the datagram"
        index = self.sockets.index(ready[0])
        assert ready[0].recv(4096) == payload
        return index

    def close(self) -> None:
        for s in [*self.sockets, self.client]:
            s.close()


@pytest.fixture
def envoy_group() -> Iterator[ReuseportGroup]:
    try:
        group = ReuseportGroup(CONCURRENCY)
    except OSError as exc:
        oracle_unavailable(f"cannot attach a reuseport cBPF program here: {exc}")
    yield group
    group.close()


def random_quic_payloads(rng: random.Random, count: int) -> Iterator[bytes]:
    for _ in range(count):
        size = rng.randrange(0, 48)
        data = bytearray(rng.randbytes(size))
        if size > 5 and rng.random() < 0.5:
            data[5] = rng.randrange(0, 40)  # long-header DCID lengths near the packet size
        if size > 1 and rng.random() < 0.5:
            data[1] = rng.randrange(0, 20)
        for at in range(size):  # small worker bytes, so short headers often select
            if rng.random() < 0.3:
                data[at] = rng.randrange(0, 2 * CONCURRENCY)
        yield bytes(data)


@pytest.mark.oracle
def test_envoy_model_matches_envoy_cbpf_in_the_live_kernel(envoy_group: ReuseportGroup) -> None:
    """The kernel runs Envoy's program; sidkit's model must pick the same socket, and where the
    model says "fallback" the kernel must use the hash (one fixed socket for this 4-tuple).

    Limit of this oracle: on loopback the program's ``ld rxhash`` reads 0 (the skb has no hash
    yet), so its fallback is socket 0 and cannot be told apart from worker 0. Every other
    worker, and every fallback-versus-worker-1..7 confusion, is checked.
    """
    default = envoy_group.recipient(b"abcd")  # shorter than any QUIC header: the hash decides
    cases = [c for h in range(CONCURRENCY) for c in envoy_selector_cases(h)]
    cases += [
        (p, quiclb.envoy_worker(p, CONCURRENCY))
        for p in random_quic_payloads(random.Random(0xE4), 400)
    ]
    chosen = set()
    for payload, expected in cases:
        model = quiclb.envoy_worker(payload, CONCURRENCY)
        assert model == expected
        got = envoy_group.recipient(payload)
        assert got == (default if model is None else model), payload.hex()
        chosen.add(model)
    assert chosen >= set(range(CONCURRENCY)) | {None}  # every branch was exercised


# --- nginx ---------------------------------------------------------------------------------------


def test_nginx_cookie_prefix_from_source() -> None:
    # ngx_quic_write_uint64 writes big-endian: cookie 0x0102030405060708 -> octets 01..08.
    cookie = 0x0102030405060708
    cid = cookie.to_bytes(8, "big") + bytes(12)
    assert len(cid) == quiclb.NGINX_SERVER_CID_LENGTH
    assert quiclb.nginx_cid_cookie(cid) == cookie
    assert quiclb.nginx_socket_cookie(b"\x40" + cid + b"payload") == cookie
    long_hdr = b"\xc0\x00\x00\x00\x01" + bytes([20]) + cid + b"\x00"
    assert quiclb.nginx_socket_cookie(long_hdr) == cookie
    assert quiclb.nginx_socket_cookie(b"\xc0\x00\x00\x00\x01\x07" + cid[:7]) is None
    assert quiclb.nginx_socket_cookie(b"\x40" + cid[:7]) is None


def test_nginx_needs_the_whole_dcid() -> None:
    # ngx_quic_reuseport_helper.c:105 advance_data(len) "we expect the packet to have full
    # DCID": a short header needs 1 + NGX_QUIC_SERVER_CID_LEN (line 101) = 21 octets, a long
    # header 6 + its DCID length octet (lines 90-93), and a long DCID under 8 octets is passed
    # to the default selection (line 95).
    cookie = 0x1122334455667788
    cid = cookie.to_bytes(8, "big") + bytes(12)
    short = b"\x40" + cid
    assert quiclb.nginx_socket_cookie(short) == cookie  # exactly 21 octets
    for cut in range(len(short)):
        assert quiclb.nginx_socket_cookie(short[:cut]) is None, cut
    long_hdr = b"\xc0\x00\x00\x00\x01" + bytes([20]) + cid
    assert quiclb.nginx_socket_cookie(long_hdr) == cookie  # 6 + 20 octets
    for cut in range(len(long_hdr)):
        assert quiclb.nginx_socket_cookie(long_hdr[:cut]) is None, cut
    eight = b"\xc0\x00\x00\x00\x01\x08" + cid[:8]
    assert quiclb.nginx_socket_cookie(eight) == cookie  # the shortest DCID nginx keys on
    assert quiclb.nginx_socket_cookie(eight[:13]) is None
    for length in range(8):
        assert quiclb.nginx_socket_cookie(b"\xc0\x00\x00\x00\x01" + bytes([length]) + cid) is None
    # a long DCID length past 20 is not refused: nginx only needs the octets to be there
    big = b"\xc0\x00\x00\x00\x01" + bytes([255]) + cid + bytes(235)
    assert quiclb.nginx_socket_cookie(big) == cookie
    assert quiclb.nginx_socket_cookie(big[:-1]) is None
    with pytest.raises(quiclb.CidError):
        quiclb.nginx_cid_cookie(cid[:7])


# --- fuzz ----------------------------------------------------------------------------------------


@given(st.binary(max_size=40), st.integers(1, quiclb.ENVOY_MAX_CONCURRENCY))
def test_fuzz_scheme_decoders(data: bytes, concurrency: int) -> None:
    worker = quiclb.envoy_worker(data, concurrency)
    assert worker is None or 0 <= worker < concurrency
    got = quiclb.katran_packet_server_id(data)
    assert got is None or got.version in (1, 2, 3)
    cookie = quiclb.nginx_socket_cookie(data)
    assert cookie is None or 0 <= cookie < 2**64
    for decoder in (quiclb.katran_server_id, quiclb.envoy_worker_byte, quiclb.nginx_cid_cookie):
        with contextlib.suppress(quiclb.CidError):
            decoder(data)
