# Strategy: the kernel text the 64-bit harness is made of beyond the headers it includes: the
# networking functions that live inside big .c files (inet_ehashfn, udp_ehashfn,
# inet6_ehashfn, udp6_ehashfn, hash_conntrack_raw, __hash_conntrack, nf_ct_zone_id,
# __flow_hash_from_keys, ...) and the structs and macros they need, in the order the compiler
# must see them. Each entry names its source file; the one line that is not kernel text
# (CONFIG_NF_CONNTRACK_ZONES) says why it is there. The reuseport program is a second list:
# struct sock_reuseport as the tree declares it and the group code of
# net/core/sock_reuseport.c, each function after the ones it calls, so that no prototype has
# to be written by hand. The UDP lookup program is a third list on top of the second: the
# lookup of net/ipv4/udp.c and net/ipv6/udp.c (compute_score, udp4_lib_lookup1/2,
# __udp4_lib_lookup and their IPv6 twins), inet_lookup_reuseport / inet6_lookup_reuseport and
# the inline helpers they call; the only lines that are not kernel text rename the IPv6
# compute_score (both files name theirs so), define the IPv6 wildcard address the kernel
# defines in a file not fetched, and set CONFIG_NET_L3_MASTER_DEV. Compiling is harness.py's
# job.
"""The kernel functions, structs and macros copied into the 64-bit harness and into the
reuseport program, in order."""

from __future__ import annotations

import re

from .base import GENERATOR
from .tree import NETNS_HASH, ZONES_COMMON, ZONES_H, KernelTree, Snippet

__all__ = [
    "HOTDATA_SECRETS",
    "REUSEPORT_C",
    "REUSEPORT_H",
    "UDP4_C",
    "UDP6_C",
    "conntrack_clash_snippets",
    "conntrack_gc_snippets",
    "net_snippets",
    "reuseport_snippets",
    "udp_lookup_head",
    "udp_lookup_snippets",
]


ZONE_DEFINES = (
    "NF_CT_DEFAULT_ZONE_ID",
    "NF_CT_ZONE_DIR_ORIG",
    "NF_CT_ZONE_DIR_REPL",
    "NF_CT_DEFAULT_ZONE_DIR",
    "NF_CT_FLAG_MARK",
)


def net_snippets(t: KernelTree) -> list[Snippet]:
    ipv6h = "include/net/ipv6.h"
    flow_h = "include/net/flow_dissector.h"
    flow_c = "net/core/flow_dissector.c"
    nf_h = "include/net/netfilter/nf_conntrack_tuple.h"
    out = [
        t.define("include/linux/socket.h", "AF_INET"),
        t.define("include/linux/socket.h", "AF_INET6"),
        t.define("include/uapi/linux/if_ether.h", "ETH_P_IP"),
        t.define("include/uapi/linux/if_ether.h", "ETH_P_IPV6"),
        t.aggregate("include/uapi/linux/in.h", "struct in_addr"),
        t.aggregate("include/uapi/linux/in6.h", "struct in6_addr"),
        t.function(NETNS_HASH, "net_hash_mix"),
        t.function("include/net/inet_sock.h", "__inet_ehashfn"),
        t.function("include/net/inet6_hashtables.h", "__inet6_ehashfn"),
        t.function(ipv6h, "ipv6_addr_any"),
        t.function(ipv6h, "ipv6_addr_v4mapped"),
        t.function(ipv6h, "__ipv6_addr_jhash"),
        t.function("include/net/ip.h", "ipv4_portaddr_hash"),
        t.function(ipv6h, "ipv6_portaddr_hash"),
        t.function("net/ipv4/inet_hashtables.c", "inet_ehashfn"),
        t.function("net/ipv4/udp.c", "udp_ehashfn"),
        t.function("net/ipv6/inet6_hashtables.c", "inet6_ehashfn"),
        t.function("net/ipv6/udp.c", "udp6_ehashfn"),
        t.aggregate("include/uapi/linux/netfilter.h", "union nf_inet_addr"),
        t.aggregate(
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h",
            "union nf_conntrack_man_proto",
        ),
        t.aggregate(nf_h, "struct nf_conntrack_man"),
        t.aggregate(nf_h, "struct nf_conntrack_tuple"),
        t.line("net/netfilter/nf_conntrack_core.c", r"^static .*\bnf_conntrack_hash_rnd;"),
        t.function("net/netfilter/nf_conntrack_core.c", "hash_conntrack_raw"),
        t.function("net/netfilter/nf_conntrack_core.c", "__hash_conntrack"),
        t.aggregate(
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h", "enum ip_conntrack_dir"
        ),
        *(t.define(ZONES_COMMON, name) for name in ZONE_DEFINES),
        t.aggregate(ZONES_COMMON, "struct nf_conntrack_zone"),
        # Debian's 6.12.117 kernel config (config-6.12.117+deb12-*) and the test machine's
        # own kernel set CONFIG_NF_CONNTRACK_ZONES=y; without it nf_ct_zone_id() always
        # returns NF_CT_DEFAULT_ZONE_ID.
        Snippet(GENERATOR, 1, "#define CONFIG_NF_CONNTRACK_ZONES 1"),
        t.function(ZONES_H, "nf_ct_zone_matches_dir"),
        t.function(ZONES_H, "nf_ct_zone_id"),
        t.aggregate(flow_h, "enum flow_dissector_key_id"),
    ]
    for name in (
        "control",
        "basic",
        "tags",
        "vlan",
        "keyid",
        "ipv4_addrs",
        "ipv6_addrs",
        "tipc",
        "addrs",
        "ports",
        "icmp",
    ):
        out.append(t.aggregate(flow_h, f"struct flow_dissector_key_{name}"))
    out += [
        t.aggregate(flow_h, "struct flow_keys"),
        t.define(flow_h, "FLOW_KEYS_HASH_OFFSET"),
        t.function(flow_h, "flow_keys_have_l4"),
        t.function(flow_c, "flow_keys_hash_start"),
        t.function(flow_c, "flow_keys_hash_length"),
        t.function(flow_c, "__flow_hash_consistentify"),
        t.function(flow_c, "__flow_hash_from_keys"),
    ]
    return out


# Stand-ins for the 6.12 net_hotdata fields (include/net/hotdata.h #defines these names to
# net_hotdata.*.secret). In 6.1 the same names are function-local statics that shadow these.
HOTDATA_SECRETS = (
    "inet_ehash_secret",
    "udp_ehash_secret",
    "inet6_ehash_secret",
    "tcp_ipv6_hash_secret",
    "ipv6_hash_secret",
    "udp6_ehash_secret",
    "udp_ipv6_hash_secret",
)


REUSEPORT_H = "include/net/sock_reuseport.h"
REUSEPORT_C = "net/core/sock_reuseport.c"

# The functions of net/core/sock_reuseport.c the reuseport program is made of, callees first.
# Left out: the program attach/detach functions (no program is attached) and
# reuseport_attach_prog's helpers; run_bpf_filter is compiled because reuseport_select_sock
# calls it, but the driver never gives it an skb.
REUSEPORT_FUNCTIONS = (
    "reuseport_has_conns_set",
    "__reuseport_get_incoming_cpu",
    "__reuseport_put_incoming_cpu",
    "reuseport_get_incoming_cpu",
    "reuseport_put_incoming_cpu",
    "reuseport_update_incoming_cpu",
    "reuseport_sock_index",
    "__reuseport_add_sock",
    "__reuseport_detach_sock",
    "__reuseport_add_closed_sock",
    "__reuseport_detach_closed_sock",
    "__reuseport_alloc",
    "reuseport_grow",
    "reuseport_free_rcu",
    "reuseport_resurrect",
    "reuseport_alloc",
    "reuseport_add_sock",
    "reuseport_detach_sock",
    "reuseport_stop_listen_sock",
    "run_bpf_filter",
    "reuseport_select_sock_by_hash",
    "reuseport_select_sock",
    "reuseport_migrate_sock",
)


def reuseport_snippets(t: KernelTree) -> list[Snippet]:
    return [
        t.define("include/linux/limits.h", "U16_MAX"),
        t.aggregate("include/uapi/linux/in.h", "enum"),  # IPPROTO_TCP, IPPROTO_UDP
        t.aggregate("include/net/tcp_states.h", "enum"),  # TCP_ESTABLISHED, TCP_LISTEN, ...
        t.aggregate("include/uapi/linux/bpf.h", "enum bpf_prog_type"),
        t.aggregate("include/uapi/linux/bpf.h", "enum bpf_attach_type"),
        t.function("include/linux/math.h", "reciprocal_scale"),
        t.aggregate(REUSEPORT_H, "struct sock_reuseport"),
        t.define(REUSEPORT_C, "INIT_SOCKS"),
        t.line(REUSEPORT_C, r"^DEFINE_SPINLOCK\(reuseport_lock\);"),
        t.line(REUSEPORT_C, r"^static DEFINE_IDA\(reuseport_ida\);"),
        *(t.function(REUSEPORT_C, name) for name in REUSEPORT_FUNCTIONS),
    ]


UDP4_C = "net/ipv4/udp.c"
UDP6_C = "net/ipv6/udp.c"


def udp_lookup_head(t: KernelTree) -> list[Snippet]:
    """What shims/udp_lookup_env.h needs before it is included: struct in6_addr (the struct
    sock fields sk_v6_rcv_saddr and sk_v6_daddr are of that type)."""
    return [t.aggregate("include/uapi/linux/in6.h", "struct in6_addr")]


def udp_lookup_snippets(t: KernelTree) -> list[Snippet]:
    """The UDP lookup, callees first, to follow reuseport_snippets() (reuseport_select_sock,
    the TCP states, IPPROTO_UDP). udp_ehashfn()/udp6_ehashfn() are the kernel's, but the
    __inet_ehashfn()/__inet6_ehashfn() they end in are the shim's (the query's hash)."""
    ipv6h = "include/net/ipv6.h"
    udph = "include/net/udp.h"
    return [
        t.define("include/linux/socket.h", "AF_INET"),
        t.define("include/linux/socket.h", "AF_INET6"),
        t.define("include/linux/socket.h", "PF_INET"),
        t.define("include/linux/socket.h", "PF_INET6"),
        t.define("include/uapi/linux/in.h", "INADDR_ANY"),
        t.define("include/linux/in6.h", "IN6ADDR_ANY_INIT"),
        # net/ipv6/addrconf_core.c (not fetched): const struct in6_addr in6addr_any =
        # IN6ADDR_ANY_INIT; static here, as nothing outside this program refers to it.
        Snippet(GENERATOR, 1, "static const struct in6_addr in6addr_any = IN6ADDR_ANY_INIT;"),
        t.define("include/linux/ipv6.h", "ipv6_only_sock"),
        t.aggregate("include/uapi/linux/udp.h", "struct udphdr"),
        t.aggregate(udph, "struct udp_table"),
        t.function(NETNS_HASH, "net_hash_mix"),
        t.function("include/linux/udp.h", "udp_hashfn"),
        t.function("include/net/ip.h", "ipv4_portaddr_hash"),
        t.function(ipv6h, "ipv6_addr_equal"),
        t.function(ipv6h, "ipv6_addr_any"),
        t.function(ipv6h, "ipv6_addr_v4mapped"),
        t.function(ipv6h, "ipv6_portaddr_hash"),
        t.function(REUSEPORT_H, "reuseport_has_conns"),
        t.function("include/net/inet_sock.h", "inet_bound_dev_eq"),
        # Debian's configs set CONFIG_NET_L3_MASTER_DEV=y; with sk_bound_dev_if 0 and sdif 0
        # udp_sk_bound_dev_eq() is true in both of its branches.
        Snippet(GENERATOR, 1, "#define CONFIG_NET_L3_MASTER_DEV 1"),
        t.function(udph, "udp_sk_bound_dev_eq"),
        t.typedef("include/net/inet_hashtables.h", "inet_ehashfn_t"),
        t.typedef("include/net/inet6_hashtables.h", "inet6_ehashfn_t"),
        t.function(UDP4_C, "udp_ehashfn"),
        t.function(UDP6_C, "udp6_ehashfn"),
        t.function("net/ipv4/inet_hashtables.c", "inet_lookup_reuseport"),
        t.function("net/ipv6/inet6_hashtables.c", "inet6_lookup_reuseport"),
        t.function(UDP4_C, "compute_score"),
        t.function(UDP4_C, "udp4_lib_lookup1"),
        t.function(UDP4_C, "udp4_lib_lookup2"),
        t.function(UDP4_C, "__udp4_lib_lookup"),
        # Both files define a static compute_score(); here they share one translation unit.
        Snippet(GENERATOR, 1, "#define compute_score udp6_compute_score"),
        t.function(UDP6_C, "compute_score"),
        t.function(UDP6_C, "udp6_lib_lookup1"),
        t.function(UDP6_C, "udp6_lib_lookup2"),
        t.function(UDP6_C, "__udp6_lib_lookup"),
        Snippet(GENERATOR, 1, "#undef compute_score"),
    ]


NF_CORE = "net/netfilter/nf_conntrack_core.c"
COMMON_H = "include/uapi/linux/netfilter/nf_conntrack_common.h"
NF_CONNTRACK_H = "include/net/netfilter/nf_conntrack.h"
GC_DEFINES = (
    "GC_SCAN_INTERVAL_MAX",
    "GC_SCAN_INTERVAL_MIN",
    "GC_SCAN_INTERVAL_CLAMP",
    "GC_SCAN_INITIAL_COUNT",
    "GC_SCAN_INTERVAL_INIT",
    "GC_SCAN_MAX_DURATION",
    "GC_SCAN_EXPIRED_MAX",
)


def conntrack_gc_snippets(t: KernelTree) -> list[Snippet]:
    """The conntrack GC worker of net/netfilter/nf_conntrack_core.c, callees first: the
    nf_conn inlines of include/net/netfilter/nf_conntrack.h it reads, struct
    conntrack_gc_work, the GC_SCAN_* constants, nf_ct_gc_expired, gc_worker_skip_ct,
    gc_worker_can_early_drop and gc_worker; then reciprocal_scale (include/linux/math.h),
    NF_CT_EVICTION_RANGE, early_drop_list and early_drop. The environment is
    shims/conntrack_gc_env.h."""
    return [
        t.define(NF_CONNTRACK_H, "nfct_time_stamp"),
        t.function(NF_CONNTRACK_H, "nf_ct_is_confirmed"),
        t.function(NF_CONNTRACK_H, "nf_ct_is_dying"),
        t.function(NF_CONNTRACK_H, "nf_ct_expires"),
        t.function(NF_CONNTRACK_H, "nf_ct_is_expired"),
        t.function(NF_CONNTRACK_H, "nf_ct_should_gc"),
        *(t.define(NF_CORE, name) for name in GC_DEFINES),
        t.aggregate(NF_CORE, "struct conntrack_gc_work"),
        t.function(NF_CORE, "nf_ct_gc_expired"),
        t.function(NF_CORE, "gc_worker_skip_ct"),
        t.function(NF_CORE, "gc_worker_can_early_drop"),
        t.function(NF_CORE, "gc_worker"),
        t.function("include/linux/math.h", "reciprocal_scale"),
        t.define(NF_CORE, "NF_CT_EVICTION_RANGE"),
        t.function(NF_CORE, "early_drop_list"),
        t.function(NF_CORE, "early_drop"),
    ]


def conntrack_clash_snippets(t: KernelTree) -> tuple[list[Snippet], list[Snippet]]:
    """The clash resolution of net/netfilter/nf_conntrack_core.c, in two parts around
    shims/conntrack_clash_conn.h: first the declarations struct nf_conn is made of (addresses,
    struct nf_conntrack_tuple and its hash node, enum ip_conntrack_dir, struct
    nf_conntrack_zone), then the functions, callees first: nf_inet_addr_cmp
    (include/linux/netfilter.h), the tuple comparisons of nf_conntrack_tuple.h, the zone
    helpers of nf_conntrack_zones.h, nfct_time_stamp and nf_ct_protonum (nf_conntrack.h), and
    from nf_conntrack_core.c nf_ct_key_equal, nf_ct_match, nf_ct_match_reverse,
    nf_ct_can_merge, __nf_conntrack_insert_prepare, __nf_conntrack_hash_insert,
    __nf_ct_resolve_clash, nf_ct_resolve_clash_harder and nf_ct_resolve_clash."""
    nf_h = "include/net/netfilter/nf_conntrack_tuple.h"
    decls = [
        t.aggregate("include/uapi/linux/in.h", "struct in_addr"),
        t.aggregate("include/uapi/linux/in6.h", "struct in6_addr"),
        t.aggregate("include/uapi/linux/netfilter.h", "union nf_inet_addr"),
        t.aggregate(
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h",
            "union nf_conntrack_man_proto",
        ),
        t.aggregate(nf_h, "struct nf_conntrack_man"),
        t.aggregate(nf_h, "struct nf_conntrack_tuple"),
        t.aggregate(nf_h, "struct nf_conntrack_tuple_hash"),
        t.define(nf_h, "NF_CT_DIRECTION"),
        t.aggregate(
            "include/uapi/linux/netfilter/nf_conntrack_tuple_common.h", "enum ip_conntrack_dir"
        ),
        *(t.define(ZONES_COMMON, name) for name in ZONE_DEFINES),
        t.aggregate(ZONES_COMMON, "struct nf_conntrack_zone"),
        Snippet(GENERATOR, 1, "#define CONFIG_NF_CONNTRACK_ZONES 1"),
        # the kernel's own view of the uapi header: IPS_NAT_CLASH is under __KERNEL__
        Snippet(GENERATOR, 1, "#define __KERNEL__ 1"),
        t.aggregate(COMMON_H, "enum ip_conntrack_info"),
        t.aggregate(COMMON_H, "enum ip_conntrack_status"),
    ]
    # 6.12 merges through nf_ct_can_merge (nf_ct_match || nf_ct_match_reverse); 6.1's
    # __nf_ct_resolve_clash tests nf_ct_is_dying and IPS_NAT_DONE_MASK itself.
    merge = (
        [t.function(NF_CORE, "nf_ct_match_reverse"), t.function(NF_CORE, "nf_ct_can_merge")]
        if re.search(r"^static int nf_ct_can_merge\(", t.read(NF_CORE), re.MULTILINE)
        else []
    )
    funcs = [
        t.function("include/linux/netfilter.h", "nf_inet_addr_cmp"),
        t.function(nf_h, "__nf_ct_tuple_src_equal"),
        t.function(nf_h, "__nf_ct_tuple_dst_equal"),
        t.function(nf_h, "nf_ct_tuple_equal"),
        t.function(ZONES_H, "nf_ct_zone"),
        t.function(ZONES_H, "nf_ct_zone_matches_dir"),
        t.function(ZONES_H, "nf_ct_zone_id"),
        t.function(ZONES_H, "nf_ct_zone_equal"),
        t.function(ZONES_H, "nf_ct_zone_equal_any"),
        t.define(NF_CONNTRACK_H, "nfct_time_stamp"),
        t.function(NF_CONNTRACK_H, "nf_ct_protonum"),
        t.function(NF_CONNTRACK_H, "nf_ct_is_dying"),
        t.function(NF_CORE, "nf_ct_key_equal"),
        t.function(NF_CORE, "nf_ct_match"),
        *merge,
        t.function(NF_CORE, "__nf_conntrack_insert_prepare"),
        t.function(NF_CORE, "__nf_conntrack_hash_insert"),
        t.function(NF_CORE, "__nf_ct_resolve_clash"),
        t.function(NF_CORE, "nf_ct_resolve_clash_harder"),
        t.function(NF_CORE, "nf_ct_resolve_clash"),
    ]
    return decls, funcs
