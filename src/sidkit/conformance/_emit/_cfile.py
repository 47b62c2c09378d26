# Strategy: the whole C file (or KUnit suite) around the per-function tables: the header
# comment that says where every expected value came from and what was left out, the includes
# (skippable with SIDKIT_VECTORS_NO_INCLUDES), SIDKIT_MISMATCH, the scratch struct net when a
# table needs one, then sidkit_check_all() or the KUnit suite. It renders; it decides nothing
# about which vectors are emittable.
"""Emit the selected groups as a self-contained C file or a KUnit suite."""

from __future__ import annotations

from collections.abc import Sequence

from sidkit import __version__
from sidkit.conformance._emit._common import Selection
from sidkit.conformance._emit._literals import comment_lines
from sidkit.conformance._emit._specs import NOT_EMITTABLE
from sidkit.conformance._emit._tables import c_check, c_table, group_tables, kunit_case

__all__ = ["emit_c"]


def emit_c(
    selection: Selection,
    *,
    kunit: bool,
    command: str,
    functions: Sequence[str] = (),
    kernel: str | None = None,
    limit: int | None = None,
) -> str:
    """The selected groups of C-emittable functions as a C file (or a KUnit suite).

    *functions* names the functions the caller asked for (each must be emittable, else
    :class:`EmitError`); without it every emittable function of the selection is emitted and
    the others are listed in the header. *kernel* and *limit* only go into the header text:
    the selection is already made.
    """
    tables, skipped = group_tables(selection, functions)
    total = sum(len(g.tests) for t in tables for _, g, _ in t.groups)
    names = ", ".join(t.spec.function for t in tables)
    what = "KUnit suite" if kunit else "C table"
    paras = [
        f"sidkit conformance vectors as a {what}: {names} ({total} vectors in "
        f"{sum(len(t.groups) for t in tables)} groups).",
        f"Emitted by `{command}` (sidkit {__version__}); regenerate rather than edit. Every "
        "expected value is copied from the vector file named in its group: the output of the "
        "oracle the group names (the kernel's own C compiled in a userspace harness, or "
        "published vectors) -- never a value sidkit computed.",
    ]
    if kernel is not None:
        paras.append(
            f"Selected for kernel {kernel}: the groups whose function computes there what it "
            "computed in the group's kernel, per sidkit's eras table (`sidkit eras FUNCTION "
            "-v` shows the evidence of each row)."
        )
    if limit is not None:
        paras.append(f"At most {limit} vectors per group (--limit).")
    paras.append(
        "Per function: struct sidkit_<fn>_vector (kernel types: u8..u64, __be16/__be32 and "
        "struct in6_addr as the kernel function takes them, siphash_key_t/hsiphash_key_t "
        "keys as their words) and sidkit_<fn>_vectors[], ended by an entry whose .group is "
        "NULL. sidkit_run_<fn>(v) computes one entry through SIDKIT_CALL_<fn>(), which calls "
        "the kernel function unless defined before this file is included (to test a BPF "
        "port, or the real function where its secret can be set). Tables whose results "
        "depend on the byte order or BITS_PER_LONG are compiled only where they hold. "
        "Define SIDKIT_VECTORS_NO_INCLUDES when the kernel definitions are already in scope."
    )
    if kunit:
        paras.append(
            "One KUnit case per function, in suite sidkit_vectors: put this file in lib/tests/ "
            "(or next to the code under test) with a Kconfig entry and a Makefile line."
        )
    else:
        paras.append(
            "sidkit_check_<fn>(&checked) and sidkit_check_all(&checked) return the number of "
            "mismatches, add the cases run to checked, and call SIDKIT_MISMATCH(fn, group, "
            "tc_id, got, expected) for each mismatch (pr_err() in the kernel by default)."
        )
    paras += [f"Not emitted: {fn}: {NOT_EMITTABLE.get(fn, 'no C layout')}." for fn in skipped]
    head = ["/*", *comment_lines(paras), " */"]
    includes = ["linux/types.h"]
    for t in tables:
        includes += [i for i in t.spec.includes if i not in includes]
    body = [*head]
    if kunit:
        body += ["#include <kunit/test.h>", "#include <linux/module.h>"]
    body += ["", "#ifndef SIDKIT_VECTORS_NO_INCLUDES"]
    body += [f"#include <{i}>" for i in includes]
    if not kunit:
        body += ["#ifdef __KERNEL__", "#include <linux/printk.h>", "#endif"]
    body += [
        "#endif",
        "",
        "#ifndef __maybe_unused",
        "#define __maybe_unused __attribute__((__unused__))",
        "#endif",
    ]
    if not kunit:
        body += [
            "",
            "#ifndef SIDKIT_MISMATCH",
            "#ifdef __KERNEL__",
            "#define SIDKIT_MISMATCH(fn, group, tc_id, got, expected) \\",
            '\tpr_err("sidkit vectors: %s: %s tcId %u: got %#llx, expected %#llx\\n", \\',
            "\t       fn, group, tc_id, (unsigned long long)(got), (unsigned long long)(expected))",
            "#else",
            "#define SIDKIT_MISMATCH(fn, group, tc_id, got, expected) do { } while (0)",
            "#endif",
            "#endif",
        ]
    if any("&sidkit_net_scratch" in t.spec.call_values for t in tables):
        body += [
            "",
            "/* net_hash_mix(net) reads net->hash_mix: set per vector before each call */",
            "static struct net sidkit_net_scratch;",
        ]
    for t in tables:
        body += c_table(t)
        if not kunit:
            body += c_check(t.spec)
    if kunit:
        for t in tables:
            body += kunit_case(t.spec)
        body += ["", "static struct kunit_case sidkit_vectors_test_cases[] = {"]
        body += [f"\tKUNIT_CASE(sidkit_{t.spec.function}_test)," for t in tables]
        body += [
            "\t{}",
            "};",
            "",
            "static struct kunit_suite sidkit_vectors_test_suite = {",
            '\t.name = "sidkit_vectors",',
            "\t.test_cases = sidkit_vectors_test_cases,",
            "};",
            "kunit_test_suite(sidkit_vectors_test_suite);",
            "",
            f'MODULE_DESCRIPTION("sidkit conformance vectors: {names}");',
            'MODULE_LICENSE("GPL");',
        ]
    else:
        body += [
            "",
            "static unsigned int __maybe_unused sidkit_check_all(unsigned int *checked)",
            "{",
            "\tunsigned int bad = 0;",
            "",
        ]
        body += [f"\tbad += sidkit_check_{t.spec.function}(checked);" for t in tables]
        body += ["\treturn bad;", "}"]
    return "\n".join(body) + "\n"
