"""The Extractor's exact-location shortcut and the cheap SessionId (issue 17).

``Extractor.extract`` answers from the protocols' exact locations where one applies and
builds the SessionId without checks, its details computed by the plugin when first read.
Held here to the reference (``exact=False``, every payload through the plugins) on an
extractor of every built-in protocol at once (first-byte claims overlapping: QUIC, DTLS,
WireGuard, RTP, OpenVPN, ...), on valid, damaged and random payloads; and the SessionId
built either way to the public constructor's behaviour (equality, hashing, details,
frozenness, the conntrack cache slots' defaults).
"""

from __future__ import annotations

import contextlib
import pickle

import attrs
import pytest
from fixtures.packets import PROTOCOL_OPTIONS, PROTOCOL_PACKETS
from hypothesis import given, settings
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.extract import Extractor, SidLocation
from sidkit.keys import SessionId, trusted_session_id
from sidkit.plugin import PluginError, PluginHost, ProtocolSpec, hookimpl

# Every built-in protocol but "fixed" (its guard on the first byte would shadow others),
# in an order that lets several protocols' exact locations decide their bytes (IPsec, which
# claims every byte, last).
_ORDER = ["quic", "wireguard", "dtls", "openvpn", "rtp", "gtpu", "srt", "ipsec"]
ALL = [p for p in _ORDER if p in PROTOCOL_PACKETS] + sorted(
    set(PROTOCOL_PACKETS) - {*_ORDER, "fixed"}
)
OPTIONS = {p: PROTOCOL_OPTIONS[p] for p in ALL if p in PROTOCOL_OPTIONS}
FAST = Extractor(ALL, OPTIONS)
REFERENCE = Extractor(ALL, OPTIONS, exact=False)


@st.composite
def damaged(draw: st.DrawFn, protocol: str) -> bytes:
    """A valid packet of *protocol*, possibly cut short or with a byte changed, or random
    bytes (as in test_extract_properties)."""
    packet = draw(st.one_of(PROTOCOL_PACKETS[protocol](), st.binary(max_size=300)))
    choice = draw(st.integers(0, 2))
    if choice == 1 and packet:
        packet = packet[: draw(st.integers(0, len(packet) - 1))]
    elif choice == 2 and packet:
        i = draw(st.integers(0, len(packet) - 1))
        packet = packet[:i] + bytes([draw(st.integers(0, 255))]) + packet[i + 1 :]
    return packet


def check_invariants(sid: SessionId | None, payload: bytes) -> None:
    """A returned ID's bytes are a slice of the payload, 0..255 long."""
    if sid is not None:
        assert type(sid.value) is bytes
        assert len(sid.value) <= min(len(payload), 255)
        assert sid.value in payload


def _outcome(extractor: Extractor, payload: bytes) -> object:
    try:
        sid = extractor.extract(payload)
    except SidkitError as exc:
        return type(exc), str(exc)
    return sid if sid is None else (sid.protocol, sid.value, dict(sid.details))


def test_the_shortcut_is_taken() -> None:
    # with these options QUIC short headers and DTLS CID records have exact locations
    table = FAST.exact_table()
    assert {loc.protocol for t in table for loc in t} >= {"quic", "dtls", "openvpn"}
    sid = FAST.extract(bytes([0x41]) + b"12345678" + bytes(30))
    assert sid is not None and sid.value == b"12345678"
    assert SessionId.__dict__["_lazy"].__get__(sid) is not None  # details not parsed yet
    assert sid.details["header_form"] == "short"  # ... until read
    assert SessionId.__dict__["_lazy"].__get__(sid) is None


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL).flatmap(damaged))
def test_shortcut_equals_reference(payload: bytes) -> None:
    fast = _outcome(FAST, payload)
    assert fast == _outcome(REFERENCE, payload)
    if isinstance(fast, tuple) and len(fast) == 3:
        sid = FAST.extract(payload)
        check_invariants(sid, payload)


@given(st.binary(max_size=80))
def test_random_bytes_shortcut_equals_reference(payload: bytes) -> None:
    assert _outcome(FAST, payload) == _outcome(REFERENCE, payload)
    with contextlib.suppress(SidkitError):
        check_invariants(FAST.extract(payload), payload)


def test_exact_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="exact"):
        Extractor(["quic"], exact=1)  # type: ignore[arg-type]


def test_a_plugin_breaking_its_exact_promise_is_named_when_details_are_read() -> None:
    class Liar:
        @hookimpl
        def sidkit_protocols(self) -> list[ProtocolSpec]:
            return [ProtocolSpec("liar", "says exact, parses otherwise", first_bytes=[7])]

        @hookimpl
        def sidkit_extract(self, payload: bytes) -> SessionId | None:
            return SessionId("liar", payload[2:4])

        @hookimpl
        def sidkit_sid_locations(self) -> list[SidLocation]:
            return [SidLocation(1, 2, ((0, 0xFF, 7),), 0, "liar", exact=True)]

    host = PluginHost(entry_points=False)
    extractor = Extractor([Liar()], host=host)
    sid = extractor.extract(b"\x07abcd")
    assert sid == SessionId("liar", b"ab")  # the location's answer
    with pytest.raises(PluginError, match="exact location gave 6162"):
        _ = sid.details


def test_trusted_and_public_session_ids_behave_alike() -> None:
    details = {"packet_type": "1rtt", "n": 1}
    public = SessionId("quic", bytearray(b"\x01\x02"), details)
    details["n"] = 2  # the constructor copied it
    trusted = trusted_session_id("quic", b"\x01\x02", {"packet_type": "1rtt", "n": 1})
    lazy = trusted_session_id("quic", b"\x01\x02", (dict, {"packet_type": "1rtt", "n": 1}))
    for sid in (public, trusted, lazy):
        assert sid == SessionId("quic", b"\x01\x02") and hash(sid) == hash(public)
        assert dict(sid.details) == {"packet_type": "1rtt", "n": 1}
        assert sid._ct_ctx is None and sid._ct_hash == 0
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            sid.protocol = "x"  # type: ignore[misc]
        with pytest.raises(TypeError):
            sid.details["n"] = 3  # type: ignore[index]
        with pytest.raises(AttributeError, match="nope"):
            _ = sid.nope
        assert attrs.evolve(sid, protocol="wg").details == sid.details
        assert repr(sid).startswith("SessionId('quic', bytes.fromhex('0102'), details=")
    assert SessionId("quic", b"\x01").details == {}
    with pytest.raises(TypeError, match="details keys"):
        SessionId("quic", b"\x01", {1: 2})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="protocol name"):
        SessionId("Q!", b"\x01")


def test_session_ids_pickle_with_their_details() -> None:
    # a Dask worker or a process pool ships them: the read-only view and a pending lazy
    # parse travel as the plain details
    sid = FAST.extract(bytes([0x41]) + b"12345678" + bytes(30))
    assert sid is not None
    for original in (sid, SessionId("wireguard", b"\x01\x02\x03\x04", {"field": "receiver"})):
        back = pickle.loads(pickle.dumps(original))
        assert back == original and dict(back.details) == dict(original.details)
