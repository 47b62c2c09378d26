/* The environment net/core/sock_reuseport.c expects, reduced to one thread and no BPF.
 *
 * The reuseport program (_work/build-X/reuseport.c) copies struct sock_reuseport from
 * include/net/sock_reuseport.h and the group functions from net/core/sock_reuseport.c; this
 * header gives them what the real kernel headers would, and nothing that decides anything:
 *
 * - struct sock: only the fields those functions read or write (sk_state, sk_incoming_cpu,
 *   sk_reuseport_cb, sk_protocol, sk_hash, sk_refcnt), plus the driver's own index.
 * - RCU, READ_ONCE/WRITE_ONCE, barriers, spinlocks: plain accesses and no-ops. The driver is
 *   one thread, so call_rcu()/kfree_rcu() free at once.
 * - raw_smp_processor_id(): the CPU the driver sets before each query (harness_cpu).
 * - struct net: only ipv4.sysctl_tcp_migrate_req, read by reuseport_stop_listen_sock() and
 *   reuseport_migrate_sock().
 * - BPF: no program is ever attached (reuse->prog stays NULL) and the driver passes skb ==
 *   NULL, so the program paths are compiled but unreachable; reaching them aborts.
 *
 * The UDP lookup program (udp_lookup_env.h) includes this header too, after defining
 * HARNESS_SOCK_FIELDS / HARNESS_NET_FIELDS / HARNESS_NET_IPV4_FIELDS: the fields its kernel
 * text reads on top of these. The reuseport program leaves them undefined.
 */
#ifndef _SHIM_REUSEPORT_ENV_H
#define _SHIM_REUSEPORT_ENV_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/kernel.h>

#define __rcu
/* include/linux/compiler_types.h without __has_attribute(__counted_by__) (6.12's socks[]). */
#define __counted_by(member)
#define READ_ONCE(x) (x)
#define WRITE_ONCE(x, val) ((x) = (val))
#define smp_wmb() __asm__ __volatile__("" ::: "memory")
#define smp_rmb() __asm__ __volatile__("" ::: "memory")

struct rcu_head {
	struct rcu_head *next;
	void (*func)(struct rcu_head *head);
};

#define rcu_read_lock() do { } while (0)
#define rcu_read_unlock() do { } while (0)
#define rcu_dereference(p) (p)
#define rcu_dereference_protected(p, c) (p)
#define rcu_access_pointer(p) (p)
#define rcu_assign_pointer(p, v) ((p) = (v))
#define RCU_INIT_POINTER(p, v) ((p) = (v))
#define rcu_replace_pointer(p, v, c) \
	({ typeof(p) __old = (p); (p) = (v); __old; })
#define lockdep_is_held(l) 1
#define call_rcu(head, fn) (fn)(head)
#define kfree_rcu(ptr, field) kfree(ptr)
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

typedef int spinlock_t;
#define DEFINE_SPINLOCK(x) spinlock_t x
#define spin_lock_bh(l) do { } while (0)
#define spin_unlock_bh(l) do { } while (0)

struct ida {
	int next;
};
#define DEFINE_IDA(x) struct ida x
#define ida_alloc(ida, gfp) ((ida)->next++)
#define ida_free(ida, id) do { (void)(id); } while (0)

#define GFP_ATOMIC 0
#define kzalloc(size, gfp) calloc(1, (size))
#define kfree(p) free(p)
/* include/linux/overflow.h's struct_size() saturates at SIZE_MAX; a group of at most
 * U16_MAX pointers never comes near it. */
#define struct_size(p, member, count) (sizeof(*(p)) + sizeof(*(p)->member) * (size_t)(count))

typedef int refcount_t;
#define refcount_inc_not_zero(r) (*(r) ? (++*(r), true) : false)
#define IS_ERR_OR_NULL(p) (!(p) || (unsigned long)(p) >= (unsigned long)-4095)

struct sock_reuseport;
struct sk_buff;

struct sock {
	unsigned char sk_state;
	u16 sk_protocol;
	int sk_incoming_cpu;
	u32 sk_hash;
	refcount_t sk_refcnt;
	struct sock_reuseport __rcu *sk_reuseport_cb;
	int harness_id; /* the driver's name for this socket */
#ifdef HARNESS_SOCK_FIELDS
	HARNESS_SOCK_FIELDS /* udp_lookup_env.h: what the UDP lookup reads */
#endif
};

struct net {
#ifdef HARNESS_NET_FIELDS
	HARNESS_NET_FIELDS
#endif
	struct {
		u8 sysctl_tcp_migrate_req;
#ifdef HARNESS_NET_IPV4_FIELDS
		HARNESS_NET_IPV4_FIELDS
#endif
	} ipv4;
};

extern struct net harness_net;
extern int harness_cpu;
#define sock_net(sk) (&harness_net)
#define raw_smp_processor_id() (harness_cpu)
#define __NET_INC_STATS(net, field) do { (void)(net); } while (0)
#define LINUX_MIB_TCPMIGRATEREQFAILURE 0

/* The program paths: never reached (reuse->prog is NULL, skb is NULL). */
static inline void harness_unreachable(const char *what)
{
	fprintf(stderr, "reuseport: unreachable BPF path reached: %s\n", what);
	exit(4);
}

struct bpf_prog {
	int type;
	int expected_attach_type;
};
#define sk_reuseport_prog_free(prog) \
	do { if (prog) harness_unreachable("sk_reuseport_prog_free"); } while (0)
#define bpf_sk_reuseport_detach(sk) do { (void)(sk); } while (0)
#define bpf_run_sk_reuseport(reuse, sk, prog, skb, msk, hash) \
	(harness_unreachable("bpf_run_sk_reuseport"), (struct sock *)NULL)
#define skb_shared(skb) (harness_unreachable("skb_shared"), 0)
#define skb_clone(skb, gfp) (harness_unreachable("skb_clone"), (struct sk_buff *)NULL)
#define pskb_pull(skb, len) (harness_unreachable("pskb_pull"), (void *)NULL)
#define __skb_push(skb, len) harness_unreachable("__skb_push")
#define bpf_prog_run_save_cb(prog, skb) (harness_unreachable("bpf_prog_run_save_cb"), 0u)
#define consume_skb(skb) do { (void)(skb); } while (0)
#define kfree_skb(skb) do { (void)(skb); } while (0)
#define alloc_skb(size, gfp) (harness_unreachable("alloc_skb"), (struct sk_buff *)NULL)

#endif
