"""DTLS with several connection-ID lengths (issue 14): ``dtls.cid_length`` as a set, the
record length field choosing among them, and the lengths learned from the handshake's
connection_id extension (RFC 9146 section 3, RFC 9147 section 9) per receiving endpoint.

The capture that showed the bug had a 17-byte client CID beside a shorter server CID; one
configured length cut the client's CID short. Packets are built from the RFC layouts
(tests/fixtures/packets.py); the last test has tshark read a handshake-visible exchange.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

import dpkt
import pytest
import sidkit_dtls
from fixtures import packets as pk
from fixtures.tshark import fields
from hypothesis import given
from hypothesis import strategies as st

from sidkit import InputValueError, SidkitError
from sidkit.extract import Extractor, NotSteerableError
from sidkit.keys import SessionId
from sidkit.plugin import DETAIL_VALIDATED

CLIENT_CID = bytes(range(0xA0, 0xA0 + 17))  # the client wants to receive 17-byte CIDs
SERVER_CID = bytes(range(0x10, 0x18))  # the server 8-byte ones
BOTH = {"cid_length": {8, 17}}


def test_single_int_form_unchanged() -> None:
    extractor = Extractor(["dtls"], {"cid_length": 8})
    assert extractor.options("dtls")["cid_length"] == 8
    record = pk.dtls12_cid(SERVER_CID, b"x" * 30)
    assert extractor.extract(record) == SessionId("dtls", SERVER_CID)
    # one length reads what it is told: the 17-byte CID's first 8 bytes (the bug)
    truncated = extractor.extract(pk.dtls12_cid(CLIENT_CID, b"x" * 30))
    assert truncated is not None and truncated.value == CLIENT_CID[:8]


@pytest.mark.parametrize(
    "value", [{8, 17}, frozenset({8, 17}), [17, 8], (8, 17, 8)], ids=["set", "fs", "list", "tuple"]
)
def test_set_forms(value: object) -> None:
    assert Extractor(["dtls"], {"cid_length": value}).options("dtls")["cid_length"] == {8, 17}


@pytest.mark.parametrize("value", [set(), {8, 256}, {8, True}, ["8"]])
def test_bad_sets(value: object) -> None:
    with pytest.raises(InputValueError):
        Extractor(["dtls"], {"cid_length": value})


@pytest.mark.parametrize("body_size", [0, 1, 16, 200])
def test_both_lengths_whole(body_size: int) -> None:
    extractor = Extractor(["dtls"], BOTH)
    body = bytes(range(body_size % 256)) * (body_size // 256 + 1)
    body = body[:body_size]
    for cid in (CLIENT_CID, SERVER_CID):
        for record in (
            pk.dtls12_cid(cid, body, epoch=2, seq=7),
            pk.dtls13_unified(cid, body, seq16=True, with_length=True),
            pk.dtls13_unified(cid, body, seq16=False, with_length=True),
        ):
            sid = extractor.extract(record)
            assert sid == SessionId("dtls", cid), record.hex()
            assert sid.details[DETAIL_VALIDATED] is True  # the length field checked out
            # RFC 6347 section 4.1.1: another record may follow in the same datagram
            follow = record + pk.dtls_plain(21, b"\x01\x00")
            assert extractor.extract(follow) == SessionId("dtls", cid), follow.hex()


def test_no_length_field_and_several_lengths_is_none() -> None:
    """RFC 9147 section 4: without the L bit the record runs to the end of the datagram, so
    nothing tells 8 from 17 bytes: no ID rather than a guess."""
    record = pk.dtls13_unified(CLIENT_CID, b"y" * 40, with_length=False)
    assert Extractor(["dtls"], BOTH).extract(record) is None
    assert Extractor(["dtls"], {"cid_length": 17}).extract(record) == SessionId("dtls", CLIENT_CID)


def test_cut_short_is_malformed_and_not_steerable() -> None:
    from sidkit.extract import MalformedPacketError  # noqa: PLC0415

    with pytest.raises(MalformedPacketError):
        Extractor(["dtls"], BOTH).extract(pk.dtls12_cid(SERVER_CID, b"")[:15])
    with pytest.raises(NotSteerableError):
        Extractor(["dtls"], BOTH).sid_locations()
    assert Extractor(["dtls"], BOTH).exact_table() == ((),) * 256


@given(st.binary(max_size=120), st.sets(st.integers(0, 40), min_size=1, max_size=4))
def test_any_bytes_give_sid_none_or_sidkit_error(payload: bytes, lengths: set[int]) -> None:
    extractor = Extractor(["dtls"], {"cid_length": lengths})
    for data in (payload, b"\x19\xfe\xfd" + payload, bytes([0x3C]) + payload):
        try:
            sid = extractor.extract(data)
        except SidkitError:
            continue
        assert sid is None or (sid.protocol == "dtls" and len(sid.value) in lengths)


def test_hello_cid_length_says_who_receives() -> None:
    """RFC 9146 section 3: a hello's CID is the one its *sender* receives."""
    assert sidkit_dtls.hello_cid_length(pk.dtls_hello(1, CLIENT_CID)) == ("client", 17)
    assert sidkit_dtls.hello_cid_length(pk.dtls_hello(2, SERVER_CID)) == ("server", 8)
    assert sidkit_dtls.hello_cid_length(pk.dtls_hello(2, b"")) == ("server", 0)
    assert sidkit_dtls.hello_cid_length(pk.dtls_hello(1, None)) is None
    assert sidkit_dtls.hello_cid_length(pk.dtls12_cid(SERVER_CID, b"x")) is None


# --- tshark, with the handshake in the capture -------------------------------------------

CLIENT, SERVER = ("127.0.0.1", 40000), ("127.0.0.2", 4433)


def _write(path: Path, datagrams: list[tuple[bytes, bool]]) -> None:
    """Datagrams from the client (``True``) or the server, as Ethernet/IPv4/UDP frames."""
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for i, (payload, from_client) in enumerate(datagrams):
            src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
            udp = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=payload)
            udp.ulen = 8 + len(payload)
            ip = dpkt.ip.IP(
                src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=17, data=udp
            )
            ip.len = 20 + udp.ulen
            writer.writepkt(bytes(dpkt.ethernet.Ethernet(data=ip)), ts=1_700_000_000 + i / 1000)


@pytest.mark.oracle
def test_two_lengths_with_handshake_match_tshark(tmp_path: Path) -> None:
    """A ClientHello asking for a 17-byte CID, a ServerHello asking for 8, then tls12_cid
    records both ways: tshark learns each direction's length from the hellos; sidkit with
    ``cid_length={8, 17}`` and, per direction, with the lengths hello_cid_length() learned
    must find the same whole CIDs."""
    rng = random.Random(9146)
    datagrams: list[tuple[bytes, bool]] = [
        (pk.dtls_hello(1, CLIENT_CID), True),
        (pk.dtls_hello(2, SERVER_CID), False),
    ]
    for i in range(20):
        from_client = i % 2 == 0
        cid = SERVER_CID if from_client else CLIENT_CID  # the receiver's CID
        body = rng.randbytes(rng.randint(16, 90))
        datagrams.append((pk.dtls12_cid(cid, body, epoch=1, seq=i + 1), from_client))
    pcap = tmp_path / "dtls-two-lengths.pcap"
    _write(pcap, datagrams)
    rows = fields(pcap, ["dtls.record.connection_id"], decode_as=["udp.port==4433,dtls"])
    assert len(rows) == len(datagrams)

    both = Extractor(["dtls"], BOTH)
    learned: dict[bool, int] = {}  # receiving side (True: the client) -> CID length
    for (payload, from_client), row in zip(datagrams, rows, strict=True):
        hello = sidkit_dtls.hello_cid_length(payload)
        if hello is not None:
            role, length = hello
            learned[role == "client"] = length
            continue
        sid = both.extract(payload)
        assert sid is not None and row["dtls.record.connection_id"] == [sid.value.hex()]
        per_direction = Extractor(["dtls"], {"cid_length": learned[not from_client]})
        assert per_direction.extract(payload) == sid
        assert len(sid.value) == (8 if from_client else 17)
    assert learned == {True: 17, False: 8}
