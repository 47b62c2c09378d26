/* The environment of the conntrack clash program, second part (after the kernel's tuple and
 * zone declarations): a minimal struct nf_conn with the fields the copied functions read, the
 * skb as a pointer to its conntrack, one struct net, counters, and l4proto->allow_clash as
 * nf_conntrack_proto_udp.c (UDP, UDP-Lite) and nf_conntrack_proto_generic.c (every protocol
 * without its own tracker) set it in 6.1 and 6.12 -- the only fact here that is not the
 * kernel's compiled text, checked against those files by tests/conntrack/test_conntrack_eras.py. */
typedef struct { int refs; } refcount_t;
static inline void refcount_inc(refcount_t *r) { r->refs++; }
struct nf_conntrack { refcount_t use; };
struct net { int unused; };
static struct net harness_net;
struct nf_conn {
	struct nf_conntrack ct_general;
	struct nf_conntrack_tuple_hash tuplehash[IP_CT_DIR_MAX];
	unsigned long status;
	u32 timeout;
	struct nf_conntrack_zone zone;
	int id;
};
enum { NF_DROP = 0, NF_ACCEPT = 1 };
static inline int test_bit(int nr, const unsigned long *addr) { return (*addr >> nr) & 1; }
static inline void set_bit(int nr, unsigned long *addr) { *addr |= 1UL << nr; }
static inline struct net *nf_ct_net(const struct nf_conn *ct) { (void)ct; return &harness_net; }
static inline bool net_eq(const struct net *a, const struct net *b) { return a == b; }
static inline int nf_ct_is_confirmed(const struct nf_conn *ct) { return test_bit(IPS_CONFIRMED_BIT, &ct->status); }
static inline struct nf_conn *nf_ct_tuplehash_to_ctrack(const struct nf_conntrack_tuple_hash *hash)
{
	return container_of(hash, struct nf_conn, tuplehash[hash->tuple.dst.dir]);
}

struct sk_buff { struct nf_conn *ct; enum ip_conntrack_info ctinfo; };
static inline struct nf_conn *nf_ct_get(const struct sk_buff *skb, enum ip_conntrack_info *ctinfo)
{
	*ctinfo = skb->ctinfo;
	return skb->ct;
}
static inline struct nf_conntrack *skb_nfct(const struct sk_buff *skb) { return &skb->ct->ct_general; }
static inline void nf_ct_set(struct sk_buff *skb, struct nf_conn *ct, enum ip_conntrack_info info)
{
	skb->ct = ct;
	skb->ctinfo = info;
}
static inline void nf_conntrack_get(struct nf_conntrack *nfct) { nfct->use.refs++; }
static inline void nf_ct_put(struct nf_conn *ct) { ct->ct_general.use.refs--; }
static inline void nf_ct_acct_merge(struct nf_conn *ct, enum ip_conntrack_info ctinfo, const struct nf_conn *loser)
{
	(void)ct; (void)ctinfo; (void)loser;
}
struct nf_conn_tstamp { u64 start; };
static inline struct nf_conn_tstamp *nf_conn_tstamp_find(const struct nf_conn *ct) { (void)ct; return NULL; }
static inline u64 ktime_get_real_ns(void) { return 0; }

struct nf_conntrack_l4proto { bool allow_clash; };
static const struct nf_conntrack_l4proto harness_allow = { .allow_clash = true };
static const struct nf_conntrack_l4proto harness_refuse = { .allow_clash = false };
static inline const struct nf_conntrack_l4proto *nf_ct_l4proto_find(u8 l4proto)
{
	/* TCP, ICMP, ICMPv6, SCTP, DCCP, GRE have trackers without allow_clash */
	switch (l4proto) {
	case 1: case 6: case 33: case 47: case 58: case 132:
		return &harness_refuse;
	}
	return &harness_allow;
}

static unsigned long jiffies;
static unsigned int harness_hz = 250;
#define HZ harness_hz
static struct hlist_nulls_head *nf_conntrack_hash;
static unsigned int stat_clash_resolve, stat_drop, stat_insert_failed;
#define NF_CT_STAT_INC(net, count) (stat_##count++)
