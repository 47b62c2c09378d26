# Strategy: protocols are pluggy plugins, and sidkit's own protocols are written exactly as a
# third-party package would write them (plugins/sidkit_*/, found through the "sidkit"
# entry-point group). This module is the host side of that contract and nothing else: the
# markers, the hook specifications, the value types a plugin returns to describe itself
# (ProtocolSpec, Option) and option checking. Loading plugins is sidkit.extract._host's job;
# extracting is the Extractor's, through the hooks. Nothing here imports a plugin by name.
# sidkit.plugin is the public face a plugin author imports.
"""The plugin protocol: markers, hook specifications, plugin loading.

A plugin is any object (usually a module) with functions marked ``@sidkit.plugin.hookimpl``
and named after the hooks below. See :doc:`/plugins` for a worked example.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Final

import attrs
import pluggy

from sidkit._errors import InputTypeError, InputValueError
from sidkit.extract._location import SidLocation
from sidkit.keys import FiveTuple, SessionId

__all__ = [
    "DETAIL_VALIDATED",
    "ENTRY_POINT_GROUP",
    "PROJECT",
    "Option",
    "PluginError",
    "PluginLoadWarning",
    "ProtocolSpec",
    "UnknownProtocolError",
    "hookimpl",
    "hookspec",
    "make_plugin_manager",
    "resolve_options",
]

PROJECT: Final = "sidkit"
"""The pluggy project name; hook names carry the ``sidkit_`` prefix."""

ENTRY_POINT_GROUP: Final = "sidkit"
"""The ``[project.entry-points.sidkit]`` group through which plugins are discovered."""

DETAIL_VALIDATED: Final = "validated"
"""The :class:`~sidkit.keys.SessionId` details key by which a parser says that the datagram's
*structure* checked out: every length and count field of the format that bounds the packet
was read and is consistent with the datagram's size (a QUIC v1 Length, a Version
Negotiation list of 32-bit versions, a DTLS record length), beyond the bytes that merely
carry the ID. ``True`` or absent. ``sidkit sid`` without ``--protocol`` lists such IDs
first: a random payload rarely satisfies a length field, while any bytes make an ESP SPI
or an RTP SSRC."""

hookspec: Final = pluggy.HookspecMarker(PROJECT)
"""Marker for hook specifications (used by this module only)."""

hookimpl: Final = pluggy.HookimplMarker(PROJECT)
"""Marker a plugin puts on its hook implementations: ``@hookimpl def sidkit_extract(...)``."""

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class PluginError(InputValueError):
    """A plugin that cannot be used: bad hook signature, unknown hook, bad description,
    a protocol name another plugin already provides, or an exception inside plugin code.

    Raised for plugins a caller registers explicitly; plugins found through entry points
    produce a :class:`PluginLoadWarning` instead and are left out.
    """

    code = "bad-plugin"


class UnknownProtocolError(InputValueError):
    """A protocol name that no loaded plugin provides."""

    code = "unknown-protocol"


class PluginLoadWarning(UserWarning):
    """An installed plugin was skipped because it is broken; the message says why."""


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InputTypeError(f"{what} must be a str, not {type(value).__name__}", code="not-str")
    if not _NAME_RE.match(value):
        raise InputValueError(
            f"{what} {value!r} must match {_NAME_RE.pattern} (lower case, digits, '_', '-')",
            code="bad-name",
        )
    return value


def _identity(value: object) -> object:
    return value


@attrs.frozen
class Option:
    """One option a protocol accepts, with its type, default and meaning.

    ``type`` is what ``isinstance`` must accept (``bool`` is never accepted where ``int`` is
    asked, since ``True`` as a length is always a mistake). ``check``, if given, receives the
    type-checked value and returns the value the plugin will see (a normalised form, e.g. a
    frozenset), raising :class:`sidkit.InputValueError` for values out of range. The default
    is used as is, without ``check``. ``required`` options have no usable default: building
    an extractor without them fails early instead of returning ``None`` for every packet.
    """

    name: str = attrs.field(validator=lambda _i, _a, v: _check_name(v, "option name"))
    type: type | tuple[type, ...]
    default: object
    doc: str
    check: Callable[[object], object] = _identity
    required: bool = False


def _to_first_bytes(value: Iterable[int] | None) -> frozenset[int]:
    if value is None:
        return frozenset(range(256))
    result = frozenset(value)
    for byte in result:
        if not isinstance(byte, int) or isinstance(byte, bool) or not 0 <= byte <= 255:
            raise InputValueError(f"first byte {byte!r} is not in 0..255", code="bad-first-byte")
    return result


def _to_options(value: Iterable[Option]) -> tuple[Option, ...]:
    options = tuple(value)
    for opt in options:
        if not isinstance(opt, Option):
            raise InputTypeError(f"options must be Option values, not {opt!r}", code="bad-option")
    if len({o.name for o in options}) != len(options):
        raise InputValueError("option names must be unique", code="bad-option")
    return options


def _to_strings(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise InputTypeError(f"references must be str, not {item!r}", code="not-str")
    return items


def _to_ports(value: Iterable[int]) -> tuple[int, ...]:
    ports = tuple(value)
    for port in ports:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise InputValueError(f"port {port!r} is not in 1..65535", code="bad-port")
    return ports


@attrs.frozen
class ProtocolSpec:
    """What a plugin says about one protocol it extracts session IDs from.

    ``first_bytes`` are the values of the payload's first byte this protocol can start with,
    under default options (``None`` = any). The extractor uses them to demultiplex several
    protocols sharing one port the way RFC 9443 does; a plugin whose claim depends on its
    options implements ``sidkit_first_bytes`` as well. ``ports`` are well-known UDP ports
    (informational: for documentation, tshark's "decode as", a CLI default). ``references``
    name the specification sections the parser follows.
    """

    name: str = attrs.field(validator=lambda _i, _a, v: _check_name(v, "protocol name"))
    summary: str
    first_bytes: frozenset[int] = attrs.field(default=None, converter=_to_first_bytes)
    ports: tuple[int, ...] = attrs.field(default=(), converter=_to_ports)
    options: tuple[Option, ...] = attrs.field(default=(), converter=_to_options)
    references: tuple[str, ...] = attrs.field(default=(), converter=_to_strings)

    def option(self, name: str) -> Option:
        """The :class:`Option` called *name*; :class:`sidkit.InputValueError` if none."""
        for opt in self.options:
            if opt.name == name:
                return opt
        known = ", ".join(o.name for o in self.options) or "none"
        raise InputValueError(
            f"protocol {self.name!r} has no option {name!r} (options: {known})",
            code="unknown-option",
        )


def resolve_options(spec: ProtocolSpec, given: Mapping[str, object]) -> Mapping[str, object]:
    """Check *given* against *spec*'s options and fill in defaults.

    Returns a read-only mapping with every option of the protocol. Unknown names and missing
    required options raise :class:`sidkit.InputValueError`; wrong types raise
    :class:`sidkit.InputTypeError`; values out of range raise whatever the option's ``check``
    raises (an :class:`~sidkit.InputValueError`).
    """
    if not isinstance(given, Mapping):
        raise InputTypeError(
            f"options must be a mapping, not {type(given).__name__}", code="not-mapping"
        )
    resolved: dict[str, object] = {}
    for name, value in given.items():
        opt = spec.option(name)
        allowed = opt.type if isinstance(opt.type, tuple) else (opt.type,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join(t.__name__ for t in allowed)
            raise InputTypeError(
                f"option {spec.name}.{name} must be {names}, not {type(value).__name__}",
                code="bad-option-type",
            )
        resolved[name] = opt.check(value)
    for opt in spec.options:
        if opt.name not in resolved:
            if opt.required:
                raise InputValueError(
                    f"protocol {spec.name!r} needs option {opt.name!r}: {opt.doc}",
                    code="missing-option",
                )
            resolved[opt.name] = opt.default
    return types.MappingProxyType(resolved)


# --- hook specifications -------------------------------------------------------------------
# Arguments are passed by name, and pluggy lets an implementation accept any subset of them.


@hookspec
def sidkit_protocols() -> Sequence[ProtocolSpec]:  # type: ignore[empty-body]
    """Describe the protocols this plugin extracts session IDs from.

    Called once when the plugin is loaded. Return one :class:`ProtocolSpec` per protocol;
    each protocol name must be unique among all loaded plugins.
    """


@hookspec(firstresult=True)
def sidkit_extract(
    protocol: str,
    payload: bytes,
    five_tuple: FiveTuple | None,
    options: Mapping[str, object],
) -> SessionId | None:
    """Return the session ID of one UDP *payload*, or ``None`` if it carries none.

    *protocol* is one of the names this plugin declared; an implementation serving several
    protocols branches on it, and returns ``None`` for names it does not own. *options* are
    already checked and complete (see :func:`resolve_options`). *five_tuple* is the
    datagram's addresses when the caller knows them (some protocols depend on the port).

    ``None`` means "no session ID here": another protocol's packet, a packet type that
    carries none (a plaintext handshake record, a keep-alive), an empty ID. A packet that
    claims to be this protocol but is cut short or inconsistent raises
    :class:`sidkit.extract.MalformedPacketError`. Any other exception is a plugin bug; the
    extractor reports it as a :class:`PluginError`.
    """


@hookspec(firstresult=True)
def sidkit_first_bytes(protocol: str, options: Mapping[str, object]) -> Collection[int] | None:
    """Optional: the first-byte values *protocol* claims under *options*.

    Implement it when the claim depends on options (QUIC with a greased fixed bit claims
    more); otherwise the extractor uses the spec's ``first_bytes``.
    """


@hookspec(firstresult=True)
def sidkit_sid_locations(
    protocol: str, options: Mapping[str, object]
) -> Sequence[SidLocation] | None:
    """Optional: where the session ID sits, as fixed offsets guarded by byte tests.

    Return :class:`sidkit.extract.SidLocation` values in priority order (the first whose
    guards pass applies), or ``None`` when the ID cannot be described that way under these
    options (a QUIC short header whose length comes from a set of known IDs). A kernel
    steering compiler turns the list into a cBPF or eBPF program.
    """


# --- loading ------------------------------------------------------------------------------


def make_plugin_manager() -> pluggy.PluginManager:
    """A pluggy manager with sidkit's hook specifications and no plugins."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(sys.modules[__name__])
    return manager
