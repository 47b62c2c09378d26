"""WireGuard, DTLS, GTP-U, IPsec NAT-T, SRT, RTP/RTCP and OpenVPN against Wireshark (tshark).

Packets are built from the specifications' layouts with random IDs (tests/fixtures/packets.py),
written to a pcap, and dissected by tshark; every session ID sidkit extracts must equal the
field tshark reports (and where sidkit finds none, tshark must show no such field). The
real-implementation captures are QUIC's (test_tshark_quic.py); where no implementation of a
protocol installs from the registries here, these generated packets are the evidence.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sidkit_dtls
from fixtures import packets as pk
from fixtures.tshark import fields, uint_hex, write_pcap

from sidkit.extract import Extractor
from sidkit.keys import FiveTuple, SessionId

pytestmark = pytest.mark.oracle

RNG_SEED = 20240513


def _run(
    tmp_path: Path,
    datagrams: list[bytes],
    names: list[str],
    *,
    port: int,
    decode_as: list[str] | None = None,
    prefs: dict[str, str] | None = None,
) -> list[dict[str, list[str]]]:
    pcap = tmp_path / "capture.pcap"
    write_pcap(pcap, [(d, 30000 + i, port) for i, d in enumerate(datagrams)])
    rows = fields(pcap, names, decode_as=decode_as or [], prefs=prefs)
    assert len(rows) == len(datagrams)
    return rows


def _sids(protocol: str, datagrams: list[bytes], **options: object) -> list[SessionId | None]:
    extractor = Extractor([protocol], options)
    return [extractor.extract(d) for d in datagrams]


def test_wireguard_indices_match_tshark(tmp_path: Path) -> None:
    rng = random.Random(RNG_SEED)
    datagrams = [
        pk.wireguard(  # transport data: 16 header + padded plaintext + 16 tag bytes
            t, sender=rng.randbytes(4), receiver=rng.randbytes(4), size=32 + 16 * rng.randint(0, 85)
        )
        for t in [1, 2, 3, 4] * 25
    ]
    rows = _run(
        tmp_path,
        datagrams,
        ["wg.type", "wg.sender", "wg.receiver"],
        port=51820,
        decode_as=["udp.port==51820,wg"],
    )
    for payload, row, sid in zip(datagrams, rows, _sids("wireguard", datagrams), strict=True):
        assert sid is not None
        assert row["wg.type"] == [str(payload[0])]
        # tshark prints the little-endian u32; the SID is the four bytes on the wire.
        field = "wg.sender" if payload[0] == 1 else "wg.receiver"
        assert sid.details["field"] == field.removeprefix("wg.")
        assert uint_hex(row[field][0]).to_bytes(4, "little") == sid.value


@pytest.mark.parametrize("cid_length", [4, 8, 13])
def test_dtls12_connection_ids_match_tshark(tmp_path: Path, cid_length: int) -> None:
    rng = random.Random(cid_length)
    datagrams: list[bytes] = []
    for i in range(60):
        if i % 4 == 3:  # plaintext records carry no CID
            datagrams.append(pk.dtls_plain(rng.choice([21, 22, 23]), rng.randbytes(30)))
        else:
            datagrams.append(
                pk.dtls12_cid(
                    rng.randbytes(cid_length),
                    rng.randbytes(rng.randint(16, 80)),
                    epoch=rng.randint(1, 9),
                    seq=rng.getrandbits(48),
                )
            )
    # Without the handshake tshark takes the CID length from these preferences.
    prefs = {"dtls.client_cid_length": str(cid_length), "dtls.server_cid_length": str(cid_length)}
    rows = _run(
        tmp_path,
        datagrams,
        ["dtls.record.content_type", "dtls.record.special_type", "dtls.record.connection_id"],
        port=4433,
        decode_as=["udp.port==4433,dtls"],
        prefs=prefs,
    )
    sids = _sids("dtls", datagrams, cid_length=cid_length)
    found = 0
    for payload, row, sid in zip(datagrams, rows, sids, strict=True):
        # tshark names a tls12_cid record's type "special type", the others "content type".
        kind = "special_type" if payload[0] == 25 else "content_type"
        assert row[f"dtls.record.{kind}"] == [str(payload[0])]
        if sid is None:
            assert row["dtls.record.connection_id"] == []
        else:
            found += 1
            assert row["dtls.record.connection_id"] == [sid.value.hex()]
    assert found == 45


def test_dtls_hello_connection_id_extension_matches_tshark(tmp_path: Path) -> None:
    rng = random.Random(9146)
    cases = [(msg, rng.randbytes(n)) for msg in (1, 2) for n in (0, 1, 5, 8, 20, 255)]
    datagrams = [pk.dtls_hello(msg, cid) for msg, cid in cases] + [pk.dtls_hello(1, None)]
    rows = _run(
        tmp_path,
        datagrams,
        ["dtls.handshake.type", "dtls.connection_id"],
        port=4433,
        decode_as=["udp.port==4433,dtls"],
    )
    for (msg, cid), row, payload in zip(cases, rows[:-1], datagrams[:-1], strict=True):
        assert row["dtls.handshake.type"] == [str(msg)]
        assert sidkit_dtls.hello_connection_id(payload) == (54, cid)
        assert row["dtls.connection_id"] == ([cid.hex()] if cid else [])
    assert sidkit_dtls.hello_connection_id(datagrams[-1]) is None
    assert rows[-1]["dtls.connection_id"] == []


def test_gtpu_teids_match_tshark(tmp_path: Path) -> None:
    rng = random.Random(29281)
    datagrams = [pk.gtpu(255, rng.randbytes(4), rng.randbytes(40)) for _ in range(40)]
    datagrams += [pk.gtpu(1, bytes(4), b""), pk.gtpu(2, bytes(4), b"\x0e\x00")]  # echo: TEID 0
    datagrams += [pk.gtpu(254, rng.randbytes(4), b""), pk.gtpu(26, bytes(4), rng.randbytes(12))]
    rows = _run(tmp_path, datagrams, ["gtp.message", "gtp.teid"], port=2152)
    for payload, row, sid in zip(datagrams, rows, _sids("gtpu", datagrams), strict=True):
        assert row["gtp.message"] == [f"0x{payload[1]:02x}"] or row["gtp.message"] == [
            str(payload[1])
        ]
        teid = uint_hex(row["gtp.teid"][0])
        if sid is None:
            assert teid == 0
        else:
            assert teid.to_bytes(4, "big") == sid.value


def test_ipsec_nat_t_matches_tshark(tmp_path: Path) -> None:
    rng = random.Random(3948)
    datagrams: list[bytes] = []
    for i in range(45):
        kind = i % 3
        if kind == 0:
            spi = rng.randbytes(4)
            datagrams.append(pk.esp(spi if any(spi) else b"\x00\x00\x01\x00", i, rng.randbytes(48)))
        elif kind == 1:
            datagrams.append(
                pk.ike(rng.randbytes(8), rng.randbytes(8), rng.randbytes(20), marker=True)
            )
        else:
            datagrams.append(b"\xff")
    names = ["esp.spi", "isakmp.ispi", "isakmp.rspi", "udpencap.nat_keepalive"]
    rows = _run(tmp_path, datagrams, names, port=4500)
    for payload, row, sid in zip(datagrams, rows, _sids("ipsec", datagrams), strict=True):
        if sid is None:
            assert payload == b"\xff" and row["udpencap.nat_keepalive"] != []
        elif sid.details["kind"] == "esp":
            assert uint_hex(row["esp.spi"][0]).to_bytes(4, "big") == sid.value
        else:
            assert row["isakmp.ispi"] == [sid.value.hex()]
            assert row["isakmp.rspi"] == [bytes(sid.details["responder_spi"]).hex()]  # type: ignore[call-overload]


def test_ike_on_port_500_matches_tshark(tmp_path: Path) -> None:
    rng = random.Random(7296)
    datagrams = [
        pk.ike(rng.randbytes(8), bytes(8), rng.randbytes(24), marker=False) for _ in range(10)
    ]
    rows = _run(tmp_path, datagrams, ["isakmp.ispi"], port=500)
    extractor = Extractor(["ipsec"])
    for i, (payload, row) in enumerate(zip(datagrams, rows, strict=True)):
        five_tuple = FiveTuple("127.0.0.1", 30000 + i, "127.0.0.2", 500)
        sid = extractor.extract(payload, five_tuple)
        assert sid is not None and row["isakmp.ispi"] == [sid.value.hex()]


def test_srt_destination_socket_ids_match_tshark(tmp_path: Path) -> None:
    rng = random.Random(1935)
    datagrams: list[bytes] = []
    for i in range(40):
        dst = rng.randbytes(4)
        if i % 2:
            datagrams.append(pk.srt_data(rng.getrandbits(31), dst, rng.randbytes(100)))
        else:
            ctype = rng.choice([1, 2, 5, 6])
            datagrams.append(pk.srt_control(ctype, dst, rng.randbytes(16 if ctype == 2 else 4)))
    datagrams.append(pk.srt_control(0, rng.randbytes(4), pk.srt_handshake_cif(rng.randbytes(4))))
    rows = _run(
        tmp_path,
        datagrams,
        ["srt.iscontrol", "srt.id"],
        port=9000,
        decode_as=["udp.port==9000,srt"],
    )
    for payload, row, sid in zip(datagrams, rows, _sids("srt", datagrams), strict=True):
        assert sid is not None
        assert row["srt.iscontrol"] == [str(payload[0] >> 7)]
        assert uint_hex(row["srt.id"][0]).to_bytes(4, "big") == sid.value


def test_rtp_and_rtcp_ssrcs_match_tshark(tmp_path: Path) -> None:
    rng = random.Random(3550)
    rtp = [
        pk.rtp(rng.choice([0, 8, 96, 111]), rng.randbytes(4), rng.randbytes(160), seq=i)
        for i in range(30)
    ]
    rows = _run(tmp_path, rtp, ["rtp.ssrc"], port=5004, decode_as=["udp.port==5004,rtp"])
    for row, sid in zip(rows, _sids("rtp", rtp), strict=True):
        assert sid is not None and sid.details["kind"] == "rtp"
        assert uint_hex(row["rtp.ssrc"][0]).to_bytes(4, "big") == sid.value
    rtcp = [pk.rtcp_sender_report(rng.randbytes(4)) for _ in range(10)]
    rtcp += [pk.rtcp_receiver_report(rng.randbytes(4)) for _ in range(10)]
    rows = _run(tmp_path, rtcp, ["rtcp.senderssrc"], port=5005, decode_as=["udp.port==5005,rtcp"])
    for row, sid in zip(rows, _sids("rtp", rtcp), strict=True):
        assert sid is not None and sid.details["kind"] == "rtcp"
        assert uint_hex(row["rtcp.senderssrc"][0]).to_bytes(4, "big") == sid.value


def test_openvpn_session_and_peer_ids_match_tshark(tmp_path: Path) -> None:
    rng = random.Random(1194)
    datagrams: list[bytes] = []
    for i in range(40):
        if i % 2:
            datagrams.append(
                pk.openvpn_data_v2(rng.randint(0, 7), rng.randbytes(3), rng.randbytes(60))
            )
        else:
            # Opcodes tshark 4.0 knows (1..8); 10 and 11 came with OpenVPN 2.6.
            opcode = rng.choice([1, 2, 3, 4, 7, 8])
            datagrams.append(pk.openvpn_control(opcode, rng.randint(0, 7), rng.randbytes(8), i))
    rows = _run(
        tmp_path, datagrams, ["openvpn.opcode", "openvpn.sessionid", "openvpn.peerid"], port=1194
    )
    for payload, row, sid in zip(datagrams, rows, _sids("openvpn", datagrams), strict=True):
        assert sid is not None
        assert uint_hex(row["openvpn.opcode"][0]) == payload[0] >> 3
        if sid.details["field"] == "peer_id":
            assert uint_hex(row["openvpn.peerid"][0]).to_bytes(3, "big") == sid.value
        else:
            assert uint_hex(row["openvpn.sessionid"][0]).to_bytes(8, "big") == sid.value
