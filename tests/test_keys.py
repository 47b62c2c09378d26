"""sidkit.keys: validation at the boundary, equality/hash contracts, zone semantics.

Oracles: the ``ipaddress`` module for address handling, the kernel header text for the zone
constants (nf_conntrack_zones_common.h, read from the fetched Debian source when present),
RFC 9000 for MAX_IDLEN, and the kernel's compiled nf_ct_zone_id() through the committed
kernel-conntrack-zones.json vectors (test_conntrack_vectors.py).
"""

from __future__ import annotations

import ipaddress
import re
import types
from pathlib import Path

import pytest
from conftest import oracle_unavailable
from hypothesis import given
from hypothesis import strategies as st

import sidkit
from sidkit.keys import (
    IPPROTO_UDP,
    MAX_IDLEN,
    NF_CT_DEFAULT_ZONE_DIR,
    NF_CT_DEFAULT_ZONE_ID,
    NF_CT_FLAG_MARK,
    NF_CT_ZONE_DIR_ORIG,
    NF_CT_ZONE_DIR_REPL,
    Direction,
    FiveTuple,
    SessionId,
    SidTooShortError,
    SidZoneConfig,
    Zone,
    flow_key,
)

ROOT = Path(__file__).resolve().parent.parent
KSRC = ROOT / "conformance" / "kernel" / "_work"

v4 = st.ip_addresses(v=4)
v6 = st.ip_addresses(v=6)
port = st.integers(0, 65535)


@st.composite
def five_tuples(draw: st.DrawFn) -> FiveTuple:
    addrs = draw(st.one_of(st.tuples(v4, v4), st.tuples(v6, v6)))
    return FiveTuple(addrs[0], draw(port), addrs[1], draw(port), draw(st.integers(0, 255)))


@given(st.one_of(st.tuples(v4, v4), st.tuples(v6, v6)), port, port)
def test_address_forms_are_equivalent(
    addrs: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...], sp: int, dp: int
) -> None:
    a, b = addrs
    forms = [
        FiveTuple(a, sp, b, dp),
        FiveTuple(str(a), sp, str(b), dp),
        FiveTuple(a.packed, sp, b.packed, dp),
    ]
    assert all(f == forms[0] and hash(f) == hash(forms[0]) for f in forms)
    assert forms[0].src == a and forms[0].dst == b
    assert forms[0].family == a.version
    assert forms[0].protocol == IPPROTO_UDP


@given(five_tuples())
def test_reversed_swaps_endpoints_and_is_an_involution(t: FiveTuple) -> None:
    r = t.reversed()
    assert (r.src, r.sport, r.dst, r.dport, r.protocol) == (
        t.dst,
        t.dport,
        t.src,
        t.sport,
        t.protocol,
    )
    assert r.reversed() == t


@given(five_tuples(), five_tuples())
def test_equality_is_field_equality(a: FiveTuple, b: FiveTuple) -> None:
    same = (a.src, a.sport, a.dst, a.dport, a.protocol) == (
        b.src,
        b.sport,
        b.dst,
        b.dport,
        b.protocol,
    )
    assert (a == b) is same
    if same:
        assert hash(a) == hash(b)


def test_mixed_families_are_refused() -> None:
    with pytest.raises(sidkit.InputValueError, match="same address family"):
        FiveTuple("192.0.2.1", 1, "2001:db8::1", 2)
    # an IPv4-mapped address is IPv6: still a different family from plain IPv4
    with pytest.raises(sidkit.InputValueError):
        FiveTuple("::ffff:192.0.2.1", 1, "192.0.2.2", 2)


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        (("192.0.2.1", 65536, "192.0.2.2", 1), sidkit.InputValueError),
        (("192.0.2.1", -1, "192.0.2.2", 1), sidkit.InputValueError),
        (("192.0.2.1", 1, "192.0.2.2", 1, 256), sidkit.InputValueError),
        (("192.0.2.1", True, "192.0.2.2", 1), sidkit.InputTypeError),
        (("192.0.2.1", 1.0, "192.0.2.2", 1), sidkit.InputTypeError),
        (("not an address", 1, "192.0.2.2", 1), sidkit.InputValueError),
        ((b"\x01\x02\x03", 1, "192.0.2.2", 1), sidkit.InputValueError),
        ((12345, 1, "192.0.2.2", 1), sidkit.InputTypeError),
    ],
)
def test_bad_tuples_raise_sidkit_errors(args: tuple[object, ...], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        FiveTuple(*args)  # type: ignore[arg-type]


def test_tuples_are_frozen() -> None:
    t = FiveTuple("192.0.2.1", 1, "192.0.2.2", 2)
    with pytest.raises(AttributeError):
        t.sport = 5  # type: ignore[misc]


def test_str_brackets_ipv6() -> None:
    assert str(FiveTuple("2001:db8::1", 443, "2001:db8::2", 5000)) == (
        "udp [2001:db8::1]:443 -> [2001:db8::2]:5000"
    )
    assert str(FiveTuple("192.0.2.1", 1, "192.0.2.2", 2, 6)) == "tcp 192.0.2.1:1 -> 192.0.2.2:2"


# --- SessionId -------------------------------------------------------------------------------


@given(st.binary(max_size=40), st.sampled_from(["quic", "wireguard", "dtls1.2"]))
def test_session_id_accepts_bytes_like_and_stores_bytes(value: bytes, proto: str) -> None:
    forms = [
        SessionId(proto, value),
        SessionId(proto, bytearray(value)),
        SessionId(proto, memoryview(value)),
    ]
    for s in forms:
        assert type(s.value) is bytes and s.value == value
        assert s == forms[0] and hash(s) == hash(forms[0])
    assert forms[0].hex() == value.hex()
    assert len(forms[0]) == len(value)


def test_session_id_equality_ignores_details() -> None:
    # Initial and 1-RTT packets of one QUIC connection carry the same DCID (RFC 9000,
    # section 7.2 / 5.1): one session, whatever the packet type.
    a = SessionId("quic", b"\x01\x02", {"version": 1, "packet_type": "initial"})
    b = SessionId("quic", b"\x01\x02", {"version": 1, "packet_type": "1rtt"})
    assert a == b and hash(a) == hash(b)
    assert a != SessionId("wireguard", b"\x01\x02")
    assert a != SessionId("quic", b"\x01\x03")
    assert {a: 1}[b] == 1


def test_session_id_details_are_read_only_copies() -> None:
    src = {"version": 1}
    s = SessionId("quic", b"\x01", src)
    src["version"] = 2
    assert s.details["version"] == 1
    assert isinstance(s.details, types.MappingProxyType)
    with pytest.raises(TypeError):
        s.details["version"] = 3  # type: ignore[index]
    assert SessionId("quic", b"\x01").details == {}


@pytest.mark.parametrize(
    ("proto", "value", "details", "exc"),
    [
        ("QUIC", b"\x01", None, sidkit.InputValueError),
        ("", b"\x01", None, sidkit.InputValueError),
        ("quic protocol", b"\x01", None, sidkit.InputValueError),
        (1, b"\x01", None, sidkit.InputTypeError),
        ("quic", "0102", None, sidkit.InputTypeError),
        ("quic", b"\x01", [("version", 1)], sidkit.InputTypeError),
        ("quic", b"\x01", {1: "x"}, sidkit.InputTypeError),
    ],
)
def test_bad_session_ids(
    proto: object, value: object, details: object, exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        SessionId(proto, value, details)  # type: ignore[arg-type]


# --- zones -----------------------------------------------------------------------------------


def test_zone_constants_match_kernel_header() -> None:
    hdr = KSRC / "linux-source-6.12" / "include/linux/netfilter/nf_conntrack_zones_common.h"
    if not hdr.is_file():
        oracle_unavailable(f"{hdr} (bash conformance/kernel/fetch-kernel-source.sh extracts it)")
    text = hdr.read_text()
    defs = dict(re.findall(r"^#define\s+(NF_CT_\w+)\s+(.+?)\s*$", text, re.MULTILINE))
    env = {"IP_CT_DIR_ORIGINAL": 0, "IP_CT_DIR_REPLY": 1}
    values: dict[str, int] = {}
    for name, expr in defs.items():
        values[name] = eval(expr, {}, {**env, **values})  # header arithmetic: ints, names, <<, |
    assert values["NF_CT_DEFAULT_ZONE_ID"] == NF_CT_DEFAULT_ZONE_ID
    assert values["NF_CT_ZONE_DIR_ORIG"] == NF_CT_ZONE_DIR_ORIG
    assert values["NF_CT_ZONE_DIR_REPL"] == NF_CT_ZONE_DIR_REPL
    assert values["NF_CT_DEFAULT_ZONE_DIR"] == NF_CT_DEFAULT_ZONE_DIR
    assert values["NF_CT_FLAG_MARK"] == NF_CT_FLAG_MARK
    assert re.search(r"struct nf_conntrack_zone \{\s*u16\s+id;\s*u8\s+flags;\s*u8\s+dir;", text)


def test_max_idlen_is_quic_v1_cid_limit() -> None:
    # RFC 9000, section 17.2: "In QUIC version 1, this value MUST NOT exceed 20 bytes."
    assert MAX_IDLEN == 20


@given(st.integers(0, 65535), st.sampled_from([1, 2, 3]), st.sampled_from([0, 1]))
def test_zone_id_for_direction(zid: int, zdir: int, d: int) -> None:
    z = Zone(zid, zdir)
    # nf_ct_zone_id(): zone->dir & (1 << dir) ? zone->id : NF_CT_DEFAULT_ZONE_ID
    assert z.id_for(d) == (zid if zdir & (1 << d) else 0)
    assert z.matches_dir(d) is bool(zdir & (1 << d))


def test_zone_for_mark() -> None:
    z = Zone(5, NF_CT_ZONE_DIR_ORIG, NF_CT_FLAG_MARK)
    assert z.mark
    m = z.for_mark(0x1_0007)  # u32 mark into a u16 id: the assignment truncates
    assert (m.id, m.dir, m.flags) == (7, NF_CT_ZONE_DIR_ORIG, 0)
    assert Zone(5).for_mark(99) == Zone(5)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"id": 65536}, sidkit.InputValueError),
        ({"dir": 4}, sidkit.InputValueError),
        ({"flags": 2}, sidkit.InputValueError),
        ({"sid": "quic"}, sidkit.InputTypeError),
    ],
)
def test_bad_zones(kwargs: dict[str, object], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        Zone(**kwargs)  # type: ignore[arg-type]


def test_sid_zone_config_bounds() -> None:
    SidZoneConfig("quic", 1, MAX_IDLEN)
    for bad in (0, MAX_IDLEN + 1):
        with pytest.raises(sidkit.InputValueError, match="MAX_IDLEN"):
            SidZoneConfig("quic", 1, bad)
    with pytest.raises(sidkit.InputValueError):
        SidZoneConfig("quic", -1, 4)


@given(st.binary(max_size=64), st.integers(0, 40), st.integers(1, MAX_IDLEN))
def test_extract_reads_offlen_bytes_or_raises_too_short(payload: bytes, off: int, n: int) -> None:
    cfg = SidZoneConfig("quic", off, n)
    if len(payload) >= off + n:
        assert cfg.extract(payload) == payload[off : off + n]
        assert cfg.session_id(bytearray(payload)) == SessionId("quic", payload[off : off + n])
    else:
        with pytest.raises(SidTooShortError) as info:
            cfg.extract(payload)
        assert isinstance(info.value, sidkit.InputValueError)
        assert info.value.code == "sid-too-short"


def test_flow_key_picks_sid_only_where_the_zone_applies() -> None:
    t = FiveTuple("192.0.2.1", 50000, "198.51.100.7", 443)
    z = Zone(7, NF_CT_ZONE_DIR_ORIG, sid=SidZoneConfig("quic", 1, 8))
    payload = b"\x40" + bytes(range(8)) + b"rest"
    assert flow_key(z, t, payload) == SessionId("quic", bytes(range(8)))
    assert flow_key(z, t, payload, direction=Direction.REPLY) is t
    assert flow_key(Zone(7), t, payload) is t
    given_sid = SessionId("quic", b"\xaa" * 8, {"packet_type": "1rtt"})
    assert flow_key(z, t, sid=given_sid) is given_sid
    with pytest.raises(sidkit.InputValueError, match="keys by 'quic'"):
        flow_key(z, t, sid=SessionId("wireguard", b"\x01\x02\x03\x04"))
    with pytest.raises(sidkit.InputValueError):
        flow_key(z, t, sid=SessionId("quic", b""))
    with pytest.raises(sidkit.InputValueError):
        flow_key(z, t, sid=SessionId("quic", b"\x00" * (MAX_IDLEN + 1)))
    with pytest.raises(SidTooShortError):
        flow_key(z, t, b"\x40\x01")
    with pytest.raises(sidkit.InputValueError, match="payload"):
        flow_key(z, t)


@given(st.binary(max_size=80))
def test_flow_key_fuzz_any_payload_parses_or_raises_sidkit_error(payload: bytes) -> None:
    t = FiveTuple("192.0.2.1", 50000, "198.51.100.7", 443)
    z = Zone(7, sid=SidZoneConfig("quic", 1, 8))
    try:
        k = flow_key(z, t, payload)
    except sidkit.SidkitError:
        return
    assert isinstance(k, SessionId) and len(k.value) == 8
