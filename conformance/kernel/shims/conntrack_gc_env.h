/* The environment of the conntrack GC program (conntrack_gc_main.c): just enough of the
 * kernel for gc_worker(), gc_worker_skip_ct(), gc_worker_can_early_drop(),
 * nf_ct_gc_expired(), early_drop(), early_drop_list() and the nf_conn inlines they call, copied verbatim from
 * net/netfilter/nf_conntrack_core.c and include/net/netfilter/nf_conntrack.h.
 * Not kernel text: a minimal struct nf_conn, hlist_nulls lists whose deletion keeps the
 * deleted node's next pointer (as hlist_nulls_del_rcu does, so a walk that deleted a node
 * goes on from it), RCU and scheduling as no-ops, jiffies and HZ as variables the driver
 * sets, and nf_ct_kill()/nf_ct_delete() unhashing ORIGINAL then REPLY (clean_from_lists)
 * and setting IPS_DYING as nf_ct_delete() does.
 * The free of a killed entry is not modelled: its memory stays as it was (an RCU reader of
 * a SLAB_TYPESAFE_BY_RCU cache sees the same until the slot is reused). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef int32_t s32;
typedef int32_t __s32;
typedef uint64_t u64;

static unsigned long jiffies;
static unsigned int harness_hz = 250;
#define HZ harness_hz
#define READ_ONCE(x) (x)
#define WRITE_ONCE(x, v) ((x) = (v))
#define likely(x) (x)
#define unlikely(x) (x)
#define __read_mostly
#define noinline __attribute__((noinline))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define max(a, b) ((a) > (b) ? (a) : (b))
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max_t(type, a, b) ((type)(a) > (type)(b) ? (type)(a) : (type)(b))
#define clamp(val, lo, hi) min((typeof(val))max(val, lo), hi)
#define msecs_to_jiffies(m) (((m) * HZ + 999) / 1000)
#define rcu_read_lock() do { } while (0)
#define rcu_read_unlock() do { } while (0)
#define cond_resched() do { } while (0)
#define smp_acquire__after_ctrl_dep() do { } while (0)

static inline int test_bit(int nr, const unsigned long *addr) { return (*addr >> nr) & 1; }

struct hlist_nulls_node { struct hlist_nulls_node *next, **pprev; };
struct hlist_nulls_head { struct hlist_nulls_node *first; };
#define hlist_nulls_entry(ptr, type, member) container_of(ptr, type, member)
#define hlist_nulls_for_each_entry_rcu(tpos, pos, head, member) \
	for (pos = (head)->first; \
	     pos && ({ tpos = hlist_nulls_entry(pos, typeof(*tpos), member); 1; }); \
	     pos = pos->next)

typedef struct { int refs; } refcount_t;
static inline bool refcount_inc_not_zero(refcount_t *r) { if (!r->refs) return false; r->refs++; return true; }
typedef struct { int counter; } atomic_t;
static inline int atomic_read(const atomic_t *v) { return v->counter; }

struct nf_conntrack { refcount_t use; };
struct nf_conntrack_tuple_hash {
	struct hlist_nulls_node hnnode;
	struct { struct { u8 dir; } dst; } tuple;
};
enum ip_conntrack_dir { IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY, IP_CT_DIR_MAX };
struct nf_conn {
	struct nf_conntrack ct_general;
	struct nf_conntrack_tuple_hash tuplehash[IP_CT_DIR_MAX];
	unsigned long status;
	u32 timeout;
	u8 protonum;
	int id; /* the driver's name for it */
};
struct net { int unused; };
struct nf_conntrack_net { atomic_t count; };
static struct net harness_net;
static struct nf_conntrack_net harness_cnet;
static inline struct net *nf_ct_net(const struct nf_conn *ct) { (void)ct; return &harness_net; }
static inline struct nf_conntrack_net *nf_ct_pernet(const struct net *net) { (void)net; return &harness_cnet; }
static inline u8 nf_ct_protonum(const struct nf_conn *ct) { return ct->protonum; }
static inline struct nf_conn *nf_ct_tuplehash_to_ctrack(const struct nf_conntrack_tuple_hash *hash)
{
	return container_of(hash, struct nf_conn, tuplehash[hash->tuple.dst.dir]);
}

/* ip_conntrack_status bits used here (include/uapi/linux/netfilter/nf_conntrack_common.h) */
enum {
	IPS_ASSURED_BIT = 2, IPS_CONFIRMED_BIT = 3, IPS_DYING_BIT = 9, IPS_HELPER_BIT = 13,
	IPS_OFFLOAD_BIT = 14,
};

struct nf_conntrack_l4proto { bool (*can_early_drop)(const struct nf_conn *ct); };
static const struct nf_conntrack_l4proto harness_l4proto; /* UDP and generic: no can_early_drop */
static inline const struct nf_conntrack_l4proto *nf_ct_l4proto_find(u8 l4proto) { (void)l4proto; return &harness_l4proto; }

static unsigned int nf_conntrack_max;
static unsigned int harness_hsize;
static struct hlist_nulls_head *harness_hash;
static inline void nf_conntrack_get_ht(struct hlist_nulls_head **hash, unsigned int *hsize)
{
	*hash = harness_hash;
	*hsize = harness_hsize;
}

/* what the driver prints: the entries removed, in order */
static int harness_removed[1 << 20];
static int harness_nremoved;

static inline void harness_unlink(struct hlist_nulls_node *n)
{
	if (!n->pprev)
		return;
	*n->pprev = n->next;
	if (n->next)
		n->next->pprev = n->pprev;
	n->pprev = NULL; /* the next pointer stays: hlist_nulls_del_rcu */
}

static inline bool nf_ct_kill(struct nf_conn *ct)
{
	if (test_bit(IPS_DYING_BIT, &ct->status))
		return false;
	ct->status |= 1UL << IPS_DYING_BIT;
	harness_unlink(&ct->tuplehash[0].hnnode);
	harness_unlink(&ct->tuplehash[1].hnnode);
	harness_cnet.count.counter--;
	harness_removed[harness_nremoved++] = ct->id;
	ct->ct_general.use.refs--; /* the table's reference */
	return true;
}
static inline bool nf_ct_delete(struct nf_conn *ct, u32 portid, int report)
{
	(void)portid; (void)report;
	return nf_ct_kill(ct);
}
static inline bool net_eq(const struct net *a, const struct net *b) { return a == b; }
static unsigned int harness_stat_early_drop;
#define NF_CT_STAT_ADD_ATOMIC(net, count, v) (harness_stat_##count += (v))
static inline void nf_ct_put(struct nf_conn *ct) { if (ct->ct_general.use.refs > 0) ct->ct_general.use.refs--; }
static inline void nf_ct_help_gc(struct nf_conn *ct) { (void)ct; abort(); }
static inline void nf_ct_offload_timeout(struct nf_conn *ct) { (void)ct; abort(); }

struct work_struct { int unused; };
struct delayed_work { struct work_struct work; };
static unsigned long harness_next_run;
static bool harness_queued;
static int system_power_efficient_wq;
static inline bool queue_delayed_work(int wq, struct delayed_work *dwork, unsigned long delay)
{
	(void)wq; (void)dwork;
	harness_next_run = delay;
	harness_queued = true;
	return true;
}
