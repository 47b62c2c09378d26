# The `sidkit testbench` command, registered into sidkit.cli's parser by register(): load a
# program (ELF object, C array, classic listing, raw instructions), run it on a live group of
# --sockets sockets in a private namespace, feed it datagrams (--capture or --payload), and
# compare every delivery with --expect. Exit 0 when every datagram agrees (or nothing was
# expected), 1 when some disagree; sidkit errors are one line and exit 2 (sidkit.cli.main).
"""The ``sidkit testbench`` command (private; used by :mod:`sidkit.cli`)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import TypeVar

from sidkit.testbench import (
    DEFAULT_PORT,
    Family,
    Fill,
    Model,
    Probe,
    TestbenchError,
    check,
    load_program,
    model_from_spec,
)

__all__ = ["register", "verify_steering"]

P = TypeVar("P", bound=argparse.ArgumentParser)

_FIRST_DISAGREEMENTS = 20


def _map_arg(text: str) -> tuple[str, Fill]:
    name, sep, how = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"expected NAME=sockarray|cookie|empty|keys:HEX,..., got {text!r}"
        )
    if how in ("sockarray", "cookie", "empty"):
        return name, how  # type: ignore[return-value]
    if how.startswith("keys:"):
        try:
            return name, tuple(bytes.fromhex(k) for k in how[5:].split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"keys must be hex, got {how[5:]!r}") from None
    raise argparse.ArgumentTypeError(
        f"fill must be sockarray, cookie, empty or keys:HEX,...; got {how!r}"
    )


def _payload_arg(text: str) -> bytes:
    clean = re.sub(r"[\s:]", "", text)
    if clean in ("", "-"):
        return b""
    try:
        return bytes.fromhex(clean)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {text!r}") from None


def _set_arg(text: str) -> tuple[str, bytes, bytes]:
    name, sep, kv = text.partition("=")
    key, sep2, value = kv.partition(":")
    try:
        if not (sep and sep2 and name):
            raise ValueError
        return name, bytes.fromhex(key), bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=KEYHEX:VALUEHEX, got {text!r}") from None


def _define_arg(text: str) -> tuple[str, int]:
    name, _sep, value = text.partition("=")
    try:
        return name, int(value, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=INTEGER, got {text!r}") from None


def _run(args: argparse.Namespace) -> int:
    program = load_program(
        args.program,
        args.section,
        defines=dict(args.define or ()),
        kind=args.prog_type,
    )
    family: Family = "ipv6" if args.ipv6 else "ipv4"
    if args.capture is not None:
        from sidkit.testbench._feed import capture_probes  # noqa: PLC0415 (reads captures)

        feed: list[Probe] = capture_probes(
            args.capture, dport=args.capture_port, limit=args.limit, family=family
        )
    else:
        feed = [Probe(p) for p in args.payload]
    model: Model | None = model_from_spec(args.expect) if args.expect is not None else None
    values: dict[str, dict[bytes, bytes]] = {}
    for name, key, value in args.set or ():
        values.setdefault(name, {})[key] = value
    report = check(
        program,
        args.sockets,
        feed,
        model,
        maps=dict(args.map or ()),
        values=values,
        port=args.port,
        family=family,
    )
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        v = report.verdicts()
        print(
            f"{program.name} ({program.kind}, {program.count} instructions) on {args.sockets} "
            f"sockets: {report.total} datagrams, {v['selected']} selected, {v['pass']} passed "
            f"to the default selection, {v['drop']} dropped"
        )
        agree, compared = report.group_agreement()
        print(
            f"default selection: sidkit.reuseport.Group, given the kernel's hash, agrees with "
            f"the kernel on {agree} of {compared} datagrams"
        )
        if args.verbose:
            for row in report.rows:
                print(f"  {row.describe()}")
        if report.checked:
            print(f"expectation {args.expect}: {report.agree} of {report.total} agree")
            bad = report.disagreements
            for row in bad[:_FIRST_DISAGREEMENTS]:
                print(f"  DISAGREE {row.describe()}")
            if len(bad) > _FIRST_DISAGREEMENTS:
                print(f"  ... and {len(bad) - _FIRST_DISAGREEMENTS} more")
    return 0 if report.ok else 1


def verify_steering(args: argparse.Namespace, vectors_root: Path) -> int:
    """``sidkit vectors verify --program FILE``: the steering vectors through a program.

    *vectors_root* is the vectors folder as ``vectors verify`` found it (``--dir``, the
    checkout's, or the installed copy); the steering files are its ``steering`` folder unless
    ``--steering-dir`` names another. (The caller passes it so this module never imports the
    vectors command back.)"""
    from sidkit.testbench._vectors import (  # noqa: PLC0415 (only for --program)
        load_steering_vectors,
        run_steering_group,
    )

    root = args.steering_dir if args.steering_dir is not None else vectors_root / "steering"
    total = bad = 0
    name = args.program
    for group in load_steering_vectors(root):
        program = load_program(args.program, args.section, defines=dict(group.defines))
        name = program.name
        report = run_steering_group(group, program, dict(args.map or ()))
        total += report.total
        bad += report.total - report.agree
        status = "ok" if report.ok else f"{report.total - report.agree} FAILED"
        print(
            f"{group.file:34} {group.policy.method}/{group.policy.n} on {group.sockets} sockets "
            f"{report.total:5} vectors  {group.source}  {status}"
        )
        for row in report.disagreements[:5]:
            print(f"    {row.describe()}")
    if not total:
        raise TestbenchError(f"no steering vectors in {root} (expected *.json steering files)")
    print(f"{name}: {total - bad} passed, {bad} failed")
    return 1 if bad else 0


def register(sub: argparse._SubParsersAction[P]) -> None:
    """Add the ``testbench`` command to *sub*."""
    t = sub.add_parser(
        "testbench",
        help="run a third-party reuseport program on a live group and check it",
        description="Load PROGRAM (an ELF object from clang -target bpf, C source with a "
        "struct bpf_insn / struct sock_filter array, a bpf_asm -c / tcpdump -dd listing, or "
        "raw bpf_insn bytes), attach it to --sockets UDP sockets bound with SO_REUSEPORT in a "
        "private network namespace, send the datagrams, and record which socket received "
        "each. With --expect, compare with a model. Needs root (namespaces, bpf(2)). Exit "
        "status: 0 all agree or nothing expected, 1 some disagree, 2 an error.",
        epilog="example: sidkit testbench helper.o --sockets 4 --map ngx_quic_sockmap=cookie "
        "--payload 40... --expect nginx --json",
    )
    t.add_argument("program", metavar="PROGRAM", help="the program file")
    t.add_argument("--sockets", type=int, required=True, metavar="N", help="group size")
    t.add_argument(
        "--section", metavar="NAME", help="ELF section (SEC name) or C array name to load"
    )
    t.add_argument(
        "--map",
        type=_map_arg,
        action="append",
        metavar="NAME=FILL",
        help="fill map NAME: sockarray (socket i at index i), cookie (each socket under its "
        "SO_COOKIE), empty, or keys:HEX,HEX,... (one key per socket); repeatable",
    )
    t.add_argument(
        "--set",
        type=_set_arg,
        action="append",
        metavar="NAME=KEY:VALUE",
        help="store VALUE (hex, host byte order) under KEY in map NAME before the run; repeatable",
    )
    feed = t.add_mutually_exclusive_group(required=True)
    feed.add_argument("--capture", metavar="FILE", help="send the UDP datagrams of a pcap/pcapng")
    feed.add_argument(
        "--payload",
        type=_payload_arg,
        nargs="+",
        metavar="HEX",
        help="send these payloads ('-' for an empty one)",
    )
    t.add_argument(
        "--expect",
        metavar="SPEC",
        help="model: default, drop, nginx, envoy[:N], katran[:FIRST_ID], "
        "quiclb:CONFIG_ID:SID_LEN:NONCE_LEN[:KEYHEX], modulo:N[:OFFSET], "
        "index:OFFSET[:LENGTH], jhash:OFFSET:LENGTH[:SEED], python:MODULE:FUNCTION",
    )
    t.add_argument("--json", action="store_true", help="one JSON document")
    t.add_argument("-v", "--verbose", action="store_true", help="one line per datagram")
    t.add_argument(
        "--define",
        type=_define_arg,
        action="append",
        metavar="NAME=VALUE",
        help="a value for a name a C array uses (e.g. mod=10)",
    )
    t.add_argument(
        "--prog-type",
        choices=["sk_reuseport", "socket_filter", "cbpf"],
        help="how to load raw instructions (default: from the file, else sk_reuseport)",
    )
    t.add_argument("--capture-port", type=int, metavar="PORT", help="only datagrams to PORT")
    t.add_argument("--limit", type=int, default=10_000, help="at most this many datagrams")
    t.add_argument("--port", type=int, default=DEFAULT_PORT, help="the group's UDP port")
    t.add_argument(
        "--ipv6",
        action="store_true",
        help="bind the group to fd77::1 and send from fd77::2 and fd77::3 (default: IPv4)",
    )
    t.set_defaults(run=_run)
