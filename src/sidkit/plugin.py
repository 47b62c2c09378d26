# Strategy: the one module a plugin author imports. The contract (markers, hook
# specifications, the values a plugin returns) lives in sidkit.extract._contract and the
# loading in sidkit.extract._host; this face keeps the import path plugins have always used,
# ``from sidkit.plugin import hookimpl, ProtocolSpec``, and never grows code of its own.
"""The plugin protocol: markers, hook specifications, plugin loading.

A plugin is any object (usually a module) with functions marked ``@sidkit.plugin.hookimpl``
and named after the hooks below. See :doc:`/plugins` for a worked example.
"""

from __future__ import annotations

from sidkit.extract._contract import (
    DETAIL_VALIDATED,
    ENTRY_POINT_GROUP,
    PROJECT,
    Option,
    PluginError,
    PluginLoadWarning,
    ProtocolSpec,
    UnknownProtocolError,
    hookimpl,
    hookspec,
    make_plugin_manager,
    resolve_options,
    sidkit_extract,
    sidkit_first_bytes,
    sidkit_protocols,
    sidkit_sid_locations,
)
from sidkit.extract._host import (
    PluginHost,
    default_host,
    parse_option_assignments,
    usable_without_options,
)

__all__ = [
    "DETAIL_VALIDATED",
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
    "sidkit_extract",
    "sidkit_first_bytes",
    "sidkit_protocols",
    "sidkit_sid_locations",
    "usable_without_options",
]
