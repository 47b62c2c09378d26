"""``sidkit sid``: which session ID a payload carries, from the command line.

The packets are published ones (RFC 9001 Appendix A's client Initial, whose destination
connection ID is printed in the RFC) or built by the byte layout of the protocol's
specification, so the expected IDs do not come from sidkit.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidkit import InputValueError, hashing
from sidkit.cli import main
from sidkit.plugin import parse_option_assignments

# RFC 9001 Appendix A.2: the protected client Initial begins with these bytes; the DCID
# 0x8394c8f03e515708 is in the clear (RFC 9001 section A.1).
RFC9001_INITIAL_PREFIX = bytes.fromhex(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sid", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_rfc9001_initial_dcid(capsys: pytest.CaptureFixture[str]) -> None:
    payload = RFC9001_INITIAL_PREFIX + bytes(1200 - len(RFC9001_INITIAL_PREFIX))
    code, out, _ = _run(capsys, payload.hex(), "--protocol", "quic")
    assert code == 0
    first = out.splitlines()[0].split()
    assert first[:2] == ["quic", "8394c8f03e515708"]
    # without the short-header CID length the server issues, QUIC has no fixed location
    assert "not at a fixed place" in out
    assert "scid = (empty)" in out  # the client Initial's SCID is empty in RFC 9001 A.2
    code, out, _ = _run(capsys, payload.hex(), "-p", "quic", "-o", "quic.cid_length=8")
    assert code == 0
    assert "8 bytes at payload offset 6" in out  # first byte, 4-byte version, length byte


def test_wireguard_with_steering(capsys: pytest.CaptureFixture[str]) -> None:
    # WireGuard whitepaper section 5.4.6: type 4, three zero bytes, receiver index, counter,
    # then at least a 16-byte tag: 32 bytes minimum.
    receiver = bytes.fromhex("a1b2c3d4")
    payload = b"\x04\x00\x00\x00" + receiver + bytes(24)
    code, out, _ = _run(capsys, payload.hex(), "-p", "wireguard", "--sockets", "6", "--seed", "9")
    assert code == 0
    assert out.split()[:2] == ["wireguard", receiver.hex()]
    expected = hashing.reciprocal_scale(hashing.jhash(receiver, 9), 6)
    assert f"socket {expected} of 6" in out
    # one byte short of the minimum: no ID (the steering programs agree, see test_steering)
    code, out, _ = _run(capsys, payload[:31].hex(), "-p", "wireguard")
    assert code == 1 and "no session ID" in out


def test_unknown_traffic_asks_every_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    dcid = bytes.fromhex("0011223344556677")
    payload = b"\x41" + dcid + bytes(30)
    code, out, _ = _run(capsys, payload.hex(), "-o", "cid_length=8")
    assert code == 0
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line[:1] != " "}
    assert lines["quic"] == dcid.hex()
    assert "[claims any first byte]" in out  # IPsec's SPI reading is flagged as weak


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["zz"], None),  # argparse: not hex
        (["41", "-o", "nonsense=1"], "belongs to none"),
        (["41", "-o", "cid_length"], "NAME=VALUE"),
        (["41", "-p", "no-such-protocol"], "no-such-protocol"),
        (["00112233", "-p", "fixed"], "offset"),  # required option missing
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str | None
) -> None:
    if message is None:
        with pytest.raises(SystemExit) as exc:
            main(["sid", *argv])
        assert exc.value.code == 2
        return
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert err.startswith("sidkit: error:") and message in err
    assert "Traceback" not in err


def test_option_assignments() -> None:
    got = parse_option_assignments(
        ["quic.cid_length=8", "fixed.guards=((0, 255, 4),)", "label=game", "grease=True"]
    )
    assert got == {
        "quic": {"cid_length": 8},
        "fixed": {"guards": ((0, 255, 4),)},
        "label": "game",
        "grease": True,
    }
    with pytest.raises(InputValueError):
        parse_option_assignments(["quic=1", "quic.cid_length=8"])


@given(st.lists(st.text(max_size=30), max_size=5))
def test_option_text_parses_or_raises_sidkit_error(items: list[str]) -> None:
    try:
        result = parse_option_assignments(items)
    except InputValueError:
        return
    assert isinstance(result, dict)


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    """``sidkit vectors list | head -1``: the pipe closes; exit 141 (SIGPIPE's), stderr empty.

    The reader's end is closed before the command writes anything, so every write meets a
    closed pipe. (Reading a line first and then closing raced the child: its whole output
    fits in the pipe buffer, and a child that finished writing first exited 0.)
    """
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sidkit.cli", "vectors", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert b"Traceback" not in proc.stderr and not proc.stderr


def _first_lines(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line[:1] != " "]


@pytest.mark.parametrize("low_bits", [0x0A, 0x4A])
def test_version_negotiation_comes_out_as_quic_first(
    capsys: pytest.CaptureFixture[str], low_bits: int
) -> None:
    """RFC 8999 section 6: version 0, DCID, SCID, then 32-bit versions; the 7 low bits of
    the first byte are arbitrary. Its structure validates, RTP's, ESP's and SRT's readings
    of the same bytes do not, so QUIC is listed first whatever the first-byte claims."""
    payload = (
        bytes([0x80 | low_bits, 0, 0, 0, 0, 8])
        + bytes.fromhex("0102030405060708")
        + bytes([4])
        + bytes.fromhex("a1a2a3a4")
        + bytes.fromhex("00000001 6b3343cf 1a2a3a4a")
    )
    code, out, _ = _run(capsys, payload.hex())
    assert code == 0
    assert _first_lines(out)[0] == "quic"
    assert out.splitlines()[0].split()[1] == "0102030405060708"
    assert "[structure validated]" in out.splitlines()[0]


def test_real_version_negotiation_from_aioquic(capsys: pytest.CaptureFixture[str]) -> None:
    """The VN packet aioquic's server sent in tests/data/quic-retry-vn.pcap (see
    tests/data/README.md)."""
    from pathlib import Path  # noqa: PLC0415

    import dpkt  # noqa: PLC0415

    pcap = Path(__file__).parents[1] / "data" / "quic-retry-vn.pcap"
    with pcap.open("rb") as fh:
        payloads = [
            bytes(dpkt.ethernet.Ethernet(f).data.data.data) for _t, f in dpkt.pcap.Reader(fh)
        ]
    (vn,) = [p for p in payloads if p[1:5] == bytes(4)]
    code, out, _ = _run(capsys, vn.hex())
    assert code == 0 and _first_lines(out)[0] == "quic"
    assert "packet_type = version_negotiation" in out


def test_dtls_cid_length_set_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """RFC 9146 section 4: tls12_cid(25), {254,253}, epoch, sequence number, a 17-byte CID,
    length, body. With the lengths 8 and 17 the record length field picks 17."""
    cid = bytes(range(17))
    body = b"x" * 20
    record = bytes([25, 0xFE, 0xFD, 0, 1]) + bytes(6) + cid + len(body).to_bytes(2, "big") + body
    for text in ("8,17", "{8,17}"):
        code, out, _ = _run(capsys, record.hex(), "-p", "dtls", "-o", f"dtls.cid_length={text}")
        assert code == 0 and out.split()[:2] == ["dtls", cid.hex()]
    assert parse_option_assignments(["dtls.cid_length=8,17"]) == {
        "dtls": {"cid_length": frozenset({8, 17})}
    }
    assert parse_option_assignments(["dtls.cid_length=8"]) == {"dtls": {"cid_length": 8}}
