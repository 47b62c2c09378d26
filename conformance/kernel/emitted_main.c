/* Driver for the output of `sidkit vectors emit --format c|kunit` in the kernel-C oracle harness.
 *
 * tests/conformance/test_vectors_emit.py builds one translation unit: the harness prelude that
 * generate.py writes (_work/build-X/harness.c up to its `#include "harness_main.c"`: the shims,
 * the kernel's own jhash.h, hash.h, siphash.h and the functions copied verbatim out of net/),
 * then this file, which includes the emitted file named by SIDKIT_EMITTED and runs it:
 *
 * - C format: sidkit_check_all(); prints every mismatch and "checked N mismatches M";
 *   exit status 1 on any mismatch.
 * - KUnit format (-DSIDKIT_KUNIT, with conformance/kernel/kunit_shim first on the include
 *   path): runs the suite through the shim's kunit_shim_run(); exit status 1 on any failure.
 *
 * -DSIDKIT_REAL_EHASHFN replaces the emitted tables' default calls for the ehash functions
 * (the header inlines __inet_ehashfn / __inet6_ehashfn with the vector's initval) with the
 * real inet_ehashfn, udp_ehashfn, inet6_ehashfn and udp6_ehashfn copied from the kernel
 * sources, their secrets filled from the vector through net_get_random_once (harness_env.h)
 * and net_hash_mix 0: the same tables must pass both ways.
 *
 * The emitted file includes no kernel header here (SIDKIT_VECTORS_NO_INCLUDES): the prelude
 * already holds the kernel's definitions, built the way the vectors were generated.
 * -DSIDKIT_OWN_INCLUDES instead compiles this file alone, with the shims and the kernel's
 * include/ on the path, so that the emitted file's own #include lines are what is tested
 * (jhash.h, hash.h and siphash.h only; link lib/siphash.c).
 */
#include <stdio.h>
#include <stdlib.h>

#ifndef SIDKIT_EMITTED
#error "define SIDKIT_EMITTED as the quoted path of the emitted file"
#endif

#ifndef SIDKIT_OWN_INCLUDES
#define SIDKIT_VECTORS_NO_INCLUDES 1

static u32 emitted_main_ehash_secret, emitted_main_addr_secret;

/* harness_env.h routes net_get_random_once()/get_random_once() here, by the secret's name. */
void harness_random_once(const char *name, void *buf, size_t nbytes)
{
	static const char *const ehash[] = { "inet_ehash_secret", "udp_ehash_secret",
					     "inet6_ehash_secret", "udp6_ehash_secret" };
	static const char *const addr[] = { "ipv6_hash_secret", "tcp_ipv6_hash_secret",
					    "udp_ipv6_hash_secret" };
	size_t i;

	while (*name == '&' || *name == '(' || *name == ' ')
		name++;
	if (nbytes != sizeof(u32)) {
		fprintf(stderr, "emitted_main: secret %s has %zu bytes\n", name, nbytes);
		exit(3);
	}
	for (i = 0; i < ARRAY_SIZE(ehash); i++)
		if (strcmp(name, ehash[i]) == 0) {
			memcpy(buf, &emitted_main_ehash_secret, sizeof(u32));
			return;
		}
	for (i = 0; i < ARRAY_SIZE(addr); i++)
		if (strcmp(name, addr[i]) == 0) {
			memcpy(buf, &emitted_main_addr_secret, sizeof(u32));
			return;
		}
	fprintf(stderr, "emitted_main: kernel code asked for an unknown secret %s\n", name);
	exit(3);
}

#ifdef SIDKIT_REAL_EHASHFN
static struct net emitted_main_net; /* hash_mix 0: the vectors' initval is secret + mix */

#define SIDKIT_CALL_inet_ehashfn(v)							\
	(emitted_main_ehash_secret = (v)->initval,					\
	 inet_ehashfn(&emitted_main_net, (v)->laddr, (v)->lport, (v)->faddr, (v)->fport))
#define SIDKIT_CALL_udp_ehashfn(v)							\
	(emitted_main_ehash_secret = (v)->initval,					\
	 udp_ehashfn(&emitted_main_net, (v)->laddr, (v)->lport, (v)->faddr, (v)->fport))
#define SIDKIT_CALL_inet6_ehashfn(v)							\
	(emitted_main_ehash_secret = (v)->initval,					\
	 emitted_main_addr_secret = (v)->ipv6_hash_secret,				\
	 inet6_ehashfn(&emitted_main_net, &(v)->laddr, (v)->lport, &(v)->faddr, (v)->fport))
#define SIDKIT_CALL_udp6_ehashfn(v)							\
	(emitted_main_ehash_secret = (v)->initval,					\
	 emitted_main_addr_secret = (v)->ipv6_hash_secret,				\
	 udp6_ehashfn(&emitted_main_net, &(v)->laddr, (v)->lport, &(v)->faddr, (v)->fport))
#endif /* SIDKIT_REAL_EHASHFN */
#endif /* !SIDKIT_OWN_INCLUDES */

#ifdef SIDKIT_KUNIT

#include SIDKIT_EMITTED

int main(void)
{
	return kunit_shim_run(kunit_shim_suites) ? 1 : 0;
}

#else

#define SIDKIT_MISMATCH(fn, group, tc_id, got, expected)					\
	printf("MISMATCH %s tcId %u: got %#llx, expected %#llx (%s)\n", (fn),		\
	       (unsigned int)(tc_id), (unsigned long long)(got),				\
	       (unsigned long long)(expected), (group))

#include SIDKIT_EMITTED

int main(void)
{
	unsigned int checked = 0, bad = sidkit_check_all(&checked);

	printf("checked %u mismatches %u\n", checked, bad);
	return bad ? 1 : 0;
}

#endif
