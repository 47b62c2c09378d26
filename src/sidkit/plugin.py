# Strategy: protocols are pluggy plugins, and sidkit's own protocols are written exactly as a
# third-party package would write them (plugins/sidkit_*/, found through the "sidkit"
# entry-point group). This module is the host side of that contract and nothing else: the
# markers, the hook specifications, the value types a plugin returns to describe itself
# (ProtocolSpec, Option), option checking, and a PluginHost that loads entry points one by
# one so that a broken plugin costs a warning, never the host. It does not extract anything
# itself (sidkit.extract does, through the hooks) and it never imports a plugin by name.
"""The plugin protocol: markers, hook specifications, plugin loading.

A plugin is any object (usually a module) with functions marked ``@sidkit.plugin.hookimpl``
and named after the hooks below. See :doc:`/plugins` for a worked example.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import types
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import attrs
import pluggy

from sidkit._errors import InputTypeError, InputValueError

if TYPE_CHECKING:
    from sidkit.extract import SidLocation
    from sidkit.keys import FiveTuple, SessionId

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT",
    "Option",
    "PluginError",
    "PluginHost",
    "PluginLoadWarning",
    "ProtocolSpec",
    "UnknownProtocolError",
    "default_host",
    "hookimpl",
    "hookspec",
    "make_plugin_manager",
    "parse_option_assignments",
    "resolve_options",
    "usable_without_options",
]

PROJECT: Final = "sidkit"
"""The pluggy project name; hook names carry the ``sidkit_`` prefix."""

ENTRY_POINT_GROUP: Final = "sidkit"
"""The ``[project.entry-points.sidkit]`` group through which plugins are discovered."""

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


@attrs.frozen
class _Provided:
    spec: ProtocolSpec
    plugin: object
    plugin_name: str


class PluginHost:
    """A plugin manager plus the protocols its plugins declared.

    With ``entry_points=True`` every plugin of the ``sidkit`` entry-point group is loaded;
    each is imported, registered, checked (``check_pending``: no ``sidkit_*`` function
    without a specification) and asked for its protocols, one at a time, so that a broken
    plugin is reported with a :class:`PluginLoadWarning` naming it and left out, while the
    others load. Plugins passed in ``plugins`` (or to :meth:`register`) are the caller's
    own choice: a problem with them raises :class:`PluginError`.
    """

    def __init__(self, *, entry_points: bool = True, plugins: Iterable[object] = ()) -> None:
        self.manager = make_plugin_manager()
        self._provided: dict[str, _Provided] = {}
        if entry_points:
            self._load_entry_points()
        for plugin in plugins:
            self.register(plugin)

    @property
    def protocols(self) -> Mapping[str, ProtocolSpec]:
        """Protocol name -> its :class:`ProtocolSpec`, in load order."""
        return types.MappingProxyType({n: p.spec for n, p in self._provided.items()})

    def spec(self, protocol: str) -> ProtocolSpec:
        """The spec of *protocol*, or :class:`UnknownProtocolError`."""
        return self._lookup(protocol).spec

    def plugin_of(self, protocol: str) -> object:
        """The plugin object that provides *protocol*."""
        return self._lookup(protocol).plugin

    def _lookup(self, protocol: str) -> _Provided:
        if not isinstance(protocol, str):
            raise InputTypeError(
                f"protocol must be a str, not {type(protocol).__name__}", code="not-str"
            )
        try:
            return self._provided[protocol]
        except KeyError:
            known = ", ".join(sorted(self._provided)) or "none loaded"
            raise UnknownProtocolError(
                f"no plugin provides protocol {protocol!r} (known: {known})"
            ) from None

    def impl(self, hook: str, protocol: str) -> pluggy.HookImpl | None:
        """The implementation of *hook* in the plugin that provides *protocol*, if any."""
        plugin = self._lookup(protocol).plugin
        caller: pluggy.HookCaller = getattr(self.manager.hook, hook)
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                return impl
        return None

    def register(self, plugin: object, name: str | None = None) -> tuple[ProtocolSpec, ...]:
        """Register *plugin* and return the protocols it declared.

        Registering an already registered plugin returns its protocols again.
        """
        if self.manager.is_registered(plugin):
            return tuple(p.spec for p in self._provided.values() if p.plugin is plugin)
        label = name or getattr(plugin, "__name__", None) or repr(plugin)
        try:
            registered = self.manager.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise PluginError(f"plugin {label}: {exc}") from exc
        if registered is None:  # pragma: no cover - only for blocked names, which we never set
            raise PluginError(f"plugin {label} is blocked")
        try:
            return self._adopt(plugin, registered)
        except BaseException:
            self.manager.unregister(plugin)
            raise

    def _adopt(self, plugin: object, plugin_name: str) -> tuple[ProtocolSpec, ...]:
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {plugin_name}: {exc}") from exc
        impls = [
            i for i in self.manager.hook.sidkit_protocols.get_hookimpls() if i.plugin is plugin
        ]
        if not impls:
            raise PluginError(f"plugin {plugin_name} implements no sidkit_protocols hook")
        try:
            declared = impls[0].function()
        except Exception as exc:
            raise PluginError(f"plugin {plugin_name}: sidkit_protocols() raised {exc!r}") from exc
        if not isinstance(declared, Iterable) or isinstance(declared, str | bytes):
            raise PluginError(
                f"plugin {plugin_name}: sidkit_protocols() must return a sequence of "
                f"ProtocolSpec, got {type(declared).__name__}"
            )
        try:
            specs = tuple(declared)
        except Exception as exc:
            raise PluginError(f"plugin {plugin_name}: sidkit_protocols() raised {exc!r}") from exc
        extract_impls = self.manager.hook.sidkit_extract.get_hookimpls()
        if not any(i.plugin is plugin for i in extract_impls):
            raise PluginError(f"plugin {plugin_name} implements no sidkit_extract hook")
        seen: set[str] = set()
        for spec in specs:
            if not isinstance(spec, ProtocolSpec):
                raise PluginError(
                    f"plugin {plugin_name}: sidkit_protocols() must return ProtocolSpec "
                    f"values, got {type(spec).__name__}"
                )
            if spec.name in self._provided or spec.name in seen:
                other = self._provided[spec.name].plugin_name if spec.name in self._provided else ""
                raise PluginError(
                    f"plugin {plugin_name}: protocol {spec.name!r} is already provided"
                    + (f" by plugin {other}" if other else "")
                )
            seen.add(spec.name)
        checked = tuple(s for s in specs if isinstance(s, ProtocolSpec))
        for spec in checked:
            self._provided[spec.name] = _Provided(spec, plugin, plugin_name)
        return checked

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            where = f"{ep.name} = {ep.value}"
            dist = getattr(ep, "dist", None)
            if dist is not None:
                where += f" (from {dist.name} {dist.version})"
            try:
                plugin = ep.load()
            except Exception as exc:
                warnings.warn(
                    PluginLoadWarning(f"sidkit plugin {where} failed to import: {exc!r}"),
                    stacklevel=3,
                )
                continue
            try:
                self.register(plugin, name=ep.name)
            except PluginError as exc:
                warnings.warn(
                    PluginLoadWarning(f"sidkit plugin {where} was skipped: {exc}"), stacklevel=3
                )


_DEFAULT_HOST: PluginHost | None = None


def default_host(*, reload: bool = False) -> PluginHost:
    """The process-wide host with every installed plugin, loaded on first use.

    Pass ``reload=True`` after installing a plugin in a running process.
    """
    global _DEFAULT_HOST  # noqa: PLW0603 - one lazily built registry per process
    if _DEFAULT_HOST is None or reload:
        _DEFAULT_HOST = PluginHost(entry_points=True)
    return _DEFAULT_HOST


def _option_value(option: Option, text: str) -> object:
    """*text* converted by *option*'s declared type (one rule for every command)."""
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    value = text.strip()

    def bad(expected: str) -> InputValueError:
        return InputValueError(
            f"option {option.name}={text!r}: expected {expected}", code="bad-option-text"
        )

    if type(None) in types and value.lower() in ("none", ""):
        return None
    if bool in types:
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise bad("true or false")
    if int in types:
        try:
            return int(value, 0)
        except ValueError:
            raise bad("an integer (decimal or 0x hex)") from None
    if str in types:
        return value
    if tuple in types or list in types:
        try:
            return ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise bad("a Python literal such as ((0, 255, 4),)") from None
    # Collections of IDs (object-typed options such as quic.known_cids): comma-separated hex.
    try:
        return [bytes.fromhex(v.replace(":", "")) for v in value.split(",") if v]
    except ValueError:
        raise bad("comma-separated hex") from None


def parse_option_assignments(
    items: Iterable[str], host: PluginHost | None = None
) -> dict[str, object]:
    """Turn command-line ``PROTOCOL.NAME=VALUE`` / ``NAME=VALUE`` texts into extractor options.

    The result is the mapping :class:`sidkit.extract.Extractor` takes: per protocol
    (``{"quic": {"cid_length": 8}}``) for the dotted form, flat (``{"cid_length": 8}``) for
    the bare one. The value is converted by the option's declared type: integers in decimal
    or ``0x`` hex, ``none`` where None is allowed, booleans as true/false/yes/no/1/0, tuple
    options (``fixed.guards``) as a Python literal, ID collections (``quic.known_cids``) as
    comma-separated hex. A bare name no installed protocol knows is kept as a literal or
    text, and the extractor refuses it with the list of protocols. Malformed text, unknown
    protocols and unconvertible values raise :class:`~sidkit.InputValueError`.
    """
    host = host or default_host()
    out: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputValueError(
                f"option {item!r} must look like NAME=VALUE or PROTOCOL.NAME=VALUE",
                code="bad-option-text",
            )
        protocol, dot, name = key.rpartition(".")
        if dot:
            value = _option_value(host.spec(protocol).option(name), text)
            per = out.setdefault(protocol, {})
            if not isinstance(per, dict):
                raise InputValueError(
                    f"{protocol!r} is given both as an option and as a protocol",
                    code="bad-option-text",
                )
            per[name] = value
            continue
        if isinstance(out.get(key), dict):
            raise InputValueError(
                f"{key!r} is given both as an option and as a protocol", code="bad-option-text"
            )
        owner = next(
            (s for s in host.protocols.values() if any(o.name == key for o in s.options)), None
        )
        if owner is not None:
            out[key] = _option_value(owner.option(key), text)
        else:
            try:
                out[key] = ast.literal_eval(text.strip())
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                out[key] = text.strip()
    return out


def usable_without_options(host: PluginHost | None = None) -> tuple[str, ...]:
    """Installed protocols that need no options, in the host's order.

    These can be tried on unknown traffic; protocols with required options (``fixed``'s
    offset and length, DTLS's connection-ID length, which is not on the wire) cannot.
    """
    host = host or default_host()
    return tuple(
        name
        for name, spec in host.protocols.items()
        if not any(opt.required for opt in spec.options)
    )
