/* Driver of the reuseport program. generate.py writes _work/build-X/reuseport.c -- the shim
 * environment (shims/reuseport_env.h), struct sock_reuseport copied from
 * include/net/sock_reuseport.h and the group functions copied verbatim from
 * net/core/sock_reuseport.c -- and includes this file at its end. It replays what sockets do
 * to a SO_REUSEPORT group through the kernel's own entry points and asks the kernel's own
 * selection which member gets a datagram. It never picks a member itself.
 *
 * Protocol: one operation per line on stdin; only queries print (one line each).
 *   proto udp|tcp        how later joins are created and closes behave (default udp)
 *   migrate_req 0|1      net.ipv4.tcp_migrate_req (read by reuseport_stop_listen_sock and
 *                        reuseport_migrate_sock)
 *   join ID              a new socket (sk_incoming_cpu -1; TCP_CLOSE for udp, TCP_LISTEN for
 *                        tcp) binds: reuseport_add_sock(sk, sk2, true) with sk2 an open
 *                        member, or reuseport_alloc(sk, true) when there is none -- as
 *                        udp_reuseport_add_sock() / inet_reuseport_add_sock() do
 *   close ID             udp: reuseport_detach_sock() (udp_lib_unhash); tcp:
 *                        reuseport_stop_listen_sock() (inet_unhash of a listener)
 *   connect ID           reuseport_has_conns_set(sk); sk->sk_state = TCP_ESTABLISHED, in the
 *                        order of __ip4_datagram_connect() (net/ipv4/datagram.c)
 *   cpu ID VAL           setsockopt(SO_INCOMING_CPU, VAL): reuseport_update_incoming_cpu()
 *   select HASH CPU      -> ID or "-": reuseport_select_sock(sk, HASH, NULL, 0) on CPU
 *   migrate HASH CPU     -> ID or "-": reuseport_migrate_sock(sk, req, NULL) on CPU, req's
 *                        sk_hash = HASH, sk a closed listener if there is one
 *   state                -> "socks=ID,... closed=ID,... incoming_cpu=N has_conns=B" for the
 *                        group of the open members: socks[0..num_socks) in array order, the
 *                        closed section from socks[max_socks - 1] down (closing order)
 *   layout               -> sizeof and offsets of the copied struct sock_reuseport
 * Anything unexpected exits with 3; a kernel function that fails exits with 3 and says which.
 */
#include <string.h>

#define HARNESS_MAX_SOCKS (1 << 17)

struct net harness_net;
int harness_cpu;

static struct sock *harness_socks;
static bool *harness_joined;
static bool *harness_open;
static int *harness_join_order;
static int harness_njoined;
static bool harness_tcp;

static void harness_die(const char *msg, const char *arg)
{
	fprintf(stderr, "reuseport: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
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

static struct sock *harness_sock(bool must_be_joined)
{
	long long id = harness_num();

	if (id < 0 || id >= HARNESS_MAX_SOCKS)
		harness_die("socket id out of range", NULL);
	if (must_be_joined && !harness_joined[id])
		harness_die("no such socket", NULL);
	return &harness_socks[id];
}

/* The first open member in join order (the group's handle), else NULL. */
static struct sock *harness_open_member(void)
{
	int i;

	for (i = 0; i < harness_njoined; i++)
		if (harness_open[harness_join_order[i]])
			return &harness_socks[harness_join_order[i]];
	return NULL;
}

/* The first closed member still in a group (the closed section), else NULL. */
static struct sock *harness_closed_member(void)
{
	int i;

	for (i = 0; i < harness_njoined; i++) {
		struct sock *sk = &harness_socks[harness_join_order[i]];

		if (!harness_open[sk->harness_id] && sk->sk_reuseport_cb)
			return sk;
	}
	return NULL;
}

static void harness_print(struct sock *sk)
{
	if (sk)
		printf("%d\n", sk->harness_id);
	else
		printf("-\n");
}

static void harness_state(void)
{
	struct sock *sk = harness_open_member();
	struct sock_reuseport *reuse = sk ? sk->sk_reuseport_cb : NULL;
	int i;

	if (!sk) {
		sk = harness_closed_member();
		reuse = sk ? sk->sk_reuseport_cb : NULL;
	}
	if (!reuse) {
		printf("socks= closed= incoming_cpu=0 has_conns=0\n");
		return;
	}
	printf("socks=");
	for (i = 0; i < reuse->num_socks; i++)
		printf("%s%d", i ? "," : "", reuse->socks[i]->harness_id);
	printf(" closed=");
	for (i = 0; i < reuse->num_closed_socks; i++)
		printf("%s%d", i ? "," : "", reuse->socks[reuse->max_socks - 1 - i]->harness_id);
	printf(" incoming_cpu=%u has_conns=%u\n", (unsigned int)reuse->incoming_cpu,
	       (unsigned int)reuse->has_conns);
}

int main(void)
{
	static char line[4096];
	int i;

	harness_socks = calloc(HARNESS_MAX_SOCKS, sizeof(*harness_socks));
	harness_joined = calloc(HARNESS_MAX_SOCKS, sizeof(*harness_joined));
	harness_open = calloc(HARNESS_MAX_SOCKS, sizeof(*harness_open));
	harness_join_order = calloc(HARNESS_MAX_SOCKS, sizeof(*harness_join_order));
	if (!harness_socks || !harness_joined || !harness_open || !harness_join_order)
		harness_die("out of memory", NULL);
	for (i = 0; i < HARNESS_MAX_SOCKS; i++)
		harness_socks[i].harness_id = i;

	while (fgets(line, sizeof(line), stdin)) {
		char *cmd = strtok(line, " \t\r\n");

		if (!cmd)
			continue;
		if (strcmp(cmd, "proto") == 0) {
			char *p = harness_tok();

			if (strcmp(p, "udp") && strcmp(p, "tcp"))
				harness_die("proto must be udp or tcp", p);
			harness_tcp = strcmp(p, "tcp") == 0;
		} else if (strcmp(cmd, "migrate_req") == 0) {
			harness_net.ipv4.sysctl_tcp_migrate_req = (u8)harness_num();
		} else if (strcmp(cmd, "join") == 0) {
			struct sock *sk = harness_sock(false), *sk2 = harness_open_member();
			int err;

			if (harness_joined[sk->harness_id])
				harness_die("socket joined twice", NULL);
			sk->sk_state = harness_tcp ? TCP_LISTEN : TCP_CLOSE;
			sk->sk_protocol = harness_tcp ? IPPROTO_TCP : IPPROTO_UDP;
			sk->sk_incoming_cpu = -1;
			sk->sk_refcnt = 1;
			err = sk2 ? reuseport_add_sock(sk, sk2, true) : reuseport_alloc(sk, true);
			if (err)
				harness_die("reuseport_add_sock/reuseport_alloc failed", NULL);
			harness_joined[sk->harness_id] = true;
			harness_open[sk->harness_id] = true;
			harness_join_order[harness_njoined++] = sk->harness_id;
		} else if (strcmp(cmd, "close") == 0) {
			struct sock *sk = harness_sock(true);

			if (!harness_open[sk->harness_id])
				harness_die("socket closed twice", NULL);
			if (harness_tcp)
				reuseport_stop_listen_sock(sk);
			else
				reuseport_detach_sock(sk);
			harness_open[sk->harness_id] = false;
		} else if (strcmp(cmd, "connect") == 0) {
			struct sock *sk = harness_sock(true);

			reuseport_has_conns_set(sk);
			sk->sk_state = TCP_ESTABLISHED;
		} else if (strcmp(cmd, "cpu") == 0) {
			struct sock *sk = harness_sock(true);

			reuseport_update_incoming_cpu(sk, (int)harness_num());
		} else if (strcmp(cmd, "select") == 0) {
			u32 hash = (u32)harness_num();
			struct sock *sk = harness_open_member();

			harness_cpu = (int)harness_num();
			if (!sk)
				sk = harness_closed_member();
			harness_print(sk ? reuseport_select_sock(sk, hash, NULL, 0) : NULL);
		} else if (strcmp(cmd, "migrate") == 0) {
			struct sock req = { .sk_refcnt = 1, .harness_id = -1 };
			struct sock *sk = harness_closed_member();

			req.sk_hash = (u32)harness_num();
			harness_cpu = (int)harness_num();
			if (!sk)
				sk = harness_open_member();
			harness_print(sk ? reuseport_migrate_sock(sk, &req, NULL) : NULL);
		} else if (strcmp(cmd, "state") == 0) {
			harness_state();
		} else if (strcmp(cmd, "layout") == 0) {
			printf("sizeof=%zu num_socks=%zu incoming_cpu=%zu socks=%zu\n",
			       sizeof(struct sock_reuseport),
			       offsetof(struct sock_reuseport, num_socks),
			       offsetof(struct sock_reuseport, incoming_cpu),
			       offsetof(struct sock_reuseport, socks));
		} else {
			harness_die("unknown command", cmd);
		}
		fflush(stdout);
	}
	return 0;
}
