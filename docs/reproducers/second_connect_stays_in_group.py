"""A SO_REUSEPORT member leaves its group at its first connect() only. Once a
newer socket has paired with it in a new group (see connect_regroups.py), a
second connect() leaves it there as a connected member, and a classic BPF
program on that group hands it datagrams from every source, not its peer's.

X and A bind 127.0.0.1 in that order; A connects (and leaves X's group); B
binds and pairs with A; A connects again; a classic BPF program that returns
index 0 is attached through B. A, connected to its peer, receives every
datagram from 100 other sources. Before 6.13 A never left X's group and
index 0 is X.

At fault, net/ipv4/udp.c, Linux 6.13+: udp_lib_hash4() detaches a socket
from its group when it enters the 4-tuple hash, and returns before that for a
socket hashed before. The program's pick is not checked
against the connected A: udp4_lib_lookup2() re-scores it, but keeps it when
it scores worse.

Run: sudo python3 second_connect_stays_in_group.py
Exit status: 0 reproduced, 1 not reproduced, 77 cannot run.
"""

import ctypes
import fcntl
import os
import platform
import select
import socket
import struct
import sys
import traceback

libc = ctypes.CDLL(None, use_errno=True)
SOURCES = [("127.0.0.2", 20000 + i) for i in range(100)]
PEER = ("127.0.0.9", 9999)
SO_ATTACH_REUSEPORT_CBPF = 51


def enter_netns() -> str | None:
    """Enter a new network namespace and bring lo up; None, or why that failed."""
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        err = os.strerror(ctypes.get_errno())
        return f"unshare(CLONE_NEWNET): {err} (run as root)"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, ifreq))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # IFF_UP
    return None


def member(addr: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((addr, port))
    return s


def return_index(s: socket.socket, index: int) -> None:
    """Attach the classic BPF program 'ret #index' to the group of s."""
    insn = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, index))
    fprog = struct.pack("HP", 1, ctypes.addressof(insn))  # struct sock_fprog
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def receiver(socks: list[socket.socket], src: tuple[str, int], port: int) -> int:
    """Send one datagram from src to 127.0.0.1:port; the index of its receiver."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.bind(src)
        c.sendto(b"x", ("127.0.0.1", port))
    ready = select.select(socks, [], [], 1.0)[0]
    if len(ready) != 1:
        raise RuntimeError(f"{len(ready)} sockets received the datagram from {src}")
    ready[0].recv(64)
    return socks.index(ready[0])


def experiment() -> int:
    n, port = len(SOURCES), 4433
    print(f"Linux {platform.release()}: X and A bind 127.0.0.1:{port} with")
    print(f"SO_REUSEPORT; A connects to {PEER[0]}:{PEER[1]}, B binds, A connects")
    print("again; a classic BPF program returning index 0 is attached through B.")
    x, a = member("127.0.0.1", port), member("127.0.0.1", port)
    a.connect(PEER)  # the first connect: A leaves X's group
    b = member("127.0.0.1", port)  # pairs with A, the newest socket of the port
    a.connect(PEER)  # the second connect: A stays in the group B formed with it
    return_index(b, 0)
    socks = [x, a, b]
    got = [receiver(socks, src, port) for src in SOURCES]
    tally = [got.count(i) for i in range(3)]
    to_peer = "XAB"[receiver(socks, PEER, port)]
    print(f"  {n} sources send:  X A B = {tally}")
    print(f"  the peer sends:    reached {to_peer}")
    if tally == [0, n, 0] and to_peer == "A":
        print(f"reproduced: A stayed in B's group, connected, and got all {n}")
        return 0
    print("not reproduced")
    return 1


def main() -> int:
    """Run experiment() in a forked child, inside its own network namespace."""
    if pid := os.fork():
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    code = 2  # an unexpected error
    try:
        if why := enter_netns():
            print(f"cannot run: {why}")
        code = 77 if why else experiment()
    except BaseException:
        traceback.print_exc()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
