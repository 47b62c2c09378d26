# Strategy: the `sidkit flows` subcommand is a thin shell over sidkit.flows.analyze(): parse
# the arguments into protocols and typed plugin options (each --option value converted by the
# type the plugin declared for it), run the analysis with a progress bar on stderr when
# stderr is a terminal, and render the report as a table, JSON or CSV on stdout. Errors are
# sidkit errors (cli.main prints them as one line and exits 2); capture problems that still
# left something to report are warnings on stderr with exit status 0.
"""The ``sidkit flows`` subcommand (registered by :mod:`sidkit.cli`)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from sidkit._errors import InputValueError
from sidkit.flows import (
    Flow,
    FlowReport,
    analyze,
    analyze_many,
    default_protocols,
    format_ns,
    iter_rows,
)
from sidkit.flows._state import DEFAULT_MAX_FLOWS
from sidkit.plugin import default_host, parse_option_assignments

__all__ = ["register", "render_table", "run"]

_REASSEMBLY_KEYS = ("max_pending", "max_bytes", "timeout_v4", "timeout_v6", "max_dist")

_DESCRIPTION = """\
Group the UDP datagrams of a pcap or pcapng capture into flows by session ID (QUIC
connection IDs, WireGuard indices, DTLS connection IDs, ... as the installed plugins find
them), and show each flow with the 5-tuples it used over time. A QUIC connection whose
client changed address or port (NAT rebinding, migration with the same connection ID) is
one flow with several paths, where the kernel's 5-tuple view sees several flows; --by tuple
shows that view for comparison. Datagrams without a session ID are grouped by their
bidirectional 5-tuple.

Link types: Ethernet (with VLAN tags), Linux cooked (SLL, SLL2), raw IP, BSD and OpenBSD
loopback; IPv4 and IPv6. A truncated or corrupt capture gives what was read, with a
warning; the exit status is non-zero only if nothing could be read."""

_EPILOG = """\
examples:
  sidkit flows capture.pcapng
      a table: one line per flow, then its tuples (times relative to the first datagram)
  sidkit flows capture.pcap --json | jq '.flows[] | select(.paths > 1)'
      flows that changed path; field names follow tshark (ip.src, udp.srcport, ...)
  sidkit flows capture.pcap --csv > flows.csv
      one row per (flow, tuple)
  sidkit flows capture.pcap --by tuple
      what 5-tuple hashing sees: one flow per bidirectional 5-tuple, SIDs listed
  sidkit flows server.pcap --option quic.cid_length=8
      short-header QUIC without handshakes in the capture: say how long the server's CIDs are
  sidkit flows vpn.pcap --protocol wireguard --protocol dtls --option dtls.cid_length=4
  tcpdump -w - -U udp | sidkit flows -
      read standard input
  sidkit flows day/ --jobs 4
  sidkit flows 'trace-*.pcap' --jobs 4
      many captures (files, directories, glob patterns) as one, in the order of their
      first timestamps; --jobs N reads them in N processes and merges the results (the
      same flows, except where a file relies on QUIC CID lengths learned in an earlier
      one: see the flows-many page of the documentation)

default protocols: quic, wireguard, and dtls when --option dtls.cid_length=N is given.
Options are PROTOCOL.NAME=VALUE with the plugin's option names (sidkit.plugin specs);
booleans take true/false, lists of connection IDs take comma-separated hex."""


class _Bar:
    """A one-line progress bar on stderr, redrawn at most five times a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 or now - self.start < 0.3:
            return
        self.last = now
        rate = done / (now - self.start) / 1e6
        if total:
            frac = min(done / total, 1.0)
            bar = "#" * int(frac * 30)
            line = (
                f"\r[{bar:<30}] {frac:4.0%}  {done / 1e6:,.0f}/{total / 1e6:,.0f} MB  "
                f"{rate:,.1f} MB/s"
            )
        else:
            line = f"\r{done / 1e6:,.0f} MB read  {rate:,.1f} MB/s"
        self.stream.write(line)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()


def _n(count: int, noun: str) -> str:
    """*count* and *noun*, plural unless one."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# How the no-SID reasons of Summary.no_sid_by_protocol read in the table: "{n}" is the count.
_NO_SID_REASON = {
    "unclaimed": "{n} whose first byte no configured protocol claims",
    "no-id": "{n} without an ID in the message",
    "malformed": "{n} malformed",
    "cid-length-unknown": "{n} short headers of unknown CID length",
    "empty-cid": "{n} with an empty CID",
}


def _no_sid(protocol: str, reasons: Mapping[str, int]) -> str:
    """One protocol's part of the table's "without a session ID" line."""
    text = ", ".join(_NO_SID_REASON.get(k, k + " {n}").format(n=v) for k, v in reasons.items())
    return text if protocol == "-" else f"{protocol}: {text}"


def _time(ns: int, origin: int) -> str:
    return format_ns(ns - origin, 6)


def _endpoint(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _flow_line(number: int, flow: Flow, origin: int) -> str:
    proto = flow.protocol or "-"
    if flow.kind == "sid":
        ident = flow.sid or ""
        if len(flow.sids) > 1:
            ident += f" (+{len(flow.sids) - 1} linked)"
    else:
        ident = "(no SID, by 5-tuple)" if not flow.sids else "sids " + ",".join(flow.sids[:3])
        if len(flow.sids) > 3:
            ident += ",..."
    if len(ident) > 44:
        ident = ident[:41] + "..."
    return (
        f"{number:>4}  {proto:<10} {ident:<44} {_time(flow.first_ns, origin):>12} "
        f"{_time(flow.last_ns, origin):>12} {flow.datagrams:>9} {flow.bytes:>12} {flow.paths:>5}"
    )


def render_table(report: FlowReport, out: TextIO) -> None:
    """The readable default output: a summary line, then each flow and its tuples."""
    s = report.summary
    out.write(
        f"{s.capture}: {s.format}, {_n(s.frames, 'frame')}, {_n(s.udp, 'UDP datagram')}, "
        f"{s.with_sid} with a session ID; {_n(s.sid_flows, 'SID flow')}, "
        f"{_n(s.tuple_flows, 'tuple flow')} (configured protocols: "
        f"{', '.join(s.protocols) or 'none'}; grouped by {s.by})\n"
    )
    if s.over_limit:
        out.write(
            f"{_n(s.over_limit, 'datagram')} over the flow limit (--max-flows {s.max_flows}): "
            "counted above, in no flow below\n"
        )
    if s.skipped:
        out.write("skipped: " + ", ".join(f"{k} {v}" for k, v in s.skipped.items()) + "\n")
    if s.no_sid_by_protocol:
        out.write(
            "without a session ID: "
            + "; ".join(_no_sid(p, r) for p, r in s.no_sid_by_protocol.items())
            + "\n"
        )
    if s.reassembly:
        out.write("IP fragments: " + ", ".join(f"{k} {v}" for k, v in s.reassembly.items()) + "\n")
    if not report.flows:
        out.write("no UDP flows\n")
        return
    origin = min(f.first_ns for f in report.flows)
    out.write(
        f"\n{'flow':>4}  {'protocol':<10} {'session ID':<44} {'first (s)':>12} "
        f"{'last (s)':>12} {'datagrams':>9} {'bytes':>12} {'paths':>5}\n"
    )
    for number, flow in enumerate(report.flows, start=1):
        out.write(_flow_line(number, flow, origin) + "\n")
        for t in flow.tuples:
            path = f"{_endpoint(t.src, t.sport)} -> {_endpoint(t.dst, t.dport)}"
            out.write(
                f"{'':6}{path:<55} {_time(t.first_ns, origin):>12} "
                f"{_time(t.last_ns, origin):>12} {t.datagrams:>9} {t.bytes:>12}\n"
            )
    out.write(
        "\npaths: a flow's 5-tuples, the two directions of one counted once; the indented "
        "rows are its tuples, one per direction\n"
    )


def _render_csv(report: FlowReport, out: TextIO) -> None:
    rows = list(iter_rows(report))
    fields = [
        "flow",
        "kind",
        "protocol",
        "sid",
        "ip.src",
        "ipv6.src",
        "udp.srcport",
        "ip.dst",
        "ipv6.dst",
        "udp.dstport",
        "first_seen",
        "last_seen",
        "datagrams",
        "bytes",
        "flow_datagrams",
        "flow_bytes",
    ]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def run(args: argparse.Namespace) -> int:
    """Run ``sidkit flows`` on parsed *args*; returns the exit status."""
    per: dict[str, dict[str, object]] = {}
    for key, value in parse_option_assignments(args.option or ()).items():
        if not isinstance(value, dict):
            raise InputValueError(
                f"--option {key}=...: expected PROTOCOL.NAME=VALUE, as in quic.cid_length=8",
                code="bad-option",
            )
        per[key] = value
    protocols: list[str] | None = None
    if args.protocol:
        protocols = []
        for item in args.protocol:
            for name in item.split(","):
                if name and name not in protocols:
                    default_host().spec(name)  # unknown names: a sidkit error listing known
                    protocols.append(name)
    elif per:
        protocols = list(default_protocols(per))
    limits: dict[str, float] = {}
    for item in args.reassembly or ():
        key, sep, value = item.partition("=")
        if not sep or key not in _REASSEMBLY_KEYS:
            raise InputValueError(
                f"--reassembly {item}: expected KEY=VALUE with KEY one of "
                f"{', '.join(_REASSEMBLY_KEYS)}",
                code="bad-option",
            )
        try:
            limits[key] = float(value) if key.startswith("timeout") else int(value, 0)
        except ValueError:
            raise InputValueError(
                f"--reassembly {item}: {value!r} is not a number", code="bad-option"
            ) from None
    show = args.progress and sys.stderr.isatty()
    bar = _Bar(sys.stderr) if show else None
    captures: list[str] = args.capture
    if "-" in captures and len(captures) > 1:
        raise InputValueError(
            "standard input (-) cannot be read together with other captures", code="bad-source"
        )
    if args.jobs < 1:
        raise InputValueError(f"--jobs {args.jobs}: must be at least 1", code="bad-jobs")
    single = len(captures) == 1 and (captures[0] == "-" or os.path.isfile(captures[0]))
    try:
        if single and args.jobs == 1:
            report = analyze(
                captures[0],
                protocols,
                per,
                by=args.by,
                progress=bar,
                reassembly=limits,
                max_flows=args.max_flows,
            )
        else:
            report = analyze_many(
                captures,
                protocols,
                per,
                by=args.by,
                jobs=args.jobs,
                progress=bar,
                reassembly=limits,
                max_flows=args.max_flows,
            )
    finally:
        if bar is not None:
            bar.close()
    for message in report.summary.errors:
        print(f"sidkit: warning: {message}", file=sys.stderr)
    for message in report.summary.notes:
        print(f"sidkit: note: {message}", file=sys.stderr)
    out = sys.stdout
    try:
        if args.format == "json":
            json.dump(report.to_json(), out, indent=2)
            out.write("\n")
        elif args.format == "csv":
            _render_csv(report, out)
        else:
            render_table(report, out)
        out.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours. Point stdout at devnull
        # so the interpreter's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``flows`` subcommand to the ``sidkit`` parser's subparsers *sub*."""
    p = sub.add_parser(
        "flows",
        help="group a capture's UDP datagrams into flows by session ID",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "capture",
        nargs="+",
        help="pcap or pcapng files, directories of them, glob patterns, or - for standard input",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        metavar="N",
        help="read several captures in N worker processes and merge their reports "
        "(default 1: one pass over the files in order)",
    )
    p.add_argument(
        "-p",
        "--protocol",
        action="append",
        metavar="NAME",
        help="a protocol to extract session IDs for (repeatable or comma-separated; "
        "default: quic, wireguard, dtls with its cid_length)",
    )
    p.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="PROTO.KEY=VALUE",
        help="a plugin option, e.g. quic.cid_length=8 (repeatable)",
    )
    p.add_argument(
        "--max-flows",
        type=int,
        default=DEFAULT_MAX_FLOWS,
        metavar="N",
        help=f"hold at most N flows (default {DEFAULT_MAX_FLOWS:,}, under a gigabyte); "
        "past it, existing flows keep counting and a datagram that would start a new flow "
        "joins none and is counted as over the flow limit",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json", dest="format", action="store_const", const="json", help="JSON on stdout"
    )
    fmt.add_argument(
        "--csv", dest="format", action="store_const", const="csv", help="CSV, one row per tuple"
    )
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (it is only ever drawn on stderr when stderr is a terminal)",
    )
    p.add_argument(
        "--by",
        choices=["sid", "tuple"],
        default="sid",
        help="group by session ID (default) or by 5-tuple only, as the kernel's hash does",
    )
    p.add_argument(
        "--reassembly",
        action="append",
        metavar="KEY=VALUE",
        help="IP fragment reassembly limits (repeatable): max_pending (queues, default 4096), "
        "max_bytes (default 4194304, the kernel's ipfrag_high_thresh), timeout_v4 / timeout_v6 "
        "(seconds of capture time, default 30 / 60), max_dist (ipfrag_max_dist, default 64)",
    )
    p.set_defaults(run=run, format="table")
