"""Any bytes either load or raise the bench's own error, never anything else: ELF objects
(real ones from conformance/testbench/build.py, bytes flipped and cut), BTF, C arrays and
classic listings."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import oracle_unavailable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidkit.testbench import Program, TestbenchError
from sidkit.testbench._btf import btf_maps
from sidkit.testbench._elf import load_elf
from sidkit.testbench._text import load_c_arrays, load_cbpf_listing

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "conformance" / "testbench" / "build.py"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def objects() -> list[bytes]:
    if shutil.which("clang") is None or not Path("/usr/include/bpf/bpf_helpers.h").is_file():
        oracle_unavailable("clang and libbpf-dev are needed to build the objects to mutate")
    result = subprocess.run(
        [sys.executable, str(BUILD)], capture_output=True, text=True, check=False, timeout=900
    )
    if result.returncode:
        oracle_unavailable(f"conformance/testbench/build.py failed: {result.stderr[-2000:]}")
    built = json.loads((BUILD.parent / "_work" / "built.json").read_text())
    keys = ("nginx_helper_object", "select_reuseport_object", "misroute_object")
    return [Path(built[k]).read_bytes() for k in keys]


def _loads_or_refuses(data: bytes) -> None:
    try:
        program = load_elf(data)
    except TestbenchError:
        return
    assert isinstance(program, Program) and len(program.insns) % 8 == 0


@FUZZ
@given(
    which=st.integers(0, 2),
    flips=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.none() | st.integers(0),
)
def test_mutated_objects(
    objects: list[bytes], which: int, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(objects[which])
    for at, value in flips:
        data[at % len(data)] = value
    if cut is not None:
        del data[cut % len(data) :]
    _loads_or_refuses(bytes(data))


def test_the_unmutated_objects_load(objects: list[bytes]) -> None:
    names = [load_elf(o).name for o in objects]
    assert names == ["ngx_quic_select_socket_by_dcid", "_select_by_skb_data", "misroute"]


@FUZZ
@given(st.binary(max_size=300))
def test_btf_bytes(raw: bytes) -> None:
    with contextlib.suppress(TestbenchError):
        btf_maps(b"\x9f\xeb\x01\x00\x18\x00\x00\x00" + raw, {})


@FUZZ
@given(st.text(alphabet='{}(),|-~<>*/%^&0x123456789abcdefBPF_LDWABSREG \n"', max_size=200))
def test_c_arrays_and_listings(text: str) -> None:
    for loader in (
        lambda t: load_c_arrays("struct bpf_insn p[] = {" + t + "};"),
        lambda t: load_c_arrays("struct sock_filter p[] = {" + t + "};"),
        load_cbpf_listing,
    ):
        with contextlib.suppress(TestbenchError):
            loader(text)


def test_core_relocations_are_refused_by_name(objects: list[bytes], tmp_path: Path) -> None:
    """A program with a CO-RE relocation (bpf_core_field_exists) would load wrong without
    them applied: the loader refuses it, naming why. (The objects fixture ensures clang.)"""
    src = tmp_path / "core.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_core_read.h>\n"
        "struct foo { int a; int b; } __attribute__((preserve_access_index));\n"
        'SEC("sk_reuseport") int p(struct sk_reuseport_md *md) {\n'
        "  struct foo *f = (void *)md->data;\n"
        "  return bpf_core_field_exists(f->b) ? SK_PASS : SK_DROP;\n}\n"
        'char _license[] SEC("license") = "GPL";\n'
    )
    arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True, check=True)
    obj = tmp_path / "core.o"
    subprocess.run(
        [
            "clang",
            "-O2",
            "-g",
            "-target",
            "bpf",
            f"-I/usr/include/{arch.stdout.strip()}",
            "-c",
            str(src),
            "-o",
            str(obj),
        ],
        check=True,
    )
    with pytest.raises(TestbenchError, match="CO-RE relocations"):
        load_elf(obj.read_bytes(), name="core.o")
