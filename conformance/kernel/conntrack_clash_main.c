/* Driver of the conntrack clash program. One command a line on stdin:
 *   hz N | size N | jiffies J
 *   entry ID PROTO L3 OSRC OSPORT ODST ODPORT RSRC RSPORT RDST RDPORT ZID ZDIR TIMEOUT ST
 *        an unconfirmed nf_conn (L3 4 or 6; addresses as 32 hex digits, IPv4 in the first
 *        word, network order; ports host order; TIMEOUT relative jiffies, as before
 *        confirmation; ST the status in hex: the NAT bits nf_nat_setup_info set)
 *   confirm ID HASH REPLY_HASH
 *        the body of __nf_conntrack_confirm() from its two chain walks on (6.12.117
 *        nf_conntrack_core.c:1238-1275; 6.1.192:1252-1289), with the kernel's
 *        nf_ct_key_equal(), __nf_conntrack_insert_prepare(), __nf_conntrack_hash_insert()
 *        and nf_ct_resolve_clash(); the chain limit is left out (no chain here is long).
 *        Prints "verdict=ACCEPT|DROP ct=ID status=HEX timeout=N clash_resolve=N drop=N
 *        insert_failed=N"
 *   chains   prints every chain, head first: "B:ID.DIR,ID.DIR ..." (non-empty chains)
 * The walks are the only lines that are not the kernel's compiled text; they are the
 * kernel's loops with the chain-length test removed. */
static struct nf_conn *harness_ct[1 << 16];
static unsigned int harness_hsize;

static void parse_addr(const char *hex, union nf_inet_addr *a)
{
	for (int i = 0; i < 16; i++) {
		unsigned int byte;

		sscanf(hex + 2 * i, "%2x", &byte);
		((u8 *)a->all)[i] = byte;
	}
}

static int harness_confirm(struct nf_conn *ct, unsigned int hash, unsigned int reply_hash)
{
	const struct nf_conntrack_zone *zone = nf_ct_zone(ct);
	struct net *net = nf_ct_net(ct);
	struct nf_conntrack_tuple_hash *h;
	struct hlist_nulls_node *n;
	struct sk_buff skb = { ct, IP_CT_NEW };
	struct sk_buff *skbp = &skb;
	int ret;

	hlist_nulls_for_each_entry(h, n, &nf_conntrack_hash[hash], hnnode) {
		if (nf_ct_key_equal(h, &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple, zone, net))
			goto out;
	}
	hlist_nulls_for_each_entry(h, n, &nf_conntrack_hash[reply_hash], hnnode) {
		if (nf_ct_key_equal(h, &ct->tuplehash[IP_CT_DIR_REPLY].tuple, zone, net))
			goto out;
	}
	ct->timeout += nfct_time_stamp;
	__nf_conntrack_insert_prepare(ct);
	__nf_conntrack_hash_insert(ct, hash, reply_hash);
	smp_mb__before_atomic();
	set_bit(IPS_CONFIRMED_BIT, &ct->status);
	printf("verdict=ACCEPT ct=%d", ct->id);
	ret = NF_ACCEPT;
	goto print;
out:
	ret = nf_ct_resolve_clash(skbp, h, reply_hash);
	printf("verdict=%s ct=%d", ret == NF_ACCEPT ? "ACCEPT" : "DROP",
	       ret == NF_ACCEPT ? skb.ct->id : -1);
print:
	printf(" status=%lx timeout=%u clash_resolve=%u drop=%u insert_failed=%u\n", ct->status,
	       ct->timeout, stat_clash_resolve, stat_drop, stat_insert_failed);
	return ret;
}

int main(void)
{
	char line[512];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long a, b, c;
		unsigned int id, proto, l3, osp, odp, rsp, rdp, zid, zdir, timeout;
		unsigned long status;
		char os[40], od[40], rs[40], rd[40];

		if (sscanf(line, "hz %lu", &a) == 1) {
			harness_hz = a;
		} else if (sscanf(line, "size %lu", &a) == 1) {
			harness_hsize = a;
			nf_conntrack_hash = calloc(a, sizeof(*nf_conntrack_hash));
		} else if (sscanf(line, "jiffies %lu", &a) == 1) {
			jiffies = a;
		} else if (sscanf(line, "entry %u %u %u %39s %u %39s %u %39s %u %39s %u %u %u %u %lx", &id,
				  &proto, &l3, os, &osp, od, &odp, rs, &rsp, rd, &rdp, &zid, &zdir,
				  &timeout, &status) == 15) {
			struct nf_conn *ct = calloc(1, sizeof(*ct));

			for (int d = 0; d < 2; d++) {
				struct nf_conntrack_tuple *t = &ct->tuplehash[d].tuple;

				parse_addr(d ? rs : os, &t->src.u3);
				parse_addr(d ? rd : od, &t->dst.u3);
				t->src.l3num = l3 == 6 ? 10 : 2;
				t->src.u.all = __builtin_bswap16(d ? rsp : osp);
				t->dst.u.all = __builtin_bswap16(d ? rdp : odp);
				t->dst.protonum = proto;
				t->dst.dir = d;
			}
			ct->zone.id = zid;
			ct->zone.dir = zdir;
			ct->timeout = timeout;
			ct->status = status;
			ct->ct_general.use.refs = 1;
			ct->id = id;
			harness_ct[id] = ct;
		} else if (sscanf(line, "confirm %lu %lu %lu", &a, &b, &c) == 3) {
			harness_confirm(harness_ct[a], b, c);
		} else if (strncmp(line, "chains", 6) == 0) {
			for (unsigned int i = 0; i < harness_hsize; i++) {
				struct hlist_nulls_node *n = nf_conntrack_hash[i].first;

				if (!n)
					continue;
				printf("%u:", i);
				for (; n; n = n->next) {
					struct nf_conntrack_tuple_hash *h =
						container_of(n, struct nf_conntrack_tuple_hash, hnnode);

					printf("%s%d.%d", n == nf_conntrack_hash[i].first ? "" : ",",
					       nf_ct_tuplehash_to_ctrack(h)->id, h->tuple.dst.dir);
				}
				printf(" ");
			}
			printf("\n");
		} else {
			fprintf(stderr, "conntrack_clash: bad command: %s", line);
			return 2;
		}
	}
	return 0;
}
