"""Many captures as one (``sidkit flows A B C``, ``--jobs N``, ``analyze_many``).

The captures are built here: a session of each protocol (WireGuard, DTLS 1.2 with
connection IDs, QUIC with 8-byte CIDs) plus plain UDP, spread over four files so that
connections span file boundaries. The reference is the sequential pass (one analyzer over
the files in timestamp order), itself checked against one analyzer over the concatenation.
The parallel paths (processes, a Dask LocalCluster) must give the same report wherever
docs/flows-many.rst says they do, and differ exactly as it says where they do not.
"""

from __future__ import annotations

import json
import random
import struct
import sys
from pathlib import Path

import pytest
from fixtures.packets import QUIC_V1, dtls12_cid, quic_long, quic_short, wireguard

import sidkit.cli
from sidkit.flows import (
    CaptureError,
    FlowReport,
    NotACaptureError,
    analyze,
    analyze_many,
    expand_captures,
)

_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
OPTIONS = {"dtls": {"cid_length": 4}}


def _frame(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    ulen = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0, 64, 17, 0, src, dst)
    return _ETH + ip + struct.pack("!HHHH", sport, dport, ulen, 0) + payload


def _pcap(records: list[tuple[int, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)]
    for ts, frame in records:
        out.append(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(frame), len(frame)) + frame)
    return b"".join(out)


C1, C2, S = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x63"
T0 = 1_700_000_000 * 10**9


def _traffic(seed: int, *, spanning_quic: bool) -> list[tuple[int, bytes]]:
    """About 400 datagrams over 40 s: a WireGuard session (handshake first, then data both
    ways, a NAT rebinding half-way), a DTLS 1.2 CID session, plain UDP, and QUIC
    connections -- each entirely within one 10 s slice unless *spanning_quic*, when one
    connection's short headers run through the whole capture."""
    rng = random.Random(seed)
    out: list[tuple[int, bytes]] = []
    i_idx, r_idx = b"\x11\x11\x11\x11", b"\x22\x22\x22\x22"
    out.append((T0, _frame(C1, 51820, S, 51820, wireguard(1, sender=i_idx, receiver=b""))))
    out.append((T0 + 1000, _frame(S, 51820, C1, 51820, wireguard(2, sender=r_idx, receiver=i_idx))))
    for k in range(100):
        ts = T0 + 2000 + k * 400_000_000
        port = 51820 if k < 50 else 40000
        if k % 2:
            out.append((ts, _frame(C1, port, S, 51820, wireguard(4, sender=b"", receiver=r_idx))))
        else:
            out.append((ts, _frame(S, 51820, C1, port, wireguard(4, sender=b"", receiver=i_idx))))
    for k in range(60):
        ts = T0 + 5000 + k * 650_000_000
        out.append((ts, _frame(C2, 4433, S, 4434, dtls12_cid(b"\xd0\xd1\xd2\xd3", bytes(24)))))
        out.append((ts + 7, _frame(S, 53, C2, 5353, bytes([0x07]) + bytes(30))))
    quic = []
    for conn in range(4):
        start = T0 + conn * 10 * 10**9 + 3_000_000
        client = rng.randbytes(8)
        server = rng.randbytes(8)
        original = rng.randbytes(8)
        port = 50000 + conn
        quic.append(
            (start, (C2, port, S, 443, quic_long(QUIC_V1, "initial", original, client, bytes(40))))
        )
        quic.append(
            (
                start + 1000,
                (S, 443, C2, port, quic_long(QUIC_V1, "initial", client, server, bytes(40))),
            )
        )
        quic.append(
            (
                start + 2000,
                (S, 443, C2, port, quic_long(QUIC_V1, "handshake", client, server, bytes(40))),
            )
        )
        span = 36 if (spanning_quic and conn == 0) else 9
        for k in range(20):
            ts = start + 3000 + k * (span * 10**9 // 20)
            if k % 2:
                quic.append((ts, (C2, port, S, 443, quic_short(server, bytes(30)))))
            else:
                quic.append((ts, (S, 443, C2, port, quic_short(client, bytes(30)))))
    out.extend((ts, _frame(*parts)) for ts, parts in quic)
    out.sort(key=lambda r: r[0])
    return out


def _write_split(tmp: Path, records: list[tuple[int, bytes]], files: int = 4) -> list[Path]:
    """The records cut into *files* captures at equal time slices (as `tcpdump -G` does)."""
    span = (records[-1][0] - records[0][0]) // files + 1
    parts: list[list[tuple[int, bytes]]] = [[] for _ in range(files)]
    for ts, frame in records:
        parts[(ts - records[0][0]) // span].append((ts, frame))
    paths = []
    for n, part in enumerate(parts):
        path = tmp / f"trace-{n:02d}.pcap"
        path.write_bytes(_pcap(part))
        paths.append(path)
    return paths


@pytest.fixture
def four(tmp_path: Path) -> list[Path]:
    return _write_split(tmp_path, _traffic(1, spanning_quic=False))


def _same_except_capture(a: FlowReport, b: FlowReport) -> None:
    assert a.flows == b.flows
    sa, sb = a.summary.to_json(), b.summary.to_json()
    assert sa == sb


def test_sequential_pass_is_one_pass_over_the_concatenation(tmp_path: Path) -> None:
    records = _traffic(2, spanning_quic=True)
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(_pcap(records))
    parts = _write_split(tmp_path, records)
    one = analyze(whole, options=OPTIONS)
    many = analyze_many(parts, options=OPTIONS)
    assert many.flows == one.flows
    assert many.summary.capture == ", ".join(str(p) for p in parts)
    # the spanning QUIC connection is one flow, its short headers in later files included
    quic = [f for f in many.flows if f.protocol == "quic"]
    assert len(quic) == 4 and all(f.datagrams == 23 for f in quic)
    wg = [f for f in many.flows if f.protocol == "wireguard"]
    assert len(wg) == 1 and wg[0].datagrams == 102 and wg[0].paths == 2


def test_jobs_two_on_four_files_gives_the_one_process_report(four: list[Path]) -> None:
    one = analyze_many(four, options=OPTIONS)
    two = analyze_many(four, options=OPTIONS, jobs=2)
    _same_except_capture(one, two)
    # every kind of flow spans the files and is merged: WireGuard (linked in file 0),
    # DTLS, the plain-UDP tuple flow
    kinds = {(f.kind, f.protocol): f.datagrams for f in two.flows if f.datagrams >= 60}
    assert kinds == {("sid", "wireguard"): 102, ("sid", "dtls"): 60, ("tuple", None): 60}
    assert sum(f.datagrams for f in two.flows) == two.summary.udp == 102 + 120 + 4 * 23


def test_jobs_by_tuple(four: list[Path]) -> None:
    one = analyze_many(four, options=OPTIONS, by="tuple")
    two = analyze_many(four, options=OPTIONS, by="tuple", jobs=2)
    _same_except_capture(one, two)


def test_order_is_by_first_timestamp_not_by_argument(four: list[Path]) -> None:
    forward = analyze_many(four, options=OPTIONS)
    backward = analyze_many(list(reversed(four)), options=OPTIONS, jobs=2)
    _same_except_capture(forward, backward)
    assert backward.summary.capture == ", ".join(str(p) for p in four)


def test_directory_and_glob(four: list[Path]) -> None:
    folder = four[0].parent
    assert expand_captures([folder]) == sorted(four)
    assert expand_captures([str(folder / "trace-*.pcap")]) == sorted(four)
    # named twice: read once
    assert expand_captures([four[0], folder]) == [four[0], *sorted(four)[1:]]
    _same_except_capture(
        analyze_many(folder, options=OPTIONS), analyze_many(four, options=OPTIONS, jobs=2)
    )


def test_bad_inputs(tmp_path: Path, four: list[Path]) -> None:
    with pytest.raises(CaptureError, match="no such file"):
        analyze_many([tmp_path / "missing.pcap"])
    with pytest.raises(CaptureError, match="matches no file"):
        analyze_many([str(tmp_path / "nothing-*.pcap")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CaptureError, match="holds no file"):
        analyze_many([empty])
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    for jobs in (1, 2):
        with pytest.raises(NotACaptureError, match=r"junk\.pcap"):
            analyze_many([*four, junk], jobs=jobs)
    bad: tuple[object, ...] = (0, -1, True, 2.0)
    for value in bad:
        with pytest.raises(ValueError, match="jobs"):
            analyze_many(four, jobs=value)  # type: ignore[arg-type]


def test_dask_local_cluster_gives_the_one_process_report(four: list[Path]) -> None:
    distributed = pytest.importorskip(
        "distributed", reason="the cluster extra (dask distributed) is not installed"
    )
    one = analyze_many(four, options=OPTIONS)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_cluster = analyze_many(four, options=OPTIONS, client=client)
    _same_except_capture(one, on_cluster)


def test_cli_many_files_and_jobs(four: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for extra in ([], ["--jobs", "2"]):
        argv = ["flows", *map(str, four), "--option", "dtls.cid_length=4", "--json", *extra]
        assert sidkit.cli.main(argv) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    assert outputs[0]["summary"]["frames"] == sum(
        analyze(p, options=OPTIONS).summary.frames for p in four
    )
    # a directory on the command line
    assert sidkit.cli.main(["flows", str(four[0].parent), "-j", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["udp"] == outputs[0]["summary"]["udp"]
    # standard input cannot be one of several
    assert sidkit.cli.main(["flows", str(four[0]), "-"]) == 2
    assert "standard input" in capsys.readouterr().err


# --- what per-file parsing cannot know (docs/flows-many.rst, "What differs") ---------------


def test_quic_learned_in_an_earlier_file_is_what_differs(tmp_path: Path) -> None:
    """A QUIC connection whose long headers are all in the first file, and a second file
    with nothing to learn a CID length from: the sequential pass links the second file's
    short headers into the connection; the parallel one counts them as
    ``quic-cid-length-unknown`` in their 5-tuple's tuple flow -- and nothing else differs.
    With the CID length given (``quic.cid_length``), as the docs advise, the reports are
    the same again."""
    client, server, original = b"c" * 8, b"s" * 8, b"o" * 8
    first = [
        (T0, _frame(C2, 50000, S, 443, quic_long(QUIC_V1, "initial", original, client, b"x"))),
        (T0 + 1, _frame(S, 443, C2, 50000, quic_long(QUIC_V1, "initial", client, server, b"y"))),
        (T0 + 2, _frame(C2, 50000, S, 443, quic_short(server, bytes(20)))),
        (T0 + 3, _frame(C1, 51820, S, 51820, wireguard(4, sender=b"", receiver=b"wgwg"))),
    ]
    second = [
        (T0 + 10**9 + k, _frame(C2, 50000, S, 443, quic_short(server, bytes(20)))) for k in range(5)
    ] + [
        (T0 + 10**9 + 10 + k, _frame(S, 443, C2, 50000, quic_short(client, bytes(20))))
        for k in range(3)
    ]
    second.append(
        (T0 + 2 * 10**9, _frame(C1, 51820, S, 51820, wireguard(4, sender=b"", receiver=b"wgwg")))
    )
    parts = [tmp_path / "a.pcap", tmp_path / "b.pcap"]
    parts[0].write_bytes(_pcap(first))
    parts[1].write_bytes(_pcap(second))
    one = analyze_many(parts)
    two = analyze_many(parts, jobs=2)
    assert one.summary.no_sid == {}
    quic = [f for f in one.flows if f.protocol == "quic"]
    assert len(quic) == 1 and quic[0].datagrams == 11
    assert two.summary.no_sid == {"quic-cid-length-unknown": 8}
    # ... and says so
    assert one.summary.notes == ()
    (note,) = two.summary.notes
    assert note.startswith("8 QUIC datagrams in captures after the first")
    assert two.summary.to_json()["notes"] == [note] and "notes" not in one.summary.to_json()
    assert two.summary.with_sid == one.summary.with_sid - 8
    assert (two.summary.udp, two.summary.frames) == (one.summary.udp, one.summary.frames)
    (lost,) = [f for f in two.flows if f.kind == "tuple"]
    assert (lost.datagrams, lost.first_ns, lost.last_ns) == (8, T0 + 10**9, T0 + 10**9 + 12)
    (kept,) = [f for f in two.flows if f.protocol == "quic"]
    assert kept.datagrams == 3
    # every flow that holds no QUIC datagram is identical
    assert [f for f in one.flows if f.protocol == "wireguard"] == [
        f for f in two.flows if f.protocol == "wireguard"
    ]
    opts = {"quic": {"cid_length": 8}}
    _same_except_capture(
        analyze_many(parts, options=opts), analyze_many(parts, options=opts, jobs=2)
    )


def test_the_parallel_path_imports_without_distributed() -> None:
    # the cluster extra is optional: sidkit.flows must not import it eagerly
    assert "sidkit.flows" in sys.modules
    import sidkit.flows._many as many  # noqa: PLC0415

    assert "distributed" not in many.__dict__


def test_an_interrupt_stops_the_workers(four: list[Path]) -> None:
    # Ctrl-C in the parent (here: raised by the progress callback once the first file is
    # done) stops the worker processes at once and propagates; none is left behind
    import multiprocessing  # noqa: PLC0415

    calls: list[int] = []

    def interrupt(done: int, total: int | None) -> None:
        calls.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        analyze_many(four, options=OPTIONS, jobs=2, progress=interrupt)
    assert len(calls) == 1
    assert multiprocessing.active_children() == []
