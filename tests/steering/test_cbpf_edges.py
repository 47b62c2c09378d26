"""Edges of the classic BPF checker and interpreter, from the kernel's rules.

Sources (net/core/filter.c, v4.5-6.18, and Documentation/networking/filter.rst):
- ``bpf_check_classic``: a conditional jump needs ``pc + jt + 1 < flen`` and
  ``pc + jf + 1 < flen``; ``BPF_JA`` needs ``k < flen - pc - 1``; so a target equal to the
  program length is refused with EINVAL.
- ``check_load_and_stores``: reading ``M[i]`` on a path where it was never stored is EINVAL.
- ``bpf_convert_filter``: ``BPF_ALU | BPF_DIV/BPF_MOD | BPF_X`` is preceded by
  "if X == 0 return 0" ("For cBPF programs, this was always return 0").
- filter.rst: ``ldx #k`` sets X = k, ``txa`` sets A = X, ``ld [x + k]`` / ``ldh [x + k]`` /
  ``ldb [x + k]`` load P[X + k] big-endian, and a load past the packet ends the program with 0.

Where the live kernel is available, every program the checker refuses must also be refused by
``SO_ATTACH_FILTER`` with EINVAL, and every one it accepts must attach.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct

import pytest

from sidkit.bpf import cbpf
from sidkit.bpf.cbpf import SockFilter

SO_ATTACH_FILTER = 26  # include/uapi/asm-generic/socket.h
SO_DETACH_FILTER = 27


def _i(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> SockFilter:
    return SockFilter(code, jt, jf, k)


RET_A = _i(cbpf.RET | cbpf.A_SRC)
RET_K = _i(cbpf.RET | cbpf.K, 0xFFFF)

REFUSED = {
    "jt to length": [_i(cbpf.LD | cbpf.IMM, 1), _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 1, 1, 0), RET_A],
    "jf to length": [_i(cbpf.LD | cbpf.IMM, 1), _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 1, 0, 1), RET_A],
    "ja to length": [_i(cbpf.JMP | cbpf.JA, 1), RET_A],
    "read M before write": [_i(cbpf.LD | cbpf.MEM, 0), RET_A],
    "ldx M before write": [_i(cbpf.LDX | cbpf.MEM, 15), RET_A],
    # M[1] is written on only one of the two paths reaching the read
    "read M written on one path": [
        _i(cbpf.LD | cbpf.W | cbpf.LEN),
        _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 0, 0, 1),
        _i(cbpf.ST, 1),
        _i(cbpf.LD | cbpf.MEM, 1),
        RET_A,
    ],
}

ACCEPTED = {
    "jt to last": [_i(cbpf.LD | cbpf.IMM, 1), _i(cbpf.JMP | cbpf.JEQ | cbpf.K, 1, 0, 0), RET_A],
    "ja to last": [_i(cbpf.JMP | cbpf.JA, 0), RET_A],
    "read M after write": [_i(cbpf.ST, 0), _i(cbpf.LD | cbpf.MEM, 0), RET_A],
    "div by X": [_i(cbpf.LDX | cbpf.IMM, 0), _i(cbpf.ALU | cbpf.DIV | cbpf.X), RET_K],
    "mod by X": [_i(cbpf.LDX | cbpf.IMM, 0), _i(cbpf.ALU | cbpf.MOD | cbpf.X), RET_K],
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_checker_refuses(name: str) -> None:
    with pytest.raises(cbpf.CbpfError):
        cbpf.check(REFUSED[name])


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_checker_accepts(name: str) -> None:
    cbpf.check(ACCEPTED[name])


@pytest.mark.parametrize("op", [cbpf.DIV, cbpf.MOD])
def test_division_by_zero_x_returns_zero_from_the_program(op: int) -> None:
    program = [
        _i(cbpf.LD | cbpf.IMM, 7),
        _i(cbpf.LDX | cbpf.IMM, 0),
        _i(cbpf.ALU | op | cbpf.X),
        RET_K,  # never reached: the division ended the program with 0
    ]
    assert cbpf.run(program, b"payload") == 0
    # and with X != 0 the operation happens: 7 / 2 == 3, 7 % 2 == 1
    program[1] = _i(cbpf.LDX | cbpf.IMM, 2)
    program[3] = RET_A
    assert cbpf.run(program, b"payload") == (3 if op == cbpf.DIV else 1)


def test_ldx_imm_and_txa() -> None:
    program = [
        _i(cbpf.LD | cbpf.IMM, 5),
        _i(cbpf.LDX | cbpf.IMM, 0xDEADBEEF),
        _i(cbpf.MISC | cbpf.TXA),
        RET_A,
    ]
    assert cbpf.run(program, b"") == 0xDEADBEEF
    # TAX then TXA round-trips A through X
    program = [_i(cbpf.LD | cbpf.IMM, 42), _i(cbpf.MISC | cbpf.TAX), _i(cbpf.LD | cbpf.IMM, 0)]
    program += [_i(cbpf.MISC | cbpf.TXA), RET_A]
    assert cbpf.run(program, b"") == 42


@pytest.mark.parametrize(("size", "width"), [(cbpf.W, 4), (cbpf.H, 2), (cbpf.B, 1)])
@pytest.mark.parametrize("x", [0, 1, 3])
@pytest.mark.parametrize("k", [0, 2, 5])
def test_indirect_loads(size: int, width: int, x: int, k: int) -> None:
    packet = bytes(range(0x10, 0x1A))  # 10 bytes
    program = [_i(cbpf.LDX | cbpf.IMM, x), _i(cbpf.LD | size | cbpf.IND, k), RET_A]
    off = x + k
    expected = int.from_bytes(packet[off : off + width], "big") if off + width <= len(packet) else 0
    assert cbpf.run(program, packet) == expected


def _kernel_attach(program: list[SockFilter]) -> int:
    """0 if SO_ATTACH_FILTER accepts *program*, else the errno."""
    raw = cbpf.encode(program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(buf))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        except OSError as exc:
            return exc.errno or -1
        s.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    return 0


@pytest.mark.oracle
def test_the_live_kernel_agrees_with_the_checker() -> None:
    from conftest import oracle_unavailable  # noqa: PLC0415

    if struct.calcsize("P") != 8 or not hasattr(socket, "SO_REUSEPORT"):
        oracle_unavailable("live kernel: needs 64-bit Linux")
    try:
        if _kernel_attach([RET_K]) != 0:
            oracle_unavailable("live kernel: SO_ATTACH_FILTER refuses even RET #0xffff")
    except OSError as exc:  # pragma: no cover - no socket at all
        oracle_unavailable(f"live kernel: {exc}")
    for name, program in REFUSED.items():
        assert _kernel_attach(program) == errno.EINVAL, name
    for name, program in ACCEPTED.items():
        assert _kernel_attach(program) == 0, name
