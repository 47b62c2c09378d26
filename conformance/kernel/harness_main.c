/* Driver of the kernel-C oracle harness. generate.py writes _work/build-X/harness.c — shims, the
 * kernel's own headers and the functions copied verbatim out of the kernel sources — and
 * includes this file at its end. It only reads test cases and calls the kernel's code.
 *
 * Protocol: one case per line on stdin, "<command> <arg> ...", integers in decimal (or 0x hex),
 * byte strings in hex ("-" when empty), addresses as their network-order bytes in hex. One line
 * per case on stdout: the unsigned decimal result. Ports are host-order integers; the driver
 * applies htons() exactly where the kernel's prototype takes a __be16. Anything unexpected
 * (bad input, a secret the kernel code asks for that the case did not provide) exits with 3.
 */
#include <stdio.h>
#include <stdlib.h>

struct harness_secret {
	const char *name;
	u8 bytes[16];
	size_t len;
	int used;
};

static struct harness_secret harness_secrets[8];
static int harness_nsecrets;
static struct net harness_net;

static void harness_die(const char *msg, const char *arg)
{
	fprintf(stderr, "harness: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(3);
}

void harness_random_once(const char *name, void *buf, size_t nbytes)
{
	int i;

	while (*name == '&' || *name == ' ' || *name == '(')
		name++;
	for (i = 0; i < harness_nsecrets; i++) {
		if (strcmp(harness_secrets[i].name, name) == 0) {
			if (harness_secrets[i].len != nbytes)
				harness_die("secret has another size", name);
			memcpy(buf, harness_secrets[i].bytes, nbytes);
			harness_secrets[i].used++;
			return;
		}
	}
	harness_die("kernel code asked for a secret the case did not set", name);
}

static void harness_set_secret(const char *name, const void *value, size_t len)
{
	struct harness_secret *s = &harness_secrets[harness_nsecrets++];

	s->name = name;
	memcpy(s->bytes, value, len);
	s->len = len;
	s->used = 0;
}

static int harness_secrets_used(void)
{
	int i, n = 0;

	for (i = 0; i < harness_nsecrets; i++)
		n += harness_secrets[i].used > 0;
	return n;
}

static char *harness_tok(void)
{
	char *t = strtok(NULL, " \t\r\n");

	if (!t)
		harness_die("missing argument", NULL);
	return t;
}

static u64 harness_num(void)
{
	char *t = harness_tok(), *end;
	u64 v = strtoull(t, &end, 0);

	if (*end)
		harness_die("bad number", t);
	return v;
}

static size_t harness_hex(u8 *out, size_t cap)
{
	char *t = harness_tok();
	size_t n, i;

	if (strcmp(t, "-") == 0)
		return 0;
	n = strlen(t);
	if (n % 2 || n / 2 > cap)
		harness_die("bad hex", t);
	for (i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(t + 2 * i, "%2x", &b) != 1)
			harness_die("bad hex", t);
		out[i] = (u8)b;
	}
	return n / 2;
}

static void harness_hex_exact(void *out, size_t len)
{
	u8 tmp[64];

	if (harness_hex(tmp, sizeof(tmp)) != len)
		harness_die("hex argument has the wrong length", NULL);
	memcpy(out, tmp, len);
}

static void harness_expect_secrets(int n)
{
	if (harness_secrets_used() != n)
		harness_die("kernel code used an unexpected number of secrets", NULL);
}

#ifdef HARNESS_NET
static void harness_addr(int family, void *out)
{
	harness_hex_exact(out, family == AF_INET ? 4 : 16);
}
#endif

int main(void)
{
	static char line[16384];
	static u8 buf[4096];

	while (fgets(line, sizeof(line), stdin)) {
		char *cmd = strtok(line, " \t\r\n");

		if (!cmd)
			continue;
		harness_nsecrets = 0;
		harness_net.hash_mix = 0;

		if (strcmp(cmd, "jhash") == 0) {
			size_t n = harness_hex(buf, sizeof(buf));
			u32 iv = (u32)harness_num();

			printf("%u\n", jhash(buf, (u32)n, iv));
		} else if (strcmp(cmd, "jhash2") == 0) {
			static u32 words[1024];
			u32 n = (u32)harness_num(), i, iv;

			if (n > 1024)
				harness_die("too many words", NULL);
			for (i = 0; i < n; i++)
				words[i] = (u32)harness_num();
			iv = (u32)harness_num();
			printf("%u\n", jhash2(words, n, iv));
		} else if (strcmp(cmd, "jhash_1word") == 0) {
			u32 a = (u32)harness_num(), iv = (u32)harness_num();

			printf("%u\n", jhash_1word(a, iv));
		} else if (strcmp(cmd, "jhash_2words") == 0) {
			u32 a = (u32)harness_num(), b = (u32)harness_num(), iv = (u32)harness_num();

			printf("%u\n", jhash_2words(a, b, iv));
		} else if (strcmp(cmd, "jhash_3words") == 0) {
			u32 a = (u32)harness_num(), b = (u32)harness_num(), c = (u32)harness_num();
			u32 iv = (u32)harness_num();

			printf("%u\n", jhash_3words(a, b, c, iv));
		} else if (strcmp(cmd, "hash_32") == 0) {
			u32 v = (u32)harness_num();
			unsigned int bits = (unsigned int)harness_num();

			printf("%u\n", hash_32(v, bits));
		} else if (strcmp(cmd, "hash_64") == 0) {
			u64 v = harness_num();
			unsigned int bits = (unsigned int)harness_num();

			printf("%u\n", hash_64(v, bits));
		} else if (strcmp(cmd, "reciprocal_scale") == 0) {
			u32 v = (u32)harness_num(), ep_ro = (u32)harness_num();

			printf("%u\n", reciprocal_scale(v, ep_ro));
#ifdef HARNESS_HAVE_NEXT_PSEUDO_RANDOM32
		} else if (strcmp(cmd, "next_pseudo_random32") == 0) {
			u32 seed = (u32)harness_num();

			printf("%u\n", next_pseudo_random32(seed));
#endif
		} else if (strcmp(cmd, "siphash") == 0 || strcmp(cmd, "hsiphash") == 0) {
			size_t n = harness_hex(buf + 1, sizeof(buf) - 1);
			siphash_key_t key;
			hsiphash_key_t hkey;

			/* The key is the key struct's memory: 16 bytes for siphash_key_t; for
			 * hsiphash_key_t (unsigned long key[2]) 16 bytes when BITS_PER_LONG == 64
			 * and 8 bytes when BITS_PER_LONG == 32. */
			/* buf + 1: deliberately unaligned, like the self-test's in_unaligned + 1 */
			if (cmd[0] == 's') {
				harness_hex_exact(&key, sizeof(key));
				printf("%llu\n", (unsigned long long)siphash(buf + 1, n, &key));
			} else {
				harness_hex_exact(&hkey, sizeof(hkey));
				printf("%u\n", hsiphash(buf + 1, n, &hkey));
			}
		} else if (strncmp(cmd, "siphash_", 8) == 0) {
			u64 w[4] = {0, 0, 0, 0};
			int nw = 0, i;
			siphash_key_t key;
			u64 r;

			if (strcmp(cmd, "siphash_1u64") == 0 || strcmp(cmd, "siphash_1u32") == 0)
				nw = 1;
			else if (strcmp(cmd, "siphash_2u64") == 0)
				nw = 2;
			else if (strcmp(cmd, "siphash_3u64") == 0 || strcmp(cmd, "siphash_3u32") == 0)
				nw = 3;
			else if (strcmp(cmd, "siphash_4u64") == 0)
				nw = 4;
			else
				harness_die("unknown command", cmd);
			for (i = 0; i < nw; i++)
				w[i] = harness_num();
			harness_hex_exact(&key, 16);
			if (strcmp(cmd, "siphash_1u64") == 0)
				r = siphash_1u64(w[0], &key);
			else if (strcmp(cmd, "siphash_2u64") == 0)
				r = siphash_2u64(w[0], w[1], &key);
			else if (strcmp(cmd, "siphash_3u64") == 0)
				r = siphash_3u64(w[0], w[1], w[2], &key);
			else if (strcmp(cmd, "siphash_4u64") == 0)
				r = siphash_4u64(w[0], w[1], w[2], w[3], &key);
			else if (strcmp(cmd, "siphash_1u32") == 0)
				r = siphash_1u32((u32)w[0], &key);
			else
				r = siphash_3u32((u32)w[0], (u32)w[1], (u32)w[2], &key);
			printf("%llu\n", (unsigned long long)r);
		} else if (strcmp(cmd, "abi") == 0) {
			/* The word size this build was compiled for (one line, key=value). */
			printf("bits_per_long=%d sizeof_long=%zu sizeof_hsiphash_key_t=%zu\n",
			       BITS_PER_LONG, sizeof(long), sizeof(hsiphash_key_t));
#ifdef HARNESS_NET
		} else if (strcmp(cmd, "inet_ehashfn") == 0 || strcmp(cmd, "udp_ehashfn") == 0) {
			/* laddr lport faddr fport secret net_mix */
			__be32 la, fa;
			u16 lport, fport;
			u32 secret, r;

			harness_hex_exact(&la, 4);
			lport = (u16)harness_num();
			harness_hex_exact(&fa, 4);
			fport = (u16)harness_num();
			secret = (u32)harness_num();
			harness_net.hash_mix = (u32)harness_num();
			if (cmd[0] == 'i') {
				harness_set_secret("inet_ehash_secret", &secret, 4);
				r = inet_ehashfn(&harness_net, la, lport, fa, htons(fport));
			} else {
				harness_set_secret("udp_ehash_secret", &secret, 4);
				r = udp_ehashfn(&harness_net, la, lport, fa, htons(fport));
			}
			harness_expect_secrets(1);
			printf("%u\n", r);
		} else if (strcmp(cmd, "inet6_ehashfn") == 0 || strcmp(cmd, "udp6_ehashfn") == 0) {
			/* laddr lport faddr fport ehash_secret addr_secret net_mix */
			struct in6_addr la, fa;
			u16 lport, fport;
			u32 secret, addr_secret, r;

			harness_hex_exact(&la, 16);
			lport = (u16)harness_num();
			harness_hex_exact(&fa, 16);
			fport = (u16)harness_num();
			secret = (u32)harness_num();
			addr_secret = (u32)harness_num();
			harness_net.hash_mix = (u32)harness_num();
			if (cmd[0] == 'i') {
				harness_set_secret("inet6_ehash_secret", &secret, 4);
				/* 6.1: ipv6_hash_secret; 6.12: tcp_ipv6_hash_secret (net_hotdata) */
				harness_set_secret("ipv6_hash_secret", &addr_secret, 4);
				harness_set_secret("tcp_ipv6_hash_secret", &addr_secret, 4);
				r = inet6_ehashfn(&harness_net, &la, lport, &fa, htons(fport));
			} else {
				harness_set_secret("udp6_ehash_secret", &secret, 4);
				harness_set_secret("udp_ipv6_hash_secret", &addr_secret, 4);
				r = udp6_ehashfn(&harness_net, &la, lport, &fa, htons(fport));
			}
			harness_expect_secrets(2);
			printf("%u\n", r);
		} else if (strcmp(cmd, "ipv6_addr_jhash") == 0) {
			struct in6_addr a;
			u32 iv;

			harness_hex_exact(&a, 16);
			iv = (u32)harness_num();
			printf("%u\n", __ipv6_addr_jhash(&a, iv));
		} else if (strcmp(cmd, "ipv4_portaddr_hash") == 0) {
			__be32 a;
			unsigned int port;

			harness_net.hash_mix = (u32)harness_num();
			harness_hex_exact(&a, 4);
			port = (unsigned int)harness_num();
			printf("%u\n", ipv4_portaddr_hash(&harness_net, a, port));
		} else if (strcmp(cmd, "ipv6_portaddr_hash") == 0) {
			struct in6_addr a;
			unsigned int port;

			harness_net.hash_mix = (u32)harness_num();
			harness_hex_exact(&a, 16);
			port = (unsigned int)harness_num();
			printf("%u\n", ipv6_portaddr_hash(&harness_net, &a, port));
		} else if (strcmp(cmd, "hash_conntrack_raw") == 0) {
			/* family src sport dst dport protonum zone net_mix secret dir */
			struct nf_conntrack_tuple t;
			int family = (int)harness_num();
			unsigned int zone;
			u8 secret[16];

			memset(&t, 0, sizeof(t));
			t.src.l3num = (u_int16_t)family;
			harness_addr(family, &t.src.u3);
			t.src.u.all = htons((u16)harness_num());
			harness_addr(family, &t.dst.u3);
			t.dst.u.all = htons((u16)harness_num());
			t.dst.protonum = (u_int8_t)harness_num();
			zone = (unsigned int)harness_num();
			harness_net.hash_mix = (u32)harness_num();
			harness_hex_exact(secret, 16);
			t.dst.dir = (u_int8_t)harness_num();
			harness_set_secret("nf_conntrack_hash_rnd", secret, 16);
			printf("%u\n", hash_conntrack_raw(&t, zone, &harness_net));
			harness_expect_secrets(1);
		} else if (strcmp(cmd, "nf_ct_zone_id") == 0) {
			/* zone.id zone.dir zone.flags dir: include/net/netfilter/nf_conntrack_zones.h */
			struct nf_conntrack_zone zone;

			memset(&zone, 0, sizeof(zone));
			zone.id = (u16)harness_num();
			zone.dir = (u8)harness_num();
			zone.flags = (u8)harness_num();
			printf("%u\n", (unsigned int)nf_ct_zone_id(&zone, harness_num() ?
					IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL));
		} else if (strcmp(cmd, "conntrack_zone") == 0 ||
			   strcmp(cmd, "conntrack_bucket") == 0) {
			/* family src sport dst dport protonum zone.id zone.dir zone.flags dir net_mix
			 * secret, then htable_size for conntrack_bucket. The zone id hashed is the
			 * kernel's nf_ct_zone_id(&zone, dir), as resolve_normal_ct and
			 * __nf_conntrack_confirm compute it. conntrack_zone prints
			 * hash_conntrack_raw(), conntrack_bucket the chain __hash_conntrack() picks. */
			struct nf_conntrack_tuple t;
			struct nf_conntrack_zone zone;
			int family = (int)harness_num();
			enum ip_conntrack_dir dir;
			unsigned int zoneid;
			u8 secret[16];

			memset(&t, 0, sizeof(t));
			memset(&zone, 0, sizeof(zone));
			t.src.l3num = (u_int16_t)family;
			harness_addr(family, &t.src.u3);
			t.src.u.all = htons((u16)harness_num());
			harness_addr(family, &t.dst.u3);
			t.dst.u.all = htons((u16)harness_num());
			t.dst.protonum = (u_int8_t)harness_num();
			zone.id = (u16)harness_num();
			zone.dir = (u8)harness_num();
			zone.flags = (u8)harness_num();
			dir = harness_num() ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
			harness_net.hash_mix = (u32)harness_num();
			harness_hex_exact(secret, 16);
			t.dst.dir = (u_int8_t)dir;
			harness_set_secret("nf_conntrack_hash_rnd", secret, 16);
			zoneid = nf_ct_zone_id(&zone, dir);
			if (strcmp(cmd, "conntrack_zone") == 0) {
				printf("%u\n", hash_conntrack_raw(&t, zoneid, &harness_net));
			} else {
				unsigned int size = (unsigned int)harness_num();

				printf("%u\n", __hash_conntrack(&harness_net, &t, zoneid, size));
			}
			harness_expect_secrets(1);
		} else if (strcmp(cmd, "flow_hash_from_keys") == 0) {
			/* family src sport dst dport ip_proto key */
			struct flow_keys keys;
			siphash_key_t keyval;
			int family = (int)harness_num();

			memset(&keys, 0, sizeof(keys));
			if (family == AF_INET) {
				keys.control.addr_type = FLOW_DISSECTOR_KEY_IPV4_ADDRS;
				keys.basic.n_proto = htons(ETH_P_IP);
				harness_addr(family, &keys.addrs.v4addrs.src);
				keys.ports.src = htons((u16)harness_num());
				harness_addr(family, &keys.addrs.v4addrs.dst);
			} else {
				keys.control.addr_type = FLOW_DISSECTOR_KEY_IPV6_ADDRS;
				keys.basic.n_proto = htons(ETH_P_IPV6);
				harness_addr(family, &keys.addrs.v6addrs.src);
				keys.ports.src = htons((u16)harness_num());
				harness_addr(family, &keys.addrs.v6addrs.dst);
			}
			keys.ports.dst = htons((u16)harness_num());
			keys.basic.ip_proto = (u8)harness_num();
			harness_hex_exact(&keyval, 16);
			printf("%u\n", __flow_hash_from_keys(&keys, &keyval));
		} else if (strcmp(cmd, "layout") == 0) {
			struct flow_keys k;
			size_t len4, len6;

			memset(&k, 0, sizeof(k));
			k.control.addr_type = FLOW_DISSECTOR_KEY_IPV4_ADDRS;
			len4 = flow_keys_hash_length(&k);
			k.control.addr_type = FLOW_DISSECTOR_KEY_IPV6_ADDRS;
			len6 = flow_keys_hash_length(&k);
#define L(name, value) printf("%s=%zu ", name, (size_t)(value))
#define M(member) printf(#member "=%zu+%zu ", offsetof(struct flow_keys, member), \
			 sizeof(((struct flow_keys *)0)->member))
			L("sizeof_flow_keys", sizeof(struct flow_keys));
			L("FLOW_KEYS_HASH_OFFSET", FLOW_KEYS_HASH_OFFSET);
			L("hash_length_v4", len4);
			L("hash_length_v6", len6);
			L("sizeof_nf_conntrack_tuple", sizeof(struct nf_conntrack_tuple));
#ifdef HARNESS_HAVE_NFCT_HASH_OFFSETEND
			L("nfct_hash_len",
			  offsetofend(struct nf_conntrack_tuple, dst.__nfct_hash_offsetend));
#endif
			M(control); M(control.thoff); M(control.addr_type); M(control.flags);
			M(basic); M(basic.n_proto); M(basic.ip_proto); M(basic.padding);
			M(tags); M(tags.flow_label);
			M(vlan); M(vlan.vlan_tci); M(vlan.vlan_tpid); M(vlan.vlan_eth_type);
			M(vlan.padding);
			M(cvlan);
			M(keyid); M(keyid.keyid);
			M(ports); M(ports.src); M(ports.dst);
			M(icmp); M(icmp.type); M(icmp.code); M(icmp.id);
			M(addrs); M(addrs.v4addrs.src); M(addrs.v4addrs.dst);
			M(addrs.v6addrs.src); M(addrs.v6addrs.dst); M(addrs.tipckey.key);
#undef L
#undef M
			printf("\n");
#endif
		} else {
			harness_die("unknown command", cmd);
		}
	}
	return ferror(stdout) ? 1 : 0;
}
