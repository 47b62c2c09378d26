# Receive-side-scaling hashes computed by NICs (and by the kernel's software fallbacks):
# the Toeplitz hash of Microsoft's RSS specification, and the CRC-32 / CRC-32C checksums
# some NICs use instead. Toeplitz is a pure bit-matrix product; it is written here over
# Python big integers (one shift and mask per set input bit). CRCs are not hand-written:
# crcmod (the crcmod-plus distribution, with a C extension) does them well.
"""Toeplitz (Microsoft RSS) hash, CRC-32 and CRC-32C."""

from __future__ import annotations

import crcmod.predefined

from sidkit._errors import InputValueError
from sidkit._validate import BytesLike, as_bytes, check_uint

__all__ = ["MICROSOFT_RSS_KEY", "crc32", "crc32c", "toeplitz"]

MICROSOFT_RSS_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)
"""The 40-byte default RSS key of Microsoft's "Verifying the RSS Hash Calculation"."""

M32 = 0xFFFFFFFF


def toeplitz(data: BytesLike, key: BytesLike = MICROSOFT_RSS_KEY) -> int:
    """The Toeplitz hash of *data* under *key*, as RSS hardware computes it (a u32).

    For each input bit *i* (most significant bit of the first byte first) that is set, the
    result XORs in the 32 key bits starting at key bit *i*. The key must therefore be at
    least ``len(data) + 4`` bytes: a shorter key would silently wrap or zero-fill in other
    implementations; sidkit refuses it. The RSS input for IPv4/TCP is source address,
    destination address, source port, destination port, all in network byte order.
    """
    d = as_bytes(data, "data")
    k = as_bytes(key, "key")
    if len(k) < len(d) + 4:
        raise InputValueError(
            f"a Toeplitz key must be at least len(data) + 4 = {len(d) + 4} bytes, got {len(k)}",
            code="bad-key-size",
        )
    kbits = len(k) * 8
    kint = int.from_bytes(k, "big")
    result = 0
    shift = kbits - 32
    for byte in d:
        if byte:
            for bit in range(8):
                if byte & (0x80 >> bit):
                    result ^= kint >> (shift - bit)
        shift -= 8
    return result & M32


_CRC32 = crcmod.predefined.mkCrcFun("crc-32")
_CRC32C = crcmod.predefined.mkCrcFun("crc-32c")


def crc32(data: BytesLike, crc: int = 0) -> int:
    """CRC-32 (IEEE 802.3, reflected, init and xorout ``0xffffffff``), continuing from *crc*.

    ``crc32(b"123456789") == 0xcbf43926`` (the catalogue check value). Pass a previous
    result as *crc* to continue over split data. Computed by crcmod.
    """
    return int(_CRC32(as_bytes(data, "data"), check_uint(crc, 32, "crc")))


def crc32c(data: BytesLike, crc: int = 0) -> int:
    """CRC-32C (Castagnoli; iSCSI/SCTP), continuing from *crc*.

    ``crc32c(b"123456789") == 0xe3069283``. Pass a previous result as *crc* to continue
    over split data. Computed by crcmod.
    """
    return int(_CRC32C(as_bytes(data, "data"), check_uint(crc, 32, "crc")))
