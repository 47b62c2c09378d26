# Across hosts: the server ID a QUIC server hides in the connection IDs it mints, so that a
# stateless load balancer in front of many servers can route every packet of a connection to
# it, even after the client's address changes. sidkit.quiclb is the reference both sides test
# against: QUIC-LB (draft-ietf-quic-load-balancers-21, and the draft <= 18 expand() layout that
# google/quiche still uses) bit for bit, the balancer's forwarding order, and the deployed
# non-QUIC-LB schemes (Katran's CIDs and stable routing, Envoy's quic_lb and deterministic
# generators, nginx). The code lives in private modules (_core, _cipher, _balancer, and one per
# deployed balancer: _katran, _envoy, _nginx); this module re-exports the public names and
# holds the one helper the QUIC plugin needs.
#
# What it refuses to do: generate nonces or random first-octet bits (the caller owns
# randomness), hand-roll AES (all AES goes through `cryptography`), or guess when a CID cannot be
# decoded (CidError says why; the traffic-facing functions return None or a fallback instead).
"""QUIC-LB connection IDs and the server-ID schemes of real load balancers.

Server side: :class:`Config` and :func:`encode`. Balancer side: :func:`decode`,
:func:`classify_dcid`, :class:`Balancer` (draft-21 section 4.2 forwarding order). Steering:
:func:`server_id_index`, and :func:`steering_policy` for a kernel program that does the same
on one host. Other balancers: :func:`katran_server_id`,
:func:`katran_stable_routing_server_id`, :func:`envoy_worker` (quic_lb),
:func:`envoy_deterministic_worker` (Envoy's default generator), :func:`nginx_socket_cookie`
and friends. QUIC parsing: :func:`short_header_dcid_length`.
"""

from __future__ import annotations

from sidkit._validate import as_bytes
from sidkit.quiclb._balancer import Balancer, Decision, ServerPool, Step, hash_fallback
from sidkit.quiclb._cipher import EXPAND_LAYOUTS, ExpandLayout
from sidkit.quiclb._core import (
    KEY_LENGTH,
    LENGTH_MASK,
    MAX_CID_LENGTH,
    UNROUTABLE_CONFIG_ID,
    CidError,
    CidParts,
    CidRoute,
    Config,
    ConfigError,
    Mode,
    QuicLbError,
    classify_dcid,
    decode,
    encode,
    server_id_index,
    unpack,
)
from sidkit.quiclb._envoy import (
    ENVOY_DETERMINISTIC_CID_LENGTH,
    ENVOY_MAX_CONCURRENCY,
    envoy_deterministic_cid_worker,
    envoy_deterministic_mint,
    envoy_deterministic_next_cid,
    envoy_deterministic_replacement_cid,
    envoy_deterministic_steering_policy,
    envoy_deterministic_worker,
    envoy_worker,
    envoy_worker_byte,
)
from sidkit.quiclb._katran import (
    KATRAN_MIN_CID_LENGTH,
    KATRAN_STABLE_ROUTING_HEADER,
    KATRAN_STABLE_ROUTING_LENGTH,
    KatranServerId,
    katran_packet_server_id,
    katran_server_id,
    katran_stable_routing_header,
    katran_stable_routing_server_id,
    katran_stable_routing_steering_policy,
)
from sidkit.quiclb._nginx import NGINX_SERVER_CID_LENGTH, nginx_cid_cookie, nginx_socket_cookie
from sidkit.steering import AnyOf, FixedOffset, IndexField, SteeringError, SteeringPolicy

__all__ = [
    "ENVOY_DETERMINISTIC_CID_LENGTH",
    "ENVOY_MAX_CONCURRENCY",
    "EXPAND_LAYOUTS",
    "KATRAN_MIN_CID_LENGTH",
    "KATRAN_STABLE_ROUTING_HEADER",
    "KATRAN_STABLE_ROUTING_LENGTH",
    "KEY_LENGTH",
    "MAX_CID_LENGTH",
    "NGINX_SERVER_CID_LENGTH",
    "UNROUTABLE_CONFIG_ID",
    "Balancer",
    "CidError",
    "CidParts",
    "CidRoute",
    "Config",
    "ConfigError",
    "Decision",
    "ExpandLayout",
    "KatranServerId",
    "Mode",
    "QuicLbError",
    "ServerPool",
    "Step",
    "classify_dcid",
    "decode",
    "encode",
    "envoy_deterministic_cid_worker",
    "envoy_deterministic_mint",
    "envoy_deterministic_next_cid",
    "envoy_deterministic_replacement_cid",
    "envoy_deterministic_steering_policy",
    "envoy_deterministic_worker",
    "envoy_worker",
    "envoy_worker_byte",
    "hash_fallback",
    "katran_packet_server_id",
    "katran_server_id",
    "katran_stable_routing_header",
    "katran_stable_routing_server_id",
    "katran_stable_routing_steering_policy",
    "nginx_cid_cookie",
    "nginx_socket_cookie",
    "server_id_index",
    "short_header_dcid_length",
    "steering_policy",
    "unpack",
]


def short_header_dcid_length(
    packet: bytes | bytearray | memoryview,
    *,
    trailing: int = 0,
    max_length: int = MAX_CID_LENGTH,
) -> int:
    """The DCID length of a short-header QUIC packet whose server self-encodes CID lengths.

    A short header does not carry its DCID length (RFC 9000 section 17.3): a receiver must
    know it. QUIC-LB's length self-description gives it: "the remaining 5 bits in the first
    octet of the Connection ID are reserved to express the length of the following connection
    ID, not including the first octet" (draft-21 section 3.3), so the DCID is ``1 +
    (packet[1] & 0x1f)`` octets. *trailing* adds octets the encoded length does not count:
    Envoy's quic_lb appends a worker octet after a quiche CID whose length field covers only
    the QUIC-LB part, so Envoy's DCIDs need ``trailing=1``.

    Raises :class:`CidError`: ``not-short-header`` (header form bit set), ``packet-truncated``
    (the DCID runs past the packet), ``cid-too-long`` (over *max_length*, 20 for QUIC v1).
    """
    data = as_bytes(packet, "packet")
    if not isinstance(trailing, int) or isinstance(trailing, bool) or trailing < 0:
        raise QuicLbError(f"trailing must be a non-negative int, got {trailing!r}")
    if not data:
        raise CidError("an empty packet has no header", code="packet-truncated")
    if data[0] & 0x80:
        raise CidError("header form bit set: not a short header", code="not-short-header")
    if len(data) < 2:
        raise CidError("a 1-octet short header has no DCID", code="packet-truncated")
    length = 1 + (data[1] & LENGTH_MASK) + trailing
    if length > max_length:
        raise CidError(
            f"self-encoded DCID length {length} exceeds {max_length}", code="cid-too-long"
        )
    if len(data) < 1 + length:
        raise CidError(
            f"a {length}-octet DCID does not fit in a {len(data)}-octet packet",
            code="packet-truncated",
        )
    return length


def steering_policy(config: Config, n: int) -> SteeringPolicy:
    """A kernel steering policy that sends each QUIC packet to the socket its CID's server ID
    names, on one host: :func:`server_id_index` compiled to cBPF or SK_REUSEPORT eBPF.

    Only plaintext configurations (no key) with server IDs of at most 4 octets can be read by
    a BPF program (it has no AES, and the ``"index"`` method reads up to 32 bits). Two places
    carry a server-chosen DCID of ``config.cid_length`` octets: a short header (RFC 9000
    section 17.3: form bit 0, fixed bit 1, DCID at offset 1) and a long header whose DCID
    length octet equals it (section 17.2: DCID at offset 6). The CID's first octet must carry
    this config's rotation bits (draft-21 section 3). A server ID ``>= n``, another config,
    a client-chosen Initial DCID of another length or any other packet falls back to the
    kernel's hash, as :func:`server_id_index` returns None for them.

    Raises :class:`sidkit.steering.SteeringError` for configurations a program cannot read.
    """
    if not isinstance(config, Config):
        raise SteeringError(f"config must be a quiclb.Config, not {type(config).__name__}")
    if config.key is not None:
        raise SteeringError(
            "an encrypted QUIC-LB config needs AES to find the server ID; a BPF program "
            "cannot do that: steer in user space with server_id_index()"
        )
    if config.server_id_length > 4:
        raise SteeringError(
            f"a {config.server_id_length}-octet server ID is wider than the 32 bits a "
            "steering program compares; use at most 4 octets"
        )
    length = config.cid_length
    rotation = (0xE0, config.config_id << 5)
    short = FixedOffset(1, length, [(0, 0xC0, 0x40), (1, *rotation)])
    long = FixedOffset(6, length, [(0, 0xC0, 0xC0), (5, 0xFF, length), (6, *rotation)])
    field = IndexField(1, config.server_id_length, 0, 0xFFFFFFFF)
    return SteeringPolicy(AnyOf([short, long]), "index", n, field=field)
