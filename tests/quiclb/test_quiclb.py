"""Properties of sidkit.quiclb between the published vectors (test_quiclb_vectors.py): round trips
for every legal configuration, the error model, the forwarding order of the balancer state
machine over every (table state x packet) combination, and fuzzing of every parser.

Nothing here compares with a value sidkit produced earlier: the round trips compare with the
inputs, the balancer tests with the order that draft-21 section 4.2 prescribes.
"""

from __future__ import annotations

import copy
import itertools
import pickle
import random
from collections.abc import Callable, Hashable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sidkit
from sidkit import quiclb

KEY = bytes(range(16))


@st.composite
def configs(draw: st.DrawFn) -> quiclb.Config:
    """Every legal configuration: draft-21's bounds, with or without key, both layouts."""
    sid = draw(st.integers(1, 15))
    nonce = draw(st.integers(4, 19 - sid))
    return quiclb.Config(
        draw(st.integers(0, 6)),
        sid,
        nonce,
        draw(st.none() | st.binary(min_size=16, max_size=16)),
        encode_length=draw(st.booleans()),
        server_use_length=draw(st.integers(0, 19 - sid - nonce)),
        expand_layout=draw(st.sampled_from(quiclb.EXPAND_LAYOUTS)),
    )


@st.composite
def config_and_fields(draw: st.DrawFn) -> tuple[quiclb.Config, bytes, bytes, bytes, int]:
    config = draw(configs())
    sid = draw(st.binary(min_size=config.server_id_length, max_size=config.server_id_length))
    nonce = draw(st.binary(min_size=config.nonce_length, max_size=config.nonce_length))
    use = draw(st.binary(min_size=config.server_use_length, max_size=config.server_use_length))
    return config, sid, nonce, use, draw(st.integers(0, 31))


# --- round trips -----------------------------------------------------------------------------


@given(config_and_fields())
def test_decode_encode_round_trip(case: tuple[quiclb.Config, bytes, bytes, bytes, int]) -> None:
    config, sid, nonce, use, bits = case
    low = None if config.encode_length else bits
    cid = quiclb.encode(config, sid, nonce, use, low_bits=low)
    assert len(cid) == config.cid_length
    assert cid[0] >> 5 == config.config_id
    assert cid[0] & 0x1F == (config.cid_length - 1 if config.encode_length else bits)
    assert quiclb.decode(config, cid) == sid
    assert quiclb.unpack(config, cid) == quiclb.CidParts(
        config.config_id, cid[0] & 0x1F, sid, nonce, use
    )
    route = quiclb.classify_dcid([config], cid, self_encoded_lengths=config.encode_length)
    assert (route.routable, route.server_id) == (True, sid)
    if config.key is None:
        assert cid[1 : 1 + len(sid)] == sid  # plaintext really is plain


@pytest.mark.parametrize("layout", quiclb.EXPAND_LAYOUTS)
@pytest.mark.parametrize("keyed", [False, True])
def test_every_length_pair_round_trips(layout: quiclb.ExpandLayout, keyed: bool) -> None:
    # Exhaustive over the lengths: all 120 (server ID, nonce) pairs of draft-21, 20 values each.
    rng = random.Random(f"{layout}{keyed}")
    for sid_len in range(1, 16):
        for nonce_len in range(4, 20 - sid_len):
            config = quiclb.Config(
                sid_len % 7, sid_len, nonce_len, KEY if keyed else None, expand_layout=layout
            )
            for _ in range(20):
                sid, nonce = rng.randbytes(sid_len), rng.randbytes(nonce_len)
                cid = quiclb.encode(config, sid, nonce)
                assert quiclb.decode(config, cid) == sid
                assert quiclb.unpack(config, cid).nonce == nonce


@given(configs(), st.data())
def test_encryption_is_a_permutation(config: quiclb.Config, data: st.DataObject) -> None:
    # Two different (server ID, nonce) never share a CID: the block cipher is invertible.
    n = config.plaintext_length
    a, b = data.draw(st.lists(st.binary(min_size=n, max_size=n), min_size=2, max_size=2))
    s = config.server_id_length
    use = bytes(config.server_use_length)
    low = None if config.encode_length else 0
    ca = quiclb.encode(config, a[:s], a[s:], use, low_bits=low)
    cb = quiclb.encode(config, b[:s], b[s:], use, low_bits=low)
    assert (ca == cb) == (a == b)


def test_decode_uses_three_passes_when_the_nonce_is_longer() -> None:
    calls: list[bytes] = []
    config = quiclb.Config(0, 3, 6, KEY)
    real = config._four._aes

    def counting(block: bytes) -> bytes:
        calls.append(block)
        return bytes(real(block))

    config._four._aes = counting
    cid = quiclb.encode(config, b"abc", b"nonce!")
    calls.clear()
    assert quiclb.decode(config, cid) == b"abc"
    assert len(calls) == config.decode_aes_calls == 3
    assert [block[-1] for block in calls] == [4, 3, 2]  # passes run backwards


# --- the configuration and the error model ----------------------------------------------------

BAD_CONFIGS: list[tuple[Callable[[], object], type[Exception], str]] = [
    (lambda: quiclb.Config(7, 3, 4), ValueError, "bad-quic-lb-config"),
    (lambda: quiclb.Config(-1, 3, 4), ValueError, "bad-quic-lb-config"),
    (lambda: quiclb.Config(True, 3, 4), TypeError, "not-int"),
    (lambda: quiclb.Config(0, 0, 4), ValueError, "bad-quic-lb-config"),
    (lambda: quiclb.Config(0, 3, 3), ValueError, "bad-quic-lb-config"),
    (lambda: quiclb.Config(0, 15, 5), ValueError, "bad-quic-lb-config"),
    (lambda: quiclb.Config(0, 10, 10), ValueError, "bad-quic-lb-config"),
    (lambda: quiclb.Config(0, 3, 4, bytes(15)), ValueError, "bad-key-size"),
    (lambda: quiclb.Config(0, 3, 4, "0123456789abcdef"), TypeError, "not-bytes"),
    (lambda: quiclb.Config(0, 9, 9, server_use_length=2), ValueError, "bad-quic-lb-config"),
    (lambda: quiclb.Config(0, 3, 4, expand_layout="draft-17"), ValueError, "bad-quic-lb-config"),
    (lambda: quiclb.Config(0, 3, 4, encode_length=1), TypeError, "not-bool"),
    (lambda: quiclb.encode(quiclb.Config(0, 3, 4), b"ab", b"1234"), ValueError, "bad-server-id"),
    (lambda: quiclb.encode(quiclb.Config(0, 3, 4), b"abc", b"123"), ValueError, "bad-nonce"),
    (
        lambda: quiclb.encode(quiclb.Config(0, 3, 4), b"abc", b"1234", b"x"),
        ValueError,
        "bad-server-use",
    ),
    (
        lambda: quiclb.encode(quiclb.Config(0, 3, 4), b"abc", b"1234", low_bits=3),
        ValueError,
        "bad-first-octet",
    ),
    (
        lambda: quiclb.encode(
            quiclb.Config(0, 3, 4, encode_length=False), b"abc", b"1234", low_bits=32
        ),
        ValueError,
        "bad-first-octet",
    ),
    (
        lambda: quiclb.encode(quiclb.Config(0, 3, 4), "abc", b"1234"),  # type: ignore[arg-type]
        TypeError,
        "not-bytes",
    ),
    (lambda: quiclb.decode("config", b"\x00" * 8), TypeError, "bad-type"),  # type: ignore[arg-type]
    (lambda: quiclb.server_id_index(quiclb.Config(0, 3, 4), b"", 0), ValueError, "out-of-range"),
    (lambda: quiclb.classify_dcid([quiclb.Config(1, 3, 4)] * 2, b""), ValueError, ""),
    (lambda: quiclb.short_header_dcid_length(b"\x40\x07", trailing=-1), ValueError, "quic-lb"),
]


@pytest.mark.parametrize(("call", "builtin", "code"), BAD_CONFIGS)
def test_misuse_raises_sidkit_errors(
    call: Callable[[], object], builtin: type[Exception], code: str
) -> None:
    with pytest.raises(sidkit.SidkitError) as info:
        call()
    assert isinstance(info.value, builtin)
    assert info.value.code and str(info.value)
    if code:
        assert info.value.code == code


@given(configs())
def test_config_copies_and_pickles(config: quiclb.Config) -> None:
    # A value type: copies are equal and work (the cipher contexts are rebuilt, not shared).
    sid, nonce = bytes(config.server_id_length), bytes(config.nonce_length)
    use, low = bytes(config.server_use_length), None if config.encode_length else 5
    cid = quiclb.encode(config, sid, nonce, use, low_bits=low)
    for other in (copy.copy(config), copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert other == config and hash(other) == hash(config)
        assert quiclb.encode(other, sid, nonce, use, low_bits=low) == cid
        assert quiclb.decode(other, cid) == sid


def test_config_properties() -> None:
    assert quiclb.Config(0, 3, 4).mode == "plaintext"
    assert quiclb.Config(0, 8, 8, KEY).mode == "single-pass"
    assert quiclb.Config(0, 8, 9, KEY).mode == "four-pass"
    assert quiclb.Config(0, 9, 8, KEY).decode_aes_calls == 4
    assert quiclb.Config(0, 8, 9, KEY).decode_aes_calls == 3
    assert quiclb.Config(0, 3, 4).decode_aes_calls == 0
    config = quiclb.Config(5, 4, 6, KEY, server_use_length=3)
    assert (config.plaintext_length, config.cid_length) == (10, 14)
    assert config.first_octet() == (5 << 5) | 13
    assert "key=" not in repr(config) and KEY.hex() not in repr(config)  # keys stay out of logs
    assert quiclb.Config(0, 3, 4, KEY) == quiclb.Config(0, 3, 4, bytearray(KEY))
    assert hash(quiclb.Config(0, 3, 4, KEY)) == hash(quiclb.Config(0, 3, 4, memoryview(KEY)))


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bytes_like_inputs_agree(kind: type) -> None:
    config = quiclb.Config(2, 5, 7, KEY)
    cid = quiclb.encode(config, b"srvid", b"nonce!!")
    assert quiclb.encode(config, kind(b"srvid"), kind(b"nonce!!")) == cid
    assert quiclb.decode(config, kind(cid)) == b"srvid"
    assert quiclb.classify_dcid([config], kind(cid)).server_id == b"srvid"


def test_decode_ignores_trailing_octets() -> None:
    config = quiclb.Config(1, 4, 5, KEY)
    cid = quiclb.encode(config, b"four", b"fiver")
    assert quiclb.decode(config, cid + b"server use") == b"four"


# --- classify_dcid and server_id_index --------------------------------------------------------


def test_classify_reasons() -> None:
    plain = quiclb.Config(1, 2, 4)
    keyed = quiclb.Config(2, 3, 4, KEY)
    table = [plain, keyed]
    cid = quiclb.encode(keyed, b"abc", b"1234")
    assert quiclb.classify_dcid(table, cid) == quiclb.CidRoute(True, "routable", 2, b"abc")
    assert quiclb.classify_dcid(table, b"").reason == "empty"
    assert quiclb.classify_dcid(table, b"\xe0" + bytes(9)).reason == "unroutable-codepoint"
    assert quiclb.classify_dcid(table, b"\x60" + bytes(9)).reason == "unknown-config"
    assert quiclb.classify_dcid(table, cid[:-1]).reason == "too-short"
    # Optional self-encoded-length checks: a long header's DCID length must agree.
    assert quiclb.classify_dcid(table, cid + b"x", self_encoded_lengths=True).routable
    long_extra = quiclb.classify_dcid(
        table, cid + b"x", self_encoded_lengths=True, long_header=True
    )
    assert long_extra.reason == "length-mismatch"
    short_len = bytes([cid[0] & 0xE0 | 3]) + cid[1:]
    assert quiclb.classify_dcid(table, short_len, self_encoded_lengths=True).reason == (
        "length-mismatch"
    )
    assert quiclb.classify_dcid(table, short_len).routable  # without the option: not checked
    assert quiclb.classify_dcid({9: plain}, quiclb.encode(plain, b"ab", b"1234")).routable


@given(st.integers(0, 2**24 - 1), st.integers(1, 2**24), st.booleans())
def test_server_id_index(server: int, n: int, wrap: bool) -> None:
    config = quiclb.Config(3, 3, 5, KEY)
    cid = quiclb.encode(config, server.to_bytes(3, "big"), b"nonce")
    expected = server % n if wrap else (server if server < n else None)
    assert quiclb.server_id_index(config, cid, n, wrap=wrap) == expected
    assert quiclb.server_id_index(config, b"\xe0" + cid[1:], n) is None
    assert quiclb.server_id_index(config, cid[:5], n) is None


# --- short_header_dcid_length -----------------------------------------------------------------


@given(config_and_fields(), st.binary(max_size=40))
def test_short_header_dcid_length(
    case: tuple[quiclb.Config, bytes, bytes, bytes, int], rest: bytes
) -> None:
    config, sid, nonce, use, _ = case
    if not config.encode_length:
        return
    cid = quiclb.encode(config, sid, nonce, use)
    packet = b"\x41" + cid + rest
    assert quiclb.short_header_dcid_length(packet) == len(cid) == config.cid_length
    # Envoy appends a worker octet the length field does not count (within QUIC v1's 20).
    if len(cid) < quiclb.MAX_CID_LENGTH:
        assert quiclb.short_header_dcid_length(packet + b"w", trailing=1) == len(cid) + 1


@pytest.mark.parametrize(
    ("packet", "code"),
    [
        (b"", "packet-truncated"),
        (b"\x40", "packet-truncated"),
        (b"\xc0\x07abcdefgh", "not-short-header"),
        (b"\x40\x07abcdef", "packet-truncated"),
        (b"\x40\x1f" + bytes(40), "cid-too-long"),
    ],
)
def test_short_header_dcid_length_errors(packet: bytes, code: str) -> None:
    with pytest.raises(quiclb.CidError) as info:
        quiclb.short_header_dcid_length(packet)
    assert info.value.code == code


def test_short_header_dcid_length_limit_is_a_parameter() -> None:
    assert quiclb.short_header_dcid_length(b"\x40\x1f" + bytes(40), max_length=32) == 32


# --- fuzz: any bytes parse or raise sidkit's error ---------------------------------------------

FUZZ_CONFIGS = [
    quiclb.Config(0, 3, 4),
    quiclb.Config(1, 8, 8, KEY),
    quiclb.Config(2, 9, 9, KEY),
    quiclb.Config(3, 4, 7, KEY, expand_layout="draft-18"),
    quiclb.Config(6, 2, 4, KEY, server_use_length=2),
]


@given(st.binary(max_size=48))
def test_fuzz_decoders(data: bytes) -> None:
    for config in FUZZ_CONFIGS:
        try:
            sid = quiclb.decode(config, data)
        except quiclb.CidError:
            pass
        else:
            assert len(sid) == config.server_id_length
        route = quiclb.classify_dcid(FUZZ_CONFIGS, data, self_encoded_lengths=True)
        assert route.routable == (route.server_id is not None)
        index = quiclb.server_id_index(config, data, 7)
        assert index is None or 0 <= index < 7
    try:
        length = quiclb.short_header_dcid_length(data)
    except quiclb.CidError:
        pass
    else:
        assert 1 <= length < len(data)


@given(st.one_of(st.text(max_size=8), st.integers(), st.none(), st.lists(st.integers())))
def test_fuzz_non_bytes_raise_sidkit_errors(junk: object) -> None:
    calls: list[Callable[[], object]] = [
        lambda: quiclb.decode(FUZZ_CONFIGS[1], junk),  # type: ignore[arg-type]
        lambda: quiclb.classify_dcid(FUZZ_CONFIGS, junk),  # type: ignore[arg-type]
        lambda: quiclb.short_header_dcid_length(junk),  # type: ignore[arg-type]
        lambda: quiclb.encode(FUZZ_CONFIGS[0], junk, b"1234"),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(sidkit.SidkitError):
            call()


# --- the balancer: draft-21 section 4.2 --------------------------------------------------------

PLAIN = quiclb.Config(0, 1, 4)
ENCRYPTED = quiclb.Config(1, 2, 6, KEY)
POOLS = [
    quiclb.ServerPool(PLAIN, {b"\x01": "s1", b"\x02": "s2"}),
    quiclb.ServerPool(ENCRYPTED, {b"e1": "s1", b"e2": "s3"}),
]
TARGETS = ("s1", "s2", "s3")
A, B = ("192.0.2.1", 40000, "198.51.100.1", 443), ("192.0.2.9", 40001, "198.51.100.1", 443)


def long_header(dcid: bytes, scid: bytes, ptype: int = 0) -> bytes:
    return (
        bytes([0xC0 | ptype << 4])
        + b"\x00\x00\x00\x01"
        + bytes([len(dcid)])
        + dcid
        + (bytes([len(scid)]) + scid + b"\x00" * 20)
    )


def short_header(dcid: bytes) -> bytes:
    return b"\x40" + dcid + b"\x00" * 20


def sequence(*targets: str) -> Callable[[Hashable], str]:
    it: Iterator[str] = itertools.cycle(targets)
    return lambda _four_tuple: next(it)


def test_routable_cid_goes_to_its_server() -> None:
    lb = quiclb.Balancer(POOLS)
    cid = quiclb.encode(ENCRYPTED, b"e2", b"nonce!")
    for packet in (short_header(cid), long_header(cid, b"", ptype=2)):
        decision = lb.route(packet, A, 0.0)
        assert decision == quiclb.Decision("s3", "cid", "routable", b"e2")
    assert lb.counts["step:cid"] == 2
    assert sum(lb.table_sizes().values()) == 0  # routable CIDs need no state


def test_unknown_server_falls_back_and_is_remembered() -> None:
    lb = quiclb.Balancer(POOLS, fallback=sequence("s2", "s3"))
    cid = quiclb.encode(PLAIN, b"\x07", b"1234")  # decodable, but no server 7
    first = lb.route(short_header(cid), A, 0.0)
    assert (first.target, first.step, first.reason) == ("s2", "fallback", "unknown-server")
    again = lb.route(short_header(cid), A, 1.0)
    assert (again.target, again.step) == ("s2", "dcid-table")
    other = quiclb.encode(PLAIN, b"\x09", b"1234")
    assert lb.route(short_header(other), A, 2.0).step == "four-tuple-table"
    assert lb.counts["unroutable:unknown-server"] == 3


def test_unroutable_codepoint_survives_migration_through_the_dcid_table() -> None:
    # A server without a configuration issues 0b111 CIDs, which MUST self-encode their length
    # (section 3.2): the balancer reads the short-header DCID by that length, and the DCID
    # table carries the connection to its new 4-tuple.
    lb = quiclb.Balancer(POOLS, fallback=sequence("s3", "s1"))
    dcid = bytes([0xE0 | 7]) + b"1234567"
    assert lb.route(short_header(dcid), A, 0.0).target == "s3"
    moved = lb.route(short_header(dcid), B, 1.0)
    assert (moved.target, moved.step, moved.reason) == ("s3", "dcid-table", "unroutable-codepoint")


def test_client_initial_then_handshake_flow() -> None:
    # Client Initials carry a client-chosen DCID: fallback, recorded by (4-tuple, SCID); the
    # retransmission and the 0-RTT packet with a new DCID follow the recorded decision.
    lb = quiclb.Balancer(POOLS, fallback=sequence("s2", "s1"))
    initial = long_header(b"\xc1random!", b"client-scid")
    assert lb.route(initial, A, 0.0).step == "fallback"
    zero_rtt = long_header(b"\xc2other!!", b"client-scid", ptype=1)
    decision = lb.route(zero_rtt, A, 0.1)
    assert (decision.target, decision.step) == ("s2", "long-header-table")
    server_cid = quiclb.encode(PLAIN, b"\x02", b"abcd")
    assert lb.route(short_header(server_cid), B, 0.2).step == "cid"


@pytest.mark.parametrize("routable", [False, True])
@pytest.mark.parametrize("long", [False, True])
@pytest.mark.parametrize("state", list(itertools.product([False, True], repeat=3)))
def test_forwarding_order_exhaustive(
    routable: bool, long: bool, state: tuple[bool, bool, bool]
) -> None:
    """Every (table state x packet) combination: the first step of section 4.2 that applies
    decides. Each table holds a different target, so the decision names the step."""
    lb = quiclb.Balancer(POOLS, fallback=lambda _t: "fallback-target")
    # Unroutable: config 6 is unknown; its length (7 after the first octet) is self-encoded.
    dcid = quiclb.encode(PLAIN, b"\x01", b"abcd") if routable else b"\xc7" + bytes(7)
    scid = b"scid"
    packet = long_header(dcid, scid, ptype=2) if long else short_header(dcid)
    has_long, has_dcid, has_tuple = state
    tables = lb._tables
    if has_long:
        tables["long-header"].put((A, scid), "long-target", 0.0)
    if has_dcid:
        tables["dcid"].put(dcid, "dcid-target", 0.0)
    if has_tuple:
        tables["four-tuple"].put(A, "tuple-target", 0.0)
    decision = lb.route(packet, A, 1.0)
    if routable:
        expected = ("s1", "cid")
    elif long and has_long:
        expected = ("long-target", "long-header-table")
    elif has_dcid:
        expected = ("dcid-target", "dcid-table")
    elif has_tuple:
        expected = ("tuple-target", "four-tuple-table")
    else:
        expected = ("fallback-target", "fallback")
    assert (decision.target, decision.step) == expected
    assert lb.counts[f"step:{expected[1]}"] == 1


def test_idle_timeout_and_table_bound() -> None:
    lb = quiclb.Balancer(POOLS, fallback=sequence("s1", "s2", "s3"), idle_timeout=10, table_size=2)
    junk = short_header(b"\x68" + bytes(8))  # unknown config 3, self-encoded length 8
    assert lb.route(junk, A, 0.0).target == "s1"
    assert lb.route(junk, A, 9.0).step == "dcid-table"  # refreshes the timer
    assert lb.route(junk, A, 18.0).step == "dcid-table"
    late = lb.route(junk, A, 28.5)
    assert (late.target, late.step) == ("s2", "fallback")
    assert lb.counts["expired:dcid"] == 1 and lb.counts["expired:four-tuple"] == 1
    for i in range(3):
        lb.route(short_header(b"\x68" + bytes([i]) * 8), (i,), 30.0)
    assert lb.table_sizes()["dcid"] == 2
    assert lb.counts["evicted:dcid"] >= 1


def test_record_option_and_self_encoded_lengths() -> None:
    lb = quiclb.Balancer(POOLS, record=["four-tuple"], self_encoded_lengths=True)
    cid = quiclb.encode(PLAIN, b"\x01", b"abcd")
    assert lb.route(long_header(cid, b"s", ptype=2), A, 0).step == "cid"
    bad = bytes([cid[0] + 1]) + cid[1:]  # self-encoded length one too long for the header
    decision = lb.route(long_header(bad, b"s", ptype=2), A, 0)
    assert (decision.step, decision.reason) == ("fallback", "length-mismatch")
    assert lb.table_sizes() == {"long-header": 0, "dcid": 0, "four-tuple": 1}


def test_default_fallback_is_deterministic_over_all_servers() -> None:
    lb1, lb2 = quiclb.Balancer(POOLS), quiclb.Balancer(POOLS)
    seen = set()
    for port in range(200):
        four = ("192.0.2.1", port, "198.51.100.1", 443)
        d1, d2 = lb1.route(b"", four, 0), lb2.route(b"", four, 0)
        assert d1 == d2 and d1.reason == "malformed"
        seen.add(d1.target)
    assert seen == set(TARGETS)


def test_balancer_misconfiguration() -> None:
    with pytest.raises(quiclb.ConfigError):
        quiclb.ServerPool(PLAIN, {b"\x01\x02": "x"})
    with pytest.raises(quiclb.ConfigError):
        quiclb.Balancer([POOLS[0], quiclb.ServerPool(quiclb.Config(0, 2, 4), {})])
    with pytest.raises(sidkit.SidkitError):
        quiclb.Balancer([], fallback_targets=[])
    with pytest.raises(sidkit.SidkitError):
        quiclb.Balancer(POOLS, record=["nope"])
    with pytest.raises(sidkit.SidkitError):
        quiclb.Balancer(POOLS).route(b"", A, "now")  # type: ignore[arg-type]
    with pytest.raises(TypeError) as info:
        quiclb.ServerPool("config", {})  # type: ignore[arg-type]
    assert isinstance(info.value, sidkit.SidkitError)
    with pytest.raises(sidkit.InputTypeError):
        quiclb.Balancer(POOLS).route(b"", ["not", "hashable"], 0.0)  # type: ignore[arg-type]


packets = st.one_of(
    st.binary(max_size=64),
    st.builds(short_header, st.binary(max_size=24)),
    st.builds(long_header, st.binary(max_size=24), st.binary(max_size=24), st.integers(0, 3)),
    st.builds(
        lambda sid, n: short_header(quiclb.encode(ENCRYPTED, sid, n)),
        st.sampled_from([b"e1", b"e2", b"zz"]),
        st.binary(min_size=6, max_size=6),
    ),
)


@given(st.lists(st.tuples(packets, st.sampled_from([A, B]), st.floats(0, 100)), max_size=30))
def test_fuzz_balancer_never_raises(traffic: list[tuple[bytes, Hashable, float]]) -> None:
    lb = quiclb.Balancer(POOLS, table_size=4, idle_timeout=5)
    for packet, four, now in traffic:
        decision = lb.route(packet, four, now)
        assert decision.target in TARGETS
        if decision.step == "cid":
            assert decision.server_id in (b"\x01", b"\x02", b"e1", b"e2")
        # truncations of the packet never raise either
        lb.route(packet[: len(packet) // 2], four, now)
    assert sum(v for k, v in lb.counts.items() if k.startswith("step:")) == 2 * len(traffic)
