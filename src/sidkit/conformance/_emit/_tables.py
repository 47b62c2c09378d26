# Strategy: the per-function part of the C output. The selection is grouped into one Table per
# emittable function (refusing groups whose kernel form or word size the table cannot call),
# and each Table becomes its struct, its vector array, the SIDKIT_CALL_<fn>() hook and
# sidkit_run_<fn>(), plus a check loop (C) or a KUnit case. Groups that hold only for one byte
# order or BITS_PER_LONG sit behind #if guards. The file around the tables is _cfile's.
"""One C table per emittable function: grouping the selection, the table, its check/case."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import attrs

from sidkit.conformance._emit._common import EmitError, Selection, group_label
from sidkit.conformance._emit._literals import c_comment, c_string, comment_lines, x32, x64
from sidkit.conformance._emit._specs import EMITTABLE, CSpec, why_not
from sidkit.conformance._vectors import TestGroup, VectorFile, decode_args
from sidkit.kernel import profile

__all__ = ["Table", "c_check", "c_table", "group_tables", "kunit_case"]

_LE = "defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__"


@attrs.frozen
class Table:
    spec: CSpec
    groups: tuple[tuple[VectorFile, TestGroup, int], ...]  # (file, group, bits_per_long)


def _bits_per_long(spec: CSpec, g: TestGroup) -> int | None:
    """The word size a group holds for (None: any); refuses a group that mixes them."""
    seen: set[int] = set()
    for t in g.tests:
        value = t.args.get("bits_per_long", 64)
        if type(value) is not int or value not in (32, 64):
            raise EmitError(f"{g.function}: bits_per_long must be 32 or 64, got {value!r}")
        seen.add(value)
    if len(seen) != 1:
        raise EmitError(f"{g.function} group of kernel {g.kernel} mixes word sizes {seen}")
    bpl = seen.pop()
    if bpl == 32 and not spec.word_size:
        raise EmitError(f"{g.function}: a bits_per_long = 32 group, but the table is word-free")
    return bpl if spec.word_size else None


def group_tables(selection: Selection, functions: Sequence[str]) -> tuple[list[Table], list[str]]:
    """Group the selection by emittable function; return the tables and the skipped names."""
    for fn in functions:
        if fn not in EMITTABLE:
            raise EmitError(why_not(fn))
    order: dict[str, list[tuple[VectorFile, TestGroup, int]]] = {}
    skipped: list[str] = []
    for f, g in selection:
        if not g.tests:
            continue
        spec = EMITTABLE.get(g.function)
        if spec is None:
            if g.function not in skipped:
                skipped.append(g.function)
            continue
        if spec.variants is not None:
            variant = profile(g.kernel).era(g.function).variant
            if variant not in spec.variants:
                raise EmitError(
                    f"{g.function} vectors of kernel {g.kernel} use its {variant!r} form; the C "
                    f"table has a call only for {', '.join(sorted(spec.variants))} (select "
                    "other kernels with --kernel)"
                )
        bpl = _bits_per_long(spec, g)
        order.setdefault(g.function, []).append((f, g, bpl or 0))
    if not order:
        raise EmitError(
            "no C-emittable vectors selected"
            + (f" ({'; '.join(why_not(fn) for fn in skipped)})" if skipped else ""),
            code="nothing-selected",
        )
    ranked = sorted(order, key=lambda fn: functions.index(fn) if fn in functions else -1)
    return [Table(EMITTABLE[fn], tuple(order[fn])) for fn in ranked], skipped


def _guard(spec: CSpec, bpl: int) -> str | None:
    conds = []
    if spec.byte_order:
        conds.append(_LE)
    if bpl:
        conds.append(f"BITS_PER_LONG == {bpl}")
    return " && ".join(conds) or None


def c_table(table: Table) -> list[str]:
    spec = table.spec
    fn = spec.function
    n = sum(len(g.tests) for _, g, _ in table.groups)
    paras = [f"{fn}: {n} vectors in {len(table.groups)} group(s). Kernel source: {spec.source}."]
    if spec.note:
        paras.append(spec.note)
    out = ["", "/*", *comment_lines(paras), " *"]
    for i, (f, g, bpl) in enumerate(table.groups):
        src = g.source
        lines = [
            f"group {i}: {f.path.name}, kernel {g.kernel or '- (no era)'}, {len(g.tests)} vectors",
            f"oracle: {g.oracle}: {src['name']} {src.get('version', '')}".rstrip(),
        ]
        if src.get("files"):
            lines.append(f"files: {', '.join(map(str, src['files']))}")
        if g.comment:
            lines.append(g.comment)
        if bpl:
            lines.append(f"compiled only when BITS_PER_LONG == {bpl}")
        for j, line in enumerate(lines):
            lead = " * " if j == 0 else " *   "
            wrapped = textwrap.wrap(
                c_comment(line), 88, subsequent_indent="  ", break_on_hyphens=False
            )
            out += [lead + w for w in wrapped]
    out.append(" */")
    out.append(f"struct sidkit_{fn}_vector {{")
    out.append("\tconst char *group;\t/* NULL ends the table */")
    out.append("\tu32 tc_id;\t\t/* tcId in the vector file */")
    out += [f"\t{field};" for field in spec.fields]
    out.append(f"\t{spec.result} expected;")
    out.append("};")
    entries: list[str] = [f"static const struct sidkit_{fn}_vector sidkit_{fn}_vectors[] = {{"]
    names: list[str] = []
    x = x64 if spec.result == "u64" else x32
    for i, (f, g, bpl) in enumerate(table.groups):
        guard = _guard(spec, bpl)
        name = f"sidkit_{fn}_group{i}"
        if guard:
            names.append(f"#if {guard}")
            entries.append(f"#if {guard}")
        names.append(f"static const char {name}[] = {c_string(group_label(f, g))};")
        if guard:
            names.append("#endif")
        members = ", ".join(_member(m) for m in spec.fields)
        entries.append(f"\t/* group {i}: {{ group, tc_id, {members}, expected }} */")
        for t in g.tests:
            kwargs = decode_args(g.arg_types, t.args)
            extra = set(kwargs) - spec.args - ({"bits_per_long"} if spec.word_size else set())
            missing = spec.args - set(kwargs)
            if extra or missing:
                raise EmitError(
                    f"{f.path.name} tcId {t.tc_id}: {fn} args {sorted(kwargs)} do not fit the C "
                    f"table ({sorted(spec.args)})"
                )
            values = ", ".join(spec.values(kwargs))
            comment = f" /* {c_comment(t.comment)} */" if t.comment else ""
            entries.append(f"\t{{ {name}, {t.tc_id}, {values}, {x(t.result)} }},{comment}")
        if guard:
            entries.append("#endif")
    out += _merge_guards(names)
    entries.append("\t{ .group = NULL }")
    entries.append("};")
    out += _merge_guards(entries)
    params = ", ".join(spec.call_args)
    out += [
        "",
        f"#ifndef SIDKIT_CALL_{fn}",
        f"#define SIDKIT_CALL_{fn}({params}) {spec.call}",
        "#endif",
        "",
        f"static inline {spec.result} sidkit_run_{fn}(const struct sidkit_{fn}_vector *v)",
        "{",
    ]
    out += [f"\t{line}" if line else "" for line in spec.prologue]
    if spec.prologue:
        out.append("")
    out.append(f"\treturn SIDKIT_CALL_{fn}({', '.join(spec.call_values)});")
    out.append("}")
    return out


def _merge_guards(lines: list[str]) -> list[str]:
    """Drop an ``#endif`` directly followed by the same ``#if`` it closed (guards never nest)."""
    out: list[str] = []
    last_if = None
    for line in lines:
        if line.startswith("#if "):
            if out and out[-1] == "#endif" and line == last_if:
                out.pop()
                continue
            last_if = line
        out.append(line)
    return out


def _member(decl: str) -> str:
    return decl.rsplit(maxsplit=1)[-1].lstrip("*")


def c_check(spec: CSpec) -> list[str]:
    fn = spec.function
    return [
        "",
        f"static unsigned int __maybe_unused sidkit_check_{fn}(unsigned int *checked)",
        "{",
        f"\tconst struct sidkit_{fn}_vector *v;",
        "\tunsigned int bad = 0;",
        "",
        f"\tfor (v = sidkit_{fn}_vectors; v->group; v++) {{",
        f"\t\t{spec.result} got = sidkit_run_{fn}(v);",
        "",
        "\t\t++*checked;",
        "\t\tif (got != v->expected) {",
        "\t\t\tbad++;",
        f'\t\t\tSIDKIT_MISMATCH("{fn}", v->group, v->tc_id, got, v->expected);',
        "\t\t}",
        "\t}",
        "\treturn bad;",
        "}",
    ]


def kunit_case(spec: CSpec) -> list[str]:
    fn = spec.function
    return [
        "",
        f"static void sidkit_{fn}_test(struct kunit *test)",
        "{",
        f"\tconst struct sidkit_{fn}_vector *v;",
        "",
        f"\tif (!sidkit_{fn}_vectors[0].group)",
        f'\t\tkunit_skip(test, "no {fn} vectors hold for this byte order and BITS_PER_LONG");',
        f"\tfor (v = sidkit_{fn}_vectors; v->group; v++)",
        f"\t\tKUNIT_EXPECT_EQ_MSG(test, sidkit_run_{fn}(v), v->expected,",
        '\t\t\t\t    "%s: tcId %u", v->group, v->tc_id);',
        "}",
    ]
