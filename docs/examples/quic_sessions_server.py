"""An asyncio QUIC server (aioquic) whose connections survive a restart: sidkit's session table.

Run as root on Linux: ``python docs/examples/quic_sessions_server.py``. It builds a private
network namespace, starts "generation 0" of the server (4 sockets in a reuseport group, the
session table attached), connects a client, restarts the server ("generation 1": 4 new
sockets, made working), and shows that the old connection is still served by its old socket
while a new connection goes to the new generation.

What a real server adds to aioquic is small: every connection ID the server issues is
*pinned* in the table to the socket of the QuicServer that owns the connection (aioquic
reports them: the first with the connection, later ones as ConnectionIdIssued events; both
are handled before the server's next datagram leaves), and retired IDs are unpinned.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import QuicEvent, StreamDataReceived
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sidkit.bpf import netns
from sidkit.bpf._syscall import socket_cookie
from sidkit.sessions import SessionSpec, SessionTable
from sidkit.steering import AnyOf, FixedOffset, Guard, SteeringPolicy

CID_LENGTH = 8  # aioquic's default connection ID length, server and client
# Where a QUIC packet carries the DCID: short header right after the first byte; long header
# after the version and a DCID Length byte equal to 8 (RFC 9000 section 17.2).
QUIC_DCID = AnyOf(
    [
        FixedOffset(1, CID_LENGTH, [Guard(0, 0x80, 0x00)]),
        FixedOffset(6, CID_LENGTH, [Guard(0, 0x80, 0x80), Guard(5, 0xFF, CID_LENGTH)]),
    ]
)
SPEC = SessionSpec("sid", SteeringPolicy(QUIC_DCID, "jhash", 4, seed=0x5EED))


def cid_key(cid: bytes) -> bytes:
    """The session table's key for a connection ID (a short header carrying it)."""
    key = SPEC.key_of(b"\x40" + cid)
    assert key is not None
    return key


class Reply(QuicConnectionProtocol):
    """Answers every stream with the name of the socket that serves the connection."""

    served_by = "?"

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived) and event.end_stream:
            self._quic.send_stream_data(event.stream_id, self.served_by.encode(), end_stream=True)
            self.transmit()


class SessionQuicServer(QuicServer):
    """aioquic's QuicServer on one socket of the group, pinning its connection IDs."""

    def __init__(self, *, table: SessionTable, cookie: int, name: str, **kw: Any) -> None:
        self.table, self.cookie, self.name = table, cookie, name

        def create_protocol(connection: QuicConnection, **pkw: Any) -> QuicConnectionProtocol:
            # The connection's first ID: pinned before the server's first reply leaves.
            table.pin(cid_key(connection.host_cid), cookie)
            protocol = Reply(connection, **pkw)
            protocol.served_by = name
            return protocol

        super().__init__(create_protocol=create_protocol, **kw)

    def _connection_id_issued(self, cid: bytes, protocol: QuicConnectionProtocol) -> None:
        self.table.pin(cid_key(cid), self.cookie)
        super()._connection_id_issued(cid, protocol)

    def _connection_id_retired(self, cid: bytes, protocol: QuicConnectionProtocol) -> None:
        self.table.unpin(cid_key(cid))
        super()._connection_id_retired(cid, protocol)


def certificate() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
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
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert, key


async def start_generation(
    table: SessionTable, generation: str, configuration: QuicConfiguration, port: int
) -> list[asyncio.DatagramTransport]:
    """Bind 4 sockets, serve QUIC on each, register them as a generation, make it working."""
    loop = asyncio.get_running_loop()
    socks = netns.open_group(4, "127.0.0.1", port)
    transports = []
    for i, s in enumerate(socks):
        name = f"{generation}/socket{i}"

        def factory(s: Any = s, name: str = name) -> SessionQuicServer:
            return SessionQuicServer(
                table=table, cookie=socket_cookie(s), name=name, configuration=configuration
            )

        transport, _ = await loop.create_datagram_endpoint(factory, sock=s)
        transports.append(transport)
    gen = table.add_generation(socks)
    if table.handle is None:
        table.attach(socks[0])  # once per group: the program belongs to the group
    table.set_working(gen)
    return transports


async def ask(client: QuicConnectionProtocol) -> str:
    reader, writer = await client.create_stream()
    writer.write(b"which socket?")
    writer.write_eof()
    return (await reader.read()).decode()


async def scenario(port: int = 4433) -> dict[str, str]:
    cert, key = certificate()
    server_conf = QuicConfiguration(is_client=False, alpn_protocols=["sidkit"])
    server_conf.certificate, server_conf.private_key = cert, key
    client_conf = QuicConfiguration(is_client=True, alpn_protocols=["sidkit"])
    client_conf.verify_mode = ssl.CERT_NONE
    table = SessionTable(SPEC, capacity=4096)
    seen: dict[str, str] = {}
    await start_generation(table, "gen0", server_conf, port)
    async with connect("127.0.0.1", port, configuration=client_conf) as old:
        seen["old connection, before the restart"] = await ask(old)
        await start_generation(table, "gen1", server_conf, port)  # the restart
        seen["old connection, after the restart"] = await ask(old)
        async with connect("127.0.0.1", port, configuration=client_conf) as new:
            seen["new connection, after the restart"] = await ask(new)
        old.change_connection_id()  # the client switches to another ID the server issued
        seen["old connection, new connection ID"] = await ask(old)
    seen["table counters"] = str(table.counters())
    return seen


def run(port: int = 4433) -> dict[str, str]:
    """The scenario in a private network namespace (root): what served each request."""

    def inside() -> dict[str, str]:
        return asyncio.run(asyncio.wait_for(scenario(port), 20))

    return netns.run_isolated(inside)


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    for what, where in run().items():
        out(f"{what:36} {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
