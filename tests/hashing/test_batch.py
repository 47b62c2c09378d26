"""sidkit.hashing.batch equals the scalar functions, element for element, in every era.

The scalar functions are held to the kernel by the vector files, the kernel-C harness and the
live kernel; the batch forms are held to the scalar functions here, over every row of the
eras table whose form has a batch twin, under both byte orders and both BITS_PER_LONG
values, with inputs given as Python sequences and as numpy arrays. A batch form that drifts
from its scalar (a missed wrap, a byte-order slip, a broadcast of the wrong argument) fails
one of these properties. The error model is tested at the entry: wrong types, shapes,
dtypes, lengths and out-of-range values are sidkit errors, never numpy's.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

np = pytest.importorskip("numpy", reason="sidkit.hashing.batch needs numpy (sidkit[bulk])")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sidkit import SidkitError  # noqa: E402
from sidkit import hashing as h  # noqa: E402
from sidkit.hashing import batch as b  # noqa: E402
from sidkit.kernel import ERAS, Era, KernelProfile, profile  # noqa: E402

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


def _v4() -> st.SearchStrategy[str]:
    return u32.map(lambda v: str(ipaddress.IPv4Address(v)))


def _v6() -> st.SearchStrategy[str]:
    general = st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v)))
    mapped = u32.map(lambda v: f"::ffff:{ipaddress.IPv4Address(v)}")
    return st.one_of(general, mapped, st.just("::"), st.just("::1"))


def _rows(draw: st.DrawFn, n: int, strat: st.SearchStrategy[Any]) -> list[Any]:
    return draw(st.lists(strat, min_size=n, max_size=n))


def _as_array(draw: st.DrawFn, values: list[int], dtype: str) -> Any:
    """Sometimes the list, sometimes the same values as a numpy array of *dtype*."""
    return np.array(values, dtype=dtype) if draw(st.booleans()) else values


def _packed(draw: st.DrawFn, addrs: list[str], width: int) -> Any:
    if draw(st.booleans()):
        return addrs
    raw = b"".join(ipaddress.ip_address(a).packed for a in addrs)
    return np.frombuffer(raw, np.uint8).reshape(len(addrs), width)


Case = tuple[tuple[Any, ...], list[tuple[Any, ...]]]
"""(batch arguments, one scalar argument tuple per row)."""


def _case(draw: st.DrawFn, name: str, kp: KernelProfile, era: Era) -> Case:
    n = draw(st.integers(1, 12))
    iv = draw(u32)
    key = draw(st.binary(min_size=16, max_size=16))
    if name in ("jhash", "siphash", "hsiphash", "toeplitz"):
        length = draw(st.integers(0, 40))
        keys = _rows(draw, n, st.binary(min_size=length, max_size=length))
        arg: Any = keys
        if draw(st.booleans()):
            arg = np.frombuffer(b"".join(keys), np.uint8).reshape(n, length)
        if name == "jhash":
            secret: Any = iv
        elif name == "toeplitz":
            secret = draw(st.binary(min_size=length + 4, max_size=length + 44))
        else:
            secret = key[:8] if name == "hsiphash" and kp.bits_per_long == 32 else key
        return (arg, secret), [(k, secret) for k in keys]
    if name == "jhash2":
        width = draw(st.integers(0, 13))
        words = _rows(draw, n, st.lists(u32, min_size=width, max_size=width))
        arg = np.array(words, dtype=np.uint32).reshape(n, width) if draw(st.booleans()) else words
        ivs = _rows(draw, n, u32)
        return (arg, ivs), list(zip(words, ivs, strict=True))
    if name in ("jhash_3words", "jhash_2words", "jhash_1word"):
        k = {"jhash_3words": 3, "jhash_2words": 2, "jhash_1word": 1}[name]
        cols = [_rows(draw, n, u32) for _ in range(k)]
        return (*(_as_array(draw, c, "uint32") for c in cols), iv), [
            (*r, iv) for r in zip(*cols, strict=True)
        ]
    if name == "hash_32":
        bits = draw(st.integers(1, 32))
        vals = _rows(draw, n, u32)
        return (_as_array(draw, vals, "uint32"), bits), [(v, bits) for v in vals]
    if name == "hash_64":
        # on 32-bit kernels hash_64 folds to hash_32, whose bits are at most 32
        bits = draw(st.integers(1, 32 if kp.bits_per_long == 32 and era.impl is h.hash_64 else 64))
        vals = _rows(draw, n, u64)
        return (_as_array(draw, vals, "uint64"), bits), [(v, bits) for v in vals]
    if name == "reciprocal_scale":
        vals = _rows(draw, n, u32)
        eps = _rows(draw, n, u32)
        return (vals, _as_array(draw, eps, "uint64")), list(zip(vals, eps, strict=True))
    if name == "next_pseudo_random32":
        vals = _rows(draw, n, u32)
        return (vals,), [(v,) for v in vals]
    if name.startswith("siphash_"):
        k = int(name[8])
        word = u64 if name.endswith("u64") else u32
        cols = [_rows(draw, n, word) for _ in range(k)]
        return (*cols, key), [(*r, key) for r in zip(*cols, strict=True)]
    if name in ("udp_ehashfn", "inet_ehashfn"):
        la = _rows(draw, n, _v4())
        fa = _rows(draw, n, _v4())
        lp, fp = _rows(draw, n, u16), _rows(draw, n, u16)
        one_laddr = draw(st.booleans())
        lab: Any = la[0] if one_laddr else _packed(draw, la, 4)
        rows = [
            (la[0] if one_laddr else a, p, f, q, iv)
            for a, p, f, q in zip(la, lp, fa, fp, strict=True)
        ]
        return (lab, _as_array(draw, lp, "uint16"), _packed(draw, fa, 4), fp, iv), rows
    if name in ("inet6_ehashfn", "udp6_ehashfn"):
        la = _rows(draw, n, _v6())
        fa = _rows(draw, n, _v6())
        lp, fp = _rows(draw, n, u16), _rows(draw, n, u16)
        sec: Any = draw(u32)
        args = (_packed(draw, la, 16), lp, _packed(draw, fa, 16), fp, iv, sec)
        return args, [(a, p, f, q, iv, sec) for a, p, f, q in zip(la, lp, fa, fp, strict=True)]
    if name == "udp6_ehash_initval":
        a, c = _rows(draw, n, u32), _rows(draw, n, u32)
        return (a, iv, c), [(x, iv, z) for x, z in zip(a, c, strict=True)]
    if name == "ipv6_addr_jhash":
        fa = _rows(draw, n, _v6())
        return (_packed(draw, fa, 16), iv), [(f, iv) for f in fa]
    if name in ("ipv4_portaddr_hash", "ipv6_portaddr_hash"):
        addrs = _rows(draw, n, _v4() if name.startswith("ipv4") else _v6())
        ports = _rows(draw, n, u16)
        return (iv, addrs, ports), [(iv, a, p) for a, p in zip(addrs, ports, strict=True)]
    if name in ("hash_conntrack_raw", "flow_hash_from_keys"):
        fam = st.one_of(st.tuples(_v4(), _v4()), st.tuples(_v6(), _v6()))
        pairs = _rows(draw, n, fam)
        src = [p[0] for p in pairs]
        dst = [p[1] for p in pairs]
        sp, dp = _rows(draw, n, u16), _rows(draw, n, u16)
        proto = _rows(draw, n, st.sampled_from([17, 6, 136, 1, 0, 255]))
        if name == "flow_hash_from_keys":
            rows = list(zip(src, sp, dst, dp, proto, [key] * n, strict=True))
            return (src, sp, dst, dp, proto, key), rows
        zone = draw(u16)
        mix = draw(u32)
        sec = key if "siphash" in era.variant else iv
        rows = list(zip(src, sp, dst, dp, proto, [zone] * n, [mix] * n, [sec] * n, strict=True))
        return (src, sp, dst, dp, proto, zone, mix, sec), rows
    raise AssertionError(f"no case builder for {name}")


def _era_profiles() -> list[tuple[str, KernelProfile]]:
    """One profile per (eras row with a batch form, byte order, BITS_PER_LONG)."""
    out = []
    for row in ERAS:
        if row.impl is None or b.batch_form(row.impl) is None:
            continue
        for bo in ("little", "big"):
            for bpl in (64, 32):
                kp = profile(row.since, byteorder=bo, bits_per_long=bpl)
                assert kp.era(row.function) is row
                out.append((f"{row.function}-{row.since}-{bo}-{bpl}", kp))
    return out


ERA_PROFILES = _era_profiles()


def test_every_hash_of_the_eras_table_has_a_batch_form() -> None:
    # Every eras row whose form lives in sidkit.hashing has a batch twin; the rows without
    # one are the table's non-hash behaviours (conntrack timeouts, reuseport selection, ...).
    missing = [
        f"{row.function} {row.since}"
        for row in ERAS
        if row.impl is not None
        and row.impl.__module__.startswith("sidkit.hashing")
        and b.batch_form(row.impl) is None
    ]
    assert missing == []
    assert len({p[0].split("-")[0] for p in ERA_PROFILES}) >= 20


@pytest.mark.parametrize(("label", "kp"), ERA_PROFILES, ids=[p[0] for p in ERA_PROFILES])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_batch_equals_scalar_in_every_era(
    label: str, kp: KernelProfile, data: st.DataObject
) -> None:
    name = label.split("-", maxsplit=1)[0]
    era = kp.era(name)
    args, rows = data.draw(st.composite(lambda draw: _case(draw, name, kp, era))())
    scalar = kp.function(name)
    got = b.function(kp, name)(*args)
    assert isinstance(got, np.ndarray) and got.dtype in (np.uint32, np.uint64)
    assert got.shape == (len(rows),)
    assert [int(x) for x in got] == [scalar(*r) for r in rows]


@given(st.lists(st.binary(min_size=16, max_size=16), max_size=30), u32)
def test_jhash_16_byte_keys(keys: list[bytes], iv: int) -> None:
    assert [int(x) for x in b.jhash(keys, iv)] == [h.jhash(k, iv) for k in keys]


@given(st.lists(u32, min_size=1, max_size=20), st.integers(1, 2**32 - 1))
def test_reciprocal_scale_of_a_batch_hash_picks_the_scalar_socket(vals: list[int], n: int) -> None:
    assert [int(x) for x in b.reciprocal_scale(vals, n)] == [h.reciprocal_scale(v, n) for v in vals]


def test_broadcast_single_values_and_empty_batches() -> None:
    assert b.jhash([], 0).shape == (0,)
    assert b.siphash(np.zeros((0, 16), np.uint8), bytes(16)).shape == (0,)
    got = b.udp_ehashfn("10.0.0.1", 4433, ["192.0.2.1", "192.0.2.2"], 5000, 7)
    assert [int(x) for x in got] == [
        h.udp_ehashfn("10.0.0.1", 4433, f, 5000, 7) for f in ("192.0.2.1", "192.0.2.2")
    ]
    assert [int(x) for x in b.jhash_3words(1, 2, 3, 0)] == [0xA46158F5]  # KERNEL-NOTES known answer


# --- the error model at the entry ----------------------------------------------------------


BAD_CALLS: list[tuple[str, Callable[[], object]]] = [
    ("keys str", lambda: b.jhash("abc", 0)),
    ("keys bytes", lambda: b.jhash(b"abc", 0)),
    ("keys int", lambda: b.siphash(5, bytes(16))),
    ("keys mixed length", lambda: b.jhash([b"ab", b"abc"], 0)),
    ("keys element str", lambda: b.jhash([b"ab", "ab"], 0)),
    ("keys float array", lambda: b.jhash(np.zeros((2, 4)), 0)),
    ("keys 1-D array", lambda: b.jhash(np.zeros(4, np.uint8), 0)),
    ("keys 3-D array", lambda: b.jhash(np.zeros((2, 2, 2), np.uint8), 0)),
    ("initval negative", lambda: b.jhash([b"a"], -1)),
    ("initval too big", lambda: b.jhash([b"a"], 2**32)),
    ("initval huge", lambda: b.jhash([b"a"], 16**5000)),
    ("initval bool", lambda: b.jhash([b"a"], True)),
    ("initval float", lambda: b.jhash([b"a"], 1.5)),
    ("initval list bool", lambda: b.jhash([b"a"], [True])),
    ("initval list float", lambda: b.jhash([b"a"], [1.0])),
    ("initval list huge", lambda: b.jhash([b"a"], [2**80])),
    ("initval array float", lambda: b.jhash([b"a"], np.array([1.0]))),
    ("initval array negative", lambda: b.jhash([b"a"], np.array([-1]))),
    ("initval wrong length", lambda: b.jhash([b"a", b"b"], [1, 2, 3])),
    ("siphash key short", lambda: b.siphash([b"a"], bytes(15))),
    ("siphash key str", lambda: b.siphash([b"a"], "k" * 16)),
    ("hsiphash bpl", lambda: b.hsiphash([b"a"], bytes(16), bits_per_long=16)),
    ("hsiphash 32 key", lambda: b.hsiphash([b"a"], bytes(16), bits_per_long=32)),
    ("words ragged", lambda: b.jhash2([[1, 2], [1]], 0)),
    ("words str", lambda: b.jhash2("ab", 0)),
    ("words row str", lambda: b.jhash2(["ab"], 0)),
    ("words out of range", lambda: b.jhash2([[2**32]], 0)),
    ("words float array", lambda: b.jhash2(np.zeros((1, 2)), 0)),
    ("3words mismatched", lambda: b.jhash_3words([1, 2], [1, 2, 3], 0, 0)),
    ("hash_32 bits 0", lambda: b.hash_32([1], 0)),
    ("hash_32 bits 33", lambda: b.hash_32([1], 33)),
    ("hash_64 bpl", lambda: b.hash_64([1], 3, bits_per_long=8)),
    ("reciprocal_scale ep_ro", lambda: b.reciprocal_scale([1], 2**32)),
    ("port too big", lambda: b.udp_ehashfn("10.0.0.1", 70000, "10.0.0.2", 1, 0)),
    ("address bad", lambda: b.udp_ehashfn("10.0.0.300", 1, "10.0.0.2", 1, 0)),
    ("address v6 for v4", lambda: b.udp_ehashfn("::1", 1, "10.0.0.2", 1, 0)),
    ("address v4 for v6", lambda: b.udp6_ehashfn("10.0.0.1", 1, "::2", 1, 0, 0)),
    ("address in list bad", lambda: b.udp_ehashfn(["10.0.0.1", 5], 1, "10.0.0.2", 1, 0)),
    ("address array shape", lambda: b.udp_ehashfn(np.zeros((2, 5), np.uint8), 1, "1.1.1.1", 1, 0)),
    ("address type", lambda: b.udp_ehashfn(1234, 1, "10.0.0.2", 1, 0)),
    ("byteorder", lambda: b.udp_ehashfn("10.0.0.1", 1, "10.0.0.2", 1, 0, byteorder="middle")),
    (
        "conntrack families",
        lambda: b.hash_conntrack_raw("1.1.1.1", 1, "::1", 2, 17, 0, 0, bytes(16)),
    ),
    ("conntrack secret", lambda: b.hash_conntrack_raw("1.1.1.1", 1, "2.2.2.2", 2, 17, 0, 0, 5)),
    (
        "conntrack zone",
        lambda: b.hash_conntrack_raw("1.1.1.1", 1, "2.2.2.2", 2, 17, 2**16, 0, bytes(16)),
    ),
    ("toeplitz short key", lambda: b.toeplitz([bytes(12)], bytes(15))),
    (
        "flow label",
        lambda: b.flow_hash_from_keys("1.1.1.1", 1, "2.2.2.2", 2, 17, bytes(16), flow_label=2**20),
    ),
]


@pytest.mark.parametrize(("what", "call"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_a_one_line_sidkit_error(what: str, call: Callable[[], object]) -> None:
    with pytest.raises(SidkitError) as info:
        call()
    assert "\n" not in str(info.value) and str(info.value), what


def test_the_same_refusals_as_the_scalar_functions() -> None:
    # Where the scalar refuses, the batch form refuses with the same kind of error.
    pairs: list[tuple[Callable[[], object], Callable[[], object]]] = [
        (lambda: h.jhash(b"a", 2**32), lambda: b.jhash([b"a"], 2**32)),
        (lambda: h.siphash(b"a", bytes(8)), lambda: b.siphash([b"a"], bytes(8))),
        (lambda: h.hash_32(1, 0), lambda: b.hash_32([1], 0)),
    ]
    for scalar, batch in pairs:
        with pytest.raises(SidkitError) as s_err:
            scalar()
        with pytest.raises(SidkitError) as b_err:
            batch()
        assert type(s_err.value) is type(b_err.value)
        assert s_err.value.code == b_err.value.code


def test_without_numpy_the_import_is_one_sidkit_error() -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "try:\n"
        "    import sidkit.hashing.batch\n"
        "except ImportError as e:\n"
        "    import sidkit\n"
        "    assert isinstance(e, sidkit.SidkitError), type(e)\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'sidkit[bulk]'" in out.stdout
