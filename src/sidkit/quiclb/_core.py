# QUIC-LB connection IDs, both sides (draft-ietf-quic-load-balancers-21): a validated Config,
# the server's encode(), the load balancer's decode(), and a never-raising classify_dcid() that
# turns any DCID into a routing decision with a machine-readable reason. Everything is a pure
# function of (config, bytes): no randomness (the caller supplies nonces and, where the length is
# not self-encoded, the first octet's free bits), no clock, no tables; the balancer state machine
# lives in _balancer. Misuse by the caller (bad config, wrong-sized server ID) raises
# ConfigError/CidError; traffic-facing helpers (classify_dcid, server_id_index) never raise on
# packet bytes.
"""QUIC-LB configuration, encoding and decoding (private; public names in sidkit.quiclb)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from sidkit._errors import InputTypeError, InputValueError
from sidkit._validate import as_bytes, check_key, show
from sidkit.quiclb._cipher import BLOCK, EXPAND_LAYOUTS, ExpandLayout, FourPass, aes_ecb

__all__ = [
    "KEY_LENGTH",
    "MAX_CID_LENGTH",
    "UNROUTABLE_CONFIG_ID",
    "CidError",
    "CidParts",
    "CidRoute",
    "Config",
    "ConfigError",
    "Mode",
    "QuicLbError",
    "classify_dcid",
    "decode",
    "encode",
    "server_id_index",
    "unpack",
]

UNROUTABLE_CONFIG_ID = 0b111
"""Config rotation codepoint that marks a CID as unroutable (draft-21 section 3.2)."""
MAX_CID_LENGTH = 20
"""QUIC version 1 connection IDs are at most 20 octets (RFC 9000 section 17.2)."""
KEY_LENGTH = 16
"""QUIC-LB keys are AES-128 keys (draft-21 section 5.3)."""
MIN_NONCE_LENGTH = 4
MAX_PLAINTEXT_LENGTH = 19
LENGTH_MASK = 0x1F

Mode = Literal["plaintext", "single-pass", "four-pass"]


class QuicLbError(InputValueError):
    """Base of the QUIC-LB errors; a ``ValueError`` like every sidkit value error."""

    code = "quic-lb"


class ConfigError(QuicLbError):
    """A QUIC-LB configuration that draft-21 forbids (the message quotes the rule)."""

    code = "bad-quic-lb-config"


class CidError(QuicLbError):
    """A connection ID (or packet) that this configuration cannot decode.

    ``code`` says why: ``cid-too-short``, ``cid-unroutable`` (config rotation 0b111),
    ``cid-config-mismatch``, ``cid-too-long``, ``packet-truncated``, ``not-short-header``,
    ``bad-server-id``, ``bad-nonce``, ``bad-server-use``, ``bad-first-octet``.
    """

    code = "bad-cid"


def _check_int(value: object, name: str, low: int, high: int, rule: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputTypeError(f"{name} must be an int, not {type(value).__name__}", code="not-int")
    if not low <= value <= high:
        raise ConfigError(f"{name}={show(value)} is outside {low}..{high}: {rule}")
    return value


def _key(value: object) -> bytes | None:
    return None if value is None else check_key(value, KEY_LENGTH)


def _layout(value: object) -> ExpandLayout:
    for layout in EXPAND_LAYOUTS:
        if value == layout:
            return layout
    raise ConfigError(f"expand_layout must be one of {EXPAND_LAYOUTS}, got {show(value)}")


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise InputTypeError(f"expected a bool, not {type(value).__name__}", code="not-bool")
    return value


@attrs.frozen
class Config:
    """One QUIC-LB configuration, as shared by the servers and the load balancers.

    The constructor enforces draft-21:

    * ``config_id`` is the config rotation codepoint in the top three bits of the first octet,
      0-6: "A configuration MUST NOT use the reserved identifier 0b111" (section 3.1).
    * ``server_id_length`` >= 1 and ``nonce_length`` >= 4: "The nonce length MUST be at least
      4 octets. The server ID length MUST be at least 1 octet." (section 5.3).
    * "the server ID and nonce lengths MUST sum to 19 octets or less" (section 5.3).
    * ``key`` is absent (plaintext) or 16 octets (AES-128-ECB).
    * ``encode_length``: the low five bits of the first octet self-encode the length of the
      CID that follows it (section 3.3); otherwise the server fills them itself.
    * ``server_use_length``: octets the server appends for its own use (section 5.4), the same
      for every server of the configuration; the whole CID stays within QUIC v1's 20 octets.
    * ``expand_layout``: ``"draft-21"`` (drafts 19-21) or ``"draft-18"``, the layout of drafts
      <= 18 that google/quiche (and Envoy through it) implements.

    With a key, a plaintext length of exactly 16 octets uses the single AES pass (section
    5.4.1); any other length the four-pass Feistel network (section 5.4.2).
    """

    config_id: int = attrs.field(
        validator=lambda _i, _a, v: _check_int(
            v, "config_id", 0, 6, "the codepoint 0b111 is reserved for unroutable CIDs"
        )
    )
    server_id_length: int = attrs.field(
        validator=lambda _i, _a, v: _check_int(
            v, "server_id_length", 1, 15, "at least 1 octet, and the nonce takes 4 of the 19"
        )
    )
    nonce_length: int = attrs.field(
        validator=lambda _i, _a, v: _check_int(
            v, "nonce_length", MIN_NONCE_LENGTH, 18, "at least 4 octets, and the server ID 1 of 19"
        )
    )
    key: bytes | None = attrs.field(default=None, converter=_key, repr=False)
    encode_length: bool = attrs.field(default=True, converter=_bool)
    server_use_length: int = attrs.field(
        default=0,
        validator=lambda _i, _a, v: _check_int(v, "server_use_length", 0, 15, "at most 20 octets"),
    )
    expand_layout: ExpandLayout = attrs.field(default="draft-21", converter=_layout)
    _encrypt: Any = attrs.field(init=False, repr=False, eq=False, hash=False, default=None)
    _decrypt: Any = attrs.field(init=False, repr=False, eq=False, hash=False, default=None)
    _four: Any = attrs.field(init=False, repr=False, eq=False, hash=False, default=None)
    _decoder: Any = attrs.field(init=False, repr=False, eq=False, hash=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.plaintext_length > MAX_PLAINTEXT_LENGTH:
            raise ConfigError(
                f"server_id_length + nonce_length = {self.plaintext_length}: draft-21 section "
                "5.3, 'the server ID and nonce lengths MUST sum to 19 octets or less'"
            )
        if self.cid_length > MAX_CID_LENGTH:
            raise ConfigError(
                f"the CID would be {self.cid_length} octets: server-use octets may be added "
                f"'up to the limit specified in that version of QUIC' ({MAX_CID_LENGTH} for v1)"
            )
        n_sid = self.server_id_length
        decoder: Callable[[bytes], bytes]
        if self.key is None:
            decoder = operator.itemgetter(slice(0, n_sid))
        else:
            encrypt, decrypt = aes_ecb(self.key)
            object.__setattr__(self, "_encrypt", encrypt)
            object.__setattr__(self, "_decrypt", decrypt)
            if self.plaintext_length == BLOCK:
                decoder = _single_pass_decoder(self, n_sid)
            else:
                four = FourPass(self.plaintext_length, self.expand_layout, encrypt)
                object.__setattr__(self, "_four", four)
                decoder = _four_pass_decoder(four, n_sid, n_sid > self.nonce_length)
        # The balancer's per-packet path: block (octets 1..1+plaintext_length) -> server ID.
        object.__setattr__(self, "_decoder", decoder)

    def __reduce__(self) -> tuple[type[Config], tuple[object, ...]]:
        # Pickle and copy by the public fields: the cipher contexts are rebuilt, not copied.
        return (
            Config,
            (
                self.config_id,
                self.server_id_length,
                self.nonce_length,
                self.key,
                self.encode_length,
                self.server_use_length,
                self.expand_layout,
            ),
        )

    @property
    def plaintext_length(self) -> int:
        """Octets of server ID and nonce (the encrypted block)."""
        return self.server_id_length + self.nonce_length

    @property
    def cid_length(self) -> int:
        """Octets of the whole CID: first octet, block, server-use octets."""
        return 1 + self.plaintext_length + self.server_use_length

    @property
    def mode(self) -> Mode:
        """Which algorithm the configuration uses (draft-21 section 5.4)."""
        if self.key is None:
            return "plaintext"
        return "single-pass" if self.plaintext_length == BLOCK else "four-pass"

    @property
    def decode_aes_calls(self) -> int:
        """AES block operations per decode: 0, 1, or 3 (4 when the server ID is longer than
        the nonce and so reaches into ``right_0``; draft-21 section 5.5.2)."""
        mode = self.mode
        if mode == "plaintext":
            return 0
        if mode == "single-pass":
            return 1
        return 4 if self.server_id_length > self.nonce_length else 3

    def first_octet(self, low_bits: int | None = None) -> int:
        """The first octet of this configuration's CIDs.

        With ``encode_length`` the low five bits are ``cid_length - 1``; otherwise they are
        *low_bits*, which the server "SHOULD choose ... so as to have no observable
        relationship to previous connection IDs" (section 3.3).
        """
        if self.encode_length:
            if low_bits is not None:
                raise CidError(
                    "low_bits conflicts with encode_length=True (the bits are the length)",
                    code="bad-first-octet",
                )
            low = self.cid_length - 1
        else:
            low = 0 if low_bits is None else low_bits
            if not isinstance(low, int) or isinstance(low, bool) or not 0 <= low <= LENGTH_MASK:
                raise CidError(f"low_bits must be 0..31, got {low_bits!r}", code="bad-first-octet")
        return (self.config_id << 5) | low


def _single_pass_decoder(config: Config, n_sid: int) -> Callable[[bytes], bytes]:
    # Looks the block function up on the config at call time, so an instrumented copy (the
    # benchmark counts AES calls) sees every call.
    return lambda block: bytes(config._decrypt(block)[:n_sid])


def _four_pass_decoder(four: FourPass, n_sid: int, fourth: bool) -> Callable[[bytes], bytes]:
    if fourth:
        return lambda block: four.decrypt(block)[:n_sid]
    drop = 8 * (four.half - n_sid)
    return lambda block: (four.decrypt_left(block) >> drop).to_bytes(n_sid, "big")


def _field(value: object, size: int, name: str, code: str) -> bytes:
    data = as_bytes(value, name)
    if len(data) != size:
        raise CidError(f"{name} must be {size} octets for this config, got {len(data)}", code=code)
    return data


def encode(
    config: Config,
    server_id: bytes | bytearray | memoryview,
    nonce: bytes | bytearray | memoryview,
    server_use: bytes | bytearray | memoryview = b"",
    *,
    low_bits: int | None = None,
) -> bytes:
    """The server side: build the CID that carries *server_id* (draft-21 section 5.4).

    ``first octet || block || server_use``, where the block is ``server_id || nonce`` in the
    clear (no key), encrypted once with AES-128-ECB (16 octets), or run through the four-pass
    Feistel network (any other length). The nonce is the caller's: "the server MUST NOT reuse
    a nonce until it switches to a configuration with new keys" (section 9.6), and without a
    key it must look random. *low_bits* fills the first octet when the length is not
    self-encoded (:meth:`Config.first_octet`).
    """
    if not isinstance(config, Config):
        raise InputTypeError(f"config must be a quiclb.Config, not {type(config).__name__}")
    sid = _field(server_id, config.server_id_length, "server_id", "bad-server-id")
    non = _field(nonce, config.nonce_length, "nonce", "bad-nonce")
    use = _field(server_use, config.server_use_length, "server_use", "bad-server-use")
    block = sid + non
    mode = config.mode
    if mode == "single-pass":
        block = config._encrypt(block)
    elif mode == "four-pass":
        block = config._four.encrypt(block)
    return bytes((config.first_octet(low_bits),)) + block + use


def _check_cid(config: Config, cid: object) -> bytes:
    if not isinstance(config, Config):
        raise InputTypeError(f"config must be a quiclb.Config, not {type(config).__name__}")
    data = as_bytes(cid, "cid")
    if not data:
        raise CidError("an empty CID has no first octet", code="cid-too-short")
    rotation = data[0] >> 5
    if rotation == UNROUTABLE_CONFIG_ID:
        raise CidError("config rotation 0b111: the CID is unroutable", code="cid-unroutable")
    if rotation != config.config_id:
        raise CidError(
            f"the CID has config rotation {rotation}, the config is {config.config_id}",
            code="cid-config-mismatch",
        )
    if len(data) <= config.server_id_length + config.nonce_length:
        raise CidError(
            f"a CID of {len(data)} octets is too short for config {config.config_id} "
            f"(needs {1 + config.plaintext_length})",
            code="cid-too-short",
        )
    return data


def decode(config: Config, cid: bytes | bytearray | memoryview) -> bytes:
    """The load balancer side: the server ID in *cid* (draft-21 section 5.5).

    Extra octets after the block (server-use octets, or a longer CID) are ignored, as the load
    balancer ignores them. Raises :class:`CidError` for a CID this config cannot decode:
    config rotation 0b111, another config's rotation bits, or too short (checked in that
    order). A four-pass CID costs
    3 AES calls, or 4 when the server ID is longer than the nonce.
    """
    data = _check_cid(config, cid)
    decoder: Callable[[bytes], bytes] = config._decoder
    return decoder(data[1 : 1 + config.server_id_length + config.nonce_length])


@attrs.frozen
class CidParts:
    """A CID taken fully apart by :func:`unpack`."""

    config_id: int
    low_bits: int
    server_id: bytes
    nonce: bytes
    server_use: bytes


def unpack(config: Config, cid: bytes | bytearray | memoryview) -> CidParts:
    """Recover everything :func:`encode` put in *cid*: first-octet fields, server ID, nonce and
    the octets after the block (all four Feistel passes, where :func:`decode` may stop at
    three)."""
    data = _check_cid(config, cid)
    end = 1 + config.plaintext_length
    block = data[1:end]
    mode = config.mode
    if mode == "single-pass":
        block = bytes(config._decrypt(block))
    elif mode == "four-pass":
        block = config._four.decrypt(block)
    n_sid = config.server_id_length
    return CidParts(data[0] >> 5, data[0] & LENGTH_MASK, block[:n_sid], block[n_sid:], data[end:])


RouteReason = Literal[
    "routable",
    "empty",
    "unroutable-codepoint",
    "unknown-config",
    "too-short",
    "length-mismatch",
]


@attrs.frozen
class CidRoute:
    """What the load balancer can do with one DCID (:func:`classify_dcid`).

    ``routable`` is true only with a server ID; ``reason`` names the unroutable case of
    draft-21 section 4.1 that applied: ``empty``, ``unroutable-codepoint`` (0b111),
    ``unknown-config``, ``too-short``, ``length-mismatch`` (the optional self-encoded length
    checks). Whether the server ID belongs to an active server is the balancer's question.
    """

    routable: bool
    reason: RouteReason
    config_id: int | None = None
    server_id: bytes | None = None


class ConfigTable(dict[int, Config]):
    """Configurations indexed by config ID, checked once by :func:`config_table`."""


def config_table(configs: Mapping[int, Config] | Iterable[Config]) -> ConfigTable:
    """Index *configs* by their own config IDs, refusing two configs for one codepoint (a
    mapping's keys are ignored: the CID's rotation bits name ``Config.config_id``)."""
    if isinstance(configs, ConfigTable):
        return configs
    items = configs.values() if isinstance(configs, Mapping) else configs
    if isinstance(items, str | bytes | bytearray) or not isinstance(items, Iterable):
        raise InputTypeError(
            f"configs must be quiclb.Config values (a mapping or an iterable), "
            f"not {type(configs).__name__}"
        )
    table = ConfigTable()
    for config in items:
        if not isinstance(config, Config):
            raise InputTypeError(f"expected quiclb.Config, not {type(config).__name__}")
        if config.config_id in table:
            raise ConfigError(f"two configurations share config_id {config.config_id}")
        table[config.config_id] = config
    return table


def classify_dcid(
    configs: Mapping[int, Config] | Iterable[Config],
    dcid: bytes | bytearray | memoryview,
    *,
    self_encoded_lengths: bool = False,
    long_header: bool = False,
) -> CidRoute:
    """Decide whether *dcid* is routable, and to which server ID, without ever raising on its
    content (draft-21 section 4.1).

    A DCID is unroutable when its config rotation bits are 0b111 or name no configuration, or
    when it is too short for the decoder. With *self_encoded_lengths* (the load balancer knows
    that every server self-encodes CID lengths) the optional checks apply too: the encoded
    length must cover the configuration's block, and in a long header (*long_header*, where
    the header states the DCID length) it must be the DCID length minus one.
    """
    reason, config_id, server_id = classify(
        config_table(configs), as_bytes(dcid, "dcid"), self_encoded_lengths, long_header
    )
    return CidRoute(server_id is not None, reason, config_id, server_id)


def classify(
    table: ConfigTable, data: bytes, self_encoded_lengths: bool, long_header: bool
) -> tuple[RouteReason, int | None, bytes | None]:
    """:func:`classify_dcid` on checked arguments, as a tuple (the balancer's per-packet path)."""
    if not data:
        return "empty", None, None
    rotation = data[0] >> 5
    if rotation == UNROUTABLE_CONFIG_ID:
        return "unroutable-codepoint", rotation, None
    config = table.get(rotation)
    if config is None:
        return "unknown-config", rotation, None
    block = config.server_id_length + config.nonce_length
    if len(data) <= block:
        return "too-short", rotation, None
    if self_encoded_lengths:
        encoded = data[0] & LENGTH_MASK
        if encoded < block or (long_header and encoded != len(data) - 1):
            return "length-mismatch", rotation, None
    return "routable", rotation, config._decoder(data[1 : 1 + block])


def server_id_index(
    config: Config, cid: bytes | bytearray | memoryview, n: int, *, wrap: bool = False
) -> int | None:
    """The index (0..n-1) of the socket, worker or server that *cid*'s server ID names, or None.

    Meant for steering: a policy that routes by server or worker ID calls it per packet. The
    server ID is read as a big-endian integer. An ID >= *n* gives None (the caller falls back
    to its hash, as the kernel does when a reuseport cBPF program returns an index past the
    group), or with *wrap* the ID modulo *n* (what Envoy does for long headers). Any CID this
    config cannot decode gives None; the function raises only for a bad *config* or *n*.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputValueError(f"n must be a positive int, got {n!r}", code="out-of-range")
    try:
        sid = decode(config, cid)
    except CidError:
        return None
    value = int.from_bytes(sid, "big")
    if wrap:
        return value % n
    return value if value < n else None
