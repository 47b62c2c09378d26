# Strategy: a model of nf_conntrack's table, faithful where placement and eviction are decided
# (bucket = reciprocal_scale of the era's conntrack hash, every entry linked by both
# directions, unconfirmed entries, early_drop, the GC worker), with the seed's SID zones on
# top: a zone that keys entries by an application-layer session ID instead of the tuple, and
# the NAT cost of doing so returned as data. Time is never read; every call takes now=.
# Private modules: _types (entries, results, timeouts), _rules (migration and NAT rules),
# _table (the table).
"""A conntrack-style flow table with kernel-identical bucket placement, and SID zones."""

from __future__ import annotations

from sidkit.conntrack._table import (
    DEFAULT_HTABLE_SIZE,
    DEFAULT_ZONE,
    GENERIC_TIMEOUT,
    MIN_CHAINLEN,
    NF_CT_EVICTION_RANGE,
    Ctinfo,
    Entry,
    MigrationCost,
    MigrationPolicy,
    MigrationWork,
    Nat,
    PacketResult,
    Stats,
    Status,
    Table,
    TableFullError,
    UdpTimeouts,
    UnsupportedProtocolError,
    Validator,
    Verdict,
)

__all__ = [
    "DEFAULT_HTABLE_SIZE",
    "DEFAULT_ZONE",
    "GENERIC_TIMEOUT",
    "MIN_CHAINLEN",
    "NF_CT_EVICTION_RANGE",
    "Ctinfo",
    "Entry",
    "MigrationCost",
    "MigrationPolicy",
    "MigrationWork",
    "Nat",
    "PacketResult",
    "Stats",
    "Status",
    "Table",
    "TableFullError",
    "UdpTimeouts",
    "UnsupportedProtocolError",
    "Validator",
    "Verdict",
]
