# Strategy: the session table's semantics in plain Python, operation for operation what the
# program and SessionTable do to the maps, so every live datagram can be predicted: the two
# LRU tables are sidkit.sessions.LruHash replays of the kernel's per-CPU LRU (given the CPU),
# time is a number the caller passes (the program's bpf_ktime_get_coarse_ns is
# CLOCK_MONOTONIC_COARSE; tests read the same clock, sidkit.sessions.kernel_clock_ns),
# sockets are names that are open or closed, and generations are lists of names. When the
# program selects nothing (no key, empty working generation, a dead socket in the pick
# list) the kernel's hash decides: the model then asks the reuseport model
# (sidkit.reuseport.Group) it sits on, given the flow hash.
"""The session table model: generations, LRU tables and timeouts, datagram by datagram."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Final, Literal

import attrs

from sidkit._errors import InputTypeError
from sidkit._validate import as_bytes, check_int, show
from sidkit.hashing import reciprocal_scale
from sidkit.reuseport import Group, Member
from sidkit.sessions._lru import MAX_MODEL_ENTRIES, LruHash
from sidkit.sessions._program import COUNTERS
from sidkit.sessions._spec import KEY_SIZE, SessionError, SessionSpec

__all__ = ["Decision", "SessionTableModel"]

Outcome = Literal["hit", "miss", "expired", "stale", "no_key", "pick_failed", "select_failed"]


@attrs.frozen
class _Value:
    sock: Hashable
    last_ns: int
    generation: int


@attrs.frozen
class Decision:
    """What the table did with one datagram: the socket it selected (None: the kernel's hash
    decides), what happened (``hit``, ``miss``, ``expired``, ``stale``, ``no_key``,
    ``pick_failed``, ``select_failed``) and the keys the recent table evicted meanwhile."""

    sock: Hashable | None
    outcome: Outcome
    pinned: bool = False
    evicted: tuple[bytes, ...] = ()


_CPU0: Final = 0


class SessionTableModel:
    """The model of :class:`sidkit.sessions.SessionTable` (same constructor arguments; *cpus*
    is ``num_possible_cpus()`` of the machine it predicts)."""

    def __init__(
        self,
        spec: SessionSpec,
        *,
        capacity: int = 4096,
        pinned_capacity: int | None = None,
        generations: int = 16,
        per_generation: int = 64,
        cpus: int = 1,
        group: Group | None = None,
    ) -> None:
        if not isinstance(spec, SessionSpec):
            raise InputTypeError(f"spec must be a SessionSpec, not {type(spec).__name__}")
        check_int(generations, 1, 1 << 16, "generations")
        check_int(per_generation, 1, 1 << 16, "per_generation")
        if pinned_capacity is not None:
            check_int(pinned_capacity, 1, MAX_MODEL_ENTRIES, "pinned_capacity")
        self.spec = spec
        self.generations = generations
        self.per_generation = per_generation
        self.recent: LruHash[_Value] = LruHash(capacity, cpus)
        self.pinned: LruHash[_Value] = LruHash(
            capacity if pinned_capacity is None else pinned_capacity, cpus
        )
        self.gens: dict[int, list[Hashable]] = {}
        self.working = 0
        self.n = 0  # the config's n: stays as written when a working socket merely closes
        self.closed: set[Hashable] = set()
        self.in_hash: set[Hashable] = set()  # sockets in the SOCKHASH
        self.group = group
        self.counters = dict.fromkeys(COUNTERS, 0)

    # --- what the application does -------------------------------------------------------------

    def add_generation(self, socks: Sequence[Hashable], gen: int | None = None) -> int:
        if gen is None:
            for step in range(1, self.generations + 1):
                cand = (self.working + step) % self.generations
                if not self.gens.get(cand):
                    gen = cand
                    break
            else:
                raise SessionError("every generation is in use; retire one first")
        if self.gens.get(gen):
            raise SessionError(f"generation {gen} is in use; retire it first")
        self.gens[gen] = list(socks)
        self.in_hash.update(socks)
        return gen

    def set_working(self, gen: int) -> None:
        if not self.gens.get(gen):
            raise SessionError(f"generation {gen} has no sockets")
        self.working, self.n = gen, len(self.gens[gen])

    def close(self, sock: Hashable) -> None:
        """The socket closed: the SOCKHASH forgets it (its slot still names it)."""
        self.closed.add(sock)
        self.in_hash.discard(sock)

    def remove_socket(self, gen: int, sock: Hashable) -> None:
        members = self.gens[gen]
        i = members.index(sock)
        members[i] = members[-1]
        members.pop()
        if gen == self.working:
            self.n = len(members)
        self.in_hash.discard(sock)

    def sessions(self) -> list[tuple[bytes, _Value, bool]]:
        out = [(k, self.pinned.peek(k), True) for k in self.pinned.key_list()]
        out += [(k, self.recent.peek(k), False) for k in self.recent.key_list()]
        return [(k, v, p) for k, v, p in out if v is not None]  # type: ignore[misc]

    def draining(self, gen: int, now: int) -> list[bytes]:
        return [
            k
            for k, v, _p in self.sessions()
            if v.generation == gen and now - v.last_ns <= self.spec.timeout_ns
        ]

    def retire(self, gen: int, *, now: int, force: bool = False) -> int:
        if gen == self.working:
            raise SessionError(f"generation {gen} is the working one")
        if self.draining(gen, now) and not force:
            raise SessionError(f"sessions are still on generation {gen}")
        deleted = 0
        for k, v, pinned in self.sessions():
            if v.generation == gen:
                (self.pinned if pinned else self.recent).delete(k)
                deleted += 1
        for s in self.gens.pop(gen, []):
            self.in_hash.discard(s)
        return deleted

    def pin(self, key: bytes, now: int, sock: Hashable | None = None, *, cpu: int = _CPU0) -> None:
        key = as_bytes(key, "key")
        if len(key) != KEY_SIZE:
            raise SessionError(f"a session key is {KEY_SIZE} bytes, got {len(key)}")
        check_int(now, 0, (1 << 64) - 1, "now")
        check_int(cpu, 0, self.recent.cpus - 1, "cpu")
        if sock is None:
            v = self.recent.peek(key)
            if v is None:
                raise SessionError("the session is not in the recent table; name its socket")
            sock, gen = v.sock, v.generation
        else:
            gens = [g for g, m in self.gens.items() if sock in m]
            if not gens:
                raise SessionError(f"socket {show(sock)} is in no generation")
            gen = gens[0]
        self.pinned.update(key, _Value(sock, now, gen), cpu)
        self.recent.delete(key)

    def unpin(self, key: bytes) -> bool:
        return self.pinned.delete(key)

    def end(self, key: bytes) -> bool:
        a = self.pinned.delete(key)
        b = self.recent.delete(key)
        return a or b

    # --- what the program does ------------------------------------------------------------------

    def _alive(self, sock: Hashable) -> bool:
        return sock in self.in_hash and sock not in self.closed

    def _pick(self, key: bytes) -> Hashable | Literal[False] | None:
        """The working generation's socket for *key*; None if nothing is picked, False if the
        picked socket cannot be selected (its slot names a closed socket)."""
        members = self.gens.get(self.working, [])
        index = self.spec.pick(key, self.n)
        if index is None or index >= len(members):
            return None
        sock = members[index]
        return sock if self._alive(sock) else False

    def deliver(
        self,
        payload: bytes,
        now: int,
        *,
        src: tuple[str, int] | None = None,
        cpu: int = _CPU0,
        hash: int | None = None,
    ) -> Decision:
        """One datagram through the program at time *now* (ns) on *cpu*.

        When the program selects nothing the kernel's hash decides: with *hash* given and a
        reuseport :class:`~sidkit.reuseport.Group` attached to the model, the decision's
        socket is the group's choice; otherwise it is None.
        """
        c = self.counters
        c["datagrams"] += 1
        if self.spec.stateless:
            return self._stateless(payload, hash)
        key = self.spec.key_of(payload, src)
        if key is None:
            c["no_key"] += 1
            return self._fallback("no_key", hash)
        for table, pinned in ((self.pinned, True), (self.recent, False)):
            entry = table.lookup(key)
            if entry is None:
                continue
            if now - entry.last_ns > self.spec.timeout_ns:
                c["expired"] += 1
                outcome: Outcome = "expired"
            elif self._alive(entry.sock):
                table.set_value(key, attrs.evolve(entry, last_ns=now))
                c["hit"] += 1
                if pinned:
                    c["pinned_hit"] += 1
                return Decision(entry.sock, "hit", pinned)
            else:
                c["stale"] += 1
                outcome = "stale"
            picked = self._pick(key)
            if picked is None:
                c["pick_failed"] += 1
                return self._fallback("pick_failed", hash)
            if picked is False:
                c["select_failed"] += 1
                return self._fallback("select_failed", hash)
            table.set_value(key, _Value(picked, now, self.working))
            return Decision(picked, outcome, pinned)
        c["miss"] += 1
        picked = self._pick(key)
        if picked is None:
            c["pick_failed"] += 1
            return self._fallback("pick_failed", hash)
        if picked is False:
            c["select_failed"] += 1
            return self._fallback("select_failed", hash)
        evicted: list[Hashable] = []
        if self.spec.record == "first-packet":
            try:
                evicted = self.recent.update(key, _Value(picked, now, self.working), cpu)
                c["recorded"] += 1
            except MemoryError:
                c["record_failed"] += 1
        return Decision(picked, "miss", False, tuple(evicted))  # type: ignore[arg-type]

    def _stateless(self, payload: bytes, hash: int | None) -> Decision:
        """The cookie and noop dissectors: a live cookie's socket, else a new flow."""
        c = self.counters
        key = self.spec.key_of(payload)
        outcome: Outcome = "no_key"
        if key is None:
            c["no_key"] += 1
        else:
            slot = self.spec.raw_pick(key)
            gen, index = divmod(slot, self.per_generation)
            members = self.gens.get(gen, []) if gen < self.generations else []
            if index < len(members):
                sock = members[index]
                if self._alive(sock):
                    c["hit"] += 1
                    return Decision(sock, "hit")
                c["stale"] += 1
                outcome = "stale"
            else:
                c["miss"] += 1
                outcome = "miss"
        if hash is None:
            raise SessionError("a new flow is picked by the kernel's flow hash: pass hash=")
        members = self.gens.get(self.working, [])
        if self.n == 0:
            c["pick_failed"] += 1
            return self._fallback(outcome, hash)
        sock = members[reciprocal_scale(hash, self.n)]
        if not self._alive(sock):
            c["select_failed"] += 1
            return self._fallback(outcome, hash)
        return Decision(sock, outcome)

    def _fallback(self, outcome: Outcome, hash: int | None) -> Decision:
        sock: Hashable | None = None
        if self.group is not None and hash is not None:
            m = self.group.select(hash)
            sock = m.name if isinstance(m, Member) else None
        return Decision(sock, outcome)
