# Flow keys: the values that say which flow a datagram belongs to. A FiveTuple is what the
# kernel keys nf_conntrack and the socket tables by; a SessionId is what an application
# protocol carries in its payload (a QUIC connection ID, a WireGuard receiver index). A Zone
# is nf_conntrack's partition of the table (id, direction mask, mark flag), and -- in the
# seed design sidkit models -- the place where a SID-keyed zone is configured (SidZoneConfig:
# l7, offset, offlen, bounded by MAX_IDLEN). FlowKey is "a tuple or a SID"; flow_key() makes
# the choice the seed's resolve_normal_ct makes.
#
# Everything here is a frozen, validated attrs value: it is built once at the boundary (a
# packet parser, a plugin, a test) and then shared, hashed and compared by the table. The
# module refuses to know about tables, hashes or kernels: the conntrack-hash cache slots on
# FiveTuple and SessionId are private and filled by sidkit.conntrack.
"""Flow keys: five-tuples, session IDs, conntrack zones and SID-zone configuration."""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

import attrs

from sidkit._errors import InputTypeError, InputValueError
from sidkit._validate import as_bytes, check_uint
from sidkit.hashing._inet import IPAddress, parse_ip

__all__ = [
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "IPPROTO_UDPLITE",
    "MAX_IDLEN",
    "NF_CT_DEFAULT_ZONE_DIR",
    "NF_CT_DEFAULT_ZONE_ID",
    "NF_CT_FLAG_MARK",
    "NF_CT_ZONE_DIR_ORIG",
    "NF_CT_ZONE_DIR_REPL",
    "Direction",
    "FiveTuple",
    "FlowKey",
    "SessionId",
    "SidTooShortError",
    "SidZoneConfig",
    "Zone",
    "flow_key",
    "trusted_session_id",
]

IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPPROTO_UDPLITE: Final = 136


class Direction(enum.IntEnum):
    """``enum ip_conntrack_dir`` (``include/uapi/linux/netfilter/nf_conntrack_tuple_common.h``,
    unchanged since v2.6.15): the original direction is the one of the first packet seen."""

    ORIGINAL = 0
    REPLY = 1


# include/linux/netfilter/nf_conntrack_zones_common.h (v4.3 to current; zones arrived in
# v2.6.34 without directions, commit deedb59039f1 added them in v4.3).
NF_CT_DEFAULT_ZONE_ID: Final = 0
NF_CT_ZONE_DIR_ORIG: Final = 1 << Direction.ORIGINAL
NF_CT_ZONE_DIR_REPL: Final = 1 << Direction.REPLY
NF_CT_DEFAULT_ZONE_DIR: Final = NF_CT_ZONE_DIR_ORIG | NF_CT_ZONE_DIR_REPL
NF_CT_FLAG_MARK: Final = 1

MAX_IDLEN: Final = 20
"""The seed design's bound on a SID (``sid[MAX_IDLEN]`` in the tuple). No kernel defines it;
sidkit fixes it at 20 bytes, the longest QUIC v1 connection ID (RFC 9000, section 17.2:
"In QUIC version 1, this value MUST NOT exceed 20 bytes"), which also covers WireGuard's
4-byte receiver index and DTLS 1.2 connection IDs as deployed."""


# --------------------------------------------------------------------------------------------
# FiveTuple
# --------------------------------------------------------------------------------------------


def _src(value: object) -> IPAddress:
    return parse_ip(value, "src")


def _dst(value: object) -> IPAddress:
    return parse_ip(value, "dst")


def _u16(_inst: object, attr: attrs.Attribute[int], value: object) -> None:
    check_uint(value, 16, attr.name)


def _u8(_inst: object, attr: attrs.Attribute[int], value: object) -> None:
    check_uint(value, 8, attr.name)


@attrs.frozen(repr=False, weakref_slot=False)
class FiveTuple:
    """A transport flow as the kernel sees one packet: addresses, ports, protocol number.

    ``src``/``dst`` accept text, packed network-order bytes (4 or 16) or ``ipaddress``
    objects and are stored as ``ipaddress`` objects of the same family; ports are host-order
    ``u16``; ``protocol`` is the IP protocol number (``u8``, UDP by default). Equality and
    hashing use exactly these five fields, so a tuple is a dictionary key.

    An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) stays IPv6, as it does in the kernel's
    ``struct nf_conntrack_tuple`` of an AF_INET6 flow.
    """

    src: IPAddress = attrs.field(converter=_src)
    sport: int = attrs.field(validator=_u16)
    dst: IPAddress = attrs.field(converter=_dst)
    dport: int = attrs.field(validator=_u16)
    protocol: int = attrs.field(default=IPPROTO_UDP, validator=_u8)
    # Private cache of the conntrack hash, filled by sidkit.conntrack: the identity of the
    # hashing context (table secret, namespace mix, zone id, era) and the raw u32 hash. Not
    # part of the value (eq/hash/repr ignore it); a different context simply recomputes.
    _ct_ctx: object = attrs.field(default=None, init=False, eq=False, repr=False)
    _ct_hash: int = attrs.field(default=0, init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.src.version != self.dst.version:
            raise InputValueError(
                f"src {self.src} and dst {self.dst} must be of the same address family",
                code="bad-address",
            )

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.src.version

    def reversed(self) -> FiveTuple:
        """The tuple of a packet going the other way (``nf_ct_invert_tuple`` for UDP/TCP:
        addresses and ports swapped, protocol kept)."""
        return FiveTuple(self.dst, self.dport, self.src, self.sport, self.protocol)

    def __repr__(self) -> str:
        return (
            f"FiveTuple({str(self.src)!r}, {self.sport}, {str(self.dst)!r}, {self.dport}, "
            f"protocol={self.protocol})"
        )

    def __str__(self) -> str:
        def ep(addr: IPAddress, port: int) -> str:
            return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"

        name = {IPPROTO_UDP: "udp", IPPROTO_TCP: "tcp", IPPROTO_UDPLITE: "udplite"}.get(
            self.protocol, f"proto {self.protocol}"
        )
        return f"{name} {ep(self.src, self.sport)} -> {ep(self.dst, self.dport)}"


# --------------------------------------------------------------------------------------------
# SessionId
# --------------------------------------------------------------------------------------------

_PROTOCOL_NAME = re.compile(r"[a-z0-9][a-z0-9._+-]{0,31}")


_CHECKED_NAMES: set[str] = set()
"""Protocol names that already passed the check: a plugin builds a SessionId per datagram
with one of a handful of names, and a set lookup costs a fraction of the regex."""


def _protocol_name(_inst: object, _attr: object, value: Any) -> None:
    if value.__class__ is str and value in _CHECKED_NAMES:
        return
    if not isinstance(value, str):
        raise InputTypeError(
            f"protocol must be a str such as 'quic', not {type(value).__name__}",
            code="bad-protocol",
        )
    if not _PROTOCOL_NAME.fullmatch(value):
        raise InputValueError(
            f"protocol name {value!r} must be 1-32 characters of [a-z0-9._+-] "
            "starting with a letter or digit",
            code="bad-protocol",
        )
    if len(_CHECKED_NAMES) < 1024:  # bounded: names are few; a flood of odd ones is not cached
        _CHECKED_NAMES.add(value)


def _sid_value(value: object) -> bytes:
    return as_bytes(value, "value")


def _details(value: object) -> Mapping[str, object]:
    if value is None or value is _EMPTY:
        return _EMPTY
    if value.__class__ is dict:
        # Fast path for the common case (a plugin's dict literal): the same checks, without
        # the Mapping ABC test.
        for k in value:
            if k.__class__ is not str and not isinstance(k, str):
                raise InputTypeError(
                    f"details keys must be str, got {type(k).__name__}", code="bad-details"
                )
        return types.MappingProxyType(value.copy()) if value else _EMPTY
    if not isinstance(value, Mapping):
        raise InputTypeError(
            f"details must be a mapping, not {type(value).__name__}", code="bad-details"
        )
    for k in value:
        if not isinstance(k, str):
            raise InputTypeError(
                f"details keys must be str, got {type(k).__name__}", code="bad-details"
            )
    if isinstance(value, types.MappingProxyType) and not value:
        return _EMPTY
    return types.MappingProxyType(dict(value))


_EMPTY: Mapping[str, object] = types.MappingProxyType({})


@attrs.frozen(repr=False, weakref_slot=False, init=False)
class SessionId:
    """A session ID as an application protocol carries it on the wire.

    ``protocol`` names the protocol (``"quic"``, ``"wireguard"``, ...); ``value`` is the ID's
    bytes exactly as they appear in the datagram (bytes, bytearray or memoryview accepted,
    ``bytes`` stored; empty is allowed because QUIC allows zero-length connection IDs, but an
    empty ID cannot identify anything and SID zones refuse it); ``details`` is a read-only
    mapping of protocol facts a parser found (QUIC version, packet type, ...).

    **Equality and hashing use (protocol, value) only.** The details describe the packet
    the ID was read from, not the session: a QUIC connection's Initial, Handshake and 1-RTT
    packets carry the same destination connection ID with different packet types, and they
    are one session. So ``SessionId("quic", b"\\x01", {"packet_type": "initial"}) ==
    SessionId("quic", b"\\x01", {"packet_type": "1rtt"})``.
    """

    protocol: str = attrs.field(validator=_protocol_name)
    value: bytes = attrs.field(converter=_sid_value)
    details: Mapping[str, object] = attrs.field(
        default=_EMPTY, converter=_details, eq=False, hash=False
    )
    # Private conntrack-hash cache, as on FiveTuple.
    _ct_ctx: object = attrs.field(default=None, init=False, eq=False, repr=False)
    _ct_hash: int = attrs.field(default=0, init=False, eq=False, repr=False)
    # Where ``details`` comes from until it is first read: a checked copy of the caller's
    # dict, or (the Extractor's exact-location shortcut) a tuple ``(function, *arguments)``
    # whose call returns the mapping -- the plugin's parse, run only if someone asks.
    _lazy: object = attrs.field(default=None, init=False, eq=False, repr=False)

    # Construction is the hot path of extraction (one SessionId per datagram), so only the
    # slots that matter are written, through their slot descriptors (the attrs-generated
    # __setattr__ refuses, being frozen); ``details``, the conntrack cache and ``_lazy``
    # start unset and __getattr__ -- reached only for an unset slot -- supplies them.

    def __init__(
        self,
        protocol: str,
        value: bytes | bytearray | memoryview,
        details: Mapping[str, object] | None = _EMPTY,
    ) -> None:
        # Written by hand rather than generated by attrs: the same conversions and checks as
        # the field declarations above (converters first, then the validator) with fewer
        # calls. benchmarks/bench_extract.py and bench_flows.py measure the difference.
        _set_value(self, value if value.__class__ is bytes else _sid_value(value))
        if details is _EMPTY or details is None:
            _set_details(self, _EMPTY)
        elif details.__class__ is dict:
            for k in details:
                if k.__class__ is not str and not isinstance(k, str):
                    raise InputTypeError(
                        f"details keys must be str, got {type(k).__name__}", code="bad-details"
                    )
            if details:
                _set_lazy(self, details.copy())  # the read-only view is made on first read
            else:
                _set_details(self, _EMPTY)
        else:
            _set_details(self, _details(details))
        if protocol.__class__ is not str or protocol not in _CHECKED_NAMES:
            _protocol_name(self, None, protocol)
        _set_protocol(self, protocol)

    def __getattr__(self, name: str) -> Any:
        # Only called for an attribute not found: an unset slot (see the note above).
        if name == "details":
            lazy = self._lazy
            if lazy is None:
                found: Mapping[str, object] = _EMPTY
            elif lazy.__class__ is dict:
                found = types.MappingProxyType(lazy)
            else:
                call: tuple[Any, ...] = lazy  # type: ignore[assignment]
                found = call[0](*call[1:])
                if found.__class__ is dict:
                    found = types.MappingProxyType(found) if found else _EMPTY
            _set_details(self, found)
            _set_lazy(self, None)
            return found
        if name in {"_ct_ctx", "_lazy"}:
            return None
        if name == "_ct_hash":
            return 0
        raise AttributeError(f"'SessionId' object has no attribute {name!r}")

    def __reduce__(self) -> tuple[type[SessionId], tuple[str, bytes, dict[str, object]]]:
        # Pickled as its constructor call (details read, as a plain dict): the read-only
        # view and a pending lazy parse do not pickle, and need not.
        return (SessionId, (self.protocol, self.value, dict(self.details)))

    def hex(self) -> str:
        """The ID's bytes as lowercase hex (how tshark and the RFCs print connection IDs)."""
        return self.value.hex()

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        d = f", details={dict(self.details)!r}" if self.details else ""
        return f"SessionId({self.protocol!r}, bytes.fromhex({self.value.hex()!r}){d})"

    def __str__(self) -> str:
        return f"{self.protocol}:{self.value.hex() or '(empty)'}"


_set_protocol = SessionId.__dict__["protocol"].__set__
_set_value = SessionId.__dict__["value"].__set__
_set_details = SessionId.__dict__["details"].__set__
_set_lazy = SessionId.__dict__["_lazy"].__set__
_new = object.__new__


def trusted_session_id(protocol: str, value: bytes, details: object = None) -> SessionId:
    """A :class:`SessionId` built without checks, for sidkit's own hot paths (the
    Extractor's exact-location shortcut) and parsers that guarantee what the public
    constructor checks: *protocol* a valid protocol name, *value* ``bytes``, and *details*
    ``None``, a ``dict`` with ``str`` keys that nobody else holds, or a tuple ``(function,
    *arguments)`` whose call returns the details mapping when they are first read. Three
    slot writes, where the public constructor also converts and validates."""
    sid = _new(SessionId)
    _set_protocol(sid, protocol)
    _set_value(sid, value)
    if details is not None:
        _set_lazy(sid, details)
    return sid


FlowKey: TypeAlias = FiveTuple | SessionId
"""What identifies a flow in a table: the five-tuple, or the session ID where a SID zone
applies (see :func:`flow_key`)."""


# --------------------------------------------------------------------------------------------
# Zones and the SID-zone configuration
# --------------------------------------------------------------------------------------------


class SidTooShortError(InputValueError):
    """The payload ends before ``offset + offlen``: the zone's SID is not in this datagram."""

    code = "sid-too-short"


def _offlen(_inst: object, _attr: object, value: Any) -> None:
    check_uint(value, 16, "offlen")
    assert isinstance(value, int)
    if not 1 <= value <= MAX_IDLEN:
        raise InputValueError(
            f"offlen={value} must be between 1 and MAX_IDLEN={MAX_IDLEN}", code="bad-offlen"
        )


def _offset(_inst: object, _attr: object, value: Any) -> None:
    check_uint(value, 16, "offset")


@attrs.frozen
class SidZoneConfig:
    """The seed design's SID-zone parameters, set on a zone by the CT target.

    ``l7`` names the application protocol whose SID the zone keys by (it must equal
    ``SessionId.protocol`` of the SIDs given to the zone); ``offset`` is where the SID
    starts, counted from the end of the transport header (offset 0 = first UDP payload
    byte); ``offlen`` is its length, ``1 <= offlen <= MAX_IDLEN`` (the tuple's
    ``sid[MAX_IDLEN]`` cannot hold more).

    This lives on :class:`Zone` because in the seed the CT target configures it where it
    configures the zone (``struct nf_conntrack_zone`` is what the template carries to
    ``resolve_normal_ct``); sidkit keeps the kernel's three zone fields as they are and adds
    this as a fourth, optional one.
    """

    l7: str = attrs.field(validator=_protocol_name)
    offset: int = attrs.field(validator=_offset)
    offlen: int = attrs.field(validator=_offlen)

    def extract(self, payload: bytes | bytearray | memoryview) -> bytes:
        """The ``offlen`` bytes at ``offset`` of *payload* (the transport payload).

        Raises :class:`SidTooShortError` when the payload is shorter than
        ``offset + offlen`` -- the seed would read past the packet there.
        """
        data = as_bytes(payload, "payload")
        end = self.offset + self.offlen
        if len(data) < end:
            raise SidTooShortError(
                f"payload of {len(data)} bytes is too short for the {self.l7} SID at "
                f"offset {self.offset}, length {self.offlen} (needs {end})"
            )
        return data[self.offset : end]

    def session_id(self, payload: bytes | bytearray | memoryview) -> SessionId:
        """:meth:`extract` as a :class:`SessionId` of protocol ``l7``."""
        return SessionId(self.l7, self.extract(payload))


def _zone_dir(_inst: object, _attr: object, value: Any) -> None:
    check_uint(value, 8, "dir")
    assert isinstance(value, int)
    if value & ~NF_CT_DEFAULT_ZONE_DIR:
        raise InputValueError(
            f"zone dir={value:#x} has bits other than NF_CT_ZONE_DIR_ORIG|NF_CT_ZONE_DIR_REPL",
            code="bad-zone",
        )


def _zone_flags(_inst: object, _attr: object, value: Any) -> None:
    check_uint(value, 8, "flags")
    assert isinstance(value, int)
    if value & ~NF_CT_FLAG_MARK:
        raise InputValueError(
            f"zone flags={value:#x} has bits other than NF_CT_FLAG_MARK", code="bad-zone"
        )


def _zone_id(_inst: object, _attr: object, value: Any) -> None:
    check_uint(value, 16, "id")


def _sid_cfg(_inst: object, _attr: object, value: Any) -> None:
    if value is not None and not isinstance(value, SidZoneConfig):
        raise InputTypeError(
            f"sid must be a SidZoneConfig or None, not {type(value).__name__}", code="bad-zone"
        )


@attrs.frozen
class Zone:
    """``struct nf_conntrack_zone`` (``include/linux/netfilter/nf_conntrack_zones_common.h``,
    v4.3 to current): a ``u16 id``, a ``u8 flags`` (``NF_CT_FLAG_MARK``: take the id from
    the packet mark, as ``nf_ct_zone_tmpl`` does) and a ``u8 dir`` mask saying in which
    directions the zone applies -- in the others the entry lives in the default zone 0
    (``nf_ct_zone_id``). Plus sidkit's optional ``sid`` (:class:`SidZoneConfig`): when set,
    the directions the zone applies to are keyed by the session ID instead of the tuple.
    """

    id: int = attrs.field(default=NF_CT_DEFAULT_ZONE_ID, validator=_zone_id)
    dir: int = attrs.field(default=NF_CT_DEFAULT_ZONE_DIR, validator=_zone_dir)
    flags: int = attrs.field(default=0, validator=_zone_flags)
    sid: SidZoneConfig | None = attrs.field(default=None, validator=_sid_cfg)

    @property
    def mark(self) -> bool:
        """True when ``NF_CT_FLAG_MARK`` is set (the zone id comes from ``skb->mark``)."""
        return bool(self.flags & NF_CT_FLAG_MARK)

    def matches_dir(self, direction: int) -> bool:
        """``nf_ct_zone_matches_dir``: ``zone->dir & (1 << dir)``."""
        return bool(self.dir & (1 << Direction(direction)))

    def id_for(self, direction: int) -> int:
        """``nf_ct_zone_id(zone, dir)``: the id the hash and the comparisons use in
        *direction* -- the zone's id where it applies, ``NF_CT_DEFAULT_ZONE_ID`` elsewhere."""
        return self.id if self.matches_dir(direction) else NF_CT_DEFAULT_ZONE_ID

    def sid_keyed(self, direction: int) -> bool:
        """True when packets of *direction* are identified by SID in this zone."""
        return self.sid is not None and self.matches_dir(direction)

    def for_mark(self, mark: int) -> Zone:
        """``nf_ct_zone_tmpl``: with ``NF_CT_FLAG_MARK`` the packet's zone is the template's
        with ``id = skb->mark`` (truncated to u16 as the kernel's assignment does) and
        ``flags = 0``; without it, the template's zone itself."""
        check_uint(mark, 32, "mark")
        if not self.mark:
            return self
        return Zone(mark & 0xFFFF, self.dir, 0, self.sid)


def flow_key(
    zone: Zone,
    five_tuple: FiveTuple,
    payload: bytes | bytearray | memoryview | None = None,
    *,
    direction: int = Direction.ORIGINAL,
    sid: SessionId | None = None,
) -> FlowKey:
    """The key the seed's ``resolve_normal_ct`` looks a packet up by.

    Outside a SID zone, or in a direction the zone does not apply to, that is the tuple. In
    a SID-keyed direction it is the SID: *sid* if a parser already found one (its protocol
    must be the zone's ``l7``), else the zone's ``offlen`` bytes at ``offset`` of *payload*.
    A payload too short raises :class:`SidTooShortError`; sidkit.conntrack catches it and
    falls back to the tuple, counted (see ``Table.packet``).
    """
    if not isinstance(zone, Zone):
        raise InputTypeError(f"zone must be a Zone, not {type(zone).__name__}", code="bad-zone")
    if not isinstance(five_tuple, FiveTuple):
        raise InputTypeError(
            f"five_tuple must be a FiveTuple, not {type(five_tuple).__name__}", code="bad-key"
        )
    cfg = zone.sid
    if cfg is None or not zone.matches_dir(direction):
        return five_tuple
    if sid is not None:
        if not isinstance(sid, SessionId):
            raise InputTypeError(
                f"sid must be a SessionId, not {type(sid).__name__}", code="bad-key"
            )
        if sid.protocol != cfg.l7:
            raise InputValueError(
                f"zone {zone.id} keys by {cfg.l7!r} SIDs, got a {sid.protocol!r} SID",
                code="wrong-protocol",
            )
        if not 1 <= len(sid.value) <= MAX_IDLEN:
            raise InputValueError(
                f"a SID zone holds 1..MAX_IDLEN={MAX_IDLEN} bytes, got {len(sid.value)}",
                code="bad-offlen",
            )
        return sid
    if payload is None:
        raise InputValueError(
            f"zone {zone.id} is SID-keyed: give the payload or a SessionId", code="no-payload"
        )
    return cfg.session_id(payload)
