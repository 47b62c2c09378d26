"""The QUIC and WireGuard plugins build their IDs without the public constructor's checks
and make the details when first read (issue 17): the lazy details must be what the
parsers say -- for QUIC long headers the fields parse_header() reads, for WireGuard the
message table -- and an ID must equal, hash and pickle as one built the public way."""

from __future__ import annotations

import pickle
import struct

import sidkit_quic
import sidkit_wireguard
from hypothesis import given
from hypothesis import strategies as st

from sidkit.extract import Extractor, MalformedPacketError
from sidkit.keys import SessionId
from sidkit.plugin import DETAIL_VALIDATED

_QUIC = Extractor(["quic"], {"quic": {"unknown_versions": True}}, exact=False)
_WG = Extractor(["wireguard"], exact=False)


@given(
    first=st.integers(0x80, 0xFF),
    version=st.sampled_from([1, 0x6B3343CF, 0, 0xFF00001D, 0x12345678]),
    dcid=st.binary(max_size=21),
    scid=st.binary(max_size=21),
    rest=st.binary(max_size=40),
)
def test_quic_long_header_details_are_the_parsers(
    first: int, version: int, dcid: bytes, scid: bytes, rest: bytes
) -> None:
    payload = (
        bytes([first])
        + struct.pack("!I", version)
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + rest
    )
    try:
        header = sidkit_quic.parse_header(payload)
    except MalformedPacketError:
        header = None
    try:
        sid = _QUIC.extract(payload)
    except MalformedPacketError:
        assert header is None
        return
    if sid is None:
        return
    assert header is not None and header.long_header
    details = dict(sid.details)
    validated = details.pop(DETAIL_VALIDATED, False)
    assert details == {
        "header_form": "long",
        "version": header.version,
        "packet_type": header.packet_type,
        "field": "dcid" if header.dcid else "scid",
        "scid": header.scid,
    }
    assert validated in (True, False)
    assert sid.value == (header.dcid or header.scid)
    public = SessionId("quic", sid.value, dict(sid.details))
    assert sid == public and hash(sid) == hash(public)
    assert pickle.loads(pickle.dumps(sid)) == sid


@given(mtype=st.sampled_from(sorted(sidkit_wireguard.MESSAGES)), body=st.binary(min_size=200))
def test_wireguard_details_are_the_message_table(mtype: int, body: bytes) -> None:
    name, field, offset, size, _minimum = sidkit_wireguard.MESSAGES[mtype]
    payload = (bytes([mtype, 0, 0, 0]) + body)[: size or 48]
    sid = _WG.extract(payload)
    assert sid is not None
    assert dict(sid.details) == {"message_type": name, "field": field}
    assert sid.value == payload[offset : offset + 4] and type(sid.value) is bytes
    assert sid == SessionId("wireguard", payload[offset : offset + 4])
