/*
 * Search the 2^32 initvals for the one that makes jhash_3words(a, b, c, initval) equal every
 * observed hash. Used by tests/reuseport/test_live_reuseport.py to recover a network namespace's
 * udp_ehash_secret + net_hash_mix(net) from ctx->hash values an SK_REUSEPORT program recorded
 * on the live kernel. The search only *finds* a candidate; the test then checks sidkit's own
 * udp_ehashfn with it against hundreds of datagrams the kernel steered, so a wrong search
 * cannot make the test pass.
 *
 * jhash_3words as include/linux/jhash.h defines it since v4.1 (lookup3 final mix).
 * Input on stdin: lines "a b c hash" (decimal or 0x hex u32). Output: matching initvals.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_OBS 16
#define THREADS 8
static uint32_t obs[MAX_OBS][4];
static int nobs;

static inline uint32_t rol32(uint32_t w, unsigned s) { return (w << s) | (w >> (32 - s)); }

static inline uint32_t jhash_3words(uint32_t a, uint32_t b, uint32_t c, uint32_t initval)
{
	initval += 0xdeadbeef + (3 << 2);
	a += initval; b += initval; c += initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

static void *worker(void *arg)
{
	uint64_t t = (uint64_t)(uintptr_t)arg;
	for (uint64_t v = t; v <= 0xffffffffULL; v += THREADS) {
		if (jhash_3words(obs[0][0], obs[0][1], obs[0][2], (uint32_t)v) != obs[0][3])
			continue;
		int ok = 1;
		for (int i = 1; i < nobs && ok; i++)
			ok = jhash_3words(obs[i][0], obs[i][1], obs[i][2], (uint32_t)v) == obs[i][3];
		if (ok)
			printf("0x%08" PRIx32 "\n", (uint32_t)v);
	}
	return NULL;
}

int main(void)
{
	unsigned long x[4];
	while (nobs < MAX_OBS && scanf("%li %li %li %li", &x[0], &x[1], &x[2], &x[3]) == 4) {
		for (int i = 0; i < 4; i++)
			obs[nobs][i] = (uint32_t)x[i];
		nobs++;
	}
	if (!nobs) {
		fprintf(stderr, "no observations on stdin\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_t th[THREADS];
	for (uintptr_t t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	return 0;
}
