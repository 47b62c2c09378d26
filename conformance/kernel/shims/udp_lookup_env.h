/* The environment of the UDP socket lookup (net/ipv4/udp.c, net/ipv6/udp.c), on top of
 * reuseport_env.h, reduced to one namespace, no devices and no BPF.
 *
 * The UDP lookup program (_work/build-X/udp_lookup.c) copies compute_score(),
 * udp4_lib_lookup1/2(), __udp4_lib_lookup() and their IPv6 twins, inet_lookup_reuseport() /
 * inet6_lookup_reuseport(), udp_ehashfn() / udp6_ehashfn() and the small inline helpers they
 * call, beside the group code of the reuseport program. This header gives them what the real
 * kernel headers would, and nothing that decides anything:
 *
 * - struct sock: the fields compute_score() and the lookup read (sk_family, sk_ipv6only,
 *   sk_reuseport, sk_bound_dev_if -- always 0 --, sk_rcv_saddr, sk_v6_rcv_saddr,
 *   sk_v6_daddr), with inet_sk(sk) giving inet_daddr/inet_dport and udp_sk(sk) giving
 *   udp_port_hash. struct in6_addr is the tree's, copied before this header is included.
 * - struct udp_hslot: a chain is a plain array of sockets in walk order (the kernel's hlist
 *   walked by sk_for_each_rcu / udp_portaddr_for_each_entry_rcu); the driver fills it.
 * - struct net: hash_mix (0: one namespace) for net_hash_mix(), ipv4.udp_table and
 *   ipv4.sysctl_udp_l3mdev_accept (0); net_eq() is always true (one namespace).
 * - The flow hash: __inet_ehashfn() / __inet6_ehashfn() / __ipv6_addr_jhash(), which the
 *   copied udp_ehashfn() / udp6_ehashfn() call, return the hash the driver was given for the
 *   query (harness_hash): sidkit's hash functions are checked against the kernel's elsewhere.
 * - sk_lookup BPF (bpf_sk_lookup_enabled): the static branch is off; the redirect helpers
 *   abort if reached.
 */
#ifndef _SHIM_UDP_LOOKUP_ENV_H
#define _SHIM_UDP_LOOKUP_ENV_H
#include <linux/types.h>

struct udp_table;

struct inet_sock {
	__be32 inet_daddr;
	__be16 inet_dport;
};

struct udp_sock {
	u16 udp_port_hash;
};

#define HARNESS_SOCK_FIELDS                  \
	unsigned short sk_family;            \
	bool sk_ipv6only;                    \
	unsigned char sk_reuseport;          \
	int sk_bound_dev_if;                 \
	__be32 sk_rcv_saddr;                 \
	struct in6_addr sk_v6_rcv_saddr;     \
	struct in6_addr sk_v6_daddr;         \
	struct inet_sock harness_inet;       \
	struct udp_sock harness_udp;
#define HARNESS_NET_FIELDS u32 hash_mix;
#define HARNESS_NET_IPV4_FIELDS      \
	struct udp_table *udp_table; \
	u8 sysctl_udp_l3mdev_accept;

#include <reuseport_env.h>

typedef u16 __sum16;

#define inet_sk(sk) (&(sk)->harness_inet)
#define udp_sk(sk) (&(sk)->harness_udp)
#define net_eq(net1, net2) true
#define IS_ERR(ptr) ((unsigned long)(ptr) >= (unsigned long)-4095)

/* A chain: the sockets of one hash slot in the order the kernel walks them. */
struct harness_chain {
	int n;
	struct sock **sk;
};

struct udp_hslot {
	struct harness_chain head;
	int count;
	spinlock_t lock;
};

#define harness_chain_for_each(__sk, list) \
	for (int __harness_i = 0;          \
	     __harness_i < (list)->n && ((__sk) = (list)->sk[__harness_i], 1); __harness_i++)
#define sk_for_each_rcu(__sk, list) harness_chain_for_each(__sk, list)
#define udp_portaddr_for_each_entry_rcu(__sk, list) harness_chain_for_each(__sk, list)

/* The flow hash of the query, whatever the tuple (see above). */
extern u32 harness_hash;
static inline u32 harness_ehash(u32 laddr, u16 lport, u32 faddr, __be16 fport, u32 initval)
{
	(void)laddr, (void)lport, (void)faddr, (void)fport, (void)initval;
	return harness_hash;
}
#define __inet_ehashfn(laddr, lport, faddr, fport, initval) \
	harness_ehash((laddr), (lport), (faddr), (fport), (initval))
#define __inet6_ehashfn(lhash, lport, fhash, fport, initval) \
	harness_ehash((lhash), (lport), (fhash), (fport), (initval))
#define __ipv6_addr_jhash(a, initval) ((void)(a), (u32)(initval))
#define net_get_random_once(buf, nbytes) do { (void)(buf); (void)(nbytes); } while (0)
#define INDIRECT_CALLABLE_SCOPE
#define INDIRECT_CALL_2(f, f2, f1, ...) f(__VA_ARGS__)
#define INDIRECT_CALL_INET(f, f2, f1, ...) f(__VA_ARGS__)

/* sk_lookup programs: bpf_sk_lookup_enabled is off, so these are never called. */
#define static_branch_unlikely(key) false
#define udp4_lookup_run_bpf(...) \
	(harness_unreachable("udp4_lookup_run_bpf"), (struct sock *)NULL)
#define udp6_lookup_run_bpf(...) \
	(harness_unreachable("udp6_lookup_run_bpf"), (struct sock *)NULL)
#define inet_lookup_run_sk_lookup(...) \
	(harness_unreachable("inet_lookup_run_sk_lookup"), (struct sock *)NULL)
#define inet6_lookup_run_sk_lookup(...) \
	(harness_unreachable("inet6_lookup_run_sk_lookup"), (struct sock *)NULL)

#endif
