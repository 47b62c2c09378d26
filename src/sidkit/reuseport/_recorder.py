# Strategy: the kernel's reuseport hash is the one selection input user space cannot see, and
# it depends on a per-namespace secret. HashRecorder attaches an SK_REUSEPORT program that
# stores ``ctx->hash`` in an array map under a tag carried in the payload's last four bytes and
# returns SK_PASS without selecting, so the kernel's own choice is undisturbed. The recorded
# hashes let the tests recover the namespace's initval and hold Group.select to the kernel.
"""Recording the kernel's reuseport hash of tagged datagrams (a live-kernel oracle)."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Sequence
from typing import Final

from sidkit._errors import InputTypeError, InputValueError, KernelOracleError
from sidkit._validate import as_list, check_int
from sidkit.bpf import _syscall, ebpf
from sidkit.steering import attach_sk_reuseport

__all__ = ["HashRecorder"]


_HELPER_MAP_UPDATE: Final = 2
#: Most tags a recorder keeps: its array map is allocated whole, 4 bytes a slot.
MAX_SLOTS: Final = 1 << 24


class HashRecorder:
    """Record the kernel's own flow hash (``ctx->hash``) of datagrams arriving at a group.

    Attaches an SK_REUSEPORT program that reads a u32 tag from the last four payload bytes
    (big-endian), stores ``ctx->hash`` in an array map under that tag and returns SK_PASS
    without selecting, so the kernel's hash selection proceeds untouched. This is how a test
    or the demo learns the hash the kernel computed -- and from it the namespace's secret
    initval -- without reading kernel memory.
    """

    def __init__(self, sockets: Sequence[socket.socket], slots: int = 1 << 16) -> None:
        # Checked before any map exists: a wrong argument must not cost a bpf(2) call.
        check_int(slots, 1, MAX_SLOTS, "slots")
        socks = as_list(sockets, "sockets", "a sequence of sockets")
        if not socks:
            raise InputValueError("sockets must name at least one socket of the group")
        for sock in socks:
            if not isinstance(sock, socket.socket):
                raise InputTypeError(
                    f"sockets must be socket.socket objects, not {type(sock).__name__}",
                    code="not-a-socket",
                )
        sockets = socks
        self.slots = slots
        self._map = _syscall.Map(_syscall.BPF_MAP_TYPE_ARRAY, 4, 4, slots, name="sidkit_hashes")
        program = self._program(self._map.fd, slots)
        self._handle = attach_sk_reuseport(sockets[0], program, self._map, name="sidkit_record")

    @staticmethod
    def _program(map_fd: int, slots: int) -> list[ebpf.Insn]:
        a = ebpf.Assembler()
        a.mov64(6, 1)
        a.ldx(ebpf.W, 2, 6, 16)  # ctx->len: UDP header + payload
        a.alu64(ebpf.SUB, 2, imm=4)  # the tag is the payload's last four bytes
        a.jmp(ebpf.JLT, 2, "pass", imm=8)  # payload shorter than the tag
        a.mov64(1, 6)
        a.mov64(3, 10)
        a.alu64(ebpf.ADD, 3, imm=-8)
        a.mov64(4, imm=4)
        a.call(ebpf.HELPER_SKB_LOAD_BYTES)
        a.jmp(ebpf.JNE, 0, "pass", imm=0)
        a.ldx(ebpf.W, 1, 10, -8)
        a.endian(True, 1, 32)
        a.jmp(ebpf.JGE, 1, "pass", imm=slots)
        a.stx(ebpf.W, 10, -16, 1)
        a.ldx(ebpf.W, 2, 6, 32)  # ctx->hash
        a.stx(ebpf.W, 10, -24, 2)
        a.ld_map_fd(1, map_fd)
        a.mov64(2, 10)
        a.alu64(ebpf.ADD, 2, imm=-16)
        a.mov64(3, 10)
        a.alu64(ebpf.ADD, 3, imm=-24)
        a.mov64(4, imm=0)
        a.call(_HELPER_MAP_UPDATE)
        a.label("pass")
        a.mov64(0, imm=ebpf.SK_PASS)
        a.exit()
        return a.assemble()

    def hash(self, tag: int) -> int:
        """The recorded hash for *tag* (0 if no datagram with that tag arrived)."""
        check_int(tag, 0, (1 << 32) - 1, "tag")  # one the program ignores (>= slots) reads 0
        raw = self._map.lookup(struct.pack("=I", tag))
        return 0 if raw is None else int(struct.unpack("=I", raw)[0])

    def close(self) -> None:
        """Detach the recorder and free it (idempotent)."""
        # A refused detach means the group is already gone; the program and map are freed
        # by the handle either way.
        with contextlib.suppress(KernelOracleError):
            self._handle.detach()
