# Strategy: one pass over a capture, holding only per-flow and per-tuple counters, so memory
# grows with flows, never with datagrams. _capture reads pcap/pcapng and decodes link, IP and
# UDP layers; the analyzer groups datagrams into flows by session ID (through the plugins of
# sidkit.extract), linking IDs the traffic proves to be one session.
"""Group a capture's UDP datagrams into flows by session ID (``sidkit flows``)."""

from __future__ import annotations

from sidkit.flows._analyzer import (
    DEFAULT_PROTOCOLS,
    CaptureError,
    Flow,
    FlowAnalyzer,
    FlowReport,
    NotACaptureError,
    Summary,
    TupleStats,
    UnsupportedLinkTypeError,
    analyze,
    default_protocols,
    format_ns,
    iter_rows,
    sid_key,
)

__all__ = [
    "DEFAULT_PROTOCOLS",
    "CaptureError",
    "Flow",
    "FlowAnalyzer",
    "FlowReport",
    "NotACaptureError",
    "Summary",
    "TupleStats",
    "UnsupportedLinkTypeError",
    "analyze",
    "default_protocols",
    "format_ns",
    "iter_rows",
    "sid_key",
]
