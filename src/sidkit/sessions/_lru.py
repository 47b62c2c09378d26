# Strategy: the session table lives in a BPF_MAP_TYPE_LRU_HASH, and "which session does the
# kernel forget when the table is full" is part of what a steering decision depends on. The
# kernel's LRU is not a textbook LRU: it is a CLOCK-like pair of lists (active, inactive) with
# a reference bit per node, rotated a few nodes at a time (kernel/bpf/bpf_lru_list.c). With the
# default common LRU every CPU also caches up to 128 free nodes and steals from the others,
# which makes eviction depend on which CPU ran which update -- not something a test can
# replay. With BPF_F_NO_COMMON_LRU each CPU owns max_entries / num_possible_cpus nodes and one
# list pair and never touches another CPU's: given the CPU of every update, eviction is a
# deterministic function of the operations. This module transliterates that per-CPU path
# (bpf_percpu_lru_pop_free, __bpf_lru_list_rotate, __bpf_lru_list_shrink, push_free) with
# the same circular doubly linked lists, so list order, the rotation cursor and the ref bits
# evolve exactly as the kernel's do. Nothing here knows about sockets or sessions.
"""A replay of the kernel's per-CPU BPF LRU hash map (BPF_F_NO_COMMON_LRU)."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Final, Generic, TypeVar

from sidkit._validate import check_int

#: Most entries a model table holds (nodes are allocated up front, like a preallocated map).
MAX_MODEL_ENTRIES: Final = 1 << 24  # what the live SessionTable accepts
#: Most CPUs a model spreads its free lists over (the kernel's NR_CPUS ceiling is 8192).
MAX_CPUS: Final = 8192

V = TypeVar("V")

ACTIVE: Final = 0
INACTIVE: Final = 1
FREE: Final = 2
#: PERCPU_FREE_TARGET and PERCPU_NR_SCANS (kernel/bpf/bpf_lru_list.c, v4.10+)
PERCPU_FREE_TARGET: Final = 4
PERCPU_NR_SCANS: Final = 4


class _Node:
    __slots__ = ("key", "next", "prev", "ref", "type")

    def __init__(self) -> None:
        self.prev: _Node = self
        self.next: _Node = self
        self.key: Hashable | None = None
        self.ref = False
        self.type = FREE


def _del(node: _Node) -> None:
    node.prev.next = node.next
    node.next.prev = node.prev


def _add(node: _Node, head: _Node) -> None:
    """``list_add``: insert right after *head* (at the list's front)."""
    node.next = head.next
    node.prev = head
    head.next.prev = node
    head.next = node


def _move(node: _Node, head: _Node) -> None:
    _del(node)
    _add(node, head)


class _CpuList:
    """``struct bpf_lru_list``: three list heads, counts of active/inactive, the cursor."""

    def __init__(self, nodes: int) -> None:
        self.heads = (_Node(), _Node(), _Node())
        self.counts = [0, 0]
        self.next_inactive_rotation = self.heads[INACTIVE]
        for _ in range(nodes):  # bpf_percpu_lru_populate
            _add(_Node(), self.heads[FREE])

    def _count(self, kind: int, step: int) -> None:
        if kind < 2:
            self.counts[kind] += step

    def move(self, node: _Node, kind: int) -> None:
        """``__bpf_lru_node_move`` (and, for FREE, the same bookkeeping)."""
        if node.type != kind:
            self._count(node.type, -1)
            self._count(kind, +1)
            node.type = kind
        node.ref = False
        if node is self.next_inactive_rotation:
            self.next_inactive_rotation = node.prev
        _move(node, self.heads[kind])

    def iter_reverse(self, kind: int) -> Iterator[_Node]:
        """``list_for_each_entry_safe_reverse``: tail to front, robust to moving the node."""
        head = self.heads[kind]
        node = head.prev
        while node is not head:
            prev = node.prev
            yield node
            node = prev


class LruHash(Generic[V]):
    """A BPF LRU hash map created with BPF_F_NO_COMMON_LRU on a machine with *cpus* possible
    CPUs: ``max_entries`` is rounded up to a multiple of *cpus* (``htab_map_alloc``) and each
    CPU owns an equal share of the nodes (``bpf_percpu_lru_populate``).

    Kernel-identical with ``kernel/bpf/bpf_lru_list.c`` (per-CPU path: rotate, shrink, pop
    and push free; PERCPU_FREE_TARGET and PERCPU_NR_SCANS 4, Linux 4.10+) and the LRU parts
    of ``kernel/bpf/hashtab.c`` (``htab_lru_map_update_elem``, ``..._delete_elem``, lookups
    setting the reference bit), transcribed from 6.12.117 and held to the live 6.18 kernel by
    tests/sessions (user-space operations from pinned CPUs, and program lookups).

    Operations take the CPU they run on: an SK_REUSEPORT program runs on the CPU that
    processes the datagram, a ``bpf(2)`` update on the calling thread's CPU. ``lookup`` is the
    program's lookup (it sets the node's reference bit); ``peek`` is user space's, which does
    not. ``update`` returns the keys it evicted to find a node -- the kernel takes the node
    before it looks for the key, so replacing an existing key can evict another one.
    """

    def __init__(self, max_entries: int, cpus: int) -> None:
        # Bounded where they enter: the model allocates every node up front, as the kernel's
        # prealloc'd LRU does, so 2**40 entries would not fail, it would exhaust memory.
        check_int(max_entries, 1, MAX_MODEL_ENTRIES, "max_entries")
        check_int(cpus, 1, MAX_CPUS, "cpus")
        self.cpus = cpus
        self.max_entries = -(-max_entries // cpus) * cpus
        per_cpu = self.max_entries // cpus
        self._lists = [_CpuList(per_cpu) for _ in range(cpus)]
        self._where: dict[Hashable, tuple[_Node, int, V]] = {}
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def key_list(self) -> list[Hashable]:
        """Every key, in insertion order of the model (the kernel's walk order differs)."""
        return list(self._where)

    def peek(self, key: Hashable) -> V | None:
        """User-space lookup (``htab_lru_map_lookup_elem_sys``): no reference bit."""
        hit = self._where.get(key)
        return None if hit is None else hit[2]

    def lookup(self, key: Hashable) -> V | None:
        """A program's lookup (``htab_lru_map_lookup_elem`` / its inlined form): sets ref."""
        hit = self._where.get(key)
        if hit is None:
            return None
        hit[0].ref = True
        return hit[2]

    def set_value(self, key: Hashable, value: V) -> None:
        """A program writing through the pointer a lookup returned: no list change at all."""
        node, cpu, _ = self._where[key]
        self._where[key] = (node, cpu, value)

    def update(self, key: Hashable, value: V, cpu: int, *, noexist: bool = False) -> list[Hashable]:
        """``htab_lru_map_update_elem``: pop a node on *cpu* (maybe evicting), then insert.

        Returns the evicted keys. With *noexist* (BPF_NOEXIST) an existing key makes the
        update fail -- after the node was popped, which is then pushed back free; the
        failure is reported as :class:`KeyError`.
        """
        evicted: list[Hashable] = []
        node = self._pop_free(cpu, evicted)
        if node is None:
            raise MemoryError("no free node (the kernel answers ENOMEM)")
        old = self._where.get(key)
        if old is not None and noexist:
            self._push_free(node, cpu)
            raise KeyError(key)
        node.key = key
        if old is not None:
            node.ref = True  # bpf_lru_node_set_ref(&l_new->lru_node)
            self._push_free(old[0], old[1])
        self._where[key] = (node, cpu, value)
        self.evictions += len(evicted)
        return evicted

    def delete(self, key: Hashable) -> bool:
        """``htab_lru_map_delete_elem``: the node goes back to its own CPU's free list."""
        hit = self._where.pop(key, None)
        if hit is None:
            return False
        self._push_free(hit[0], hit[1])
        return True

    def _push_free(self, node: _Node, cpu: int) -> None:
        node.key = None
        self._lists[cpu].move(node, FREE)

    def _del_from_htab(self, node: _Node, evicted: list[Hashable]) -> None:
        key = node.key
        self._where.pop(key, None)
        evicted.append(key)
        node.key = None

    def _pop_free(self, cpu: int, evicted: list[Hashable]) -> _Node | None:
        """``bpf_percpu_lru_pop_free``."""
        lst = self._lists[cpu]
        self._rotate(lst)
        free = lst.heads[FREE]
        if free.next is free:
            self._shrink(lst, PERCPU_FREE_TARGET, evicted)
        if free.next is free:
            return None
        node = free.next
        node.ref = False
        lst.move(node, INACTIVE)
        return node

    def _rotate(self, lst: _CpuList) -> None:
        """``__bpf_lru_list_rotate``: the active list when it outgrows the inactive one, then
        always the inactive list from the cursor."""
        if lst.counts[INACTIVE] < lst.counts[ACTIVE]:
            self._rotate_active(lst)
        self._rotate_inactive(lst)

    def _rotate_active(self, lst: _CpuList) -> None:
        head = lst.heads[ACTIVE]
        first = head.next
        for i, node in enumerate(lst.iter_reverse(ACTIVE), start=1):
            lst.move(node, ACTIVE if node.ref else INACTIVE)
            if i == PERCPU_NR_SCANS or node is first:
                break

    def _rotate_inactive(self, lst: _CpuList) -> None:
        inactive = lst.heads[INACTIVE]
        if inactive.next is inactive:
            return
        last = lst.next_inactive_rotation.next
        if last is inactive:
            last = last.next
        cur = lst.next_inactive_rotation
        nxt = inactive
        i = 0
        while i < PERCPU_NR_SCANS:
            if cur is inactive:
                cur = cur.prev
                continue
            nxt = cur.prev
            if cur.ref:
                lst.move(cur, ACTIVE)
            if cur is last:
                break
            cur = nxt
            i += 1
        lst.next_inactive_rotation = nxt

    def _shrink(self, lst: _CpuList, target: int, evicted: list[Hashable]) -> None:
        """``__bpf_lru_list_shrink``: free unreferenced inactive nodes from the tail (at most
        ``nr_scans`` looked at); if none, force out the tail of inactive (else active)."""
        done = 0
        for i, node in enumerate(lst.iter_reverse(INACTIVE), start=1):
            if node.ref:
                lst.move(node, ACTIVE)
            else:
                self._del_from_htab(node, evicted)
                lst.move(node, FREE)
                done += 1
                if done == target:
                    break
            if i == PERCPU_NR_SCANS:
                break
        if done:
            return
        kind = INACTIVE if lst.heads[INACTIVE].next is not lst.heads[INACTIVE] else ACTIVE
        for node in lst.iter_reverse(kind):
            self._del_from_htab(node, evicted)
            lst.move(node, FREE)
            return
