# Strategy: the one place that turns a flow key into the u32 a bucket is chosen by. The hash
# itself is the era's hash_conntrack_raw (sidkit.kernel profile), so the same model places
# entries as 4.7's jhash2 or 6.12's siphash would; this module binds it to one table's secret
# and net_hash_mix, and adds the seed's SID-zone hash with the same keying. Hashes are cached
# on the key objects (FiveTuple and SessionId carry a private slot), keyed by a per-table,
# per-zone-id token, so a caller that keeps its key objects pays the pure-Python siphash once
# per key. It returns raw hashes only: reciprocal_scale to a bucket is the chains' business,
# and the table reads the token cache directly on its hot path rather than call in here.
"""The era's conntrack hash, bound to one table's secret and namespace (private)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from sidkit._errors import InputTypeError
from sidkit._validate import check_key, check_uint
from sidkit.kernel import KernelProfile
from sidkit.keys import FiveTuple, FlowKey, SessionId

__all__ = ["TableHash"]

_M32: Final = 0xFFFFFFFF


def _packed(np: Any, values: list[int], six: bool) -> Any:
    """Addresses given as ints (``int(ipaddress)``) as an ``(n, 4|16)`` uint8 array of their
    network-order bytes, without a bytes object per address."""
    if not six:
        return np.array(values, np.uint32).astype(">u4").view(np.uint8).reshape(-1, 4)
    hi = np.array([v >> 64 for v in values], np.uint64)
    lo = np.array([v & 0xFFFFFFFFFFFFFFFF for v in values], np.uint64)
    words = np.stack([hi, lo], axis=1).astype(">u8")  # big-endian after the stack
    return words.view(np.uint8).reshape(-1, 16)


class TableHash:
    """``hash_conntrack_raw`` of one table's era, secret (``nf_conntrack_hash_rnd``) and
    namespace (``net_hash_mix``), with the per-key cache; see :meth:`Table.raw_hash`."""

    __slots__ = (
        "_jhash_fn",
        "_net_mix",
        "_pending",
        "_profile",
        "_raw",
        "_secret",
        "_sid_keys",
        "_siphash_fn",
        "tokens",
    )

    tokens: dict[int, object]
    """Per zone id, the token a key's cached hash must carry to be this table's; the table's
    hot path reads it directly (the same dict object, never replaced)."""

    def __init__(
        self,
        prof: KernelProfile,
        secret: bytes | int | None,
        net_mix: int,
        draw: Callable[[int], int],
    ) -> None:
        era = prof.era("hash_conntrack_raw")
        assert era.impl is not None
        self._profile = prof
        self._raw: Callable[..., int] = prof.function("hash_conntrack_raw")
        # The siphash forms take the 16-byte siphash_key_t, the jhash forms a u32: the
        # era's own signature says which.
        siphash_era = "bytes" in str(era.impl.__annotations__.get("secret", ""))
        self._net_mix = check_uint(net_mix, 32, "net_mix")
        if siphash_era:
            self._secret: bytes | int = check_key(
                draw(128).to_bytes(16, "little") if secret is None else secret, 16, "secret"
            )
        else:
            if isinstance(secret, bytes | bytearray | memoryview):
                raise InputTypeError(
                    f"kernel {prof.version} hashes conntrack with jhash2: "
                    "secret is a u32 (nf_conntrack_hash_rnd), not bytes",
                    code="bad-secret",
                )
            self._secret = check_uint(draw(32) if secret is None else secret, 32, "secret")
        self.tokens = {}
        self._sid_keys: dict[int, bytes] = {}
        sipfn: Callable[..., int] | None = None
        jfn: Callable[..., int] | None = None
        if siphash_era:
            sipfn = prof.function("siphash")
        else:
            jfn = prof.function("jhash")
        self._siphash_fn = sipfn
        self._jhash_fn = jfn
        # (original tuple, zone id, raw u32): the REPLY hash of the next entry made for that
        # tuple object, computed ahead by a batch (Table.packet_many)
        self._pending: tuple[FiveTuple, int, int] | None = None

    @property
    def secret(self) -> bytes | int:
        """The table's ``nf_conntrack_hash_rnd``."""
        return self._secret

    @property
    def net_mix(self) -> int:
        """The table's ``net_hash_mix(net)``."""
        return self._net_mix

    def _sid_raw(self, value: bytes, zone_id: int) -> int:
        """The SID-zone hash (sidkit's reading of the seed; see :meth:`Table.raw_hash`)."""
        if self._siphash_fn is not None:
            key = self._sid_keys.get(zone_id)
            if key is None:
                sec = self._secret
                assert isinstance(sec, bytes)
                bo = self._profile.byteorder
                k0 = int.from_bytes(sec[:8], bo) ^ zone_id  # type: ignore[arg-type]
                k1 = int.from_bytes(sec[8:], bo) ^ self._net_mix  # type: ignore[arg-type]
                key = k0.to_bytes(8, bo) + k1.to_bytes(8, bo)  # type: ignore[arg-type]
                self._sid_keys[zone_id] = key
            return self._siphash_fn(value, key) & _M32
        assert self._jhash_fn is not None and isinstance(self._secret, int)
        return self._jhash_fn(value, (self._secret ^ zone_id ^ self._net_mix) & _M32) & _M32

    def pending_reply(self, original: FiveTuple, zone_id: int) -> int | None:
        """The REPLY hash a batch computed ahead (:meth:`expect_reply`) for an entry whose
        original tuple is the object *original* and whose reply is its plain inverse, or
        None."""
        p = self._pending
        if p is not None and p[0] is original and p[1] == zone_id:
            return p[2]
        return None

    def prime(self, key: FiveTuple, zone_id: int, raw: int) -> None:
        """Cache *raw* on *key* for *zone_id*, as :meth:`hash` does after computing it."""
        tok = self.tokens.get(zone_id)
        if tok is None:
            tok = self.tokens[zone_id] = object()
        object.__setattr__(key, "_ct_ctx", tok)
        object.__setattr__(key, "_ct_hash", raw)

    def expect_reply(self, original: FiveTuple | None, zone_id: int = 0, raw: int = 0) -> None:
        """Announce the REPLY hash of the next entry made for *original* (None: forget it)."""
        self._pending = None if original is None else (original, zone_id, raw)

    def hash_many(
        self, keys: Sequence[FiveTuple], zone_id: int, reply_zone_id: int
    ) -> tuple[list[int], list[int]]:
        """:meth:`hash` of every tuple in *keys* with *zone_id*, and of its inverse with
        *reply_zone_id*, in numpy batches (sidkit.hashing.batch, the era's form bound as the
        scalar one is). Nothing is cached; the caller primes what it needs."""
        import numpy as np  # noqa: PLC0415  (numpy is an optional extra: imported on use)

        from sidkit.hashing import batch  # noqa: PLC0415

        fn = batch.function(self._profile, "hash_conntrack_raw")
        n = len(keys)
        out0 = np.zeros(n, np.uint32)
        out1 = np.zeros(n, np.uint32)
        v4 = np.fromiter((k.src.version == 4 for k in keys), bool, n)
        for mask, six in ((v4, False), (~v4, True)):
            idx = np.flatnonzero(mask)
            if not len(idx):
                continue
            sel = [keys[i] for i in idx.tolist()]
            m = len(sel)
            src = _packed(np, [int(k.src) for k in sel], six)
            dst = _packed(np, [int(k.dst) for k in sel], six)
            sport = np.fromiter((k.sport for k in sel), np.uint64, m)
            dport = np.fromiter((k.dport for k in sel), np.uint64, m)
            proto = np.fromiter((k.protocol for k in sel), np.uint64, m)
            mix, sec = self._net_mix, self._secret
            out0[idx] = fn(src, sport, dst, dport, proto, zone_id, mix, sec)
            out1[idx] = fn(dst, dport, src, sport, proto, reply_zone_id, mix, sec)
        raw0: list[int] = out0.tolist()
        raw1: list[int] = out1.tolist()
        return raw0, raw1

    def hash(self, key: FlowKey, zone_id: int, cache: bool = True) -> int:
        """The raw u32 of *key* hashed with *zone_id*: the cached one when *key* carries
        this table's token for *zone_id*, else computed (and cached unless *cache* is
        False)."""
        tok = self.tokens.get(zone_id)
        if tok is None:
            tok = self.tokens[zone_id] = object()
        if key._ct_ctx is tok:
            return key._ct_hash
        if type(key) is FiveTuple or isinstance(key, FiveTuple):
            h = self._raw(
                key.src,
                key.sport,
                key.dst,
                key.dport,
                key.protocol,
                zone_id,
                self._net_mix,
                self._secret,
            )
        elif isinstance(key, SessionId):
            h = self._sid_raw(key.value, zone_id)
        else:
            raise InputTypeError(
                f"a flow key is a FiveTuple or a SessionId, not {type(key).__name__}",
                code="bad-key",
            )
        if cache:
            object.__setattr__(key, "_ct_ctx", tok)
            object.__setattr__(key, "_ct_hash", h)
        return h
