/* The networking environment the copied kernel functions expect, reduced to what a hash needs.
 *
 * - struct net: only hash_mix, read by the kernel's own net_hash_mix() (include/net/netns/hash.h).
 * - net_get_random_once()/get_random_once(): instead of filling the secret with random bytes
 *   once, fill it from the current test case, looked up by the secret's name as written at the
 *   call site (e.g. "&udp6_ehash_secret"). Works whether the secret is a function-local static
 *   (6.1) or a global (6.12, net_hotdata). An unknown name aborts the harness.
 */
#ifndef _SHIM_HARNESS_ENV_H
#define _SHIM_HARNESS_ENV_H
#include <linux/types.h>

struct net {
	u32 hash_mix;
};

void harness_random_once(const char *name, void *buf, size_t nbytes);

#define net_get_random_once(buf, nbytes) harness_random_once(#buf, (buf), (nbytes))
#define get_random_once(buf, nbytes) harness_random_once(#buf, (buf), (nbytes))
#define INDIRECT_CALLABLE_SCOPE

#endif
