# The QUIC-LB load balancer's forwarding order (draft-ietf-quic-load-balancers-21 section 4.2)
# as a small state machine: (1) a routable DCID goes to its server; (2) a long header matching
# the (4-tuple, SCID) table, (3) a DCID in the DCID table, (4) a 4-tuple in the 4-tuple table
# follow the recorded decision; (5) otherwise the fallback algorithm decides and the decision
# is recorded. Traffic never raises: a packet too mangled to parse, a DCID of an unknown config,
# a server ID with no server all end in steps 2-5, and `counts` says which and why. Time is an
# argument (`now`, seconds), never read from a clock, so tests drive the idle timeouts. Tables
# are bounded LRU dictionaries; what they evict is counted too.
"""QUIC-LB forwarding state machine (private; public names in sidkit.quiclb)."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Literal

import attrs

from sidkit._errors import InputTypeError, InputValueError
from sidkit._validate import as_bytes, as_list, check_finite, check_int, check_uint, show
from sidkit.hashing import jhash, reciprocal_scale
from sidkit.quiclb._core import (
    LENGTH_MASK,
    UNROUTABLE_CONFIG_ID,
    Config,
    ConfigError,
    classify,
    config_table,
)

__all__ = ["Balancer", "Decision", "ServerPool", "Step", "hash_fallback"]

Step = Literal["cid", "long-header-table", "dcid-table", "four-tuple-table", "fallback"]
Table = Literal["long-header", "dcid", "four-tuple"]
TABLES: tuple[Table, ...] = ("long-header", "dcid", "four-tuple")
LONG_HEADER = 0x80


def _servers(value: object) -> dict[bytes, str]:
    if not isinstance(value, Mapping):
        raise InputTypeError(f"servers must be a mapping, not {type(value).__name__}")
    out: dict[bytes, str] = {}
    for sid, target in value.items():
        if not isinstance(target, str):
            raise InputTypeError(f"server targets must be str, not {type(target).__name__}")
        out[as_bytes(sid, "server ID")] = target
    return out


def _check_config(value: object) -> None:
    if not isinstance(value, Config):
        raise InputTypeError(f"config must be a quiclb.Config, not {type(value).__name__}")


@attrs.frozen
class ServerPool:
    """One configuration and its server ID allocation: "Load Balancer configurations include a
    mapping of server IDs to forwarding addresses" (draft-21 section 5.1). Each configuration
    has its own allocation."""

    config: Config = attrs.field(validator=lambda _i, _a, v: _check_config(v))
    servers: Mapping[bytes, str] = attrs.field(converter=_servers)

    def __attrs_post_init__(self) -> None:
        size = self.config.server_id_length
        for sid in self.servers:
            if len(sid) != size:
                raise ConfigError(
                    f"server ID {sid.hex()} is {len(sid)} octets; config {self.config.config_id} "
                    f"allocates {size}"
                )


@attrs.frozen
class Decision:
    """Where one datagram goes and why.

    ``step`` is the first step of the forwarding order that decided; ``reason`` is why the
    DCID was not routable (``routable`` when step is ``cid``): a :class:`CidRoute` reason,
    ``unknown-server`` (decodable, but no server has that ID), or ``malformed`` (no DCID could
    be read from the header).
    """

    target: str
    step: Step
    reason: str
    server_id: bytes | None = None


def hash_fallback(targets: Sequence[str], seed: int = 0) -> Callable[[Hashable], str]:
    """A baseline fallback algorithm: "takes only the 4-tuple as an input and outputs a routing
    decision" (draft-21 section 4.3.1), here ``reciprocal_scale(jhash(repr(4-tuple)), n)``.

    Any deterministic function of the 4-tuple meets the draft; this one is reproducible across
    runs and machines, which a model needs.
    """
    pool: tuple[str, ...] = tuple(as_list(targets, "fallback targets", "a sequence of str"))
    check_uint(seed, 32, "seed")
    if not pool or not all(isinstance(t, str) for t in pool):
        raise InputValueError("fallback targets must be a non-empty sequence of str")

    def choose(four_tuple: Hashable) -> str:
        key = repr(four_tuple).encode("utf-8", "backslashreplace")
        return pool[reciprocal_scale(jhash(key, seed), len(pool))]

    return choose


class _Table:
    """A bounded table of routing decisions with per-entry idle timers."""

    __slots__ = ("_entries", "size", "timeout")

    def __init__(self, size: int, timeout: float) -> None:
        self._entries: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()
        self.size = size
        self.timeout = timeout

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now: float) -> tuple[str | None, bool]:
        """(target or None, expired?) and refresh the entry's timer on a hit."""
        entry = self._entries.get(key)
        if entry is None:
            return None, False
        target, expires = entry
        if now >= expires:
            del self._entries[key]
            return None, True
        self._entries[key] = (target, now + self.timeout)
        self._entries.move_to_end(key)
        return target, False

    def put(self, key: Hashable, target: str, now: float) -> bool:
        """Record *target*; True when the oldest entry had to go to make room."""
        self._entries[key] = (target, now + self.timeout)
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
            return True
        return False


# (long header?, DCID or None, SCID or None): a plain tuple, built once per datagram.
_Header = tuple[bool, bytes | None, bytes | None]


class Balancer:
    """A QUIC-LB load balancer: :meth:`route` one datagram at a time.

    *pools* are the active configurations with their server IDs. *fallback_targets* feed the
    default fallback (:func:`hash_fallback`; by default every server of every pool), or
    *fallback* replaces it with any function of the 4-tuple. *self_encoded_lengths* says that
    every server self-encodes CID lengths, which lets the balancer read short-header DCIDs of
    any length and apply the optional length checks of section 4.1. *record* names the tables
    a fallback decision is written to (default: all three of section 4.3); each holds at most
    *table_size* entries and forgets an entry idle for *idle_timeout* seconds.

    ``counts`` tallies ``step:<step>``, ``unroutable:<reason>``, ``expired:<table>`` and
    ``evicted:<table>``.
    """

    def __init__(
        self,
        pools: Iterable[ServerPool],
        fallback_targets: Sequence[str] | None = None,
        *,
        fallback: Callable[[Hashable], str] | None = None,
        self_encoded_lengths: bool = False,
        record: Iterable[str] = TABLES,
        table_size: int = 65536,
        idle_timeout: float = 30.0,
    ) -> None:
        pool_list = as_list(pools, "pools", "a collection of ServerPool")
        for pool in pool_list:
            if not isinstance(pool, ServerPool):
                raise InputTypeError(f"pools must be ServerPool, not {type(pool).__name__}")
        pool_objs = [p for p in pool_list if isinstance(p, ServerPool)]
        self._configs = config_table(p.config for p in pool_objs)
        self._servers = {p.config.config_id: p.servers for p in pool_objs}
        if fallback is None:
            if fallback_targets is None:
                fallback_targets = sorted({t for p in pool_objs for t in p.servers.values()})
            fallback = hash_fallback(fallback_targets)
        elif not callable(fallback):
            raise InputTypeError("fallback must be callable")
        self._fallback = fallback
        if not isinstance(self_encoded_lengths, bool):
            raise InputTypeError("self_encoded_lengths must be a bool")
        self.self_encoded_lengths = self_encoded_lengths
        names = as_list(record, "record", "a collection of table names")
        for name in names:
            if not isinstance(name, str) or name not in TABLES:
                raise InputValueError(
                    f"record must name tables among {TABLES}, got {show(name)}",
                    code="bad-table",
                )
        self.record = frozenset(str(n) for n in names)
        check_int(table_size, 1, 1 << 32, "table_size")
        timeout = check_finite(idle_timeout, "idle_timeout")
        if not timeout > 0:
            raise InputValueError(
                f"idle_timeout must be positive, got {show(idle_timeout)}", code="out-of-range"
            )
        self._tables = {name: _Table(table_size, timeout) for name in TABLES}
        self.counts: Counter[str] = Counter()

    def table_sizes(self) -> dict[str, int]:
        """Entries currently held per table."""
        return {name: len(table) for name, table in self._tables.items()}

    def _parse(self, data: bytes) -> _Header:
        """DCID and (long header) SCID, as far as the octets go; never raises.

        A short header does not state its DCID length: the balancer takes the configured CID
        length of the config its rotation bits name, or, for an unknown or unroutable config
        (whose CIDs MUST self-encode their length, section 3.2) and whenever all servers
        self-encode, the length in the first CID octet.
        """
        if not data:
            return (False, None, None)
        if data[0] & LONG_HEADER:
            # Long header (RFC 8999 section 5.1): flags, version(32), DCID len, DCID, SCID
            # len, SCID. A truncated DCID is no DCID.
            if len(data) < 6:
                return (True, None, None)
            end = 6 + data[5]
            if len(data) < end:
                return (True, None, None)
            dcid = data[6:end]
            if len(data) < end + 1 or len(data) < end + 1 + data[end]:
                return (True, dcid, None)
            return (True, dcid, data[end + 1 : end + 1 + data[end]])
        if len(data) < 2:
            return (False, None, None)
        first = data[1]
        config = self._configs.get(first >> 5)
        if config is None or self.self_encoded_lengths or first >> 5 == UNROUTABLE_CONFIG_ID:
            length = 1 + (first & LENGTH_MASK)
        else:
            length = config.cid_length
        return (False, data[1 : 1 + length], None)

    def _lookup(self, name: Table, key: Hashable, now: float) -> str | None:
        target, expired = self._tables[name].get(key, now)
        if expired:
            self.counts[f"expired:{name}"] += 1
        return target

    def route(
        self, datagram: bytes | bytearray | memoryview, four_tuple: Hashable, now: float
    ) -> Decision:
        """Route one client-to-server datagram (its UDP payload) that arrived on *four_tuple*
        (any hashable the caller uses, e.g. ``(src, sport, dst, dport)``) at time *now*.

        Follows draft-21 section 4.2 in order and stops at the first step that decides. The
        datagram's content never makes this raise.
        """
        data = as_bytes(datagram, "datagram")
        if not isinstance(now, int | float) or isinstance(now, bool):
            raise InputTypeError(f"now must be a number of seconds, not {type(now).__name__}")
        try:
            hash(four_tuple)
        except TypeError:
            raise InputTypeError(
                f"four_tuple must be hashable, not {type(four_tuple).__name__}"
            ) from None
        header = self._parse(data)
        long, dcid, _ = header
        reason: str = "malformed"
        if dcid is not None:
            reason, config_id, server_id = classify(
                self._configs, dcid, self.self_encoded_lengths, long
            )
            if server_id is not None and config_id is not None:
                target = self._servers[config_id].get(server_id)
                if target is not None:
                    self.counts["step:cid"] += 1
                    return Decision(target, "cid", "routable", server_id)
                reason = "unknown-server"
        self.counts[f"unroutable:{reason}"] += 1
        decision = self._from_tables(header, four_tuple, now, reason)
        self.counts[f"step:{decision.step}"] += 1
        return decision

    def _from_tables(
        self, header: _Header, four_tuple: Hashable, now: float, reason: str
    ) -> Decision:
        long, dcid, scid = header
        long_key = (four_tuple, scid) if long and scid is not None else None
        if long_key is not None:
            target = self._lookup("long-header", long_key, now)
            if target is not None:
                return Decision(target, "long-header-table", reason)
        if dcid:
            target = self._lookup("dcid", dcid, now)
            if target is not None:
                return Decision(target, "dcid-table", reason)
        target = self._lookup("four-tuple", four_tuple, now)
        if target is not None:
            return Decision(target, "four-tuple-table", reason)
        target = self._fallback(four_tuple)
        keys: dict[Table, Hashable] = {"four-tuple": four_tuple}
        if dcid:
            keys["dcid"] = dcid
        if long_key is not None:
            keys["long-header"] = long_key
        for name, key in keys.items():
            if name in self.record and self._tables[name].put(key, target, now):
                self.counts[f"evicted:{name}"] += 1
        return Decision(target, "fallback", reason)
