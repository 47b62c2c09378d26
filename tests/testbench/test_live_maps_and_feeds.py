"""The bench's map fills and feeds on the live kernel, with programs written in sidkit's own
assemblers: SOCKMAP by index, SOCKHASH by keys the caller gives per socket, a capture read
through sidkit.flows, and the --json document of the CLI."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from conftest import oracle_unavailable
from fixtures.tshark import write_pcap

from sidkit.bpf import cbpf, ebpf, netns
from sidkit.bpf._syscall import bpf_available
from sidkit.cli import main
from sidkit.quiclb import Config, steering_policy
from sidkit.quiclb import encode as quiclb_encode
from sidkit.steering import compile_cbpf, compile_ebpf
from sidkit.testbench import (
    MapSpec,
    ModelContext,
    Outcome,
    Probe,
    Program,
    Reloc,
    check,
    from_cbpf,
    from_insns,
    model_from_spec,
    quiclb_model,
)
from sidkit.testbench._text import load_c_arrays

pytestmark = pytest.mark.oracle

SOCKMAP, SOCKHASH = 15, 18


@pytest.fixture(scope="module")
def live() -> None:
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")


def _select_by_key(key_len: int, spec: MapSpec) -> Program:
    """An SK_REUSEPORT program: the payload's first *key_len* octets are the key it looks up
    in the one socket map (bpf_skb_load_bytes at offset 8, past the UDP header)."""
    a = ebpf.Assembler()
    a.mov64(6, 1)
    a.st(ebpf.DW, 10, -8, 0)
    a.mov64(1, 6)
    a.mov64(2, imm=8)
    a.mov64(3, 10)
    a.alu64(ebpf.ADD, 3, imm=-8)
    a.mov64(4, imm=key_len)
    a.call(ebpf.HELPER_SKB_LOAD_BYTES)
    a.jmp(ebpf.JNE, 0, "pass", imm=0)
    a.ld_map_fd(2, 0)
    a.mov64(1, 6)
    a.mov64(3, 10)
    a.alu64(ebpf.ADD, 3, imm=-8)
    a.mov64(4, imm=0)
    a.call(ebpf.HELPER_SK_SELECT_REUSEPORT)
    a.label("pass")
    a.mov64(0, imm=ebpf.SK_PASS)
    a.exit()
    insns = a.assemble()
    at = next(i for i, x in enumerate(insns) if x.code == 0x18)
    return from_insns(insns, name="by_key", maps=(spec,), relocs=(Reloc(at, spec.name),))


def test_sockmap_filled_by_index(live: None) -> None:
    program = _select_by_key(4, MapSpec("socks", SOCKMAP, 4, 8, 8))

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        if len(payload) < 4:
            return None
        index = int(struct.unpack("=I", payload[:4])[0])
        return index if index < ctx.n else None

    feed = [struct.pack("=I", i) + b"sid" for i in (0, 1, 2, 3, 4, 9)] + [b"ab"]
    report = check(program, 4, feed, model)
    assert report.ok, [r.describe() for r in report.disagreements]
    assert [r.verdict for r in report.rows] == ["selected"] * 4 + ["pass"] * 3


def test_sockhash_filled_by_given_keys(live: None) -> None:
    keys = (b"wg", b"qc", b"dt")
    program = _select_by_key(2, MapSpec("by_sid", SOCKHASH, 2, 8, 16))

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        return keys.index(payload[:2]) if payload[:2] in keys else None

    feed = [k + b"..." for k in keys * 2] + [b"zz...", b"w"]
    report = check(program, 3, feed, model, maps={"by_sid": keys})
    assert report.ok, [r.describe() for r in report.disagreements]
    assert [r.socket for r in report.rows[:6]] == [0, 1, 2, 0, 1, 2]
    assert report.verdicts() == {"selected": 6, "pass": 2, "drop": 0}


def test_capture_feed_and_json(
    live: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A capture read through sidkit.flows feeds a classic program built with sidkit's
    assembler (``ld [0]; ret a``: the first word is the index); only datagrams to the chosen
    port are sent; --json prints issue 16's document."""
    a = cbpf.Assembler()
    a.emit(cbpf.LD | cbpf.W | cbpf.ABS, 0)
    a.emit(cbpf.RET | cbpf.A_SRC)
    listing = tmp_path / "first_word.txt"
    listing.write_text("\n".join(str(i) + "," for i in a.assemble()))
    pcap = tmp_path / "feed.pcap"
    frames = [(struct.pack("!I", i % 5) + b"payload", 40000 + i, 4433) for i in range(12)]
    write_pcap(pcap, [*frames, (b"\0\0\0\1other", 5000, 53)])
    code = main(
        [
            "testbench",
            str(listing),
            "--sockets",
            "4",
            "--capture",
            str(pcap),
            "--capture-port",
            "4433",
            "--expect",
            "index:0:4",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["summary"] == {"agree": 12, "total": 12}
    assert [d["socket"] for d in doc["datagrams"] if d["verdict"] == "selected"] == [
        i % 5 for i in range(12) if i % 5 < 4
    ]
    assert from_cbpf(a.assemble()).count == 2


def test_probe_sources_are_checked() -> None:
    with pytest.raises(ValueError, match="source must be one of"):
        check(from_cbpf([cbpf.SockFilter(0x06, 0, 0, 0)]), 2, [Probe(b"x", src="192.0.2.1")])


@pytest.mark.parametrize(("index", "verdict"), [(99, "pass"), (1, "selected")])
def test_socket_filter_verdicts(live: None, index: int, verdict: str) -> None:
    """A socket filter's return value is its choice (an index past the group: the kernel's
    hash decides); the bench reads it by BPF_PROG_TEST_RUN, so even a choice that equals the
    default socket is "selected"."""
    src = (
        "struct bpf_insn p[] = { { BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, INDEX },"
        " { BPF_JMP | BPF_EXIT, 0, 0, 0, 0 } }; /* BPF_PROG_TYPE_SOCKET_FILTER */"
    )
    program = load_c_arrays(src, defines={"INDEX": index})
    assert program.kind == "sk_reuseport"  # the comment is not code: no type named
    program = load_c_arrays(src.replace("/*", "").replace("*/", ""), defines={"INDEX": index})
    assert program.kind == "socket_filter"
    model = (lambda payload, ctx: index) if index < 3 else model_from_spec("default")
    report = check(program, 3, [b"a", b"b", b"c", b"d"], model)
    assert report.ok, [r.describe() for r in report.disagreements]
    assert {r.verdict for r in report.rows} == {verdict}


@pytest.mark.parametrize("backend", ["cbpf", "ebpf"])
def test_quiclb_model_against_the_compiled_policy(live: None, backend: str) -> None:
    """A QUIC-LB plaintext configuration on one host: sidkit's compiled program
    (sidkit.quiclb.steering_policy) on the bench, checked against quiclb_model, which decodes
    every CID with sidkit.quiclb.server_id_index. Server IDs past the group, another config's
    rotation bits and client-chosen DCIDs of another length fall back."""
    import random  # noqa: PLC0415

    config = Config(1, 2, 6)
    n = 4
    policy = steering_policy(config, n)
    if backend == "cbpf":
        program = from_cbpf(compile_cbpf(policy), name="quiclb")
    else:
        insns = compile_ebpf(policy, 0)
        at = next(i for i, x in enumerate(insns) if x.code == 0x18)
        spec = MapSpec("socks", 20, 4, 8, n)
        program = from_insns(insns, name="quiclb", maps=(spec,), relocs=(Reloc(at, "socks"),))
    rng = random.Random(20)
    feed: list[bytes] = []
    for sid in (0, 1, 2, 3, 4, 300):
        cid = quiclb_encode(config, sid.to_bytes(2, "big"), rng.randbytes(6))
        feed.append(b"\x41" + cid + rng.randbytes(20))  # short header
        feed.append(bytes([0xC3, 0, 0, 0, 1, len(cid)]) + cid + rng.randbytes(20))  # long
    other = quiclb_encode(Config(2, 2, 6), b"\x00\x01", rng.randbytes(6))
    feed += [b"\x41" + other + bytes(20), bytes([0xC3, 0, 0, 0, 1, 8]) + rng.randbytes(30)]
    report = check(program, n, feed, quiclb_model(config))
    assert report.ok, [r.describe() for r in report.disagreements]
    assert [r.socket for r in report.rows[:8]] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert report.verdicts()["selected"] == 8
