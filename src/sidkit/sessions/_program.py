# Strategy: the session table's SK_REUSEPORT program is generated like the stateless steering
# programs -- from the policy's IR alternatives (sidkit.steering._ir), the SID window copied
# to the stack with bpf_skb_load_bytes, byte loads only, guards before the SID -- and then
# does three things the stateless program cannot:
#
#   1. look the key up in the pinned table (sessions the application assured), then in the
#      recent table (sessions recorded on their first datagram); a live, unexpired entry
#      selects its socket by SO_COOKIE from a SOCKHASH and refreshes its time;
#   2. an expired entry, or one whose socket is gone (the SOCKHASH forgets a socket when it
#      closes, so bpf_sk_select_reuseport answers -ENOENT), is picked anew in place and
#      counted: no other session moves because one socket died;
#   3. a miss picks socket policy.index_of(sid) of the *working generation* -- its size is
#      read from the config map at run time, so a generation change is two map writes, not a
#      new program -- selects it and, when the table records on first packet, inserts it.
#
# Sockets are named by cookie in a SOCKHASH rather than by slot in a REUSEPORT_SOCKARRAY: a
# cookie is never reused while the kernel runs, so a stale entry can never select a
# *different* socket that later took its slot; and a SOCKHASH holds sockets of any number of
# generations in one map (a socket can be in only one REUSEPORT_SOCKARRAY). The working
# generation's sockets are listed, by cookie, in an array the pick indexes.
#
# The kernel cannot test-run SK_REUSEPORT programs, so this one is held to the model by the
# live kernel, datagram by datagram (tests/sessions).
"""The session table's SK_REUSEPORT program (private)."""

from __future__ import annotations

from typing import Final

import attrs

from sidkit.bpf import ebpf
from sidkit.sessions._spec import KEY_DATA, TUPLE_KIND, SessionSpec
from sidkit.steering import _ir

__all__ = ["COUNTERS", "MapFds", "generate"]

#: The program's counters, in the order of the counters array map.
COUNTERS: Final = (
    "datagrams",  # every run (the sum of the exclusive outcomes below)
    "no_key",  # no SID (or no address): the kernel's hash decides
    "hit",  # a live, unexpired entry selected its socket
    "pinned_hit",  # ... of which from the pinned table
    "miss",  # no entry: picked from the working generation
    "expired",  # an entry older than the timeout: picked anew in place
    "stale",  # an entry whose socket is gone: picked anew in place
    "recorded",  # a miss inserted into the recent table
    "record_failed",  # the insert failed (ENOMEM)
    "pick_failed",  # the working generation is empty or the index is out of range
    "select_failed",  # the picked socket could not be selected
)
_C: Final = {name: i for i, name in enumerate(COUNTERS)}

# value: cookie u64, last_ns u64, generation u32, flags u32
VALUE_SIZE: Final = 24
# config: base slot u32, n u32, generation u32, flags u32, timeout_ns u64, and for the next
# process (the program does not read them): generations u32, per_generation u32
CONFIG_SIZE: Final = 32
CONFIG_RECORD: Final = 1  # flags bit: record misses in the recent table
CONFIG_PINNED: Final = 2  # flags bit: the pinned table may hold entries (else skip its lookup)

# Stack layout (offsets from r10).
_KEY: Final = -24
_KEY_DATA: Final = _KEY + KEY_DATA
_VAL: Final = -48
_COOKIE: Final = -56
_U32: Final = -64
_RAW: Final = -72
_NOW: Final = -80
_SAVE_ENTRY: Final = -88
_SAVE_CONFIG: Final = -96
_FRAME: Final = 96
_ETH_P_IP: Final = 0x0008  # htons(ETH_P_IP) read as a little-endian u32 (KERNEL-NOTES)
_ETH_P_IPV6: Final = 0xDD86
_BPF_HDR_START_NET: Final = 1
_REG_CONFIG: Final = 8
_REG_ENTRY: Final = 7
_HASH_TO_V: Final[tuple[_ir.Op, ...]] = (_ir.Set("v", 0), _ir.Bin("or", "v", "c"))


@attrs.frozen
class MapFds:
    """The maps the program refers to (file descriptors at load time)."""

    pinned: int
    recent: int
    sockets: int
    slots: int
    config: int
    counters: int


def generate(spec: SessionSpec, fds: MapFds, slots: int = 1024) -> list[ebpf.Insn]:
    """The session table program for *spec* over the maps *fds* (*slots*: the size of the
    slots array, which the cookie dissector's values index)."""
    g = _Gen(spec, fds, slots)
    return g.build()


class _Gen:
    def __init__(self, spec: SessionSpec, fds: MapFds, slots: int = 1024) -> None:
        self.spec = spec
        self.fds = fds
        self.slots = slots
        self.asm = ebpf.Assembler()
        self._n = 0

    def label(self, stem: str) -> str:
        self._n += 1
        return f"{stem}{self._n}"

    def count(self, name: str) -> None:
        """``counters[name] += 1`` in this CPU's slot of a per-CPU array: no atomic needed,
        user space sums the CPUs. ``datagrams`` is not counted here: it is the sum of the
        exclusive outcomes, computed by SessionTable.counters()."""
        a = self.asm
        skip = self.label("cnt")
        a.st(ebpf.W, 10, _U32, _C[name])
        a.ld_map_fd(1, self.fds.counters)
        a.mov64(2, 10)
        a.alu64(ebpf.ADD, 2, imm=_U32)
        a.call(ebpf.HELPER_MAP_LOOKUP_ELEM)
        a.jmp(ebpf.JEQ, 0, skip, imm=0)
        a.ldx(ebpf.DW, 1, 0, 0)
        a.alu64(ebpf.ADD, 1, imm=1)
        a.stx(ebpf.DW, 0, 0, 1)
        a.label(skip)

    def zero_key(self, kind: int) -> None:
        a = self.asm
        a.st(ebpf.W, 10, _KEY, kind)
        for off in range(_KEY + 4, 0, 4):
            a.st(ebpf.W, 10, off, 0)

    def build(self) -> list[ebpf.Insn]:
        if self.spec.stateless:
            return self.build_stateless()
        a = self.asm
        a.mov64(6, 1)
        if self.spec.key == "sid":
            self.sid_key()
        else:
            self.tuple_key()
        # No key: the kernel's hash decides among every socket of the group.
        self.count("no_key")
        self.ret_pass()
        a.label("found")
        self.lookups()
        return a.assemble()

    def build_stateless(self) -> list[ebpf.Insn]:
        """udpgrm's cookie and noop dissectors in sidkit's form: a valid cookie (a slot of
        the slots array, minted into the SID) selects its socket; anything else -- no SID, a
        slot out of range or empty, a socket that is gone -- is a new flow for the working
        generation, picked by the kernel's flow hash. Nothing is recorded."""
        a = self.asm
        a.mov64(6, 1)
        a.mov64(_REG_ENTRY, imm=0)
        a.mov64(_REG_CONFIG, imm=0)
        if self.spec.key == "cookie":
            self.sid_key()
        self.count("no_key")
        a.ja("new_flow")
        if self.spec.key == "cookie":
            a.label("found")
            self.raw()
            a.ldx(ebpf.W, 3, 10, _RAW)
            a.jmp(ebpf.JGE, 3, "cookie_miss", imm=self.slots)
            self.slot_cookie("cookie_miss")
            self.select(10, _COOKIE, "cookie_stale")
            self.count("hit")
            self.ret_pass()
            a.label("cookie_stale")
            self.count("stale")
            a.ja("new_flow")
            a.label("cookie_miss")
            self.count("miss")
        a.label("new_flow")
        a.st(ebpf.W, 10, _U32, 0)
        a.ld_map_fd(1, self.fds.config)
        a.mov64(2, 10)
        a.alu64(ebpf.ADD, 2, imm=_U32)
        a.call(ebpf.HELPER_MAP_LOOKUP_ELEM)
        a.jmp(ebpf.JNE, 0, "have_config", imm=0)
        self.ret_pass()
        a.label("have_config")
        a.mov64(_REG_CONFIG, 0)
        self.pick()
        self.select(10, _COOKIE, "select_failed")
        self.ret_pass()
        a.label("pick_failed")
        self.count("pick_failed")
        self.ret_pass()
        a.label("select_failed")
        self.count("select_failed")
        self.ret_pass()
        return a.assemble()

    def ret_pass(self) -> None:
        self.asm.mov64(0, imm=ebpf.SK_PASS)
        self.asm.exit()

    # --- the key and the raw pick value -----------------------------------------------------

    def sid_key(self) -> None:
        a = self.asm
        policy = self.spec.policy
        assert policy is not None
        program = policy.ir()
        max_window = max(alt.need - alt.low for alt in program.alternatives)
        frame = (max_window + 7) // 8 * 8
        win = -_FRAME - frame
        for i, (alt, loc) in enumerate(
            zip(program.alternatives, policy.spec.alternatives, strict=True)
        ):
            skip = f"skip{i}"
            base = win - alt.low  # stack offset of payload byte 0
            if alt.min_len > alt.need:
                a.ldx(ebpf.W, 1, 6, ebpf.CTX_LEN)
                a.jmp(ebpf.JLT, 1, skip, imm=_ir.UDP_HEADER + alt.min_len)
            a.mov64(1, 6)
            a.mov64(2, imm=_ir.UDP_HEADER + alt.low)
            a.mov64(3, 10)
            a.alu64(ebpf.ADD, 3, imm=win)
            a.mov64(4, imm=alt.need - alt.low)
            a.call(ebpf.HELPER_SKB_LOAD_BYTES)
            a.jmp(ebpf.JNE, 0, skip, imm=0)
            for off, mask, value in alt.guards:
                a.ldx(ebpf.B, 1, 10, base + off)
                if mask != 0xFF:
                    a.alu32(ebpf.AND, 1, imm=mask)
                a.jmp(ebpf.JNE, 1, skip, imm=value)
            self.zero_key(loc.length)
            for j in range(loc.length):
                a.ldx(ebpf.B, 1, 10, base + loc.offset + j)
                a.stx(ebpf.B, 10, _KEY_DATA + j, 1)
            a.ja("found")
            a.label(skip)

    def sid_raw_ops(self, length: int) -> list[_ir.Op]:
        policy = self.spec.policy
        assert policy is not None
        if policy.method == "jhash":
            return [*_ir.jhash_ops(0, length, policy.seed), *_HASH_TO_V]
        if policy.method == "modulo":
            return [_ir.LoadBE("v", 0, min(4, length))]
        f = policy.field
        ops: list[_ir.Op] = [_ir.LoadBE("v", f.offset, f.length)]
        if f.shift:
            ops.append(_ir.Bin("rsh", "v", imm=f.shift))
        if f.mask != (1 << (8 * f.length)) - 1:
            ops.append(_ir.Bin("and", "v", imm=f.mask))
        if f.base:
            ops.append(_ir.Bin("sub", "v", imm=f.base))
        return ops

    def lengths(self) -> list[int]:
        if self.spec.key == "3-tuple":
            return [6, 18]
        assert self.spec.policy is not None
        return sorted({loc.length for loc in self.spec.policy.spec.alternatives})

    def raw(self) -> None:
        """The raw pick value from the key's data, computed only when a socket must be
        picked (a hit never pays for the hash). The operations use r7-r9, so the entry and
        config pointers are spilled around them."""
        a = self.asm
        done = self.label("raw_done")
        a.stx(ebpf.DW, 10, _SAVE_ENTRY, _REG_ENTRY)
        a.stx(ebpf.DW, 10, _SAVE_CONFIG, _REG_CONFIG)
        a.ldx(ebpf.B, 1, 10, _KEY)
        a.alu32(ebpf.AND, 1, imm=0x7F)
        for length in self.lengths():
            nxt = self.label("raw_len")
            a.jmp(ebpf.JNE, 1, nxt, imm=length)
            if self.spec.key == "3-tuple":
                ops = [*_ir.jhash_ops(0, length, self.spec.seed), *_HASH_TO_V]
            else:
                ops = self.sid_raw_ops(length)
            for op in ops:
                _ir._ebpf_op(a, op, _KEY_DATA)
            a.stx(ebpf.W, 10, _RAW, 0)
            a.ja(done)
            a.label(nxt)
        a.st(ebpf.W, 10, _RAW, 0)  # not reached: every key length is one of the above
        a.label(done)
        a.ldx(ebpf.DW, _REG_ENTRY, 10, _SAVE_ENTRY)
        a.ldx(ebpf.DW, _REG_CONFIG, 10, _SAVE_CONFIG)

    def tuple_key(self) -> None:
        """The remote address (from the network header) and port (from the UDP header)."""
        a = self.asm
        a.ldx(ebpf.W, 1, 6, 20)  # ctx->eth_protocol
        a.jmp(ebpf.JEQ, 1, "v4", imm=_ETH_P_IP)
        a.jmp(ebpf.JEQ, 1, "v6", imm=_ETH_P_IPV6)
        a.ja("nokey")
        for name, addr_off, addr_len in (("v4", 12, 4), ("v6", 8, 16)):
            a.label(name)
            length = addr_len + 2
            self.zero_key(TUPLE_KIND | length)
            a.mov64(1, 6)
            a.mov64(2, imm=addr_off)
            a.mov64(3, 10)
            a.alu64(ebpf.ADD, 3, imm=_KEY_DATA)
            a.mov64(4, imm=addr_len)
            a.mov64(5, imm=_BPF_HDR_START_NET)
            a.call(ebpf.HELPER_SKB_LOAD_BYTES_RELATIVE)
            a.jmp(ebpf.JNE, 0, "nokey", imm=0)
            a.mov64(1, 6)
            a.mov64(2, imm=0)  # the UDP source port
            a.mov64(3, 10)
            a.alu64(ebpf.ADD, 3, imm=_KEY_DATA + addr_len)
            a.mov64(4, imm=2)
            a.call(ebpf.HELPER_SKB_LOAD_BYTES)
            a.jmp(ebpf.JNE, 0, "nokey", imm=0)
            a.ja("found")
        a.label("nokey")

    # --- tables, pick, select -------------------------------------------------------------

    def lookup(self, map_fd: int) -> None:
        a = self.asm
        a.ld_map_fd(1, map_fd)
        a.mov64(2, 10)
        a.alu64(ebpf.ADD, 2, imm=_KEY)
        a.call(ebpf.HELPER_MAP_LOOKUP_ELEM)

    def select(self, key_reg: int, key_off: int, fail: str) -> None:
        a = self.asm
        a.mov64(1, 6)
        a.ld_map_fd(2, self.fds.sockets)
        a.mov64(3, key_reg)
        if key_off:
            a.alu64(ebpf.ADD, 3, imm=key_off)
        a.mov64(4, imm=0)
        a.call(ebpf.HELPER_SK_SELECT_REUSEPORT)
        a.jmp(ebpf.JNE, 0, fail, imm=0)

    def pick(self) -> None:
        """Socket ``pick(raw, n)`` of the working generation: its cookie to ``[r10+_COOKIE]``,
        or a jump to ``pick_failed``."""
        a = self.asm
        c = _REG_CONFIG
        method = self.spec.method
        if method == "hash":
            a.ldx(ebpf.W, 1, 6, 32)  # ctx->hash: the kernel's flow hash of the datagram
            a.stx(ebpf.W, 10, _RAW, 1)
        else:
            self.raw()
        a.ldx(ebpf.W, 2, c, 4)  # n
        a.jmp(ebpf.JEQ, 2, "pick_failed", imm=0)
        a.ldx(ebpf.W, 3, 10, _RAW)
        if method in ("jhash", "hash"):
            a.alu64(ebpf.MUL, 3, 2)  # both zero-extended u32: reciprocal_scale exactly
            a.alu64(ebpf.RSH, 3, imm=32)
        elif method == "modulo":
            a.alu32(ebpf.MOD, 3, 2)
        else:
            a.jmp(ebpf.JGE, 3, "pick_failed", src=2)
        a.ldx(ebpf.W, 1, c, 0)  # base slot of the working generation
        a.alu32(ebpf.ADD, 3, 1)
        self.slot_cookie("pick_failed")

    def slot_cookie(self, missing: str) -> None:
        """The cookie of the socket in slot r3 (u32) onto the stack at _COOKIE; to *missing*
        when the slots map has no such slot or the slot is empty (cookie 0)."""
        a = self.asm
        a.stx(ebpf.W, 10, _U32, 3)
        a.ld_map_fd(1, self.fds.slots)
        a.mov64(2, 10)
        a.alu64(ebpf.ADD, 2, imm=_U32)
        a.call(ebpf.HELPER_MAP_LOOKUP_ELEM)
        a.jmp(ebpf.JEQ, 0, missing, imm=0)
        a.ldx(ebpf.DW, 1, 0, 0)
        a.jmp(ebpf.JEQ, 1, missing, imm=0)
        a.stx(ebpf.DW, 10, _COOKIE, 1)

    def lookups(self) -> None:
        a = self.asm
        a.call(ebpf.HELPER_KTIME_GET_COARSE_NS)
        a.stx(ebpf.DW, 10, _NOW, 0)
        a.st(ebpf.W, 10, _U32, 0)
        a.ld_map_fd(1, self.fds.config)
        a.mov64(2, 10)
        a.alu64(ebpf.ADD, 2, imm=_U32)
        a.call(ebpf.HELPER_MAP_LOOKUP_ELEM)
        a.jmp(ebpf.JNE, 0, "have_config", imm=0)
        self.ret_pass()
        a.label("have_config")
        a.mov64(_REG_CONFIG, 0)
        a.mov64(_REG_ENTRY, imm=0)
        a.ldx(ebpf.W, 1, _REG_CONFIG, 12)
        a.alu32(ebpf.AND, 1, imm=CONFIG_PINNED)
        a.jmp(ebpf.JEQ, 1, "try_recent", imm=0)
        self.lookup(self.fds.pinned)
        a.jmp(ebpf.JEQ, 0, "try_recent", imm=0)
        a.mov64(_REG_ENTRY, 0)
        self.entry(pinned=True)
        a.label("try_recent")
        self.lookup(self.fds.recent)
        a.jmp(ebpf.JEQ, 0, "miss", imm=0)
        a.mov64(_REG_ENTRY, 0)
        self.entry(pinned=False)
        # A miss: pick from the working generation, select, record.
        a.label("miss")
        self.count("miss")
        self.pick()
        self.select(10, _COOKIE, "select_failed")
        a.ldx(ebpf.W, 1, _REG_CONFIG, 12)
        a.alu32(ebpf.AND, 1, imm=CONFIG_RECORD)
        a.jmp(ebpf.JEQ, 1, "done", imm=0)
        a.ldx(ebpf.DW, 1, 10, _COOKIE)
        a.stx(ebpf.DW, 10, _VAL, 1)
        a.ldx(ebpf.DW, 1, 10, _NOW)
        a.stx(ebpf.DW, 10, _VAL + 8, 1)
        a.ldx(ebpf.W, 1, _REG_CONFIG, 8)
        a.stx(ebpf.W, 10, _VAL + 16, 1)
        a.st(ebpf.W, 10, _VAL + 20, 0)
        a.ld_map_fd(1, self.fds.recent)
        a.mov64(2, 10)
        a.alu64(ebpf.ADD, 2, imm=_KEY)
        a.mov64(3, 10)
        a.alu64(ebpf.ADD, 3, imm=_VAL)
        a.mov64(4, imm=0)  # BPF_ANY
        a.call(ebpf.HELPER_MAP_UPDATE_ELEM)
        a.jmp(ebpf.JNE, 0, "record_failed", imm=0)
        self.count("recorded")
        a.label("done")
        self.ret_pass()
        a.label("record_failed")
        self.count("record_failed")
        self.ret_pass()
        # An expired or stale entry: pick anew, select, write the entry in place.
        a.label("repick")
        self.pick()
        self.select(10, _COOKIE, "select_failed")
        e = _REG_ENTRY
        a.ldx(ebpf.DW, 1, 10, _COOKIE)
        a.stx(ebpf.DW, e, 0, 1)
        a.ldx(ebpf.DW, 1, 10, _NOW)
        a.stx(ebpf.DW, e, 8, 1)
        a.ldx(ebpf.W, 1, _REG_CONFIG, 8)
        a.stx(ebpf.W, e, 16, 1)
        self.ret_pass()
        a.label("pick_failed")
        self.count("pick_failed")
        self.ret_pass()
        a.label("select_failed")
        self.count("select_failed")
        self.ret_pass()

    def entry(self, *, pinned: bool) -> None:
        """A found entry in r7: expired? selectable? else re-pick in place."""
        a = self.asm
        e = _REG_ENTRY
        tag = "p" if pinned else "r"
        a.ldx(ebpf.DW, 1, 10, _NOW)
        a.ldx(ebpf.DW, 2, e, 8)
        a.alu64(ebpf.SUB, 1, 2)
        a.ldx(ebpf.DW, 2, _REG_CONFIG, 16)
        a.jmp(ebpf.JSGT, 1, f"expired_{tag}", src=2)
        self.select(e, 0, f"stale_{tag}")
        a.ldx(ebpf.DW, 1, 10, _NOW)
        a.stx(ebpf.DW, e, 8, 1)
        self.count("hit")
        if pinned:
            self.count("pinned_hit")
        self.ret_pass()
        a.label(f"expired_{tag}")
        self.count("expired")
        a.ja("repick")
        a.label(f"stale_{tag}")
        self.count("stale")
        a.ja("repick")
