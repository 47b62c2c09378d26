// SPDX-License-Identifier: MIT
// A reuseport program whose behaviour comes from global data, for sidkit's test bench
// (issue 16): the modulus is a `const volatile` in .rodata (how libbpf programs take load-time
// parameters), and a counter in .bss counts the datagrams it saw. The loader must turn both
// sections into maps and patch the ld_imm64 instructions that point into them
// (BPF_PSEUDO_MAP_VALUE with the variable's offset).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} sockets SEC(".maps");

const volatile __u32 padding = 0xdeadbeef; /* puts `modulus` at a non-zero offset */
const volatile __u32 modulus = 3;
__u64 seen = 0;

SEC("sk_reuseport")
int by_modulus(struct sk_reuseport_md *md)
{
	__u32 index;

	__sync_fetch_and_add(&seen, 1);
	if (bpf_skb_load_bytes(md, 8, &index, sizeof(index)))
		return SK_PASS;
	index = bpf_ntohl(index) % (modulus + (padding != 0xdeadbeef));
	bpf_sk_select_reuseport(md, &sockets, &index, 0);
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
