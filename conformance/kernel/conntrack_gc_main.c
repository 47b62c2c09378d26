/* Driver of the conntrack GC program: the kernel's gc_worker() over a table the script lays
 * out. One command a line on stdin:
 *   hz N | max N | size N        CONFIG_HZ, nf_conntrack_max, the number of hash chains
 *   entry ID TIMEOUT ASSURED     a confirmed nf_conn (timeout in jiffies, absolute)
 *   link ID DIR BUCKET           its node of DIR at the head of BUCKET
 *   flag 0|1                     conntrack_gc_work.early_drop (a failed allocation sets it)
 *   jiffies J                    the clock
 *   gc                           one gc_worker() run; prints
 *                                "removed=ID,... next=B flag=F next_run=N count=C"
 *   early_drop HASH              early_drop(net, HASH); prints
 *                                "ok=0|1 removed=ID,... drops=D count=C"
 * Entries and nodes are linked only through the kernel's own list macros' layout; nothing
 * here decides what the GC removes. */
static struct conntrack_gc_work harness_gc_work;
static struct nf_conn *harness_ct[1 << 20];

int main(void)
{
	char line[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long a, b, c;

		if (sscanf(line, "hz %lu", &a) == 1) {
			harness_hz = a;
		} else if (sscanf(line, "max %lu", &a) == 1) {
			nf_conntrack_max = a;
		} else if (sscanf(line, "size %lu", &a) == 1) {
			harness_hsize = a;
			harness_hash = calloc(a, sizeof(*harness_hash));
		} else if (sscanf(line, "entry %lu %lu %lu", &a, &b, &c) == 3) {
			struct nf_conn *ct = calloc(1, sizeof(*ct));

			ct->id = a;
			ct->timeout = b;
			ct->status = 1UL << IPS_CONFIRMED_BIT;
			if (c)
				ct->status |= 1UL << IPS_ASSURED_BIT;
			ct->ct_general.use.refs = 1;
			ct->protonum = 17;
			ct->tuplehash[0].tuple.dst.dir = 0;
			ct->tuplehash[1].tuple.dst.dir = 1;
			harness_ct[a] = ct;
			harness_cnet.count.counter++;
		} else if (sscanf(line, "link %lu %lu %lu", &a, &b, &c) == 3) {
			struct hlist_nulls_node *n = &harness_ct[a]->tuplehash[b].hnnode;
			struct hlist_nulls_head *h = &harness_hash[c];

			n->next = h->first;
			n->pprev = &h->first;
			if (h->first)
				h->first->pprev = &n->next;
			h->first = n;
		} else if (sscanf(line, "flag %lu", &a) == 1) {
			harness_gc_work.early_drop = a;
		} else if (sscanf(line, "jiffies %lu", &a) == 1) {
			jiffies = a;
		} else if (strncmp(line, "gc", 2) == 0) {
			harness_nremoved = 0;
			harness_queued = false;
			gc_worker(&harness_gc_work.dwork.work);
			printf("removed=");
			for (int i = 0; i < harness_nremoved; i++)
				printf(i ? ",%d" : "%d", harness_removed[i]);
			printf(" next=%u flag=%d next_run=%lu count=%d\n", harness_gc_work.next_bucket,
			       harness_gc_work.early_drop, harness_queued ? harness_next_run : 0UL,
			       harness_cnet.count.counter);
		} else if (sscanf(line, "early_drop %lu", &a) == 1) {
			int ok;

			harness_nremoved = 0;
			harness_stat_early_drop = 0;
			ok = early_drop(&harness_net, a);
			printf("ok=%d removed=", ok);
			for (int i = 0; i < harness_nremoved; i++)
				printf(i ? ",%d" : "%d", harness_removed[i]);
			printf(" drops=%u count=%d\n", harness_stat_early_drop,
			       harness_cnet.count.counter);
		} else {
			fprintf(stderr, "conntrack_gc: bad command: %s", line);
			return 2;
		}
	}
	return 0;
}
