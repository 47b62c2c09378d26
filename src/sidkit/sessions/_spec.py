# Strategy: one small value says what a session table is keyed by and how a new session picks
# its socket; the program generator, the live table and the model all read it, so they cannot
# disagree about the key bytes or the pick. The key is a fixed 24-byte record -- a kind/length
# byte, three zero bytes, twenty bytes of data -- because a BPF hash map has one key size:
# a SID of up to 20 bytes (the longest QUIC connection ID, RFC 9000 §17.2) zero-padded, or the
# remote address and port for the 3-tuple flow table (udpgrm's DISSECTOR_FLOW shape). The
# length byte keeps "ab" and "ab\0" apart.
"""What a session table is keyed by, and how a new session picks a socket (private)."""

from __future__ import annotations

import ipaddress
import random
from typing import Final, Literal

import attrs

from sidkit._errors import InputTypeError, InputValueError
from sidkit._validate import as_bytes, show
from sidkit.hashing import jhash, reciprocal_scale
from sidkit.steering import SteeringPolicy, mint_cid

__all__ = ["KEY_SIZE", "MAX_SID", "SessionError", "SessionSpec"]

#: The longest session ID a session table keys by (QUIC's 20-byte connection IDs).
MAX_SID: Final = 20
#: Bytes of a session table's map key: a kind/length byte, 3 padding bytes, 20 of data.
KEY_SIZE: Final = 24
KEY_DATA: Final = 4  # offset of the data in the key
_M32: Final = (1 << 32) - 1
TUPLE_KIND: Final = 0x80  # key[0] = 0x80 | data length for the 3-tuple key


class SessionError(InputValueError):
    """A session table request that cannot work (bad spec, unknown generation, ...)."""

    code = "bad-session"


def _timeout(_inst: object, _attr: object, value: int) -> None:
    if type(value) is not int or not 0 < value < 1 << 63:
        raise SessionError(f"timeout_ns must be a positive integer below 2**63, got {show(value)}")


@attrs.frozen
class SessionSpec:
    """A session table's key and pick.

    ``key="sid"``: the SID where *policy* finds it (any steerable location, at most 20
    bytes); a new session gets socket ``policy.index_of(sid)`` of the working generation,
    the method applied to the generation's size at that moment (``"jhash"``:
    ``reciprocal_scale(jhash(sid, seed), n)``; ``"modulo"``; ``"index"``, where a value
    ``>= n`` picks nothing). ``key="3-tuple"``: the remote address and port (udpgrm's flow
    table), picked by ``reciprocal_scale(jhash(addr || port, seed), n)``.

    *timeout_ns*: an entry not hit for longer than this is expired (the next datagram picks
    anew). *record*: ``"first-packet"`` records a session on its first datagram;
    ``"assure"`` records nothing from the datagram path, only sessions the application pins.
    """

    key: Literal["sid", "3-tuple", "cookie", "none"] = "sid"
    policy: SteeringPolicy | None = None
    seed: int = 0
    timeout_ns: int = attrs.field(default=120 * 10**9, validator=_timeout)
    record: Literal["first-packet", "assure"] = "first-packet"

    def __attrs_post_init__(self) -> None:
        if self.key not in ("sid", "3-tuple", "cookie", "none"):
            raise SessionError(
                f"key must be 'sid', '3-tuple', 'cookie' or 'none', got {show(self.key)}"
            )
        if self.record not in ("first-packet", "assure"):
            raise SessionError(
                f"record must be 'first-packet' or 'assure', got {show(self.record)}"
            )
        if type(self.seed) is not int or not 0 <= self.seed <= _M32:
            raise SessionError(f"seed must be a u32, got {show(self.seed)}")
        if self.policy is not None and not isinstance(self.policy, SteeringPolicy):
            raise InputTypeError(
                f"policy must be a SteeringPolicy or None, not {type(self.policy).__name__}",
                code="bad-policy",
            )
        if self.key == "cookie" and (self.policy is None or self.policy.method != "index"):
            raise SessionError("the cookie dissector needs a policy with method='index'")
        if self.key in ("sid", "cookie"):
            if self.policy is None:
                raise SessionError("a SID-keyed session table needs a steering policy")
            for loc in self.policy.spec.alternatives:
                if loc.length > MAX_SID:
                    raise SessionError(
                        f"a session table keys SIDs of at most {MAX_SID} bytes; this location's "
                        f"SID is {loc.length}"
                    )

    def key_of(self, payload: bytes, src: tuple[str, int] | None = None) -> bytes | None:
        """The 24-byte map key of a datagram, or None when it has no key (no SID)."""
        payload = as_bytes(payload, "payload")
        if self.key == "none":
            return None
        if self.key in ("sid", "cookie"):
            assert self.policy is not None
            sid = self.policy.sid(payload)
            if sid is None:
                return None
            return bytes([len(sid)]) + bytes(3) + sid.ljust(MAX_SID, b"\0")
        if src is None:
            raise SessionError("the 3-tuple flow table needs the datagram's source address")
        data = ipaddress.ip_address(src[0]).packed + src[1].to_bytes(2, "big")
        return bytes([TUPLE_KIND | len(data)]) + bytes(3) + data.ljust(MAX_SID, b"\0")

    def raw_pick(self, key: bytes) -> int:
        """The u32 the program computes from the key before it knows the generation's size."""
        data = key[KEY_DATA : KEY_DATA + (key[0] & 0x7F)]
        if self.key == "3-tuple":
            return jhash(data, self.seed)
        assert self.policy is not None
        p = self.policy
        if p.method == "jhash":
            return jhash(data, p.seed)
        if p.method == "modulo":
            return int.from_bytes(data[:4], "big")
        f = p.field
        value = (int.from_bytes(data[f.offset : f.offset + f.length], "big") >> f.shift) & f.mask
        return (value - f.base) & _M32

    def pick(self, key: bytes, n: int) -> int | None:
        """The index in a generation of *n* sockets, or None when nothing is picked."""
        if n == 0:
            return None
        raw = self.raw_pick(key)
        method = "jhash" if self.key == "3-tuple" else self.policy.method  # type: ignore[union-attr]
        if method == "jhash":
            return reciprocal_scale(raw, n)
        if method == "modulo":
            return raw % n
        return raw if raw < n else None

    @property
    def method(self) -> str:
        """How a miss picks: the policy's method, ``jhash`` of the 3-tuple, or ``hash``
        (``reciprocal_scale(ctx->hash, n)``: the kernel's own flow hash, for the stateless
        cookie and noop dissectors, as udpgrm dispatches new flows)."""
        if self.key in ("cookie", "none"):
            return "hash"
        return "jhash" if self.key == "3-tuple" else self.policy.method  # type: ignore[union-attr]

    @property
    def stateless(self) -> bool:
        """True for the cookie and noop dissectors: no table, nothing recorded."""
        return self.key in ("cookie", "none")

    def mint(self, slot: int, *, rng: random.Random | None = None) -> bytes:
        """A SID for the cookie dissector that names socket *slot* (``generation *
        per_generation + index``) -- what a server writes into the connection IDs it issues."""
        if self.key != "cookie":
            raise SessionError("only the cookie dissector mints SIDs")
        assert self.policy is not None
        return mint_cid(attrs.evolve(self.policy, n=slot + 1), slot, rng=rng)
