# Strategy: kernel eras are data. ERAS (sidkit.kernel._eras) is the one table that says which
# algorithm each kernel function uses from which release on; a KernelProfile (a version plus
# host traits: byte order, BITS_PER_LONG) resolves a function name to the Python callable in
# force. Layering: the table sits above the forms it names (sidkit.hashing, the per-era
# reuseport selection forms in sidkit.kernel._reuseport, the BPF interpreters) and below
# every model that asks it (reuseport groups, conntrack, conformance).
"""Kernel versions, the eras table, and kernel profiles."""

from __future__ import annotations

from sidkit.kernel._eras import ABSENT, ERAS, NOT_MODELLED, Era
from sidkit.kernel._flowhash import udp_flow_hash, udp_flow_hash_many
from sidkit.kernel._profile import KernelProfile, profile
from sidkit.kernel._secrets import Seed, secret_source
from sidkit.kernel._version import LATEST, KernelVersion

__all__ = [
    "ABSENT",
    "ERAS",
    "LATEST",
    "NOT_MODELLED",
    "Era",
    "KernelProfile",
    "KernelVersion",
    "Seed",
    "profile",
    "secret_source",
    "udp_flow_hash",
    "udp_flow_hash_many",
]
