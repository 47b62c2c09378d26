"""sidkit's capture reader and link-layer decoding against independent readers.

Oracles: dpkt's pcap reader for the record stream (both byte orders, micro- and nanosecond
files, snaplen-truncated records), and tshark (``ip.src``/``ipv6.src``, ``udp.srcport`` ...)
for the tuples decoded from every link type. The captures are written here by dpkt's writer
(frames built field by field from the link-layer specifications), converted by Wireshark's
editcap (nanosecond, snaplen, pcapng) and merged by mergecap (a pcapng whose interfaces have
different link types). Corrupt and truncated files, and arbitrary bytes (Hypothesis), must
give records or sidkit errors, never anything else.
"""

from __future__ import annotations

import io
import shutil
import socket
import struct
import subprocess
from decimal import Decimal
from pathlib import Path

import dpkt
import pytest
from fixtures.tshark import fields, tshark
from hypothesis import given
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.flows._capture import Capture
from sidkit.flows._decode import DECODERS, Fragment, decode_frame
from sidkit.flows._errors import CaptureError, NotACaptureError, UnsupportedLinkTypeError

DATA = Path(__file__).parents[1] / "data"
V4 = ("192.0.2.1", "198.51.100.7")
V6 = ("2001:db8::1", "2001:db8:ffff::77")


def _records(path: Path) -> tuple[list[tuple[int, int, bytes, int]], list[str]]:
    with path.open("rb") as fh:
        cap = Capture(fh, name=path.name)
        return list(cap), cap.errors


def _dpkt_records(path: Path) -> list[tuple[float, bytes]]:
    with path.open("rb") as fh:
        return list(dpkt.pcap.Reader(fh))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        tshark()  # skips or fails through conftest.oracle_unavailable
        raise AssertionError(f"{name} missing although tshark is installed")
    return path


# --- frames ----------------------------------------------------------------------------------


def _ip_udp(family: int, src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """IPv4 with a 4-byte option, or IPv6 with hop-by-hop and destination options."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if family == 4:
        options = b"\x94\x04\x00\x00"  # router alert (RFC 2113), makes IHL 6
        head = struct.pack(
            "!BBHHHBBH4s4s",
            0x46,
            0,
            24 + len(udp),
            1,
            0,
            64,
            17,
            0,
            socket.inet_aton(src),
            socket.inet_aton(dst),
        )
        return head + options + udp
    ext = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"  # hop-by-hop -> dest opts, PadN
    ext += bytes([17, 0]) + b"\x01\x04\x00\x00\x00\x00"  # dest opts -> UDP
    head = struct.pack("!IHBB", 0x60000000, len(ext) + len(udp), 0, 64)
    return (
        head
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + ext
        + udp
    )


def _link(linktype: int, family: int, packet: bytes, vlan: bool = False) -> bytes:
    etype = 0x0800 if family == 4 else 0x86DD
    if linktype == 1:
        mac = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
        tag = struct.pack("!HH", 0x8100, 42) if vlan else b""
        return mac + tag + struct.pack("!H", etype) + packet
    if linktype == 113:  # packet type, ARPHRD, address length, address(8), protocol
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", etype) + packet
    if linktype == 276:  # protocol, reserved, ifindex, ARPHRD, packet type, len, address(8)
        return struct.pack("!HHIHBB8s", etype, 0, 3, 1, 0, 6, b"\x02" * 6 + b"\0\0") + packet
    if linktype in (101, 12, 14):
        return packet
    if linktype == 0:  # host byte order of the writer: little-endian here
        return struct.pack("<I", 2 if family == 4 else 30) + packet
    if linktype == 108:
        return struct.pack("!I", 2 if family == 4 else 24) + packet
    raise AssertionError(linktype)


def _write(path: Path, linktype: int, frames: list[bytes], *, nano: bool = False) -> None:
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=linktype, nano=nano)
        for i, frame in enumerate(frames):
            writer.writepkt(frame, ts=1_700_000_000 + i * 0.001)


def _frames(linktype: int, *, vlan: bool = False) -> list[bytes]:
    out = []
    for i in range(6):
        family = 4 if i % 2 == 0 else 6
        src, dst = V4 if family == 4 else V6
        if i % 3 == 2:
            src, dst = dst, src
        packet = _ip_udp(family, src, dst, 40000 + i, 443, bytes([0x40 + i]) * (20 + i))
        out.append(_link(linktype, family, packet, vlan))
    return out


def _tshark_tuples(path: Path) -> list[tuple[str, int, str, int, int]]:
    rows = fields(
        path,
        ["ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "udp.srcport", "udp.dstport", "udp.length"],
    )
    out = []
    for r in rows:
        src = (r["ip.src"] or r["ipv6.src"])[-1]
        dst = (r["ip.dst"] or r["ipv6.dst"])[-1]
        out.append(
            (src, int(r["udp.srcport"][0]), dst, int(r["udp.dstport"][0]), int(r["udp.length"][0]))
        )
    return out


def _ours(path: Path) -> list[tuple[str, int, str, int, int]]:
    records, errors = _records(path)
    assert not errors
    out = []
    for _ts, linktype, frame, _wire in records:
        d = decode_frame(linktype, frame)
        assert not isinstance(d, str | Fragment), d
        src, sport, dst, dport, payload, length = d
        family = socket.AF_INET6 if len(src) == 16 else socket.AF_INET
        assert len(payload) == length
        out.append(
            (socket.inet_ntop(family, src), sport, socket.inet_ntop(family, dst), dport, length + 8)
        )
    return out


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("linktype", "vlan"),
    [
        (1, False),
        (1, True),
        (113, False),
        (276, False),
        (101, False),
        (12, False),
        (0, False),
        (108, False),
    ],
)
def test_link_types_match_tshark(tmp_path: Path, linktype: int, vlan: bool) -> None:
    path = tmp_path / f"lt{linktype}.pcap"
    _write(path, linktype, _frames(linktype, vlan=vlan))
    assert _ours(path) == _tshark_tuples(path)


@pytest.mark.oracle
def test_pcapng_with_interfaces_of_different_link_types(tmp_path: Path) -> None:
    """mergecap writes one pcapng whose interfaces are Ethernet, SLL2 and raw IP; each
    packet must be decoded by its own interface's link type (dpkt.pcapng.Reader would apply
    the first interface's to all)."""
    parts = []
    for n, linktype in enumerate((1, 276, 101)):
        part = tmp_path / f"part{n}.pcap"
        _write(part, linktype, _frames(linktype))
        parts.append(str(part))
    merged = tmp_path / "merged.pcapng"
    subprocess.run(
        [_tool("mergecap"), "-F", "pcapng", "-w", str(merged), *parts], check=True, timeout=60
    )
    with merged.open("rb") as fh:
        cap = Capture(fh)
        records = list(cap)
    assert cap.format == "pcapng"
    assert {r[1] for r in records} == {1, 276, 101}
    assert _ours(merged) == _tshark_tuples(merged)
    # timestamps: tshark's frame.time_epoch, to the nanosecond
    epochs = [r["frame.time_epoch"][0] for r in fields(merged, ["frame.time_epoch"])]
    assert [f"{ts // 10**9}.{ts % 10**9:09d}" for ts, *_ in records] == epochs


@pytest.mark.oracle
def test_pcapng_single_interface_matches_dpkt(tmp_path: Path) -> None:
    src = DATA / "quic-v1-migration.pcap"
    ng = tmp_path / "m.pcapng"
    subprocess.run([_tool("editcap"), "-F", "pcapng", str(src), str(ng)], check=True, timeout=60)
    records, errors = _records(ng)
    assert not errors
    with ng.open("rb") as fh:
        ref = list(dpkt.pcapng.Reader(fh))
    assert [r[2] for r in records] == [bytes(b) for _ts, b in ref]
    assert [round(r[0] / 1e9, 6) for r in records] == [round(ts, 6) for ts, _b in ref]


# --- the classic pcap reader against dpkt's -------------------------------------------------


def _byteswap_pcap(data: bytes) -> bytes:
    """The same capture as a big-endian writer would have written it."""
    magic, major, minor, zone, sig, snap, link = struct.unpack_from("<IHHiIII", data)
    out = [struct.pack(">IHHiIII", magic, major, minor, zone, sig, snap, link)]
    pos = 24
    while pos < len(data):
        sec, frac, caplen, wire = struct.unpack_from("<IIII", data, pos)
        out.append(struct.pack(">IIII", sec, frac, caplen, wire))
        out.append(data[pos + 16 : pos + 16 + caplen])
        pos += 16 + caplen
    return b"".join(out)


def _assert_same_as_dpkt(path: Path) -> None:
    records, errors = _records(path)
    assert not errors
    ref = _dpkt_records(path)
    assert [r[2] for r in records] == [b for _ts, b in ref]
    for (ts_ns, *_), (ts, _b) in zip(records, ref, strict=True):
        if isinstance(ts, Decimal):  # dpkt's nanosecond timestamps are exact
            assert ts_ns == int(ts * 10**9)
        else:
            assert abs(ts_ns / 1e9 - ts) < 1e-6


@pytest.mark.parametrize("name", ["quic-v1-migration.pcap", "quic-v2.pcap", "quic-retry-vn.pcap"])
def test_pcap_reader_matches_dpkt_both_byte_orders(tmp_path: Path, name: str) -> None:
    _assert_same_as_dpkt(DATA / name)
    swapped = tmp_path / ("be-" + name)
    swapped.write_bytes(_byteswap_pcap((DATA / name).read_bytes()))
    _assert_same_as_dpkt(swapped)
    assert [r[2] for r in _records(swapped)[0]] == [r[2] for r in _records(DATA / name)[0]]


@pytest.mark.oracle
def test_nanosecond_and_snaplen_truncated_pcap_match_dpkt(tmp_path: Path) -> None:
    src = DATA / "quic-v1-migration.pcap"
    nano = tmp_path / "nano.pcap"
    subprocess.run([_tool("editcap"), "-F", "nsecpcap", str(src), str(nano)], check=True)
    assert nano.read_bytes()[:4] == b"\x4d\x3c\xb2\xa1"
    _assert_same_as_dpkt(nano)
    epochs = [r["frame.time_epoch"][0] for r in fields(nano, ["frame.time_epoch"])]
    assert [f"{ts // 10**9}.{ts % 10**9:09d}" for ts, *_ in _records(nano)[0]] == epochs
    cut = tmp_path / "snap.pcap"
    subprocess.run([_tool("editcap"), "-F", "pcap", "-s", "60", str(src), str(cut)], check=True)
    _assert_same_as_dpkt(cut)
    records, _ = _records(cut)
    assert all(len(r[2]) == 60 and r[3] > 60 for r in records)
    # the UDP length still comes from the header; tshark agrees on the ports
    rows = _tshark_tuples(cut)
    for (_ts, lt, frame, _w), row in zip(records, rows, strict=True):
        d = decode_frame(lt, frame)
        assert not isinstance(d, str | Fragment)
        assert (d[1], d[3], d[5] + 8) == (row[1], row[3], row[4])
        assert len(d[4]) == 60 - 42


def test_big_endian_nanosecond_header_is_read(tmp_path: Path) -> None:
    data = _byteswap_pcap((DATA / "quic-v2.pcap").read_bytes())
    data = struct.pack(">I", 0xA1B23C4D) + data[4:]  # the same file declared nanosecond
    path = tmp_path / "be-nano.pcap"
    path.write_bytes(data)
    records, errors = _records(path)
    ref = _dpkt_records(path)
    assert not errors and [r[2] for r in records] == [b for _t, b in ref]
    for (ts_ns, *_), (ts, _b) in zip(records, ref, strict=True):
        assert ts_ns == int(ts * 10**9)


# --- broken files -----------------------------------------------------------------------------


def test_cut_mid_record_keeps_what_was_read(tmp_path: Path) -> None:
    data = (DATA / "quic-v1-migration.pcap").read_bytes()
    full, _ = _records(DATA / "quic-v1-migration.pcap")
    for cut in (len(data) - 5, len(data) - 300, 24 + 16 + 3):
        path = tmp_path / "cut.pcap"
        path.write_bytes(data[:cut])
        records, errors = _records(path)
        # dpkt yields the cut record short, without a word; sidkit stops before it and
        # says so. Everything before it is the same.
        ref = _dpkt_records(path)
        assert [r[2] for r in records] == [b for _t, b in ref[: len(records)]]
        assert len(ref) == len(records) + 1
        assert len(ref[-1][1]) < len(full[len(records)][2])
        assert records == full[: len(records)]
        assert errors and "ends inside a record" in errors[0]


def test_corrupt_record_header_stops_with_message(tmp_path: Path) -> None:
    data = bytearray((DATA / "quic-v1-migration.pcap").read_bytes())
    first_len = struct.unpack_from("<I", data, 24 + 8)[0]
    second = 24 + 16 + first_len
    struct.pack_into("<I", data, second + 8, 0x7FFFFFFF)
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(data))
    records, errors = _records(path)
    assert len(records) == 1
    assert "corrupt record header" in errors[0]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", NotACaptureError),
        (b"hello, world, this is text", NotACaptureError),
        (b"\xd4\xc3\xb2\xa1\x02\x00", NotACaptureError),  # header cut short
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147), UnsupportedLinkTypeError),
        (struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1), NotACaptureError),
    ],
)
def test_unreadable_captures_raise_sidkit_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        Capture(io.BytesIO(data))


def test_header_only_pcap_is_an_empty_capture() -> None:
    cap = Capture(io.BytesIO(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)))
    assert list(cap) == [] and cap.errors == []


def _drain(data: bytes) -> None:
    try:
        cap = Capture(io.BytesIO(data))
        for _ts, linktype, frame, _w in cap:
            if linktype in DECODERS:
                decode_frame(linktype, frame)
    except SidkitError:
        pass


@given(st.binary(max_size=300))
def test_any_bytes_as_a_capture_parse_or_raise_sidkit_errors(data: bytes) -> None:
    _drain(data)


_SEED = (DATA / "quic-retry-vn.pcap").read_bytes()


@given(st.integers(0, len(_SEED) - 1), st.binary(min_size=1, max_size=8), st.integers(0, 400))
def test_mutated_captures_parse_or_raise_sidkit_errors(pos: int, patch: bytes, cut: int) -> None:
    data = _SEED[:pos] + patch + _SEED[pos + len(patch) :]
    _drain(data[: len(data) - cut])
    ng = b"\x0a\x0d\x0d\x0a" + data[4:]  # the same bytes claimed as a pcapng
    _drain(ng[: len(ng) - cut])


@given(st.sampled_from(sorted(DECODERS)), st.binary(max_size=120))
def test_any_bytes_as_a_frame_decode_or_give_a_reason(linktype: int, frame: bytes) -> None:
    result = decode_frame(linktype, frame)
    assert isinstance(result, str | tuple)


def test_unknown_linktype_in_decode_frame() -> None:
    with pytest.raises(UnsupportedLinkTypeError):
        decode_frame(147, b"")
    assert issubclass(UnsupportedLinkTypeError, CaptureError)


def test_fragments_and_non_udp_are_reasons() -> None:
    packet = bytearray(_ip_udp(4, *V4, 1, 2, b"x"))
    packet[6] = 0x00
    packet[7] = 0x10  # fragment offset 16*8: a non-first fragment, for reassembly
    frag4 = decode_frame(101, bytes(packet))
    assert isinstance(frag4, Fragment) and (frag4.offset, frag4.more) == (128, False)
    packet[7] = 0
    packet[9] = 6  # TCP
    assert decode_frame(101, bytes(packet)) == "not-udp"
    v6 = _ip_udp(6, *V6, 1, 2, b"x")
    frag = bytearray(v6[:40]) + bytes([17, 0, 0, 0x08, 0, 0, 0, 1]) + v6[56:]
    frag[6] = 44
    frag6 = decode_frame(101, bytes(frag))
    assert isinstance(frag6, Fragment) and (frag6.offset, frag6.more) == (8, False)
    first = bytearray(frag)
    first[42:44] = b"\x00\x01"  # offset 0, more fragments: the first one
    frag6 = decode_frame(101, bytes(first))
    assert isinstance(frag6, Fragment) and (frag6.offset, frag6.more) == (0, True)
    first[40] = 6  # TCP behind the fragment header: not reassembled
    assert decode_frame(101, bytes(first)) == "not-udp"
    first[42:44] = b"\x00\x08"
    assert decode_frame(101, bytes(first)) == "ip-fragment"
    atomic = bytearray(frag)
    atomic[42:44] = b"\x00\x00"  # RFC 6946 atomic fragment: an ordinary datagram
    d = decode_frame(101, bytes(atomic))
    assert not isinstance(d, str | Fragment) and d[1] == 1 and d[3] == 2
    assert decode_frame(1, b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28) == "not-ip"
