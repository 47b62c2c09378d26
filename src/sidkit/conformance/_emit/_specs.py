# Strategy: one CSpec per C-emittable kernel function, as data: the struct members, how a
# test's args become their initialisers, the default call, the headers and the kernel source
# it names. A function is emittable exactly when it has a row here; the refused ones are
# listed with the reason. The ehash functions read boot-time random secrets no test can set,
# so their tables call the header inlines those functions are made of (__inet_ehashfn,
# __inet6_ehashfn + __ipv6_addr_jhash) with the vector's initval, and say so. Rendering a table
# from a spec is _tables' job, not this module's.
"""The C-emittable kernel functions (CSpec per function) and the refused ones, with why."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from sidkit.conformance._emit._common import EmitError
from sidkit.conformance._emit._literals import (
    be16,
    be32,
    c_bytes,
    fits,
    hsipkey,
    in6,
    ip_bytes,
    sipkey,
    u32_array,
    x32,
    x64,
)

__all__ = ["EMITTABLE", "NOT_EMITTABLE", "CSpec", "why_not"]


@attrs.frozen
class CSpec:
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


def _words_spec(name: str, count: int) -> CSpec:
    names = ["a", "b", "c"][:count]
    return CSpec(
        name,
        frozenset([*names, "initval"]),
        (*(f"u32 {n}" for n in names), "u32 initval"),
        lambda a: [*(x32(a[n]) for n in names), x32(a["initval"])],
        f"{name}({', '.join(f'(v)->{n}' for n in names)}, (v)->initval)",
        "u32",
        _JH,
        f"include/linux/jhash.h: u32 {name}({', '.join(f'u32 {n}' for n in names)}, u32 initval)",
    )


def _sip_words_spec(name: str, names: Sequence[str], width: int) -> CSpec:
    x = x64 if width == 64 else x32
    return CSpec(
        name,
        frozenset([*names, "key"]),
        (*(f"u{width} {n}" for n in names), "siphash_key_t key"),
        lambda a: [*(x(a[n]) for n in names), sipkey(a["key"])],
        f"{name}({', '.join(f'(v)->{n}' for n in names)}, &(v)->key)",
        "u64",
        _SIP,
        f"include/linux/siphash.h, lib/siphash.c: u64 {name}("
        + ", ".join(f"const u{width} {n}" for n in names)
        + ", const siphash_key_t *key)",
    )


def _ehash_values(v6: bool) -> Callable[[Mapping[str, Any]], list[str]]:
    addr = in6 if v6 else be32

    def values(a: Mapping[str, Any]) -> list[str]:
        out = [addr(a["laddr"]), str(fits(a["lport"], 16)), addr(a["faddr"]), be16(a["fport"])]
        out.append(x32(a["initval"]))
        if v6:
            out.append(x32(a["ipv6_hash_secret"]))
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


def _v4_ehash(name: str, variant: str, where: str, secret: str) -> CSpec:
    return CSpec(
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


def _v6_ehash(name: str, variant: str, where: str, secrets: str) -> CSpec:
    return CSpec(
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
    src, dst = ip_bytes(a["src"]), ip_bytes(a["dst"])
    if len(src) != len(dst):
        raise EmitError("flow_hash_from_keys: src and dst of different families")
    v6 = len(src) == 16
    return [
        "1" if v6 else "0",
        _ZERO4 if v6 else be32(a["src"]),
        _ZERO4 if v6 else be32(a["dst"]),
        in6(a["src"]) if v6 else _ZERO6,
        in6(a["dst"]) if v6 else _ZERO6,
        be16(a["sport"]),
        be16(a["dport"]),
        str(fits(a["ip_proto"], 8)),
        sipkey(a["key"]),
    ]


def _portaddr(name: str, v6: bool) -> CSpec:
    addr = "&(v)->addr" if v6 else "(v)->addr"
    return CSpec(
        name,
        frozenset(["net_mix", "addr", "port"]),
        ("u32 net_mix", "struct in6_addr addr" if v6 else "__be32 addr", "unsigned int port"),
        lambda a: [
            x32(a["net_mix"]),
            (in6 if v6 else be32)(a["addr"]),
            str(fits(a["port"], 16)),
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


_SPECS: tuple[CSpec, ...] = (
    CSpec(
        "jhash",
        frozenset(["key", "initval"]),
        ("const u8 *key", "u32 length", "u32 initval"),
        lambda a: [c_bytes(a["key"]), str(len(a["key"])), x32(a["initval"])],
        "jhash((v)->key, (v)->length, (v)->initval)",
        "u32",
        _JH,
        "include/linux/jhash.h: u32 jhash(const void *key, u32 length, u32 initval)",
        byte_order=True,
        note="jhash() reads the key as CPU-endian 32-bit words. " + _LE_NOTE,
    ),
    CSpec(
        "jhash2",
        frozenset(["words", "initval"]),
        ("const u32 *k", "u32 length", "u32 initval"),
        lambda a: [u32_array(a["words"]), str(len(a["words"])), x32(a["initval"])],
        "jhash2((v)->k, (v)->length, (v)->initval)",
        "u32",
        _JH,
        "include/linux/jhash.h: u32 jhash2(const u32 *k, u32 length, u32 initval)",
    ),
    _words_spec("jhash_1word", 1),
    _words_spec("jhash_2words", 2),
    _words_spec("jhash_3words", 3),
    CSpec(
        "hash_32",
        frozenset(["val", "bits"]),
        ("u32 val", "unsigned int bits"),
        lambda a: [x32(a["val"]), str(fits(a["bits"], 6))],
        "hash_32((v)->val, (v)->bits)",
        "u32",
        ("linux/hash.h",),
        "include/linux/hash.h: u32 hash_32(u32 val, unsigned int bits)",
    ),
    CSpec(
        "hash_64",
        frozenset(["val", "bits"]),
        ("u64 val", "unsigned int bits"),
        lambda a: [x64(a["val"]), str(fits(a["bits"], 7))],
        "hash_64((v)->val, (v)->bits)",
        "u32",
        ("linux/hash.h",),
        "include/linux/hash.h: u32 hash_64(u64 val, unsigned int bits)",
        word_size=True,
        note="hash_64_generic() has a BITS_PER_LONG == 32 branch, so each group is compiled "
        "only for the word size its oracle was built with.",
    ),
    CSpec(
        "reciprocal_scale",
        frozenset(["val", "ep_ro"]),
        ("u32 val", "u32 ep_ro"),
        lambda a: [x32(a["val"]), x32(a["ep_ro"])],
        "reciprocal_scale((v)->val, (v)->ep_ro)",
        "u32",
        ("linux/kernel.h",),
        "include/linux/math.h (include/linux/kernel.h before v5.11): "
        "u32 reciprocal_scale(u32 val, u32 ep_ro)",
    ),
    CSpec(
        "siphash",
        frozenset(["data", "key"]),
        ("const u8 *data", "size_t len", "siphash_key_t key"),
        lambda a: [c_bytes(a["data"]), str(len(a["data"])), sipkey(a["key"])],
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
    CSpec(
        "hsiphash",
        frozenset(["data", "key"]),
        ("const u8 *data", "size_t len", "hsiphash_key_t key"),
        lambda a: [
            c_bytes(a["data"]),
            str(len(a["data"])),
            hsipkey(a["key"], a.get("bits_per_long", 64)),
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
    CSpec(
        "ipv6_addr_jhash",
        frozenset(["addr", "initval"]),
        ("struct in6_addr addr", "u32 initval"),
        lambda a: [in6(a["addr"]), x32(a["initval"])],
        "__ipv6_addr_jhash(&(v)->addr, (v)->initval)",
        "u32",
        ("net/ipv6.h",),
        "include/net/ipv6.h: u32 __ipv6_addr_jhash(const struct in6_addr *a, const u32 initval)",
        byte_order=True,
        note="__ipv6_addr_jhash() hashes s6_addr32[] as CPU-endian words. " + _LE_NOTE,
    ),
    _portaddr("ipv4_portaddr_hash", False),
    _portaddr("ipv6_portaddr_hash", True),
    CSpec(
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

EMITTABLE: Mapping[str, CSpec] = {s.function: s for s in _SPECS}
"""Functions whose vectors can be emitted as a C table or a KUnit suite."""

NOT_EMITTABLE: Mapping[str, str] = {
    "hash_conntrack_raw": "it is static in net/netfilter/nf_conntrack_core.c and keyed by the "
    "boot-time random nf_conntrack_hash_rnd, so no test outside that file can pass it the "
    "vectors' secret",
    "next_pseudo_random32": "it was removed in v6.19 (include/linux/prandom.h)",
    "toeplitz": "it is not a kernel function (the NIC computes RSS; the oracle is the userspace "
    "selftest tools/testing/selftests/net/toeplitz.c)",
}
"""Functions with vectors that cannot be emitted as C, and why (JSON works for all)."""


def why_not(function: str) -> str:
    reason = NOT_EMITTABLE.get(function, "the C emitter has no table layout for it")
    return (
        f"{function} cannot be emitted as C or KUnit: {reason}; use --format json "
        f"(C-emittable: {', '.join(EMITTABLE)})"
    )
