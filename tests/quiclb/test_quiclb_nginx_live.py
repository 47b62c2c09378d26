"""nginx's own shipped SK_REUSEPORT bytecode in the live kernel against nginx_socket_cookie.

nginx ships its reuseport helper compiled, as a C table of ``struct bpf_insn`` in
``src/event/quic/ngx_event_quic_bpf_code.c``. sidkit carries none of it: point
``SIDKIT_NGINX_TREE`` at an nginx source tree and this test reads the table from there, loads
it as nginx does (``ngx_event_quic_bpf.c``: a ``BPF_MAP_TYPE_SOCKHASH`` keyed by the u64
``SO_COOKIE``, the map fd patched into the instruction the relocation names), attaches it to a
real SO_REUSEPORT group on loopback and checks, datagram by datagram, that the kernel selects
the socket whose cookie :func:`sidkit.quiclb.nginx_socket_cookie` predicts, and the default
(hash) socket where it predicts no lookup. Checked against release-1.31.4-4-g3f6f7824d.
"""

from __future__ import annotations

import os
import random
import re
import select
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import oracle_unavailable

from sidkit import quiclb
from sidkit.bpf import _syscall as sys_bpf

TREE = os.environ.get("SIDKIT_NGINX_TREE", "")
pytestmark = pytest.mark.skipif(
    not TREE, reason="set SIDKIT_NGINX_TREE to an nginx source tree to run nginx's bytecode"
)

BPF_MAP_TYPE_SOCKHASH = 18
BPF_PSEUDO_MAP_FD = 1
SO_COOKIE = 57
_INSN = re.compile(
    r"\{\s*(0x[0-9a-f]+),\s*BPF_REG_(\d+),\s*BPF_REG_(\d+),\s*\(int16_t\)\s*(\d+),\s*"
    r"(0x[0-9a-f]+)\s*\}"
)
_RELOC = re.compile(r'\{\s*"ngx_quic_sockmap",\s*(\d+)\s*\}')


def nginx_program(map_fd: int) -> bytes:
    """The shipped instructions, with the socket map's fd where the relocation says."""
    source = Path(TREE, "src/event/quic/ngx_event_quic_bpf_code.c").read_text()
    reloc = int(_RELOC.search(source).group(1))  # type: ignore[union-attr]
    out = bytearray()
    for i, m in enumerate(_INSN.finditer(source)):
        code, dst, src, off, imm = (int(m.group(1), 16), int(m.group(2)), int(m.group(3)),
                                    int(m.group(4)), int(m.group(5), 16))  # fmt: skip
        if i == reloc:
            src, imm = BPF_PSEUDO_MAP_FD, map_fd
        off = off - 0x10000 if off >= 0x8000 else off
        imm = imm - (1 << 32) if imm >= 1 << 31 else imm
        out += struct.pack("<BBhi", code, dst | (src << 4), off, imm)
    return bytes(out)


def payloads(cookie: bytes, rng: random.Random) -> Iterator[bytes]:
    """Datagrams around every boundary of the rule, carrying *cookie* where nginx reads."""
    short = b"\x40" + cookie + rng.randbytes(12)
    for cut in range(len(short) + 3):
        yield (short + b"pn")[:cut]
    for dcid_len in (*range(0, 22), 40, 255):
        dcid = (cookie + rng.randbytes(dcid_len))[:dcid_len]
        packet = b"\xc0\x00\x00\x00\x01" + bytes([dcid_len]) + dcid + b"\x00tail"
        for cut in {0, 5, 6, 13, 14, 5 + dcid_len, 6 + dcid_len, 7 + dcid_len, len(packet)}:
            if 0 <= cut <= len(packet):
                yield packet[:cut]


@pytest.mark.oracle
def test_nginx_bytecode_in_the_live_kernel() -> None:
    problem = sys_bpf.bpf_available()
    if problem:
        oracle_unavailable(problem)
    n = 4
    sockets: list[socket.socket] = []
    map_fd = prog_fd = -1
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("127.0.0.1", sockets[0].getsockname()[1] if i else 0))
            s.setblocking(False)
            sockets.append(s)
        map_fd = sys_bpf.map_create(BPF_MAP_TYPE_SOCKHASH, 8, 8, 4 * n, name="ngx_quic_sock")
        cookies = []
        for s in sockets:
            cookie = struct.unpack("=Q", s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0]
            sys_bpf.map_update(map_fd, struct.pack("=Q", cookie), struct.pack("=Q", s.fileno()))
            cookies.append(cookie)
        prog_fd = sys_bpf.prog_load(
            sys_bpf.BPF_PROG_TYPE_SK_REUSEPORT, nginx_program(map_fd), license="BSD"
        )
        sockets[0].setsockopt(
            socket.SOL_SOCKET, sys_bpf.SO_ATTACH_REUSEPORT_EBPF, struct.pack("=i", prog_fd)
        )
    except OSError as exc:
        for s in sockets:
            s.close()
        for fd in (map_fd, prog_fd):
            if fd >= 0:
                os.close(fd)
        oracle_unavailable(f"cannot load nginx's program here: {exc}")
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    port = sockets[0].getsockname()[1]

    def recipient(payload: bytes) -> int:
        client.sendto(payload, ("127.0.0.1", port))
        ready, _, _ = select.select(sockets, [], [], 2.0)
        assert len(ready) == 1, "exactly one socket receives the datagram"
        assert ready[0].recv(4096) == payload
        return sockets.index(ready[0])

    try:
        default = recipient(b"")  # no flags octet: the kernel's hash decides
        target = (default + 1) % n  # a cookie that, when looked up, is not the default
        rng = random.Random(20)
        seen = {"lookup": 0, "none": 0}
        for payload in payloads(cookies[target].to_bytes(8, "big"), rng):
            key = quiclb.nginx_socket_cookie(payload)
            want = cookies.index(key) if key in cookies else default
            assert recipient(payload) == want, payload.hex()
            seen["lookup" if key in cookies else "none"] += 1
        assert seen["lookup"] > 10 and seen["none"] > 10
    finally:
        for s in [*sockets, client]:
            s.close()
        os.close(map_fd)
        os.close(prog_fd)
