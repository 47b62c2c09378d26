# The `sidkit` command. Subcommands answer the everyday questions of the foundation
# ("what is jhash of these bytes", "which SO_REUSEPORT socket does this 5-tuple hit",
# "which algorithm did kernel X use") and run the conformance vectors. Every error is
# one readable line on stderr and exit status 2; --help on each subcommand teaches with
# an example.
"""Command-line interface."""

from __future__ import annotations

import os
import signal
import sys


class _Interrupt:
    """Ctrl-C while this module is the `sidkit` command. Python drops an exception raised
    where it cannot propagate (a weakref callback, ``__del__``: "Exception ignored"), so a
    KeyboardInterrupt alone could be lost; the handlers here record the interrupt first, and
    :func:`main` answers the record. Until main() runs (the imports that follow, the script
    calling it), the interrupt is only recorded: there is nothing to stop yet."""

    seen = False

    @classmethod
    def note(cls, _signum: int, _frame: object) -> None:
        cls.seen = True

    @classmethod
    def handler(cls, _signum: int, _frame: object) -> None:
        cls.seen = True
        raise KeyboardInterrupt


def _as_command() -> bool:
    """True while this import is the `sidkit` script's or ``python -m sidkit.cli``'s
    (argv[0] is "-m" until runpy has imported the module's packages): only then may this
    module take SIGINT -- and only from Python's default handler (a shell that started the
    command with SIGINT ignored keeps it so); a program importing sidkit.cli keeps its own."""
    return (
        bool(sys.argv[:1])
        and os.path.basename(sys.argv[0]) in ("sidkit", "-m")
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )


if _as_command():
    signal.signal(signal.SIGINT, _Interrupt.note)
# The rest of the imports are most of the command's start-up time: SIGINT is taken above.
import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import textwrap  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any, Literal  # noqa: E402

from sidkit import SidkitError, UnknownKernelError, __version__, hashing  # noqa: E402
from sidkit.cli import _flows, _initval, _socket, _testbench, _vectors  # noqa: E402
from sidkit.kernel import ERAS, Era, KernelProfile, profile  # noqa: E402

__all__ = ["main"]


class _Formatter(argparse.HelpFormatter):
    """Help text as written where it is laid out, reflowed where it is prose.

    argparse reflows every description and epilog into one paragraph, which ran example
    commands into each other. Here a paragraph (text between blank lines) whose lines after
    the first are indented is printed exactly as written -- examples, tables -- and any
    other paragraph is filled to the terminal width, as before.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in re.split(r"\n\s*\n", text.strip("\n")):
            lines = para.splitlines()
            if any(line[:1].isspace() for line in lines[1:]):
                out.append("\n".join(indent + line for line in lines))
            else:
                flat = " ".join(para.split())
                out.append(
                    textwrap.fill(flat, width, initial_indent=indent, subsequent_indent=indent)
                )
        return "\n\n".join(out)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose subcommands inherit :class:`_Formatter` (``add_parser`` builds
    them with the parser's own class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _print_json(doc: object) -> None:
    """One JSON document on stdout. Keys are snake_case in every command (``flows`` keeps
    tshark's own field names where it reports tshark's fields)."""
    print(json.dumps(doc, indent=2))


def _int(text: str) -> int:
    """Parse decimal or 0x-prefixed hex integers."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text.replace(":", "").replace(" ", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex bytes: {text!r}") from None


def _prof(args: argparse.Namespace) -> KernelProfile:
    return profile(args.kernel, byteorder=args.byteorder)


def _hash_out(
    args: argparse.Namespace, function: str, value: int, width: int, **inputs: Any
) -> int:
    """Print a hash in hex, or with --json ``{"function", "kernel", "inputs", "hash"}``."""
    text = f"0x{value:0{width}x}"
    if not args.json:
        print(text)
        return 0
    kernel = str(_prof(args).version) if "kernel" in args else None
    shown = {k: v.hex() if isinstance(v, bytes) else v for k, v in inputs.items()}
    _print_json({"function": function, "kernel": kernel, "inputs": shown, "hash": text})
    return 0


def _cmd_jhash(args: argparse.Namespace) -> int:
    value = _prof(args).function("jhash")(args.data, args.initval)
    return _hash_out(args, "jhash", value, 8, data=args.data, initval=args.initval)


def _cmd_siphash(args: argparse.Namespace) -> int:
    name = "hsiphash" if args.half else "siphash"
    value = _prof(args).function(name)(args.data, args.key)
    return _hash_out(args, name, value, 8 if args.half else 16, data=args.data, key=args.key)


def _cmd_toeplitz(args: argparse.Namespace) -> int:
    value = hashing.toeplitz(args.data, args.key)
    return _hash_out(args, "toeplitz", value, 8, data=args.data, key=args.key)


def _cmd_sid(args: argparse.Namespace) -> int:
    from sidkit.extract import (  # noqa: PLC0415
        Extractor,
        MalformedPacketError,
        NotSteerableError,
        locate,
    )
    from sidkit.keys import SessionId  # noqa: PLC0415
    from sidkit.plugin import (  # noqa: PLC0415
        DETAIL_VALIDATED,
        default_host,
        parse_option_assignments,
        usable_without_options,
    )
    from sidkit.steering import AnyOf, SteeringPolicy  # noqa: PLC0415

    options = parse_option_assignments(args.option)
    host = default_host()
    # -p quic,wireguard as well as -p quic -p wireguard, as `sidkit flows --protocol` takes
    protocols = [name.strip() for item in args.protocol for name in item.split(",") if name]
    if protocols:
        extractors = [Extractor(protocols, options)]
    else:
        # Unknown traffic: ask every protocol that needs no options on its own. The IDs
        # found are listed by the evidence behind them: first those whose parser says the
        # datagram's structure checked out (DETAIL_VALIDATED: a length or count field
        # consistent with the datagram, which random bytes rarely satisfy), then by the
        # narrowest first-byte claim (a protocol that claims any first byte, like IPsec
        # NAT-T's SPI, says little about a payload that another protocol recognises), then
        # by name.
        names = sorted(
            usable_without_options(host), key=lambda n: (len(host.spec(n).first_bytes), n)
        )
        Extractor(names, options)  # checks every option once, flat or per protocol
        extractors = []
        for name in names:
            known = {o.name for o in host.spec(name).options}
            mine = {k: v for k, v in options.items() if k in known and not isinstance(v, dict)}
            per = options.get(name, {})
            extractors.append(Extractor([name], {**mine, **(per if isinstance(per, dict) else {})}))
    results: list[tuple[Extractor, SessionId]] = []
    malformed: list[tuple[str, str]] = []
    for ex in extractors:
        try:
            sid = ex.extract(args.payload)
        except MalformedPacketError as exc:
            # The payload claims this protocol and is broken: a router would drop it or
            # fall back to the tuple. Say so and let the other candidates speak.
            malformed.append((exc.protocol or ex.protocols[0], str(exc)))
            if not args.json:
                print(f"{exc.protocol or ex.protocols[0]:10} malformed: {exc}")
            continue
        if sid is None:
            continue
        results.append((ex, sid))
        if protocols:
            break
    # stable: equal evidence keeps the claim order above
    results.sort(key=lambda r: r[1].details.get(DETAIL_VALIDATED) is not True)
    found: list[dict[str, Any]] = []
    for ex, sid in results:
        entry: dict[str, Any] = {"protocol": sid.protocol, "sid": sid.hex()}
        where = ""
        try:
            hit = locate(ex.sid_locations(), args.payload)
            entry["steerable"] = True
        except NotSteerableError:
            hit = None
            entry["steerable"] = False
            where = "  (not at a fixed place: kernel steering cannot read it)"
        if hit is not None:
            loc, _value = hit
            entry["offset"], entry["length"] = loc.offset, len(sid)
            where = f"  ({len(sid)} bytes at payload offset {loc.offset})"
        claim = len(host.spec(sid.protocol).first_bytes)
        entry["claims_any_first_byte"] = claim >= 256
        entry["structure_validated"] = sid.details.get(DETAIL_VALIDATED) is True
        note = "" if claim < 256 else "  [claims any first byte]"
        if entry["structure_validated"]:
            note += "  [structure validated]"
        details = {
            k: (
                v.hex()
                if isinstance(v, bytes)
                else v
                if isinstance(v, int | str | bool)
                else str(v)
            )
            for k, v in sid.details.items()
        }
        entry["details"] = details
        if not args.json:
            print(f"{sid.protocol:10} {sid.hex() or '(empty)'}{where}{note}")
            for key, value in sid.details.items():
                shown = (value.hex() or "(empty)") if isinstance(value, bytes) else value
                print(f"{'':10}   {key} = {shown}")
        if args.sockets and hit is not None:
            policy = SteeringPolicy(AnyOf([hit[0]]), "jhash", args.sockets, seed=args.seed)
            index = policy.select(args.payload)
            entry["steering"] = {
                "method": "jhash",
                "sockets": args.sockets,
                "seed": args.seed,
                "socket": index,
            }
            if not args.json:
                print(
                    f"{'':10}   jhash steering -> socket {index} of {args.sockets} "
                    f"(seed {args.seed:#x})"
                )
        found.append(entry)
    tried = [p for ex in extractors for p in ex.protocols]
    hints = [] if found else _missing_options(host, tried, options, args.payload)
    if args.json:
        _print_json(
            {
                "payload": args.payload.hex(),
                "tried": tried,
                "session_ids": found,
                "malformed": [{"protocol": p, "error": e} for p, e in malformed],
                "hints": hints,
            }
        )
    elif not found:
        print(f"no session ID found (tried {', '.join(tried)})")
        for hint in hints:
            print(f"  {hint}")
    return 0 if found else 1


def _missing_options(
    host: Any, tried: Sequence[str], options: dict[str, Any], payload: bytes
) -> list[str]:
    """What the user may have left out: for each protocol tried that claims this payload's
    first byte, its options without a default that were not given. The Extractor only says
    None -- a QUIC short header names no connection-ID length, so without ``cid_length``
    there is nothing to read, and that is worth saying."""
    hints = []
    for name in tried:
        spec = host.spec(name)
        if payload and payload[0] not in spec.first_bytes:
            continue
        per = options.get(name, {})
        given = {k for k, v in options.items() if not isinstance(v, dict)}
        given |= set(per) if isinstance(per, dict) else set()
        for opt in spec.options:
            if opt.default is None and opt.name not in given:
                hints.append(
                    f"{name}: option {opt.name} is not set -- {opt.doc}; "
                    f"try -o {name}.{opt.name}=VALUE"
                )
    return hints


def _era_provenance(e: Era) -> str:
    """One line: status, commit, mainline, backports and the note of an eras-table row."""
    parts: list[str] = [e.status or "unclassified"]
    if e.commit:
        parts.append(f"commit {e.commit}")
    if e.mainline:
        parts.append(f"mainline {e.mainline}")
    if e.backports:
        parts.append("stable " + ", ".join(map(str, e.backports)))
    if e.not_in:
        parts.append("not in " + ", ".join(map(str, e.not_in)))
    return "; ".join(parts) + (f" -- {e.note}" if e.note else "")


_RELEASE = re.compile(r"v?\d+\.\d+")


def _era_json(e: Era) -> dict[str, Any]:
    return {
        "function": e.function,
        "since": str(e.since),
        "variant": e.variant,
        "source": e.source,
        "evidence": e.evidence,
        "status": e.status,
        "commit": e.commit,
        "mainline": None if e.mainline is None else str(e.mainline),
        "backports": [str(v) for v in e.backports],
        "not_in": [str(v) for v in e.not_in],
        "note": e.note,
    }


def _cmd_eras(args: argparse.Namespace) -> int:
    function, release = None, args.release
    for word in args.what:
        if _RELEASE.match(word):
            if release is not None:
                raise SidkitError(f"two releases given: {release} and {word}", code="usage")
            release = word
        elif function is None:
            function = word
        else:
            raise SidkitError(f"two functions given: {function} and {word}", code="usage")
    rows = [e for e in ERAS if function in (None, e.function)]
    if not rows:
        known = ", ".join(sorted({e.function for e in ERAS}))
        raise SidkitError(
            f"no function {function!r} in the eras table (functions: {known})", code="unknown"
        )
    if release is not None:
        return _eras_release(release, rows, verbose=args.verbose, as_json=args.json)
    if args.json:
        _print_json({"eras": [_era_json(e) for e in rows]})
        return 0
    print(f"{'function':22} {'since':>9}  {'form':28} source")
    for e in rows:
        print(f"{e.function:22} {e.since!s:>8}+  {e.variant:28} {e.source}")
        if args.verbose:
            print(f"{'':33}{e.evidence}")
            print(f"{'':33}{_era_provenance(e)}")
    return 0


def _eras_release(release: str, rows: list[Era], *, verbose: bool, as_json: bool) -> int:
    """``sidkit eras V``: the row in force in V for each function of *rows*; rows that V
    itself (or its stable series, by a backport) brought are marked."""
    prof = profile(release)  # a bad release string is an UnknownKernelError: one line, exit 2
    functions = list(dict.fromkeys(e.function for e in rows))
    out: list[dict[str, Any]] = []
    if not as_json:
        print(f"Linux {prof.version}: the form of each function (a stable backport counts)")
    for fn in functions:
        try:
            e = prof.era(fn)
        except UnknownKernelError:
            first = next(r.since for r in rows if r.function == fn)
            out.append({"function": fn, "variant": None, "first_release": str(first)})
            if not as_json:
                print(f"{fn:22} {'-':28} (none before {first})")
            continue
        via = e.backport_for(prof.version)
        v, s_ = prof.version, e.since
        # a row V brought: V is its mainline release, or the stable release its backport
        # landed in (6.1.192 did not bring the rows of 6.1)
        here = (via or s_) == v
        out.append(
            {
                **_era_json(e),
                "backport": None if via is None else str(via),
                "new_in_this_release": here,
            }
        )
        if as_json:
            continue
        since = f"{e.since}+" if via is None else f"{via}+ (backport of {e.since})"
        new = "  <- new in this release" if here else ""
        print(f"{fn:22} {e.variant:28} {since:27} {e.commit or '-':12}  {e.status or '-'}{new}")
        if verbose:
            print(f"{'':23}{e.evidence}")
            print(f"{'':23}{_era_provenance(e)}")
    if as_json:
        _print_json({"release": str(prof.version), "functions": out})
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from sidkit import demo  # noqa: PLC0415 (pulls in netns/pyroute2 only when needed)

    backends: tuple[Literal["cbpf", "ebpf"], ...] = (
        ("cbpf", "ebpf") if args.backend == "both" else (args.backend,)
    )

    def progress(msg: str) -> None:
        print(f"  ... {msg}", file=sys.stderr, flush=True)

    # Both checks before any work: a live run takes seconds to minutes.
    demo.check_sizes(args.sockets, args.sessions, args.datagrams)
    if args.plot:
        demo.require_plot()
    if args.restart:
        return _cmd_demo_restart(args, progress)
    result = demo.run_demo(
        sockets=args.sockets,
        sessions=args.sessions,
        per_phase=args.datagrams,
        protocol=args.protocol,
        backends=backends,
        model_only=args.model_only,
        seed=args.seed,
        progress=progress,
    )
    if result.reason and not args.model_only and args.json:
        # The table says it itself (MODEL ONLY ...); JSON readers get one line here.
        print(f"sidkit: {result.reason}; running on the model alone", file=sys.stderr)
    if args.json:
        import json  # noqa: PLC0415

        print(json.dumps(demo.to_json(result), indent=2))
    else:
        demo.render(result)
    if args.plot:
        demo.plot(result, args.plot)
        print(f"  plot written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    steered = [m for m in result.modes if m.mode != "tuple"]
    ok = all(m.changed == 0 and m.lost == 0 for m in steered)
    ok = ok and (not result.live or all(m.agreed == m.total for m in result.modes))
    return 0 if ok else 1


def _cmd_demo_restart(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import json  # noqa: PLC0415

    from sidkit import demo  # noqa: PLC0415

    result = demo.run_restart_demo(
        sockets=args.sockets,
        sessions=args.sessions,
        per_phase=args.datagrams,
        protocol=args.protocol,
        model_only=args.model_only,
        seed=args.seed,
        progress=progress,
    )
    if result.reason and not args.model_only and args.json:
        # The table says it itself (MODEL ONLY ...); JSON readers get one line here.
        print(f"sidkit: {result.reason}; running on the model alone", file=sys.stderr)
    if args.json:
        print(json.dumps(demo.to_json(result), indent=2))
    else:
        demo.render_restart(result)
    if args.plot:
        demo.plot_restart(result, args.plot)
        print(f"  plot written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    table = next(m for m in result.modes if m.mode == demo.RESTART_LABEL["table"])
    ok = table.broken == 0 and table.lost == 0
    ok = ok and (not result.live or all(m.agreed == m.datagrams for m in result.modes))
    return 0 if ok else 1


def _positive(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


#: The examples ``sidkit sid --help`` shows; tests run each one.
SID_EXAMPLES = (
    "sidkit sid 41a1b2c3d4e5f60708aabbcc -o quic.cid_length=8",
    "sidkit sid 04000000112233440000000000000000" + "00" * 16 + " -p wireguard --sockets 4",
    "sidkit sid 00112233445566 -p fixed -o offset=1 -o offlen=4",
)


def _cmd_completion(parser: argparse.ArgumentParser) -> int:
    """Print a bash completion function generated from *parser*'s tree of subcommands."""
    from sidkit.cli._completion import bash_script  # noqa: PLC0415

    sys.stdout.write(bash_script(parser))
    return 0


def _parser() -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = _Parser(
        prog="sidkit",
        description="How Linux identifies a UDP flow and which socket gets it, exactly.",
        epilog="Each subcommand has its own --help with examples. Shell completion: "
        'eval "$(sidkit completion bash)" (in ~/.bashrc; zsh: autoload bashcompinit && '
        "bashcompinit first).",
    )
    p.add_argument("--version", action="version", version=f"sidkit {__version__}")
    p.set_defaults(run=None, help_of=p)
    sub = p.add_subparsers(dest="command")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--kernel", default=None, help="kernel version whose era to use (default 6.18)"
        )
        sp.add_argument(
            "--byteorder", choices=["little", "big"], default="little", help="host byte order"
        )

    hp = sub.add_parser(
        "hash",
        help="compute one kernel hash",
        description="Compute one hash the way the kernel does, or the socket a datagram hits.",
    )
    hp.set_defaults(run=None, help_of=hp)
    hsub = hp.add_subparsers(dest="function")

    def as_json(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="one JSON object instead of text")

    j = hsub.add_parser(
        "jhash",
        help="the kernel's jhash of hex bytes",
        epilog="examples:\n"
        "  sidkit hash jhash 616263                     ->  0x0e397631 (lookup3)\n"
        "  sidkit hash jhash 616263 --kernel 2.6.36     ->  lookup2's value",
    )
    j.add_argument("data", type=_hex, help="key bytes in hex")
    j.add_argument("--initval", type=_int, default=0, help="u32 seed (default 0)")
    common(j)
    as_json(j)
    j.set_defaults(run=_cmd_jhash)

    s = hsub.add_parser(
        "siphash",
        help="the kernel's siphash / hsiphash of hex bytes",
        epilog="example:\n  sidkit hash siphash 00 --key 000102030405060708090a0b0c0d0e0f",
    )
    s.add_argument("data", type=_hex, help="bytes to hash, in hex")
    s.add_argument("--key", type=_hex, required=True, help="16 key bytes in hex")
    s.add_argument("--half", action="store_true", help="hsiphash instead of siphash")
    common(s)
    as_json(s)
    s.set_defaults(run=_cmd_siphash)

    t = hsub.add_parser(
        "toeplitz",
        help="RSS Toeplitz hash of hex bytes",
        epilog="example:\n  sidkit hash toeplitz 420995bba18e6450  ->  0x323e8fc2",
    )
    t.add_argument("data", type=_hex, help="input bytes in hex (e.g. addresses and ports)")
    t.add_argument("--key", type=_hex, default=hashing.MICROSOFT_RSS_KEY, help="RSS key in hex")
    as_json(t)
    t.set_defaults(run=_cmd_toeplitz)

    _socket.register(hsub, common)
    _initval.register(hsub)

    d = sub.add_parser(
        "demo",
        help="the mobility demo: sessions that move vs 5-tuple hashing and SID steering",
        description="Build two private network namespaces joined by a veth pair, bind a "
        "SO_REUSEPORT group in one, and let clients in the other hold sessions that change "
        "port (NAT rebinding) and then address (Wi-Fi -> LTE). The same traffic runs with the "
        "kernel's default 5-tuple hash, a classic BPF program and an SK_REUSEPORT eBPF program "
        "that steer by session ID; sidkit's model predicts every datagram's socket. Needs root "
        "(or CAP_SYS_ADMIN + CAP_BPF) on Linux; otherwise it says why and runs the model alone. "
        "Exit status 0 when steering kept every session and the model matched the kernel.",
        epilog="examples:\n"
        "  sidkit demo\n"
        "  sidkit demo --protocol wireguard --sockets 8\n"
        "  sidkit demo --backend ebpf --sessions 1000 --plot demo.png",
    )
    d.add_argument(
        "--protocol",
        choices=["quic", "wireguard", "fixed"],
        default="quic",
        help="how clients carry the session ID (default quic: short-header DCID)",
    )
    d.add_argument(
        "--sockets", type=_positive, default=4, help="reuseport group size (default 4, at most 64)"
    )
    d.add_argument(
        "--sessions",
        type=_positive,
        default=200,
        help="client sessions (default 200, at most 10000)",
    )
    d.add_argument(
        "--datagrams",
        type=_positive,
        default=3,
        help="datagrams per session between moves (default 3, at most 100)",
    )
    d.add_argument(
        "--backend",
        choices=["both", "cbpf", "ebpf"],
        default="both",
        help="which steering program(s) to compare with the default",
    )
    d.add_argument("--model-only", action="store_true", help="do not touch the kernel")
    d.add_argument("--seed", type=_int, default=1, help="random seed for SIDs and payloads")
    d.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw sessions x time by socket (needs the plot extra: pip install 'sidkit[plot]')",
    )
    d.add_argument(
        "--restart",
        action="store_true",
        help="the restart scenario: generations, a crash and a retirement, with the 3-tuple "
        "flow table and the SID session table beside the default and cBPF SID hashing",
    )
    d.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    d.set_defaults(run=_cmd_demo)
    _flows.register(sub)

    sid = sub.add_parser(
        "sid",
        help="which session ID a UDP payload carries",
        description="Run the protocol plugins' extractors on one UDP payload and print the "
        "session ID each finds, where it sits (the fixed place a cBPF/eBPF steering program "
        "reads) and the protocol facts the parser saw. Without --protocol every installed "
        "protocol that needs no options is asked, and the IDs are listed by evidence: first "
        "those whose datagram structure validated (a length or count field consistent with "
        "the datagram, marked [structure validated]), then the narrowest first-byte claim; "
        "protocols that need options (fixed offset, DTLS connection-ID length) must be "
        "named.",
        epilog="examples:\n"
        f"  {SID_EXAMPLES[0]}\n"
        "      a QUIC short header: its DCID length is not on the wire, so say it\n"
        f"  {SID_EXAMPLES[1]}\n"
        "      WireGuard transport data (type 4, 32 bytes at least); which of 4 sockets\n"
        f"  {SID_EXAMPLES[2]}\n"
        "      the seed's fixed offset: 4 bytes from payload offset 1\n"
        "\n"
        "Exit status 1 when no protocol finds an ID.",
    )
    sid.add_argument("payload", type=_hex, help="the UDP payload in hex (no IP/UDP header)")
    sid.add_argument(
        "-p",
        "--protocol",
        action="append",
        default=[],
        metavar="NAME",
        help="protocol to use (repeatable or comma-separated, tried in order)",
    )
    sid.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="[PROTOCOL.]NAME=VALUE",
        help="a protocol option, e.g. quic.cid_length=8 (values are Python literals or text)",
    )
    sid.add_argument(
        "--sockets",
        type=_positive,
        default=None,
        help="also show which of N sockets jhash SID steering picks",
    )
    sid.add_argument("--seed", type=_int, default=0, help="jhash seed for --sockets (default 0)")
    sid.add_argument("--json", action="store_true", help="one JSON object instead of text")
    sid.set_defaults(run=_cmd_sid)

    e = sub.add_parser(
        "eras",
        help="which algorithm each kernel function used, by release",
        description="The eras table: the kernel computes a flow's hashes and picks its socket "
        "with functions that changed over the years (jhash lookup2 -> lookup3, the "
        "conntrack hash, reuseport selection ...). sidkit models each form and this table "
        "says which one holds from which release: one row per (function, first release), "
        "with the kernel source it follows. Give a release (sidkit eras 6.13) to see instead "
        "the one row in force in that exact release -- stable backports count, so 6.1.192 "
        "shows forms that mainline got in 6.2 or 6.5 -- with the commit that introduced it, "
        "how that is known (verified, unverified, baseline for the oldest modelled form, "
        "external for non-kernel code) and which rows that release itself brought.",
        epilog="examples:\n"
        "  sidkit eras                              every row\n"
        "  sidkit eras 6.13                         what Linux 6.13 does, function by function\n"
        "  sidkit eras hash_conntrack_raw -v        one function, with evidence\n"
        "  sidkit eras reuseport_select 4.19.75 -v  the 5.4 skip-connected form, backported",
    )
    e.add_argument(
        "what",
        nargs="*",
        metavar="FUNCTION|RELEASE",
        help="only this function's rows, and/or the rows in force in this release (6.13, "
        "6.1.192, uname -r output)",
    )
    e.add_argument(
        "-v", "--verbose", action="store_true", help="show the evidence and provenance of each row"
    )
    e.add_argument(
        "--release",
        metavar="VERSION",
        default=None,
        help="the same as giving RELEASE as an argument",
    )
    e.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    e.set_defaults(run=_cmd_eras)

    _vectors.register(sub)
    _testbench.register(sub)

    c = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a bash completion script for sidkit (zsh reads it too after "
        "autoload bashcompinit && bashcompinit). It is generated from this parser, so it "
        "completes every subcommand and option of the installed version, and it runs no "
        "Python on TAB.",
        epilog='example:\n  eval "$(sidkit completion bash)"      # in ~/.bashrc',
    )
    c.add_argument("shell", choices=["bash"], help="the shell (bash; zsh via bashcompinit)")
    c.set_defaults(run=lambda args: _cmd_completion(p))
    return p


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush of what is still
    buffered cannot fail a second time (and print a traceback) after we reported."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sidkit`` command; returns the exit status.

    Ctrl-C ends here, in one place, wherever it lands -- parsing, the command, or one of the
    error handlers below: "sidkit: interrupted" and 130, the shell's code for SIGINT.
    Namespaces, sockets and BPF programs belong to child processes and file descriptors
    that die with them (sidkit.bpf.netns stops and reaps its children before the interrupt
    reaches this frame), so there is nothing left to undo. Called without *argv* this is the
    command and owns the process: once the status is known a later Ctrl-C is ignored, since
    during the interpreter's shutdown (which restores SIGINT's default action) it would kill
    the finished process silently (status -2, no message).
    """
    command = argv is None and signal.getsignal(signal.SIGINT) in (
        _Interrupt.note,
        signal.default_int_handler,
    )
    interrupted = False
    code = 130
    try:
        if command:
            signal.signal(signal.SIGINT, _Interrupt.handler)
            if _Interrupt.seen:
                raise KeyboardInterrupt
        code = _run(argv)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if command:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut this
    if interrupted or (command and _Interrupt.seen):
        print("sidkit: interrupted", file=sys.stderr)
        return 130
    return code


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.run is None:
        # bare `sidkit` or `sidkit hash`: the help, on stdout, and argparse's usage status
        args.help_of.print_help()
        return 2
    try:
        code: int = args.run(args)
        # Output still buffered is written here, inside the handlers below: left to the
        # interpreter's exit, a full disk (`> /dev/full`) would only print "Exception
        # ignored" and exit 120.
        sys.stdout.flush()
    except SidkitError as exc:
        print(f"sidkit: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `sidkit flows big.pcap | head`: the reader left; say nothing more and do not let
        # the interpreter's final flush print a traceback.
        _drop_stdout()
        return 141
    except OSError as exc:
        # Not a sidkit error but the system's: a full disk, a closed terminal. One line.
        where = f"{exc.filename}: " if exc.filename else "cannot write output: "
        _drop_stdout()
        print(f"sidkit: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return code
