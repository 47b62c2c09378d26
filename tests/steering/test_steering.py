"""Steering policies: the model, the IR, and both compiled programs must agree on any payload.

The compiled programs run in sidkit's cBPF and eBPF interpreters here (the kernel cannot
test-run SK_REUSEPORT programs); tests/reuseport/test_live_reuseport.py runs the same programs
in the live kernel. The kernel selftest's classic program anchors the interpreter's semantics.
"""

from __future__ import annotations

import errno
import random
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.bpf import cbpf, ebpf
from sidkit.bpf.cbpf import SockFilter
from sidkit.hashing import jhash, reciprocal_scale
from sidkit.steering import (
    AnyOf,
    FixedOffset,
    Guard,
    IndexField,
    SteeringError,
    SteeringPolicy,
    _ir,
    attach,
    compile_cbpf,
    compile_ebpf,
    mint_cid,
)


@st.composite
def locations(draw: st.DrawFn) -> FixedOffset:
    offset = draw(st.integers(0, 24))
    length = draw(st.integers(1, 40))
    guards = draw(
        st.lists(
            st.tuples(st.integers(0, 30), st.integers(1, 255), st.integers(0, 255)).map(
                lambda t: Guard(t[0], t[1], t[2] & t[1])
            ),
            max_size=3,
        )
    )
    min_size = draw(st.sampled_from([0, 0, 1, 40, 90]))
    return FixedOffset(offset, length, guards, min_size)


@st.composite
def policies(draw: st.DrawFn) -> SteeringPolicy:
    alts = draw(st.lists(locations(), min_size=1, max_size=3))
    method = draw(st.sampled_from(["jhash", "modulo", "index"]))
    n = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    field = IndexField()
    if method == "index":
        shortest = min(a.length for a in alts)
        flen = draw(st.integers(1, min(4, shortest)))
        off = draw(st.integers(0, shortest - flen))
        shift = draw(st.integers(0, 8 * flen - 1))
        mask = draw(st.integers(1, 2**32 - 1))
        field = IndexField(off, flen, shift, mask)
    return SteeringPolicy(AnyOf(alts), method, n, seed=seed, field=field)  # type: ignore[arg-type]


def _payloads(policy: SteeringPolicy, rng: random.Random) -> list[bytes]:
    """Random payloads, half of them shaped to pass one alternative's guards."""
    out = []
    for _ in range(40):
        body = bytearray(rng.randbytes(rng.randrange(0, 110)))
        if rng.random() < 0.5:
            alt = rng.choice(policy.spec.alternatives)
            if len(body) < alt.end:
                body += rng.randbytes(alt.end - len(body))
            for g in alt.guards:
                body[g.offset] = (body[g.offset] & ~g.mask & 0xFF) | g.value
        out.append(bytes(body))
    return out


def _cbpf_index(program: list[SockFilter], payload: bytes, n: int) -> int | None:
    index = cbpf.run(program, payload)
    return index if index < n else None


@given(policies(), st.integers(0, 2**32 - 1))
def test_model_ir_cbpf_and_ebpf_agree(policy: SteeringPolicy, seed: int) -> None:
    rng = random.Random(seed)
    program = compile_cbpf(policy)
    insns = compile_ebpf(policy, map_fd=7)
    ir = policy.ir()
    for payload in _payloads(policy, rng):
        expected = policy.select(payload)
        assert _ir.evaluate(ir, payload) == expected
        assert _cbpf_index(program, payload, policy.n) == expected
        verdict, selected = ebpf.run_sk_reuseport(insns, ebpf.ReuseportContext(bytes(8) + payload))
        assert verdict == ebpf.SK_PASS
        assert selected == expected


@given(policies(), st.data())
def test_minted_cids_route_to_their_socket(policy: SteeringPolicy, data: st.DataObject) -> None:
    alt = policy.spec.alternatives[0]
    index = data.draw(st.integers(0, policy.n - 1))
    try:
        sid = mint_cid(policy, index, alt.length, rng=random.Random(data.draw(st.integers())))
    except SteeringError:
        if policy.method == "index":  # the field cannot carry this index
            f = policy.field
            assert index & f.mask != index or (index << f.shift) >> (8 * f.length)
        else:  # only a tiny SID space may miss a socket; then no SID may reach it
            assert alt.length <= 2
            space = (v.to_bytes(alt.length, "big") for v in range(1 << (8 * alt.length)))
            assert all(policy.index_of(s) != index for s in space)
        return
    assert len(sid) == alt.length
    payload = bytearray(alt.end)
    for g in alt.guards:
        payload[g.offset] = g.value
    payload[alt.offset : alt.offset + alt.length] = sid
    if alt.sid(bytes(payload)) != sid:
        return  # a guard sits inside the SID and the random SID broke it
    assert policy.index_of(sid) == index


def test_jhash_method_is_the_kernels_jhash_and_reciprocal_scale() -> None:
    policy = SteeringPolicy(FixedOffset(3, 13), "jhash", 7, seed=99)
    payload = b"abc" + b"abcdefghijklm" + b"tail"
    assert policy.select(payload) == reciprocal_scale(jhash(b"abcdefghijklm", 99), 7)
    # jhash(b"abcdefghijklm", 0) == 0x928128f9 (the kernel C harness, KERNEL-NOTES)
    big = SteeringPolicy(FixedOffset(0, 13), "jhash", 65535)
    assert big.select(b"abcdefghijklm") == reciprocal_scale(0x928128F9, 65535)


def test_kernel_selftest_program_semantics() -> None:
    # tools/testing/selftests/net/reuseport_bpf.c attach_cbpf(): A = skb[0..3] (big-endian);
    # A %= mod; return A. Hand-checked: 0x00000107 % 10 == 3; a 2-byte payload makes the
    # word load fail, which ends a classic program with 0 -- socket 0, not a fallback.
    selftest = [
        SockFilter(cbpf.LD | cbpf.W | cbpf.ABS, 0, 0, 0),
        SockFilter(cbpf.ALU | cbpf.MOD, 0, 0, 10),
        SockFilter(cbpf.RET | cbpf.A_SRC, 0, 0, 0),
    ]
    assert cbpf.run(selftest, bytes([0, 0, 1, 7, 0xFF])) == 3
    assert cbpf.run(selftest, b"\x01\x02") == 0
    policy = SteeringPolicy(FixedOffset(0, 4), "modulo", 10)
    rng = random.Random(5)
    for _ in range(200):
        payload = rng.randbytes(rng.randrange(4, 20))
        assert policy.select(payload) == cbpf.run(selftest, payload)
    # sidkit's compiled form tests the length first, so a short payload falls back instead
    assert cbpf.run(compile_cbpf(policy), b"\x01\x02") == _ir.NO_SELECTION


def test_quic_like_two_alternatives() -> None:
    short = FixedOffset(1, 8, [Guard(0, 0x80, 0x00)])
    long = FixedOffset(6, 8, [Guard(0, 0x80, 0x80), Guard(5, 0xFF, 8)])
    policy = SteeringPolicy(AnyOf([short, long]), "modulo", 3)
    cid = bytes([0, 0, 0, 7, 1, 2, 3, 4])
    assert policy.select(b"\x40" + cid + b"rest") == 7 % 3
    assert policy.select(b"\xc0\x00\x00\x00\x01\x08" + cid) == 7 % 3
    assert policy.select(b"\xc0\x00\x00\x00\x01\x04" + cid) is None  # DCID length 4 != 8


@pytest.mark.parametrize(
    "make",
    [
        lambda: FixedOffset(0, 0),
        lambda: FixedOffset(-1, 4),
        lambda: FixedOffset(0, 300),
        lambda: Guard(0, 0x0F, 0x10),
        lambda: SteeringPolicy(FixedOffset(0, 4), "crc", 4),  # type: ignore[arg-type]
        lambda: SteeringPolicy(FixedOffset(0, 4), "jhash", 0),
        lambda: SteeringPolicy(FixedOffset(0, 4), "jhash", 70000),
        lambda: SteeringPolicy(FixedOffset(0, 4), "jhash", 4, seed=-1),
        lambda: SteeringPolicy(FixedOffset(0, 2), "index", 4, field=IndexField(0, 4)),
        lambda: IndexField(0, 5),
        lambda: IndexField(0, 1, 8),
        lambda: SteeringPolicy(object(), "jhash", 4),
        lambda: AnyOf([]),
        lambda: mint_cid(SteeringPolicy(FixedOffset(0, 4)), 9),
        lambda: mint_cid(SteeringPolicy(FixedOffset(0, 4)), 1, 5),
        lambda: mint_cid(
            SteeringPolicy(FixedOffset(0, 4), "index", 8, field=IndexField(0, 1, 0, 3)), 4
        ),
    ],
)
def test_bad_policies_raise_value_errors(make: object) -> None:
    with pytest.raises(SidkitError) as info:
        make()  # type: ignore[operator]
    assert isinstance(info.value, ValueError)


def test_cbpf_checker_refuses_what_the_kernel_refuses() -> None:
    ret = SockFilter(cbpf.RET | cbpf.K, 0, 0, 0)
    bad = {
        "empty": [],
        "no ret": [SockFilter(cbpf.LD | cbpf.IMM, 0, 0, 1)],
        "div 0": [SockFilter(cbpf.ALU | cbpf.DIV | cbpf.K, 0, 0, 0), ret],
        "shift 32": [SockFilter(cbpf.ALU | cbpf.LSH | cbpf.K, 0, 0, 32), ret],
        "M[16]": [SockFilter(cbpf.ST, 0, 0, 16), ret],
        "read unset M": [SockFilter(cbpf.LD | cbpf.MEM, 0, 0, 3), ret],
        "jump out": [SockFilter(cbpf.JMP | cbpf.JEQ, 5, 0, 1), ret],
        "unknown": [SockFilter(0xFFFF, 0, 0, 0), ret],
        "ancillary": [SockFilter(cbpf.LD | cbpf.W | cbpf.ABS, 0, 0, 0xFFFFF000), ret],
    }
    for name, program in bad.items():
        with pytest.raises(cbpf.CbpfError):
            cbpf.check(program)
        assert name


@given(
    st.lists(
        st.tuples(
            st.integers(0, 0xFF), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2**32 - 1)
        ),
        min_size=1,
        max_size=12,
    ),
    st.binary(max_size=32),
)
def test_cbpf_interpreter_never_fails_on_accepted_programs(
    raw: list[tuple[int, int, int, int]], packet: bytes
) -> None:
    program = [SockFilter(c, jt, jf, k) for c, jt, jf, k in raw] + [
        SockFilter(cbpf.RET | cbpf.A_SRC)
    ]
    try:
        cbpf.check(program)
    except cbpf.CbpfError:
        return
    result = cbpf.run(program, packet, checked=False)
    assert 0 <= result < 2**32


def test_ebpf_interpreter_refuses_wild_memory() -> None:
    asm = ebpf.Assembler()
    asm.mov64(1, imm=0)
    asm.ldx(ebpf.W, 0, 1, 0)  # load through a null pointer
    asm.exit()
    with pytest.raises(ebpf.EbpfError):
        ebpf.run_sk_reuseport(asm.assemble(), ebpf.ReuseportContext(b""))
    asm = ebpf.Assembler()
    asm.ja("nowhere")
    with pytest.raises(ebpf.EbpfError):
        asm.assemble()


def test_ebpf_context_fields_and_load_bytes_failure() -> None:
    asm = ebpf.Assembler()
    asm.mov64(6, 1)
    asm.ldx(ebpf.W, 7, 6, 32)  # ctx->hash
    asm.ldx(ebpf.W, 8, 6, 16)  # ctx->len
    asm.mov64(1, 6)
    asm.mov64(2, imm=4)
    asm.mov64(3, 10)
    asm.alu64(ebpf.ADD, 3, imm=-8)
    asm.mov64(4, imm=8)
    asm.call(ebpf.HELPER_SKB_LOAD_BYTES)  # 4 + 8 > len 10: -EFAULT
    asm.jmp(ebpf.JEQ, 0, "ok", imm=0)
    asm.mov64(0, 7)
    asm.alu64(ebpf.ADD, 0, 8)
    asm.exit()
    asm.label("ok")
    asm.mov64(0, imm=0)
    asm.exit()
    verdict, _ = ebpf.run_sk_reuseport(asm.assemble(), ebpf.ReuseportContext(bytes(10), hash=90))
    assert verdict == 100


@pytest.mark.parametrize("protocol", ["wireguard", "quic"])
@given(
    payload=st.binary(max_size=64)
    | st.tuples(
        st.sampled_from(
            [
                b"\x04\x00\x00\x00",
                b"\x41",
                b"\xc3\x00\x00\x00\x01\x08",
                # Version Negotiation (RFC 8999 section 6) and a greased v1 long header (RFC
                # 9287) with the 0x40 bit clear
                b"\x80\x00\x00\x00\x00\x08",
                b"\x9a\x00\x00\x00\x01\x08",
            ]
        ),
        st.binary(max_size=60),
    ).map(b"".join)
)
def test_plugin_locations_steer_exactly_where_locate_applies(protocol: str, payload: bytes) -> None:
    """A policy built from a plugin's SidLocations (min_size included) steers a payload iff
    :func:`sidkit.extract.locate` finds an ID in it, in the model and in both compiled forms."""
    from sidkit.extract import Extractor, locate  # noqa: PLC0415

    options = {"quic": {"cid_length": 8}}.get(protocol, {})
    locations = Extractor([protocol], options).sid_locations()
    policy = SteeringPolicy(AnyOf(locations), "jhash", 1, seed=3)
    found = locate(locations, payload)
    expected = None if found is None else 0
    assert policy.select(payload) == expected
    assert _cbpf_index(compile_cbpf(policy), payload, 1) == expected
    _verdict, selected = ebpf.run_sk_reuseport(
        compile_ebpf(policy, map_fd=7), ebpf.ReuseportContext(bytes(8) + payload)
    )
    assert selected == expected


@given(
    st.integers(0, 0x7F),
    st.binary(min_size=8, max_size=8),
    st.binary(max_size=20),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
)
def test_version_negotiation_steers_like_the_extractor(
    low_bits: int, dcid: bytes, scid: bytes, versions: list[int]
) -> None:
    """A Version Negotiation packet, whatever its 7 low bits (about half of real ones have
    0x40 clear), is QUIC for the Extractor and steered by the same DCID bytes in the model
    and both compiled programs."""
    from fixtures import packets as pk  # noqa: PLC0415

    from sidkit.extract import Extractor, locate  # noqa: PLC0415

    vn = pk.quic_version_negotiation(dcid, scid, versions, low_bits)
    extractor = Extractor(["quic", "rtp"], {"quic": {"cid_length": 8}})
    sid = extractor.extract(vn)
    assert sid is not None and sid.protocol == "quic" and sid.value == dcid
    locations = extractor.sid_locations()
    found = locate(locations, vn)
    assert found is not None and found[1] == dcid
    policy = SteeringPolicy(AnyOf([found[0]]), "jhash", 5, seed=11)
    expected = policy.select(vn)
    assert expected is not None
    assert SteeringPolicy(AnyOf(locations[:1]), "jhash", 5, seed=11).select(vn) == expected
    full = SteeringPolicy(
        AnyOf(Extractor(["quic"], {"cid_length": 8}).sid_locations()), "jhash", 5, seed=11
    )
    assert full.select(vn) == expected
    assert _cbpf_index(compile_cbpf(full), vn, 5) == expected
    _verdict, selected = ebpf.run_sk_reuseport(
        compile_ebpf(full, map_fd=7), ebpf.ReuseportContext(bytes(8) + vn)
    )
    assert selected == expected


def _detach_through_a_survivor(backend: str) -> tuple[int | None, bool]:
    """In a private namespace: attach, close the socket attached through, detach. Returns the
    errno a further SO_DETACH_REUSEPORT_BPF on a survivor gets (ENOENT: no program left) and
    whether the handle accepted an asyncio-style socket wrapper."""
    from sidkit.bpf import _syscall, netns  # noqa: PLC0415

    class Wrapped:  # shaped like asyncio.trsock.TransportSocket: wraps, is not, a socket
        def __init__(self, sock: socket.socket) -> None:
            self._sock = sock
            self.type = sock.type

        def fileno(self) -> int:
            return self._sock.fileno()

        def getsockopt(self, level: int, name: int) -> int:
            return self._sock.getsockopt(level, name)

        def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
            self._sock.setsockopt(level, name, value)

        def getsockname(self) -> object:
            return self._sock.getsockname()

    socks = netns.open_group(3, "127.0.0.1", 4433)
    policy = SteeringPolicy(FixedOffset(0, 4), "modulo", 3)
    handle = attach([Wrapped(s) for s in socks], policy, backend)  # type: ignore[arg-type]
    socks[0].close()
    handle.detach()
    try:
        socks[1].setsockopt(socket.SOL_SOCKET, _syscall.SO_DETACH_REUSEPORT_BPF, 0)
    except OSError as exc:
        return exc.errno, True
    return None, True


@pytest.mark.oracle
@pytest.mark.parametrize("backend", ["cbpf", "ebpf"])
def test_detach_goes_through_any_open_member(backend: str) -> None:
    from conftest import oracle_unavailable  # noqa: PLC0415

    from sidkit.bpf import netns  # noqa: PLC0415
    from sidkit.bpf._syscall import bpf_available  # noqa: PLC0415

    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")
    err, wrapped_ok = netns.run_isolated(_detach_through_a_survivor, backend)
    assert wrapped_ok
    assert err == errno.ENOENT  # the handle already detached the program from the group
