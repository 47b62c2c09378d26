"""Properties of every built-in plugin, with Hypothesis.

* Fuzz: any bytes -- random, or a valid packet cut short or with a byte changed -- give a
  SessionId, None, or a sidkit error; never another exception. Checked on each plugin's
  hook function directly (no wrapper to hide a bug) and through an Extractor. Every ID
  returned lies inside the payload (its bytes are a slice of it, at most 255 long -- a
  SidLocation's bound), and the Extractor's exact-location shortcut gives what the plugins
  give (the same ID or error, the same details, read lazily).
* The SidLocation contract: where a plugin's locations apply and its parser returns an ID,
  both give the same bytes; and on valid packets with a session ID a location applies
  (except QUIC long headers whose DCID is not of the configured length, by design).

``SIDKIT_FUZZ_EXAMPLES=100000`` runs the long fuzz test (skipped otherwise).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Mapping

import pytest
import sidkit_dtls
import sidkit_quic
from fixtures.hooks import call_hook
from fixtures.packets import PROTOCOL_OPTIONS, PROTOCOL_PACKETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.extract import Extractor, SidLocation, locate
from sidkit.keys import SessionId
from sidkit.plugin import default_host, resolve_options

PROTOCOLS = sorted(PROTOCOL_PACKETS)


@functools.cache
def _extractor(protocol: str) -> Extractor:
    return Extractor([protocol], PROTOCOL_OPTIONS.get(protocol, {}))


@functools.cache
def _reference(protocol: str) -> Extractor:
    return Extractor([protocol], PROTOCOL_OPTIONS.get(protocol, {}), exact=False)


def _outcome(extractor: Extractor, payload: bytes) -> object:
    """What extract() gives: the ID with its details, None, or the error's class."""
    try:
        sid = extractor.extract(payload)
    except SidkitError as exc:
        return type(exc)
    return sid if sid is None else (sid, dict(sid.details))


def check_invariants(sid: object, payload: bytes) -> None:
    """A returned ID is a SessionId whose bytes are a slice of the payload, 0..255 long."""
    if sid is None:
        return
    assert isinstance(sid, SessionId)
    assert type(sid.value) is bytes
    assert len(sid.value) <= min(len(payload), 255)
    assert sid.value in payload
    assert sid.protocol and isinstance(sid.details, Mapping)


@functools.cache
def _hook(protocol: str) -> tuple[Callable[..., object], Mapping[str, object]]:
    host = default_host()
    impl = host.impl("sidkit_extract", protocol)
    assert impl is not None
    return impl.function, resolve_options(host.spec(protocol), PROTOCOL_OPTIONS.get(protocol, {}))


@st.composite
def damaged(draw: st.DrawFn, protocol: str) -> bytes:
    """A valid packet, possibly cut short, with a byte changed, or random bytes."""
    packet = draw(st.one_of(PROTOCOL_PACKETS[protocol](), st.binary(max_size=300)))
    choice = draw(st.integers(0, 2))
    if choice == 1 and packet:
        packet = packet[: draw(st.integers(0, len(packet) - 1))]
    elif choice == 2 and packet:
        i = draw(st.integers(0, len(packet) - 1))
        packet = packet[:i] + bytes([draw(st.integers(0, 255))]) + packet[i + 1 :]
    return packet


def _check(protocol: str, payload: bytes) -> SessionId | None:
    fn, options = _hook(protocol)
    try:
        direct = call_hook(fn, protocol=protocol, payload=payload, five_tuple=None, options=options)
    except SidkitError:
        direct = SidkitError
    assert direct is None or direct is SidkitError or isinstance(direct, SessionId)
    try:
        via = _extractor(protocol).extract(payload)
    except SidkitError:
        via = SidkitError  # type: ignore[assignment]
    if payload and payload[0] in default_host().spec(protocol).first_bytes:
        assert via == direct
    check_invariants(direct if isinstance(direct, SessionId) else None, payload)
    check_invariants(via if isinstance(via, SessionId) else None, payload)
    # the exact-location shortcut (the default) == every payload through the plugin
    assert _outcome(_extractor(protocol), payload) == _outcome(_reference(protocol), payload)
    return via if isinstance(via, SessionId) else None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_any_bytes_give_sid_none_or_sidkit_error(protocol: str) -> None:
    @given(damaged(protocol))
    def run(payload: bytes) -> None:
        _check(protocol, payload)

    run()


@pytest.mark.skipif(
    not os.environ.get("SIDKIT_FUZZ_EXAMPLES"), reason="set SIDKIT_FUZZ_EXAMPLES=100000"
)
def test_long_fuzz_every_plugin() -> None:
    examples = int(os.environ.get("SIDKIT_FUZZ_EXAMPLES", "0"))

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(PROTOCOLS).flatmap(lambda p: st.tuples(st.just(p), damaged(p))))
    def run(case: tuple[str, bytes]) -> None:
        _check(*case)

    run()


@given(st.binary(max_size=400), st.integers(0, 20), st.booleans(), st.booleans())
def test_quic_split_and_hello_parsers_fuzz(
    payload: bytes, cid_length: int, quic_lb: bool, grease: bool
) -> None:
    for parse in (
        lambda: sidkit_quic.split_datagram(
            payload, cid_length=cid_length, quic_lb=quic_lb, grease_quic_bit=grease
        ),
        lambda: sidkit_dtls.hello_connection_id(payload),
        lambda: sidkit_dtls.hello_connection_id(b"\x16\xfe\xfd" + payload),
    ):
        with contextlib.suppress(SidkitError):
            parse()


def _locations(protocol: str) -> tuple[SidLocation, ...]:
    return _extractor(protocol).sid_locations()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sid_locations_agree_with_the_parser(protocol: str) -> None:
    locations = _locations(protocol)
    assert all(loc.protocol == protocol for loc in locations)

    @given(PROTOCOL_PACKETS[protocol](), st.booleans())
    def run(packet: bytes, damage: bool) -> None:
        if damage and packet:
            packet = packet[: len(packet) // 2]
        sid = _check(protocol, packet)
        found = locate(locations, packet)
        if sid is not None and found is not None:
            assert found[1] == sid.value, (packet.hex(), found[0])
        if sid is not None and found is None and not damage:
            # Valid packets with an ID must be steerable, except QUIC long headers whose
            # DCID length is not the configured one (a client's first Initial).
            assert protocol == "quic" and sid.details["header_form"] == "long"
            assert len(sid.value) != PROTOCOL_OPTIONS["quic"]["cid_length"]

    run()


@given(st.integers(1, 20), st.binary(min_size=0, max_size=60))
def test_quic_lb_locations_cover_every_self_described_length(length: int, rest: bytes) -> None:
    dcid = bytes([0xA0 | (length - 1)]) + bytes(range(length - 1))
    extractor = Extractor(["quic"], {"quic_lb": True})
    locations = extractor.sid_locations()
    for packet in (
        bytes([0x41]) + dcid + rest,
        bytes([0xE0, 0, 0, 0, 1, length]) + dcid + b"\0" + rest,
    ):
        try:
            sid = extractor.extract(packet)
        except SidkitError:
            continue
        found = locate(locations, packet)
        assert sid is not None and found is not None and found[1] == sid.value == dcid
