"""The vectors emitted for kernel authors compile against the kernel's own code and pass.

``sidkit vectors emit --format c|kunit`` writes C tables in kernel types. Here they are
compiled into the oracle harness -- the translation unit conformance/kernel/generate.py builds
from Debian's linux-source packages (jhash.h, hash.h, siphash.h as they are, lib/siphash.c,
functions copied verbatim out of net/) -- together with conformance/kernel/emitted_main.c,
and run. The tables' expected values are the vector files' (oracle outputs, never sidkit's);
what is tested is that the emitted C carries them into kernel types and calls correctly, for
both kernels, both word sizes, the KUnit form (through conformance/kernel/kunit_shim), the
real ehash functions, and the emitted file's own #include lines. A table with one expected
value flipped must fail, so these tests can fail.

The JSON form must stay valid under conformance/hash_vectors.schema.json and keep every
result unchanged.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import attrs
import jsonschema
import pytest
from conftest import oracle_unavailable
from fixtures.modules import load_file
from hypothesis import given
from hypothesis import strategies as st

from sidkit import SidkitError, VectorFileError, conformance
from sidkit.conformance import load_vector_file, run_group, select_groups
from sidkit.conformance._emit import EMITTABLE, NOT_EMITTABLE, EmitError, emit, limit_tests

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "conformance" / "vectors"
KERNEL = ROOT / "conformance" / "kernel"
GENERATE = KERNEL / "generate.py"
SCHEMA = json.loads((ROOT / "conformance" / "hash_vectors.schema.json").read_text())

# Functions whose C depends on BITS_PER_LONG (hash_64_generic's and lib/siphash.c's 32-bit
# branches); generate.py builds them twice. Every other table holds for both word sizes.
WORD_SIZE = {"hash_64", "hsiphash"}
# The functions the -m32 harness has (it is built without net/).
M32_FUNCTIONS = [
    fn for fn in EMITTABLE if fn.startswith(("jhash", "hash_", "siphash", "hsiphash"))
] + ["reciprocal_scale"]
EHASH = ["inet_ehashfn", "udp_ehashfn", "inet6_ehashfn", "udp6_ehashfn"]


@attrs.frozen
class Harness:
    """One generate.py build: the kernel-text prelude and the object it links with."""

    release: str
    series: str
    prelude: str
    siphash_o: Path
    include: Path
    cflags: tuple[str, ...]


def _generate_module() -> ModuleType:
    return load_file("sidkit_kernel_generate", GENERATE, register=True)


def _prelude(build: Path) -> str:
    """harness.c up to the line that includes harness_main.c (the kernel's code only)."""
    text = (build / "harness.c").read_text()
    marker = '#line 1 "harness_main.c"'
    assert marker in text, f"{build}/harness.c has no {marker!r}: generate.py changed"
    return text[: text.index(marker)]


@functools.lru_cache(maxsize=1)
def _harnesses() -> dict[str, Harness] | str:
    if shutil.which("gcc") is None:
        return "no C compiler (gcc)"
    proc = subprocess.run(
        [sys.executable, str(GENERATE), "--build-only", "--no-fetch"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode == 2:
        return proc.stderr.strip() or "kernel C harness unavailable"
    assert proc.returncode == 0, proc.stderr[-3000:]
    gen = _generate_module()
    out: dict[str, Harness] = {}
    for line in proc.stdout.splitlines():
        release, exe = line.split(maxsplit=1)
        build = Path(exe).parent
        series = build.name.removeprefix("build-")
        tree = gen.KernelTree(series)
        prelude = _prelude(build)
        flow_c = "net/core/flow_dissector.c"
        if "flow_hash_from_keys_seed" in tree.read(flow_c):
            # the exported wrapper the emitted table calls, verbatim (6.12 has it)
            prelude += tree.function(flow_c, "flow_hash_from_keys_seed").as_c()
        else:
            # 6.1 has only the static __flow_hash_from_keys(): use the table's override hook
            prelude += (
                "#define SIDKIT_CALL_flow_hash_from_keys(v, keys) "
                "__flow_hash_from_keys(keys, &(v)->key)\n"
            )
        cflags = (*gen.CFLAGS, "-Werror", "-I", str(gen.SHIMS))
        out[release] = Harness(release, series, prelude, build / "siphash.o", tree.root, cflags)
        out[release + "-m32"] = Harness(
            release,
            series,
            _prelude(build.with_name(build.name + "-32")),
            build.with_name(build.name + "-32") / "siphash.o",
            tree.root,
            (*gen.CFLAGS_M32, *cflags),
        )
    return out


def harness(key: str) -> Harness:
    found = _harnesses()
    if isinstance(found, str):
        oracle_unavailable(found)
    if key not in found:
        oracle_unavailable(f"no harness {key} (built: {', '.join(sorted(found))})")
    return found[key]


RELEASES = ["6.12.117", "6.1.192"]


def run_emitted(
    h: Harness, code: str, tmp: Path, *defines: str
) -> subprocess.CompletedProcess[str]:
    """Compile the harness prelude + emitted_main.c + *code* and run it."""
    emitted = tmp / "emitted.c"
    emitted.write_text(code)
    tu = tmp / "tu.c"
    tu.write_text(f'{h.prelude}#line 1 "emitted_main.c"\n#include "{KERNEL / "emitted_main.c"}"\n')
    exe = tmp / "run"
    cmd = [
        "gcc",
        *h.cflags,
        "-I",
        str(KERNEL / "kunit_shim"),
        "-I",
        str(h.include / "include"),
        f'-DSIDKIT_EMITTED="{emitted}"',
        *defines,
        str(tu),
        str(h.siphash_o),
        "-o",
        str(exe),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"emitted C does not compile:\n{proc.stderr[-4000:]}"
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)


def expected_count(
    selection: Sequence[tuple[conformance.VectorFile, conformance.TestGroup]], bits_per_long: int
) -> int:
    """Vectors a little-endian host of this word size compiles in, counted from the files."""
    n = 0
    for _, g in selection:
        for t in g.tests:
            bpl = t.args.get("bits_per_long", 64)
            if g.function in EMITTABLE and (g.function not in WORD_SIZE or bpl == bits_per_long):
                n += 1
    return n


def flip_first_expected(code: str, fn: str) -> tuple[str, int]:
    """Flip the low bit of the first expected value in sidkit_<fn>_vectors; return its tcId."""
    start = code.index(f"sidkit_{fn}_vectors[] = {{")
    m = re.compile(r"\{ sidkit_\w+_group\d+, (\d+), .*?, (0x[0-9a-f]+)(ULL)? \},").search(
        code, start
    )
    assert m is not None
    flipped = f"0x{int(m[2], 16) ^ 1:0{len(m[2]) - 2}x}"
    return code[: m.start(2)] + flipped + code[m.end(2) :], int(m[1])


# --------------------------------------------------------------------------------------------
# C tables
# --------------------------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("release", RELEASES)
def test_c_tables_compile_and_pass_against_kernel_c(release: str, tmp_path: Path) -> None:
    """Every C-emittable vector that holds for the release, through the default calls."""
    h = harness(release)
    selection = select_groups(VECTORS, kernel=release)
    code = emit(selection, "c", command="test", kernel=release)
    proc = run_emitted(h, code, tmp_path)
    want = expected_count(selection, 64)
    assert want > 5000
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
    assert proc.stdout.strip().splitlines()[-1] == f"checked {want} mismatches 0"


@pytest.mark.oracle
@pytest.mark.parametrize("release", RELEASES)
def test_ehash_tables_pass_against_the_real_functions(release: str, tmp_path: Path) -> None:
    """The ehash tables call header inlines by default; with SIDKIT_CALL_* pointed at the real
    inet_ehashfn/udp_ehashfn/inet6_ehashfn/udp6_ehashfn copied from net/ (secrets filled
    from the vector through net_get_random_once), the same tables pass."""
    h = harness(release)
    selection = select_groups(VECTORS, functions=EHASH, kernel=release)
    code = emit(selection, "c", command="test", functions=EHASH)
    proc = run_emitted(h, code, tmp_path, "-DSIDKIT_REAL_EHASHFN")
    want = expected_count(selection, 64)
    assert proc.stdout.strip().splitlines()[-1] == f"checked {want} mismatches 0", proc.stdout


@pytest.mark.oracle
def test_word_size_tables_on_a_32_bit_build(tmp_path: Path) -> None:
    """gcc -m32 (BITS_PER_LONG == 32): the 32-bit hash_64/hsiphash groups are compiled in and
    pass, the 64-bit ones are compiled out, the word-size-free tables still pass."""
    h = harness("6.12.117-m32")
    selection = select_groups(VECTORS, functions=M32_FUNCTIONS, kernel="6.12.117")
    code = emit(selection, "c", command="test", functions=M32_FUNCTIONS)
    proc = run_emitted(h, code, tmp_path)
    want = expected_count(selection, 32)
    assert want != expected_count(selection, 64)
    assert proc.stdout.strip().splitlines()[-1] == f"checked {want} mismatches 0", proc.stdout


@pytest.mark.oracle
def test_emitted_includes_resolve_to_kernel_headers(tmp_path: Path) -> None:
    """Without SIDKIT_VECTORS_NO_INCLUDES the file's own #include lines are used: the kernel's
    include/linux/{jhash,hash,siphash}.h through the harness shims, lib/siphash.c linked."""
    h = harness("6.12.117")
    functions = ["jhash", "jhash2", "jhash_3words", "hash_32", "hash_64", "siphash", "hsiphash"]
    selection = select_groups(VECTORS, functions=functions, kernel=h.release)
    emitted = tmp_path / "emitted.c"
    emitted.write_text(emit(selection, "c", command="test", functions=functions))
    exe = tmp_path / "run"
    cmd = [
        "gcc",
        *h.cflags,
        "-DSIDKIT_OWN_INCLUDES",
        f'-DSIDKIT_EMITTED="{emitted}"',
        "-I",
        str(h.include / "include"),
        str(KERNEL / "emitted_main.c"),
        str(h.siphash_o),
        "-o",
        str(exe),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=False).stdout
    assert out.strip() == f"checked {expected_count(selection, 64)} mismatches 0"


@pytest.mark.oracle
def test_a_flipped_expected_value_fails(tmp_path: Path) -> None:
    h = harness("6.12.117")
    selection = select_groups(VECTORS, functions=["siphash", "udp6_ehashfn"], kernel=h.release)
    code = emit(selection, "c", command="test", limit=10)
    checked = expected_count(limit_tests(selection, 10), 64)
    assert run_emitted(h, code, tmp_path).stdout.strip() == f"checked {checked} mismatches 0"
    for fn in ("siphash", "udp6_ehashfn"):
        bad, tc_id = flip_first_expected(code, fn)
        proc = run_emitted(h, bad, tmp_path)
        assert proc.returncode == 1
        lines = proc.stdout.splitlines()
        assert lines[-1] == f"checked {checked} mismatches 1"
        assert lines[0].startswith(f"MISMATCH {fn} tcId {tc_id}: got "), lines[0]


# --------------------------------------------------------------------------------------------
# KUnit
# --------------------------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("release", RELEASES)
def test_kunit_suite_compiles_and_passes(release: str, tmp_path: Path) -> None:
    h = harness(release)
    selection = select_groups(VECTORS, kernel=release)
    code = emit(selection, "kunit", command="test", kernel=release)
    assert "#include <kunit/test.h>" in code and "kunit_test_suite(" in code
    proc = run_emitted(h, code, tmp_path, "-DSIDKIT_KUNIT")
    assert proc.returncode == 0, proc.stdout[-3000:]
    tables = {g.function for _, g in selection if g.function in EMITTABLE}
    assert proc.stdout.count("\nok ") == len(tables)
    want = expected_count(selection, 64)
    assert f"# kunit-shim: expectations={want} failures=0 skipped=0" in proc.stdout


@pytest.mark.oracle
def test_kunit_suite_with_a_flipped_value_fails(tmp_path: Path) -> None:
    h = harness("6.12.117")
    selection = select_groups(VECTORS, functions=["jhash", "hash_64"], kernel=h.release)
    code, tc_id = flip_first_expected(
        emit(selection, "kunit", command="test", functions=["jhash", "hash_64"], limit=5), "jhash"
    )
    proc = run_emitted(h, code, tmp_path, "-DSIDKIT_KUNIT")
    assert proc.returncode == 1
    assert "not ok 1 sidkit_jhash_test" in proc.stdout
    assert "ok 2 sidkit_hash_64_test" in proc.stdout
    assert f"tcId {tc_id}" in proc.stdout
    assert "failures=1 skipped=0" in proc.stdout


@pytest.mark.oracle
def test_kunit_skips_a_function_with_no_table_for_this_word_size(tmp_path: Path) -> None:
    """Only the BITS_PER_LONG == 32 hsiphash groups on a 64-bit build: the case skips."""
    h = harness("6.12.117")
    selection = [
        (f, g)
        for f, g in select_groups(VECTORS, functions=["hsiphash"])
        if g.tests[0].args.get("bits_per_long") == 32
    ]
    proc = run_emitted(h, emit(selection, "kunit", command="test"), tmp_path, "-DSIDKIT_KUNIT")
    assert proc.returncode == 0
    assert "ok 1 sidkit_hsiphash_test # SKIP" in proc.stdout
    assert "expectations=0 failures=0 skipped=1" in proc.stdout


# --------------------------------------------------------------------------------------------
# JSON and the emitter's refusals (no compiler needed)
# --------------------------------------------------------------------------------------------


def test_json_is_schema_valid_and_keeps_every_result(tmp_path: Path) -> None:
    selection = select_groups(VECTORS, functions=["jhash", "toeplitz", "hash_conntrack_raw"])
    text = emit(selection, "json", command="sidkit vectors emit --format json", limit=7)
    doc = json.loads(text)
    jsonschema.validate(doc, SCHEMA)
    # several files: tcIds collide, so they are renumbered and the origin is in the comment
    ids = [t["tcId"] for g in doc["testGroups"] for t in g["tests"]]
    assert ids == list(range(1, len(ids) + 1))
    assert doc["numberOfTests"] == len(ids) == sum(min(7, len(g.tests)) for _, g in selection)
    path = tmp_path / "emitted.json"
    path.write_text(text)
    emitted = load_vector_file(path)
    for (f, original), copy in zip(selection, emitted.groups, strict=True):
        assert (copy.function, copy.kernel, copy.source) == (
            original.function,
            original.kernel,
            original.source,
        )
        assert [(t.args, t.result) for t in copy.tests] == [
            (t.args, t.result) for t in original.tests[:7]
        ]
        assert all(f"{f.path.name} tcId" in t.comment for t in copy.tests)
        assert not run_group(copy, path)


def test_json_of_one_file_keeps_tcids() -> None:
    selection = select_groups(VECTORS, functions=["hsiphash"])
    doc = json.loads(emit(selection, "json", command="test"))
    jsonschema.validate(doc, SCHEMA)
    original = [t.tc_id for _, g in selection for t in g.tests]
    assert [t["tcId"] for g in doc["testGroups"] for t in g["tests"]] == original
    comments = [g.get("comment") for g in doc["testGroups"]]
    assert comments == [g.comment or None for _, g in selection]


@pytest.mark.parametrize("fn", sorted(NOT_EMITTABLE))
def test_not_emittable_functions_are_refused_with_the_reason(fn: str) -> None:
    selection = select_groups(VECTORS, functions=[fn])
    for fmt in ("c", "kunit"):
        with pytest.raises(EmitError) as exc:
            emit(selection, fmt, command="test", functions=[fn])
        assert isinstance(exc.value, ValueError)
        assert NOT_EMITTABLE[fn] in str(exc.value) and "--format json" in str(exc.value)
    assert json.loads(emit(selection, "json", command="test"))["numberOfTests"] > 0


def test_unrequested_non_emittable_groups_are_named_in_the_header() -> None:
    selection = select_groups(VECTORS, functions=["hash_32", "toeplitz"])
    code = emit(selection, "c", command="test")
    assert "sidkit_hash_32_vectors" in code and "toeplitz" not in code.split("*/", 1)[1]
    assert "Not emitted: toeplitz" in code


def test_limit_and_empty_selection() -> None:
    selection = select_groups(VECTORS, functions=["reciprocal_scale"])
    code = emit(selection, "c", command="test", limit=2)
    assert code.count("{ sidkit_reciprocal_scale_group") == 2 * len(selection)
    with pytest.raises(EmitError):
        emit([], "json", command="test")
    with pytest.raises(EmitError):
        emit([], "c", command="test")
    with pytest.raises(ValueError, match="at least 1"):
        emit(selection, "c", command="test", limit=0)


def test_kernel_selection_follows_the_eras_table() -> None:
    """--kernel V keeps the groups whose function computes in V what it did in the group's
    kernel: jhash everywhere since 2.6.38; inet_ehashfn changed in 6.15; the 6.1.192
    IPv6 address hash is a stable backport (6.1.43), so plain 6.1 does not get it."""

    def kernels(fn: str, v: str) -> set[str | None]:
        return {g.kernel for _, g in select_groups(VECTORS, functions=[fn], kernel=v)}

    assert kernels("jhash", "6.18") == {"6.12.117", "6.1.192", None}
    assert kernels("inet_ehashfn", "6.18") == set()
    assert kernels("inet_ehashfn", "6.14") == {"6.12.117", "6.1.192"}
    assert kernels("udp_ehashfn", "6.18") == {"6.12.117", "6.1.192"}
    assert kernels("ipv6_addr_jhash", "6.1") == set()
    assert kernels("ipv6_addr_jhash", "6.1.43") == {"6.12.117", "6.1.192"}
    assert kernels("next_pseudo_random32", "6.19") == set()
    assert kernels("next_pseudo_random32", "6.18") != set()
    # 2.6.37 is lookup2: only its own (FRR-compiled jhash.h) group, none of the lookup3 ones
    assert kernels("jhash", "2.6.37") == {"2.6.37"}


def test_c_literals_are_kernel_types() -> None:
    """Spot checks of the C rendering against the vector file's own inputs."""
    selection = select_groups(VECTORS, functions=["udp6_ehashfn", "siphash"])
    code = emit(selection, "c", command="test", limit=3)
    assert "struct in6_addr laddr;" in code and "__be16 fport;" in code
    assert "siphash_key_t key;" in code and "u64 expected;" in code
    for t in selection[0][1].tests[:3]:
        laddr = ipaddress.IPv6Address(t.args["laddr"]).packed
        in6 = "{ .in6_u.u6_addr8 = { " + ", ".join(f"0x{b:02x}" for b in laddr) + " } }"
        row = f"{t.tc_id}, {in6}, {t.args['lport']}, "
        assert row in code
        assert f"cpu_to_be16({t.args['fport']}), 0x{t.args['initval']:08x}" in code
        assert f"0x{t.args['ipv6_hash_secret']:08x}, 0x{t.result:08x} }}" in code
    t = next(t for _, g in selection if g.function == "siphash" for t in g.tests if t.args["data"])
    words = int.from_bytes(bytes.fromhex(t.args["key"])[:8], "little")
    data = "".join(f"\\x{b:02x}" for b in bytes.fromhex(t.args["data"])[:32])
    assert f'(const u8 *)"{data}' in code
    assert f"{{ .key = {{ 0x{words:016x}ULL, " in code and f"0x{t.result:016x}ULL }}" in code


# --------------------------------------------------------------------------------------------
# The loader's new fields: any JSON either loads or raises VectorFileError
# --------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(header=_json, notes=_json)
def test_header_and_notes_load_or_raise_vector_file_error(header: object, notes: object) -> None:
    doc = json.loads((VECTORS / "published-jhash.json").read_text())
    doc["header"], doc["notes"] = header, notes
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.json"
        path.write_text(json.dumps(doc))
        try:
            vf = load_vector_file(path)
        except VectorFileError:
            return
    assert isinstance(vf.header, tuple) and all(isinstance(x, str) for x in vf.header)
    assert all(isinstance(v, str) for v in vf.notes.values())


_ARG = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=20),
    st.sampled_from(["::1", "10.0.0.1", "00", "zz", "", "192.0.2.1"]),
    st.lists(st.integers(min_value=-5, max_value=2**33), max_size=3),
    st.none(),
)


_FUZZ_BASE = [
    (f, g)
    for f, g in select_groups(VECTORS, functions=["jhash", "udp6_ehashfn", "hsiphash"])
    if g.kernel is not None
]


@given(data=st.data())
def test_any_group_emits_or_raises_a_sidkit_error(data: st.DataObject) -> None:
    """Whatever a vector file's args hold, emitting C either works or raises a sidkit error."""
    f, g = data.draw(st.sampled_from(_FUZZ_BASE))
    args = {name: data.draw(_ARG) for name in g.arg_types}
    if data.draw(st.booleans()):
        args.pop(next(iter(args)))
    case = attrs.evolve(g.tests[0], args=args, result=data.draw(st.integers(-1, 2**65)))
    try:
        code = emit([(f, attrs.evolve(g, tests=(case,)))], "c", command="fuzz")
    except SidkitError:
        return
    assert f"sidkit_{g.function}_vectors[]" in code
