"""A member of a SO_REUSEPORT group bound to 0.0.0.0 that calls connect()
leaves the group, on every kernel since the v4.5 group code (a member bound
to a specific address stays in its group until 6.13).

A, B, C, D bind 0.0.0.0:4433 and B connects: B receives no datagram from other
sources, and the group selects exactly as a fresh group of three bound in the
order A, D, C -- the last member took B's slot (swap-remove).

At fault: __ip4_datagram_connect() (net/ipv4/datagram.c) gives the wildcard
socket a local address and calls udp_v4_rehash() -> udp_lib_rehash()
(net/ipv4/udp.c), which calls reuseport_detach_sock() for a group member.

Run: sudo python3 wildcard_connect_leaves_group.py
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
Addr = tuple[str, int]
SOURCES = [("127.0.0.2", 20000 + i) for i in range(100)]


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


def receiver(socks: list[socket.socket], src: Addr, dst: Addr) -> int:
    """Send one datagram from src to dst; the index of the socket that got it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.bind(src)
        c.sendto(b"x", dst)
    ready = select.select(socks, [], [], 1.0)[0]
    if len(ready) != 1:
        raise RuntimeError(f"{len(ready)} sockets received the datagram from {src}")
    ready[0].recv(64)
    return socks.index(ready[0])


def experiment() -> int:
    port, n = 4433, len(SOURCES)
    dst = ("127.0.0.1", port)
    a, b, c, d = socks = [member("0.0.0.0", port) for _ in range(4)]
    before = [receiver(socks, src, dst) for src in SOURCES]
    b.connect(("127.0.0.9", 9999))
    after = [receiver(socks, src, dst) for src in SOURCES]
    for s in socks:
        s.close()
    fresh_group = [member("0.0.0.0", port) for _ in range(3)]  # same hashes
    fresh = [receiver(fresh_group, src, dst) for src in SOURCES]
    order = [a, d, c]  # swap-remove: the last member, D, moved into B's slot
    same = sum(order[f] is socks[x] for f, x in zip(fresh, after, strict=True))
    print(f"Linux {platform.release()}: A, B, C, D bind 0.0.0.0:{port} with")
    print(f"SO_REUSEPORT; {n} sources send before and after B connects.")
    tally = [[got.count(i) for i in range(4)] for got in (before, after, fresh)]
    print(f"  before:                A B C D = {tally[0]}")
    print(f"  after B connects:      A B C D = {tally[1]}")
    print(f"  3 fresh members:   1st 2nd 3rd = {tally[2][:3]}")
    print(f"  {same} of {n} sources: the fresh choice, read as [A, D, C]")
    if after.count(1) == 0 and same == n:
        print("reproduced: B left the group, which selects as a group of three")
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
