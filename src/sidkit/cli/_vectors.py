# The `sidkit vectors` command group, registered into sidkit.cli's parser by register(). Three
# jobs for kernel and eBPF authors: `list` what the vector files hold, `verify` the library (and,
# on request, the running kernel) against them, and `emit` them as JSON, a C table or a KUnit
# suite. Bare `sidkit vectors [--dir DIR]` keeps meaning `verify`, because CI runs it and reads
# its last line. Errors are sidkit errors; sidkit.cli.main turns them into one line and exit 2.
"""The ``sidkit vectors`` subcommands: list, verify, emit (private; used by :mod:`sidkit.cli`)."""

from __future__ import annotations

import argparse
import importlib.resources
import json
import platform
import sys
from pathlib import Path
from typing import Any

from sidkit._errors import KernelOracleError, SidkitError
from sidkit.conformance import (
    LIVE_ORACLES,
    LiveResult,
    TestGroup,
    VectorFile,
    run_group,
    run_group_live,
    select_groups,
)
from sidkit.conformance._emit import EMITTABLE, emit

__all__ = ["DEFAULT_DIR", "register"]

DEFAULT_DIR = "conformance/vectors"
_FIRST_FAILURES = 5
_DIR_HELP = (
    f"folder of *.json vector files (default ./{DEFAULT_DIR} if there is one, "
    "else the copy installed with sidkit)"
)


def installed_vectors() -> Path:
    """The vector files installed with sidkit (package data of :mod:`sidkit.conformance`).

    ``pip install .`` puts a copy in the wheel; in a checkout (and an editable install)
    ``src/sidkit/conformance/vectors`` is a symlink to ``conformance/vectors``, so both
    read the same files. The package is a plain directory on disk (sidkit is not zip-safe
    to begin with: plugins are found through entry points of installed distributions).
    """
    found = importlib.resources.files("sidkit.conformance") / "vectors"
    return Path(str(found))


def _root(args: argparse.Namespace) -> Path:
    """--dir, else ./conformance/vectors (a checkout), else the installed copy -- so the
    command works from anywhere, a kernel tree included."""
    if args.dir is not None:
        return Path(args.dir)
    here = Path(DEFAULT_DIR)
    if here.is_dir():
        return here
    return installed_vectors()


def _select(args: argparse.Namespace) -> list[tuple[VectorFile, TestGroup]]:
    return select_groups(_root(args), functions=args.function or (), kernel=args.kernel)


def _n(count: int, noun: str) -> str:
    """``1 vector``, ``2 vectors``: every count the command prints agrees with its noun."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _safe(text: object) -> str:
    """*text* as a terminal line may show it: a vector file is input, and an ESC or a
    newline in its strings (or its file name) must not reach the terminal as itself.
    Every character that is not printable is shown as its escape (``\\x1b``)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _source(g: TestGroup) -> str:
    version = g.source.get("version")
    return _safe(f"{g.source['name']}" + (f" {version}" if version else ""))


# --------------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> int:
    selection = _select(args)
    if args.json:
        files: dict[str, dict[str, Any]] = {}
        for f, g in selection:
            entry = files.setdefault(
                f.path.name,
                {"file": str(f.path), "algorithm": f.algorithm, "groups": []},
            )
            entry["groups"].append(
                {
                    "function": g.function,
                    "kernel": g.kernel,
                    "oracle": g.oracle,
                    "source": dict(g.source),
                    "comment": g.comment,
                    "number_of_tests": len(g.tests),
                    "emittable": sorted(
                        ("json", "c", "kunit") if g.function in EMITTABLE else ("json",)
                    ),
                    "live_oracle": LIVE_ORACLES.get(g.function),
                }
            )
        doc = {
            "dir": str(_root(args)),
            "number_of_tests": sum(len(g.tests) for _, g in selection),
            "files": list(files.values()),
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(
        f"{'file':30} {'function':22} {'kernel':9} {'oracle':10} {'vectors':>7}  {'C':3} "
        f"{'live':4}  source"
    )
    for f, g in selection:
        print(
            f"{_safe(f.path.name):30} {g.function:22} {g.kernel or '-':9} {g.oracle:10} "
            f"{len(g.tests):7}  {'yes' if g.function in EMITTABLE else 'no':3} "
            f"{'yes' if g.function in LIVE_ORACLES else 'no':4}  {_source(g)}"
        )
    n_files = len({f.path for f, _ in selection})
    total = sum(len(g.tests) for _, g in selection)
    print(f"{_n(total, 'vector')} in {_n(len(selection), 'group')} of {_n(n_files, 'file')}")
    return 0


# --------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------


def _live_line(r: LiveResult) -> str:
    if r.reason and not r.checked:
        return f"    live kernel {r.release}: not compared: {r.reason}"
    bad = len(r.failures)
    state = (
        "ok"
        if r.ok
        else f"{bad} DISAGREE" + (f", {len(r.problems)} problems" if r.problems else "")
    )
    return (
        f"    live kernel {r.release}: {_n(r.checked, 'vector')} compared ({r.bits} hash bits), "
        f"{r.not_visible} not visible to the map oracle  {state}"
    )


def _cmd_verify(args: argparse.Namespace) -> int:
    if getattr(args, "program", None) is not None:  # steering vectors through a program
        from sidkit.cli._testbench import verify_steering  # noqa: PLC0415

        return verify_steering(args, _root(args))
    selection = _select(args)
    live_reason = None
    if args.live:
        from sidkit.bpf._syscall import bpf_available  # noqa: PLC0415 (ctypes only for --live)

        live_reason = bpf_available()
    total = bad = 0
    live: list[LiveResult] = []
    for f, group in selection:
        failures = run_group(group, f.path)
        total += len(group.tests)
        bad += len(failures)
        status = "ok" if not failures else f"{len(failures)} FAILED"
        print(
            f"{_safe(f.path.name):34} {group.function:22} kernel {group.kernel or '-':8} "
            f"{len(group.tests):5} {'vector ' if len(group.tests) == 1 else 'vectors'}  "
            f"{group.oracle:10} {status}"
        )
        for failure in failures[:_FIRST_FAILURES]:
            print(f"    {_safe(failure)}")
        if args.live and live_reason is None and group.function in LIVE_ORACLES:
            result = run_group_live(group, f.path)
            live.append(result)
            print(_live_line(result))
            for failure in result.failures[:_FIRST_FAILURES]:
                print(f"    live: {_safe(failure)}")
            for problem in result.problems:
                print(f"    live: {_safe(problem)}")
    summary = f"{total - bad} passed, {bad} failed"
    if args.live and live_reason is None:
        if live:
            agreed = sum(r.checked - len(r.failures) for r in live)
            disagreed = sum(len(r.failures) + len(r.problems) for r in live)
            summary += f"; live kernel {platform.release()}: {agreed} agreed, {disagreed} disagreed"
        else:
            summary += (
                "; live kernel: no selected function has a live oracle "
                f"({', '.join(sorted(LIVE_ORACLES))} do)"
            )
    print(summary)
    if live_reason is not None:
        raise KernelOracleError(f"--live: the running kernel cannot be asked: {live_reason}")
    return 1 if bad or any(not r.ok for r in live) else 0


# --------------------------------------------------------------------------------------------
# emit
# --------------------------------------------------------------------------------------------


def _command_line(args: argparse.Namespace) -> str:
    parts = ["sidkit vectors emit", f"--format {args.format}"]
    parts += [f"--function {fn}" for fn in args.function or ()]
    if args.kernel is not None:
        parts.append(f"--kernel {args.kernel}")
    if args.limit is not None:
        parts.append(f"--limit {args.limit}")
    return " ".join(parts)


def _cmd_emit(args: argparse.Namespace) -> int:
    selection = _select(args)
    text = emit(
        selection,
        args.format,
        command=_command_line(args),
        functions=args.function or (),
        kernel=args.kernel,
        limit=args.limit,
    )
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise SidkitError(
                f"cannot write {args.output}: {exc.strerror or exc}", code="cannot-write"
            ) from None
        print(f"wrote {args.output} ({len(text)} bytes)", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _filters(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument(
        "--dir",
        default=argparse.SUPPRESS,
        help=_DIR_HELP,
    )
    p.add_argument(
        "--function",
        action="append",
        metavar="F",
        help=f"{verb} only the groups of kernel function F (repeatable)",
    )
    p.add_argument(
        "--kernel",
        metavar="V",
        help=f"{verb} only the groups that hold for kernel V: those whose function computes "
        "in V what it computed in the group's kernel, per the eras table (V=6.18 keeps the "
        "6.12.117 and 6.1.192 jhash groups, not the inet_ehashfn ones)",
    )


def _testbench_map(text: str) -> object:
    from sidkit.cli._testbench import _map_arg  # noqa: PLC0415

    return _map_arg(text)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``vectors`` command (``list``, ``verify``, ``emit``) to *sub*.

    Bare ``sidkit vectors`` and ``sidkit vectors --dir DIR`` run ``verify`` against the
    library, as the command did before it had subcommands.
    """
    v = sub.add_parser(
        "vectors",
        help="list, verify and emit the conformance vectors",
        description="The conformance vectors in conformance/vectors, each group produced by "
        "an oracle sidkit did not write. Without a subcommand: verify.",
        epilog="examples:\n"
        "  sidkit vectors\n"
        "  sidkit vectors list\n"
        "  sidkit vectors verify --live\n"
        "  sidkit vectors emit --format kunit --function jhash --kernel 6.18 -o jhash_kunit.c",
    )
    v.add_argument(
        "--dir",
        default=None,
        help=_DIR_HELP,
    )
    v.set_defaults(run=_cmd_verify, function=None, kernel=None, live=False)
    vsub = v.add_subparsers(dest="vectors_command", metavar="{list,verify,emit}")

    ls = vsub.add_parser(
        "list",
        help="files, functions, kernels, oracles and counts",
        description="One line per test group: file, function, kernel, oracle, number of "
        "vectors, whether it can be emitted as C/KUnit and whether the running kernel can be "
        "asked (verify --live), and the oracle's source.",
        epilog="examples:\n  sidkit vectors list --function hsiphash\n  sidkit vectors list --json",
    )
    _filters(ls, "list")
    ls.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    ls.set_defaults(run=_cmd_list)

    ve = vsub.add_parser(
        "verify",
        help="check the library (and with --live the running kernel) against the vectors",
        description="Run every selected vector through the library under its group's kernel "
        "profile. --live also asks the running kernel where it exposes the function (jhash, "
        "jhash2: the bucket order of a BPF_F_ZERO_SEED hash map via bpf(2); needs root or "
        "CAP_BPF). Exit status: 0 all agree, 1 a disagreement (the first few are printed), "
        "2 an error -- including --live on a machine where bpf(2) is refused, after the "
        "library results are printed.",
        epilog="example:\n  sidkit vectors verify --function jhash --live",
    )
    _filters(ve, "verify")
    ve.add_argument(
        "--live", action="store_true", help="also check the vectors against the running kernel"
    )
    ve.add_argument(
        "--program",
        metavar="FILE",
        help="run the steering vectors (conformance/vectors/steering) through this reuseport "
        "program on a live group instead (sidkit testbench; needs root)",
    )
    ve.add_argument("--section", metavar="NAME", help="with --program: ELF section or C array")
    ve.add_argument(
        "--map",
        action="append",
        metavar="NAME=FILL",
        type=_testbench_map,
        help="with --program: how to fill a map (as sidkit testbench --map)",
    )
    ve.add_argument(
        "--steering-dir",
        default=None,
        metavar="DIR",
        help="with --program: folder of steering vector files (default: steering/ in the "
        "vectors folder)",
    )
    ve.set_defaults(run=_cmd_verify)

    em = vsub.add_parser(
        "emit",
        help="write the vectors as JSON, a C table or a KUnit suite",
        description="json: the selected groups as one vector file (same schema). c: a "
        "self-contained C file with a table per function in kernel types and a check loop "
        "per function that counts mismatches, to #include into a kernel test or a userspace "
        "harness. kunit: the same tables as a KUnit suite. Functions that can be emitted as C: "
        + ", ".join(EMITTABLE)
        + ".",
        epilog="example:\n  sidkit vectors emit --format c --function jhash --function hash_32 "
        "--kernel 6.18 --limit 20 -o sidkit_vectors.c",
    )
    em.add_argument("--format", choices=["json", "c", "kunit"], required=True)
    _filters(em, "emit")
    em.add_argument("--limit", type=_positive, metavar="N", help="at most N vectors per group")
    em.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    em.set_defaults(run=_cmd_emit)
