# Strategy: one pass over a capture, holding only per-flow and per-tuple counters, so memory
# grows with flows, never with datagrams. _capture finds the records of pcap/pcapng, _decode
# takes each frame down to UDP (fragments put back together by _reassembly), _read runs the
# loops that feed the analyzer, and the analyzer
# (_analyzer, state in _state) groups datagrams into flows by session ID through the plugins
# of sidkit.extract, linking IDs the traffic proves to be one session; _report holds the result.
# _many reads many captures as one, sequentially or in parallel with mergeable partials.
"""Group a capture's UDP datagrams into flows by session ID (``sidkit flows``)."""

from __future__ import annotations

from sidkit.flows._analyzer import FlowAnalyzer, analyze, sid_key
from sidkit.flows._errors import CaptureError, NotACaptureError, UnsupportedLinkTypeError
from sidkit.flows._many import PartialReport, analyze_many, expand_captures, merge_partials
from sidkit.flows._protocols import DEFAULT_PROTOCOLS, default_protocols
from sidkit.flows._reassembly import Fragment, Reassembled, Reassembler
from sidkit.flows._report import Flow, FlowReport, Summary, TupleStats, format_ns, iter_rows

__all__ = [
    "DEFAULT_PROTOCOLS",
    "CaptureError",
    "Flow",
    "FlowAnalyzer",
    "FlowReport",
    "Fragment",
    "NotACaptureError",
    "PartialReport",
    "Reassembled",
    "Reassembler",
    "Summary",
    "TupleStats",
    "UnsupportedLinkTypeError",
    "analyze",
    "analyze_many",
    "default_protocols",
    "expand_captures",
    "format_ns",
    "iter_rows",
    "merge_partials",
    "sid_key",
]
