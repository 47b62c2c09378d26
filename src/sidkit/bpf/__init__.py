# Strategy: the bottom layer of everything that touches a kernel's BPF. Pure Python and
# importable anywhere: assemblers and interpreters with the kernel's semantics for classic BPF
# (cbpf) and SK_REUSEPORT eBPF (ebpf), which the eras table and the models use; the bpf(2)
# system call through ctypes (_syscall, private: test and lab infrastructure); and throw-away
# network namespaces for live experiments (netns). Nothing here imports another sidkit family,
# and the package imports no submodule itself, so ``sidkit.bpf.cbpf`` never pulls in ctypes
# or pyroute2.
"""BPF assemblers and interpreters, the bpf(2) system call, and network-namespace labs.

Submodules: :mod:`sidkit.bpf.cbpf` (classic BPF), :mod:`sidkit.bpf.ebpf` (SK_REUSEPORT
eBPF), :mod:`sidkit.bpf.netns` (throw-away namespaces for live-kernel experiments).
"""

from __future__ import annotations

__all__ = ["cbpf", "ebpf", "netns"]
