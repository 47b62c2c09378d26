"""A connected UDP socket that connect()s to a new peer keeps its 4-tuple hash
entry at the first peer. The new peer's datagrams are not found by the 4-tuple
lookup, and a group that a newer socket formed with it (see
connect_regroups.py) takes them.

A binds, connects to one peer and then to another; B binds A's address and
port and pairs with A. The new peer's datagrams reach B, not A -- also when A
disconnects (connect() with an AF_UNSPEC address) before its second connect,
if A is bound to 127.0.0.1. Bound to 0.0.0.0, A is rehashed by a connect that
follows a disconnect, its entry moves to the new peer, and it is found again.

At fault, net/ipv4/udp.c, Linux 6.13+: udp_lib_hash4() returns at once for a
socket hashed before (644f9108f3a5); the entry moves only in udp_lib_rehash(),
which connect() calls only for a socket without a local address. B's group was
formed after A's connects, so it is not marked as having connections and
udp4_lib_lookup2() returns its hash pick -- B, the hash skips the connected A.

Run: sudo python3 reconnect_misses_4tuple_hash.py
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
FIRST, NEW = ("127.0.0.9", 9999), ("127.0.0.8", 8888)


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


def disconnect(s: socket.socket) -> None:
    unspec = struct.pack("H14x", socket.AF_UNSPEC)  # a sockaddr, family AF_UNSPEC
    if libc.connect(s.fileno(), unspec, len(unspec)) != 0:
        raise OSError(ctypes.get_errno(), "connect(AF_UNSPEC)")


def counts(socks: list[socket.socket], port: int, n: int = 10) -> list[int]:
    """The new peer sends n datagrams to 127.0.0.1:port; the count per socket."""
    got = [0] * len(socks)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.bind(NEW)
        for _ in range(n):
            c.sendto(b"x", ("127.0.0.1", port))
            for s in select.select(socks, [], [], 1.0)[0]:
                s.recv(64)
                got[socks.index(s)] += 1
    return got


def case(addr: str, port: int, disconnects: bool) -> list[int]:
    """A binds addr, connects to FIRST, (disconnects,) connects to NEW; B binds."""
    a = member(addr, port)
    a.connect(FIRST)
    if disconnects:
        disconnect(a)
    a.connect(NEW)
    b = member("127.0.0.1", port)  # A's address now: B pairs with A
    got = counts([a, b], port)
    steps = "connect, disconnect, connect" if disconnects else "connect, connect"
    print(f"  A on {addr + ',':<10} {steps + ':':<30} A B = {got}")
    return got


def experiment() -> int:
    print(f"Linux {platform.release()}: A binds (a new port each line),")
    print(f"connects to {FIRST[0]}:{FIRST[1]}, then to {NEW[0]}:{NEW[1]}; B binds")
    print("127.0.0.1 and the port with SO_REUSEPORT; the new peer sends 10.")
    got = [
        case("127.0.0.1", 4433, False),
        case("127.0.0.1", 4434, True),
        case("0.0.0.0", 4435, False),
        case("0.0.0.0", 4436, True),
    ]
    if got == [[0, 10], [0, 10], [0, 10], [10, 0]]:
        print("reproduced: only a rehashed socket's 4-tuple entry follows its peer")
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
