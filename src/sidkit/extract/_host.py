# Strategy: the host side of the plugin contract (sidkit.extract._contract). A PluginHost
# loads entry points one by one, so a broken plugin costs a warning, never the host, and
# keeps the protocols each plugin declared; default_host() is the process-wide one. Option
# text from the command line (PROTOCOL.NAME=VALUE) is converted here by each option's
# declared type, so every command reads options the same way.
"""Loading plugins, the protocols they declare, and option text from the command line."""

from __future__ import annotations

import ast
import importlib.metadata
import types
import warnings
from collections.abc import Iterable, Mapping

import attrs
import pluggy

from sidkit._errors import InputTypeError, InputValueError
from sidkit.extract._contract import (
    ENTRY_POINT_GROUP,
    Option,
    PluginError,
    PluginLoadWarning,
    ProtocolSpec,
    UnknownProtocolError,
    make_plugin_manager,
)

__all__ = ["PluginHost", "default_host", "parse_option_assignments", "usable_without_options"]


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
            if not {set, frozenset} & set(types):
                raise bad("an integer (decimal or 0x hex)") from None
        # an integer or a set of them (dtls.cid_length): 8,17 or {8,17}
        try:
            return frozenset(int(v, 0) for v in value.strip("{}[]() ").split(",") if v.strip())
        except ValueError:
            raise bad("an integer or comma-separated integers such as 8,17") from None
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
    or ``0x`` hex (for an option that also takes a set, comma-separated integers such as
    ``8,17`` or ``{8,17}``), ``none`` where None is allowed, booleans as
    true/false/yes/no/1/0, tuple options (``fixed.guards``) as a Python literal, ID
    collections (``quic.known_cids``) as comma-separated hex. A bare name no installed
    protocol knows is kept as a literal or text, and the extractor refuses it with the list
    of protocols. Malformed text, unknown protocols and unconvertible values raise
    :class:`~sidkit.InputValueError`.
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
