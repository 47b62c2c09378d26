"""Every per-packet balancer decoder against the balancer's own rule, datagram by datagram.

The rules below are transcriptions of the balancers' code, written step by step in the shape
of that code (offsets, bounds checks and early returns in its order) and deliberately not in
the shape of sidkit's functions, each with its file and lines at the release read:

* nginx 1.31.4 (nginx/nginx release-1.31.4-4-g3f6f7824d): ``src/event/quic/bpf/
  ngx_quic_reuseport_helper.c`` ``ngx_quic_select_socket_by_dcid()`` and the bytecode nginx
  ships from it, ``src/event/quic/ngx_event_quic_bpf_code.c``;
* Envoy (envoyproxy/envoy at 001744eb7e22): ``source/extensions/quic/connection_id_generator/
  quic_lb/quic_lb.cc`` and ``source/common/quic/envoy_deterministic_connection_id_generator.cc``,
  ``bpfEquivalentFunction()`` in each (the userspace twin of each cBPF program);
* Katran (facebookincubator/katran at 19f08fec82fb): ``katran/lib/bpf/pckt_parsing.h``
  ``parse_quic()`` (lines 343-412) and ``parse_udp_stable_rt_hdr()`` (lines 418-453), with the
  routing tests of ``katran/lib/bpf/balancer.bpf.c`` (``server_id > 0``).

Hypothesis draws short headers, truncated datagrams, long headers of every DCID length (0-255)
cut anywhere, stable-routing headers and plain noise; an exhaustive sweep covers every DCID
length and every cut near each boundary, so no branch depends on luck.

The fixture tests use the balancers' own test data: Envoy's
``test/common/quic/envoy_deterministic_connection_id_generator_test.cc`` and Katran's
``katran/lib/testing/fixtures/KatranUdpStableRtTestFixtures.h`` (with
``katran/lib/testing/tools/PacketBuilder.cpp`` ``stableRoutingPayload()`` and
``PacketBuilderTest.cpp``, and the ID mapping of ``katran/lib/testing/utils/
KatranTestProvision.cpp`` ``addQuicMappings()``).
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

import pytest
from conftest import oracle_unavailable
from hypothesis import given
from hypothesis import strategies as st

from sidkit import quiclb
from sidkit.bpf import cbpf, ebpf
from sidkit.steering import SteeringError, attach, compile_cbpf, compile_ebpf

# --- the balancers' rules, transcribed ----------------------------------------------------------

UDP_HEADER = 8


def nginx_rule(payload: bytes) -> int | None:
    """ngx_quic_select_socket_by_dcid(): the looked-up key, or None for SK_PASS without one.

    ``ctx->data`` starts at the UDP header (the program's first advance_data skips it).
    ``advance_data(n)``: offset += n; fail if start + offset > end; data = start + offset - 1.
    """
    skb = bytes(UDP_HEADER) + payload
    end = len(skb)
    offset = 0

    def advance(n: int) -> int | None:  # the macro, lines 47-53
        nonlocal offset
        offset += n
        if offset > end:
            return None
        return offset - 1  # index of `data`

    if advance(UDP_HEADER) is None:  # line 85
        return None
    data = advance(1)  # line 86: data at QUIC flags
    if data is None:
        return None
    if skb[data] & 0x80:  # line 88
        if advance(4) is None:  # line 90: version
            return None
        data = advance(1)  # line 91: DCID length
        if data is None:
            return None
        length = skb[data]  # line 93
        if length < 8:  # line 95: "useless to search for key in such short DCID"
            return None
    else:
        length = 20  # line 101: NGX_QUIC_SERVER_CID_LEN
    dcid = data + 1  # line 104
    if advance(length) is None:  # line 105: "we expect the packet to have full DCID"
        return None
    if dcid + 8 > end:  # line 108: "make verifier happy"
        return None
    return int.from_bytes(skb[dcid : dcid + 8], "big")  # line 112, ngx_quic_parse_uint64


def envoy_quic_lb_rule(payload: bytes, concurrency: int) -> int | None:
    """quic_lb.cc bpfEquivalentFunction(): the worker, or None for ``default_value``."""
    if len(payload) < 9:
        return None
    if payload[0] & 0x80:
        cid_len_offset, cid_offset = 5, 6
        if len(payload) < 14:
            return None
        id_len = payload[cid_len_offset]
        if len(payload) < cid_offset + id_len:
            return None
        snippet = payload[cid_offset + id_len - 1]  # the DCID's last octet
        return snippet % concurrency
    encrypted_cid_length = payload[1] & 0x1F  # quic::kLoadBalancerLengthMask
    worker_id_offset = 1 + 1 + encrypted_cid_length
    if len(payload) < worker_id_offset + 1:
        return None
    worker_id = payload[worker_id_offset]
    if worker_id >= concurrency:
        return None
    return worker_id


def envoy_deterministic_rule(payload: bytes, concurrency: int) -> int | None:
    """envoy_deterministic_connection_id_generator.cc bpfEquivalentFunction()."""
    if len(payload) < 9:
        return None
    first_octet = payload[0]
    if first_octet & 0x80:
        if len(payload) < 14:  # "Minimum length of a long header packet is 14."
            return None
        snippet = payload[6:10]  # copyOut(6, 4)
    else:
        snippet = payload[1:5]  # copyOut(1, 4)
    return int.from_bytes(snippet, "big") % concurrency  # htonl, then % concurrency


def _as_c_int(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def katran_quic_rule(payload: bytes) -> tuple[int, int]:
    """parse_quic(): (server_id as the C int, cid_version), FURTHER_PROCESSING = -1 and
    cid_version 0xFF where it returns before decoding."""
    further_processing, no_version = -1, 0xFF
    if len(payload) < 1:  # line 359
        return further_processing, no_version
    pkt_type = payload[0]
    if pkt_type & 0x80 == 0x80:
        if len(payload) < 14:  # line 373: sizeof(struct quic_long_header) = 1 + 4 + 1 + 8
            return further_processing, no_version
        if pkt_type & 0x30 < 0x20:  # line 376: type < QUIC_HANDSHAKE, is_initial
            return further_processing, no_version
        if payload[5] < 8:  # line 385: conn_id_lens < QUIC_MIN_CONNID_LEN
            return further_processing, no_version
        conn_id = payload[6:14]
    else:
        if len(payload) < 9:  # line 391: sizeof(struct quic_short_header) = 1 + 8
            return further_processing, no_version
        conn_id = payload[1:9]
    version = conn_id[0] >> 6
    if version == 1:
        return ((conn_id[0] & 0x3F) << 10) | (conn_id[1] << 2) | (conn_id[2] >> 6), 1
    if version == 2:
        return (conn_id[1] << 16) | (conn_id[2] << 8) | conn_id[3], 2
    if version == 3:
        raw = (conn_id[1] << 24) | (conn_id[2] << 16) | (conn_id[3] << 8) | conn_id[4]
        return _as_c_int(raw), 3
    return further_processing, 0


def katran_stable_rule(payload: bytes) -> tuple[int, bool]:
    """parse_udp_stable_rt_hdr(): (server_id, is_stable_rt_pkt)."""
    no_server_id = 0  # STABLE_RT_NO_SERVER_ID
    if len(payload) < 1:  # line 431
        return no_server_id, False
    if payload[0] == 0x52:  # line 438: STABLE_ROUTING_HEADER
        if len(payload) < 8:  # line 440: sizeof(struct stable_routing_header)
            return no_server_id, False
        return (payload[1] << 16) | (payload[2] << 8) | payload[3], True  # line 451
    return no_server_id, False


# --- comparisons --------------------------------------------------------------------------------

CONCURRENCIES = (1, 3, 8, 254)
DETERMINISTIC_CONCURRENCIES = (1, 3, 8, 256, 65535, 65536, 2**32 - 1)
_POLICIES = {n: quiclb.envoy_deterministic_steering_policy(n) for n in (1, 3, 8, 256, 65535)}
_CBPF = {n: compile_cbpf(p) for n, p in _POLICIES.items()}
_EBPF = {n: compile_ebpf(p, map_fd=3) for n, p in _POLICIES.items()}
_STABLE = [
    (n, first, quiclb.katran_stable_routing_steering_policy(n, first))
    for n, first in ((1, 1), (4, 1), (8, 0x030400), (300, 0xFFFF00))
]
_STABLE_PROGRAMS = [(compile_cbpf(p), compile_ebpf(p, map_fd=3)) for _n, _f, p in _STABLE]


def check_all(payload: bytes, *, programs: bool = True) -> None:
    assert quiclb.nginx_socket_cookie(payload) == nginx_rule(payload), payload.hex()

    for n in CONCURRENCIES:
        assert quiclb.envoy_worker(payload, n) == envoy_quic_lb_rule(payload, n), payload.hex()
    for n in DETERMINISTIC_CONCURRENCIES:
        want = envoy_deterministic_rule(payload, n)
        assert quiclb.envoy_deterministic_worker(payload, n) == want, (n, payload.hex())
    for n, policy in _POLICIES.items():
        want = envoy_deterministic_rule(payload, n)
        assert policy.select(payload) == want
        if not programs:
            continue
        got = cbpf.run(_CBPF[n], payload)
        assert (got if got < n else None) == want
        _v, selected = ebpf.run_sk_reuseport(
            _EBPF[n], ebpf.ReuseportContext(bytes(UDP_HEADER) + payload)
        )
        assert selected == want

    rule_id, rule_version = katran_quic_rule(payload)
    katran = quiclb.katran_packet_server_id(payload)
    if rule_version in (1, 2, 3):
        assert katran is not None and katran.version == rule_version
        assert _as_c_int(katran.server_id) == rule_id
        assert katran.routed_by_katran == (rule_id > 0)  # balancer.bpf.c:942 qpr.server_id > 0
    else:
        assert katran is None

    stable_id, is_stable = katran_stable_rule(payload)
    stable = quiclb.katran_stable_routing_server_id(payload)
    if is_stable:
        assert stable == quiclb.KatranServerId(2, stable_id)
        assert stable.routed_by_katran == (stable_id > 0)  # balancer.bpf.c:565
    else:
        assert stable is None
    for (n, first, policy), (cprog, eprog) in zip(_STABLE, _STABLE_PROGRAMS, strict=True):
        want = stable_id - first if is_stable and first <= stable_id < first + n else None
        assert policy.select(payload) == want
        if not programs:
            continue
        got = cbpf.run(cprog, payload)
        assert (got if got < n else None) == want
        _v, selected = ebpf.run_sk_reuseport(
            eprog, ebpf.ReuseportContext(bytes(UDP_HEADER) + payload)
        )
        assert selected == want


# --- datagrams ----------------------------------------------------------------------------------


@st.composite
def long_headers(draw: st.DrawFn) -> bytes:
    first = draw(st.integers(0x80, 0xFF))
    version = draw(st.binary(min_size=4, max_size=4))
    dcid_len = draw(st.one_of(st.integers(0, 21), st.integers(0, 255)))
    dcid = draw(st.binary(min_size=dcid_len, max_size=dcid_len))
    rest = draw(st.binary(max_size=24))
    packet = bytes([first]) + version + bytes([dcid_len]) + dcid + rest
    cut = draw(st.one_of(st.just(len(packet)), st.integers(0, len(packet))))
    return packet[:cut]


@st.composite
def short_headers(draw: st.DrawFn) -> bytes:
    first = draw(st.integers(0x00, 0x7F))
    # Katran's CID versions live in the DCID's top two bits; Envoy quic_lb's worker byte
    # follows a self-encoded length: bias both toward values that decode.
    cid0 = draw(st.one_of(st.integers(0, 255), st.sampled_from([0x00, 0x40, 0x80, 0xC0])))
    body = draw(st.binary(max_size=40))
    return (bytes([first, cid0]) + body)[: draw(st.integers(0, 42))]


@st.composite
def stable_routing(draw: st.DrawFn) -> bytes:
    first = draw(st.sampled_from([0x52, 0x50, 0x51, 0x53, 0xD2]))
    return bytes([first]) + draw(st.binary(max_size=20))


datagrams = st.one_of(short_headers(), long_headers(), stable_routing(), st.binary(max_size=64))


@given(datagrams)
def test_every_decoder_gives_the_balancers_answer(payload: bytes) -> None:
    check_all(payload)


def sweep() -> Iterator[bytes]:
    """Every long-header DCID length with cuts around each boundary, every short length, every
    Katran CID version, both header forms of every first octet that matters."""
    every_first = (0xC0, 0xE0, 0xF0, 0xD0)  # Initial, Handshake, Retry, 0-RTT (QUIC v1)
    every_version = (0x00, 0x40, 0x80, 0xC1)  # Katran CID versions 0-3
    for dcid_len in range(256):
        # past 24 octets only the length moves the boundaries: one form of each is enough
        firsts = every_first if dcid_len <= 24 else (0xE0,)
        versions = every_version if dcid_len <= 24 else (0xC1,)
        for first in firsts:
            for version_bits in versions:
                dcid = bytes([version_bits]) + bytes(range(1, 256))
                packet = bytes([first, 0, 0, 0, 1, dcid_len]) + dcid[:dcid_len] + b"\x05tail"
                cuts = {0, 1, 5, 6, 8, 9, 13, 14, 15, 21, len(packet)}
                cuts |= {6 + dcid_len - 1, 6 + dcid_len, 6 + dcid_len + 1}
                for cut in sorted(c for c in cuts if 0 <= c <= len(packet)):
                    yield packet[:cut]
    for size in range(48):
        for first in (0x40, 0x00, 0x52, 0x7F):
            for cid0 in (0x00, 0x41, 0x80, 0xC0, 0xFF, 0x08):
                yield (bytes([first, cid0]) + bytes([3, 0, 1, 7] * 12))[:size]
    for sid in (0, 1, 2, 4, 5, 0x030400, 0x030407, 0x030408, 0xFFFF00, 0xFFFFFF):
        for cut in range(10):
            yield (b"\x52" + sid.to_bytes(3, "big") + b"tail")[:cut]


def test_exhaustive_sweep_of_lengths_and_versions() -> None:
    for payload in sweep():
        # the programs read at most 14 octets: interpreting them on longer datagrams adds time,
        # not cases (the Hypothesis test runs them on everything it draws)
        check_all(payload, programs=len(payload) <= 40)


# --- Envoy's deterministic generator: its own tests ---------------------------------------------

# EnvoyDeterministicConnectionIdGeneratorContextTest: (packet, concurrency, worker or None).
ENVOY_DETERMINISTIC_CASES = [
    (b"aaaaaa", 256, None),  # ...ForShortHeaderPacketsTooShort
    (b"aaaaaa", 65536, None),
    (b"\x80xxxxxxxxxxx", 256, None),  # ...ForLongHeaderPacketsTooShort
    (b"\x80xxxxxxxxxxx", 65536, None),
    (b"x\x12\x34\x56\x78xxxxxxxxx", 256, 0x78),  # ...BytesOneToFourModConcurrencyForShortPackets
    (b"x\x12\x34\x56\x78xxxxxxxxx", 65536, 0x5678),
    (b"\x80xxxxx\x12\x34\x56\x78xxxxxxxxx", 256, 0x78),  # ...BytesSixToNine...ForLongPackets
    (b"\x80xxxxx\x12\x34\x56\x78xxxxxxxxx", 65536, 0x5678),
]


@pytest.mark.oracle
@pytest.mark.parametrize(("packet", "concurrency", "expected"), ENVOY_DETERMINISTIC_CASES)
def test_envoy_deterministic_worker_selector(
    packet: bytes, concurrency: int, expected: int | None
) -> None:
    assert quiclb.envoy_deterministic_worker(packet, concurrency) == expected


@pytest.mark.oracle
def test_envoy_next_cid_persists_worker_bytes() -> None:
    # NextConnectionIdPersistsWorkerThreadBytes: TestConnectionId(i << 16) (quiche's 8-octet
    # big-endian test CID) and a 12-octet generator; the first 4 octets survive.
    for i in range(256):
        original = (i << 16).to_bytes(8, "big")
        generated = bytes(range(100, 112))  # any quiche output: only its tail is kept
        new = quiclb.envoy_deterministic_next_cid(original, generated)
        assert new is not None and len(new) == 12
        assert new[:4] == original[:4]
        for n in (1, 7, 256, 65536):
            assert quiclb.envoy_deterministic_cid_worker(
                new, n
            ) == quiclb.envoy_deterministic_cid_worker(original, n)


# golang/go src/hash/fnv/fnv_test.go golden64a / golden128a: published FNV-1a vectors.
FNV1A_GOLDEN = [
    (b"", 0xCBF29CE484222325, 0x6C62272E07BB014262B821756295C58D),
    (b"a", 0xAF63DC4C8601EC8C, 0xD228CB696F1A8CAF78912B704E4A8964),
    (b"ab", 0x089C4407B545986A, 0x08809544BBAB1BE95AA0733055B69A62),
    (b"abc", 0xE71FA2190541574B, 0xA68D622CEC8B5822836DBC7977AF7F3B),
]


@pytest.mark.oracle
@pytest.mark.parametrize(("text", "fnv64", "fnv128"), FNV1A_GOLDEN)
def test_quiche_hashes_are_fnv1a(text: bytes, fnv64: int, fnv128: int) -> None:
    from sidkit.quiclb import _envoy  # noqa: PLC0415

    # quiche's DeterministicConnectionIdGenerator: FNV1a_64 then FNV1a_128, host (LE) order
    assert _envoy._quiche_deterministic_cid(text, 8) == fnv64.to_bytes(8, "little")
    assert _envoy._quiche_deterministic_cid(text, 24) == (
        fnv64.to_bytes(8, "little") + fnv128.to_bytes(16, "little")
    )
    assert _envoy._quiche_deterministic_cid(text, 30)[24:] == bytes(6)
    assert _envoy._quiche_deterministic_cid(text, 0) == b""


@pytest.mark.oracle
def test_envoy_generator_tests_with_quiche_hash() -> None:
    # EnvoyDeterministicConnectionIdGeneratorTest, generator length 12.
    # NextConnectionIdLengthIsCorrect: every original length gives a 12-octet CID (lengths
    # under 4 are left out: Envoy's memcpy then reads past the original's octets).
    for size in range(4, 254):
        new = quiclb.envoy_deterministic_next_cid(bytes(size), length=12)
        assert new is not None and len(new) == 12
    # NextConnectionIdHasEntropy: TestConnectionId(i), 8 octets big-endian, i = 0..256.
    news = []
    for i in range(257):
        original = i.to_bytes(8, "big")
        new = quiclb.envoy_deterministic_next_cid(original, length=12)
        assert new is not None and new != original
        news.append(new)
    assert len(set(news)) == len(news)
    # NextConnectionIdIsDeterministic
    nine = bytes.fromhex("00000000000000002a")
    assert quiclb.envoy_deterministic_next_cid(
        nine, length=12
    ) == quiclb.envoy_deterministic_next_cid(nine, length=12)


def test_envoy_replacement_cid() -> None:
    client = bytes.fromhex("c0ffee00112233445566")  # a 10-octet client-chosen DCID
    new = quiclb.envoy_deterministic_replacement_cid(client)
    assert new is not None and len(new) == quiclb.ENVOY_DETERMINISTIC_CID_LENGTH
    assert new[:4] == client[:4] and new == quiclb.envoy_deterministic_next_cid(client)
    assert quiclb.envoy_deterministic_replacement_cid(client[:8]) is None  # already 8: kept
    for n in (3, 8, 1000):
        assert quiclb.envoy_deterministic_cid_worker(
            new, n
        ) == quiclb.envoy_deterministic_cid_worker(client, n)


def test_envoy_next_cid_rules() -> None:
    original = bytes.fromhex("0102030405060708")
    # a generated CID that becomes the original once its prefix is copied: none is issued
    assert quiclb.envoy_deterministic_next_cid(original, b"\xff" * 4 + original[4:]) is None
    assert quiclb.envoy_deterministic_next_cid(original, original) is None
    with pytest.raises(quiclb.CidError):
        quiclb.envoy_deterministic_next_cid(b"\x01\x02\x03", original)
    with pytest.raises(quiclb.CidError):
        quiclb.envoy_deterministic_next_cid(original, b"\x01\x02\x03")


@given(
    st.integers(1, 2**32 - 1).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.binary(min_size=4, max_size=20),
)
def test_envoy_mint_routes_home(case: tuple[int, int], octets: bytes) -> None:
    n, worker = case
    cid = quiclb.envoy_deterministic_mint(worker, n, octets)
    assert len(cid) == len(octets) and cid[4:] == octets[4:]
    assert quiclb.envoy_deterministic_cid_worker(cid, n) == worker
    assert quiclb.envoy_deterministic_worker(b"\x40" + cid + bytes(8), n) == worker
    long_hdr = b"\xe0\x00\x00\x00\x01" + bytes([len(cid)]) + cid + b"\x00"
    if len(long_hdr) >= 14:
        assert quiclb.envoy_deterministic_worker(long_hdr, n) == worker
    # the prefix moves by less than n: the CID keeps the caller's randomness
    assert abs(int.from_bytes(cid[:4], "big") - int.from_bytes(octets[:4], "big")) < n


@pytest.mark.parametrize("bad", [0, -1, 2**32, True, "8"])
def test_envoy_deterministic_concurrency_limits(bad: object) -> None:
    with pytest.raises(ValueError):
        quiclb.envoy_deterministic_worker(bytes(20), bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        quiclb.envoy_deterministic_mint(0, bad, bytes(8))  # type: ignore[arg-type]


def test_envoy_deterministic_policy_limits() -> None:
    with pytest.raises(SteeringError):
        quiclb.envoy_deterministic_steering_policy(65536)
    with pytest.raises(ValueError):
        quiclb.envoy_deterministic_mint(8, 8, bytes(8))
    with pytest.raises(quiclb.CidError):
        quiclb.envoy_deterministic_mint(0, 8, bytes(3))


@pytest.mark.oracle
def test_envoy_deterministic_policy_in_the_live_kernel() -> None:
    """The compiled policy attached to a real SO_REUSEPORT group picks Envoy's worker; where
    Envoy falls back the kernel's hash decides (one fixed socket for this 4-tuple)."""
    n = 8
    sockets: list[socket.socket] = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("127.0.0.1", sockets[0].getsockname()[1] if i else 0))
            s.setblocking(False)
            sockets.append(s)
        handle = attach(sockets, quiclb.envoy_deterministic_steering_policy(n))
    except OSError as exc:
        for s in sockets:
            s.close()
        oracle_unavailable(f"cannot attach a reuseport cBPF program here: {exc}")
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    port = sockets[0].getsockname()[1]

    def recipient(payload: bytes) -> int:
        client.sendto(payload, ("127.0.0.1", port))
        ready, _, _ = select.select(sockets, [], [], 2.0)
        assert len(ready) == 1
        assert ready[0].recv(4096) == payload
        return sockets.index(ready[0])

    try:
        default = recipient(b"abcd")
        cases = [p for p, c, _ in ENVOY_DETERMINISTIC_CASES if c == 256]
        cases += [quiclb.envoy_deterministic_mint(w, n, bytes(range(w, w + 8))) for w in range(n)]
        cases = [*cases, *(b"\x40" + c + b"pn" for c in cases[4:])]
        cases += [b"\xe0\x00\x00\x00\x01" + bytes([len(c)]) + c for c in cases[4:12]]
        seen = set()
        for payload in cases:
            want = envoy_deterministic_rule(payload, n)
            assert recipient(payload) == (default if want is None else want), payload.hex()
            seen.add(want)
        assert seen >= set(range(n)) | {None}
    finally:
        handle.detach()
        for s in [*sockets, client]:
            s.close()


# --- Katran's UDP stable routing: its own fixtures ----------------------------------------------

# PacketBuilder::stableRoutingPayload(connectionId, payload): 0x52, the connection ID padded
# with zeros to 7 octets, then the payload (PacketBuilder.cpp lines 324-345).


def stable_payload(connection_id: bytes, payload: bytes) -> bytes:
    return b"\x52" + connection_id.ljust(7, b"\x00") + payload


# KatranUdpStableRtTestFixtures.h: fixtures 1 and 5 carry conn-id {} (ID 0: consistent
# hashing), 2-4 conn-id {0x03, 0x04, 0x03}, routed to fc00::3 -- the real that
# KatranTestProvision.cpp addQuicMappings() gives CIDv2 ID 0x030000 | 1027.
KATRAN_STABLE_FIXTURES = [
    (b"", None),
    (b"\x03\x04\x03", 0x030000 | 1027),
]
# PacketBuilderTest.cpp: the connection IDs its stable-routing tests build.
KATRAN_BUILDER_IDS = [
    (b"\x01\x02\x03", 0x010203),
    (b"\x01\x02\x03\x04\x05\x06\x07", 0x010203),
    (b"\xaa\xbb", 0xAABB00),
    (b"\xff", 0xFF0000),
]


@pytest.mark.oracle
@pytest.mark.parametrize(("conn_id", "routed_to"), KATRAN_STABLE_FIXTURES)
def test_katran_stable_routing_fixtures(conn_id: bytes, routed_to: int | None) -> None:
    got = quiclb.katran_stable_routing_server_id(stable_payload(conn_id, b"local test pkt"))
    assert got is not None
    if routed_to is None:
        assert got.server_id == 0 and not got.routed_by_katran
    else:
        assert got.server_id == routed_to and got.routed_by_katran
        assert quiclb.katran_stable_routing_header(routed_to) == stable_payload(conn_id, b"")


@pytest.mark.oracle
@pytest.mark.parametrize(("conn_id", "server_id"), KATRAN_BUILDER_IDS)
def test_katran_packet_builder_ids(conn_id: bytes, server_id: int) -> None:
    for payload in (b"data", b"x", b""):
        got = quiclb.katran_stable_routing_server_id(stable_payload(conn_id, payload))
        assert got == quiclb.KatranServerId(2, server_id)


def test_katran_stable_routing_rules() -> None:
    header = quiclb.katran_stable_routing_header(0xABCDEF, b"wxyz")
    assert header == bytes.fromhex("52abcdef") + b"wxyz"
    for cut in range(8):
        assert quiclb.katran_stable_routing_server_id(header[:cut]) is None
    for first in (0x50, 0x51, 0x53, 0xD2, 0x12):  # only 0x52 itself is a stable header
        assert quiclb.katran_stable_routing_server_id(bytes([first]) + header[1:]) is None
    for bad in (0, 2**24, -1):
        with pytest.raises(ValueError):
            quiclb.katran_stable_routing_header(bad)
    with pytest.raises(ValueError):
        quiclb.katran_stable_routing_header(1, b"abc")
    for bad_first in (0, 2**24, True):
        with pytest.raises(SteeringError):
            quiclb.katran_stable_routing_steering_policy(4, bad_first)


@pytest.mark.oracle
@pytest.mark.parametrize(("conn_id", "routed_to"), KATRAN_STABLE_FIXTURES)
def test_katran_stable_policy_on_the_fixtures(conn_id: bytes, routed_to: int | None) -> None:
    # a host whose 4 sockets serve IDs 0x030401..0x030404: the fixture's 0x030403 is socket 2
    policy = quiclb.katran_stable_routing_steering_policy(4, 0x030401)
    payload = stable_payload(conn_id, b"local test pkt")
    assert policy.select(payload) == (None if routed_to is None else 2)
