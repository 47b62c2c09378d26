// SPDX-License-Identifier: MIT
// A reuseport program that misroutes on purpose, for sidkit's test bench (issue 16): the
// payload's first four octets (big-endian) name a socket, and the program selects the one
// after it. The last index has no successor in the sockarray (-ENOENT) and falls back to the
// kernel's hash; every other datagram lands one socket off. The bench must name them all.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} sockets SEC(".maps");

SEC("sk_reuseport")
int misroute(struct sk_reuseport_md *md)
{
	__u32 index;

	if (bpf_skb_load_bytes(md, 8, &index, sizeof(index)))
		return SK_PASS;
	index = bpf_ntohl(index) + 1; /* the bug */
	bpf_sk_select_reuseport(md, &sockets, &index, 0);
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
