/* Driver of the UDP lookup program. generate.py writes _work/build-X/udp_lookup.c -- the shim
 * environment (shims/udp_lookup_env.h over shims/reuseport_env.h), the group code of
 * net/core/sock_reuseport.c and the lookup of net/ipv4/udp.c and net/ipv6/udp.c copied
 * verbatim -- and includes this file at its end. It lays out sockets, reuseport groups and
 * hash chains as a script describes them and asks the kernel's own __udp4_lib_lookup() /
 * __udp6_lib_lookup() (or one udp4_lib_lookup2() / udp6_lib_lookup2() pass) which socket
 * receives a datagram. It never scores or picks a socket itself.
 *
 * Protocol: one command per line on stdin; only queries print (one line each). Addresses are
 * their network-order bytes in hex (8 digits IPv4, 32 digits IPv6); ports are host-order
 * integers, converted with htons() where the kernel takes a __be16.
 *   reset                       forget every socket, group and chain
 *   sock ID FAMILY V6ONLY PORT RCV4 RCV6 DADDR4 DPORT DADDR6 STATE CPU
 *                               a socket: FAMILY 4|6 (sk_family), V6ONLY 0|1 (sk_ipv6only),
 *                               PORT (udp_port_hash), RCV4 (sk_rcv_saddr), RCV6
 *                               (sk_v6_rcv_saddr), DADDR4 (inet_daddr), DPORT (inet_dport, 0
 *                               for none), DADDR6 (sk_v6_daddr), STATE est|close (sk_state
 *                               TCP_ESTABLISHED / TCP_CLOSE), CPU (sk_incoming_cpu); always
 *                               sk_reuseport 1, sk_bound_dev_if 0
 *   group ID ID ...             a reuseport group: reuseport_alloc() for the first socket, then
 *                               reuseport_add_sock(sk, first) for each next one, so that
 *                               socks[] holds them in the given order
 *   gstate ID INCOMING_CPU HAS_CONNS
 *                               the group of socket ID: reuse->incoming_cpu (the u16 count the
 *                               group keeps through its history) and reuseport_has_conns_set()
 *   chain ADDR PORT ID ...      the secondary chain (hslot2) of (ADDR, PORT), in walk order, at
 *                               ipv4_portaddr_hash() / ipv6_portaddr_hash() & mask
 *   primary PORT ID ...         the primary chain (hslot) of PORT, in walk order
 *   lookup SADDR SPORT DADDR DPORT CPU HASH
 *                               -> ID or "-": __udp4_lib_lookup() / __udp6_lib_lookup() (dif and
 *                               sdif 0, no skb) on CPU, the flow hash being HASH
 *   walk SADDR SPORT DADDR DPORT CPU HASH
 *                               -> ID, "-" or "ERR": one udp4_lib_lookup2() / udp6_lib_lookup2()
 *                               pass over the chain DADDR hashes to
 *   slot ADDR PORT              -> the hslot2 index of (ADDR, PORT)
 * Anything unexpected exits with 3; two different chains in one slot exit with 5 (choose
 * another port: sidkit's Port does not model colliding slots).
 */
#include <string.h>

#define HARNESS_MAX_SOCKS 4096
#define HARNESS_SLOTS 65536 /* udp_table.mask 0xffff, log 16 */

struct net harness_net;
int harness_cpu;
u32 harness_hash;

static struct sock harness_socks[HARNESS_MAX_SOCKS];
static bool harness_exists[HARNESS_MAX_SOCKS];
static struct udp_hslot harness_hash1[HARNESS_SLOTS], harness_hash2[HARNESS_SLOTS];
static struct udp_table harness_table = {
	.hash = harness_hash1,
	.hash2 = harness_hash2,
	.mask = HARNESS_SLOTS - 1,
	.log = 16,
};
/* Which address (as given) filled each hslot2, to refuse collisions. */
static char harness_slot_owner[HARNESS_SLOTS][40];

static void harness_die(const char *msg, const char *arg)
{
	fprintf(stderr, "udp_lookup: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(3);
}

static char *harness_tok(void)
{
	char *t = strtok(NULL, " \t\r\n");

	if (!t)
		harness_die("missing argument", NULL);
	return t;
}

static long long harness_num(void)
{
	char *t = harness_tok(), *end;
	long long v = strtoll(t, &end, 0);

	if (*end)
		harness_die("bad number", t);
	return v;
}

static int harness_hex(const char *t, u8 *out)
{
	size_t n = strlen(t), i;

	if (n != 8 && n != 32)
		harness_die("an address is 8 or 32 hex digits", t);
	for (i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(t + 2 * i, "%2x", &b) != 1)
			harness_die("bad hex", t);
		out[i] = (u8)b;
	}
	return n == 8 ? 4 : 6;
}

static __be32 harness_addr4(void)
{
	u8 b[16];
	__be32 a;

	if (harness_hex(harness_tok(), b) != 4)
		harness_die("expected an IPv4 address", NULL);
	memcpy(&a, b, 4);
	return a;
}

static struct in6_addr harness_addr6(void)
{
	struct in6_addr a;
	u8 b[16];

	if (harness_hex(harness_tok(), b) != 6)
		harness_die("expected an IPv6 address", NULL);
	memcpy(&a, b, 16);
	return a;
}

static struct sock *harness_sock(void)
{
	long long id = harness_num();

	if (id < 0 || id >= HARNESS_MAX_SOCKS || !harness_exists[id])
		harness_die("no such socket", NULL);
	return &harness_socks[id];
}

static void harness_reset(void)
{
	int i;

	for (i = 0; i < HARNESS_MAX_SOCKS; i++) {
		if (harness_exists[i] && harness_socks[i].sk_reuseport_cb)
			reuseport_detach_sock(&harness_socks[i]);
		harness_exists[i] = false;
	}
	for (i = 0; i < HARNESS_SLOTS; i++) {
		if (harness_hash1[i].head.sk || harness_hash2[i].head.sk) {
			free(harness_hash1[i].head.sk);
			free(harness_hash2[i].head.sk);
			memset(&harness_hash1[i], 0, sizeof(harness_hash1[i]));
			memset(&harness_hash2[i], 0, sizeof(harness_hash2[i]));
		}
		harness_slot_owner[i][0] = '\0';
	}
}

/* The rest of the line as socket ids, into hslot. */
static void harness_fill(struct udp_hslot *hslot)
{
	char *t;

	if (hslot->head.sk)
		harness_die("a chain given twice", NULL);
	hslot->head.sk = calloc(HARNESS_MAX_SOCKS, sizeof(struct sock *));
	if (!hslot->head.sk)
		harness_die("out of memory", NULL);
	while ((t = strtok(NULL, " \t\r\n"))) {
		char *end;
		long id = strtol(t, &end, 0);

		if (*end || id < 0 || id >= HARNESS_MAX_SOCKS || !harness_exists[id])
			harness_die("no such socket", t);
		hslot->head.sk[hslot->head.n++] = &harness_socks[id];
	}
	hslot->count = hslot->head.n;
}

static unsigned int harness_slot2(const char *addr, unsigned int port)
{
	u8 b[16];
	u32 hash;

	if (harness_hex(addr, b) == 4) {
		__be32 a;

		memcpy(&a, b, 4);
		hash = ipv4_portaddr_hash(&harness_net, a, port);
	} else {
		struct in6_addr a;

		memcpy(&a, b, 16);
		hash = ipv6_portaddr_hash(&harness_net, &a, port);
	}
	return hash & harness_table.mask;
}

static void harness_print(struct sock *sk)
{
	if (IS_ERR(sk))
		printf("ERR\n");
	else if (sk)
		printf("%d\n", sk->harness_id);
	else
		printf("-\n");
}

static void harness_query(bool whole)
{
	char *s = harness_tok();
	u8 sb[16], db[16];
	int family = harness_hex(s, sb), sport, dport;
	char *d;

	sport = (int)harness_num();
	d = harness_tok();
	if (harness_hex(d, db) != family)
		harness_die("source and destination of different families", d);
	dport = (int)harness_num();
	harness_cpu = (int)harness_num();
	harness_hash = (u32)harness_num();
	if (family == 4) {
		__be32 saddr, daddr;

		memcpy(&saddr, sb, 4);
		memcpy(&daddr, db, 4);
		if (whole) {
			harness_print(__udp4_lib_lookup(&harness_net, saddr, htons(sport), daddr,
							htons(dport), 0, 0, &harness_table, NULL));
		} else {
			unsigned int slot = ipv4_portaddr_hash(&harness_net, daddr, dport) &
					    harness_table.mask;

			harness_print(udp4_lib_lookup2(&harness_net, saddr, htons(sport), daddr,
						       dport, 0, 0, &harness_hash2[slot], NULL));
		}
	} else {
		struct in6_addr saddr, daddr;

		memcpy(&saddr, sb, 16);
		memcpy(&daddr, db, 16);
		if (whole) {
			harness_print(__udp6_lib_lookup(&harness_net, &saddr, htons(sport), &daddr,
							htons(dport), 0, 0, &harness_table, NULL));
		} else {
			unsigned int slot = ipv6_portaddr_hash(&harness_net, &daddr, dport) &
					    harness_table.mask;

			harness_print(udp6_lib_lookup2(&harness_net, &saddr, htons(sport), &daddr,
						       dport, 0, 0, &harness_hash2[slot], NULL));
		}
	}
}

int main(void)
{
	static char line[1 << 16];
	int i;

	for (i = 0; i < HARNESS_MAX_SOCKS; i++)
		harness_socks[i].harness_id = i;
	harness_net.ipv4.udp_table = &harness_table;

	while (fgets(line, sizeof(line), stdin)) {
		char *cmd = strtok(line, " \t\r\n");

		if (!cmd)
			continue;
		if (strlen(line) >= sizeof(line) - 1)
			harness_die("line too long", NULL);
		if (strcmp(cmd, "reset") == 0) {
			harness_reset();
		} else if (strcmp(cmd, "sock") == 0) {
			long long id = harness_num();
			struct sock *sk;
			char *state;

			if (id < 0 || id >= HARNESS_MAX_SOCKS || harness_exists[id])
				harness_die("bad or duplicate socket id", NULL);
			sk = &harness_socks[id];
			memset(sk, 0, sizeof(*sk));
			sk->harness_id = (int)id;
			sk->sk_protocol = IPPROTO_UDP;
			sk->sk_refcnt = 1;
			sk->sk_reuseport = 1;
			sk->sk_bound_dev_if = 0;
			switch (harness_num()) {
			case 4:
				sk->sk_family = AF_INET;
				break;
			case 6:
				sk->sk_family = AF_INET6;
				break;
			default:
				harness_die("FAMILY must be 4 or 6", NULL);
			}
			sk->sk_ipv6only = harness_num() != 0;
			sk->harness_udp.udp_port_hash = (u16)harness_num();
			sk->sk_rcv_saddr = harness_addr4();
			sk->sk_v6_rcv_saddr = harness_addr6();
			sk->harness_inet.inet_daddr = harness_addr4();
			sk->harness_inet.inet_dport = htons((u16)harness_num());
			sk->sk_v6_daddr = harness_addr6();
			state = harness_tok();
			if (strcmp(state, "est") == 0)
				sk->sk_state = TCP_ESTABLISHED;
			else if (strcmp(state, "close") == 0)
				sk->sk_state = TCP_CLOSE;
			else
				harness_die("STATE must be est or close", state);
			sk->sk_incoming_cpu = (int)harness_num();
			harness_exists[id] = true;
		} else if (strcmp(cmd, "group") == 0) {
			struct sock *first = harness_sock(), *sk;
			char *t;

			if (first->sk_reuseport_cb)
				harness_die("socket already in a group", NULL);
			if (reuseport_alloc(first, first->sk_family == AF_INET ?
						   first->sk_rcv_saddr == 0 :
						   ipv6_addr_any(&first->sk_v6_rcv_saddr)))
				harness_die("reuseport_alloc failed", NULL);
			while ((t = strtok(NULL, " \t\r\n"))) {
				char *end;
				long id = strtol(t, &end, 0);

				if (*end || id < 0 || id >= HARNESS_MAX_SOCKS || !harness_exists[id])
					harness_die("no such socket", t);
				sk = &harness_socks[id];
				if (sk->sk_reuseport_cb)
					harness_die("socket already in a group", t);
				if (reuseport_add_sock(sk, first, first->sk_reuseport_cb->bind_inany))
					harness_die("reuseport_add_sock failed", t);
			}
		} else if (strcmp(cmd, "gstate") == 0) {
			struct sock *sk = harness_sock();
			struct sock_reuseport *reuse = sk->sk_reuseport_cb;

			if (!reuse)
				harness_die("socket in no group", NULL);
			reuse->incoming_cpu = (u16)harness_num();
			if (harness_num())
				reuseport_has_conns_set(sk);
		} else if (strcmp(cmd, "chain") == 0) {
			char *addr = harness_tok();
			unsigned int port = (unsigned int)harness_num();
			unsigned int slot = harness_slot2(addr, port);

			if (harness_slot_owner[slot][0] && strcmp(harness_slot_owner[slot], addr)) {
				fprintf(stderr, "udp_lookup: %s and %s share hslot2 %u\n",
					harness_slot_owner[slot], addr, slot);
				exit(5);
			}
			snprintf(harness_slot_owner[slot], sizeof(harness_slot_owner[slot]), "%s", addr);
			harness_fill(&harness_hash2[slot]);
		} else if (strcmp(cmd, "primary") == 0) {
			unsigned int port = (unsigned int)harness_num();

			harness_fill(&harness_hash1[udp_hashfn(&harness_net, port, harness_table.mask)]);
		} else if (strcmp(cmd, "lookup") == 0) {
			harness_query(true);
		} else if (strcmp(cmd, "walk") == 0) {
			harness_query(false);
		} else if (strcmp(cmd, "slot") == 0) {
			char *addr = harness_tok();

			printf("%u\n", harness_slot2(addr, (unsigned int)harness_num()));
		} else {
			harness_die("unknown command", cmd);
		}
		fflush(stdout);
	}
	return 0;
}
