/* The environment of the conntrack clash program (conntrack_clash_main.c), first part: types
 * and lists before the kernel's address, tuple and zone declarations. Not kernel text. The
 * second part (struct nf_conn, the skb, counters) is conntrack_clash_conn.h. Lists delete as
 * hlist_nulls_del_rcu does (the deleted node keeps its next pointer); hlist_nulls_add_fake
 * leaves a node unhashed (pprev set to a dummy, next NULL), as the kernel's does. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint8_t u8, __u8, u_int8_t;
typedef uint16_t u16, __u16, u_int16_t, __be16;
typedef uint32_t u32, __u32, u_int32_t, __be32;
typedef int32_t s32, __s32;
typedef uint64_t u64, __u64;
typedef uint16_t __sum16;
#define BITS_PER_LONG 64
#define READ_ONCE(x) (x)
#define WRITE_ONCE(x, v) ((x) = (v))
#define likely(x) (x)
#define unlikely(x) (x)
#define __cold
#define noinline __attribute__((noinline))
#define __read_mostly
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define smp_mb__before_atomic() do { } while (0)

struct hlist_nulls_node { struct hlist_nulls_node *next, **pprev; };
struct hlist_nulls_head { struct hlist_nulls_node *first; };
#define hlist_nulls_entry(ptr, type, member) container_of(ptr, type, member)
#define hlist_nulls_for_each_entry(tpos, pos, head, member) \
	for (pos = (head)->first; \
	     pos && ({ tpos = hlist_nulls_entry(pos, typeof(*tpos), member); 1; }); \
	     pos = pos->next)
static inline void hlist_nulls_add_head_rcu(struct hlist_nulls_node *n, struct hlist_nulls_head *h)
{
	n->next = h->first;
	n->pprev = &h->first;
	if (h->first)
		h->first->pprev = &n->next;
	h->first = n;
}
static inline void hlist_nulls_add_fake(struct hlist_nulls_node *n)
{
	n->pprev = &n->next;
	n->next = NULL;
}
