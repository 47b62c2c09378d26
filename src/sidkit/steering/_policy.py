# Strategy: the seed's second patch made reuseport hash the session ID instead of the 5-tuple.
# Mainline Linux needs no patch for that: a classic BPF program (SO_ATTACH_REUSEPORT_CBPF,
# Linux 4.5+) or an SK_REUSEPORT eBPF program with a REUSEPORT_SOCKARRAY map (4.19+) can return
# the socket index itself. This module states a steering *policy* once -- where the SID is and
# how it becomes an index -- and derives everything from that one statement:
#
#   policy.select(payload)   the model, plain Python, the reference for the rest;
#   compile_cbpf(policy)     a sock_filter program (32-bit ALU only, jhash unrolled);
#   compile_ebpf(policy, fd) an SK_REUSEPORT program (bpf_skb_load_bytes, never direct packet
#                            access: that sees only the linear part of the skb);
#   attach(sockets, policy)  both attached to a live group (sidkit.steering._attach);
#   mint_cid(policy, i, n)   a connection ID that routes to socket i, for servers that mint
#                            their own IDs (QUIC) so later packets land where the first did.
#
# Programs are built through one intermediate form (sidkit.steering._ir) whose evaluation, the
# cBPF interpreter and the eBPF interpreter are all checked against select() in the tests.
"""Session-ID steering policies and their compilation to classic BPF and SK_REUSEPORT eBPF."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal, Protocol

import attrs

from sidkit._errors import InputValueError
from sidkit._validate import as_bytes, as_list, show
from sidkit.bpf import cbpf, ebpf
from sidkit.hashing import jhash, reciprocal_scale
from sidkit.steering import _ir

__all__ = [
    "AnyOf",
    "FixedOffset",
    "Guard",
    "IndexField",
    "Method",
    "SteeringError",
    "SteeringPolicy",
    "compile_cbpf",
    "compile_ebpf",
    "mint_cid",
]

Method = Literal["jhash", "modulo", "index"]
_METHODS: Final = ("jhash", "modulo", "index")
_M32: Final = (1 << 32) - 1
#: Largest SID the compilers accept. QUIC's version-independent CIDs reach 255 bytes (RFC 8999
#: §5.1); the eBPF stack window (512 bytes) and classic BPF's 4096 instructions both fit that.
MAX_SID: Final = 255
MAX_SOCKETS: Final = 65535  # struct sock_reuseport counts sockets in a u16


class SteeringError(InputValueError):
    """A steering policy or attachment request that cannot work."""

    code = "bad-steering"


#: Largest payload offset (and minimum size) a location may name. Both programs carry offsets
#: as 32-bit immediates (cBPF ``k``, eBPF ``imm``) that silently wrap, and no UDP payload is
#: longer than 65535 - 8 bytes (RFC 768's 16-bit Length; IPv6 jumbograms never reach a
#: reuseport group), so anything above a u16 is a mistake to refuse, not a number to wrap.
MAX_OFFSET: Final = 0xFFFF


def _u8(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 0 <= value <= 0xFF:
        raise SteeringError(f"{attr.name} must be an integer 0..255, got {show(value)}")


def _nonneg(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise SteeringError(f"{attr.name} must be a non-negative integer, got {show(value)}")


def _payload_offset(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_OFFSET:
        raise SteeringError(
            f"{attr.name} must be an integer 0..{MAX_OFFSET} (a UDP payload offset), "
            f"got {show(value)}"
        )


@attrs.frozen
class Guard:
    """A first-bytes test: the SID counts only if ``payload[offset] & mask == value``.

    This is how a location says "short header" (QUIC: first bit 0) or "transport data"
    (WireGuard: type 4), the same byte tests RFC 9443 uses to demultiplex protocols on a port.
    """

    offset: int = attrs.field(validator=_payload_offset)
    mask: int = attrs.field(validator=_u8)
    value: int = attrs.field(validator=_u8)

    def __attrs_post_init__(self) -> None:
        if self.value & ~self.mask:
            raise SteeringError(f"guard value {self.value:#04x} has bits outside {self.mask:#04x}")

    def holds(self, payload: bytes) -> bool:
        return len(payload) > self.offset and payload[self.offset] & self.mask == self.value


def _guards(value: Sequence[Guard | tuple[int, int, int]]) -> tuple[Guard, ...]:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        raise SteeringError(
            f"guards must be a sequence of (offset, mask, value) tuples, got {show(value)}"
        )
    guards = []
    for g in value:
        if isinstance(g, Guard):
            guards.append(g)
        elif isinstance(g, tuple | list) and len(g) == 3:
            guards.append(Guard(*g))
        else:
            raise SteeringError(f"a guard is a Guard or an (offset, mask, value), not {show(g)}")
    return tuple(guards)


@attrs.frozen
class FixedOffset:
    """The SID is *length* bytes at *offset* in the UDP payload, where all *guards* hold.

    This is the seed's zone configuration (``offset``, ``offlen``) with optional first-byte
    tests. A payload too short to hold the guards and the SID has no SID, and neither has
    one shorter than *min_size*: a protocol's smallest valid datagram (WireGuard transport
    data is at least 32 bytes, :class:`sidkit.extract.SidLocation` ``min_size``), so that
    the kernel program steers exactly the datagrams the plugin's description covers.
    """

    offset: int = attrs.field(validator=_payload_offset)
    length: int = attrs.field(validator=_nonneg)
    guards: tuple[Guard, ...] = attrs.field(default=(), converter=_guards)
    min_size: int = attrs.field(default=0, validator=_payload_offset)

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.length <= MAX_SID:
            raise SteeringError(f"SID length must be 1..{MAX_SID}, got {show(self.length)}")
        end = max([self.offset + self.length] + [g.offset + 1 for g in self.guards])
        low = min([self.offset] + [g.offset for g in self.guards])
        if end - low > ebpf.STACK_SIZE - 16:
            raise SteeringError(
                f"guards and SID span {end - low} bytes; an SK_REUSEPORT program can copy at "
                f"most {ebpf.STACK_SIZE - 16} to its stack"
            )

    @property
    def end(self) -> int:
        """Shortest payload that can carry this SID and its guards (and *min_size*)."""
        return max([self.offset + self.length, self.min_size] + [g.offset + 1 for g in self.guards])

    def sid(self, payload: bytes) -> bytes | None:
        """The SID bytes in *payload*, or None when it is too short or a guard fails."""
        if len(payload) < self.end or not all(g.holds(payload) for g in self.guards):
            return None
        return bytes(payload[self.offset : self.offset + self.length])


class _LocationLike(Protocol):
    """Anything that says where a SID sits (e.g. a plugin's location): offset, length, guards."""

    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def guards(self) -> Sequence[object]: ...


def _as_location(spec: object) -> FixedOffset:
    if isinstance(spec, FixedOffset):
        return spec
    try:
        loc: _LocationLike = spec  # type: ignore[assignment]
        guards = [
            Guard(g.offset, g.mask, g.value) if hasattr(g, "mask") else Guard(*g)  # type: ignore[attr-defined, misc]
            for g in loc.guards
        ]
        min_size = getattr(loc, "min_size", 0)
        return FixedOffset(loc.offset, loc.length, guards, min_size)
    except (AttributeError, TypeError) as exc:
        raise SteeringError(
            "a steering spec must be FixedOffset, AnyOf or have offset/length/guards, "
            f"got {show(spec)}"
        ) from exc


def _locations(alts: Sequence[object]) -> tuple[FixedOffset, ...]:
    if isinstance(alts, str | bytes | bytearray) or not isinstance(alts, Sequence):
        raise SteeringError(f"AnyOf takes a sequence of locations, not {show(alts)}")
    return tuple(_as_location(a) for a in alts)


@attrs.frozen
class AnyOf:
    """Several places a SID may sit; the first whose guards hold (in order) is used.

    QUIC needs two: a short header (DCID right after the first byte) and a long header (DCID
    after the version and its length byte). Once a location matches it decides, even when its
    index is out of range; later locations are not consulted.
    """

    alternatives: tuple[FixedOffset, ...] = attrs.field(converter=_locations)

    def __attrs_post_init__(self) -> None:
        if not self.alternatives:
            raise SteeringError("AnyOf needs at least one location")


@attrs.frozen
class IndexField:
    """For ``method="index"``: the socket index is ``((BE(sid[offset:offset+length]) >> shift)
    & mask) - base`` -- a byte or bit field the server wrote into an ID it minted
    (nginx/Katran style). A field value below *base* wraps past every socket (u32
    arithmetic, as in the programs) and falls back: ``base=1`` keeps value 0 for "no ID", as
    Katran's ``server_id > 0`` test does.
    """

    offset: int = attrs.field(default=0, validator=_nonneg)
    length: int = attrs.field(default=1)
    shift: int = attrs.field(default=0, validator=_nonneg)
    mask: int = attrs.field(default=0xFF)
    base: int = attrs.field(default=0, validator=_nonneg)

    def __attrs_post_init__(self) -> None:
        if self.length not in (1, 2, 3, 4):
            raise SteeringError(f"index field length must be 1..4 bytes, got {show(self.length)}")
        if self.shift >= 8 * self.length:
            raise SteeringError("index field shift leaves no bits")
        if type(self.mask) is not int or not 0 < self.mask <= _M32:
            raise SteeringError(f"index field mask must be a positive u32, got {show(self.mask)}")
        if self.base > self.mask:
            raise SteeringError(
                f"index field base {show(self.base)} is above its mask {self.mask:#x}"
            )


def _spec(value: object) -> AnyOf:
    return value if isinstance(value, AnyOf) else AnyOf((_as_location(value),))


@attrs.frozen
class SteeringPolicy:
    """Where the SID is (*spec*) and how it names one of *n* sockets (*method*).

    Methods:

    ``"jhash"``
        ``reciprocal_scale(jhash(sid, seed), n)`` -- the seed's proposal, with the kernel's own
        hash (include/linux/jhash.h, little-endian word order) and the kernel's own range
        reduction (the one reuseport uses for the 5-tuple hash).
    ``"modulo"``
        the first four bytes of the SID (all of it if shorter) as a big-endian integer, modulo
        *n* -- the style of the kernel selftest (tools/testing/selftests/net/reuseport_bpf.c).
    ``"index"``
        a field of the SID (:class:`IndexField`) is the index; values ``>= n`` fall back to
        the kernel's hash.

    :meth:`select` returns None when the payload carries no SID or the index is out of range:
    the kernel's 5-tuple hash then decides, which the compiled programs reproduce.

    A location tests only its guards, so a policy built from the QUIC plugin's locations
    steers every long header with the configured DCID Length by its invariant DCID (RFC
    8999 section 5.1), whatever its version or fixed bit -- what the compiled programs do,
    and on purpose (docs/howto-steering.rst, "Which QUIC packets are steered").
    """

    spec: AnyOf = attrs.field(converter=_spec)
    method: Method = attrs.field(default="jhash")
    n: int = attrs.field(default=4)
    seed: int = attrs.field(default=0)
    field: IndexField = attrs.field(factory=IndexField)

    def __attrs_post_init__(self) -> None:
        if self.method not in _METHODS:
            raise SteeringError(f"method must be one of {_METHODS}, got {show(self.method)}")
        if type(self.n) is not int or not 1 <= self.n <= MAX_SOCKETS:
            raise SteeringError(f"n must be 1..{MAX_SOCKETS} sockets, got {show(self.n)}")
        if type(self.seed) is not int or not 0 <= self.seed <= _M32:
            raise SteeringError(f"seed must be a u32, got {show(self.seed)}")
        if self.method == "index":
            for loc in self.spec.alternatives:
                if self.field.offset + self.field.length > loc.length:
                    raise SteeringError(
                        f"index field ends at byte {show(self.field.offset + self.field.length)} "
                        f"of a {loc.length}-byte SID"
                    )

    def sid(self, payload: bytes) -> bytes | None:
        """The SID of the first location that matches, or None."""
        for loc in self.spec.alternatives:
            sid = loc.sid(payload)
            if sid is not None:
                return sid
        return None

    def index_of(self, sid: bytes) -> int:
        """The method's raw value for *sid* (may be ``>= n`` for ``"index"``)."""
        if self.method == "jhash":
            return reciprocal_scale(jhash(sid, self.seed), self.n)
        if self.method == "modulo":
            return int.from_bytes(sid[:4], "big") % self.n
        f = self.field
        value = (int.from_bytes(sid[f.offset : f.offset + f.length], "big") >> f.shift) & f.mask
        return (value - f.base) & _M32

    def select(self, payload: bytes | bytearray | memoryview) -> int | None:
        """The model: the socket index for *payload*, or None (the kernel's hash decides)."""
        # bytes(12) is twelve zero bytes and bytes("x") a TypeError: accept only bytes-likes.
        sid = self.sid(as_bytes(payload, "payload"))
        if sid is None:
            return None
        index = self.index_of(sid)
        return index if index < self.n else None

    def select_many(self, payloads: Iterable[bytes | bytearray | memoryview]) -> list[int | None]:
        """:meth:`select` for many payloads: ``[policy.select(p) for p in payloads]``, the
        same answers in the same order, with the hashing done in bulk.

        Session IDs are grouped by length (a location's SID length is fixed, but an
        :class:`AnyOf` may mix lengths) and each group goes through
        :func:`sidkit.hashing.batch.jhash` and :func:`~sidkit.hashing.batch.reciprocal_scale`
        at once -- the scalar pure-Python jhash is the cost of :meth:`select` (issue 17);
        ``"modulo"`` and ``"index"`` read their bytes as numpy columns. Finding each SID
        stays a per-payload slice (the guards are a few byte tests). Needs numpy
        (``sidkit[bulk]``): without it a :class:`~sidkit.SidkitError` says so.
        """
        from sidkit.hashing import batch  # noqa: PLC0415  (numpy is an optional extra)
        from sidkit.hashing._bulk import np  # noqa: PLC0415

        items = as_list(payloads, "payloads", "a sequence of bytes-like payloads")
        out: list[int | None] = [None] * len(items)
        groups: dict[int, tuple[list[int], list[bytes]]] = {}
        # FixedOffset.sid() per payload, with each location's bounds worked out once (its
        # ``end`` is a property that recomputes them): the loop left after the bulk hash.
        locs = [
            (
                loc.end,
                loc.offset,
                loc.offset + loc.length,
                tuple((g.offset, g.mask, g.value) for g in loc.guards),
            )
            for loc in self.spec.alternatives
        ]
        for i, payload in enumerate(items):
            data = payload if type(payload) is bytes else as_bytes(payload, "payloads[]")
            size = len(data)
            for end, start, stop, guards in locs:
                if size >= end and all(data[o] & m == v for o, m, v in guards):
                    where, sids = groups.setdefault(stop - start, ([], []))
                    where.append(i)
                    sids.append(data[start:stop])
                    break
        for length, (where, sids) in groups.items():
            if self.method == "jhash":
                picked = batch.reciprocal_scale(batch.jhash(sids, self.seed), self.n).tolist()
            else:
                cols = np.frombuffer(b"".join(sids), dtype=np.uint8).reshape(len(sids), length)
                if self.method == "modulo":
                    picked = (_big_endian(np, cols[:, :4]) % self.n).tolist()
                else:
                    f = self.field
                    raw = _big_endian(np, cols[:, f.offset : f.offset + f.length])
                    value = ((raw >> f.shift) & f.mask).astype(np.int64)
                    picked = ((value - f.base) & _M32).tolist()
            for i, index in zip(where, picked, strict=True):
                out[i] = int(index) if index < self.n else None
        return out

    def ir(self) -> _ir.Program:
        """The policy in the steering IR that both compilers lower."""
        alts = []
        for loc in self.spec.alternatives:
            body = self._body(loc)
            lo, hi = _ir.body_uses(body)
            guard_offs = [g.offset for g in loc.guards]
            alts.append(
                _ir.Alternative(
                    need=max([hi, loc.offset + loc.length] + [o + 1 for o in guard_offs]),
                    guards=tuple((g.offset, g.mask, g.value) for g in loc.guards),
                    body=tuple(body),
                    low=min([lo, loc.offset, *guard_offs]),
                    min_len=loc.min_size,
                )
            )
        return _ir.Program(tuple(alts), self.n)

    def _body(self, loc: FixedOffset) -> list[_ir.Op]:
        ir = _ir
        if self.method == "jhash":
            ops = ir.jhash_ops(loc.offset, loc.length, self.seed)
            return [*ops, ir.Set("v", 0), ir.Bin("or", "v", "c"), ir.Scale("v", self.n)]
        if self.method == "modulo":
            return [ir.LoadBE("v", loc.offset, min(4, loc.length)), ir.Bin("mod", "v", imm=self.n)]
        f = self.field
        fops: list[ir.Op] = [ir.LoadBE("v", loc.offset + f.offset, f.length)]
        if f.shift:
            fops.append(ir.Bin("rsh", "v", imm=f.shift))
        if f.mask != (1 << (8 * f.length)) - 1:
            fops.append(ir.Bin("and", "v", imm=f.mask))
        if f.base:
            fops.append(ir.Bin("sub", "v", imm=f.base))
        return fops


def _big_endian(np: Any, cols: Any) -> Any:
    """The rows of a ``(n, k)`` uint8 array (k <= 4) as big-endian uint64 values."""
    value = np.zeros(cols.shape[0], dtype=np.uint64)
    for j in range(cols.shape[1]):
        value = (value << np.uint64(8)) | cols[:, j].astype(np.uint64)
    return value


def _check_policy(policy: object) -> None:
    if not isinstance(policy, SteeringPolicy):
        raise SteeringError(f"policy must be a SteeringPolicy, not {type(policy).__name__}")


def compile_cbpf(policy: SteeringPolicy) -> list[cbpf.SockFilter]:
    """A classic BPF program for SO_ATTACH_REUSEPORT_CBPF that implements *policy*.

    It returns the socket index, or 0xffffffff ("out of range": the kernel falls back to its
    hash, net/core/sock_reuseport.c ``run_bpf_filter``) when there is no SID. The length is
    tested before any load, because a classic load past the end returns 0 -- socket 0 --
    rather than failing.
    """
    _check_policy(policy)
    return _ir.to_cbpf(policy.ir())


def compile_ebpf(
    policy: SteeringPolicy, map_fd: int, *, on_no_sid: Literal["pass", "drop"] = "pass"
) -> list[ebpf.Insn]:
    """An SK_REUSEPORT program that selects ``map[policy.select(payload)]``.

    *map_fd* is a REUSEPORT_SOCKARRAY map whose slot i holds socket i. Without a SID (or with
    an out-of-range index or an empty slot) the program returns SK_PASS without selecting, so
    the kernel's hash decides -- or SK_DROP with ``on_no_sid="drop"`` (the sender then sees
    ECONNREFUSED).
    """
    _check_policy(policy)
    # Both reach the program: the fd as a 32-bit ld_imm64 operand (BPF_PSEUDO_MAP_FD), which
    # would wrap, and the verdict; an fd is a C int.
    if type(map_fd) is not int or not 0 <= map_fd <= 0x7FFF_FFFF:
        raise SteeringError(f"map_fd must be a file descriptor (0..2**31-1), got {show(map_fd)}")
    if on_no_sid not in ("pass", "drop"):
        raise SteeringError(f"on_no_sid must be 'pass' or 'drop', got {show(on_no_sid)}")
    return _ir.to_ebpf(policy.ir(), map_fd, on_no_sid=on_no_sid)


def mint_cid(
    policy: SteeringPolicy,
    index: int,
    length: int | None = None,
    *,
    rng: random.Random | None = None,
) -> bytes:
    """A random SID of *length* bytes that *policy* routes to socket *index*.

    A QUIC server picks the connection IDs its peer will send; minting them with this function
    makes every later packet land on the socket that handled the handshake. *length* defaults
    to the first location's SID length. The bytes are random apart from what the method needs
    (for ``"jhash"`` the search takes about *n* tries).
    """
    _check_policy(policy)
    if type(index) is not int or not 0 <= index < policy.n:
        raise SteeringError(f"index must be 0..{policy.n - 1}, got {show(index)}")
    lengths = {loc.length for loc in policy.spec.alternatives}
    if length is None:
        length = policy.spec.alternatives[0].length
    if type(length) is not int or length not in lengths:
        raise SteeringError(
            f"the policy's SIDs are {sorted(lengths)} bytes long, not {show(length)}"
        )
    gen = rng or random.Random(os.urandom(16))
    if policy.method == "jhash":
        if length <= 2:
            # A space this small may not reach every socket; search all of it, in random order.
            candidates = [v.to_bytes(length, "big") for v in range(1 << (8 * length))]
            gen.shuffle(candidates)
        else:
            candidates = [gen.randbytes(length) for _ in range(max(4096, 64 * policy.n))]
        for sid in candidates:
            if policy.index_of(sid) == index:
                return sid
        raise SteeringError(
            f"no {length}-byte SID maps to socket {index} of {policy.n} under this policy"
        )
    out = bytearray(gen.randbytes(length))
    if policy.method == "modulo":
        width = min(4, length)
        space = 1 << (8 * width)
        if index >= space:
            raise SteeringError(f"a {width}-byte SID cannot name socket {index} by modulo")
        value = gen.randrange((space - index + policy.n - 1) // policy.n) * policy.n + index
        out[:width] = value.to_bytes(width, "big")
        return bytes(out)
    f = policy.field
    value = index + f.base
    if (value & f.mask) != value or (value << f.shift) >> (8 * f.length):
        raise SteeringError(
            f"index {index} does not fit the field (mask {f.mask:#x}, shift {f.shift}, "
            f"base {f.base}, {f.length} bytes)"
        )
    old = int.from_bytes(out[f.offset : f.offset + f.length], "big")
    new = (old & ~(f.mask << f.shift)) | (value << f.shift)
    out[f.offset : f.offset + f.length] = (new & ((1 << (8 * f.length)) - 1)).to_bytes(
        f.length, "big"
    )
    return bytes(out)
