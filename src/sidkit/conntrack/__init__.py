# Strategy: a model of nf_conntrack's table, faithful where placement and eviction are decided
# (bucket = reciprocal_scale of the era's conntrack hash, every entry linked by both
# directions, unconfirmed entries, early_drop, the GC worker), with the seed's SID zones on
# top: a zone that keys entries by an application-layer session ID instead of the tuple, and
# the NAT cost of doing so returned as data. Time is never read; every call takes now=.
# Private modules, lowest first: _types (entries, results, timeouts), _rules (per-entry
# tracker, NAT and migration rules), _hash (the era's hash, bound to a table), _chains (hash
# chains, linking, the lookup walk), _lifecycle (allocation, early drop, confirmation, GC),
# _sidzone (SID keys and migrations), _table (the Table, the per-packet path).
"""A conntrack-style flow table with kernel-identical bucket placement, and SID zones."""

from __future__ import annotations

from sidkit.conntrack._lifecycle import MIN_CHAINLEN, NF_CT_EVICTION_RANGE
from sidkit.conntrack._sidzone import Validator
from sidkit.conntrack._table import DEFAULT_HTABLE_SIZE, DEFAULT_ZONE, Table
from sidkit.conntrack._types import (
    GENERIC_TIMEOUT,
    Ctinfo,
    Entry,
    MigrationCost,
    MigrationPolicy,
    MigrationWork,
    Nat,
    PacketResult,
    Stats,
    Status,
    TableFullError,
    UdpTimeouts,
    UnsupportedProtocolError,
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
