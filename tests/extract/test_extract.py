"""sidkit.extract: the Extractor's API, RFC 9443 demultiplexing, SidLocation, and the
published examples each protocol's specification gives.

Published vectors here: the RFC 9001 / RFC 9369 Retry packets (Appendix A.4), whose bytes are
proven by recomputing their Retry Integrity Tag with the published keys; RFC 9000
Appendix A.1's variable-length integers; RFC 9147 section 4's unified header bits.
"""

from __future__ import annotations

import pytest
import sidkit_dtls
import sidkit_fixed
import sidkit_quic
import sidkit_wireguard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fixtures import packets as pk

import sidkit
from sidkit.extract import (
    RFC9443_RANGES,
    Extractor,
    Guard,
    MalformedPacketError,
    NotSteerableError,
    SidLocation,
    locate,
    rfc9443_class,
)
from sidkit.keys import FiveTuple, SessionId
from sidkit.plugin import PluginError, ProtocolSpec, UnknownProtocolError, hookimpl

# RFC 9001 Appendix A.4 and RFC 9369 Appendix A.4: Retry packets answering the client
# Initial whose DCID is 0x8394c8f03e515708; (packet, integrity key, nonce) from RFC 9001
# section 5.8 and RFC 9369 section 3.3.3.
ODCID = bytes.fromhex("8394c8f03e515708")
RETRY_V1 = (
    "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba",
    "be0c690b9f66575a1d766b54e368c84e",
    "461599d35d632bf2239825bb",
)
RETRY_V2 = (
    "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6",
    "8fb4b01b56ac48e260fbcbcead7ccc92",
    "d86969bc2d7c6d9990efb04a",
)


@pytest.mark.oracle
@pytest.mark.parametrize(("vector", "version"), [(RETRY_V1, 1), (RETRY_V2, 0x6B3343CF)])
def test_rfc_retry_vectors(vector: tuple[str, str, str], version: int) -> None:
    packet = bytes.fromhex(vector[0])
    # The tag over (ODCID length, ODCID, packet without tag) proves the bytes are the RFC's.
    aad = bytes([len(ODCID)]) + ODCID + packet[:-16]
    tag = AESGCM(bytes.fromhex(vector[1])).encrypt(bytes.fromhex(vector[2]), b"", aad)
    assert tag == packet[-16:]
    header = sidkit_quic.parse_header(packet)
    assert header is not None
    assert (header.version, header.packet_type) == (version, "retry")
    assert header.dcid == b"" and header.scid == bytes.fromhex("f067a5502a4262b5")
    # A zero-length DCID identifies nothing (the client chose 5-tuple routing): the ID is
    # the server's SCID, found by the plugin and by its steering location alike.
    extractor = Extractor(["quic"], {"cid_length": 8})
    sid = extractor.extract(packet)
    assert sid is not None and sid.value == header.scid and sid.details["field"] == "scid"
    found = locate(extractor.sid_locations(), packet)
    assert found is not None and found[1] == header.scid


def test_rfc9000_varint_examples() -> None:
    # RFC 9000 Appendix A.1's sample decodings.
    samples = [
        ("c2197c5eff14e88c", 151288809941952652),
        ("9d7f3e7d", 494878333),
        ("7bbd", 15293),
        ("25", 37),
        ("4025", 37),
    ]
    for encoded, value in samples:
        data = bytes.fromhex(encoded)
        assert sidkit_quic._varint(data, 0) == (value, len(data))
    # The same encodings as an Initial's Token Length: the walk lands exactly on the end.
    for encoded, value in samples[2:]:
        initial = bytes([0xC0]) + (1).to_bytes(4, "big") + b"\x04abcd\x00"
        packet = initial + bytes.fromhex(encoded) + bytes(value) + b"\x01\x00"
        (header,) = sidkit_quic.split_datagram(packet)
        assert header.end == len(packet)


def test_quic_long_header_any_version_up_to_255_byte_cids() -> None:
    # RFC 8999 section 5.1: for an unknown version only the invariants hold; CIDs may be
    # up to 255 bytes.
    dcid, scid = bytes(range(255)), b"\xaa" * 200
    packet = pk.quic_invariant_long(0x7A, 0x1A2A3A4A, dcid, scid, b"rest")
    sid = Extractor(["quic"], {"cid_length": 8}).extract(packet)
    assert sid is not None and sid.value == dcid
    assert sid.details["version"] == 0x1A2A3A4A and sid.details["packet_type"] == "unknown"
    assert sid.details["scid"] == scid
    # ... but QUIC v1 caps them at 20 (RFC 9000 section 17.2).
    too_long = pk.quic_long(pk.QUIC_V1, "handshake", bytes(21), b"", b"x")
    with pytest.raises(MalformedPacketError):
        Extractor(["quic"], {"cid_length": 8}).extract(too_long)


def test_quic_v2_type_bits_differ_from_v1() -> None:
    extractor = Extractor(["quic"], {"cid_length": 8})
    for version, bits in pk.QUIC_TYPE_BITS.items():
        for name, value in bits.items():
            packet = pk.quic_long(version, name, b"\x01" * 8, b"\x02" * 4, b"\x00" * 20)
            assert (packet[0] >> 4) & 3 == value
            sid = extractor.extract(packet)
            assert sid is not None and sid.details["packet_type"] == name


def test_quic_coalesced_route_on_first_and_ignore_other_dcids() -> None:
    first = pk.quic_long(pk.QUIC_V1, "initial", b"A" * 8, b"S" * 8, b"p" * 30)
    same = pk.quic_long(pk.QUIC_V1, "handshake", b"A" * 8, b"S" * 8, b"q" * 30)
    other = pk.quic_long(pk.QUIC_V1, "handshake", b"B" * 8, b"S" * 8, b"r" * 30)
    datagram = first + same + other + pk.quic_short(b"A" * 8, b"1rtt") + bytes(5)
    sid = Extractor(["quic"], {"cid_length": 8}).extract(datagram)
    assert sid is not None and sid.value == b"A" * 8
    headers = sidkit_quic.split_datagram(datagram, cid_length=8)
    assert [(h.packet_type, h.ignored) for h in headers] == [
        ("initial", False),
        ("handshake", False),
        ("handshake", True),  # RFC 9000 section 12.2: a different DCID is ignored
        ("1rtt", False),
    ]
    assert headers[-1].end == len(datagram) - 5 or headers[-1].end == len(datagram)


def test_quic_short_header_length_sources() -> None:
    # QUIC-LB draft-21 section 3.3: the low 5 bits (7) are the length after the first octet.
    dcid = bytes([0xE7]) + b"1234567"
    packet = pk.quic_short(dcid, b"payload")
    assert Extractor(["quic"]).extract(packet) is None  # RFC 8999 section 5.2: unknown length
    lb = Extractor(["quic"], {"quic_lb": True}).extract(packet)
    assert lb is not None and lb.value == dcid and lb.details["cid_source"] == "quic_lb"
    fixed = Extractor(["quic"], {"cid_length": 4}).extract(packet)
    assert fixed is not None and fixed.value == dcid[:4]
    known = Extractor(["quic"], {"known_cids": [dcid[:6], b"zz"], "cid_length": 4})
    sid = known.extract(packet)
    assert sid is not None and sid.value == dcid[:6] and sid.details["cid_source"] == "known"
    with pytest.raises(MalformedPacketError):
        Extractor(["quic"], {"cid_length": 20}).extract(pk.quic_short(b"short", b""))


def test_dtls_records() -> None:
    extractor = Extractor(["dtls"], {"cid_length": 6})
    cid = b"\x01\x02\x03\x04\x05\x06"
    sid = extractor.extract(pk.dtls12_cid(cid, b"ciphertext", epoch=2))
    assert sid is not None and sid.value == cid and sid.details["epoch"] == 2
    # RFC 9147 section 4: 001CSLEE; C set -> CID after the first byte.
    for seq16 in (False, True):
        for with_length in (False, True):
            record = pk.dtls13_unified(cid, b"x" * 20, seq16=seq16, with_length=with_length)
            assert record[0] & 0xE0 == 0x20 and record[0] & 0x10
            sid = extractor.extract(record)
            assert sid is not None and sid.value == cid and sid.details["version"] == "1.3"
    assert extractor.extract(pk.dtls13_unified(b"", b"x" * 20)) is None  # C clear
    for content_type in (20, 21, 22, 23, 24):
        assert extractor.extract(pk.dtls_plain(content_type, b"body")) is None
    with pytest.raises(MalformedPacketError):
        extractor.extract(pk.dtls12_cid(cid, b"")[:15])
    with pytest.raises(sidkit.InputValueError, match="needs option 'cid_length'"):
        Extractor(["dtls"])


def test_dtls_legacy_extension_codepoints() -> None:
    for ext_type in (53, 254, 54):
        hello = pk.dtls_hello(2, b"\xca\xfe", ext_type=ext_type)
        assert sidkit_dtls.hello_connection_id(hello) == (ext_type, b"\xca\xfe")
    assert sidkit_dtls.hello_connection_id(pk.dtls_hello(2, b"\xca\xfe", ext_type=55)) is None


def test_wireguard_messages() -> None:
    extractor = Extractor(["wireguard"])
    init = pk.wireguard(1, sender=b"SEND", receiver=b"RECV")
    resp = pk.wireguard(2, sender=b"SEND", receiver=b"RECV")
    cookie = pk.wireguard(3, sender=b"SEND", receiver=b"RECV")
    data = pk.wireguard(4, sender=b"SEND", receiver=b"RECV", size=48)
    got = [extractor.extract(p) for p in (init, resp, cookie, data)]
    assert [(s.value, s.details["field"]) for s in got if s] == [
        (b"SEND", "sender"),
        (b"RECV", "receiver"),
        (b"RECV", "receiver"),
        (b"RECV", "receiver"),
    ]
    assert extractor.extract(init[:-1]) is None  # an initiation is exactly 148 bytes
    assert extractor.extract(b"\x01\x01\x00\x00" + bytes(144)) is None  # reserved not zero
    assert sidkit_wireguard.MESSAGES[4][2] == 4


def test_fixed_offset_with_guard() -> None:
    extractor = Extractor(
        ["fixed"], {"offset": 2, "offlen": 3, "guards": [(0, 0xF0, 0xA0)], "label": "game"}
    )
    assert extractor.extract(b"\xa5\x00abcdef") == SessionId("game", b"abc")
    assert extractor.extract(b"\xb5\x00abcdef") is None
    assert extractor.extract(b"\xa5\x00ab") is None
    assert extractor.claimants(0xA7) == ("fixed",) and extractor.claimants(0xB7) == ()
    assert extractor.sid_locations() == (sidkit_fixed.location(extractor.options("fixed")),)


def test_rfc9443_demultiplexing() -> None:
    # The table covers 0..255 without overlap; 4..15 are unassigned.
    seen = [name for low, high, name in RFC9443_RANGES for _ in range(low, high + 1)]
    assert len(seen) == 256 - 12
    assert [rfc9443_class(b) for b in (0, 3, 4, 19, 20, 63, 64, 79, 80, 128, 191, 192)] == [
        "stun", "stun", None, "zrtp", "dtls", "dtls", "turn-channel", "turn-channel", "quic",
        "rtp", "rtp", "quic",
    ]  # fmt: skip
    extractor = Extractor(["quic", "dtls", "rtp"], {"cid_length": 8})
    for byte in range(256):
        rfc = rfc9443_class(byte)
        claim = extractor.claimants(byte)
        if rfc == "dtls":
            assert claim == ("dtls",)
        elif rfc == "rtp":
            # RFC 8999 section 6: a Version Negotiation packet's 7 low bits are arbitrary,
            # so QUIC is asked first (it claims only VN and known versions there).
            assert claim == ("quic", "rtp")
        elif rfc in {"quic", "turn-channel"}:
            assert claim == ("quic",)  # a short header may start with 64..79
        else:
            assert claim == ()
    quic = pk.quic_long(pk.QUIC_V1, "handshake", b"Q" * 8, b"", b"x" * 20)
    dtls = pk.dtls12_cid(b"D" * 8, b"x" * 20)
    rtp = pk.rtp(96, b"SSRC", b"x" * 20)
    vn = pk.quic_version_negotiation(b"V" * 8, b"S" * 8, [pk.QUIC_V1, 0x1A2A3A4A], 0x05)
    # PT 0, sequence 0, timestamp 0: bytes 1..4 read as version 0, but the rest is no list of
    # 32-bit versions, so QUIC passes it on to RTP.
    rtp_zero = pk.rtp(0, b"SSRC", b"x" * 20, seq=0)
    assert [str(extractor.extract(p)) for p in (quic, dtls, rtp, vn, rtp_zero)] == [
        "quic:" + (b"Q" * 8).hex(),
        "dtls:" + (b"D" * 8).hex(),
        "rtp:" + b"SSRC".hex(),
        "quic:" + (b"V" * 8).hex(),
        "rtp:" + b"SSRC".hex(),
    ]


def test_overlapping_claims_try_in_order() -> None:
    # 'fixed' claims every first byte; after quic it only gets what quic leaves.
    both = Extractor(["quic", "fixed"], {"cid_length": 4, "fixed": {"offset": 0, "offlen": 2}})
    assert both.claimants(0x41) == ("quic", "fixed")
    short = pk.quic_short(b"abcd", b"x")
    assert str(both.extract(short)) == "quic:" + b"abcd".hex()
    assert str(both.extract(b"\x01\x02\x03")) == "fixed:0102"
    first = Extractor(["fixed", "quic"], {"cid_length": 4, "offset": 0, "offlen": 2})
    assert str(first.extract(short)) == "fixed:" + short[:2].hex()


def test_options_flat_and_per_protocol() -> None:
    flat = Extractor(["quic", "dtls"], {"cid_length": 8})
    assert flat.options("quic")["cid_length"] == 8 and flat.options("dtls")["cid_length"] == 8
    nested = Extractor(["quic", "dtls"], {"quic": {"cid_length": 4}, "dtls": {"cid_length": 6}})
    assert nested.options("quic")["cid_length"] == 4 and nested.options("dtls")["cid_length"] == 6
    with pytest.raises(sidkit.InputValueError, match="belongs to none"):
        Extractor(["wireguard"], {"cid_length": 8})
    with pytest.raises(sidkit.InputTypeError):
        Extractor(["quic"], {"cid_length": "8"})
    with pytest.raises(sidkit.InputTypeError):
        Extractor(["quic"], {"cid_length": True})  # bool is not a length
    with pytest.raises(sidkit.InputValueError):
        Extractor(["quic"], {"cid_length": 21})
    with pytest.raises(UnknownProtocolError):
        Extractor(["nope"])
    with pytest.raises(sidkit.InputValueError):
        Extractor([])
    with pytest.raises(sidkit.InputValueError):
        Extractor(["quic", "quic"], {"cid_length": 8})
    with pytest.raises(sidkit.InputTypeError):
        Extractor("quic")


def test_extract_arguments() -> None:
    extractor = Extractor(["wireguard"])
    packet = pk.wireguard(4, sender=b"", receiver=b"RECV")
    for form in (packet, bytearray(packet), memoryview(packet)):
        assert extractor.extract(form) == SessionId("wireguard", b"RECV")
    assert extractor.extract(b"") is None
    five = FiveTuple("192.0.2.1", 1234, "192.0.2.2", 51820)
    assert extractor.extract(packet, five) == SessionId("wireguard", b"RECV")
    with pytest.raises(sidkit.InputTypeError):
        extractor.extract(packet, ("192.0.2.1", 1, "192.0.2.2", 2))  # type: ignore[arg-type]
    with pytest.raises(sidkit.InputTypeError):
        extractor.extract("text")  # type: ignore[arg-type]


def test_guard_and_location_values() -> None:
    guard = Guard(3, 0xF0, 0x30)
    assert tuple(guard) == (3, 0xF0, 0x30)
    assert (
        guard.test(b"\x00\x00\x00\x3f")
        and not guard.test(b"\x00\x00\x00")
        and not guard.test(b"\x00\x00\x00\x40")
    )
    for bad in [(0, 0, 0), (0, 0x0F, 0x10), (-1, 1, 1), (0, 256, 0)]:
        with pytest.raises(sidkit.InputValueError):
            Guard(*bad)
    location = SidLocation(2, 3, guards=((0, 0xFF, 7),), min_size=8)
    assert location.guards == (Guard(0, 0xFF, 7),)
    assert location.match(b"\x07\x00abc\x00\x00\x00") == b"abc"
    assert location.match(b"\x07\x00abc\x00\x00") is None  # below min_size
    assert location.match(b"\x08\x00abc\x00\x00\x00") is None
    with pytest.raises(sidkit.InputValueError):
        SidLocation(0, 0)
    with pytest.raises(sidkit.InputTypeError):
        SidLocation(0, 1, guards=[(1, 2)])  # type: ignore[list-item]
    other = SidLocation(0, 1)
    assert locate([location, other], b"\x07\x00abc\x00\x00\x00") == (location, b"abc")
    assert locate([location, other], b"\x09") == (other, b"\x09")
    assert locate([location], b"") is None


def test_location_needs_every_guarded_byte_and_exact_is_a_bool() -> None:
    """A guard past the ID makes the location need that byte too: without it the location
    does not apply (as a compiled program's length check decides, sidkit.steering's
    FixedOffset.end), rather than failing with an IndexError."""
    location = SidLocation(0, 2, guards=((5, 0xFF, 1),))
    assert location.needed == 6
    assert location.match(b"ab") is None
    assert location.match(b"ab\x00\x00\x00\x01") == b"ab"
    assert locate([location], b"abc") is None
    assert not location.exact and SidLocation(0, 2, exact=True).exact
    with pytest.raises(sidkit.InputTypeError):
        SidLocation(0, 2, exact=1)  # type: ignore[arg-type]


def test_sid_locations_need_every_protocol() -> None:
    with pytest.raises(NotSteerableError):
        Extractor(["quic"], {"known_cids": [b"12345678"]}).sid_locations()
    with pytest.raises(NotSteerableError):
        Extractor(["quic"]).sid_locations()  # short-header length unknown
    locations = Extractor(["quic", "wireguard"], {"cid_length": 8}).sid_locations()
    assert {loc.protocol for loc in locations} == {"quic", "wireguard"}


class _BuggyPlugin:
    """A plugin whose extraction raises a non-sidkit exception."""

    @staticmethod
    @hookimpl
    def sidkit_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec(name="buggy", summary="raises")]

    @staticmethod
    @hookimpl
    def sidkit_extract(payload: bytes) -> SessionId | None:
        return SessionId("buggy", payload[:2]) if payload[0] == 1 else payload[100]  # type: ignore[return-value]


def test_plugin_bugs_become_plugin_errors() -> None:
    extractor = Extractor([_BuggyPlugin()])
    assert extractor.protocols == ("buggy",)
    assert extractor.extract(b"\x01\x02\x03") == SessionId("buggy", b"\x01\x02")
    with pytest.raises(PluginError, match="IndexError"):
        extractor.extract(b"\x02")
