"""A SO_REUSEPORT group bound to 0.0.0.0 does not hash the destination address:
the kernel computes the flow hash with daddr = INADDR_ANY.

Four members bind 0.0.0.0:4433. Each of 100 sources sends one datagram to
127.0.0.1:4433 and one to 127.0.0.2:4433 (both local: all of 127/8 is). Every
source reaches the same member through both addresses; if the destination
were hashed, about three sources in four would reach another member.

At fault, net/ipv4/udp.c: __udp4_lib_lookup() finds a wildcard group in its
second pass, udp4_lib_lookup2(..., htonl(INADDR_ANY), ...), and that daddr is
what inet_lookup_reuseport() (net/ipv4/inet_hashtables.c) hashes.

Run: sudo python3 wildcard_hash_ignores_daddr.py
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
SOURCES = [("127.0.0.5", 30000 + i) for i in range(100)]


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
    socks = [member("0.0.0.0", port) for _ in range(4)]
    via1 = [receiver(socks, src, ("127.0.0.1", port)) for src in SOURCES]
    via2 = [receiver(socks, src, ("127.0.0.2", port)) for src in SOURCES]
    same = sum(x == y for x, y in zip(via1, via2, strict=True))
    print(f"Linux {platform.release()}: 4 members bind 0.0.0.0:{port} with")
    print(f"SO_REUSEPORT; {n} sources send to two local addresses.")
    for dst, via in (("127.0.0.1", via1), ("127.0.0.2", via2)):
        print(f"  via {dst}, per member: {[via.count(m) for m in range(4)]}")
    print(f"  {same} of {n} sources reached the same member through both")
    if same == n:
        print("reproduced: the destination address is not hashed")
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
