"""A dual-stack IPv6 UDP socket that connects to an IPv6 peer receives IPv4
datagrams sent to 127.0.0.6 -- from any address, as long as their source port
is its peer's port.

D binds [::]:4433 (IPV6_V6ONLY off) and connects to [::1]:9999. Its IPv4
side then shows the address 127.0.0.6 (LOOPBACK4_IPV6), meant to match
nothing. Datagrams to 127.0.0.6:4433 from 127.0.0.1:9999 and 127.0.0.5:9999
reach D; one from 127.0.0.1:9998 reaches nobody.

At fault: net/ipv6/datagram.c sets inet_rcv_saddr = LOOPBACK4_IPV6 when an
unbound IPv6 socket connects, and rehashes it onto ::1's chain. Neither
lookup pass of __udp4_lib_lookup() (127.0.0.6's chain, then the wildcard
chain) has D, but the fallback udp4_lib_lookup1() that a502ea6fa94b added
(v6.14, in 6.1.y and 6.12.y stable) walks every socket of the port:
compute_score() finds D's rcv_saddr equal to 127.0.0.6, its inet_daddr zero
(an IPv6 peer leaves it unset) and its peer port equal to the source port.

Run: sudo python3 ipv6_connected_takes_loopback4.py
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


def enter_netns() -> str | None:
    """Enter a new network namespace and bring lo up; None, or why that failed."""
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        err = os.strerror(ctypes.get_errno())
        return f"unshare(CLONE_NEWNET): {err} (run as root)"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, ifreq))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # IFF_UP
    if not os.path.exists("/proc/sys/net/ipv6"):
        return "this kernel has no IPv6"
    return None


def received(d: socket.socket, src: tuple[str, int]) -> bool:
    """Send one datagram from src to 127.0.0.6:4433; did D receive it?"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.bind(src)
        c.sendto(b"x", ("127.0.0.6", 4433))
    if select.select([d], [], [], 0.5)[0]:
        d.recv(64)
        return True
    return False


def experiment() -> int:
    print(f"Linux {platform.release()}: D binds [::]:4433 (dual-stack)")
    print("and connects to [::1]:9999.")
    d = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    d.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    d.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    d.bind(("::", 4433))
    d.connect(("::1", 9999))
    cases = {
        ("127.0.0.1", 9999): True,
        ("127.0.0.5", 9999): True,
        ("127.0.0.1", 9998): False,
    }
    seen = {src: received(d, src) for src in cases}
    for (addr, port), got in seen.items():
        print(f"  {addr}:{port} -> 127.0.0.6:4433: {'D' if got else 'nobody'}")
    if seen == cases:
        print("reproduced: IPv4 to 127.0.0.6 with the peer's port reaches D")
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
