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
    """

    __slots__ = ("_aes", "_affix", "_left_mask", "_right_mask", "_shift", "half", "length")

    def __init__(self, length: int, layout: ExpandLayout, encrypt: Block) -> None:
        self.length = length
        self.half = half = (length + 1) // 2
        full = (1 << (8 * half)) - 1
        odd = length % 2
        # left_0 "clears its last four bits", right_0 "clears its first four bits" (step 2).
        self._left_mask = full & ~0xF if odd else full
        self._right_mask = full >> 4 if odd else full
        # Bits below left's last octet in the joined ciphertext: the halves overlap by one
        # octet (the split one) when the length is odd.
        self._shift = 8 * (length - half)
        self._affix = expand_affixes(layout, length, half)
        self._aes = encrypt

    def _round(self, pass_: int, value: int) -> int:
        """truncate(AES_ECB(key, expand(length, pass, value)), half_len) as an int."""
        half = self.half
        pre, post = self._affix[2 * pass_ - 2], self._affix[2 * pass_ - 1]
        out = self._aes(pre + value.to_bytes(half, "big") + post)
        return int.from_bytes(out[:half], "big")

    def encrypt(self, plaintext: bytes) -> bytes:
        """Steps 1-12: *plaintext* (server ID || nonce) to the ciphertext, same length."""
        half, lm, rm = self.half, self._left_mask, self._right_mask
        left = int.from_bytes(plaintext[:half], "big") & lm
        right = int.from_bytes(plaintext[self.length - half :], "big") & rm
        right = (right ^ self._round(1, left)) & rm
        left = (left ^ self._round(2, right)) & lm
        right = (right ^ self._round(3, left)) & rm
        left = (left ^ self._round(4, right)) & lm
        return ((left << self._shift) | right).to_bytes(self.length, "big")

    def _split(self, ciphertext: bytes) -> tuple[int, int]:
        value = int.from_bytes(ciphertext[: self.length], "big")
        left = (value >> self._shift) & self._left_mask
        right = value & ((1 << (8 * self.half)) - 1) & self._right_mask
        return left, right

    def decrypt_left(self, ciphertext: bytes) -> int:
        """The three decryption passes of section 5.5.2: ``left_0`` as an int of *half* octets.

        Enough when the server ID lies wholly in ``left_0`` (nonce length >= server ID
        length); the load balancer then never computes the nonce.
        """
        lm, rm = self._left_mask, self._right_mask
        left, right = self._split(ciphertext)
        left = (left ^ self._round(4, right)) & lm
        # The draft's pseudocode says clear_first_bits(left_1, 4) here; it must be right_1
        # (the half just computed), as steps 5 and 9 of the encryption and quiche both do.
        right = (right ^ self._round(3, left)) & rm
        return (left ^ self._round(2, right)) & lm

    def decrypt(self, ciphertext: bytes) -> bytes:
        """All four passes backwards: the whole plaintext (server ID || nonce)."""
        lm, rm = self._left_mask, self._right_mask
        left, right = self._split(ciphertext)
        left = (left ^ self._round(4, right)) & lm
        right = (right ^ self._round(3, left)) & rm
        left = (left ^ self._round(2, right)) & lm
        right = (right ^ self._round(1, left)) & rm
        return ((left << self._shift) | right).to_bytes(self.length, "big")
