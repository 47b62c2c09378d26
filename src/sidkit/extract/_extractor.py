# Strategy: an Extractor is built once from a list of protocol names (or plugin objects) and
# their options, and then answers "which session does this UDP payload belong to?" as fast as
# CPython allows: options are checked once, each protocol's sidkit_extract implementation is
# looked up once and bound to its options, and a 256-entry table maps the payload's first
# byte to the protocols that may claim it (RFC 9443's demultiplexing, generalised to whatever
# the plugins declare). The hot path is a table lookup and one plain function call per
# candidate; pluggy's hook machinery is only used to find the functions.
#
# The second product is a description a kernel can use: SidLocation, a fixed offset and
# length guarded by byte tests, which plugins return where their ID allows it. The module
# refuses to guess: a protocol that cannot describe its ID that way makes sid_locations()
# fail loudly instead of producing a program that silently steers less than Python does.
# A location a plugin marks ``exact`` also promises that its parser, wherever the location
# applies, returns exactly those bytes; exact_table() turns that promise into a per-first-
# byte shortcut that lets a bulk caller (sidkit flows) skip the plugin call, and extract()
# takes the same shortcut itself: where an exact location applies, the answer is a slice and
# a SessionId built without checks (sidkit.keys.trusted_session_id), whose details -- the
# plugin's parse -- are computed only if someone reads them. Extractor(exact=False) turns
# the shortcut off: the reference the tests hold it to.
"""Session-ID extraction from UDP payloads, and its kernel-compilable description."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

import attrs
import pluggy

from sidkit._errors import InputTypeError, InputValueError, SidkitError
from sidkit._validate import as_bytes, show
from sidkit.extract._contract import PluginError, ProtocolSpec, resolve_options
from sidkit.extract._host import PluginHost, default_host
from sidkit.extract._location import SidLocation
from sidkit.keys import FiveTuple, SessionId

# The slot writers trusted_session_id() uses (sidkit.keys), for the inlined shortcut.
_new = object.__new__
_set_protocol = SessionId.__dict__["protocol"].__set__
_set_value = SessionId.__dict__["value"].__set__
_set_lazy = SessionId.__dict__["_lazy"].__set__

__all__ = [
    "RFC9443_RANGES",
    "Extractor",
    "NotSteerableError",
    "rfc9443_class",
]


class NotSteerableError(InputValueError):
    """A configured protocol cannot describe its session ID as fixed locations under its
    options, so no kernel program can reproduce this extractor."""

    code = "not-steerable"


# --------------------------------------------------------------------------------------------
# RFC 9443 first-byte demultiplexing
# --------------------------------------------------------------------------------------------

RFC9443_RANGES: Final[tuple[tuple[int, int, str], ...]] = (
    (0, 3, "stun"),
    (16, 19, "zrtp"),
    (20, 63, "dtls"),
    (64, 79, "turn-channel"),
    (80, 127, "quic"),
    (128, 191, "rtp"),
    (192, 255, "quic"),
)
"""RFC 9443 section 3: the first byte of a datagram on a port shared by STUN, ZRTP, DTLS,
TURN channels, QUIC and RTP/RTCP, as (low, high, protocol), both ends inclusive. Values
4..15 are unassigned (drop). A QUIC short header (``0b01xxxxxx``, 64..127) whose first
byte falls in 64..79 is taken for a TURN channel message; RFC 9443 leaves that collision
to the application, and a QUIC endpoint that multiplexes must not negotiate the greased
fixed bit (RFC 9287 section 3), which would put QUIC into every range.

The Extractor's table is built from what the plugins claim, not from this table: the QUIC
plugin also claims 128..191, because a Version Negotiation packet's 7 low bits are
arbitrary (RFC 8999 section 6) and a long header of a known version may have its fixed bit
greased (RFC 9287); there it accepts only those two, so RTP configured after it still gets
its packets."""


def rfc9443_class(first_byte: int) -> str | None:
    """The RFC 9443 class of a datagram starting with *first_byte*, or ``None`` (drop)."""
    if not isinstance(first_byte, int) or isinstance(first_byte, bool):
        raise InputTypeError("first_byte must be an int", code="not-int")
    if not 0 <= first_byte <= 255:
        raise InputValueError(
            f"first_byte={show(first_byte)} is not in 0..255", code="out-of-range"
        )
    for low, high, name in RFC9443_RANGES:
        if low <= first_byte <= high:
            return name
    return None


# --------------------------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------------------------

_Bound = Callable[[bytes, FiveTuple | None], object]
_Shortcut = tuple[int, int, int, tuple[tuple[int, int, int], ...], str, str, _Bound]


def _exact_details(
    name: str, fn: _Bound, data: bytes, ft: FiveTuple | None, value: bytes
) -> Mapping[str, object]:
    """The details of an ID extract() took from an exact location: the plugin's own parse
    of the payload, run when they are first read. A plugin that breaks its exactness
    promise (another answer, an exception) is a plugin bug, said here."""
    try:
        sid = fn(data, ft)
    except Exception as exc:
        raise PluginError(
            f"{name}: plugin raised {exc!r} where its exact location gave {value.hex()}"
        ) from exc
    if not isinstance(sid, SessionId) or sid.value != value:
        raise PluginError(
            f"{name}: an exact location gave {value.hex()} but the parser returned {sid!r}"
        )
    return sid.details


_CANONICAL: Final = ("protocol", "payload", "five_tuple", "options")
#: The signature of a plugin that has no use for the datagram's addresses: leaving
#: ``five_tuple`` out tells a caller it need not build one (sidkit flows skips it).
_NO_TUPLE: Final = ("protocol", "payload", "options")
_Call = Callable[[str, bytes, FiveTuple | None, Mapping[str, object]], object]


def _direct(impl: pluggy.HookImpl, bound: _Bound) -> _Call:
    """The implementation itself where it takes the four hook arguments in order, else an
    adapter to its bound form (see :func:`_bind`)."""
    names = tuple(impl.argnames)
    if names == _CANONICAL:
        fn: _Call = impl.function
        return fn
    if names == _NO_TUPLE:
        three = impl.function
        return lambda protocol, payload, _ft, options: three(protocol, payload, options)
    return lambda _protocol, payload, ft, _options: bound(payload, ft)


def _bind(impl: pluggy.HookImpl, protocol: str, options: Mapping[str, object]) -> _Bound:
    """Bind a sidkit_extract implementation to its protocol and options.

    pluggy lets an implementation take any subset of the hook's arguments, in any order; the
    common full signature gets a positional fast path.
    """
    fn = impl.function
    names = tuple(impl.argnames)
    if names == _CANONICAL:
        return lambda payload, ft: fn(protocol, payload, ft, options)
    if names == _NO_TUPLE:
        return lambda payload, _ft: fn(protocol, payload, options)
    fixed: dict[str, object] = {
        k: v for k, v in (("protocol", protocol), ("options", options)) if k in names
    }
    wants_payload, wants_tuple = "payload" in names, "five_tuple" in names

    def call(payload: bytes, ft: FiveTuple | None) -> object:
        kwargs = dict(fixed)
        if wants_payload:
            kwargs["payload"] = payload
        if wants_tuple:
            kwargs["five_tuple"] = ft
        return fn(**kwargs)

    return call


class Extractor:
    """Finds the session ID of UDP payloads for a configured set of protocols.

    ``plugins`` lists protocol names (``"quic"``, ``"dtls"``, ``"wireguard"`` ...) provided
    by installed plugins, or plugin objects (modules with ``sidkit_*`` hook implementations)
    whose protocols are all used. Order matters where protocols claim the same first byte.

    ``options`` holds each protocol's options, either per protocol
    (``{"quic": {"cid_length": 8}}``) or flat (``{"cid_length": 8}``): a flat name applies
    to every configured protocol that has an option of that name, and is an error if none
    has. Options are checked here, once.

    :meth:`extract` looks at the first byte, tries the protocols that claim it in the
    configured order (RFC 9443 demultiplexing when their claims are disjoint, as the
    built-in ones are) and returns the first :class:`~sidkit.keys.SessionId` found, or
    ``None``. A :class:`MalformedPacketError` from the protocol that owns the first byte
    propagates: the datagram claims to be that protocol and is broken.

    *exact* (the default) lets :meth:`extract` answer from the protocols' exact locations
    (:meth:`exact_table`) without calling the plugin where one applies; the ID's
    ``details`` are then the plugin's, computed when first read. ``exact=False`` asks the
    plugins every time (the reference; the tests hold the two to the same answers).
    """

    def __init__(
        self,
        plugins: Sequence[str | object],
        options: Mapping[str, object] | None = None,
        *,
        host: PluginHost | None = None,
        exact: bool = True,
    ) -> None:
        if isinstance(plugins, str | bytes) or not isinstance(plugins, Sequence):
            raise InputTypeError(
                "plugins must be a list of protocol names or plugin objects", code="bad-plugins"
            )
        objects = [p for p in plugins if not isinstance(p, str)]
        if host is None:
            host = PluginHost(entry_points=True) if objects else default_host()
        self.host = host
        names: list[str] = []
        for item in plugins:
            declared = [item] if isinstance(item, str) else [s.name for s in host.register(item)]
            for name in declared:
                host.spec(name)  # raises UnknownProtocolError
                if name in names:
                    raise InputValueError(f"protocol {name!r} listed twice", code="duplicate")
                names.append(name)
        if not names:
            raise InputValueError("an Extractor needs at least one protocol", code="no-protocol")
        self.protocols: tuple[str, ...] = tuple(names)
        specs = [host.spec(n) for n in names]
        self._options = self._split_options(specs, options or {})
        self._bound: dict[str, _Bound] = {}
        direct: dict[str, _Call] = {}
        claims: list[tuple[str, frozenset[int]]] = []
        takes_tuple: set[str] = set()
        for spec in specs:
            opts = self._options[spec.name]
            impl = host.impl("sidkit_extract", spec.name)
            if impl is None:  # pragma: no cover - PluginHost refuses such plugins
                raise PluginError(f"protocol {spec.name!r} has no sidkit_extract")
            if "five_tuple" in impl.argnames:
                takes_tuple.add(spec.name)
            self._bound[spec.name] = _bind(impl, spec.name, opts)
            direct[spec.name] = _direct(impl, self._bound[spec.name])
            claims.append((spec.name, self._first_bytes(spec, opts)))
        table: list[tuple[tuple[str, _Bound], ...]] = []
        calls: list[tuple[tuple[str, _Call, Mapping[str, object]], ...]] = []
        for byte in range(256):
            table.append(tuple((n, self._bound[n]) for n, c in claims if byte in c))
            calls.append(tuple((n, direct[n], self._options[n]) for n, c in claims if byte in c))
        self._table = tuple(table)
        #: The first bytes some protocol claiming them reads the FiveTuple for (its
        #: sidkit_extract takes ``five_tuple``): for any other byte :meth:`extract` may be
        #: given ``None`` with the same answer, and a caller can skip building one.
        self.tuple_bytes: frozenset[int] = frozenset(
            b for b in range(256) if any(n in takes_tuple for n, _fn in table[b])
        )
        # extract()'s view of the same table: each implementation called with all four
        # hook arguments positionally, so that the common signature costs no frame of ours
        self._calls = tuple(calls)
        self._exact: tuple[tuple[SidLocation, ...], ...] | None = None
        if not isinstance(exact, bool):
            raise InputTypeError(f"exact must be a bool, not {exact!r}", code="not-bool")
        self._shortcut = self._compile_shortcut() if exact else ((),) * 256

    # -- construction helpers --

    def _compile_shortcut(self) -> tuple[tuple[_Shortcut, ...], ...]:
        """Per first byte, the exact locations extract() may answer from, compiled to
        plain tuples: (offset, length, needed, guards on bytes other than the first,
        protocol, the claimant whose parser gives the details, its bound function)."""
        try:
            table = self.exact_table()
        except PluginError:  # broken locations: no shortcut, the plugins are asked
            return ((),) * 256
        compiled: list[tuple[_Shortcut, ...]] = []
        for byte, locations in enumerate(table):
            claimant = self._table[byte][0] if self._table[byte] else None
            if claimant is None or not locations:
                compiled.append(())
                continue
            name, fn = claimant
            compiled.append(
                tuple(
                    (
                        loc.offset,
                        loc.length,
                        loc.needed,
                        tuple((g.offset, g.mask, g.value) for g in loc.guards if g.offset),
                        loc.protocol,
                        name,
                        fn,
                    )
                    for loc in locations
                )
            )
        return tuple(compiled)

    def _split_options(
        self, specs: Sequence[ProtocolSpec], options: Mapping[str, object]
    ) -> dict[str, Mapping[str, object]]:
        if not isinstance(options, Mapping):
            raise InputTypeError(
                f"options must be a mapping, not {type(options).__name__}", code="not-mapping"
            )
        per: dict[str, dict[str, object]] = {s.name: {} for s in specs}
        for key, value in options.items():
            if key in per and isinstance(value, Mapping):
                for k, v in value.items():
                    per[key][k] = v
                continue
            users = [s for s in specs if any(o.name == key for o in s.options)]
            if not users:
                raise InputValueError(
                    f"option {key!r} belongs to none of {', '.join(self.protocols)}",
                    code="unknown-option",
                )
            for spec in users:
                per[spec.name].setdefault(key, value)
        return {s.name: resolve_options(s, per[s.name]) for s in specs}

    def _first_bytes(self, spec: ProtocolSpec, opts: Mapping[str, object]) -> frozenset[int]:
        impl = self.host.impl("sidkit_first_bytes", spec.name)
        if impl is None:
            return spec.first_bytes
        claimed = self._call_plugin(impl, spec.name, {"protocol": spec.name, "options": opts})
        if claimed is None:
            return spec.first_bytes
        try:
            result: frozenset[object] = frozenset(claimed)  # type: ignore[call-overload]
        except TypeError as exc:
            raise PluginError(f"{spec.name}: sidkit_first_bytes returned {claimed!r}") from exc
        ints = frozenset(b for b in result if isinstance(b, int) and 0 <= b <= 255)
        if len(ints) != len(result):
            raise PluginError(f"{spec.name}: sidkit_first_bytes returned {claimed!r}")
        return ints

    @staticmethod
    def _call_plugin(impl: pluggy.HookImpl, protocol: str, kwargs: Mapping[str, object]) -> object:
        args = {k: v for k, v in kwargs.items() if k in impl.argnames}
        try:
            return impl.function(**args)
        except SidkitError:
            raise
        except Exception as exc:
            raise PluginError(f"{protocol}: plugin {impl.plugin_name} raised {exc!r}") from exc

    # -- public API --

    def options(self, protocol: str) -> Mapping[str, object]:
        """The complete, checked options *protocol* runs with."""
        if protocol not in self._options:
            raise InputValueError(f"{protocol!r} is not configured", code="unknown-protocol")
        return self._options[protocol]

    def claimants(self, first_byte: int) -> tuple[str, ...]:
        """The protocols tried, in order, for a payload starting with *first_byte*."""
        rfc9443_class(first_byte)  # validates
        return tuple(name for name, _fn in self._table[first_byte])

    def extract(
        self, payload: bytes | bytearray | memoryview, tuple: FiveTuple | None = None
    ) -> SessionId | None:
        """The session ID of one UDP *payload*, or ``None`` if no configured protocol finds one.

        *tuple* (the datagram's :class:`~sidkit.keys.FiveTuple`) is passed to the plugins;
        only some use it (IPsec tells IKE on port 500 from NAT-T on 4500 by it).
        """
        data = payload if type(payload) is bytes else as_bytes(payload, "payload")
        if tuple is not None and not isinstance(tuple, FiveTuple):
            raise InputTypeError(
                f"tuple must be a FiveTuple or None, not {type(tuple).__name__}",
                code="not-five-tuple",
            )
        if not data:
            return None
        first = data[0]
        claims = self._calls[first]
        if not claims:
            return None
        for off, n, needed, guards, protocol, claimant, bound in self._shortcut[first]:
            if len(data) >= needed:
                for g, mask, want in guards:
                    if data[g] & mask != want:
                        break
                else:
                    # trusted_session_id(), inlined: this is the whole cost of the shortcut
                    value = data[off : off + n]
                    made: SessionId = _new(SessionId)
                    _set_protocol(made, protocol)
                    _set_value(made, value)
                    _set_lazy(made, (_exact_details, claimant, bound, data, tuple, value))
                    return made
        name = ""
        try:
            for name, fn, opts in claims:
                sid = fn(name, data, tuple, opts)
                if sid is not None:
                    if type(sid) is not SessionId and not isinstance(sid, SessionId):
                        raise PluginError(
                            f"{name}: sidkit_extract returned {type(sid).__name__}, "
                            "not SessionId or None"
                        )
                    return sid
        except SidkitError:
            raise
        except Exception as exc:
            raise PluginError(f"{name}: plugin raised {exc!r}") from exc
        return None

    def sid_locations(self) -> tuple[SidLocation, ...]:
        """Every configured protocol's :class:`SidLocation` list, concatenated in order.

        Raises :class:`NotSteerableError` if a protocol cannot describe its ID under its
        options (no ``sidkit_sid_locations``, or it returned ``None``).
        """
        result: list[SidLocation] = []
        for name in self.protocols:
            locations = self._plugin_locations(name)
            if locations is None:
                raise NotSteerableError(
                    f"protocol {name!r} cannot describe its session ID as fixed locations "
                    "with these options"
                )
            result.extend(locations)
        return tuple(result)

    def _plugin_locations(self, name: str) -> tuple[SidLocation, ...] | None:
        """What *name*'s ``sidkit_sid_locations`` says under its options (checked)."""
        impl = self.host.impl("sidkit_sid_locations", name)
        if impl is None:
            return None
        found = self._call_plugin(impl, name, {"protocol": name, "options": self._options[name]})
        if found is None:
            return None
        if not isinstance(found, Sequence) or not all(
            isinstance(loc, SidLocation) for loc in found
        ):
            raise PluginError(f"{name}: sidkit_sid_locations returned {found!r}")
        return tuple(found)

    def exact_table(self) -> tuple[tuple[SidLocation, ...], ...]:
        """For each first byte (the index, 0..255), the exact locations (``exact=True``)
        that decide :meth:`extract` for payloads starting with that byte.

        They are the locations of the protocol asked *first* for that byte (a later
        protocol is only asked when the first finds nothing, which no location can tell),
        as far as their guards on offset 0 accept the byte. If one of them applies to a
        payload, :meth:`extract` returns ``SessionId(location.protocol, the location's
        bytes)`` -- it takes this shortcut itself, the plugin's details computed only when
        read; a caller slicing for itself gets no details -- and if none applies, only
        :meth:`extract` can tell. A protocol without
        locations under its options contributes none (no error, unlike
        :meth:`sid_locations`).
        """
        if self._exact is None:
            per: dict[str, tuple[SidLocation, ...]] = {}
            for name in self.protocols:
                # a location that names no protocol is the claimant's
                per[name] = tuple(
                    loc if loc.protocol else attrs.evolve(loc, protocol=name)
                    for loc in self._plugin_locations(name) or ()
                    if loc.exact
                )
            table: list[tuple[SidLocation, ...]] = []
            for byte, claimants in enumerate(self._table):
                first = per[claimants[0][0]] if claimants else ()
                table.append(
                    tuple(
                        loc
                        for loc in first
                        if all(g.offset or byte & g.mask == g.value for g in loc.guards)
                    )
                )
            self._exact = tuple(table)
        return self._exact

    def __repr__(self) -> str:
        return f"Extractor(plugins={list(self.protocols)!r})"
