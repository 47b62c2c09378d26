"""A SO_REUSEPORT member that connects and then disconnects (connect() with an
AF_UNSPEC address) belongs to no group any more, and the UDP lookup takes it
whenever it is the first socket of its address chain -- newest first.

A, B, C bind in that order. Bound to 127.0.0.1, the newest one to disconnect
takes every datagram, and a socket D bound next pairs with it while A and B
starve; the oldest one to disconnect is stranded. Bound to 0.0.0.0, even the
oldest takes every datagram (the disconnect puts it at the head of the
wildcard chain), until D binds.

At fault, net/ipv4/udp.c, Linux 6.13+: udp_lib_hash4() detaches a member that
connects (reuseport_detach_sock), __udp_disconnect() never re-attaches it, and
udp4_lib_lookup2() returns it when it comes first in the chain.

Run: sudo python3 disconnect_steals_port.py
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


def counts(socks: list[socket.socket], port: int) -> list[int]:
    """Each source sends one datagram to 127.0.0.1:port; the count per socket."""
    got = [0] * len(socks)
    for src in SOURCES:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.bind(src)
            c.sendto(b"x", ("127.0.0.1", port))
        for s in select.select(socks, [], [], 1.0)[0]:
            s.recv(64)
            got[socks.index(s)] += 1
    return got


def case(label: str, addr: str, port: int, leaver: int) -> tuple[list[int], ...]:
    """A, B, C bind; one connects and disconnects; count; D binds; count."""
    socks = [member(addr, port) for _ in range(3)]
    socks[leaver].connect(("127.0.0.9", 9999))
    unspec = struct.pack("H14x", socket.AF_UNSPEC)  # a sockaddr, family AF_UNSPEC
    if libc.connect(socks[leaver].fileno(), unspec, len(unspec)) != 0:
        raise OSError(ctypes.get_errno(), "connect(AF_UNSPEC)")
    three = counts(socks, port)
    four = counts([*socks, member(addr, port)], port)
    print(f"  {label + ':':<29} A B C = {three}  A B C D = {four}")
    return three, four


def experiment() -> int:
    n = len(SOURCES)
    print(f"Linux {platform.release()}: A, B, C bind with SO_REUSEPORT and one")
    print(f"of them connects, then disconnects; {n} sources send one datagram")
    print(f"each. Then D binds with SO_REUSEPORT and the {n} sources send again.")
    new, new_d = case("127.0.0.1, C (newest) leaves", "127.0.0.1", 4433, 2)
    old, old_d = case("127.0.0.1, A (oldest) leaves", "127.0.0.1", 4434, 0)
    wild, wild_d = case("0.0.0.0, A (oldest) leaves", "0.0.0.0", 4435, 0)
    took = new[2] == wild[0] == n and new_d[:2] == [0, 0]
    stranded = old[0] == old_d[0] == wild_d[0] == 0
    if took and stranded:
        print("reproduced: the member that disconnected took the port or starved")
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
