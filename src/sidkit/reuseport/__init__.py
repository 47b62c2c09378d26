# Strategy: a SO_REUSEPORT group as the kernel keeps it, replayable operation by operation
# (join, close, connect, setsockopt, program attachment) so that select() can say which member
# gets each datagram in any kernel era. The per-era selection forms are plain functions below
# the eras table (sidkit.kernel._reuseport); the model here sits above the table and asks it.
# Port holds every socket of a port (groups, lone and connected sockets, wildcard and specific
# binds, IPv4/IPv6/dual-stack, the hash chains' order) and answers which socket receives a
# datagram; Group is the piece inside it. HashRecorder reads the kernel's own reuseport hash,
# the input user space cannot see.
"""Model of a SO_REUSEPORT group and of the kernel's socket selection in every era."""

from __future__ import annotations

from sidkit.reuseport._group import DROP, Group, Member, SeedPatch
from sidkit.reuseport._port import Port
from sidkit.reuseport._recorder import HashRecorder

__all__ = ["DROP", "Group", "HashRecorder", "Member", "Port", "SeedPatch"]
