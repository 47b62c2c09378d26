"""A SO_REUSEPORT member that connects to a peer leaves its group. If it was
the newest member, the next socket bound to the port pairs with it in a new
group, and that group is the one the lookup finds first.

A, B, C bind 127.0.0.1 in that order and C connects: C receives only its
peer's datagrams, A and B share the rest. Then D binds: D receives every
datagram from every source but the peer, and A and B receive nothing.

At fault, net/ipv4/udp.c, Linux 6.13+: udp_lib_hash4() detaches C from the
group (reuseport_detach_sock); udp_reuseport_add_sock() joins D to the first
SO_REUSEPORT socket of the port's chain -- C, the newest -- and
reuseport_add_sock() (net/core/sock_reuseport.c) makes C a group again; its
selection, reuseport_select_sock_by_hash(), skips the connected C.

Run: sudo python3 connect_regroups.py
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


def experiment() -> int:
    n, port = len(SOURCES), 4433
    print(f"Linux {platform.release()}: A, B, C bind 127.0.0.1:{port} with")
    print(f"SO_REUSEPORT; C connects to {PEER[0]}:{PEER[1]}; {n} sources send.")
    a, b, c = (member("127.0.0.1", port) for _ in range(3))
    c.connect(PEER)
    three = counts([a, b, c], port)
    print(f"  A B C = {three}")
    print("D binds with SO_REUSEPORT; the sources send again, then the peer.")
    d = member("127.0.0.1", port)
    four = counts([a, b, c, d], port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as p:
        p.bind(PEER)
        p.sendto(b"peer", ("127.0.0.1", port))
    ready = select.select([a, b, c, d], [], [], 1.0)[0]
    to_peer = "ABCD"[[a, b, c, d].index(ready[0])] if ready else "nobody"
    print(f"  A B C D = {four}; the peer's datagram reached {to_peer}")
    if three[2] == 0 and four == [0, 0, 0, n] and to_peer == "C":
        print("reproduced: D and the connected C formed a group; A and B starve")
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
