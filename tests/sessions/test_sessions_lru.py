"""The per-CPU LRU replay (sidkit.sessions.LruHash) against the kernel's own LRU hash map.

The oracle is a BPF_MAP_TYPE_LRU_HASH created with BPF_F_NO_COMMON_LRU in the running
kernel: random sequences of updates (BPF_ANY and BPF_NOEXIST) and deletes, each issued from a
thread pinned to a chosen CPU, and after every operation the kernel's set of keys must be the
model's. Lookups from user space do not set the reference bit; the program-side lookups that
do are covered by the live session-table tests (test_sessions_live.py).
"""

from __future__ import annotations

import errno
import os
import random
import struct

import pytest
from conftest import oracle_unavailable

from sidkit._errors import KernelOracleError
from sidkit.bpf import _syscall
from sidkit.sessions import LruHash, possible_cpus


def test_fifth_insert_into_four_nodes_frees_four() -> None:
    """Without references, a full CPU list frees PERCPU_FREE_TARGET (4) inactive nodes at
    once (__bpf_lru_list_shrink): the batch eviction that makes this 'approximately LRU'."""
    lru: LruHash[int] = LruHash(4, 1)
    for k in range(4):
        assert lru.update(k, k, 0) == []
    assert lru.update(4, 4, 0) == [0, 1, 2, 3]
    assert lru.key_list() == [4]


def test_referenced_nodes_survive_a_shrink() -> None:
    lru: LruHash[int] = LruHash(4, 1)
    for k in range(4):
        lru.update(k, k, 0)
    lru.lookup(1)  # a program's lookup sets the reference bit
    evicted = lru.update(4, 4, 0)
    assert 1 not in evicted and 1 in lru
    assert lru.peek(1) == 1


def test_capacity_is_split_between_cpus() -> None:
    lru: LruHash[int] = LruHash(5, 2)
    assert lru.max_entries == 6  # rounded up to a multiple of the CPUs, 3 each
    for k in range(3):
        lru.update(k, k, 0)
    lru.update(10, 10, 1)
    assert len(lru) == 4 and lru.update(3, 3, 0)  # CPU 0 is full: it evicts its own keys
    assert 10 in lru


def _kernel_lru() -> None:
    reason = _syscall.bpf_available()
    if reason:
        oracle_unavailable(f"bpf(2): {reason}")


@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(6))
def test_user_space_operations_match_the_kernel(seed: int) -> None:
    _kernel_lru()
    rng = random.Random(seed)
    cpus = possible_cpus()
    allowed = sorted(os.sched_getaffinity(0))
    max_entries = rng.choice([2, 4, 8, 13, 32])
    model: LruHash[int] = LruHash(max_entries, cpus)
    before = os.sched_getaffinity(0)
    with _syscall.Map(
        _syscall.BPF_MAP_TYPE_LRU_HASH, 4, 4, max_entries, _syscall.BPF_F_NO_COMMON_LRU, "t_lru"
    ) as m:
        try:
            for step in range(400):
                cpu = rng.choice(allowed)
                os.sched_setaffinity(0, {cpu})
                key = rng.randrange(3 * max_entries)
                kb = struct.pack("=I", key)
                roll = rng.random()
                if roll < 0.15:
                    ok_kernel = True
                    try:
                        m.delete(kb)
                    except KernelOracleError as exc:
                        assert exc.errno == errno.ENOENT
                        ok_kernel = False
                    assert model.delete(key) == ok_kernel
                else:
                    noexist = roll < 0.3
                    flag = _syscall.BPF_NOEXIST if noexist else _syscall.BPF_ANY
                    try:
                        m.update(kb, struct.pack("=I", step), flag)
                        kernel_ok = True
                    except KernelOracleError as exc:
                        assert exc.errno == errno.EEXIST
                        kernel_ok = False
                    try:
                        model.update(key, step, cpu, noexist=noexist)
                        model_ok = True
                    except KeyError:
                        model_ok = False
                    assert kernel_ok == model_ok, step
                kernel_keys = {struct.unpack("=I", k)[0] for k in m.keys()}  # noqa: SIM118
                assert kernel_keys == set(model.key_list()), (step, cpu)
        finally:
            os.sched_setaffinity(0, before)
    assert model.evictions > 0  # the sequence did run the table full
