# Strategy: stateless SID steering keeps a session on its socket only while the reuseport
# group never changes; a crash, a deploy or a scale change moves sessions. This family adds
# the state the seed wanted the kernel to keep, in the one place it works -- the
# SK_REUSEPORT program, after NAT: a table SID -> socket (by SO_COOKIE) in LRU hash maps with
# a timeout, and socket *generations* so new sessions go to the newest server while known
# ones stay where they are. _spec says what the table is keyed by; _program generates the
# program from the steering IR; _table owns the live maps (generations, pinning, handover
# through bpffs); _lru replays the kernel's per-CPU LRU and _model the whole table, so every
# live datagram is predicted (tests/sessions).
"""SID session tables with socket generations: the live eBPF table and its model."""

from __future__ import annotations

from sidkit.sessions._lru import LruHash
from sidkit.sessions._model import Decision, SessionTableModel
from sidkit.sessions._program import COUNTERS, generate
from sidkit.sessions._spec import KEY_SIZE, MAX_SID, SessionError, SessionSpec
from sidkit.sessions._table import (
    Entry,
    SessionTable,
    kernel_clock_ns,
    mount_bpffs,
    possible_cpus,
)

__all__ = [
    "COUNTERS",
    "KEY_SIZE",
    "MAX_SID",
    "Decision",
    "Entry",
    "LruHash",
    "SessionError",
    "SessionSpec",
    "SessionTable",
    "SessionTableModel",
    "generate",
    "kernel_clock_ns",
    "mount_bpffs",
    "possible_cpus",
]
