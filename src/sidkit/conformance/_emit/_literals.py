# Strategy: every C literal the tables contain comes from one of these functions, so what may
# reach the emitted file is decided here: comments and strings are flattened to safe ASCII,
# integers are range-checked against the member they fill (EmitError, never a silent
# truncation), addresses go through inet_pton, and keys become the words the kernel reads
# (key->key[0]), not the little-endian bytes the vector files store. No table layout here.
"""C literals for the emitted tables: comments, strings, u32/u64, bytes, addresses, keys."""

from __future__ import annotations

import socket
import struct
import textwrap
from collections.abc import Sequence

from sidkit.conformance._emit._common import EmitError

__all__ = [
    "be16",
    "be32",
    "c_bytes",
    "c_comment",
    "c_string",
    "comment_lines",
    "fits",
    "hsipkey",
    "in6",
    "ip_bytes",
    "sipkey",
    "u32_array",
    "x32",
    "x64",
]


def c_comment(text: str) -> str:
    """*text* made safe inside a C comment: printable ASCII on one line, no comment
    delimiter, and no trigraph.

    Trigraphs are replaced before anything else in translation phase 1 when a compiler
    follows the standard strictly (``gcc -std=c11``, ``-trigraphs``): ``??/`` is a backslash
    there, and a backslash at the end of a line splices the next line into this one. ``??``
    therefore never reaches the file (``? ?``), nor does ``*/`` or ``/*``.
    """
    flat = " ".join(text.split()).encode("ascii", "backslashreplace").decode()
    flat = "".join(c if " " <= c <= "~" else " " for c in flat)
    while "??" in flat:
        flat = flat.replace("??", "? ?")
    while "*/" in flat or "/*" in flat:
        flat = flat.replace("*/", "* /").replace("/*", "/ *")
    return flat


#: The characters a C string literal may carry as themselves: printable ASCII except the
#: backslash, the double quote, and ``?`` (two of which make a trigraph under -std=c11).
_PLAIN = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"\\", '"', "?"}


def c_string(text: str) -> str:
    """A C string literal that holds *text*'s UTF-8 bytes exactly, whatever they are.

    Every byte that is not plain printable ASCII -- controls, bytes of non-ASCII characters,
    the backslash, the quote and ``?`` -- becomes a three-digit octal escape. Octal, not
    ``\\x``: a hex escape swallows every hex digit that follows it (``"\\x01ab"`` is one
    char), an octal escape stops after three digits. So no vector-file string can end the
    literal early, splice a line (``??/``) or change what the next character means.
    """
    raw = text.encode("utf-8", "surrogatepass")
    return '"' + "".join(chr(b) if chr(b) in _PLAIN else f"\\{b:03o}" for b in raw) + '"'


def comment_lines(paragraphs: Sequence[str], width: int = 92) -> list[str]:
    """Comment lines (`` * text``) of *paragraphs*, wrapped, a `` *`` line between them."""
    out: list[str] = []
    for i, para in enumerate(paragraphs):
        if i:
            out.append(" *")
        out += [
            f" * {line}"
            for line in textwrap.wrap(c_comment(para), width - 3, break_on_hyphens=False)
        ]
    return out


def fits(v: int, bits: int) -> int:
    if not 0 <= v < 1 << bits:
        raise EmitError(f"{v} does not fit the table's u{bits}")
    return v


def x32(v: int) -> str:
    return f"0x{fits(v, 32):08x}"


def x64(v: int) -> str:
    return f"0x{fits(v, 64):016x}ULL"


def c_bytes(b: bytes) -> str:
    """``(const u8 *)"\\x..."``: every byte a hex escape, so no escape runs into the next."""
    if not b:
        return '(const u8 *)""'
    chunks = [
        '"' + "".join(f"\\x{x:02x}" for x in b[i : i + 32]) + '"' for i in range(0, len(b), 32)
    ]
    return "(const u8 *)" + "\n\t\t  ".join(chunks)


def u32_array(words: Sequence[int]) -> str:
    if not words:
        return "NULL"
    return "(const u32[]){ " + ", ".join(x32(w) for w in words) + " }"


def be16(port: int) -> str:
    return f"cpu_to_be16({fits(port, 16)})"


def ip_bytes(addr: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)
    except OSError:
        raise EmitError(f"not an IP address: {addr!r}") from None


def be32(addr: str) -> str:
    raw = ip_bytes(addr)
    if len(raw) != 4:
        raise EmitError(f"expected an IPv4 address, got {addr!r}")
    return f"cpu_to_be32({x32(int.from_bytes(raw, 'big'))})"


def in6(addr: str) -> str:
    raw = ip_bytes(addr)
    if len(raw) != 16:
        raise EmitError(f"expected an IPv6 address, got {addr!r}")
    return "{ .in6_u.u6_addr8 = { " + ", ".join(f"0x{x:02x}" for x in raw) + " } }"


def _words_key(key: bytes, size: int, word: int, suffix: str) -> str:
    """A key struct ``{ .key = { w0, w1 } }`` from the key's memory (little-endian words).

    The vector files give the key as the bytes of the key struct on the little-endian oracle;
    the kernel uses the *words* (``key->key[0]``), so the words are what is portable."""
    if len(key) != size:
        raise EmitError(f"key must be {size} bytes for this table, got {len(key)}")
    fmt = "<2Q" if word == 8 else "<2I"
    w0, w1 = struct.unpack(fmt, key)
    digits = 2 * word
    return f"{{ .key = {{ 0x{w0:0{digits}x}{suffix}, 0x{w1:0{digits}x}{suffix} }} }}"


def sipkey(key: bytes) -> str:
    return _words_key(key, 16, 8, "ULL")


def hsipkey(key: bytes, bits_per_long: int) -> str:
    if bits_per_long == 32:
        return _words_key(key, 8, 4, "UL")
    return _words_key(key, 16, 8, "UL")
