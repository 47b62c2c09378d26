"""Make the committed QUIC captures from a real implementation (aioquic), on loopback addresses.

Not run by the test suite: the captures it wrote are committed beside it (see README.md in
this folder). To remake them::

    pip install --target /tmp/aq aioquic
    PYTHONPATH=/tmp/aq python tests/data/make_quic_captures.py tests/data

aioquic's QuicConnection is sans-I/O: the script passes the datagrams of a client and a
server to each other in memory and records each as an Ethernet/IPv4/UDP frame, 127.0.0.1
port 50000 (later 50001, 50002) <-> 127.0.0.2 port 4433. Each capture gets a TLS key log so
that tshark can follow the connection IDs issued in NEW_CONNECTION_ID frames.

* ``quic-v1-migration.pcap``: a QUIC v1 handshake, stream data, then a NAT rebinding (new
  client port, same connection ID) and an active migration (new port and a new connection
  ID from ``change_connection_id``), with path validation.
* ``quic-v2.pcap``: the same handshake in QUIC v2 (RFC 9369), then a migration.
* ``quic-retry-vn.pcap``: Retry packets (v1 and v2) and a Version Negotiation packet, made
  with aioquic's own encoders (``encode_quic_retry``, ``encode_quic_version_negotiation``).
"""

from __future__ import annotations

import datetime
import io
import os
import socket
import ssl
import struct
import sys
from pathlib import Path

import dpkt

# aioquic is not a test dependency: only this script needs it.
from aioquic.quic.configuration import (  # type: ignore[import-not-found, unused-ignore]
    QuicConfiguration,
)
from aioquic.quic.connection import (  # type: ignore[import-not-found, unused-ignore]
    QuicConnection,
)
from aioquic.quic.packet import (  # type: ignore[import-not-found, unused-ignore]
    QuicProtocolVersion,
    encode_quic_retry,
    encode_quic_version_negotiation,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CLIENT_IP = "127.0.0.1"
SERVER = ("127.0.0.2", 4433)


def _certificate() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
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
        .not_valid_after(now + datetime.timedelta(days=10))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


class Recorder:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.writer = dpkt.pcap.Writer(self.buffer, linktype=dpkt.pcap.DLT_EN10MB)
        self.time = 1_700_000_000.0

    def add(self, src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> None:
        udp = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=payload)
        udp.ulen = 8 + len(payload)
        ip = dpkt.ip.IP(
            src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=17, ttl=64, data=udp
        )
        ip.len = 20 + udp.ulen
        eth = dpkt.ethernet.Ethernet(
            src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02", data=ip
        )
        self.time += 0.001
        self.writer.writepkt(bytes(eth), ts=self.time)


def _pump(
    client: QuicConnection,
    server: QuicConnection,
    client_addr: tuple[str, int],
    rec: Recorder,
    now: float,
    rounds: int = 10,
) -> None:
    for _ in range(rounds):
        moved = False
        for data, _addr in client.datagrams_to_send(now):
            rec.add(client_addr, SERVER, data)
            server.receive_datagram(data, client_addr, now)
            moved = True
        for data, addr in server.datagrams_to_send(now):
            rec.add(SERVER, (addr[0], addr[1]), data)
            client.receive_datagram(data, SERVER, now)
            moved = True
        if not moved:
            break


def _session(version: int, keylog: io.StringIO, rec: Recorder) -> None:
    cert, key = _certificate()
    client_conf = QuicConfiguration(is_client=True, alpn_protocols=["sidkit"])
    client_conf.verify_mode = ssl.CERT_NONE
    client_conf.supported_versions = [version]
    client_conf.original_version = version
    client_conf.secrets_log_file = keylog
    server_conf = QuicConfiguration(is_client=False, alpn_protocols=["sidkit"])
    server_conf.certificate = cert
    server_conf.private_key = key
    server_conf.supported_versions = [version]

    now = 1.0
    client = QuicConnection(configuration=client_conf)
    client_addr = (CLIENT_IP, 50000)
    client.connect(SERVER, now=now)
    server = QuicConnection(
        configuration=server_conf,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    _pump(client, server, client_addr, rec, now)
    stream = client.get_next_available_stream_id()
    client.send_stream_data(stream, b"hello over QUIC", end_stream=False)
    _pump(client, server, client_addr, rec, now + 0.1)

    # NAT rebinding: same connection ID, new client port.
    client_addr = (CLIENT_IP, 50001)
    client.send_stream_data(stream, b"after a NAT rebinding", end_stream=False)
    _pump(client, server, client_addr, rec, now + 0.2)

    # Active migration: a new connection ID (issued by the server) and a new port.
    client.change_connection_id()
    client_addr = (CLIENT_IP, 50002)
    client.send_stream_data(stream, b"after migrating", end_stream=True)
    _pump(client, server, client_addr, rec, now + 0.3)


def _retry_and_vn(rec: Recorder) -> None:
    odcid = os.urandom(8)
    client_scid = os.urandom(8)
    client_addr = (CLIENT_IP, 50010)
    for version in (QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2):
        retry = encode_quic_retry(
            version=version,
            source_cid=os.urandom(8),
            destination_cid=client_scid,
            original_destination_cid=odcid,
            retry_token=os.urandom(16),
        )
        rec.add(SERVER, client_addr, retry)
    vn = encode_quic_version_negotiation(
        source_cid=odcid,
        destination_cid=client_scid,
        supported_versions=[QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2],
    )
    rec.add(SERVER, client_addr, vn)


def main(out: Path) -> None:
    for name, version in (
        ("quic-v1-migration", QuicProtocolVersion.VERSION_1),
        ("quic-v2", QuicProtocolVersion.VERSION_2),
    ):
        rec, keylog = Recorder(), io.StringIO()
        _session(version, keylog, rec)
        (out / f"{name}.pcap").write_bytes(rec.buffer.getvalue())
        (out / f"{name}.keylog").write_text(keylog.getvalue())
    rec = Recorder()
    _retry_and_vn(rec)
    (out / "quic-retry-vn.pcap").write_bytes(rec.buffer.getvalue())


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
    print(struct.calcsize("P") * 8, "bit build; captures written")
