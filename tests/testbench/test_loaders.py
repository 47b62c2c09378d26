"""The bench's loaders and checks that need no kernel: every shape of program text, and the
one-line errors for what cannot be loaded or filled."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from sidkit.bpf import cbpf
from sidkit.testbench import MapSpec, Program, TestbenchError, load_program, model_from_spec
from sidkit.testbench._bench import _resolve
from sidkit.testbench._check import ModelContext
from sidkit.testbench._text import load_c_arrays, load_cbpf_listing

ROOT = Path(__file__).resolve().parents[2]
UDPGRM = ROOT / "conformance" / "testbench" / "third_party" / "udpgrm"


def test_bpf_asm_listing_of_udpgrm_matches_its_source_comments() -> None:
    """cbpf-basic.sh: ldb [0]; jlt #0x30; jgt #0x33; sub #0x30; or #0x80000000; ret a; ldh
    [1]; ret a -- decoded from the listing and run by sidkit's interpreter."""
    program = load_cbpf_listing((UDPGRM / "cbpf-basic.sh").read_text(), name="basic")
    filters = [
        cbpf.SockFilter(*struct.unpack_from("=HBBI", program.insns, 8 * i))
        for i in range(program.count)
    ]
    assert program.kind == "cbpf" and program.count == 8
    assert cbpf.run(filters, b"2xyz") == 0x80000002
    assert cbpf.run(filters, b"A\x01\x02") == 0x0102


def test_ddd_listing_and_count_mismatch() -> None:
    assert load_cbpf_listing("2\n32 0 0 0\n22 0 0 0\n").count == 2
    # bpf_asm's default output: the count, then each instruction, comma-terminated
    p = load_cbpf_listing("3,48 0 0 0,84 0 0 128,22 0 0 0,\n")
    assert struct.unpack_from("=HBBI", p.insns, 8) == (84, 0, 0, 128)
    with pytest.raises(TestbenchError, match="says 3 instructions, holds 2"):
        load_cbpf_listing("3,32 0 0 0,22 0 0 0")


def test_c_array_with_symbols_casts_and_defines() -> None:
    src = """
    static struct bpf_insn prog[] = {
        /* r0 = 7 */ { BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, (int16_t) -1, mod + 2 },
        { BPF_JMP | BPF_EXIT, 0, 0, 0, 0 },
    };
    """
    p = load_c_arrays(src, defines={"mod": 5})
    assert p.kind == "sk_reuseport" and p.count == 2
    assert struct.unpack_from("<BBhi", p.insns, 0) == (0xB7, 0, -1, 7)
    with pytest.raises(TestbenchError, match="unknown name 'mod'"):
        load_c_arrays(src)
    with pytest.raises(TestbenchError, match="function-like macro"):
        load_c_arrays("struct bpf_insn p[] = { { BPF_OP(BPF_ADD), 0, 0, 0, 0 } };")


def test_nginx_relocation_table() -> None:
    src = """
    static ngx_bpf_reloc_t bpf_reloc_prog_x[] = { { "ngx_quic_sockmap", 1 }, };
    static struct bpf_insn bpf_insn_prog_x[] = {
        { 0xb7, BPF_REG_0, BPF_REG_0, (int16_t) 0, 0x1 },
        { 0x18, BPF_REG_2, BPF_REG_0, (int16_t) 0, 0x0 },
        { 0x0, BPF_REG_0, BPF_REG_0, (int16_t) 0, 0x0 },
        { 0x95, BPF_REG_0, BPF_REG_0, (int16_t) 0, 0x0 },
    };
    ngx_bpf_program_t x = { .license = "BSD", .type = BPF_PROG_TYPE_SK_REUSEPORT };
    """
    p = load_c_arrays(src)
    assert p.license == "BSD" and p.maps == (MapSpec("ngx_quic_sockmap"),)
    assert p.relocs[0].insn == 1 and p.relocs[0].map == "ngx_quic_sockmap"
    bad = src.replace('"ngx_quic_sockmap", 1', '"ngx_quic_sockmap", 0')
    with pytest.raises(TestbenchError, match="not an ld_imm64"):
        load_c_arrays(bad)


def test_unfillable_maps_are_named() -> None:
    with pytest.raises(TestbenchError, match="'ngx_quic_sockmap' is declared without a type"):
        _resolve(MapSpec("ngx_quic_sockmap"), None, 4)
    with pytest.raises(TestbenchError, match="'peers' \\(SOCKHASH\\) holds sockets"):
        _resolve(MapSpec("peers", 18, 8, 8, 16), None, 4)
    with pytest.raises(TestbenchError, match="'small': 4 sockets by index"):
        _resolve(MapSpec("small", 20, 4, 8, 2), None, 4)
    with pytest.raises(TestbenchError, match="'state' \\(ARRAY\\) cannot be keyed by socket"):
        _resolve(MapSpec("state", 2, 4, 4, 1), "cookie", 4)
    spec, fill = _resolve(MapSpec("m"), "cookie", 4)
    assert (spec.map_type, spec.key_size, fill) == (18, 8, "cookie")


def test_not_an_object(tmp_path: Path) -> None:
    f = tmp_path / "x.o"
    f.write_bytes(b"\x7fELF" + b"\0" * 60)
    with pytest.raises(TestbenchError, match=r"x\.o"):
        load_program(f)
    with pytest.raises(TestbenchError, match="not a whole number"):
        (tmp_path / "raw").write_bytes(b"\0\1\2")
        load_program(tmp_path / "raw")


def test_expect_specs() -> None:
    ctx = ModelContext(())
    assert model_from_spec("default")(b"x", ctx) is None
    with pytest.raises(TestbenchError, match="--expect 'nope'"):
        model_from_spec("nope")
    with pytest.raises(TestbenchError, match="N must be an integer"):
        model_from_spec("modulo:x")
    with pytest.raises(TestbenchError, match="the key must be hex"):
        model_from_spec("quiclb:0:2:6:zz")
    with pytest.raises(TestbenchError, match="nonce_length"):
        model_from_spec("quiclb:0:2:2")


def test_program_map_lookup_names_the_maps() -> None:
    p = Program("p", "sk_reuseport", b"\0" * 8, maps=(MapSpec("a"),))
    with pytest.raises(TestbenchError, match="no map 'b' \\(its maps: a\\)"):
        p.map("b")


def test_expressions_are_bounded() -> None:
    """Deep parentheses, long unary chains and huge shifts are refused, not a RecursionError
    or a memory blow-up."""
    for row in ("(" * 200 + "1" + ")" * 200, "-" * 300 + "1", "1 << 100000", "1 >> -1"):
        with pytest.raises(TestbenchError):
            load_c_arrays("struct sock_filter p[] = { {" + row + ", 0, 0, 0} };")


def test_vendor_models_name_sockets() -> None:
    """The models wrap sidkit.quiclb's readers with the group's size: Katran's stable-routing
    header names socket ID - FIRST_ID, Envoy's worker octet (short header) a worker, nginx's
    cookie the socket that has it."""
    from sidkit.quiclb import katran_stable_routing_header  # noqa: PLC0415
    from sidkit.testbench import SocketInfo, envoy_model, katran_model, nginx_model  # noqa: PLC0415

    ctx = ModelContext(tuple(SocketInfo(i, 1000 + i) for i in range(4)))
    header = katran_stable_routing_header(7 + 2, b"\0" * 4)
    assert katran_model(first_id=7)(header + b"data", ctx) == 2
    assert katran_model(first_id=7)(b"\x40" + bytes(20), ctx) is None
    # Envoy quic_lb short header: worker octet at 2 + (packet[1] & 0x1f)
    assert envoy_model()(bytes([0x40, 0x03, 0, 0, 0, 3]) + bytes(10), ctx) == 3
    assert envoy_model()(bytes([0x40, 0x03, 0, 0, 0, 9]) + bytes(10), ctx) is None
    cid = (1002).to_bytes(8, "big") + bytes(12)
    assert nginx_model()(b"\x40" + cid, ctx) == 2
    assert nginx_model()(b"\x40" + (5).to_bytes(8, "big") + bytes(12), ctx) is None
