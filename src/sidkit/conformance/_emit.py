# Turns selected conformance vector groups into something a kernel or eBPF author can compile:
# the same JSON schema as the vector files, a self-contained C table, or a KUnit suite. The
# expected values are copied from the vector files unchanged -- the emitter never computes a
# hash, so an emitted table carries the authority of the oracle its group names, not sidkit's.
#
# A C table must call something a kernel test can call. Most functions are called as they
# are (jhash*, hash_32/64, reciprocal_scale, siphash*, __ipv6_addr_jhash, the portaddr hashes,
# flow_hash_from_keys_seed). The ehash functions read boot-time random secrets no test can set,
# so their tables call the header inlines those functions are made of (__inet_ehashfn,
# __inet6_ehashfn + __ipv6_addr_jhash) with the vector's initval, and say so. Every call goes
# through an overridable SIDKIT_CALL_<fn>() macro, so the same table can check a BPF port or
# the real function inside its own file. Functions nothing outside their .c file can call with
# the vectors' inputs (hash_conntrack_raw), removed ones and non-kernel ones are refused with
# the reason. Tables whose results depend on byte order or BITS_PER_LONG compile only where
# they hold.
"""Emit conformance vectors as JSON, a C table or a KUnit suite (private; ``sidkit vectors``)."""

from __future__ import annotations

import json
import socket
import struct
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from sidkit import __version__
from sidkit._errors import InputValueError
from sidkit.conformance._vectors import TestGroup, VectorFile, decode_args
from sidkit.kernel import profile

__all__ = [
    "EMITTABLE",
    "NOT_EMITTABLE",
    "EmitError",
    "Format",
    "Selection",
    "emit",
    "emit_c",
    "emit_json",
    "limit_tests",
]

Format = Literal["json", "c", "kunit"]
Selection = Sequence[tuple[VectorFile, TestGroup]]


class EmitError(InputValueError):
    """The selected vectors cannot be emitted in the requested format (the message says why)."""

    code = "not-emittable"


# --------------------------------------------------------------------------------------------
# C literals
# --------------------------------------------------------------------------------------------


def _comment(text: str) -> str:
    """*text* made safe inside a C comment (ASCII, one line, no comment terminator)."""
    flat = " ".join(text.split()).encode("ascii", "backslashreplace").decode()
    return flat.replace("*/", "* /").replace("/*", "/ *")


def _cstr(text: str) -> str:
    """A C string literal of printable ASCII *text*."""
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '"' + safe.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrap(paragraphs: Sequence[str], width: int = 92) -> list[str]:
    """Comment lines (`` * text``) of *paragraphs*, wrapped, a `` *`` line between them."""
    out: list[str] = []
    for i, para in enumerate(paragraphs):
        if i:
            out.append(" *")
        out += [
            f" * {line}"
            for line in textwrap.wrap(_comment(para), width - 3, break_on_hyphens=False)
        ]
    return out


def _fits(v: int, bits: int) -> int:
    if not 0 <= v < 1 << bits:
        raise EmitError(f"{v} does not fit the table's u{bits}")
    return v


def _x32(v: int) -> str:
    return f"0x{_fits(v, 32):08x}"


def _x64(v: int) -> str:
    return f"0x{_fits(v, 64):016x}ULL"


def _bytes(b: bytes) -> str:
    """``(const u8 *)"\\x..."``: every byte a hex escape, so no escape runs into the next."""
    if not b:
        return '(const u8 *)""'
    chunks = [
        '"' + "".join(f"\\x{x:02x}" for x in b[i : i + 32]) + '"' for i in range(0, len(b), 32)
    ]
    return "(const u8 *)" + "\n\t\t  ".join(chunks)


def _u32_array(words: Sequence[int]) -> str:
    if not words:
        return "NULL"
    return "(const u32[]){ " + ", ".join(_x32(w) for w in words) + " }"


def _be16(port: int) -> str:
    return f"cpu_to_be16({_fits(port, 16)})"


def _ip(addr: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)
    except OSError:
        raise EmitError(f"not an IP address: {addr!r}") from None


def _be32(addr: str) -> str:
    raw = _ip(addr)
    if len(raw) != 4:
        raise EmitError(f"expected an IPv4 address, got {addr!r}")
    return f"cpu_to_be32({_x32(int.from_bytes(raw, 'big'))})"


def _in6(addr: str) -> str:
    raw = _ip(addr)
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


def _sipkey(key: bytes) -> str:
    return _words_key(key, 16, 8, "ULL")


def _hsipkey(key: bytes, bits_per_long: int) -> str:
    if bits_per_long == 32:
        return _words_key(key, 8, 4, "UL")
    return _words_key(key, 16, 8, "UL")


# --------------------------------------------------------------------------------------------
# What each function's table looks like
# --------------------------------------------------------------------------------------------


@attrs.frozen
class _CSpec:
    """How one kernel function's vectors become a C table and a call.

    ``fields`` are the C members (after ``group`` and ``tc_id``, before ``expected``);
    ``values`` renders one test's decoded args into their initialisers, in the same order.
    ``call`` is the default body of ``SIDKIT_CALL_<fn>(<call_args>)``; ``prologue`` holds the
    statements of ``sidkit_run_<fn>()`` that build what the call needs.
    """

    function: str
    args: frozenset[str]
    fields: tuple[str, ...]
    values: Callable[[Mapping[str, Any]], list[str]]
    call: str
    result: Literal["u32", "u64"]
    includes: tuple[str, ...]
    source: str
    byte_order: bool = False
    word_size: bool = False
    variants: frozenset[str] | None = None
    prologue: tuple[str, ...] = ()
    call_args: tuple[str, ...] = ("v",)
    call_values: tuple[str, ...] = ("v",)
    note: str = ""


_JH = ("linux/jhash.h",)
_SIP = ("linux/siphash.h",)
_LE_NOTE = "Results depend on the byte order; the tables hold the little-endian ones."


def _words_spec(name: str, count: int) -> _CSpec:
    names = ["a", "b", "c"][:count]
    return _CSpec(
        name,
        frozenset([*names, "initval"]),
        (*(f"u32 {n}" for n in names), "u32 initval"),
        lambda a: [*(_x32(a[n]) for n in names), _x32(a["initval"])],
        f"{name}({', '.join(f'(v)->{n}' for n in names)}, (v)->initval)",
        "u32",
        _JH,
        f"include/linux/jhash.h: u32 {name}({', '.join(f'u32 {n}' for n in names)}, u32 initval)",
    )


def _sip_words_spec(name: str, names: Sequence[str], width: int) -> _CSpec:
    x = _x64 if width == 64 else _x32
    return _CSpec(
        name,
        frozenset([*names, "key"]),
        (*(f"u{width} {n}" for n in names), "siphash_key_t key"),
        lambda a: [*(x(a[n]) for n in names), _sipkey(a["key"])],
        f"{name}({', '.join(f'(v)->{n}' for n in names)}, &(v)->key)",
        "u64",
        _SIP,
        f"include/linux/siphash.h, lib/siphash.c: u64 {name}("
        + ", ".join(f"const u{width} {n}" for n in names)
        + ", const siphash_key_t *key)",
    )


def _ehash_values(v6: bool) -> Callable[[Mapping[str, Any]], list[str]]:
    addr = _in6 if v6 else _be32

    def values(a: Mapping[str, Any]) -> list[str]:
        out = [addr(a["laddr"]), str(_fits(a["lport"], 16)), addr(a["faddr"]), _be16(a["fport"])]
        out.append(_x32(a["initval"]))
        if v6:
            out.append(_x32(a["ipv6_hash_secret"]))
        return out

    return values


_V4_EHASH_FIELDS = ("__be32 laddr", "u16 lport", "__be32 faddr", "__be16 fport", "u32 initval")
_V6_EHASH_FIELDS = (
    "struct in6_addr laddr",
    "u16 lport",
    "struct in6_addr faddr",
    "__be16 fport",
    "u32 initval",
    "u32 ipv6_hash_secret",
)
_V4_CALL = "__inet_ehashfn((v)->laddr, (v)->lport, (v)->faddr, (v)->fport, (v)->initval)"
_V6_CALL = (
    "__inet6_ehashfn((__force u32)(v)->laddr.s6_addr32[3], (v)->lport, "
    "__ipv6_addr_jhash(&(v)->faddr, (v)->ipv6_hash_secret), (v)->fport, (v)->initval)"
)
_EHASH_ARGS = frozenset(["laddr", "lport", "faddr", "fport", "initval"])


def _v4_ehash(name: str, variant: str, where: str, secret: str) -> _CSpec:
    return _CSpec(
        name,
        _EHASH_ARGS,
        _V4_EHASH_FIELDS,
        _ehash_values(False),
        _V4_CALL,
        "u32",
        ("net/inet_sock.h",),
        f"{where}: {name}(net, laddr, lport, faddr, fport) is __inet_ehashfn(laddr, lport, "
        f"faddr, fport, {secret} + net_hash_mix(net)) (include/net/inet_sock.h)",
        byte_order=True,
        variants=frozenset([variant]),
        note=f"The secret is random per boot, so the table calls __inet_ehashfn() with the "
        f"vector's initval, which stands for {secret} + net_hash_mix(net).",
    )


def _v6_ehash(name: str, variant: str, where: str, secrets: str) -> _CSpec:
    return _CSpec(
        name,
        _EHASH_ARGS | {"ipv6_hash_secret"},
        _V6_EHASH_FIELDS,
        _ehash_values(True),
        _V6_CALL,
        "u32",
        ("net/inet6_hashtables.h", "net/ipv6.h"),
        f"{where}: {name}(net, laddr, lport, faddr, fport) is __inet6_ehashfn(laddr "
        "s6_addr32[3], lport, __ipv6_addr_jhash(faddr, ipv6_hash_secret), fport, initval) "
        "(include/net/inet6_hashtables.h, include/net/ipv6.h)",
        byte_order=True,
        variants=frozenset([variant]),
        note=f"The secrets are random per boot, so the table calls the inlines {name}() is "
        f"made of; initval and ipv6_hash_secret stand for {secrets}. In the kernel, "
        "__inet6_ehashfn() exists only with CONFIG_IPV6.",
    )


_FLOW_PROLOGUE = (
    "struct flow_keys keys;",
    "",
    "memset(&keys, 0, sizeof(keys));",
    "if (v->ipv6) {",
    "\tkeys.control.addr_type = FLOW_DISSECTOR_KEY_IPV6_ADDRS;",
    "\tkeys.basic.n_proto = htons(ETH_P_IPV6);",
    "\tkeys.addrs.v6addrs.src = v->src6;",
    "\tkeys.addrs.v6addrs.dst = v->dst6;",
    "} else {",
    "\tkeys.control.addr_type = FLOW_DISSECTOR_KEY_IPV4_ADDRS;",
    "\tkeys.basic.n_proto = htons(ETH_P_IP);",
    "\tkeys.addrs.v4addrs.src = v->src4;",
    "\tkeys.addrs.v4addrs.dst = v->dst4;",
    "}",
    "keys.ports.src = v->sport;",
    "keys.ports.dst = v->dport;",
    "keys.basic.ip_proto = v->ip_proto;",
)
_ZERO4 = "cpu_to_be32(0x00000000)"
_ZERO6 = "{ .in6_u.u6_addr8 = { 0 } }"


def _flow_values(a: Mapping[str, Any]) -> list[str]:
    src, dst = _ip(a["src"]), _ip(a["dst"])
    if len(src) != len(dst):
        raise EmitError("flow_hash_from_keys: src and dst of different families")
    v6 = len(src) == 16
    return [
        "1" if v6 else "0",
        _ZERO4 if v6 else _be32(a["src"]),
        _ZERO4 if v6 else _be32(a["dst"]),
        _in6(a["src"]) if v6 else _ZERO6,
        _in6(a["dst"]) if v6 else _ZERO6,
        _be16(a["sport"]),
        _be16(a["dport"]),
        str(_fits(a["ip_proto"], 8)),
        _sipkey(a["key"]),
    ]


def _portaddr(name: str, v6: bool) -> _CSpec:
    addr = "&(v)->addr" if v6 else "(v)->addr"
    return _CSpec(
        name,
        frozenset(["net_mix", "addr", "port"]),
        ("u32 net_mix", "struct in6_addr addr" if v6 else "__be32 addr", "unsigned int port"),
        lambda a: [
            _x32(a["net_mix"]),
            (_in6 if v6 else _be32)(a["addr"]),
            str(_fits(a["port"], 16)),
        ],
        f"{name}(net, {addr}, (v)->port)",
        "u32",
        ("net/net_namespace.h", "net/ipv6.h" if v6 else "net/ip.h"),
        f"include/net/{'ipv6' if v6 else 'ip'}.h: u32 {name}(const struct net *net, "
        f"{'const struct in6_addr *addr6' if v6 else '__be32 saddr'}, unsigned int port)",
        byte_order=True,
        prologue=("sidkit_net_scratch.hash_mix = v->net_mix;",),
        call_args=("v", "net"),
        call_values=("v", "&sidkit_net_scratch"),
        note="net_hash_mix(net) reads net->hash_mix (v5.2+): the table sets it on a scratch "
        "struct net (sidkit_net_scratch) before each call.",
    )


_SPECS: tuple[_CSpec, ...] = (
    _CSpec(
        "jhash",
        frozenset(["key", "initval"]),
        ("const u8 *key", "u32 length", "u32 initval"),
        lambda a: [_bytes(a["key"]), str(len(a["key"])), _x32(a["initval"])],
        "jhash((v)->key, (v)->length, (v)->initval)",
        "u32",
        _JH,
        "include/linux/jhash.h: u32 jhash(const void *key, u32 length, u32 initval)",
        byte_order=True,
        note="jhash() reads the key as CPU-endian 32-bit words. " + _LE_NOTE,
    ),
    _CSpec(
        "jhash2",
        frozenset(["words", "initval"]),
        ("const u32 *k", "u32 length", "u32 initval"),
        lambda a: [_u32_array(a["words"]), str(len(a["words"])), _x32(a["initval"])],
        "jhash2((v)->k, (v)->length, (v)->initval)",
        "u32",
        _JH,
        "include/linux/jhash.h: u32 jhash2(const u32 *k, u32 length, u32 initval)",
    ),
    _words_spec("jhash_1word", 1),
    _words_spec("jhash_2words", 2),
    _words_spec("jhash_3words", 3),
    _CSpec(
        "hash_32",
        frozenset(["val", "bits"]),
        ("u32 val", "unsigned int bits"),
        lambda a: [_x32(a["val"]), str(_fits(a["bits"], 6))],
        "hash_32((v)->val, (v)->bits)",
        "u32",
        ("linux/hash.h",),
        "include/linux/hash.h: u32 hash_32(u32 val, unsigned int bits)",
    ),
    _CSpec(
        "hash_64",
        frozenset(["val", "bits"]),
        ("u64 val", "unsigned int bits"),
        lambda a: [_x64(a["val"]), str(_fits(a["bits"], 7))],
        "hash_64((v)->val, (v)->bits)",
        "u32",
        ("linux/hash.h",),
        "include/linux/hash.h: u32 hash_64(u64 val, unsigned int bits)",
        word_size=True,
        note="hash_64_generic() has a BITS_PER_LONG == 32 branch, so each group is compiled "
        "only for the word size its oracle was built with.",
    ),
    _CSpec(
        "reciprocal_scale",
        frozenset(["val", "ep_ro"]),
        ("u32 val", "u32 ep_ro"),
        lambda a: [_x32(a["val"]), _x32(a["ep_ro"])],
        "reciprocal_scale((v)->val, (v)->ep_ro)",
        "u32",
        ("linux/kernel.h",),
        "include/linux/math.h (include/linux/kernel.h before v5.11): "
        "u32 reciprocal_scale(u32 val, u32 ep_ro)",
    ),
    _CSpec(
        "siphash",
        frozenset(["data", "key"]),
        ("const u8 *data", "size_t len", "siphash_key_t key"),
        lambda a: [_bytes(a["data"]), str(len(a["data"])), _sipkey(a["key"])],
        "siphash((v)->data, (v)->len, &(v)->key)",
        "u64",
        _SIP,
        "include/linux/siphash.h, lib/siphash.c: "
        "u64 siphash(const void *data, size_t len, const siphash_key_t *key)",
    ),
    _sip_words_spec("siphash_1u64", ["first"], 64),
    _sip_words_spec("siphash_2u64", ["first", "second"], 64),
    _sip_words_spec("siphash_3u64", ["first", "second", "third"], 64),
    _sip_words_spec("siphash_4u64", ["first", "second", "third", "forth"], 64),
    _sip_words_spec("siphash_1u32", ["first"], 32),
    _sip_words_spec("siphash_3u32", ["first", "second", "third"], 32),
    _CSpec(
        "hsiphash",
        frozenset(["data", "key"]),
        ("const u8 *data", "size_t len", "hsiphash_key_t key"),
        lambda a: [
            _bytes(a["data"]),
            str(len(a["data"])),
            _hsipkey(a["key"], a.get("bits_per_long", 64)),
        ],
        "hsiphash((v)->data, (v)->len, &(v)->key)",
        "u32",
        _SIP,
        "include/linux/siphash.h, lib/siphash.c: "
        "u32 hsiphash(const void *data, size_t len, const hsiphash_key_t *key)",
        word_size=True,
        note="hsiphash is SipHash-1-3 when BITS_PER_LONG == 64 and HalfSipHash-1-3 (8-byte "
        "key) when it is 32, so each group is compiled only for its own word size.",
    ),
    _v4_ehash("udp_ehashfn", "jhash_3words", "net/ipv4/udp.c (v4.1+)", "udp_ehash_secret"),
    _v4_ehash(
        "inet_ehashfn",
        "lport<<16",
        "net/ipv4/inet_hashtables.c (v3.13-v6.14)",
        "inet_ehash_secret",
    ),
    _v6_ehash(
        "udp6_ehashfn",
        "jhash_3words",
        "net/ipv6/udp.c",
        "udp6_ehash_secret + net_hash_mix(net) and udp_ipv6_hash_secret",
    ),
    _v6_ehash(
        "inet6_ehashfn",
        "lport<<16",
        "net/ipv6/inet6_hashtables.c (v3.13-v6.14)",
        "inet6_ehash_secret + net_hash_mix(net) and the address secret "
        "(ipv6_hash_secret, tcp_ipv6_hash_secret in 6.12)",
    ),
    _CSpec(
        "ipv6_addr_jhash",
        frozenset(["addr", "initval"]),
        ("struct in6_addr addr", "u32 initval"),
        lambda a: [_in6(a["addr"]), _x32(a["initval"])],
        "__ipv6_addr_jhash(&(v)->addr, (v)->initval)",
        "u32",
        ("net/ipv6.h",),
        "include/net/ipv6.h: u32 __ipv6_addr_jhash(const struct in6_addr *a, const u32 initval)",
        byte_order=True,
        note="__ipv6_addr_jhash() hashes s6_addr32[] as CPU-endian words. " + _LE_NOTE,
    ),
    _portaddr("ipv4_portaddr_hash", False),
    _portaddr("ipv6_portaddr_hash", True),
    _CSpec(
        "flow_hash_from_keys",
        frozenset(["src", "sport", "dst", "dport", "ip_proto", "key"]),
        (
            "u8 ipv6",
            "__be32 src4",
            "__be32 dst4",
            "struct in6_addr src6",
            "struct in6_addr dst6",
            "__be16 sport",
            "__be16 dport",
            "u8 ip_proto",
            "siphash_key_t key",
        ),
        _flow_values,
        "flow_hash_from_keys_seed(keys, &(v)->key)",
        "u32",
        ("linux/string.h", "linux/if_ether.h", "net/flow_dissector.h"),
        "net/core/flow_dissector.c: u32 flow_hash_from_keys_seed(struct flow_keys *keys, "
        "const siphash_key_t *keyval) (exported in 6.12, absent from 6.1), which is "
        "__flow_hash_from_keys(keys, keyval)",
        byte_order=True,
        prologue=_FLOW_PROLOGUE,
        call_args=("v", "keys"),
        call_values=("v", "&keys"),
        note="struct flow_keys is filled as the oracle filled it (zeroed; addr_type, n_proto, "
        "ip_proto, ports, addresses), and its memory is hashed, so the results depend on the "
        "byte order. Before flow_hash_from_keys_seed() existed, define "
        "SIDKIT_CALL_flow_hash_from_keys(v, keys) to call __flow_hash_from_keys() inside "
        "net/core/flow_dissector.c.",
    ),
)

EMITTABLE: Mapping[str, _CSpec] = {s.function: s for s in _SPECS}
"""Functions whose vectors can be emitted as a C table or a KUnit suite."""

NOT_EMITTABLE: Mapping[str, str] = {
    "hash_conntrack_raw": "it is static in net/netfilter/nf_conntrack_core.c and keyed by the "
    "boot-time random nf_conntrack_hash_rnd, so no test outside that file can pass it the "
    "vectors' secret",
    "next_pseudo_random32": "it was removed in v6.15 (include/linux/prandom.h)",
    "toeplitz": "it is not a kernel function (the NIC computes RSS; the oracle is the userspace "
    "selftest tools/testing/selftests/net/toeplitz.c)",
}
"""Functions with vectors that cannot be emitted as C, and why (JSON works for all)."""


def _why_not(function: str) -> str:
    reason = NOT_EMITTABLE.get(function, "the C emitter has no table layout for it")
    return (
        f"{function} cannot be emitted as C or KUnit: {reason}; use --format json "
        f"(C-emittable: {', '.join(EMITTABLE)})"
    )


# --------------------------------------------------------------------------------------------
# Selection helpers
# --------------------------------------------------------------------------------------------


def limit_tests(selection: Selection, limit: int | None) -> list[tuple[VectorFile, TestGroup]]:
    """The same groups with at most *limit* tests each (the first ones: edge cases first)."""
    if limit is None:
        return list(selection)
    if limit < 1:
        raise InputValueError(f"--limit must be at least 1, got {limit}", code="bad-limit")
    return [(f, attrs.evolve(g, tests=g.tests[:limit])) for f, g in selection]


def _group_label(f: VectorFile, g: TestGroup) -> str:
    src = g.source
    version = f" {src['version']}" if src.get("version") else ""
    return (
        f"{f.path.name}: {g.function}, kernel {g.kernel or '-'}, {g.oracle} {src['name']}{version}"
    )


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def emit_json(selection: Selection, *, command: str) -> str:
    """The selected groups as one vector file (valid under hash_vectors.schema.json).

    tcIds are kept when they are unique across the selection; otherwise every test is
    renumbered and its comment names the file and tcId it came from.
    """
    if not any(g.tests for _, g in selection):
        raise EmitError("no vectors selected", code="nothing-selected")
    ids = [t.tc_id for _, g in selection for t in g.tests]
    renumber = len(ids) != len(set(ids))
    files = list({f.path: f for f, _ in selection}.values())
    algorithms = sorted({f.algorithm for f in files})
    header = [
        f"Selected by `{command}` (sidkit {__version__}) from "
        f"{', '.join(f.path.name for f in files)}. Each group's source names its oracle; "
        "the results are the files' own, unchanged.",
    ]
    if renumber:
        header.append("tcIds were renumbered; each comment names the file and tcId of origin.")
    for f in files:
        header += [f"{f.path.name}: {line}" for line in f.header]
    notes: dict[str, str] = {}
    used = {flag for _, g in selection for t in g.tests for flag in t.flags}
    for f in files:
        for flag, text in f.notes.items():
            if flag in used:
                notes.setdefault(flag, text)
    groups: list[dict[str, Any]] = []
    n = 0
    for f, g in selection:
        if not g.tests:
            continue
        tests = []
        for t in g.tests:
            n += 1
            comment = t.comment
            if renumber:
                comment = f"{comment} ({f.path.name} tcId {t.tc_id})".lstrip()
            tests.append(
                {
                    "tcId": n if renumber else t.tc_id,
                    "comment": comment,
                    "flags": list(t.flags),
                    "args": dict(t.args),
                    "result": t.result,
                }
            )
        group: dict[str, Any] = {"type": "HashTest", "function": g.function, "kernel": g.kernel}
        if g.comment:
            group["comment"] = g.comment
        group |= {"source": dict(g.source), "argTypes": dict(g.arg_types), "tests": tests}
        groups.append(group)
    doc = {
        "algorithm": "+".join(algorithms),
        "schema": "hash_vectors.schema.json",
        "generator": command,
        "header": header,
        "notes": notes,
        "numberOfTests": n,
        "testGroups": groups,
    }
    return _render_json(doc)


def _render_json(doc: Mapping[str, Any]) -> str:
    """Indented JSON with one test per line, like the committed files."""
    dump = json.dumps
    lines = ["{"]
    for k, v in doc.items():
        if k == "testGroups":
            continue
        if k == "header":
            lines.append('  "header": [')
            lines.append(",\n".join(f"    {dump(x)}" for x in v))
            lines.append("  ],")
        else:
            lines.append(f"  {dump(k)}: {dump(v)},")
    lines.append('  "testGroups": [')
    rendered = []
    for g in doc["testGroups"]:
        part = ["    {"]
        part += [f"      {dump(k)}: {dump(v)}," for k, v in g.items() if k != "tests"]
        part.append('      "tests": [')
        part.append(",\n".join(f"        {dump(t)}" for t in g["tests"]))
        part.append("      ]")
        part.append("    }")
        rendered.append("\n".join(part))
    lines.append(",\n".join(rendered))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# C and KUnit
# --------------------------------------------------------------------------------------------

_LE = "defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__"


@attrs.frozen
class _Table:
    spec: _CSpec
    groups: tuple[tuple[VectorFile, TestGroup, int], ...]  # (file, group, bits_per_long)


def _bits_per_long(spec: _CSpec, g: TestGroup) -> int | None:
    """The word size a group holds for (None: any); refuses a group that mixes them."""
    seen: set[int] = set()
    for t in g.tests:
        value = t.args.get("bits_per_long", 64)
        if type(value) is not int or value not in (32, 64):
            raise EmitError(f"{g.function}: bits_per_long must be 32 or 64, got {value!r}")
        seen.add(value)
    if len(seen) != 1:
        raise EmitError(f"{g.function} group of kernel {g.kernel} mixes word sizes {seen}")
    bpl = seen.pop()
    if bpl == 32 and not spec.word_size:
        raise EmitError(f"{g.function}: a bits_per_long = 32 group, but the table is word-free")
    return bpl if spec.word_size else None


def _tables(selection: Selection, functions: Sequence[str]) -> tuple[list[_Table], list[str]]:
    """Group the selection by emittable function; return the tables and the skipped names."""
    for fn in functions:
        if fn not in EMITTABLE:
            raise EmitError(_why_not(fn))
    order: dict[str, list[tuple[VectorFile, TestGroup, int]]] = {}
    skipped: list[str] = []
    for f, g in selection:
        if not g.tests:
            continue
        spec = EMITTABLE.get(g.function)
        if spec is None:
            if g.function not in skipped:
                skipped.append(g.function)
            continue
        if spec.variants is not None:
            variant = profile(g.kernel).era(g.function).variant
            if variant not in spec.variants:
                raise EmitError(
                    f"{g.function} vectors of kernel {g.kernel} use its {variant!r} form; the C "
                    f"table has a call only for {', '.join(sorted(spec.variants))} (select "
                    "other kernels with --kernel)"
                )
        bpl = _bits_per_long(spec, g)
        order.setdefault(g.function, []).append((f, g, bpl or 0))
    if not order:
        raise EmitError(
            "no C-emittable vectors selected"
            + (f" ({'; '.join(_why_not(fn) for fn in skipped)})" if skipped else ""),
            code="nothing-selected",
        )
    ranked = sorted(order, key=lambda fn: functions.index(fn) if fn in functions else -1)
    return [_Table(EMITTABLE[fn], tuple(order[fn])) for fn in ranked], skipped


def _guard(spec: _CSpec, bpl: int) -> str | None:
    conds = []
    if spec.byte_order:
        conds.append(_LE)
    if bpl:
        conds.append(f"BITS_PER_LONG == {bpl}")
    return " && ".join(conds) or None


def _c_table(table: _Table) -> list[str]:
    spec = table.spec
    fn = spec.function
    n = sum(len(g.tests) for _, g, _ in table.groups)
    paras = [f"{fn}: {n} vectors in {len(table.groups)} group(s). Kernel source: {spec.source}."]
    if spec.note:
        paras.append(spec.note)
    out = ["", "/*", *_wrap(paras), " *"]
    for i, (f, g, bpl) in enumerate(table.groups):
        src = g.source
        lines = [
            f"group {i}: {f.path.name}, kernel {g.kernel or '- (no era)'}, {len(g.tests)} vectors",
            f"oracle: {g.oracle}: {src['name']} {src.get('version', '')}".rstrip(),
        ]
        if src.get("files"):
            lines.append(f"files: {', '.join(map(str, src['files']))}")
        if g.comment:
            lines.append(g.comment)
        if bpl:
            lines.append(f"compiled only when BITS_PER_LONG == {bpl}")
        for j, line in enumerate(lines):
            lead = " * " if j == 0 else " *   "
            wrapped = textwrap.wrap(
                _comment(line), 88, subsequent_indent="  ", break_on_hyphens=False
            )
            out += [lead + w for w in wrapped]
    out.append(" */")
    out.append(f"struct sidkit_{fn}_vector {{")
    out.append("\tconst char *group;\t/* NULL ends the table */")
    out.append("\tu32 tc_id;\t\t/* tcId in the vector file */")
    out += [f"\t{field};" for field in spec.fields]
    out.append(f"\t{spec.result} expected;")
    out.append("};")
    entries: list[str] = [f"static const struct sidkit_{fn}_vector sidkit_{fn}_vectors[] = {{"]
    names: list[str] = []
    x = _x64 if spec.result == "u64" else _x32
    for i, (f, g, bpl) in enumerate(table.groups):
        guard = _guard(spec, bpl)
        name = f"sidkit_{fn}_group{i}"
        if guard:
            names.append(f"#if {guard}")
            entries.append(f"#if {guard}")
        names.append(f"static const char {name}[] = {_cstr(_group_label(f, g))};")
        if guard:
            names.append("#endif")
        members = ", ".join(_member(m) for m in spec.fields)
        entries.append(f"\t/* group {i}: {{ group, tc_id, {members}, expected }} */")
        for t in g.tests:
            kwargs = decode_args(g.arg_types, t.args)
            extra = set(kwargs) - spec.args - ({"bits_per_long"} if spec.word_size else set())
            missing = spec.args - set(kwargs)
            if extra or missing:
                raise EmitError(
                    f"{f.path.name} tcId {t.tc_id}: {fn} args {sorted(kwargs)} do not fit the C "
                    f"table ({sorted(spec.args)})"
                )
            values = ", ".join(spec.values(kwargs))
            comment = f" /* {_comment(t.comment)} */" if t.comment else ""
            entries.append(f"\t{{ {name}, {t.tc_id}, {values}, {x(t.result)} }},{comment}")
        if guard:
            entries.append("#endif")
    out += _merge_guards(names)
    entries.append("\t{ .group = NULL }")
    entries.append("};")
    out += _merge_guards(entries)
    params = ", ".join(spec.call_args)
    out += [
        "",
        f"#ifndef SIDKIT_CALL_{fn}",
        f"#define SIDKIT_CALL_{fn}({params}) {spec.call}",
        "#endif",
        "",
        f"static inline {spec.result} sidkit_run_{fn}(const struct sidkit_{fn}_vector *v)",
        "{",
    ]
    out += [f"\t{line}" if line else "" for line in spec.prologue]
    if spec.prologue:
        out.append("")
    out.append(f"\treturn SIDKIT_CALL_{fn}({', '.join(spec.call_values)});")
    out.append("}")
    return out


def _merge_guards(lines: list[str]) -> list[str]:
    """Drop an ``#endif`` directly followed by the same ``#if`` it closed (guards never nest)."""
    out: list[str] = []
    last_if = None
    for line in lines:
        if line.startswith("#if "):
            if out and out[-1] == "#endif" and line == last_if:
                out.pop()
                continue
            last_if = line
        out.append(line)
    return out


def _member(decl: str) -> str:
    return decl.rsplit(maxsplit=1)[-1].lstrip("*")


def _c_check(spec: _CSpec) -> list[str]:
    fn = spec.function
    return [
        "",
        f"static unsigned int __maybe_unused sidkit_check_{fn}(unsigned int *checked)",
        "{",
        f"\tconst struct sidkit_{fn}_vector *v;",
        "\tunsigned int bad = 0;",
        "",
        f"\tfor (v = sidkit_{fn}_vectors; v->group; v++) {{",
        f"\t\t{spec.result} got = sidkit_run_{fn}(v);",
        "",
        "\t\t++*checked;",
        "\t\tif (got != v->expected) {",
        "\t\t\tbad++;",
        f'\t\t\tSIDKIT_MISMATCH("{fn}", v->group, v->tc_id, got, v->expected);',
        "\t\t}",
        "\t}",
        "\treturn bad;",
        "}",
    ]


def _kunit_case(spec: _CSpec) -> list[str]:
    fn = spec.function
    return [
        "",
        f"static void sidkit_{fn}_test(struct kunit *test)",
        "{",
        f"\tconst struct sidkit_{fn}_vector *v;",
        "",
        f"\tif (!sidkit_{fn}_vectors[0].group)",
        f'\t\tkunit_skip(test, "no {fn} vectors hold for this byte order and BITS_PER_LONG");',
        f"\tfor (v = sidkit_{fn}_vectors; v->group; v++)",
        f"\t\tKUNIT_EXPECT_EQ_MSG(test, sidkit_run_{fn}(v), v->expected,",
        '\t\t\t\t    "%s: tcId %u", v->group, v->tc_id);',
        "}",
    ]


def emit_c(
    selection: Selection,
    *,
    kunit: bool,
    command: str,
    functions: Sequence[str] = (),
    kernel: str | None = None,
    limit: int | None = None,
) -> str:
    """The selected groups of C-emittable functions as a C file (or a KUnit suite).

    *functions* names the functions the caller asked for (each must be emittable, else
    :class:`EmitError`); without it every emittable function of the selection is emitted and
    the others are listed in the header. *kernel* and *limit* only go into the header text:
    the selection is already made.
    """
    tables, skipped = _tables(selection, functions)
    total = sum(len(g.tests) for t in tables for _, g, _ in t.groups)
    names = ", ".join(t.spec.function for t in tables)
    what = "KUnit suite" if kunit else "C table"
    paras = [
        f"sidkit conformance vectors as a {what}: {names} ({total} vectors in "
        f"{sum(len(t.groups) for t in tables)} groups).",
        f"Emitted by `{command}` (sidkit {__version__}); regenerate rather than edit. Every "
        "expected value is copied from the vector file named in its group: the output of the "
        "oracle the group names (the kernel's own C compiled in a userspace harness, or "
        "published vectors) -- never a value sidkit computed.",
    ]
    if kernel is not None:
        paras.append(
            f"Selected for kernel {kernel}: the groups whose function computes there what it "
            "computed in the group's kernel, per sidkit's eras table (`sidkit eras FUNCTION "
            "-v` shows the evidence of each row)."
        )
    if limit is not None:
        paras.append(f"At most {limit} vectors per group (--limit).")
    paras.append(
        "Per function: struct sidkit_<fn>_vector (kernel types: u8..u64, __be16/__be32 and "
        "struct in6_addr as the kernel function takes them, siphash_key_t/hsiphash_key_t "
        "keys as their words) and sidkit_<fn>_vectors[], ended by an entry whose .group is "
        "NULL. sidkit_run_<fn>(v) computes one entry through SIDKIT_CALL_<fn>(), which calls "
        "the kernel function unless defined before this file is included (to test a BPF "
        "port, or the real function where its secret can be set). Tables whose results "
        "depend on the byte order or BITS_PER_LONG are compiled only where they hold. "
        "Define SIDKIT_VECTORS_NO_INCLUDES when the kernel definitions are already in scope."
    )
    if kunit:
        paras.append(
            "One KUnit case per function, in suite sidkit_vectors: put this file in lib/tests/ "
            "(or next to the code under test) with a Kconfig entry and a Makefile line."
        )
    else:
        paras.append(
            "sidkit_check_<fn>(&checked) and sidkit_check_all(&checked) return the number of "
            "mismatches, add the cases run to checked, and call SIDKIT_MISMATCH(fn, group, "
            "tc_id, got, expected) for each mismatch (pr_err() in the kernel by default)."
        )
    paras += [f"Not emitted: {fn}: {NOT_EMITTABLE.get(fn, 'no C layout')}." for fn in skipped]
    head = ["/*", *_wrap(paras), " */"]
    includes = ["linux/types.h"]
    for t in tables:
        includes += [i for i in t.spec.includes if i not in includes]
    body = [*head]
    if kunit:
        body += ["#include <kunit/test.h>", "#include <linux/module.h>"]
    body += ["", "#ifndef SIDKIT_VECTORS_NO_INCLUDES"]
    body += [f"#include <{i}>" for i in includes]
    if not kunit:
        body += ["#ifdef __KERNEL__", "#include <linux/printk.h>", "#endif"]
    body += [
        "#endif",
        "",
        "#ifndef __maybe_unused",
        "#define __maybe_unused __attribute__((__unused__))",
        "#endif",
    ]
    if not kunit:
        body += [
            "",
            "#ifndef SIDKIT_MISMATCH",
            "#ifdef __KERNEL__",
            "#define SIDKIT_MISMATCH(fn, group, tc_id, got, expected) \\",
            '\tpr_err("sidkit vectors: %s: %s tcId %u: got %#llx, expected %#llx\\n", \\',
            "\t       fn, group, tc_id, (unsigned long long)(got), (unsigned long long)(expected))",
            "#else",
            "#define SIDKIT_MISMATCH(fn, group, tc_id, got, expected) do { } while (0)",
            "#endif",
            "#endif",
        ]
    if any("&sidkit_net_scratch" in t.spec.call_values for t in tables):
        body += [
            "",
            "/* net_hash_mix(net) reads net->hash_mix: set per vector before each call */",
            "static struct net sidkit_net_scratch;",
        ]
    for t in tables:
        body += _c_table(t)
        if not kunit:
            body += _c_check(t.spec)
    if kunit:
        for t in tables:
            body += _kunit_case(t.spec)
        body += ["", "static struct kunit_case sidkit_vectors_test_cases[] = {"]
        body += [f"\tKUNIT_CASE(sidkit_{t.spec.function}_test)," for t in tables]
        body += [
            "\t{}",
            "};",
            "",
            "static struct kunit_suite sidkit_vectors_test_suite = {",
            '\t.name = "sidkit_vectors",',
            "\t.test_cases = sidkit_vectors_test_cases,",
            "};",
            "kunit_test_suite(sidkit_vectors_test_suite);",
            "",
            f'MODULE_DESCRIPTION("sidkit conformance vectors: {names}");',
            'MODULE_LICENSE("GPL");',
        ]
    else:
        body += [
            "",
            "static unsigned int __maybe_unused sidkit_check_all(unsigned int *checked)",
            "{",
            "\tunsigned int bad = 0;",
            "",
        ]
        body += [f"\tbad += sidkit_check_{t.spec.function}(checked);" for t in tables]
        body += ["\treturn bad;", "}"]
    return "\n".join(body) + "\n"


def emit(
    selection: Selection,
    fmt: Format,
    *,
    command: str,
    functions: Sequence[str] = (),
    kernel: str | None = None,
    limit: int | None = None,
) -> str:
    """Emit *selection* (already filtered by function and kernel) in *fmt*."""
    chosen = limit_tests(selection, limit)
    if fmt == "json":
        return emit_json(chosen, command=command)
    if fmt in ("c", "kunit"):
        return emit_c(
            chosen,
            kunit=fmt == "kunit",
            command=command,
            functions=functions,
            kernel=kernel,
            limit=limit,
        )
    raise InputValueError(f"unknown format {fmt!r} (json, c, kunit)", code="bad-format")
