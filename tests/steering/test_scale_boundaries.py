"""The cBPF and eBPF lowerings of ``reciprocal_scale`` at the hashes and group sizes that matter.

The kernel's ``reciprocal_scale(val, ep_ro)`` is ``(u32)(((u64)val * ep_ro) >> 32)``
(include/linux/math.h; include/linux/kernel.h before v5.10). Classic BPF has only a 32-bit
multiply, so the cBPF lowering splits the hash into 16-bit halves; the carry out of the low
half only matters for hashes near 0xFFFFFFFF with large n, which random draws almost never
reach. Here they are enumerated: the model (the formula above, computed with Python's exact
integers), the IR, the cBPF program and the eBPF program must agree on every one.
"""

from __future__ import annotations

import pytest

from sidkit.bpf import cbpf, ebpf
from sidkit.steering import _ir


def _program(n: int) -> _ir.Program:
    body = (_ir.LoadBE("v", 0, 4), _ir.Scale("v", n))
    return _ir.Program((_ir.Alternative(need=4, guards=(), body=body, low=0),), n)


def _model(h: int, n: int) -> int:
    return (h * n) >> 32  # (u64)val * ep_ro >> 32, exactly


def _powers_around() -> list[int]:
    ns = {1, 2, 3, 255, 256, 257, 1000, 65534, 65535, 65536}
    for p in range(1, 17):
        ns.update({(1 << p) - 1, 1 << p, (1 << p) + 1})
    return sorted(n for n in ns if 1 <= n <= 65536)


def _boundary_hashes() -> list[int]:
    hs = {0, 1, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE}
    for hi in (0, 1, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF):
        hs.update({hi << 16, (hi << 16) | 0xFFFF, (hi << 16) | 0x8000, (hi << 16) | 1})
    for lo in range(0xFFF0, 0x10000):
        hs.add(0xFFFF0000 | lo)
    return sorted(hs)


@pytest.mark.parametrize("n", _powers_around())
def test_lowerings_agree_with_the_model_at_carry_boundaries(n: int) -> None:
    ir = _program(n)
    program = _ir.to_cbpf(ir)
    insns = _ir.to_ebpf(ir, map_fd=7)
    for h in _boundary_hashes():
        payload = h.to_bytes(4, "big")
        expected = _model(h, n)
        assert _ir.evaluate(ir, payload) == expected, hex(h)
        assert cbpf.run(program, payload) == expected, hex(h)
        verdict, selected = ebpf.run_sk_reuseport(insns, ebpf.ReuseportContext(bytes(8) + payload))
        assert (verdict, selected) == (ebpf.SK_PASS, expected), hex(h)


@pytest.mark.parametrize("n", [65535, 65536, 40000])
def test_cbpf_lowering_on_every_hash_from_0xffff0000(n: int) -> None:
    """All 65,536 hashes 0xFFFF0000..0xFFFFFFFF: every low half, with the high half saturated."""
    program = _ir.to_cbpf(_program(n))
    cbpf.check(program)
    wrong = [
        h
        for h in range(0xFFFF0000, 0x1_0000_0000)
        if cbpf.run(program, h.to_bytes(4, "big"), checked=False) != _model(h, n)
    ]
    assert wrong == []
