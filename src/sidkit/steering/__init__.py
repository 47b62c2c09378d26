# Strategy: a steering policy is stated once -- where the session ID sits and how it becomes a
# socket index -- and everything else is derived from it: the Python model (policy.select),
# one intermediate form (_ir) lowered to classic BPF and to SK_REUSEPORT eBPF (_policy), and
# the attachment to a live group through bpf(2) and setsockopt (_attach). The tests hold the
# model, both interpreters and the live kernel to the same answer.
"""Session-ID steering policies and their compilation to classic BPF and SK_REUSEPORT eBPF."""

from __future__ import annotations

from sidkit.steering._attach import (
    PartialGroupWarning,
    SocketLike,
    SteeringHandle,
    attach,
    attach_sk_reuseport,
    detach_program,
)
from sidkit.steering._policy import (
    AnyOf,
    FixedOffset,
    Guard,
    IndexField,
    Method,
    SteeringError,
    SteeringPolicy,
    compile_cbpf,
    compile_ebpf,
    mint_cid,
)

__all__ = [
    "AnyOf",
    "FixedOffset",
    "Guard",
    "IndexField",
    "Method",
    "PartialGroupWarning",
    "SocketLike",
    "SteeringError",
    "SteeringHandle",
    "SteeringPolicy",
    "attach",
    "attach_sk_reuseport",
    "compile_cbpf",
    "compile_ebpf",
    "detach_program",
    "mint_cid",
]
