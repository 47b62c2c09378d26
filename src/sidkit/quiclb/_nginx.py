# nginx's QUIC worker steering (quic_bpf on): the listening socket's SO_COOKIE written
# big-endian into the first eight octets of nginx's 20-octet server CIDs, and the SK_REUSEPORT
# program that looks those octets up in a socket map. Each function transcribes nginx/nginx
# (cited per function, read at release-1.31.4-4-g3f6f7824d). The per-packet function models
# the program's parse and never raises on packet content: where nginx looks nothing up it
# returns None. The per-CID function raises CidError.
"""nginx's socket-cookie CIDs (private; public in sidkit.quiclb)."""

from __future__ import annotations

from sidkit._validate import as_bytes
from sidkit.quiclb._core import CidError

__all__ = ["NGINX_SERVER_CID_LENGTH", "nginx_cid_cookie", "nginx_socket_cookie"]

LONG_HEADER = 0x80
NGINX_SERVER_CID_LENGTH = 20
"""``NGX_QUIC_SERVER_CID_LEN``: nginx's server CIDs are 20 octets."""


def nginx_cid_cookie(cid: bytes | bytearray | memoryview) -> int:
    """The socket cookie nginx wrote into one of its server CIDs.

    Source: nginx/nginx ``src/event/quic/ngx_event_quic_connid.c``
    ``ngx_quic_create_server_id()``: 20 random octets, then, with ``quic_bpf on``,
    ``ngx_quic_bpf_attach_id()`` overwrites the first 8 with the listening socket's
    ``SO_COOKIE`` through ``ngx_quic_dcid_encode_key()`` = ``ngx_quic_write_uint64()``,
    big-endian (``src/event/quic/ngx_event_quic_transport.c``).
    """
    data = as_bytes(cid, "cid")
    if len(data) < 8:
        raise CidError(f"nginx keys on 8 CID octets, got {len(data)}", code="cid-too-short")
    return int.from_bytes(data[:8], "big")


def nginx_socket_cookie(udp_payload: bytes | bytearray | memoryview) -> int | None:
    """The key nginx's SK_REUSEPORT program looks up for a datagram, or None where it returns
    ``SK_PASS`` without a lookup (the kernel's default reuseport selection).

    Source: nginx/nginx ``src/event/quic/bpf/ngx_quic_reuseport_helper.c``
    ``ngx_quic_select_socket_by_dcid()`` (unchanged since 2526632f7172, 2022; read at
    release-1.31.4-4-g3f6f7824d) and the bytecode nginx ships from it,
    ``src/event/quic/ngx_event_quic_bpf_code.c``. The program's ``advance_data(n)`` fails
    (``goto failed``, then ``SK_PASS``) as soon as the octets it skips run past the packet, and
    it skips the **whole** DCID before reading the key (lines 85-105: "we expect the packet to
    have full DCID"):

    * empty payload: no flags octet, no lookup;
    * long header (``0x80``): fewer than 6 octets (flags, version, DCID length) - no lookup;
      DCID length ``payload[5] < 8`` - no lookup ("it's useless to search for key in such
      short DCID", line 95); fewer than ``6 + payload[5]`` octets - no lookup; otherwise the
      key is ``payload[6:14]``;
    * short header: the DCID is taken to be ``NGX_QUIC_SERVER_CID_LEN`` = 20 octets (line 101),
      so fewer than 21 octets - no lookup; otherwise the key is ``payload[1:9]``.

    The key is the big-endian value of the 8 octets (``ngx_quic_parse_uint64``); a key missing
    from the socket map (``-ENOENT``) also ends in the default selection. Never raises on
    content.
    """
    data = as_bytes(udp_payload, "udp_payload")
    if not data:
        return None
    if data[0] & LONG_HEADER:
        if len(data) < 6 or data[5] < 8 or len(data) < 6 + data[5]:
            return None
        return int.from_bytes(data[6:14], "big")
    if len(data) < 1 + NGINX_SERVER_CID_LENGTH:
        return None
    return int.from_bytes(data[1:9], "big")
