# The block-cipher arithmetic of QUIC-LB (draft-ietf-quic-load-balancers-21, section 5.4 "Server
# Actions" and 5.5 "Load Balancer Actions"): the single-pass special case and the four-pass
# Feistel network whose round function is AES-128-ECB. AES itself always comes from
# `cryptography` (never hand-rolled); this module only arranges bytes around the block
# function it is handed, so the Feistel logic is a pure function of (layout, lengths, AES).
#
# Two layouts of expand() exist in the wild and both are here: drafts 19-21 put the half-block
# first and (length, pass) last; drafts <= 18 put (length, pass) first. google/quiche (and so
# Envoy's quic_lb) still implement the older one. The halves are handled as Python ints: a half
# is at most 10 bytes, XOR on ints is one operation, and the odd-length nibble rules become two
# masks.
"""QUIC-LB AES-128-ECB single-pass and four-pass ciphers (private)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ExpandLayout = Literal["draft-21", "draft-18"]
"""Where expand() puts the half-block: ``"draft-21"`` (drafts 19-21) or ``"draft-18"`` (<= 18)."""

EXPAND_LAYOUTS: tuple[ExpandLayout, ...] = ("draft-21", "draft-18")

BLOCK = 16

Block = Callable[[bytes], bytes]


def aes_ecb(key: bytes) -> tuple[Block, Block]:
    """Return (encrypt, decrypt) single-block AES-128-ECB functions for *key*.

    ECB has no chaining state, so one OpenSSL context per direction serves every block; making
    a new context per call would cost more than the AES itself.
    """
    cipher = Cipher(algorithms.AES(key), modes.ECB())
    return cipher.encryptor().update, cipher.decryptor().update


def expand_affixes(layout: ExpandLayout, length: int, half: int) -> tuple[bytes, ...]:
    """The bytes that go before and after the half-block in expand(length, pass, half-block).

    Returns ``(prefix_1, suffix_1, prefix_2, suffix_2, ..., prefix_4, suffix_4)``.

    draft-21, section 5.4.2.2::

        ExpandResult { input_bytes(...), ZeroPad(...), length(8), pass(8) }

    so ``expand(0x06, 0x02, 0xaaba3c) = 0xaaba3c00000000000000000000000602``. Drafts <= 18 (as
    google/quiche's ``LoadBalancerConfig::InitializeFourPass`` builds it) put ``length`` and
    ``pass`` in octets 0 and 1 and the half-block from octet 2 on, zero-padded.
    """
    pad = bytes(BLOCK - 2 - half)
    out: list[bytes] = []
    for p in (1, 2, 3, 4):
        if layout == "draft-21":
            out += [b"", pad + bytes((length, p))]
        else:
            out += [bytes((length, p)), pad]
    return tuple(out)


class FourPass:
    """The four-pass Feistel network of draft-21 section 5.4.2 for one plaintext length.

    *length* is ``server_id_length + nonce_length`` (5..19, never 16: 16 octets use the single
    pass). For an odd length the middle octet is split between the halves: ``left_0`` keeps its
    high nibble, ``right_0`` its low nibble, and every pass clears the other nibble again
    (steps 2, 5, 7, 9, 11), so each half carries exactly ``4 * length`` bits between them.

    The rounds are written out inline (no per-round method call): this is the load balancer's
    per-packet path.
    """

    __slots__ = ("_aes", "_lm", "_post", "_pre", "_rm", "_shift", "half", "length")

    def __init__(self, length: int, layout: ExpandLayout, encrypt: Block) -> None:
        self.length = length
        self.half = half = (length + 1) // 2
        full = (1 << (8 * half)) - 1
        odd = length % 2
        # left_0 "clears its last four bits", right_0 "clears its first four bits" (step 2).
        self._lm = full & ~0xF if odd else full
        self._rm = full >> 4 if odd else full
        # Bits below left's last octet in the joined block: the halves overlap by one octet
        # (the split one) when the length is odd.
        self._shift = 8 * (length - half)
        affix = expand_affixes(layout, length, half)
        # Indexed by pass number; index 0 unused.
        self._pre = (b"", *affix[0::2])
        self._post = (b"", *affix[1::2])
        self._aes = encrypt

    def _round(self, pass_: int, value: int) -> int:
        """truncate(AES_ECB(key, expand(length, pass, value)), half_len) as an int."""
        half = self.half
        block = self._pre[pass_] + value.to_bytes(half, "big") + self._post[pass_]
        return int.from_bytes(self._aes(block)[:half], "big")

    def encrypt(self, plaintext: bytes) -> bytes:
        """Steps 1-12: *plaintext* (server ID || nonce) to the ciphertext, same length."""
        aes, half, pre, post, lm, rm = (
            self._aes, self.half, self._pre, self._post, self._lm, self._rm
        )  # fmt: skip
        value = int.from_bytes(plaintext, "big")
        left = (value >> self._shift) & lm
        right = value & rm
        out = aes(pre[1] + left.to_bytes(half, "big") + post[1])
        right = (right ^ int.from_bytes(out[:half], "big")) & rm
        out = aes(pre[2] + right.to_bytes(half, "big") + post[2])
        left = (left ^ int.from_bytes(out[:half], "big")) & lm
        out = aes(pre[3] + left.to_bytes(half, "big") + post[3])
        right = (right ^ int.from_bytes(out[:half], "big")) & rm
        out = aes(pre[4] + right.to_bytes(half, "big") + post[4])
        left = (left ^ int.from_bytes(out[:half], "big")) & lm
        return ((left << self._shift) | right).to_bytes(self.length, "big")

    def decrypt_left(self, ciphertext: bytes) -> int:
        """The three decryption passes of section 5.5.2: ``left_0`` as an int of *half* octets.

        Enough when the server ID lies wholly in ``left_0`` (nonce length >= server ID
        length); the load balancer then never computes the nonce. *ciphertext* is exactly
        *length* octets.
        """
        aes, half, pre, post, lm, rm = (
            self._aes, self.half, self._pre, self._post, self._lm, self._rm
        )  # fmt: skip
        value = int.from_bytes(ciphertext, "big")
        left = (value >> self._shift) & lm
        right = value & rm
        out = aes(pre[4] + right.to_bytes(half, "big") + post[4])
        left = (left ^ int.from_bytes(out[:half], "big")) & lm
        out = aes(pre[3] + left.to_bytes(half, "big") + post[3])
        # The draft's pseudocode says clear_first_bits(left_1, 4) here; it must be right_1
        # (the half just computed), as steps 5 and 9 of the encryption and quiche both do.
        right = (right ^ int.from_bytes(out[:half], "big")) & rm
        out = aes(pre[2] + right.to_bytes(half, "big") + post[2])
        return (left ^ int.from_bytes(out[:half], "big")) & lm

    def decrypt(self, ciphertext: bytes) -> bytes:
        """All four passes backwards: the whole plaintext (server ID || nonce)."""
        aes, half, pre, post, lm, rm = (
            self._aes, self.half, self._pre, self._post, self._lm, self._rm
        )  # fmt: skip
        value = int.from_bytes(ciphertext, "big")
        left = (value >> self._shift) & lm
        right = value & rm
        out = aes(pre[4] + right.to_bytes(half, "big") + post[4])
        left = (left ^ int.from_bytes(out[:half], "big")) & lm
        out = aes(pre[3] + left.to_bytes(half, "big") + post[3])
        right = (right ^ int.from_bytes(out[:half], "big")) & rm
        out = aes(pre[2] + right.to_bytes(half, "big") + post[2])
        left = (left ^ int.from_bytes(out[:half], "big")) & lm
        out = aes(pre[1] + left.to_bytes(half, "big") + post[1])
        right = (right ^ int.from_bytes(out[:half], "big")) & rm
        return ((left << self._shift) | right).to_bytes(self.length, "big")
