# Strategy: one intermediate form, three consumers. A steering policy is lowered once into a
# short list of 32-bit operations on named variables (the jhash state a, b, c and a result v),
# guarded by "payload long enough" and "byte & mask == value" tests. The same list is then
#   * evaluated here in Python (so the lowering itself is tested against the model),
#   * lowered to classic BPF (variables in scratch slots M[], only A and X and 32-bit ALU),
#   * lowered to eBPF for SK_REUSEPORT (variables in callee-saved registers, the SID window
#     copied to the stack with bpf_skb_load_bytes, byte loads only: the verifier refuses
#     misaligned stack access).
# Every payload access is a single byte or a big-endian load, so the result does not depend on
# the host's byte order even though the kernel's jhash reads little-endian words on x86.
"""Steering IR: the operations a compiled SID-steering program performs (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import attrs

from sidkit.bpf import cbpf, ebpf
from sidkit.hashing import JHASH_INITVAL, reciprocal_scale

_M32: Final = (1 << 32) - 1
Var = Literal["a", "b", "c", "v", "t"]
BinOp = Literal["add", "sub", "xor", "and", "or", "lsh", "rsh", "mod"]


@attrs.frozen
class Set:
    dst: Var
    imm: int


@attrs.frozen
class AddByte:
    """``dst += payload[off] << shift``."""

    dst: Var
    off: int
    shift: int


@attrs.frozen
class LoadBE:
    """``dst = big-endian integer of payload[off:off+n]`` (1 <= n <= 4)."""

    dst: Var
    off: int
    n: int


@attrs.frozen
class Bin:
    """``dst = dst op (src or imm)``."""

    op: BinOp
    dst: Var
    src: Var | None = None
    imm: int = 0


@attrs.frozen
class RolOp:
    """``dst ^= rol32(src, k)`` or ``dst -= rol32(src, k)`` (jhash's two mixing shapes)."""

    op: Literal["xor", "sub"]
    dst: Var
    src: Var
    k: int


@attrs.frozen
class Scale:
    """``dst = reciprocal_scale(dst, n)``."""

    dst: Var
    n: int


Op = Set | AddByte | LoadBE | Bin | RolOp | Scale


@attrs.frozen
class Alternative:
    """Guards and body of one SID location; the first alternative whose guards pass decides."""

    need: int  # payload must be at least this long (covers guards and the SID)
    guards: tuple[tuple[int, int, int], ...]  # (offset, mask, value)
    body: tuple[Op, ...]
    low: int  # lowest payload offset touched (start of the eBPF stack window)
    # Shortest payload the location applies to (a protocol's minimum datagram size, e.g.
    # WireGuard's 32 bytes). Only tested, never copied: it may exceed the stack window.
    min_len: int = 0


@attrs.frozen
class Program:
    alternatives: tuple[Alternative, ...]
    n: int  # results >= n mean "no selection": the kernel's hash decides


# --- building the IR for jhash ---------------------------------------------------------------

_ABC: Final[tuple[Var, Var, Var]] = ("a", "b", "c")
_MIX: Final[tuple[tuple[Var, Var, int, Var, Var], ...]] = (
    # __jhash_mix (include/linux/jhash.h): x -= y; x ^= rol32(y, k); y += z
    ("a", "c", 4, "c", "b"),
    ("b", "a", 6, "a", "c"),
    ("c", "b", 8, "b", "a"),
    ("a", "c", 16, "c", "b"),
    ("b", "a", 19, "a", "c"),
    ("c", "b", 4, "b", "a"),
)
_FINAL: Final[tuple[tuple[Var, Var, int], ...]] = (
    # __jhash_final: x ^= y; x -= rol32(y, k)
    ("c", "b", 14),
    ("a", "c", 11),
    ("b", "a", 25),
    ("c", "b", 16),
    ("a", "c", 4),
    ("b", "a", 14),
    ("c", "b", 24),
)


def jhash_ops(off: int, length: int, seed: int) -> list[Op]:
    """The kernel's ``jhash(key, length, seed)`` over ``payload[off:off+length]``, into ``c``.

    Unrolled for the fixed length, so the program has no loop (classic BPF cannot loop).
    """
    ops: list[Op] = []
    start = (JHASH_INITVAL + length + seed) & _M32
    ops += [Set("a", start), Set("b", start), Set("c", start)]
    pos, left = off, length
    while left > 12:
        for word, var in enumerate(_ABC):
            ops += [AddByte(var, pos + 4 * word + i, 8 * i) for i in range(4)]
        for x, y, k, z, w in _MIX:
            ops += [Bin("sub", x, y), RolOp("xor", x, y, k), Bin("add", z, w)]
        pos += 12
        left -= 12
    if left == 0:
        return ops
    for i in range(left):
        ops.append(AddByte(_ABC[i // 4], pos + i, 8 * (i % 4)))
    for x, y, k in _FINAL:
        ops += [Bin("xor", x, y), RolOp("sub", x, y, k)]
    return ops


# --- evaluating the IR ------------------------------------------------------------------------


def evaluate(program: Program, payload: bytes) -> int | None:
    """Run the IR on *payload*: the socket index, or None when the kernel's hash decides."""
    for alt in program.alternatives:
        if len(payload) < max(alt.need, alt.min_len):
            continue
        if any(payload[o] & m != v for o, m, v in alt.guards):
            continue
        env: dict[str, int] = {}
        for op in alt.body:
            _eval_op(op, env, payload)
        result = env["v"]
        return result if result < program.n else None
    return None


def _eval_op(op: Op, env: dict[str, int], payload: bytes) -> None:
    if isinstance(op, Set):
        env[op.dst] = op.imm & _M32
    elif isinstance(op, AddByte):
        env[op.dst] = (env[op.dst] + (payload[op.off] << op.shift)) & _M32
    elif isinstance(op, LoadBE):
        env[op.dst] = int.from_bytes(payload[op.off : op.off + op.n], "big")
    elif isinstance(op, Bin):
        b = env[op.src] if op.src is not None else op.imm
        env[op.dst] = _BINOPS[op.op](env[op.dst], b) & _M32
    elif isinstance(op, RolOp):
        y = env[op.src]
        rot = ((y << op.k) | (y >> (32 - op.k))) & _M32
        x = env[op.dst]
        env[op.dst] = (x ^ rot if op.op == "xor" else x - rot) & _M32
    else:
        env[op.dst] = reciprocal_scale(env[op.dst], op.n)


_BINOPS: Final = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "xor": lambda a, b: a ^ b,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "lsh": lambda a, b: a << b,
    "rsh": lambda a, b: a >> b,
    "mod": lambda a, b: a % b,
}


# --- lowering to classic BPF -------------------------------------------------------------------

_SLOT: Final = {"a": 0, "b": 1, "c": 2, "v": 3, "t": 4}
_CBPF_OP: Final = {
    "add": cbpf.ADD,
    "sub": cbpf.SUB,
    "xor": cbpf.XOR,
    "and": cbpf.AND,
    "or": cbpf.OR,
    "lsh": cbpf.LSH,
    "rsh": cbpf.RSH,
    "mod": cbpf.MOD,
}
NO_SELECTION: Final = 0xFFFF_FFFF  # any index >= the group size makes the kernel use its hash


def to_cbpf(program: Program) -> list[cbpf.SockFilter]:
    """Lower to classic BPF for SO_ATTACH_REUSEPORT_CBPF (the packet is the UDP payload)."""
    asm = cbpf.Assembler()
    e = asm.emit
    for i, alt in enumerate(program.alternatives):
        skip, body = f"skip{i}", f"body{i}"
        # Length first: a classic load past the end would end the program with 0, i.e. socket
        # 0, not "no selection".
        e(cbpf.LD | cbpf.W | cbpf.LEN)
        asm.jump(cbpf.JGE, max(alt.need, alt.min_len), None, skip)
        for off, mask, value in alt.guards:
            e(cbpf.LD | cbpf.B | cbpf.ABS, off)
            if mask != 0xFF:
                e(cbpf.ALU | cbpf.AND | cbpf.K, mask)
            asm.jump(cbpf.JEQ, value, None, skip)
        asm.goto(body)
        asm.label(skip)
        asm.goto(f"alt{i + 1}")
        asm.label(body)
        for op in alt.body:
            _cbpf_op(asm, op)
        e(cbpf.LD | cbpf.MEM, _SLOT["v"])
        asm.jump(cbpf.JGE, program.n, f"none{i}", None)
        e(cbpf.RET | cbpf.A_SRC)
        asm.label(f"none{i}")
        e(cbpf.RET | cbpf.K, NO_SELECTION)
        asm.label(f"alt{i + 1}")
    e(cbpf.RET | cbpf.K, NO_SELECTION)
    return asm.assemble()


def _cbpf_op(asm: cbpf.Assembler, op: Op) -> None:
    e = asm.emit
    if isinstance(op, Set):
        e(cbpf.LD | cbpf.IMM, op.imm)
        e(cbpf.ST, _SLOT[op.dst])
    elif isinstance(op, AddByte):
        e(cbpf.LD | cbpf.B | cbpf.ABS, op.off)
        if op.shift:
            e(cbpf.ALU | cbpf.LSH | cbpf.K, op.shift)
        e(cbpf.LDX | cbpf.MEM, _SLOT[op.dst])
        e(cbpf.ALU | cbpf.ADD | cbpf.X)
        e(cbpf.ST, _SLOT[op.dst])
    elif isinstance(op, LoadBE):
        if op.n == 3:
            e(cbpf.LD | cbpf.H | cbpf.ABS, op.off)
            e(cbpf.ALU | cbpf.LSH | cbpf.K, 8)
            e(cbpf.MISC | cbpf.TAX)
            e(cbpf.LD | cbpf.B | cbpf.ABS, op.off + 2)
            e(cbpf.ALU | cbpf.OR | cbpf.X)
        else:
            size = {4: cbpf.W, 2: cbpf.H, 1: cbpf.B}[op.n]
            e(cbpf.LD | size | cbpf.ABS, op.off)
        e(cbpf.ST, _SLOT[op.dst])
    elif isinstance(op, Bin):
        e(cbpf.LD | cbpf.MEM, _SLOT[op.dst])
        if op.src is None:
            e(cbpf.ALU | _CBPF_OP[op.op] | cbpf.K, op.imm)
        else:
            e(cbpf.LDX | cbpf.MEM, _SLOT[op.src])
            e(cbpf.ALU | _CBPF_OP[op.op] | cbpf.X)
        e(cbpf.ST, _SLOT[op.dst])
    elif isinstance(op, RolOp):
        src = _SLOT[op.src]
        e(cbpf.LD | cbpf.MEM, src)
        e(cbpf.ALU | cbpf.LSH | cbpf.K, op.k)
        e(cbpf.MISC | cbpf.TAX)
        e(cbpf.LD | cbpf.MEM, src)
        e(cbpf.ALU | cbpf.RSH | cbpf.K, 32 - op.k)
        e(cbpf.ALU | cbpf.OR | cbpf.X)
        e(cbpf.MISC | cbpf.TAX)
        e(cbpf.LD | cbpf.MEM, _SLOT[op.dst])
        e(cbpf.ALU | (cbpf.XOR if op.op == "xor" else cbpf.SUB) | cbpf.X)
        e(cbpf.ST, _SLOT[op.dst])
    else:
        # reciprocal_scale without a 64-bit multiply: with h = hi * 2^16 + lo and n <= 2^16,
        # (h * n) >> 32 == (hi * n + ((lo * n) >> 16)) >> 16 exactly, and no step overflows.
        dst = _SLOT[op.dst]
        e(cbpf.LD | cbpf.MEM, dst)
        e(cbpf.ALU | cbpf.AND | cbpf.K, 0xFFFF)
        e(cbpf.ALU | cbpf.MUL | cbpf.K, op.n)
        e(cbpf.ALU | cbpf.RSH | cbpf.K, 16)
        e(cbpf.ST, _SLOT["t"])
        e(cbpf.LD | cbpf.MEM, dst)
        e(cbpf.ALU | cbpf.RSH | cbpf.K, 16)
        e(cbpf.ALU | cbpf.MUL | cbpf.K, op.n)
        e(cbpf.LDX | cbpf.MEM, _SLOT["t"])
        e(cbpf.ALU | cbpf.ADD | cbpf.X)
        e(cbpf.ALU | cbpf.RSH | cbpf.K, 16)
        e(cbpf.ST, dst)


# --- lowering to eBPF (SK_REUSEPORT) -------------------------------------------------------------

_REG: Final = {"a": 7, "b": 8, "c": 9, "v": 0, "t": 5}
_EBPF_OP: Final = {
    "add": ebpf.ADD,
    "sub": ebpf.SUB,
    "xor": ebpf.XOR,
    "and": ebpf.AND,
    "or": ebpf.OR,
    "lsh": ebpf.LSH,
    "rsh": ebpf.RSH,
    "mod": ebpf.MOD,
}
UDP_HEADER: Final = 8


def to_ebpf(
    program: Program, map_fd: int, *, on_no_sid: Literal["pass", "drop"] = "pass"
) -> list[ebpf.Insn]:
    """Lower to an SK_REUSEPORT program selecting from the REUSEPORT_SOCKARRAY *map_fd*.

    ``ctx->data`` is the UDP header, so payload offset ``o`` is load offset ``8 + o``. The
    program returns SK_PASS after a successful or failed selection (a failed one, e.g. an
    empty map slot, leaves the choice to the kernel's hash); a payload without a SID gets
    SK_PASS too, or SK_DROP when *on_no_sid* is ``"drop"``.
    """
    asm = ebpf.Assembler()
    max_window = max((alt.need - alt.low for alt in program.alternatives), default=0)
    frame = (max_window + 7) // 8 * 8
    key_off = -(frame + 8)
    asm.mov64(6, 1)  # r6 = ctx, callee-saved across helper calls
    for i, alt in enumerate(program.alternatives):
        skip = f"skip{i}"
        window = alt.need - alt.low
        base = -frame - alt.low  # stack offset of payload byte 0 within the window
        if alt.min_len > alt.need:
            # ctx->len is skb->len with data at the UDP header: header included.
            asm.ldx(ebpf.W, 1, 6, ebpf.CTX_LEN)
            asm.jmp(ebpf.JLT, 1, skip, imm=UDP_HEADER + alt.min_len)
        asm.mov64(1, 6)
        asm.mov64(2, imm=UDP_HEADER + alt.low)
        asm.mov64(3, 10)
        asm.alu64(ebpf.ADD, 3, imm=-frame)
        asm.mov64(4, imm=window)
        asm.call(ebpf.HELPER_SKB_LOAD_BYTES)
        asm.jmp(ebpf.JNE, 0, skip, imm=0)
        for off, mask, value in alt.guards:
            asm.ldx(ebpf.B, 1, 10, base + off)
            if mask != 0xFF:
                asm.alu32(ebpf.AND, 1, imm=mask)
            asm.jmp(ebpf.JNE, 1, skip, imm=value)
        for op in alt.body:
            _ebpf_op(asm, op, base)
        asm.ja("select")
        asm.label(skip)
    asm.mov64(0, imm=ebpf.SK_DROP if on_no_sid == "drop" else ebpf.SK_PASS)
    asm.exit()
    asm.label("select")
    asm.jmp(ebpf.JGE, 0, "pass", imm=program.n)
    asm.stx(ebpf.W, 10, key_off, 0)
    asm.mov64(1, 6)
    asm.ld_map_fd(2, map_fd)
    asm.mov64(3, 10)
    asm.alu64(ebpf.ADD, 3, imm=key_off)
    asm.mov64(4, imm=0)
    asm.call(ebpf.HELPER_SK_SELECT_REUSEPORT)
    asm.label("pass")
    asm.mov64(0, imm=ebpf.SK_PASS)
    asm.exit()
    return asm.assemble()


def _ebpf_op(asm: ebpf.Assembler, op: Op, base: int) -> None:
    if isinstance(op, Set):
        asm.mov32(_REG[op.dst], imm=op.imm)
    elif isinstance(op, AddByte):
        asm.ldx(ebpf.B, 1, 10, base + op.off)
        if op.shift:
            asm.alu32(ebpf.LSH, 1, imm=op.shift)
        asm.alu32(ebpf.ADD, _REG[op.dst], 1)
    elif isinstance(op, LoadBE):
        dst = _REG[op.dst]
        asm.ldx(ebpf.B, dst, 10, base + op.off)
        for i in range(1, op.n):
            asm.alu32(ebpf.LSH, dst, imm=8)
            asm.ldx(ebpf.B, 1, 10, base + op.off + i)
            asm.alu32(ebpf.OR, dst, 1)
    elif isinstance(op, Bin):
        if op.src is None:
            asm.alu32(_EBPF_OP[op.op], _REG[op.dst], imm=op.imm)
        else:
            asm.alu32(_EBPF_OP[op.op], _REG[op.dst], _REG[op.src])
    elif isinstance(op, RolOp):
        asm.mov32(1, _REG[op.src])
        asm.alu32(ebpf.LSH, 1, imm=op.k)
        asm.mov32(2, _REG[op.src])
        asm.alu32(ebpf.RSH, 2, imm=32 - op.k)
        asm.alu32(ebpf.OR, 1, 2)
        asm.alu32(ebpf.XOR if op.op == "xor" else ebpf.SUB, _REG[op.dst], 1)
    else:
        # The register holds a zero-extended u32 (every 32-bit ALU result is zero-extended),
        # so a 64-bit multiply and shift is the kernel's reciprocal_scale exactly.
        dst = _REG[op.dst]
        asm.alu64(ebpf.MUL, dst, imm=op.n)
        asm.alu64(ebpf.RSH, dst, imm=32)


def body_uses(ops: Sequence[Op]) -> tuple[int, int]:
    """Lowest and one-past-highest payload offsets the operations read."""
    offs = [
        (op.off, op.off + (op.n if isinstance(op, LoadBE) else 1))
        for op in ops
        if isinstance(op, AddByte | LoadBE)
    ]
    if not offs:
        return 0, 0
    return min(o for o, _ in offs), max(e for _, e in offs)
