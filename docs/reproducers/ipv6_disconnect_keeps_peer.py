"""An IPv6 UDP socket that disconnects (connect() with an AF_UNSPEC address)
keeps its old peer's address. It still scores higher for datagrams from that
address, refuses datagrams from every other address, and keeps taking the
receiving CPU as its SO_INCOMING_CPU. An IPv4 socket forgets its peer.

A and B bind [::1]:4433 (v6-only) with SO_REUSEPORT, B after A; B connects
to [::1]:9999 and disconnects. B receives every datagram from ::1 although A
comes first in the chain, and none from fd00::5 (added to lo here). B's
SO_INCOMING_CPU follows the CPU it receives on; an IPv4 socket's does not.

At fault, net/ipv4/udp.c: __udp_disconnect() clears inet_daddr and
inet_dport but not sk_v6_daddr. net/ipv6/udp.c reads sk_v6_daddr: in
compute_score() (+1 when it is the source, -1 for any other source) and in
__udpv6_queue_rcv_skb() (sk_incoming_cpu_update() when it is set). B has
been out of its group since its connect() (udp_lib_hash4(), Linux 6.13+).

Run: sudo python3 ipv6_disconnect_keeps_peer.py
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
OTHER = "fd00::5"  # a second local IPv6 address
SO_INCOMING_CPU = 49


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


def add_address(addr: str) -> None:
    """ip -6 addr add ADDR/128 dev lo nodad, as one rtnetlink request."""
    raw = socket.inet_pton(socket.AF_INET6, addr)
    index = socket.if_nametoindex("lo")
    ifa = struct.pack("BBBBI", socket.AF_INET6, 128, 0x02, 0, index)  # IFA_F_NODAD
    body = ifa + struct.pack("HH", 4 + len(raw), 1) + raw  # IFA_ADDRESS
    flags = 0x1 | 0x4 | 0x200 | 0x400  # REQUEST | ACK | EXCL | CREATE
    head = struct.pack("IHHII", 16 + len(body), 20, flags, 1, 0)  # RTM_NEWADDR
    route = socket.NETLINK_ROUTE
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, route) as nl:
        nl.send(head + body)
        error = struct.unpack_from("i", nl.recv(4096), 16)[0]  # the ack's nlmsgerr
    if error:
        raise OSError(-error, f"RTM_NEWADDR {addr}: {os.strerror(-error)}")


def member(addr: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    return s


def disconnect(s: socket.socket) -> None:
    unspec = struct.pack("H14x", socket.AF_UNSPEC)  # a sockaddr, family AF_UNSPEC
    if libc.connect(s.fileno(), unspec, len(unspec)) != 0:
        raise OSError(ctypes.get_errno(), "connect(AF_UNSPEC)")


def remote_address(s: socket.socket) -> str:
    """The remote address /proc/net/udp6 shows for s (found by its inode)."""
    inode = str(os.fstat(s.fileno()).st_ino)
    with open("/proc/net/udp6", encoding="ascii") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[9] == inode:
                words = fields[2].split(":")[0]  # four u32s in host byte order
                raw = b"".join(
                    int(words[i : i + 8], 16).to_bytes(4, sys.byteorder)
                    for i in range(0, 32, 8)
                )
                return socket.inet_ntop(socket.AF_INET6, raw)
    raise RuntimeError(f"socket inode {inode} is not in /proc/net/udp6")


def counts(socks: list[socket.socket], src: str, dst: tuple[str, int]) -> list[int]:
    """100 sources at address src send one datagram each; the count per socket."""
    got = [0] * len(socks)
    for sport in range(20000, 20100):
        family = socks[0].family
        with socket.socket(family, socket.SOCK_DGRAM) as c:
            c.bind((src, sport))
            c.sendto(b"x", dst)
        for s in select.select(socks, [], [], 1.0)[0]:
            s.recv(64)
            got[socks.index(s)] += 1
    return got


def incoming_cpu(s: socket.socket) -> int:
    return s.getsockopt(socket.SOL_SOCKET, SO_INCOMING_CPU)


def disconnected_pair(addr: str, port: int) -> list[socket.socket]:
    """A and B bind; B connects to port 9999 of addr and disconnects."""
    a, b = member(addr, port), member(addr, port)
    b.connect((addr, 9999))
    disconnect(b)
    b.setsockopt(socket.SOL_SOCKET, SO_INCOMING_CPU, -1)
    return [a, b]


def experiment() -> int:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # loopback delivers on the sending CPU
    print(f"Linux {platform.release()}: A and B bind [::1]:4433 with")
    print("SO_REUSEPORT (v6-only); B connects to [::1]:9999 and disconnects.")
    a, b = disconnected_pair("::1", 4433)
    peer = remote_address(b)
    print(f"  /proc/net/udp6 shows B's remote address as {peer}")
    own = counts([a, b], "::1", ("::1", 4433))
    print(f"  100 sources at ::1 send:      A B = {own}")
    cpu6 = incoming_cpu(b)
    add_address(OTHER)
    other = counts([a, b], OTHER, ("::1", 4433))
    print(f"  100 sources at {OTHER} send:  A B = {other}")
    print(f"  SO_INCOMING_CPU of B: -1, then {cpu6} after receiving on CPU {cpu}")
    a4, b4 = disconnected_pair("127.0.0.1", 4434)
    got4 = counts([a4, b4], "127.0.0.1", ("127.0.0.1", 4434))
    cpu4 = incoming_cpu(b4)
    print(f"  IPv4, the same at 127.0.0.1: A B = {got4}; B's CPU stays {cpu4}")
    kept = peer == "::1" and own == [0, 100] and other == [100, 0]
    if kept and cpu6 == cpu and got4[1] > 0 and cpu4 == -1:
        print("reproduced: the disconnected IPv6 socket kept its peer's address")
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
