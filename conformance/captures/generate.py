#!/usr/bin/env python3
# Strategy: the public captures CI can reach (Debian source tarballs, fetch.py) have no NAT
# rebinding, no Retry, no QUIC v2 and no fragmented GTP-U. This script makes them where CI
# runs: real implementations on the live kernel, in a private network namespace each
# (sidkit.bpf.netns.run_isolated: the namespace and everything in it go away with the child),
# recorded by Wireshark's dumpcap on the namespace's loopback. QUIC is aioquic's client and
# server over real UDP sockets (asyncio); the NAT rebinding is the client moving its socket to
# a new port and then a new address mid-connection, which is what a rebinding looks like to
# the server (same connection IDs, new 5-tuple); Retry and v2 are aioquic's own (serve(...,
# retry=True), supported_versions). GTP-U has no implementation that installs and runs here,
# so the G-PDU headers are written by this script -- what is under test is the *kernel's*
# fragmentation of datagrams larger than the loopback MTU (set to 1280), IPv4 and IPv6.
# A second QUIC stack is ngtcp2 (Debian's ngtcp2-server/-client, its own NAT-rebinding
# simulation); DTLS 1.2 connection IDs come from mbedTLS's ssl_server2/ssl_client2, built
# from Debian's pinned source tarball because Debian ships no binary of them; their address
# change is made on the wire by nftables (the test server cannot follow a real one).
# tshark judges every datagram in tests/extract/test_corpus.py; nothing here is an oracle.
"""Generate corpus captures on the live kernel into conformance/captures/_work/gen/.

    .venv/bin/python conformance/captures/generate.py          # make what is missing
    .venv/bin/python conformance/captures/generate.py --force  # make them all again

Needs root (a network namespace), dumpcap (apt-get install tshark), aioquic (the ``test``
extra), ngtcp2's example programs (apt-get install ngtcp2-server ngtcp2-client) and, for
the DTLS trace, nft (apt-get install nftables), make and a C compiler (mbedTLS's test
programs are built from Debian's source tarball, downloaded once). Each capture is
written with a ``.generated`` stamp naming the generator version; the corpus test treats
a capture without its stamp as missing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import fcntl
import functools
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
GEN = HERE / "_work" / "gen"
VERSION = "1"  # bump when a trace changes shape; the stamp makes old files stale

QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF
SERVER = ("127.0.0.2", 443)


# --- capture ----------------------------------------------------------------------------


class Dumpcap:
    """dumpcap on the namespace's loopback, classic pcap, until stopped."""

    def __init__(self, path: Path) -> None:
        exe = shutil.which("dumpcap")
        if exe is None:
            raise SystemExit("generate-captures: dumpcap is missing (apt-get install tshark)")
        # no capture filter: the namespace's loopback carries only this trace, and libpcap
        # drains what arrived before a filter is set, which would lose the first datagrams
        self.proc = subprocess.Popen(
            [exe, "-q", "-P", "-i", "lo", "-w", str(path)],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        # dumpcap says "Capturing on 'Loopback: lo'" once the capture runs
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if "Capturing on" in line:
                break
            if not line and self.proc.poll() is not None:
                raise SystemExit(f"generate-captures: dumpcap exited ({self.proc.returncode})")
        else:
            self.proc.kill()
            raise SystemExit("generate-captures: dumpcap did not start")
        time.sleep(0.5)  # the message comes as the capture opens, not when it receives

    def stop(self) -> None:
        time.sleep(0.3)  # let the last datagrams through the ring
        self.proc.send_signal(signal.SIGINT)
        try:
            _out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise SystemExit("generate-captures: dumpcap did not stop") from None
        found = re.search(r"received/dropped on interface '[^']*': (\d+)/(\d+)", err or "")
        if found is None or int(found.group(2)):
            raise SystemExit(f"generate-captures: dumpcap dropped packets: {err.strip()}")


def _set_mtu(ifname: str, mtu: int) -> None:
    """SIOCSIFMTU on *ifname* (in the caller's namespace)."""
    siocsifmtu = 0x8922
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, siocsifmtu, struct.pack("16si12x", ifname.encode(), mtu))


# --- QUIC with aioquic ------------------------------------------------------------------


def _certificate() -> tuple[Any, Any]:
    from cryptography import x509  # noqa: PLC0415 - aioquic's dependency
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


async def _quic_session(
    *,
    retry: bool,
    client_versions: list[int],
    original: int | None,
    rebind: bool,
    connections: int = 2,
) -> None:
    """An aioquic server on SERVER and *connections* clients, one after the other: each
    sends a few stream messages the server echoes; with *rebind*, each moves to a new port
    and then to a new address mid-connection."""
    from aioquic.asyncio.client import connect  # noqa: PLC0415
    from aioquic.asyncio.protocol import QuicConnectionProtocol  # noqa: PLC0415
    from aioquic.asyncio.server import serve  # noqa: PLC0415
    from aioquic.quic.configuration import QuicConfiguration  # noqa: PLC0415
    from aioquic.quic.events import QuicEvent, StreamDataReceived  # noqa: PLC0415

    class Echo(QuicConnectionProtocol):
        def quic_event_received(self, event: QuicEvent) -> None:
            if isinstance(event, StreamDataReceived) and event.data:
                self._quic.send_stream_data(event.stream_id, event.data, end_stream=False)
                self.transmit()

    class Client(QuicConnectionProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.echoed = asyncio.Event()

        def quic_event_received(self, event: QuicEvent) -> None:
            if isinstance(event, StreamDataReceived) and event.data:
                self.echoed.set()

        async def say(self, stream: int, text: bytes) -> None:
            self.echoed.clear()
            self._quic.send_stream_data(stream, text, end_stream=False)
            self.transmit()
            await asyncio.wait_for(self.echoed.wait(), 5)

    cert, key = _certificate()
    server_conf = QuicConfiguration(is_client=False, alpn_protocols=["sidkit"])
    server_conf.certificate, server_conf.private_key = cert, key
    server_conf.supported_versions = [QUIC_V1, QUIC_V2]
    server = await serve(
        SERVER[0], SERVER[1], configuration=server_conf, create_protocol=Echo, retry=retry
    )
    loop = asyncio.get_running_loop()
    try:
        for _ in range(connections):
            conf = QuicConfiguration(is_client=True, alpn_protocols=["sidkit"])
            conf.verify_mode = ssl.CERT_NONE
            conf.supported_versions = list(client_versions)
            if original is not None:
                conf.original_version = original
            async with connect(
                SERVER[0], SERVER[1], configuration=conf, create_protocol=Client
            ) as proto:
                client = cast(Client, proto)
                stream = client._quic.get_next_available_stream_id()
                await client.say(stream, b"hello over QUIC")
                await client.say(stream, b"and again")
                if rebind:
                    old = client._transport
                    for host in ("::ffff:127.0.0.1", "::ffff:127.0.0.3"):
                        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                        sock.bind((host, 0, 0, 0))
                        # the same protocol object (the same QUIC connection) on a new socket:
                        # connection_made() points its transport there
                        await loop.create_datagram_endpoint(
                            functools.partial(_same, client), sock=sock
                        )
                        await client.say(stream, b"after a NAT rebinding to " + host.encode())
                        await client.say(stream, b"still there")
                    if old is not None:
                        old.close()
                client.close()
                await client.wait_closed()
    finally:
        server.close()


def _same(protocol: Any) -> Any:
    """The protocol factory that returns the existing protocol (see the rebinding)."""
    return protocol


def _quic_trace(path: Path, **kwargs: Any) -> None:
    cap = Dumpcap(path)
    try:
        asyncio.run(_quic_session(**kwargs))
    finally:
        cap.stop()


# --- a second QUIC stack: ngtcp2 (Debian's ngtcp2-server and ngtcp2-client) -------------


def _write_pem(folder: Path) -> tuple[Path, Path]:
    """The throw-away certificate and key as PEM files in *folder* (for C programs)."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    cert, key = _certificate()
    key_pem, cert_pem = folder / "key.pem", folder / "cert.pem"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_pem, cert_pem


def _tool(name: str, package: str) -> str:
    exe = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if exe is None:
        raise SystemExit(f"generate-captures: {name} is missing (apt-get install {package})")
    return exe


def _ngtcp2_trace(path: Path) -> None:
    """ngtcp2's example HTTP/3 server (gtlsserver, GnuTLS) and client: two GETs of a 4 KB
    file; during the first the client rebinds to a new port without path validation
    (``--change-local-addr --nat-rebinding``: what a NAT does), the second stays put."""
    server_exe = _tool("gtlsserver", "ngtcp2-server")
    client_exe = _tool("gtlsclient", "ngtcp2-client")
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp)
        key_pem, cert_pem = _write_pem(docs)
        (docs / "index.html").write_bytes(bytes(i & 0x7F for i in range(4096)))
        host, port = SERVER[0], str(SERVER[1])
        cap = Dumpcap(path)
        server = subprocess.Popen(
            [server_exe, "-q", "-d", tmp, host, port, str(key_pem), str(cert_pem)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            url = "https://localhost/index.html"
            for extra in (
                ["--change-local-addr=200ms", "--nat-rebinding", "--delay-stream=400ms"],
                [],
            ):
                done = subprocess.run(
                    [client_exe, "-q", "--exit-on-all-streams-close", *extra, host, port, url],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    timeout=20,
                    check=False,
                )
                if done.returncode:
                    raise SystemExit(f"generate-captures: gtlsclient failed: {done.stderr!r}")
        finally:
            server.terminate()
            server.wait(timeout=10)
            cap.stop()


# --- DTLS 1.2 with connection IDs: mbedTLS's ssl_server2 and ssl_client2 -----------------

# Debian's mbedTLS source (trixie, 3.6: RFC 9146 CIDs, extension 54), pinned like fetch.py
# pins its tarballs. Debian ships no binary of the test programs, so they are built here
# (make, a few minutes once; cached under _work/mbedtls).
MBEDTLS = {
    "url": "http://deb.debian.org/debian/pool/main/m/mbedtls/mbedtls_3.6.6.orig.tar.bz2",
    "sha256": "8fb65fae8dcae5840f793c0a334860a411f884cc537ea290ce1c52bb64ca007a",
    "top": "mbedtls-3.6.6",
}
DTLS_SERVER = ("127.0.0.2", 4433)
# (client CID, server CID) per session, hex: per-direction lengths 17/4 and 0/8 (a
# zero-length CID means that endpoint receives records without one, RFC 9146 section 3)
DTLS_SESSIONS = (
    ("0102030405060708090a0b0c0d0e0f1011", "c0ffee01"),
    ("", "5eed5eed5eed5eed"),
)


def _mbedtls_programs() -> tuple[str, str]:
    """ssl_server2 and ssl_client2, built from the pinned tarball if not already."""
    import hashlib  # noqa: PLC0415
    import tarfile  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    work = HERE / "_work" / "mbedtls"
    tree = work / MBEDTLS["top"]
    programs = tree / "programs" / "ssl"
    server, client = programs / "ssl_server2", programs / "ssl_client2"
    if server.is_file() and client.is_file():
        return str(server), str(client)
    tarball = HERE / "_work" / "sources" / Path(MBEDTLS["url"]).name
    tarball.parent.mkdir(parents=True, exist_ok=True)
    if not tarball.is_file():
        print(f"generate-captures: downloading {MBEDTLS['url']}", file=sys.stderr)
        try:
            with urllib.request.urlopen(MBEDTLS["url"], timeout=300) as resp:
                data = resp.read()
        except OSError as exc:
            raise SystemExit(
                f"generate-captures: cannot download {MBEDTLS['url']}: {exc} (if Debian "
                "replaced this version, pin the new tarball in generate.py)"
            ) from None
        tarball.write_bytes(data)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != MBEDTLS["sha256"]:
        tarball.unlink()
        raise SystemExit(f"generate-captures: {tarball.name}: sha256 {digest}, not the pinned one")
    work.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(work, filter="data")
    print("generate-captures: building mbedTLS's ssl_server2/ssl_client2", file=sys.stderr)
    for args in (
        ["-C", "library", "libmbedtls.a", "libmbedx509.a", "libmbedcrypto.a"],
        ["-C", "programs", "ssl/ssl_server2", "ssl/ssl_client2"],
    ):
        done = subprocess.run(
            ["make", "-j2", *args], cwd=tree, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise SystemExit(f"generate-captures: mbedTLS build failed: {done.stderr[-2000:]}")
    return str(server), str(client)


# The address change. mbedTLS's test server connects its socket to the client's address,
# so it cannot follow a real rebinding; instead the change is made on the wire and undone
# before delivery: after the 8th datagram of a session (conntrack's packet count, both
# directions) the client's 127.0.0.1 becomes 127.0.0.3 on loopback -- rewritten after
# the output path (postrouting, where dumpcap sees it) and back before the input path
# (prerouting, before conntrack). Neither endpoint notices; the capture shows what a
# capture beyond a NAT shows when the NAT rebinds: the same CIDs from a new address.
DTLS_REBIND = """
table ip sidkit_rebind {
  chain post {
    type filter hook postrouting priority 300; policy accept;
    ip saddr 127.0.0.1 udp dport 4433 ct packets > 8 ip saddr set 127.0.0.3
    ip daddr 127.0.0.1 udp sport 4433 ct packets > 8 ip daddr set 127.0.0.3
  }
  chain pre {
    type filter hook prerouting priority -400; policy accept;
    ip saddr 127.0.0.3 udp dport 4433 ip saddr set 127.0.0.1
    ip daddr 127.0.0.3 udp sport 4433 ip daddr set 127.0.0.1
  }
}
"""


def _rebind_on_the_wire() -> None:
    """Load DTLS_REBIND with nft and turn on conntrack's packet counts (per namespace)."""
    done = subprocess.run(
        [_tool("nft", "nftables"), "-f", "-"],
        input=DTLS_REBIND,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"generate-captures: nft refused the rebinding rules: {done.stderr}")
    Path("/proc/sys/net/netfilter/nf_conntrack_acct").write_text("1\n")


def _dtls_trace(path: Path, server_exe: str, client_exe: str) -> None:
    """One DTLS 1.2 session per DTLS_SESSIONS entry, each with its own CIDs: handshake
    (HelloVerifyRequest cookie, ECDHE), then four request/response exchanges in tls12_cid
    records, then close_notify; each changes the client's address after its 8th datagram
    (DTLS_REBIND)."""
    host, port = DTLS_SERVER[0], str(DTLS_SERVER[1])
    _rebind_on_the_wire()
    cap = Dumpcap(path)
    try:
        for client_cid, server_cid in DTLS_SESSIONS:
            server = subprocess.Popen(
                [
                    server_exe,
                    "dtls=1",
                    "cid=1",
                    f"cid_val={server_cid}",
                    f"server_addr={host}",
                    f"server_port={port}",
                    "debug_level=0",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(0.5)
                done = subprocess.run(
                    [
                        client_exe,
                        "dtls=1",
                        "cid=1",
                        f"cid_val={client_cid}",
                        f"server_addr={host}",
                        f"server_port={port}",
                        "server_name=localhost",
                        "auth_mode=none",
                        "exchanges=4",
                        "force_version=dtls12",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
                if done.returncode:
                    raise SystemExit(f"generate-captures: ssl_client2 failed: {done.stdout[-800:]}")
            finally:
                server.terminate()
                server.wait(timeout=10)
    finally:
        cap.stop()


def _dtls_cid(path: Path) -> None:
    _dtls_trace(path, *_PROGRAMS["mbedtls"])


_PROGRAMS: dict[str, tuple[str, str]] = {}


# --- GTP-U fragmented by the kernel -----------------------------------------------------


def _inner_ipv4(size: int, seq: int) -> bytes:
    """An inner IPv4/UDP packet (a user's datagram in the tunnel) of *size* bytes."""
    body = bytes((seq + i) & 0xFF for i in range(size - 28))
    udp = struct.pack("!HHHH", 40000 + seq, 53, 8 + len(body), 0) + body
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        seq,
        0,
        64,
        17,
        0,
        bytes([10, 45, 0, 2]),
        bytes([8, 8, 4, 4]),
    )
    return ip + udp


def _gpdu(teid: int, inner: bytes, seq: int | None) -> bytes:
    """3GPP TS 29.281 section 5.1: a G-PDU (message type 255), version 1, PT 1, with the
    optional sequence number (S flag) when *seq* is given."""
    if seq is None:
        return struct.pack("!BBHI", 0x30, 0xFF, len(inner), teid) + inner
    extra = struct.pack("!HBB", seq, 0, 0)
    return struct.pack("!BBHI", 0x32, 0xFF, len(inner) + 4, teid) + extra + inner


def _gtpu_trace(path: Path) -> None:
    _set_mtu("lo", 1280)  # both families fragment what is larger (IPv6's minimum MTU)
    cap = Dumpcap(path)
    try:
        pairs = [
            (socket.AF_INET, ("127.0.0.1", 2152), ("127.0.0.2", 2152), 0x1A2B3C4D, 0x0000BEEF),
            (socket.AF_INET6, ("::1", 2152), ("::1", 2153), 0x7E000001, 0x7E000002),
        ]
        socks = []
        for family, a, b, up, down in pairs:
            sa = socket.socket(family, socket.SOCK_DGRAM)
            sb = socket.socket(family, socket.SOCK_DGRAM)
            sa.bind(a)
            sb.bind(b)
            socks += [sa, sb]
            for i, size in enumerate((64, 600, 1300, 2000, 2900, 4000, 9000, 1252, 1253)):
                seq = i if i % 2 else None
                sa.sendto(_gpdu(up, _inner_ipv4(max(size, 28), i), seq), b)
                sb.sendto(_gpdu(down, _inner_ipv4(max(size // 2, 28), i), seq), a)
                time.sleep(0.002)
        for s in socks:
            s.close()
    finally:
        cap.stop()


def _v2_trace(path: Path) -> None:
    cap = Dumpcap(path)
    try:
        asyncio.run(
            _quic_session(
                retry=False,
                client_versions=[QUIC_V2],
                original=None,
                rebind=False,
                connections=1,
            )
        )
        asyncio.run(
            _quic_session(
                retry=False,
                client_versions=[QUIC_V2, QUIC_V1],
                original=QUIC_V1,
                rebind=False,
                connections=1,
            )
        )
    finally:
        cap.stop()


# --- driver -----------------------------------------------------------------------------

TRACES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "gen/quic-nat-rebinding.pcap": (
        "aioquic client and server, QUIC v1: two connections, each moving to a new client "
        "port and then a new client address mid-connection (NAT rebinding: same CIDs)",
        lambda p: _quic_trace(
            p, retry=False, client_versions=[QUIC_V1], original=None, rebind=True
        ),
    ),
    "gen/quic-retry.pcap": (
        "aioquic server with Retry (serve(retry=True)): two v1 connections, each Initial "
        "answered by a Retry, the client's second Initial carrying the token",
        lambda p: _quic_trace(
            p, retry=True, client_versions=[QUIC_V1], original=None, rebind=False
        ),
    ),
    "gen/quic-v2.pcap": (
        "aioquic QUIC v2 (RFC 9369): one connection in v2 from the first Initial, one that "
        "starts in v1 and is upgraded to v2 by compatible version negotiation (RFC 9368)",
        _v2_trace,
    ),
    "gen/quic-ngtcp2.pcap": (
        "ngtcp2 0.12 HTTP/3 server and client (Debian's ngtcp2-server, ngtcp2-client): two "
        "GETs, the first rebinding to a new client port mid-connection (same CIDs)",
        _ngtcp2_trace,
    ),
    "gen/dtls12-cid.pcap": (
        "mbedTLS 3.6 ssl_server2/ssl_client2, DTLS 1.2 with connection IDs (RFC 9146): two "
        "sessions, CIDs of 17 (client) and 4 (server) bytes, then 0 and 8",
        _dtls_cid,
    ),
    "gen/gtpu-fragments.pcap": (
        "GTP-U G-PDUs (IPv4 and IPv6, with and without sequence numbers) of 64 to 9000 "
        "bytes over a 1280-byte-MTU loopback: the kernel fragments the large ones",
        _gtpu_trace,
    ),
}


def _datagrams(path: Path) -> list[tuple[int, int, bytes, bytes]]:
    """(source port, destination port, payload, source address) of every UDP datagram that
    starts in *path* (first fragments included, cut where the fragment ends)."""
    import dpkt  # noqa: PLC0415 - a sidkit test dependency

    out = []
    with path.open("rb") as fh:
        for _ts, frame in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(frame).data
            if isinstance(ip, dpkt.ip6.IP6):
                frag = ip.extension_hdrs.get(dpkt.ip.IP_PROTO_FRAGMENT)
                if frag is not None and frag.frag_off:
                    continue
            elif not isinstance(ip, dpkt.ip.IP) or ip.offset:
                continue
            udp = ip.data
            if isinstance(udp, dpkt.udp.UDP):
                out.append((udp.sport, udp.dport, bytes(udp.data), bytes(ip.src)))
    return out


def _check(name: str, path: Path) -> None:
    """Refuse a trace that lost what it was made for (a capture that started late)."""
    got = _datagrams(path)
    if name.startswith("gen/gtpu"):
        gpdus = sum(1 for _s, d, p, _a in got if d in (2152, 2153) and p[:1] in (b"\x30", b"\x32"))
        if gpdus != 36:
            raise SystemExit(f"generate-captures: {name}: {gpdus} G-PDUs captured, 36 sent")
    elif name.startswith("gen/dtls"):
        if not got or got[0][1] != DTLS_SERVER[1] or got[0][2][:1] != b"\x16":
            raise SystemExit(f"generate-captures: {name}: the first datagram is no ClientHello")
        # RFC 9146 tls12_cid records (content type 25) from both endpoints of the first
        # session and from the client of the second (the second's client CID is empty)
        senders = {(s, d) for s, d, p, _a in got if p[:1] == b"\x19"}
        if len(senders) < 3:
            raise SystemExit(f"generate-captures: {name}: CID records from {len(senders)} ends")
        moved = {s for s, d, p, a in got if p[:1] == b"\x19" and a == bytes([127, 0, 0, 3])}
        if len(moved) != len(DTLS_SESSIONS):
            raise SystemExit(f"generate-captures: {name}: {len(moved)} sessions moved")
    elif name == "gen/quic-ngtcp2.pcap":
        # two connections, the first rebinding: three client ports
        ports = {s for s, d, _p, _a in got if d == SERVER[1]}
        if len(ports) != 3:
            raise SystemExit(f"generate-captures: {name}: {len(ports)} client ports, not 3")
    elif not got or got[0][1] != SERVER[1] or not got[0][2][:1] or not got[0][2][0] & 0x80:
        raise SystemExit(f"generate-captures: {name}: the first datagram is no client Initial")


def _make(name: str) -> int:
    """In a fresh network namespace: write the trace to a temporary name, then move it
    into place with its stamp. Returns its size."""
    from sidkit.bpf.netns import run_isolated  # noqa: PLC0415

    path = GEN / Path(name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        part = Path(tmp) / path.name
        os.chmod(tmp, 0o777)  # dumpcap may drop privileges to write
        run_isolated(TRACES[name][1], part)
        if not part.is_file() or part.stat().st_size <= 24:
            raise SystemExit(f"generate-captures: {name}: nothing captured")
        _check(name, part)
        part.replace(path)
    stamp(path).write_text(f"generate.py {VERSION}\n")
    return path.stat().st_size


def stamp(path: Path) -> Path:
    """The file that says *path* was made by this version of the generator."""
    return path.with_name(path.name + ".generated")


def is_current(name: str) -> bool:
    """Whether the capture *name* exists and was made by this version."""
    path = GEN / Path(name).name
    s = stamp(path)
    return path.is_file() and s.is_file() and s.read_text().split() == ["generate.py", VERSION]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="make every trace again")
    parser.add_argument("names", nargs="*", help="traces to make (default: all)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("generate-captures: needs root (a private network namespace)", file=sys.stderr)
        return 1
    for name in args.names or TRACES:
        if name not in TRACES:
            print(f"generate-captures: unknown trace {name}", file=sys.stderr)
            return 1
        if is_current(name) and not args.force:
            continue
        if name.startswith("gen/dtls") and "mbedtls" not in _PROGRAMS:
            _PROGRAMS["mbedtls"] = _mbedtls_programs()
        size = _make(name)
        print(f"generate-captures: {name}: {size} bytes", file=sys.stderr)
    print(f"generate-captures: {len(TRACES)} traces ready in {GEN}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
