"""QUIC parsing edges found by the mutation run (conformance/mutation, issue 21).

Each test pins a rule a mutant of plugins/sidkit_quic could break without another test
failing: the fixed-bit / greasing rule (RFC 9287 section 3), a coalesced short header taking
the first packet's DCID length (RFC 9000 section 12.2), the variable-length integer bounds
(RFC 9000 section 16), 1-byte known CIDs and the longest known CID first, QUIC-LB length
self-description (draft-ietf-quic-load-balancers-21 section 3.3), the steering locations'
first-byte masks under ``grease_quic_bit`` and ``quic_lb``, the option validators, and fuzz
properties that assert what a returned ID is (bytes of the payload at the header's DCID
offset, within the RFC's lengths), not only that nothing foreign escapes.
"""

from __future__ import annotations

import random
import struct

import pytest
import sidkit_quic
from fixtures import packets as pk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidkit import InputTypeError, InputValueError, SidkitError
from sidkit.extract import Extractor, MalformedPacketError

D8 = bytes.fromhex("c0ffee0011223344")
E8 = bytes.fromhex("0badcafe55667788")
S5 = bytes.fromhex("5c1d5c1d5c")


def _initial(dcid: bytes = D8, body: bytes = b"\x01" * 20, token: bytes = b"") -> bytes:
    return pk.quic_long(pk.QUIC_V1, "initial", dcid, S5, body, token=token)


# --- coalesced packets ----------------------------------------------------------------------


def test_coalesced_short_header_takes_the_first_packets_dcid_length() -> None:
    same = _initial() + pk.quic_short(D8, b"\x42" * 12)
    packets = sidkit_quic.split_datagram(same)
    assert [(p.long_header, p.dcid, p.ignored) for p in packets] == [
        (True, D8, False),
        (False, D8, False),
    ]
    assert packets[1].offset == packets[0].end and packets[1].end == len(same)
    # another DCID of the same length is read at that length and marked ignored
    other = _initial() + pk.quic_short(E8, b"\x42" * 12)
    packets = sidkit_quic.split_datagram(other)
    assert [(p.dcid, p.ignored) for p in packets] == [(D8, False), (E8, True)]
    # a configured length wins over the first DCID's
    packets = sidkit_quic.split_datagram(same, cid_length=4)
    assert [p.dcid for p in packets] == [D8, D8[:4]] and packets[1].ignored
    # QUIC-LB self-description wins too: 0xc0 & 0x1f = 0 -> a 1-byte CID
    packets = sidkit_quic.split_datagram(same, quic_lb=True)
    assert [p.dcid for p in packets] == [D8, D8[:1]]
    # a short header first has nothing to inherit from
    assert sidkit_quic.split_datagram(pk.quic_short(D8, b"\x42" * 12)) == []


def test_coalesced_long_packets_are_walked_by_their_length_fields() -> None:
    hs = pk.quic_long(pk.QUIC_V1, "handshake", D8, S5, b"\x07" * 30)
    datagram = _initial() + hs + bytes(25)  # zero padding after the last packet
    packets = sidkit_quic.split_datagram(datagram)
    assert [p.packet_type for p in packets] == ["initial", "handshake"]
    assert packets[0].end == len(_initial())
    assert packets[1].offset == packets[0].end and packets[1].end == len(datagram) - 25


# --- variable-length integers -----------------------------------------------------------------


def _varint(value: int, size: int) -> bytes:
    prefix = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    return (value | (prefix << (8 * size - 2))).to_bytes(size, "big")


@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("token_length", [0, 1, 5, 63])
def test_token_and_length_varints_of_every_size(size: int, token_length: int) -> None:
    """A non-minimal encoding is legal (RFC 9000 section 16); the value decides the end."""
    token = bytes(range(token_length))
    body = b"\x09" * 40
    head = bytes([0xC0]) + struct.pack(">I", 1) + bytes([8]) + D8 + bytes([5]) + S5
    packet = head + _varint(token_length, size) + token + _varint(len(body), size) + body
    header = sidkit_quic.parse_header(packet + b"\xff" * 3)
    assert header is not None and header.end == len(packet)
    assert header.dcid == D8 and header.scid == S5
    # one byte less of body: the Length field runs past the datagram
    with pytest.raises(MalformedPacketError, match="Length"):
        sidkit_quic.parse_header(packet[:-1])


def test_every_truncation_inside_a_varint_is_our_error() -> None:
    head = bytes([0xC0]) + struct.pack(">I", 1) + bytes([8]) + D8 + bytes([5]) + S5
    packet = head + _varint(3, 8) + b"tok" + _varint(10, 4) + b"\x00" * 10
    token_at = len(head)
    length_at = token_at + 8 + 3
    for cut in range(token_at, len(packet)):
        data = packet[:cut]
        if cut in (token_at, length_at):
            expected = "past the end"  # the varint's first byte is missing
        elif token_at < cut < token_at + 8 or length_at < cut < length_at + 4:
            expected = "past the end"  # the varint is cut inside
        else:
            expected = "Length|past the end"
        with pytest.raises(MalformedPacketError, match=expected):
            sidkit_quic.parse_header(data)


def test_a_token_running_past_the_datagram_is_malformed() -> None:
    packet = _initial(token=b"T" * 10)
    cut = packet[: len(packet) - 30]  # inside the body
    with pytest.raises(MalformedPacketError):
        sidkit_quic.parse_header(cut)


# --- known CIDs, greasing, QUIC-LB ------------------------------------------------------------


def test_one_byte_known_cid() -> None:
    cid = b"\x07"
    packet = pk.quic_short(cid, b"\x99" * 20)
    sid = Extractor(["quic"], {"known_cids": [cid]}).extract(packet)
    assert sid is not None and sid.value == cid and sid.details["cid_source"] == "known"
    header = sidkit_quic.parse_header(packet, known_cids=[cid])
    assert header is not None and header.dcid == cid
    # greased first byte, still known
    greased = pk.quic_short(cid, b"\x99" * 20, fixed_bit=False)
    sid = Extractor(["quic"], {"known_cids": [cid]}).extract(greased)
    assert sid is not None and sid.value == cid


def test_the_longest_known_cid_is_tried_first() -> None:
    short, long_ = b"\xaa", b"\xaa\xbb\xcc\xdd"
    packet = pk.quic_short(long_, b"\x01" * 16)
    for known in ([short, long_], [long_, short], [long_, b"\xaa\xbb", short]):
        sid = Extractor(["quic"], {"known_cids": known}).extract(packet)
        assert sid is not None and sid.value == long_, known
        header = sidkit_quic.parse_header(packet, known_cids=known)
        assert header is not None and header.dcid == long_
    # the longer one does not match: the shorter one is used
    packet = pk.quic_short(short + b"\x00\x00\x00", b"\x01" * 16)
    sid = Extractor(["quic"], {"known_cids": [short, long_]}).extract(packet)
    assert sid is not None and sid.value == short


def test_known_cids_beat_quic_lb_and_the_configured_length() -> None:
    packet = pk.quic_short(b"\x03\x01\x02\x03\x04\x05", b"\x01" * 16)  # 0x03 -> 4 by QUIC-LB
    opts = {"known_cids": [b"\x03\x01\x02\x03\x04\x05"], "quic_lb": True, "cid_length": 2}
    sid = Extractor(["quic"], opts).extract(packet)
    assert sid is not None and sid.value == packet[1:7] and sid.details["cid_source"] == "known"
    sid = Extractor(["quic"], {"quic_lb": True, "cid_length": 2}).extract(packet)
    assert sid is not None and sid.value == packet[1:5] and sid.details["cid_source"] == "quic_lb"
    sid = Extractor(["quic"], {"cid_length": 2}).extract(packet)
    assert (
        sid is not None and sid.value == packet[1:3] and sid.details["cid_source"] == "configured"
    )


@pytest.mark.parametrize("low", range(32))
def test_quic_lb_self_description_up_to_20_octets(low: int) -> None:
    cid0 = 0x40 | low  # config rotation bits above the length bits
    packet = bytes([0x41, cid0]) + bytes(range(1, 40))
    want = low + 1 if low + 1 <= 20 else 3  # past 20 octets it is no self-description
    header = sidkit_quic.parse_header(packet, quic_lb=True, cid_length=3)
    assert header is not None and header.dcid == packet[1 : 1 + want], low
    packets = sidkit_quic.split_datagram(packet, quic_lb=True, cid_length=3)
    assert [p.dcid for p in packets] == [packet[1 : 1 + want]]
    if low + 1 > 20:
        assert sidkit_quic.parse_header(packet, quic_lb=True) is None
        assert sidkit_quic.split_datagram(packet, quic_lb=True) == []
    sid = Extractor(["quic"], {"quic_lb": True}).extract(packet)
    if low + 1 <= 20:
        assert sid is not None and sid.value == packet[1 : 2 + low]
    else:
        assert sid is None


def test_fixed_bit_rule_in_every_entry_point() -> None:
    """RFC 9287 section 3: a short header with the fixed bit clear is QUIC only with greasing
    negotiated (any DCID) or when its DCID is one of the known CIDs."""
    for first_low in (0x00, 0x01, 0x21, 0x3F):
        greased = bytes([first_low]) + E8 + b"\x55" * 20
        for opts in ({"cid_length": 8}, {"quic_lb": True}, {"cid_length": 8, "quic_lb": True}):
            assert sidkit_quic.parse_header(greased, **opts) is None
            assert sidkit_quic.split_datagram(greased, **opts) == []
            assert Extractor(["quic"], opts).extract(greased) is None
            # with the bit set the same options take it
            fixed = bytes([first_low | 0x40]) + greased[1:]
            assert sidkit_quic.parse_header(fixed, **opts) is not None
            assert Extractor(["quic"], opts).extract(fixed) is not None
        header = sidkit_quic.parse_header(greased, cid_length=8, grease_quic_bit=True)
        assert header is not None and header.dcid == E8
        sid = Extractor(["quic"], {"cid_length": 8, "grease_quic_bit": True}).extract(greased)
        assert sid is not None and sid.value == E8
        # known CIDs that do not match, and a configured length: still not QUIC
        known = Extractor(["quic"], {"cid_length": 8, "known_cids": [D8]})
        assert known.extract(greased) is None
        assert sidkit_quic.parse_header(greased, cid_length=8, known_cids=[D8]) is None


def test_zero_length_configured_cid_is_no_session() -> None:
    packet = pk.quic_short(b"", b"\x01" * 20)
    assert Extractor(["quic"], {"cid_length": 0}).extract(packet) is None
    header = sidkit_quic.parse_header(packet, cid_length=0)
    assert header is not None and header.dcid == b""


def test_short_header_cut_before_its_dcid_is_malformed() -> None:
    for n in range(1, 9):
        packet = bytes([0x40]) + D8[: n - 1]
        with pytest.raises(MalformedPacketError):
            Extractor(["quic"], {"cid_length": 8}).extract(packet)
        with pytest.raises(MalformedPacketError):
            sidkit_quic.parse_header(packet, cid_length=8)
    sid = Extractor(["quic"], {"cid_length": 8}).extract(bytes([0x40]) + D8)
    assert sid is not None and sid.value == D8


def test_first_bytes_claimed() -> None:
    assert Extractor(["quic"]).claimants(0x3F) == ()
    assert Extractor(["quic"]).claimants(0x40) == ("quic",)
    for opts in ({"grease_quic_bit": True}, {"known_cids": [D8]}):
        ex = Extractor(["quic"], opts)
        assert all(ex.claimants(b) == ("quic",) for b in (0, 0x3F, 0x40, 0xFF))
    assert sidkit_quic.sidkit_first_bytes("dtls", {}) is None


# --- long headers: validation details, v1 limits -----------------------------------------------


def test_validated_detail_edges() -> None:
    retry16 = pk.quic_long(pk.QUIC_V1, "retry", D8, S5, b"\x00" * 16)
    retry15 = pk.quic_long(pk.QUIC_V1, "retry", D8, S5, b"\x00" * 15)
    ex = Extractor(["quic"])
    flag = "validated"
    a, b = ex.extract(retry16), ex.extract(retry15)
    assert a is not None and b is not None
    assert a.details.get(flag) is True and flag not in b.details
    vn = pk.quic_version_negotiation(D8, S5, [1, 2], first=0xC0)
    vn_odd = vn + b"\x00"
    a, b = ex.extract(vn), ex.extract(vn_odd)
    assert a is not None and b is not None
    assert a.details.get(flag) is True and flag not in b.details
    unknown = pk.quic_invariant_long(0xC0, 0x12345678, D8, S5, b"\x00" * 10)
    c = Extractor(["quic"], {"unknown_versions": True}).extract(unknown)
    assert c is not None and flag not in c.details and c.details["packet_type"] == "unknown"
    init = ex.extract(_initial())
    assert init is not None and init.details.get(flag) is True


@pytest.mark.parametrize("version", [pk.QUIC_V1, pk.QUIC_V2])
def test_v1_v2_connection_ids_at_most_20_bytes(version: int) -> None:
    ok = pk.quic_long(version, "handshake", b"\x01" * 20, b"\x02" * 20, b"\x00" * 5)
    assert sidkit_quic.parse_header(ok) is not None
    for dcid, scid in ((b"\x01" * 21, b"\x02"), (b"\x01", b"\x02" * 21)):
        bad = pk.quic_long(version, "handshake", dcid, scid, b"\x00" * 5)
        with pytest.raises(MalformedPacketError, match="at most 20"):
            sidkit_quic.parse_header(bad)
    # another version may use up to 255 (RFC 8999 section 5.1)
    other = pk.quic_invariant_long(0xC0, 0xFF00001D, b"\x01" * 21, b"\x02" * 30, b"")
    header = sidkit_quic.parse_header(other)
    assert header is not None and len(header.dcid) == 21 and len(header.scid or b"") == 30


@pytest.mark.parametrize("version", [pk.QUIC_V1, pk.QUIC_V2])
@pytest.mark.parametrize("ptype", ["initial", "0rtt", "handshake", "retry"])
def test_packet_type_bits(version: int, ptype: str) -> None:
    packet = pk.quic_long(version, ptype, D8, S5, b"\x00" * 20)
    header = sidkit_quic.parse_header(packet)
    assert header is not None and header.packet_type == ptype and header.version == version


def test_long_header_ids_cut_short_are_malformed() -> None:
    packet = _initial()
    dcid_end = 6 + len(D8)
    for cut in range(7, dcid_end + 1 + len(S5)):
        with pytest.raises(MalformedPacketError, match="connection ID"):
            sidkit_quic.parse_header(packet[:cut])
    with pytest.raises(MalformedPacketError, match="shorter than 7"):
        sidkit_quic.parse_header(packet[:6])


def test_known_version_patterns() -> None:
    kv = sidkit_quic.known_version
    assert kv(0) and kv(1) and kv(pk.QUIC_V2)
    assert kv(0xFF00001D) and kv(0xFF000000) and not kv(0xFF01001D) and not kv(0xFE00001D)
    assert kv(0x1A2A3A4A) and kv(0xFAFAFAFA) and not kv(0x1A2A3A4B) and not kv(0x0A0A0A1B)
    assert not kv(2) and not kv(0x12345678)


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 21, 255])
def test_cid_length_out_of_range_is_refused(value: int) -> None:
    with pytest.raises(InputValueError):
        Extractor(["quic"], {"cid_length": value})


@pytest.mark.parametrize("value", [0, 1, 20, None])
def test_cid_length_in_range_is_kept(value: int | None) -> None:
    assert Extractor(["quic"], {"cid_length": value}).options("quic")["cid_length"] == value


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("abc", InputTypeError),
        (b"\x01\x02", InputTypeError),
        (7, InputTypeError),
        ([1, 2], InputTypeError),
        ([b""], InputValueError),
        ([b"\x01" * 21], InputValueError),
    ],
)
def test_bad_known_cids_are_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Extractor(["quic"], {"known_cids": value})


def test_known_cids_of_1_and_20_bytes_and_bytes_likes_are_kept() -> None:
    kept = Extractor(
        ["quic"], {"known_cids": [b"\x01", bytearray(b"\x02" * 20), memoryview(b"\x03")]}
    )
    assert kept.options("quic")["known_cids"] == frozenset({b"\x01", b"\x02" * 20, b"\x03"})


# --- steering locations ---------------------------------------------------------------------------


def _short_payloads(rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        first = rng.randrange(0, 0x80)
        out.append(bytes([first]) + rng.randbytes(rng.randrange(0, 30)))
    return out


@pytest.mark.parametrize("grease", [False, True])
@pytest.mark.parametrize("quic_lb", [False, True])
@pytest.mark.parametrize("cid_length", [1, 8, 20])
def test_short_header_locations_agree_with_the_parser(
    grease: bool, quic_lb: bool, cid_length: int
) -> None:
    """Every exact (short-header) location applies to exactly the short headers the plugin
    takes, and reads the plugin's bytes -- for every first byte 0x00..0x7f, under the options
    that change the first-byte mask (grease_quic_bit) and the length (quic_lb)."""
    opts = {"grease_quic_bit": grease, "quic_lb": quic_lb, "cid_length": cid_length}
    ex = Extractor(["quic"], opts)
    locations = sidkit_quic.sidkit_sid_locations("quic", ex.options("quic"))
    assert locations is not None
    exact = [loc for loc in locations if loc.exact]
    assert all(loc.offset == 1 for loc in exact)
    rng = random.Random(f"{grease}{quic_lb}{cid_length}")
    payloads = _short_payloads(rng, 600)
    payloads += [bytes([f]) + bytes([g]) + bytes(25) for f in range(0x80) for g in (0, 0x13, 0x1F)]
    for payload in payloads:
        try:
            sid = ex.extract(payload)
        except SidkitError:
            sid = None  # too short for its DCID: no location may apply either
        matched = [m for loc in exact if (m := loc.match(payload)) is not None]
        if sid is None:
            assert matched == [], payload.hex()
        elif quic_lb and sid.details["cid_source"] == "configured":
            # The first CID octet self-describes no length (low bits >= 20), so the plugin
            # falls back to cid_length; the quic_lb locations have no such fallback and the
            # kernel hashes the 5-tuple (the locations claim less, never something else).
            assert matched == [], payload.hex()
        else:
            assert matched[:1] == [sid.value], payload.hex()


def test_no_locations_for_known_cids_or_unknown_lengths() -> None:
    for opts in ({"known_cids": [D8], "cid_length": 8}, {}, {"cid_length": 0}):
        ex = Extractor(["quic"], opts)
        assert sidkit_quic.sidkit_sid_locations("quic", ex.options("quic")) is None
    assert sidkit_quic.sidkit_sid_locations("dtls", Extractor(["quic"]).options("quic")) is None


def test_long_header_locations_guard_the_dcid_length_byte() -> None:
    ex = Extractor(["quic"], {"cid_length": 8})
    locations = sidkit_quic.sidkit_sid_locations("quic", ex.options("quic"))
    assert locations is not None
    long_loc, scid_loc = [loc for loc in locations if not loc.exact]
    assert long_loc.match(_initial()) == D8
    assert long_loc.match(_initial(dcid=D8[:7])) is None
    assert long_loc.match(pk.quic_short(D8, bytes(30))) is None
    # the SCID of a long header with an empty DCID, where it has the configured length
    empty = pk.quic_long(pk.QUIC_V1, "handshake", b"", D8, bytes(30))
    assert scid_loc.match(empty) == D8 == ex.extract(empty).value  # type: ignore[union-attr]
    assert long_loc.match(empty) is None
    assert scid_loc.match(_initial()) is None
    assert scid_loc.match(pk.quic_long(pk.QUIC_V1, "handshake", b"", D8[:7], bytes(30))) is None


# --- fuzz: what an answer is, not only that nothing foreign escapes ----------------------------

OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "cid_length": st.sampled_from([None, 0, 1, 4, 8, 20]),
        "unknown_versions": st.booleans(),
        "grease_quic_bit": st.booleans(),
        "known_cids": st.just([D8, b"\x07", E8[:3]]),
        "quic_lb": st.booleans(),
    },
)
PAYLOADS = st.one_of(
    st.binary(max_size=90),
    st.tuples(
        st.sampled_from(
            [b"\xc0\x00\x00\x00\x01", b"\xe0\x6b\x33\x43\xcf", b"\x40", b"\x07", b"\x80"]
        ),
        st.binary(max_size=80),
    ).map(b"".join),
    st.builds(lambda a, b: a + b, st.just(_initial()), st.binary(max_size=40)),
)


@settings(database=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS, OPTIONS)
def test_a_session_id_is_the_dcid_bytes_of_the_payload(
    payload: bytes, options: dict[str, object]
) -> None:
    ex = Extractor(["quic"], options)
    try:
        sid = ex.extract(payload)
    except MalformedPacketError:
        return
    if sid is None:
        return
    assert sid.protocol == "quic"
    if payload[0] & 0x80:
        assert sid.details["header_form"] == "long"
        assert 1 <= payload[5] == len(sid.value) <= 255
        assert sid.value == payload[6 : 6 + payload[5]]
        if sid.details["version"] in (pk.QUIC_V1, pk.QUIC_V2):
            assert len(sid.value) <= 20
    else:
        assert sid.details["header_form"] == "short"
        assert 1 <= len(sid.value) <= 20
        assert sid.value == payload[1 : 1 + len(sid.value)]
        if not payload[0] & 0x40 and not options.get("grease_quic_bit"):
            assert sid.details["cid_source"] == "known"


@settings(database=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS, OPTIONS)
def test_split_datagram_packets_tile_the_payload(
    payload: bytes, options: dict[str, object]
) -> None:
    try:
        packets = sidkit_quic.split_datagram(payload, **options)  # type: ignore[arg-type]
    except MalformedPacketError:
        return
    pos = 0
    for i, p in enumerate(packets):
        assert p.offset == pos and p.offset < p.end <= len(payload)
        at = p.offset + (6 if p.long_header else 1)
        assert p.dcid == payload[at : at + len(p.dcid)]
        if p.long_header:
            assert len(p.dcid) == payload[p.offset + 5]
        assert p.ignored == (i > 0 and p.dcid != packets[0].dcid)
        pos = p.end
    if packets and pos < len(payload):
        rest = payload[pos:]
        again = sidkit_quic.split_datagram(rest, **options)  # type: ignore[arg-type]
        assert not any(rest) or again == [] or rest[0] & 0x80 == 0
    first = sidkit_quic.parse_header(payload, **options)  # type: ignore[arg-type]
    if packets:
        assert first is not None and first.dcid == packets[0].dcid


# Vendor versions claimed without unknown_versions, each named by Wireshark's packet-quic.c
# (quic_draft_version / is_quic_draft_max) or the vendor's own constants.
VENDOR_VERSIONS = {
    0xFACEB001: "mvfst draft-22",
    0xFACEB002: "mvfst draft-27",
    0xFACEB00E: "mvfst experimental",
    0x51303530: "Google Q050",
    0x54303530: "Google T050",
    0x54303531: "Google T051",
    0x709A50C4: "QUIC v2 drafts",
}


@pytest.mark.parametrize("version", sorted(VENDOR_VERSIONS))
def test_vendor_versions_are_claimed_and_their_neighbours_are_not(version: int) -> None:
    ex = Extractor(["quic"])
    packet = pk.quic_invariant_long(0xC0, version, D8, S5, b"\x00" * 20)
    sid = ex.extract(packet)
    assert sid is not None and sid.value == D8, VENDOR_VERSIONS[version]
    assert sidkit_quic.known_version(version)
    for neighbour in (version - 1, version + 1):
        if neighbour in VENDOR_VERSIONS or sidkit_quic.known_version(neighbour):
            continue
        other = pk.quic_invariant_long(0xC0, neighbour, D8, S5, b"\x00" * 20)
        assert ex.extract(other) is None, hex(neighbour)


@pytest.mark.parametrize("tail", [b"\xc0", b"\xff\x00", b"\x80\x00\x00", b"\xc3\x00\x00\x01"])
def test_trailing_bytes_too_short_for_a_version_end_the_walk(tail: bytes) -> None:
    """After a coalesced packet, fewer than 5 bytes cannot be a long header (no version to
    claim by): the walk ends with the packets before them, as at the start of a datagram."""
    packets = sidkit_quic.split_datagram(_initial() + tail)
    assert [p.packet_type for p in packets] == ["initial"]
    assert packets[0].end == len(_initial())
