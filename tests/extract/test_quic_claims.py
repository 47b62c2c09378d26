"""What the QUIC plugin claims (issue 14): Version Negotiation whatever its low 7 bits, the
greased fixed bit (RFC 9287) for known versions and known CIDs, and no claim on unknown
versions unless asked -- so that IKE and DNS datagrams are not QUIC with the default set.

Packets are built from the RFC layouts (tests/fixtures/packets.py); the tshark comparisons
of the same rules are in test_tshark_quic.py.
"""

from __future__ import annotations

import re
import struct

import pytest
import sidkit_quic
from fixtures import packets as pk
from hypothesis import given
from hypothesis import strategies as st

from sidkit import InputTypeError, InputValueError
from sidkit.extract import Extractor
from sidkit.flows import DEFAULT_PROTOCOLS
from sidkit.keys import FiveTuple

DCID, SCID = bytes.fromhex("0102030405060708"), bytes.fromhex("a1a2a3a4")


@pytest.mark.parametrize("low_bits", [0x00, 0x05, 0x3F, 0x40, 0x7F])
def test_version_negotiation_any_low_bits(low_bits: int) -> None:
    """RFC 8999 section 6: "the remaining 7 bits of the first byte are arbitrary"."""
    vn = pk.quic_version_negotiation(DCID, SCID, [pk.QUIC_V1, 0x1A2A3A4A], low_bits)
    extractor = Extractor(["quic"])
    assert extractor.claimants(vn[0])[0] == "quic"
    sid = extractor.extract(vn)
    assert sid is not None and sid.value == DCID
    assert sid.details["packet_type"] == "version_negotiation"
    header = sidkit_quic.parse_header(vn)
    assert header is not None and header.scid == SCID


@pytest.mark.parametrize("rest", [b"", b"\x00\x00\x00", b"\x00\x00\x00\x01\x02"])
@pytest.mark.parametrize("low_bits", [0x00, 0x01, 0x3F])
def test_version_negotiation_with_fixed_bit_clear_must_be_well_formed(
    rest: bytes, low_bits: int
) -> None:
    """In RTP's range (RFC 9443: 128..191) a VN packet is claimed only when its version list
    is a non-empty multiple of 4 bytes, and a broken one is not called malformed -- whatever
    the 6 bits below the fixed bit say (the mutation sample found 0x40 read as 0x41)."""
    packet = pk.quic_invariant_long(low_bits, 0, DCID, SCID, rest)
    assert Extractor(["quic"]).extract(packet) is None
    assert Extractor(["quic"]).extract(packet[:6]) is None
    # with the fixed bit set it is a long header and says so
    assert Extractor(["quic"]).extract(bytes([packet[0] | 0x40]) + packet[1:]) is not None


KNOWN = [
    pk.QUIC_V1,
    pk.QUIC_V2,
    0xFF00001D,  # draft-29
    0xFF000022,  # draft-34
    0x709A50C4,  # v2 draft
    0xFACEB002,  # mvfst
    0x51303530,  # Q050
    0x1A2A3A4A,  # reserved (RFC 9000 section 15)
]


@pytest.mark.parametrize("version", KNOWN)
@pytest.mark.parametrize("fixed_bit", [True, False])
def test_known_versions_are_quic_with_either_fixed_bit(version: int, fixed_bit: bool) -> None:
    """RFC 9287: a long header of a known version is unambiguous with the bit clear."""
    assert sidkit_quic.known_version(version)
    if version in (pk.QUIC_V1, pk.QUIC_V2):
        packet = pk.quic_long(version, "handshake", DCID, SCID, b"x" * 30, fixed_bit=fixed_bit)
    else:
        packet = pk.quic_invariant_long(0x40 if fixed_bit else 0, version, DCID, SCID, b"x" * 30)
    sid = Extractor(["quic"]).extract(packet)
    assert sid is not None and sid.value == DCID and sid.details["version"] == version


@pytest.mark.parametrize("version", [0x12345678, 0xFACEB00F, 0x51303436, 0x00000002])
def test_unknown_versions_only_when_asked(version: int) -> None:
    assert not sidkit_quic.known_version(version)
    packet = pk.quic_invariant_long(0x40, version, DCID, SCID, b"x" * 30)
    assert Extractor(["quic"]).extract(packet) is None
    sid = Extractor(["quic"], {"unknown_versions": True}).extract(packet)
    assert sid is not None and sid.value == DCID and sid.details["packet_type"] == "unknown"
    # the pure parsers read any version's invariants unless told otherwise
    assert sidkit_quic.parse_header(packet) is not None
    assert sidkit_quic.parse_header(packet, unknown_versions=False) is None
    # an unknown version cut short is not QUIC, so not a malformed QUIC packet either
    assert Extractor(["quic"]).extract(packet[:8]) is None


def test_greased_short_header_needs_a_known_cid() -> None:
    """RFC 9287 section 3: only the peer that negotiated greasing sends 0b00xxxxxx short
    headers, so the CIDs it was given (``known_cids``; ``sidkit flows`` feeds the ones it
    learned the same way) are what make such a packet QUIC."""
    greased = pk.quic_short(DCID, b"payload", fixed_bit=False, low_bits=0x21)
    assert Extractor(["quic"], {"cid_length": 8}).extract(greased) is None
    assert Extractor(["quic"], {"cid_length": 8}).claimants(greased[0]) == ()
    known = Extractor(["quic"], {"known_cids": [DCID], "cid_length": 8})
    assert known.claimants(greased[0]) == ("quic",)
    sid = known.extract(greased)
    assert sid is not None and sid.value == DCID and sid.details["cid_source"] == "known"
    # an unknown DCID with the bit clear is not taken at the configured length
    other = pk.quic_short(b"\xee" * 8, b"payload", fixed_bit=False)
    assert known.extract(other) is None
    # grease_quic_bit: any DCID, at the configured length
    sid = Extractor(["quic"], {"cid_length": 8, "grease_quic_bit": True}).extract(other)
    assert sid is not None and sid.value == b"\xee" * 8
    header = sidkit_quic.parse_header(greased, known_cids=[DCID])
    assert header is not None and header.dcid == DCID


def _dns_query(ident: int, name: bytes = b"\x07example\x03com\x00") -> bytes:
    """RFC 1035 section 4.1.1: ID, flags (RD), QDCOUNT 1, then the question."""
    return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"


@given(st.integers(0, 0xFFFF), st.integers(0, 0x7FFF))
def test_dns_is_not_quic_by_default(ident: int, flags: int) -> None:
    query = _dns_query(ident)
    response = query[:2] + struct.pack(">H", 0x8000 | flags) + query[4:]
    extractor = Extractor(list(DEFAULT_PROTOCOLS[:2]))
    ft = FiveTuple("192.0.2.1", 53000, "192.0.2.53", 53)
    for payload in (query, response):
        assert extractor.extract(payload, ft) is None


@given(st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8), st.booleans())
def test_ike_is_not_quic_by_default(spi_i: bytes, spi_r: bytes, marker: bool) -> None:
    """IKE on 500 and behind the NAT-T non-ESP marker on 4500 (RFC 3948 section 2.2): the
    initiator SPI is random, so a long-header first byte is common; its next 4 bytes are no
    known version."""
    ike = pk.ike(spi_i, spi_r, b"\x00" * 24, marker=marker)
    ft = FiveTuple("192.0.2.1", 4500 if marker else 500, "192.0.2.2", 4500 if marker else 500)
    sid = Extractor(list(DEFAULT_PROTOCOLS[:2])).extract(ike, ft)
    if sid is not None:
        assert sidkit_quic.known_version(int.from_bytes(spi_i[1:5], "big"))
    ipsec = Extractor(["ipsec", "quic"]).extract(ike, ft)
    assert ipsec is not None and ipsec.protocol == "ipsec"


def test_validated_detail() -> None:
    """DETAIL_VALIDATED: set where a length or count field checked out (sidkit sid ranks by
    it), absent where only the invariants or a short header's DCID were read."""
    from sidkit.plugin import DETAIL_VALIDATED  # noqa: PLC0415

    extractor = Extractor(["quic"], {"cid_length": 8})
    cases = {
        pk.quic_version_negotiation(DCID, SCID, [pk.QUIC_V1], 0x40): True,
        pk.quic_invariant_long(0x40, 0, DCID, SCID, b"\x00\x00\x00\x01\x02"): False,
        pk.quic_long(pk.QUIC_V1, "handshake", DCID, SCID, b"x" * 30): True,
        pk.quic_long(pk.QUIC_V2, "retry", DCID, SCID, b"t" * 16): True,
        pk.quic_long(pk.QUIC_V1, "retry", DCID, SCID, b"t" * 15): False,
        pk.quic_invariant_long(0x40, 0xFF00001D, DCID, SCID, b"x" * 30): False,
        pk.quic_short(DCID, b"x" * 30): False,
    }
    for packet, validated in cases.items():
        sid = extractor.extract(packet)
        assert sid is not None and sid.value == DCID
        assert (sid.details.get(DETAIL_VALIDATED) is True) == validated, packet.hex()


@pytest.mark.parametrize(
    "payload", [b"\xff", b"\xc0\x00", b"\x80\x00\x00\x00", b"\xc3\x00\x00\x00"]
)
def test_too_short_for_a_version_is_not_quic(payload: bytes) -> None:
    """A NAT-T keep-alive (RFC 3948 section 2.3: the single byte 0xff) and anything else
    too short to carry a version is not claimed, let alone malformed QUIC."""
    assert Extractor(["quic"]).extract(payload) is None
    assert sidkit_quic.parse_header(payload) is None


@given(
    st.one_of(
        st.binary(max_size=80),
        st.tuples(
            st.sampled_from([b"\x80\x00\x00\x00\x00", b"\x9f\x00\x00\x00\x01", b"\x15", b"\x3f"]),
            st.binary(max_size=60),
        ).map(b"".join),
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "cid_length": st.sampled_from([None, 0, 4, 8, 20]),
            "unknown_versions": st.booleans(),
            "grease_quic_bit": st.booleans(),
            "known_cids": st.just([DCID, SCID]),
            "quic_lb": st.booleans(),
        },
    ),
)
def test_any_bytes_under_any_options(payload: bytes, options: dict[str, object]) -> None:
    """The fuzz property under every option combination: a SessionId, None or sidkit's own
    error, and the Extractor's answer is the plugin's wherever the plugin claims the byte."""
    from sidkit import SidkitError  # noqa: PLC0415
    from sidkit.keys import SessionId  # noqa: PLC0415

    extractor = Extractor(["quic"], options)
    try:
        direct: object = sidkit_quic.sidkit_extract("quic", payload, extractor.options("quic"))
    except SidkitError:
        direct = SidkitError
    try:
        via: object = extractor.extract(payload)
    except SidkitError:
        via = SidkitError
    assert direct is None or direct is SidkitError or isinstance(direct, SessionId)
    if payload and extractor.claimants(payload[0]):
        assert via == direct
    else:
        assert via is None


_LONG_PAYLOADS = st.one_of(
    st.binary(min_size=1, max_size=80).map(lambda b: bytes([b[0] | 0x80]) + b[1:]),
    st.builds(
        pk.quic_long,
        st.sampled_from([pk.QUIC_V1, pk.QUIC_V2]),
        st.sampled_from(["initial", "handshake", "0rtt", "retry"]),
        st.sampled_from([b"", SCID, DCID, bytes(20), bytes(21)]),
        st.sampled_from([b"", SCID, DCID, bytes(21)]),
        st.binary(max_size=30),
        fixed_bit=st.booleans(),
    ).flatmap(lambda p: st.integers(1, len(p)).map(lambda n: p[:n])),  # whole or cut short
    st.builds(
        pk.quic_invariant_long,
        st.integers(0, 0x7F),
        st.sampled_from([0, 0xFF00001D, 0x1A2A3A4A, 0xDEADBEEF]),
        st.sampled_from([b"", SCID, bytes(40)]),
        st.sampled_from([b"", DCID]),
        st.binary(max_size=12),
    ),
)


@given(_LONG_PAYLOADS, st.booleans())
def test_long_header_ids_say_what_sidkit_extract_says(payload: bytes, unknown: bool) -> None:
    """``long_header_ids`` (what ``sidkit flows`` asks for every long header) against the
    hook: ``None`` where it gives ``None``, the same error where it raises, else (dcid, scid)
    with the hook's ID ``dcid or scid`` and the SCID its details name."""
    from sidkit import SidkitError  # noqa: PLC0415

    options = Extractor(["quic"], {"unknown_versions": unknown}).options("quic")
    try:
        sid = sidkit_quic.sidkit_extract("quic", payload, options)
    except SidkitError as exc:
        with pytest.raises(type(exc), match="^" + re.escape(str(exc)) + "$"):
            sidkit_quic.long_header_ids(payload, options)
        return
    ids = sidkit_quic.long_header_ids(payload, options)
    if sid is None:
        assert ids is None
    else:
        assert ids is not None and (ids[0] or ids[1]) == sid.value
        assert ids[1] == sid.details["scid"]
        assert sid.details["field"] == ("dcid" if ids[0] else "scid")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (bytearray(b"\xc0\x00\x00\x00\x01"), InputTypeError),
        ("c0", InputTypeError),
        (b"", InputValueError),
        (b"\x40\x01\x02", InputValueError),  # a short header
    ],
)
def test_long_header_ids_refuses_what_is_no_long_header(payload: object, error: type) -> None:
    options = Extractor(["quic"]).options("quic")
    with pytest.raises(error):
        sidkit_quic.long_header_ids(payload, options)  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [[0xC0, 0, 0, 0, 1, 1, 0xAA, 0, 0, 0], "c0", 7])
def test_parse_header_refuses_what_is_not_bytes(payload: object) -> None:
    """Found by review: a list of ints was parsed (and a str raised TypeError from inside);
    the parser takes bytes-like payloads, as split_datagram does."""
    with pytest.raises(InputTypeError):
        sidkit_quic.parse_header(payload)  # type: ignore[arg-type]
