"""The ``exact`` promise of :class:`sidkit.extract.SidLocation`, checked with Hypothesis.

A location marked ``exact`` promises: wherever it applies, the plugin's parser returns
exactly ``SessionId(protocol, payload[offset:offset+length])``. ``sidkit flows`` relies on it
to skip the parser, so these properties are what make that shortcut safe. The oracle is the
plugin's own parser, called directly (no wrapper to hide a difference) and through an
Extractor, on payloads built to match each exact location (sizes from the minimum upward,
every unguarded byte random), on each protocol's valid packets, and on random bytes.

The last tests show the check has teeth: a plugin that wraps the WireGuard parser but marks
every WireGuard location exact (the handshake ones are not: their parser wants an exact
size) must be caught.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs
import pytest
import sidkit_wireguard
from fixtures.hooks import call_hook
from fixtures.packets import PROTOCOL_OPTIONS, PROTOCOL_PACKETS
from hypothesis import given
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.extract import Extractor, SidLocation, locate
from sidkit.keys import FiveTuple, SessionId
from sidkit.plugin import PluginHost, ProtocolSpec, default_host, hookimpl, resolve_options

# Every built-in protocol that marks a location exact, under option sets that change the
# locations (lengths at both ends of their range, QUIC-LB self-description, a greased bit).
CONFIGS: list[tuple[str, dict[str, object]]] = [
    ("quic", {"cid_length": 8}),
    ("quic", {"cid_length": 1}),
    ("quic", {"cid_length": 20}),
    ("quic", {"cid_length": 8, "grease_quic_bit": True}),
    ("quic", {"quic_lb": True}),
    ("quic", {"quic_lb": True, "cid_length": 4, "grease_quic_bit": True}),
    ("dtls", {"cid_length": 8}),
    ("dtls", {"cid_length": 1}),
    ("dtls", {"cid_length": 255}),
    ("openvpn", {}),
    ("rtp", {}),
]
IDS = [f"{p}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for p, o in CONFIGS]

five_tuples = st.one_of(
    st.none(),
    st.builds(
        FiveTuple,
        st.sampled_from(["192.0.2.1", "198.51.100.7"]),
        st.sampled_from([500, 4500, 443, 51820, 1194, 40000]),
        st.sampled_from(["192.0.2.2", "203.0.113.9"]),
        st.sampled_from([500, 4500, 443, 51820, 1194, 40001]),
    ),
)


@st.composite
def matching(draw: st.DrawFn, location: SidLocation) -> bytes:
    """A payload the location applies to: at least ``needed`` bytes, random except where
    the guards test (and there only the tested bits are set)."""
    size = draw(st.one_of(st.just(location.needed), st.integers(location.needed, 400)))
    data = bytearray(draw(st.binary(min_size=size, max_size=size)))
    for off, mask, value in location.guards:
        data[off] = (data[off] & ~mask & 0xFF) | value
    assert location.match(bytes(data)) is not None
    return bytes(data)


def _payloads(locations: Sequence[SidLocation], protocol: str) -> st.SearchStrategy[bytes]:
    strategies = [st.sampled_from(locations).flatmap(matching), st.binary(max_size=300)]
    if protocol in PROTOCOL_PACKETS:
        strategies.append(PROTOCOL_PACKETS[protocol]())
    return st.one_of(*strategies)


def _exact(extractor: Extractor) -> tuple[SidLocation, ...]:
    return tuple(loc for loc in extractor.sid_locations() if loc.exact)


def exactness_property(
    extractor: Extractor, hook: Callable[..., object], options: Mapping[str, object]
) -> Callable[[], None]:
    """The property for a one-protocol *extractor*: wherever an exact location applies,
    the hook and the extractor both return exactly that location's ID."""
    protocol = extractor.protocols[0]
    locations = _exact(extractor)
    assert locations, f"{protocol} claims no exact location: nothing to check"

    @given(_payloads(locations, protocol), five_tuples)
    def run(payload: bytes, five: FiveTuple | None) -> None:
        for location in locations:
            value = location.match(payload)
            if value is None:
                continue
            expected = SessionId(location.protocol, value)
            direct = call_hook(
                hook, protocol=protocol, payload=payload, five_tuple=five, options=options
            )
            assert isinstance(direct, SessionId), (payload.hex(), location, direct)
            assert direct == expected and direct.value == value, (payload.hex(), location)
            via = extractor.extract(payload, five)
            assert via == expected, (payload.hex(), location, via)

    return run


@pytest.mark.parametrize(("protocol", "options"), CONFIGS, ids=IDS)
def test_exact_locations_are_exact(protocol: str, options: dict[str, object]) -> None:
    extractor = Extractor([protocol], options)
    host = default_host()
    impl = host.impl("sidkit_extract", protocol)
    assert impl is not None
    exactness_property(extractor, impl.function, resolve_options(host.spec(protocol), options))()


def test_every_exact_claim_is_checked() -> None:
    """A built-in protocol that marks a location exact under its test options is among
    CONFIGS (so a new claim cannot go unchecked), and the claims the docs name hold."""
    configured = {p for p, _o in CONFIGS}
    for name in default_host().protocols:
        if name in ("fixed",):  # its SessionId carries the configurable label, not "fixed"
            continue
        try:
            locations = Extractor([name], PROTOCOL_OPTIONS.get(name, {})).sid_locations()
        except SidkitError:
            continue
        if any(loc.exact for loc in locations):
            assert name in configured, name
    # none of WireGuard's: sizes decide (exact handshakes, padded transport data)
    assert not any(loc.exact for loc in Extractor(["wireguard"]).sid_locations())
    quic = Extractor(["quic"], {"cid_length": 8}).sid_locations()
    assert [loc.offset for loc in quic if loc.exact] == [1]  # short header only
    assert Extractor(["quic"]).exact_table() == ((),) * 256  # length unknown: nothing


# --- exact_table: the per-first-byte shortcut over several protocols ---------------------

TABLE_CONFIGS: list[tuple[list[str], dict[str, dict[str, object]]]] = [
    (["quic", "wireguard", "dtls"], {"quic": {"cid_length": 8}, "dtls": {"cid_length": 4}}),
    # OpenVPN's P_DATA_V2 (first byte 0x48..0x4f) overlaps QUIC short headers: whoever is
    # listed first owns those bytes, and only its locations may decide them.
    (["openvpn", "quic"], {"quic": {"cid_length": 8}}),
    (["quic", "openvpn"], {"quic": {"cid_length": 8}}),
    (["rtp", "quic"], {"quic": {"cid_length": 6, "grease_quic_bit": True}}),
    (["quic", "rtp"], {"quic": {"quic_lb": True, "grease_quic_bit": True}}),
]


@pytest.mark.parametrize(("protocols", "options"), TABLE_CONFIGS)
def test_exact_table_decides_extract(
    protocols: list[str], options: dict[str, dict[str, object]]
) -> None:
    extractor = Extractor(protocols, options)
    table = extractor.exact_table()
    assert len(table) == 256
    every = tuple(
        loc for name in protocols for loc in _exact(Extractor([name], options.get(name, {})))
    )
    for byte, locations in enumerate(table):
        claimants = extractor.claimants(byte)
        assert all(loc.protocol == claimants[0] for loc in locations)
        assert all(loc.exact for loc in locations)

    @given(_payloads(every, protocols[0]), five_tuples)
    def run(payload: bytes, five: FiveTuple | None) -> None:
        if not payload:
            return
        found = locate(table[payload[0]], payload)
        if found is not None:
            location, value = found
            assert extractor.extract(payload, five) == SessionId(location.protocol, value)

    run()


# --- the check has teeth -------------------------------------------------------------------


class _OverclaimingWireGuard:
    """WireGuard's own parser, relabelled, with *every* WireGuard location marked exact."""

    name = "wg-overclaim"

    @hookimpl
    def sidkit_protocols(self) -> Sequence[ProtocolSpec]:
        return (ProtocolSpec(self.name, "test", first_bytes=sidkit_wireguard.SPEC.first_bytes),)

    @hookimpl
    def sidkit_extract(
        self, protocol: str, payload: bytes, five_tuple: FiveTuple | None
    ) -> SessionId | None:
        sid = sidkit_wireguard.sidkit_extract("wireguard", payload, {})
        return None if sid is None else SessionId(self.name, sid.value)

    @hookimpl
    def sidkit_sid_locations(self, protocol: str) -> Sequence[SidLocation]:
        real = sidkit_wireguard.sidkit_sid_locations("wireguard", {}) or ()
        return [attrs.evolve(loc, protocol=self.name, exact=True) for loc in real]


def test_a_false_exactness_claim_is_caught() -> None:
    plugin = _OverclaimingWireGuard()
    host = PluginHost(entry_points=False, plugins=[plugin])
    extractor = Extractor([plugin.name], host=host)
    impl = host.impl("sidkit_extract", plugin.name)
    assert impl is not None

    def hook(**kwargs: object) -> object:
        return plugin.sidkit_extract(
            str(kwargs["protocol"]),
            kwargs["payload"],  # type: ignore[arg-type]
            kwargs["five_tuple"],  # type: ignore[arg-type]
        )

    with pytest.raises(AssertionError):
        exactness_property(extractor, hook, {})()
