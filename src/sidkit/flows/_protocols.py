# Strategy: which plugins read a capture when the user names none, and how per-protocol
# options are written. The defaults are the protocols whose IDs are safe to look for on
# unknown traffic (DEFAULT_PROTOCOLS says why each); a protocol that needs its port or its
# configuration joins only when named or configured. Options arrive as
# {"quic": {"cid_length": 8}} or {"quic.cid_length": 8} and leave as one dict per protocol;
# checking their values is the plugins' business, not this module's.
"""The default protocols and per-protocol options of sidkit.flows (private)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sidkit._errors import InputTypeError, InputValueError
from sidkit.plugin import PluginHost, default_host

__all__ = ["DEFAULT_PROTOCOLS", "default_protocols", "split_options"]

DEFAULT_PROTOCOLS: Final = ("quic", "wireguard", "dtls")
"""The protocols used when none are named, in this order, as far as they are installed and
usable with the given options. They are the ones whose IDs can be recognised on unknown
traffic: QUIC by its header form and fixed bits, WireGuard by type, reserved zeros and exact
sizes, DTLS by its content type -- but DTLS only when ``dtls.cid_length`` is given, because
that length is not on the wire of a ``tls12_cid`` record (RFC 9146 section 4). The others
need their port or configuration to be safe (IPsec on 4500, GTP-U on 2152, RTP's SSRC would
claim a quarter of all random first bytes): name them with ``--protocol``."""


def split_options(options: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """Options as one dict per protocol: ``{"quic": {"cid_length": 8}}`` and
    ``{"quic.cid_length": 8}`` both give ``{"quic": {"cid_length": 8}}``."""
    per: dict[str, dict[str, object]] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise InputTypeError("option names must be str", code="bad-option")
        if isinstance(value, Mapping):
            per.setdefault(key, {}).update(value)
        elif "." in key:
            proto, _, name = key.partition(".")
            per.setdefault(proto, {})[name] = value
        else:
            raise InputValueError(
                f"option {key!r} must name its protocol, as in quic.cid_length",
                code="bad-option",
            )
    return per


def default_protocols(
    options: Mapping[str, object] | None = None, *, host: PluginHost | None = None
) -> tuple[str, ...]:
    """:data:`DEFAULT_PROTOCOLS` that are installed and have every required option in
    *options* (so DTLS joins only with ``dtls.cid_length``), plus any other protocol that
    *options* configures."""
    host = host or default_host()
    per = split_options(options or {})
    chosen: list[str] = []
    for name in (*DEFAULT_PROTOCOLS, *per):
        if name in chosen or name not in host.protocols:
            continue
        spec = host.spec(name)
        if all(not o.required or o.name in per.get(name, {}) for o in spec.options):
            chosen.append(name)
    return tuple(chosen)
