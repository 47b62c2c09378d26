"""Helpers shared by the live session-table tests (not a test module)."""

from __future__ import annotations

import os


def pin_lab_to_one_cpu() -> int:
    """Pin this (lab server) process and the client agent it forked to one allowed CPU and
    return that CPU. The tables use BPF_F_NO_COMMON_LRU: each CPU evicts from its own list,
    and a datagram is processed on the sender's CPU on a veth pair, so with both processes
    on one CPU every update happens on it and the model is told which."""
    cpu = min(os.sched_getaffinity(0))
    me = os.getpid()
    os.sched_setaffinity(0, {cpu})
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            os.sched_setaffinity(int(entry), {cpu})
    return cpu
