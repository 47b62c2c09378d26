"""QUIC connection-ID lengths per endpoint in ``sidkit flows``, and the per-protocol reasons
for datagrams without a session ID.

One side choosing zero-length CIDs (Chrome's client, some servers) is valid QUIC (RFC 9000
section 5.1: "a zero-length connection ID can be used when a connection ID is not needed to
route to the correct endpoint"); the peer then sends it short headers without a DCID, and
the endpoint finds its connection by the addresses (section 5.2). sidkit must learn the
length per endpoint, keep the connection one flow across a NAT rebinding, and never read a
configured ``cid_length`` into a packet that carries no DCID. Every scenario also runs
through both paths of the analyzer (fast and reference), which must agree.
"""

from __future__ import annotations

import io

import pytest
from fixtures import packets as pk
from test_flows_fast import CLIENT1, SERVER, _both, _capture

from sidkit.flows import analyze

ORIG, CID = bytes.fromhex("0102030405060708"), bytes.fromhex("c0c1c2c3c4c5c6c7")


def _connection(zero: str) -> list[tuple[bytes, int, bytes, int, bytes]]:
    """A handshake, 1-RTT both ways, then (when the client chose zero-length CIDs, so that
    the server can follow it) a NAT rebinding of the client's port; the side *zero*
    ("client" or "server") chose zero-length CIDs, the other *CID*. A server that chose
    zero-length CIDs finds connections by address: it cannot follow a rebinding (RFC 9000
    section 5.2.2 sends such packets to a new connection or a stateless reset)."""
    client_cid, server_cid = (b"", CID) if zero == "client" else (CID, b"")
    c, s = (CLIENT1, 5000), (SERVER, 443)
    c2 = (CLIENT1, 5001)
    datagrams = [
        (*c, *s, pk.quic_long(pk.QUIC_V1, "initial", ORIG, client_cid, b"ch" * 20)),
        (*s, *c, pk.quic_long(pk.QUIC_V1, "initial", client_cid, server_cid, b"sh" * 20)),
        (*s, *c, pk.quic_long(pk.QUIC_V1, "handshake", client_cid, server_cid, b"ee" * 20)),
        (*c, *s, pk.quic_long(pk.QUIC_V1, "handshake", server_cid, client_cid, b"fin" * 9)),
        (*c, *s, pk.quic_short(server_cid, b"request" * 4)),
        (*s, *c, pk.quic_short(client_cid, b"response" * 4)),
    ]
    if zero == "server":
        return datagrams
    return [
        *datagrams,
        (*c2, *s, pk.quic_short(server_cid, b"after rebinding" * 2)),
        (*s, *c2, pk.quic_short(client_cid, b"response" * 4)),
        (*s, *c2, pk.quic_short(client_cid, b"more" * 8)),
    ]


@pytest.mark.parametrize("options", [{}, {"quic.cid_length": 8}])
@pytest.mark.parametrize("zero", ["client", "server"])
def test_zero_length_cids_on_one_side_stay_one_flow(zero: str, options: dict[str, object]) -> None:
    data = _capture(_connection(zero))
    _both(data, None, options, "sid")
    _both(data, None, options, "tuple")
    report = analyze(io.BytesIO(data), options=options)
    [flow] = report.flows
    n, paths = (9, 2) if zero == "client" else (6, 1)
    assert flow.kind == "sid" and flow.datagrams == n and flow.paths == paths
    assert set(flow.sids) == {ORIG.hex(), CID.hex()}
    # the datagrams to the zero-length side: none of them is read as an 8-byte ID
    empty = 5 if zero == "client" else 2
    assert report.summary.no_sid == {"quic-empty-cid": empty}
    assert report.summary.no_sid_by_protocol == {"quic": {"empty-cid": empty}}
    assert report.summary.with_sid == n - empty


def test_configured_length_applies_where_nothing_is_learned() -> None:
    """A capture without handshakes: the configured length is all there is (and the fast
    path slices it); a later handshake's learned lengths win for their endpoints only."""
    other = bytes([10, 0, 0, 9])
    datagrams = [
        (SERVER, 443, CLIENT1, 5000, pk.quic_short(CID, b"mid-connection" * 2)),
        (CLIENT1, 5000, SERVER, 443, pk.quic_short(ORIG, b"mid-connection" * 2)),
        (other, 6000, SERVER, 443, pk.quic_long(pk.QUIC_V1, "initial", ORIG[:4], b"", b"x")),
        (SERVER, 443, other, 6000, pk.quic_short(b"", b"no DCID here, 8 bytes of body")),
        (SERVER, 443, CLIENT1, 5000, pk.quic_short(CID, b"still eight" * 2)),
    ]
    data = _capture(datagrams)
    _both(data, None, {"quic.cid_length": 8}, "sid")
    report = analyze(io.BytesIO(data), options={"quic.cid_length": 8})
    assert [f.sid for f in report.flows] == [CID.hex(), ORIG.hex(), ORIG[:4].hex()]
    assert [f.datagrams for f in report.flows] == [2, 1, 2]
    assert report.summary.no_sid == {"quic-empty-cid": 1}


def test_no_sid_reasons_per_protocol() -> None:
    datagrams = [
        (CLIENT1, 5000, SERVER, 443, pk.quic_short(CID, b"no handshake seen")),
        (CLIENT1, 5000, SERVER, 51820, pk.wireguard(3, sender=b"", receiver=b"\1\2\3\4")[:6]),
        (CLIENT1, 5000, SERVER, 53, b"\x12\x34\x01\x00" + bytes(8)),
    ]
    data = _capture(datagrams)
    _both(data, None, {}, "sid")
    summary = analyze(io.BytesIO(data)).summary
    assert sum(sum(r.values()) for r in summary.no_sid_by_protocol.values()) == 3
    assert summary.no_sid_by_protocol["quic"] == {"cid-length-unknown": 1}
    assert summary.to_json()["no_sid_by_protocol"] == {
        p: dict(r) for p, r in summary.no_sid_by_protocol.items()
    }
